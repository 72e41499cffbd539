"""A renter page on another origin, in a real headless Chromium (Debian's `chromium`; installed
by this test with apt-get when missing and allowed): its fetch() makes the CORS preflight and
the cross-origin POST /api/rent (payment made beforehand, bound by its memo), and reads the
201 with its exposed headers. An admin route stays closed to the same page."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.client import Payer, price_lamports, rent_terms, signed_json
from tests.fixtures.stack import free_port, start_stack
from tests.support.installs import one_at_a_time

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>renter</title></head><body><script>
const API = %(api)s, RENT = %(rent)s, SIGNED = %(signed)s;
async function report(result) {
  await fetch("/result", {method: "POST", body: JSON.stringify(result)});
}
(async () => {
  const out = {};
  try {
    const r = await fetch(API + "/api/rent", {method: "POST", body: RENT,
      headers: {"Content-Type": "application/json", "Idempotency-Key": "browser-rent-1", ...SIGNED}});
    out.rent = {status: r.status, body: await r.json()};
    const again = await fetch(API + "/api/rent", {method: "POST", body: RENT,
      headers: {"Content-Type": "application/json", "Idempotency-Key": "browser-rent-1", ...SIGNED}});
    out.replay = {status: again.status, replayed: again.headers.get("Idempotent-Replayed")};
  } catch (e) { out.rent = {error: String(e)}; }
  try {
    const p = await fetch(API + "/api/pricing");
    out.pricing = {status: p.status};
  } catch (e) { out.pricing = {error: String(e)}; }
  try {
    const s = await fetch(API + "/api/stats", {headers: {"X-Admin-Key": "not-sent-anyway"}});
    out.stats = {status: s.status};
  } catch (e) { out.stats = {error: String(e)}; }
  await report(out);
})();
</script></body></html>"""


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if os.path.exists(path):
        return path
    with one_at_a_time("apt-get"):  # the other browser test may install it at the same time on another worker
        if not os.path.exists(path):
            if os.geteuid() != 0 or not shutil.which("apt-get"):
                pytest.fail("chromium is missing: apt-get install -y chromium (Debian's package)")
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "chromium"],
                check=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                timeout=900,
                stdout=subprocess.DEVNULL,
            )
    return path


class _Page(BaseHTTPRequestHandler):
    html = b""
    results: list = []

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).results.append(json.loads(data))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_port():
    return free_port()


@pytest.fixture(scope="module")
def cors_stack(tmp_path_factory, page_port):
    state = tmp_path_factory.mktemp("cors-stack")
    with start_stack(state, SI64_CORS_ORIGINS=f"http://127.0.0.1:{page_port}") as info:
        yield info


def test_a_page_on_another_origin_preflights_and_rents(cors_stack, page_port, tmp_path):
    chromium = _chromium()
    info = cors_stack
    with Payer(info["rpc_url"]) as payer:
        wallet = payer.new_wallet()
        sig = payer.pay(wallet, info["treasury"], price_lamports("M2", 1), memo=rent_terms("M2", 1))
    rent = json.dumps({"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": 1, "tx_signature": sig})
    # signed by the wallet (as a page's signMessage would): a request with credentials stores its key
    signed = signed_json(wallet, "/api/rent", rent)["headers"]
    _Page.html = (
        PAGE % {"api": json.dumps(info["api_url"]), "rent": json.dumps(rent), "signed": json.dumps(signed)}
    ).encode()
    _Page.results = []
    server = ThreadingHTTPServer(("127.0.0.1", page_port), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = tmp_path / "chromium.log"
    with open(log, "wb") as out:
        browser = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"http://127.0.0.1:{page_port}/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not _Page.results and time.monotonic() < deadline and browser.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(browser.pid, signal.SIGTERM)  # the group this test started: chromium and its helpers
        try:
            browser.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)
        server.shutdown()
        server.server_close()
    assert _Page.results, f"the page reported nothing:\n{log.read_text(errors='replace')[-3000:]}"
    out = _Page.results[0]
    assert out["rent"]["status"] == 201, out
    assert out["rent"]["body"]["status"] == "ACTIVE" and out["rent"]["body"]["tier"] == "M2"
    assert out["replay"] == {"status": 201, "replayed": "true"}  # an exposed header, readable by the page
    assert out["pricing"] == {"status": 200}
    assert "error" in out["stats"], out  # admin route: the preflight is refused, fetch() rejects
    api_log = Path(info["log_dir"], "api.log").read_text(errors="replace")
    assert '"OPTIONS /api/rent HTTP/1.1" 204' in api_log  # the browser's preflight, answered
    assert '"OPTIONS /api/stats HTTP/1.1" 403' in api_log
