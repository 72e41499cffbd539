// The SI64 renter web app: tiers with live free slots, price as you type, a quote with its
// Solana Pay QR code, "Pay with wallet" through the Wallet Standard, and the contract page
// (live cost, time left, extend, settle, refund). It talks only to the SI64 API (docs/api.md);
// no secrets. The API's origin is the page's own unless <meta name="si64-api"> names another.
import qrcode from "./vendor/qrcode-generator/qrcode.mjs";
import { clock, durationSeconds, group, priceLamports, sol } from "./money.js";

const API = (document.querySelector('meta[name="si64-api"]')?.content || "").replace(/\/$/, "");
const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const POLL_MS = 2000;
const FLEET_POLL_MS = 5000;
const view = document.getElementById("view");
const bar = document.getElementById("wallet-bar");
const state = { pricing: null, fleet: null, wallets: [], wallet: null, account: null, quote: null, timer: null };

// ---------------------------------------------------------------- helpers

function b58encode(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = "";
  while (n > 0n) { out = ALPHABET[Number(n % 58n)] + out; n /= 58n; }
  for (const b of bytes) { if (b !== 0) break; out = "1" + out; }
  return out;
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) { init.body = body; init.headers["Content-Type"] = "application/json"; }
  const r = await fetch(API + path, init);
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  return { status: r.status, ok: r.ok, data };
}

function problem(res) {
  const d = res.data || {};
  return `${res.status} ${d.code || ""}${d.reason ? " (" + d.reason + ")" : ""}: ${d.detail || "request failed"}`;
}

function show(...nodes) {
  clearInterval(state.timer);
  state.timer = null;
  view.replaceChildren(...nodes);
}

function status(text, kind = "info") {
  const el = document.getElementById("status");
  if (el) { el.textContent = text; el.className = `status ${kind}`; }
}

const lamportsText = (l) => `${group(l)} lamports (${sol(l)} SOL)`;

// ---------------------------------------------------------------- wallets (Wallet Standard)

function registerWallet(...wallets) {
  for (const w of wallets) if (!state.wallets.includes(w)) state.wallets.push(w);
  renderWalletBar();
  return () => {};
}
const standardApi = Object.freeze({ register: registerWallet });
window.addEventListener("wallet-standard:register-wallet", ({ detail }) => detail(standardApi));
window.dispatchEvent(new CustomEvent("wallet-standard:app-ready", { detail: standardApi }));
for (const cb of window.navigator.wallets || []) if (typeof cb === "function") cb(standardApi);

async function connect(wallet) {
  try {
    const { accounts } = await wallet.features["standard:connect"].connect();
    state.wallet = wallet;
    state.account = accounts[0];
  } catch (e) { status(`Could not connect ${wallet.name}: ${e.message}`, "error"); }
  renderWalletBar();
}

function renderWalletBar() {
  if (state.account) {
    bar.replaceChildren(h("span", { id: "wallet-address" }, `${state.wallet.name}: ${state.account.address.slice(0, 4)}…${state.account.address.slice(-4)}`));
    return;
  }
  const solana = state.wallets.filter((w) => (w.chains || []).some((c) => c.startsWith("solana:")));
  bar.replaceChildren(solana.length
    ? h("span", {}, ...solana.map((w) => h("button", { type: "button", class: "secondary", onclick: () => connect(w) }, `Connect ${w.name}`)))
    : h("span", {}, "No wallet found: scan a quote's QR code with a Solana Pay wallet."));
}

async function payWithWallet(q) {
  if (!state.account) throw new Error("connect a wallet first");
  const f = state.wallet.features;
  if (f["si64:pay"]) {
    const out = await f["si64:pay"].pay({ recipient: q.recipient, lamports: q.lamports, memo: q.memo, reference: q.reference });
    return out.signature;
  }
  throw new Error(`${state.wallet.name} cannot pay from this page: scan the QR code or open the Solana Pay link instead`);
}

async function signedHeaders(method, path) {
  const f = state.wallet && state.wallet.features["solana:signMessage"];
  if (!f) throw new Error("the connected wallet cannot sign messages");
  const ts = String(Math.floor(Date.now() / 1000));
  const message = new TextEncoder().encode(`si64:${method} ${path}:${ts}`);
  const [out] = await f.signMessage({ account: state.account, message });
  return { "X-Wallet": state.account.address, "X-Timestamp": ts, "X-Signature": b58encode(out.signature) };
}

// ---------------------------------------------------------------- tiers and price

async function loadCatalogue() {
  const pricing = await api("/api/pricing");
  if (!pricing.ok) throw new Error(problem(pricing));
  state.pricing = pricing.data;
  const fleet = await api("/api/fleet");
  if (fleet.ok) { state.fleet = fleet.data.tiers; return; }
  // no /api/fleet yet: the same figures from each tier's devices
  state.fleet = await Promise.all(state.pricing.tiers.map(async (t) => {
    const d = await api(`/api/devices/${encodeURIComponent(t.tier)}`);
    const devices = d.ok ? d.data : [];
    return { ...t, devices: devices.length, slots: devices.reduce((a, x) => a + x.capacity, 0), slots_free: devices.reduce((a, x) => a + x.available, 0) };
  }));
}

function quoteFor(tierName, hoursText) {
  const tier = state.pricing.tiers.find((t) => t.tier === tierName);
  const seconds = durationSeconds(hoursText);
  if (!tier || seconds === null) return { error: "Enter the hours as a number, e.g. 1.5" };
  const min = BigInt(state.pricing.min_duration_seconds), maxH = BigInt(state.pricing.max_duration_hours);
  if (seconds < min) return { error: `At least ${state.pricing.min_duration_seconds} s` };
  if (seconds > maxH * 3600n) return { error: `At most ${state.pricing.max_duration_hours} h` };
  return { seconds, lamports: priceLamports(tier.lamports_per_hour, seconds) };
}

async function home() {
  show(h("p", {}, "Loading the fleet…"));
  try { await loadCatalogue(); } catch (e) { show(h("p", { class: "status error" }, `The API did not answer: ${e.message}`)); return; }
  const rows = state.fleet.map((t) => h("tr", {},
    h("th", { scope: "row" }, t.tier), h("td", {}, t.memory),
    h("td", {}, `${sol(t.lamports_per_hour)} SOL`),
    h("td", { class: "slots", "data-tier": t.tier }, `${t.slots_free} / ${t.slots}`)));
  const options = state.fleet.map((t, i) => h("option", { value: t.tier, selected: i === 0 }, `${t.tier} — ${sol(t.lamports_per_hour)} SOL/h`));
  const tierSel = h("select", { id: "tier", name: "tier" }, options);
  const hours = h("input", { id: "hours", name: "hours", inputmode: "decimal", autocomplete: "off", value: "1" });
  const price = h("output", { id: "price", for: "tier hours", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "get-quote" }, "Get a quote");
  const update = () => {
    const q = quoteFor(tierSel.value, hours.value);
    price.textContent = q.error ? q.error : `${lamportsText(q.lamports)} for ${q.seconds} s`;
    submit.disabled = Boolean(q.error);
  };
  tierSel.addEventListener("change", update);
  hours.addEventListener("input", update);
  update();
  const form = h("form", { onsubmit: (ev) => { ev.preventDefault(); newQuote({ tier: tierSel.value, hours: hours.value }); } },
    h("div", { class: "field" }, h("label", { for: "tier" }, "Tier"), tierSel),
    h("div", { class: "field" }, h("label", { for: "hours" }, "Hours"), hours),
    h("p", { class: "price" }, "Price: ", price), submit);
  show(
    h("h2", {}, "Tiers"),
    h("table", {}, h("caption", {}, "Live free slots (free / total)"),
      h("thead", {}, h("tr", {}, ...["Tier", "Memory", "Price per hour", "Free slots"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)),
    h("h2", {}, "Rent"), form, h("p", { id: "status", class: "status", role: "status" }));
  state.timer = setInterval(async () => {  // live free slots (the fleet is cached ≤ 5 s)
    try { await loadCatalogue(); } catch { return; }
    for (const t of state.fleet) {
      const cell = view.querySelector(`td.slots[data-tier="${t.tier}"]`);
      if (cell) cell.textContent = `${t.slots_free} / ${t.slots}`;
    }
  }, FLEET_POLL_MS);
}

// ---------------------------------------------------------------- quotes and payment

async function newQuote({ tier, hours, contractId }) {
  if (!state.pricing) await loadCatalogue();
  const body = contractId ? `{"contract_id":${JSON.stringify(contractId)},"additional_hours":${hours}}`
    : `{"tier":${JSON.stringify(tier)},"duration_hours":${hours}}`;
  const res = await api("/api/quotes", { method: "POST", body });
  if (res.status === 201 || res.status === 200) {
    state.quote = { ...res.data, hours, local: false };
  } else if (res.status === 404 && (res.data || {}).reason === "route") {
    // no quotes on this API yet: a Solana Pay transfer request bound by its memo (docs/api.md "Binding a payment")
    const tierName = contractId ? state.contractTier : tier;
    const q = quoteFor(tierName, hours);
    if (q.error) { status(q.error, "error"); return; }
    const memo = contractId ? `si64:extend:${contractId}:${q.seconds}` : `si64:rent:${tier}:${q.seconds}`;
    const recipient = state.pricing.treasury;
    state.quote = {
      quote_id: null, kind: contractId ? "extend" : "rent", tier: tierName, contract_id: contractId || null,
      duration_seconds: Number(q.seconds), lamports: Number(q.lamports), sol: sol(q.lamports), recipient,
      reference: null, memo, expires_at: null, hours, local: true,
      solana_pay_url: `solana:${recipient}?amount=${sol(q.lamports)}&label=SI64&memo=${encodeURIComponent(memo)}`,
    };
  } else { status(problem(res), "error"); return; }
  location.hash = "#/pay";
}

function payScreen() {
  const q = state.quote;
  if (!q) { location.hash = "#/"; return; }
  const qr = qrcode(0, "M");
  qr.addData(q.solana_pay_url);
  qr.make();
  const img = h("img", { src: qr.createDataURL(4, 4), alt: `QR code of the Solana Pay request for ${q.sol} SOL`, class: "qr", id: "qr" });
  const payBtn = h("button", { type: "button", id: "pay", "data-flow": q.local ? "memo" : "quote", onclick: () => pay(payBtn) }, "Pay with wallet");
  show(
    h("h2", {}, q.kind === "extend" ? `Extend ${q.contract_id}` : `Rent ${q.tier}`),
    h("dl", { class: "facts" },
      h("dt", {}, "Duration"), h("dd", {}, `${q.duration_seconds} s (${clock(q.duration_seconds)})`),
      h("dt", {}, "Price"), h("dd", { id: "quote-lamports" }, lamportsText(q.lamports)),
      h("dt", {}, "Pay to"), h("dd", { class: "mono" }, q.recipient),
      h("dt", {}, "Memo"), h("dd", { class: "mono", id: "quote-memo" }, q.memo || "—"),
      q.reference ? [h("dt", {}, "Reference"), h("dd", { class: "mono", id: "quote-reference" }, q.reference)] : null,
      h("dt", {}, "Expires"), h("dd", { id: "quote-expires" }, q.expires_at ? new Date(typeof q.expires_at === "number" ? q.expires_at * 1000 : q.expires_at).toLocaleString() : "—")),
    h("figure", {}, img, h("figcaption", {}, "Scan with a Solana Pay wallet, or ",
      h("a", { href: q.solana_pay_url }, "open the payment request"), ".")),
    payBtn, h("p", { id: "status", class: "status", role: "status" },
      q.local ? "This API has no quotes yet: the payment's memo binds it, then this page sends the rent." : ""));
}

async function pay(btn) {
  const q = state.quote;
  btn.disabled = true;
  try {
    status("Paying…");
    const sig = await payWithWallet(q);
    status(`Paid: ${sig}. Opening the contract…`);
    if (!q.local) { await waitForQuote(q); return; }
    const path = q.kind === "extend" ? `/api/contracts/${q.contract_id}/extend` : "/api/rent";
    const body = q.kind === "extend" ? `{"additional_hours":${q.hours},"tx_signature":${JSON.stringify(sig)}}`
      : `{"wallet":${JSON.stringify(state.account.address)},"tier":${JSON.stringify(q.tier)},"duration_hours":${q.hours},"tx_signature":${JSON.stringify(sig)}}`;
    const res = await api(path, { method: "POST", body });
    if (!res.ok) throw new Error(problem(res));
    location.hash = `#/contract/${res.data.contract_id}`;
  } catch (e) { status(e.message, "error"); btn.disabled = false; }
}

async function waitForQuote(q) {
  for (;;) {
    const res = await api(`/api/quotes/${encodeURIComponent(q.quote_id)}`);
    if (res.ok && res.data.status === "PAID") { location.hash = `#/contract/${res.data.contract_id || q.contract_id}`; return; }
    if (res.ok && (res.data.status === "REFUSED" || res.data.status === "EXPIRED")) {
      throw new Error(`Quote ${res.data.status}: ${res.data.reason || ""} (a refused payment is refundable)`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---------------------------------------------------------------- the contract page

async function contractScreen(id) {
  const fields = {};
  const dd = (key) => (fields[key] = h("dd", { id: `c-${key}` }, "…"));
  const hours = h("input", { id: "extend-hours", name: "extend-hours", inputmode: "decimal", autocomplete: "off", value: "0.5" });
  const extendPrice = h("output", { id: "extend-price", for: "extend-hours", "aria-live": "polite" });
  const extendBtn = h("button", { type: "submit", id: "extend" }, "Extend (new quote)");
  const settleBtn = h("button", { type: "button", id: "settle", class: "danger", onclick: () => settle(id, settleBtn) }, "Settle now");
  const refundBox = h("div", { id: "refund" });
  const extendForm = h("form", { onsubmit: (ev) => { ev.preventDefault(); newQuote({ contractId: id, hours: hours.value }); } },
    h("div", { class: "field" }, h("label", { for: "extend-hours" }, "Extend by (hours)"), hours),
    h("p", { class: "price" }, "Price: ", extendPrice), extendBtn);
  const priceExtend = () => {
    if (!state.pricing || !state.contractTier) return;
    const q = quoteFor(state.contractTier, hours.value);
    extendPrice.textContent = q.error ? q.error : lamportsText(q.lamports);
    extendBtn.disabled = Boolean(q.error);
  };
  hours.addEventListener("input", priceExtend);
  show(
    h("h2", {}, "Contract ", h("span", { class: "mono" }, id)),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), dd("status"), h("dt", {}, "Tier / device"), dd("device"),
      h("dt", {}, "Live cost"), dd("used"), h("dt", {}, "Prepaid"), dd("prepaid"),
      h("dt", {}, "Time left"), dd("remaining"), h("dt", {}, "Expires"), dd("expires")),
    h("section", { id: "actions", "aria-labelledby": "actions-h" }, h("h3", { id: "actions-h" }, "Extend or settle"), extendForm, settleBtn),
    h("section", { "aria-labelledby": "refund-h" }, h("h3", { id: "refund-h" }, "Refund"), refundBox),
    h("p", { id: "status", class: "status", role: "status" }));
  if (!state.pricing) await loadCatalogue().catch(() => {});
  const tick = async () => {
    const res = await api(`/api/contracts/${encodeURIComponent(id)}`);
    if (!res.ok) { status(problem(res), "error"); return; }
    const c = res.data;
    state.contractTier = c.tier;
    fields.status.textContent = c.status;
    fields.device.textContent = `${c.tier} / ${c.device_id}`;
    fields.used.textContent = lamportsText(c.used_lamports);
    fields.prepaid.textContent = lamportsText(c.prepaid_lamports);
    fields.remaining.textContent = clock(c.remaining_seconds);
    fields.expires.textContent = new Date(c.expires_at_ms).toLocaleString();
    document.getElementById("actions").hidden = c.status !== "ACTIVE";
    const r = c.refund || { status: "NONE" };
    refundBox.replaceChildren(r.status === "NONE" ? h("p", {}, "Unused prepayment is refunded when the contract ends.")
      : h("dl", { class: "facts" },
        h("dt", {}, "Refund status"), h("dd", { id: "refund-status" }, r.status),
        h("dt", {}, "Amount"), h("dd", {}, lamportsText(r.lamports || 0)),
        h("dt", {}, "Transaction"), h("dd", { id: "refund-tx", class: "mono" }, r.tx_signature || "—"),
        r.reason ? [h("dt", {}, "Reason"), h("dd", {}, r.reason)] : null));
    if (r.status === "CONFIRMED") status(`Refund of ${lamportsText(r.lamports)} confirmed on chain.`, "ok");
    priceExtend();
  };
  await tick();
  state.timer = setInterval(tick, POLL_MS);
}

async function settle(id, btn) {
  btn.disabled = true;
  try {
    const path = `/api/contracts/${id}/settle`;
    const headers = await signedHeaders("POST", path);
    const res = await api(path, { method: "POST", headers });
    if (!res.ok) throw new Error(problem(res));
    status(`Settled: ${lamportsText(res.data.refund_lamports)} to be refunded (${res.data.refund_status}).`, "ok");
  } catch (e) { status(e.message, "error"); btn.disabled = false; }
}

// ---------------------------------------------------------------- routing

function route() {
  const hash = location.hash || "#/";
  const m = /^#\/contract\/([A-Za-z0-9_-]+)$/.exec(hash);
  if (m) contractScreen(m[1]);
  else if (hash === "#/pay") payScreen();
  else home();
  view.focus();
}
window.addEventListener("hashchange", route);
renderWalletBar();
route();
