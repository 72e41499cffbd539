// The "SI64 Dev Wallet": a Wallet Standard wallet backed by the local chain's dev keypair
// (dev/web_static.py holds the key; this script never sees it). Served only by the local
// stack at /dev/wallet.js. Features: standard:connect, standard:events, solana:signMessage,
// and si64:pay (a transfer with an optional Solana Pay reference and memo, confirmed).
const HEADERS = { "Content-Type": "application/json", "X-SI64-Dev-Wallet": "1" };
const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function b58decode(text) {
  let n = 0n;
  for (const c of text) n = n * 58n + BigInt(ALPHABET.indexOf(c));
  const out = [];
  while (n > 0n) { out.unshift(Number(n % 256n)); n /= 256n; }
  for (const c of text) { if (c !== "1") break; out.unshift(0); }
  return new Uint8Array(out);
}

async function call(path, body) {
  const r = await fetch(path, body === undefined ? {} : { method: "POST", headers: HEADERS, body: JSON.stringify(body) });
  const data = await r.json();
  if (!r.ok) throw new Error(data.detail || `dev wallet: HTTP ${r.status}`);
  return data;
}

const ICON = "data:image/svg+xml;base64," + btoa(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#14532d"/>' +
  '<text x="16" y="21" font-size="13" text-anchor="middle" fill="#fff" font-family="sans-serif">dev</text></svg>');

const listeners = new Set();
const wallet = {
  version: "1.0.0",
  name: "SI64 Dev Wallet",
  icon: ICON,
  chains: ["solana:localnet"],
  accounts: [],
  features: {
    "standard:connect": {
      version: "1.0.0",
      async connect() {
        const info = await call("/dev/wallet");
        const account = {
          address: info.address,
          publicKey: b58decode(info.address),
          chains: ["solana:localnet"],
          features: ["solana:signMessage", "si64:pay"],
        };
        wallet.accounts = [account];
        for (const fn of listeners) fn({ accounts: wallet.accounts });
        return { accounts: wallet.accounts };
      },
    },
    "standard:events": {
      version: "1.0.0",
      on(event, fn) { if (event === "change") listeners.add(fn); return () => listeners.delete(fn); },
    },
    "solana:signMessage": {
      version: "1.0.0",
      async signMessage(...inputs) {
        const out = [];
        for (const { message } of inputs) {
          const data = await call("/dev/wallet/sign", { message: btoa(String.fromCharCode(...message)) });
          out.push({ signedMessage: message, signature: b58decode(data.signature) });
        }
        return out;
      },
    },
    "si64:pay": {
      version: "1.0.0",
      async pay({ recipient, lamports, memo, reference }) {
        const body = { recipient, lamports: Number(lamports) };
        if (memo) body.memo = memo;
        if (reference) body.reference = reference;
        const data = await call("/dev/wallet/pay", body);
        return { signature: data.tx_signature };
      },
    },
  },
};

// Wallet Standard registration (both directions of @wallet-standard/wallet's registerWallet)
const callback = ({ register }) => register(wallet);
try {
  window.dispatchEvent(new CustomEvent("wallet-standard:register-wallet", { detail: callback }));
} catch (e) { console.error("wallet-standard:register-wallet could not be dispatched", e); }
window.addEventListener("wallet-standard:app-ready", ({ detail }) => callback(detail));
(window.navigator.wallets ||= []).push(callback);
