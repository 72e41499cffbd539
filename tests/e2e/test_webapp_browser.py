"""The renter web app in a real browser: Debian's chromium driven by Python Playwright against the
local stack, with the built-in "SI64 Dev Wallet" (dev/web_static.py, dev/dev_wallet.js).

One renter's whole life: tiers and price as you type -> a quote (POST /api/quotes; while the API
has no quotes, a Solana Pay request bound by its memo and then POST /api/rent) -> pay with the dev
wallet -> the contract page shows ACTIVE and a live cost -> extend -> settle (signMessage) -> the
refund CONFIRMED with its transaction. Each screen passes axe-core with no serious or critical
violation, at desktop size and on a 375x667 phone; its screenshot goes to docs/img/ (the README's)
with SI64_WEB_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain import money
from tests.e2e.client import Payer, price_lamports, rent_terms
from tests.e2e.test_cors_browser import _chromium
from tests.support.installs import one_at_a_time

ROOT = Path(__file__).resolve().parents[2]
AXE_DIR = Path(__file__).with_name("js") / "axe"
IMG = ROOT / "docs" / "img"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000


def _axe_script() -> Path:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    with one_at_a_time("npm-axe"):
        if not script.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is missing: cannot install axe-core into tests/e2e/js/axe")
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=AXE_DIR, capture_output=True, text=True, timeout=600
            )
            assert proc.returncode == 0, f"npm ci in {AXE_DIR} failed:\n{proc.stdout}{proc.stderr}"
    return script


@pytest.fixture(scope="module")
def browser():
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def _axe(page: Any, screen: str) -> None:
    page.add_script_tag(path=str(_axe_script()))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"axe-core on the {screen} screen: {bad}"


def _shot(page: Any, name: str) -> None:
    """A full-page screenshot: into docs/img/ (the README's) with SI64_WEB_SCREENSHOTS=1, else into
    a temporary directory, so `make test` leaves the tree clean."""
    out = IMG if os.environ.get("SI64_WEB_SCREENSHOTS") == "1" else Path(os.environ.get("TMPDIR", "/tmp")) / "si64-web"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one


def _connect(page: Any) -> str:
    page.get_by_role("button", name="Connect SI64 Dev Wallet").click()
    page.wait_for_selector("#wallet-address", timeout=TIMEOUT_MS)
    return str(page.evaluate("() => document.getElementById('wallet-address').textContent"))


def test_price_as_you_type_matches_the_server(local_stack, browser):
    page = browser.new_page()
    page.goto(local_stack["api_url"] + "/")
    page.wait_for_selector("#price")
    for tier in ("M2", "THOR"):
        page.select_option("#tier", tier)
        for hours in ("1", "0.5", "0.00013888888888888888888888888888", "1.0001388", "2.99999", "719.9999"):
            page.fill("#hours", hours)
            seconds = money.duration_seconds(Decimal(hours))
            lamports = money.price_lamports(money.TIERS[tier].lamports_per_hour, seconds)
            text = page.text_content("#price") or ""
            if seconds < 60:
                assert text.startswith("At least"), (hours, text)
            else:
                assert text.startswith(f"{lamports:,} lamports") and text.endswith(f"for {seconds} s"), (hours, text)
    page.fill("#hours", "1e3")
    assert (page.text_content("#price") or "").startswith("Enter the hours")
    assert page.is_disabled("#get-quote")
    page.close()


def test_free_slots_are_live(local_stack, browser):
    """A rent made elsewhere shows in the tiers table without a reload (the page polls)."""
    api = local_stack["api_url"]
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(api + "/")
    page.wait_for_selector("td.slots[data-tier=ORIN]")
    before = page.text_content("td.slots[data-tier=ORIN]")

    def pay() -> tuple[str, str]:  # its own thread: Playwright's sync API holds this thread's event loop
        with Payer(local_stack["rpc_url"]) as payer:
            wallet = payer.new_wallet()
            memo = rent_terms("ORIN", 1)
            return str(wallet.pubkey()), payer.pay(
                wallet, local_stack["treasury"], price_lamports("ORIN", 1), memo=memo
            )

    with ThreadPoolExecutor(1) as pool:
        address, sig = pool.submit(pay).result(timeout=120)
    body = {"wallet": address, "tier": "ORIN", "duration_hours": 1, "tx_signature": sig}
    assert requests.post(f"{api}/api/rent", json=body, timeout=30).status_code == 201
    devices = requests.get(f"{api}/api/devices/ORIN", timeout=10).json()
    now = f"{sum(d['available'] for d in devices)} / {sum(d['capacity'] for d in devices)}"
    assert now != before
    page.wait_for_function("(now) => document.querySelector('td.slots[data-tier=ORIN]').textContent === now", arg=now)
    page.close()


def test_rent_pay_extend_settle_refund_in_the_browser(local_stack, browser):
    api = local_stack["api_url"]
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(api + "/")
    page.wait_for_selector("td.slots[data-tier=M2]")
    devices = requests.get(f"{api}/api/devices/M2", timeout=10).json()
    free = sum(d["available"] for d in devices)
    assert page.text_content("td.slots[data-tier=M2]") == f"{free} / {sum(d['capacity'] for d in devices)}"
    _connect(page)
    page.select_option("#tier", "M2")
    page.fill("#hours", "0.5")
    assert page.text_content("#price") == "500,000 lamports (0.0005 SOL) for 1800 s"
    _axe(page, "tiers")
    _shot(page, "web-tiers")

    page.click("#get-quote")
    page.wait_for_selector("#qr")
    flow = page.get_attribute("#pay", "data-flow")
    print(f"[webapp] flow exercised: {flow}")  # "quote" once POST /api/quotes exists, else "memo"
    assert flow in ("quote", "memo")
    assert page.text_content("#quote-lamports") == "500,000 lamports (0.0005 SOL)"
    href = page.get_attribute("figure a", "href") or ""
    assert href.startswith("solana:") and "amount=0.0005" in href
    _axe(page, "quote")
    _shot(page, "web-quote")

    page.click("#pay")
    page.wait_for_url("**/#/contract/*")
    contract_id = page.url.rsplit("/", 1)[1]
    page.wait_for_function("() => document.getElementById('c-status').textContent === 'ACTIVE'")
    # the live cost moves while the page polls (1,000,000 lamports/h: ~278 lamports a second)
    page.wait_for_function("() => !document.getElementById('c-used').textContent.startsWith('0 lamports')")
    c = requests.get(f"{api}/api/contracts/{contract_id}", timeout=10).json()
    assert c["status"] == "ACTIVE" and c["tier"] == "M2" and c["duration_seconds"] == 1800
    assert c["prepaid_lamports"] == 500_000
    _axe(page, "contract")
    _shot(page, "web-contract")

    page.fill("#extend-hours", "0.25")
    assert page.text_content("#extend-price") == "250,000 lamports (0.00025 SOL)"
    page.click("#extend")
    page.wait_for_selector("#qr")
    assert page.text_content("#quote-lamports") == "250,000 lamports (0.00025 SOL)"
    page.click("#pay")
    page.wait_for_url(f"**/#/contract/{contract_id}")
    page.wait_for_function("() => document.getElementById('c-status').textContent === 'ACTIVE'")
    c = requests.get(f"{api}/api/contracts/{contract_id}", timeout=10).json()
    assert c["duration_seconds"] == 2700 and c["prepaid_lamports"] == 750_000

    page.click("#settle")
    page.wait_for_function("() => document.getElementById('c-status').textContent === 'SETTLED'")
    page.wait_for_function(
        "() => (document.getElementById('refund-status') || {}).textContent === 'CONFIRMED'", timeout=90_000
    )
    tx = page.text_content("#refund-tx")
    c = requests.get(f"{api}/api/contracts/{contract_id}", timeout=10).json()
    assert c["status"] == "SETTLED" and c["refund"]["status"] == "CONFIRMED"
    assert tx and tx == c["refund"]["tx_signature"]
    assert c["refund"]["lamports"] == 750_000 - c["used_lamports"] > 0
    wallet = page.evaluate("() => document.getElementById('wallet-address').textContent")
    assert c["wallet"][:4] in wallet
    _axe(page, "refund")
    _shot(page, "web-refund")
    page.close()


def test_narrow_mobile_viewport(local_stack, browser):
    api = local_stack["api_url"]
    page = browser.new_page(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(api + "/")
    page.wait_for_selector("td.slots[data-tier=M2]")
    _connect(page)
    page.fill("#hours", "0.25")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    _axe(page, "mobile tiers")
    _shot(page, "web-mobile-tiers")
    page.click("#get-quote")
    page.wait_for_selector("#qr")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    _axe(page, "mobile quote")
    page.click("#pay")
    page.wait_for_url("**/#/contract/*")
    page.wait_for_function("() => document.getElementById('c-status').textContent === 'ACTIVE'")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    _axe(page, "mobile contract")
    _shot(page, "web-mobile-contract")
    page.close()


def test_the_dev_wallet_answers_its_own_page_only(local_stack):
    api = local_stack["api_url"]
    body = {"recipient": local_stack["treasury"], "lamports": 1000}
    assert requests.post(f"{api}/dev/wallet/pay", json=body, timeout=10).status_code == 403  # no header
    cross = {"X-SI64-Dev-Wallet": "1", "Origin": "http://evil.example"}
    assert requests.post(f"{api}/dev/wallet/pay", json=body, headers=cross, timeout=10).status_code == 403
    assert (
        requests.post(f"{api}/dev/wallet/sign", json={"message": "aGk="}, headers=cross, timeout=10).status_code == 403
    )
    own = {"X-SI64-Dev-Wallet": "1"}
    for bad in (
        {**body, "lamports": 0},
        {**body, "lamports": "1000"},
        {**body, "lamports": True},
        {**body, "recipient": "x"},
    ):
        assert requests.post(f"{api}/dev/wallet/pay", json=bad, headers=own, timeout=10).status_code == 400
    assert requests.options(f"{api}/dev/wallet/pay", headers=cross, timeout=10).status_code == 404  # no preflight grant
    sig = requests.post(f"{api}/dev/wallet/sign", json={"message": "aGk="}, headers=own, timeout=10).json()
    from solders.pubkey import Pubkey
    from solders.signature import Signature

    assert Signature.from_string(sig["signature"]).verify(Pubkey.from_string(sig["address"]), b"hi")
    # the page is served; a path out of web/ is not
    assert requests.get(f"{api}/", timeout=10).text.count('src="/dev/wallet.js"') == 1
    assert requests.get(f"{api}/web/../chalicelib/config.py", timeout=10).status_code == 404
    assert requests.get(f"{api}/web/%2e%2e/app.py", timeout=10).status_code == 404
    assert os.path.exists(ROOT / "web" / "vendor" / "qrcode-generator" / "LICENSE")


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    return requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()[
        "result"
    ]


def test_a_quote_is_paid_with_its_reference(local_stack, browser):
    """The quote path of the page: its QR code is the quote's solana_pay_url, and "Pay with wallet"
    sends a transfer that carries the quote's reference as a read-only, non-signer account (what
    the backend finds with getSignaturesForAddress) and its memo. While the API has no quotes
    (404, reason route), POST and GET /api/quotes are answered by this test, the GET as OPEN:
    the contract the backend would open is then not part of this test."""
    from solders.keypair import Keypair

    api, rpc = local_stack["api_url"], local_stack["rpc_url"]
    served = requests.post(f"{api}/api/quotes", json={"tier": "M2", "duration_hours": 0.5}, timeout=10)
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if served.status_code == 404:
        reference = str(Keypair().pubkey())
        memo = "si64:rent:M2:1800"
        url = f"solana:{local_stack['treasury']}?amount=0.0005&reference={reference}&label=SI64&memo={memo}"
        quote = {
            "quote_id": "QTE-browser-test",
            "kind": "rent",
            "tier": "M2",
            "contract_id": None,
            "duration_seconds": 1800,
            "lamports": 500_000,
            "sol": "0.0005",
            "recipient": local_stack["treasury"],
            "reference": reference,
            "memo": memo,
            "expires_at": 4_102_444_800,
            "solana_pay_url": url,
        }
        page.route(f"{api}/api/quotes", lambda route: route.fulfill(status=201, json=quote))
        page.route(
            f"{api}/api/quotes/QTE-browser-test",
            lambda route: route.fulfill(json={"quote_id": "QTE-browser-test", "status": "OPEN", "contract_id": None}),
        )
    else:
        assert served.status_code == 201, served.text
        quote = None  # the page asks for its own
    page.goto(api + "/")
    _connect(page)
    page.select_option("#tier", "M2")
    page.fill("#hours", "0.5")
    page.click("#get-quote")
    page.wait_for_selector("#qr")
    assert page.get_attribute("#pay", "data-flow") == "quote"
    if quote is None:
        quote_id = page.evaluate("() => document.querySelector('#pay') && location.hash")
        reference = page.text_content("#quote-reference") or ""
        memo = (page.text_content("#quote-memo") or "").strip()
        assert quote_id and reference and f"reference={reference}" in (page.get_attribute("figure a", "href") or "")
    else:
        assert page.get_attribute("figure a", "href") == quote["solana_pay_url"]
    page.click("#pay")
    # read the signature in the same poll that sees it: the page may already have moved on to the
    # contract (the quote watcher was quick), and that screen's status line is another one
    paid = page.wait_for_function(
        "() => { const m = (document.getElementById('status') || {}).textContent?.match(/^Paid: (\\S+)\\./);"
        " return m && m[1]; }"
    )
    sig = str(paid.json_value())
    found = _rpc(rpc, "getSignaturesForAddress", [reference, {"commitment": "confirmed"}])
    assert [s["signature"] for s in found] == [sig]
    tx = _rpc(rpc, "getTransaction", [sig, {"encoding": "jsonParsed", "commitment": "confirmed"}])
    (memo_ix, transfer) = tx["transaction"]["message"]["instructions"]  # Solana Pay: memo, then transfer
    assert transfer["parsed"]["info"]["lamports"] == 500_000
    assert transfer["parsed"]["info"]["destination"] == local_stack["treasury"]
    keys = {k["pubkey"]: k for k in tx["transaction"]["message"]["accountKeys"]}
    assert keys[reference]["signer"] is False and keys[reference]["writable"] is False
    assert memo_ix["parsed"] == memo
    if served.status_code != 404:  # the real quotes: the payment alone opens the contract
        page.wait_for_url("**/#/contract/*")
        page.wait_for_function("() => document.getElementById('c-status').textContent === 'ACTIVE'")
    page.close()
