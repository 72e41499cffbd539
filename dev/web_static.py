"""The renter web app and its development wallet, served by the local stack's API server.

Local only: `dev/api_server.py` hands these paths here before Chalice's routes; the Lambda
package holds neither web/ nor this module (on AWS the page is served from S3 behind
CloudFront, infra/web.yaml, and there is no development wallet).

* ``GET /`` and ``GET /web/...``: the static files of ``web/`` (``/`` is ``web/index.html``,
  with one added ``<script>`` that loads the development wallet).
* ``GET /dev/wallet.js``: the "SI64 Dev Wallet", a Wallet Standard wallet for the page.
* ``GET /dev/wallet``: its address and balance (topped up by an airdrop of the local chain).
* ``POST /dev/wallet/pay`` ``{"recipient", "lamports", "memo"?, "reference"?}``: a system
  transfer from the wallet (Solana Pay: the reference is a read-only account of the transfer,
  the memo a Memo program instruction), confirmed; ``{"tx_signature"}``.
* ``POST /dev/wallet/sign`` ``{"message": base64}``: ``{"address", "signature"}`` (ed25519,
  base58), what a browser wallet's ``signMessage`` returns.

The keypair lives in ``$SI64_STATE_DIR/dev_wallet.json`` and pays on the local chain only
(``SOLANA_RPC_URL``). The POST routes answer only a same-origin page: they require the header
``X-SI64-Dev-Wallet: 1`` (a cross-origin page cannot send it without a preflight, which this
server never grants) and, when the browser sends an ``Origin``, that it is this server's.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from dev.procs import ROOT

WEB_ROOT = ROOT / "web"
DEV_WALLET_JS = Path(__file__).with_name("dev_wallet.js")
DEV_SCRIPT_TAG = b'<script type="module" src="/dev/wallet.js"></script>\n</head>'
DEV_HEADER = "X-SI64-Dev-Wallet"
AIRDROP_LAMPORTS = 5_000_000_000
MAX_PAY_LAMPORTS = 100_000_000_000  # the dev wallet never pays more than 100 SOL at once


def handles(method: str, path: str) -> bool:
    """True for the paths this module answers (the page and the development wallet)."""
    path = path.split("?", 1)[0]
    if method in ("GET", "HEAD") and (path in ("/", "/dev/wallet", "/dev/wallet.js") or path.startswith("/web/")):
        return True
    return method == "POST" and path in ("/dev/wallet/pay", "/dev/wallet/sign")


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.send_header("Cache-Control", cache)
    h.send_header("X-Content-Type-Options", "nosniff")
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def _json(h: BaseHTTPRequestHandler, status: int, data: dict[str, Any]) -> None:
    _send(h, status, json.dumps(data, separators=(",", ":")).encode(), "application/json")


def _error(h: BaseHTTPRequestHandler, status: int, code: str, detail: str) -> None:
    _json(h, status, {"detail": detail, "code": code})


def _static(h: BaseHTTPRequestHandler, path: str) -> None:
    if path == "/":
        body = (WEB_ROOT / "index.html").read_bytes().replace(b"</head>", DEV_SCRIPT_TAG, 1)
        _send(h, 200, body, "text/html; charset=utf-8")
        return
    if path == "/dev/wallet.js":
        _send(h, 200, DEV_WALLET_JS.read_bytes(), "text/javascript; charset=utf-8")
        return
    target = (WEB_ROOT / path[len("/web/") :]).resolve()
    if not target.is_relative_to(WEB_ROOT.resolve()) or not target.is_file():
        _error(h, 404, "not_found", "No such file.")
        return
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix in (".js", ".mjs"):
        ctype = "text/javascript"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    _send(h, 200, target.read_bytes(), ctype)


def _keypair() -> Any:
    from si64.renter import load_or_create_keypair

    state = Path(os.environ.get("SI64_STATE_DIR") or ROOT / ".local")
    return load_or_create_keypair(state / "dev_wallet.json")


def _renter() -> Any:
    from si64.renter import Renter

    return Renter(os.environ.get("SOLANA_RPC_URL", "http://127.0.0.1:8899"))


def _same_origin(h: BaseHTTPRequestHandler) -> bool:
    if h.headers.get(DEV_HEADER) != "1":
        return False
    origin = h.headers.get("Origin")
    return origin is None or origin == f"http://{h.headers.get('Host', '')}"


def _read_json(h: BaseHTTPRequestHandler) -> dict[str, Any] | None:
    raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def pay(recipient: str, lamports: int, memo: str | None, reference: str | None) -> str:
    """A confirmed transfer from the dev wallet. With a reference, Solana Pay's layout: the memo
    instruction first (no accounts), then the transfer carrying the reference as a read-only,
    non-signer account; without one, the transfer then the payer-signed memo (si64.renter)."""
    from solana.rpc.models import TxOpts
    from solders.instruction import AccountMeta, Instruction
    from solders.pubkey import Pubkey
    from solders.transaction import Transaction

    from si64.renter import MEMO_PROGRAM, transfer_instructions

    kp = _keypair()
    with _renter() as r:
        r.top_up(kp.pubkey(), AIRDROP_LAMPORTS, minimum=lamports + 1_000_000)
        ixs = transfer_instructions(kp, recipient, lamports, None if reference else memo)
        if reference:  # Solana Pay's layout: the memo first (no accounts), the transfer last with the reference
            t = ixs[0]
            ref = AccountMeta(Pubkey.from_string(reference), False, False)
            ixs = [Instruction(t.program_id, t.data, [*t.accounts, ref])]
            if memo:
                ixs.insert(0, Instruction(Pubkey.from_string(MEMO_PROGRAM), memo.encode(), []))
        latest = r._blockhash(fresh=True)
        tx = Transaction.new_signed_with_payer(ixs, kp.pubkey(), [kp], latest.blockhash)
        sig = r._run(r.client.send_transaction(tx, opts=TxOpts(preflight_commitment=r.commitment))).value
        r._confirm(sig, "payment", latest.last_valid_block_height)
        return str(sig)


def _wallet_route(h: BaseHTTPRequestHandler, path: str) -> None:
    from solders.pubkey import Pubkey

    if h.command in ("GET", "HEAD"):
        kp = _keypair()
        with _renter() as r:
            balance = r.top_up(kp.pubkey(), AIRDROP_LAMPORTS)
        _json(h, 200, {"address": str(kp.pubkey()), "balance_lamports": balance, "network": "localnet"})
        return
    if not _same_origin(h):
        _read_json(h)
        _error(h, 403, "forbidden", f"The development wallet answers its own page only ({DEV_HEADER}: 1).")
        return
    body = _read_json(h)
    if body is None:
        _error(h, 400, "invalid_request", "A JSON object is expected.")
        return
    if path == "/dev/wallet/sign":
        try:
            message = base64.b64decode(str(body.get("message", "")), validate=True)
        except ValueError:
            _error(h, 400, "invalid_request", "message: base64 expected.")
            return
        kp = _keypair()
        _json(h, 200, {"address": str(kp.pubkey()), "signature": str(kp.sign_message(message))})
        return
    lamports, memo, reference = body.get("lamports"), body.get("memo"), body.get("reference")
    try:
        recipient = str(Pubkey.from_string(str(body.get("recipient"))))
        if reference is not None:
            reference = str(Pubkey.from_string(str(reference)))
    except ValueError:
        _error(h, 400, "invalid_request", "recipient / reference: a base58 public key expected.")
        return
    if isinstance(lamports, bool) or not isinstance(lamports, int) or not 0 < lamports <= MAX_PAY_LAMPORTS:
        _error(h, 400, "invalid_request", "lamports: an integer in 1..100 SOL expected.")
        return
    if memo is not None and (not isinstance(memo, str) or not 0 < len(memo.encode()) <= 256):
        _error(h, 400, "invalid_request", "memo: 1..256 bytes of text expected.")
        return
    try:
        sig = pay(recipient, lamports, memo, reference)
    except Exception as exc:  # noqa: BLE001 - the local chain refused or did not confirm: the page says so
        _error(h, 503, "unavailable", f"The payment did not land: {exc}")
        return
    _json(h, 200, {"tx_signature": sig})


def handle(h: BaseHTTPRequestHandler) -> None:
    """Answer one request whose method and path `handles` accepted."""
    path = h.path.split("?", 1)[0]
    if path.startswith("/dev/wallet") and path != "/dev/wallet.js":
        _wallet_route(h, path)
    else:
        _static(h, path)
