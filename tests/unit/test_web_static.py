"""dev/web_static.py without sockets: which paths it takes from the API, the dev wallet's
same-origin rule, and the static files it will and will not serve."""

from __future__ import annotations

import io
import json
from email.message import Message

import pytest

from dev import web_static


class FakeHandler:
    """What web_static uses of a BaseHTTPRequestHandler, recorded."""

    def __init__(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.command, self.path = method, path
        self.headers = Message()
        for k, v in (headers or {}).items():
            self.headers[k] = v
        self.headers["Content-Length"] = str(len(body))
        self.rfile, self.wfile = io.BytesIO(body), io.BytesIO()
        self.status: int | None = None
        self.sent: dict[str, str] = {}

    def send_response(self, status: int) -> None:
        self.status = status

    def send_header(self, k: str, v: str) -> None:
        self.sent[k] = v

    def end_headers(self) -> None:
        pass


@pytest.mark.parametrize(
    "method, path, taken",
    [
        ("GET", "/", True),
        ("HEAD", "/", True),
        ("GET", "/?x=1", True),
        ("GET", "/web/app.js", True),
        ("GET", "/dev/wallet", True),
        ("GET", "/dev/wallet.js", True),
        ("POST", "/dev/wallet/pay", True),
        ("POST", "/dev/wallet/sign", True),
        ("GET", "/dev/wallet/pay", False),
        ("GET", "/dev/walletx", False),
        ("POST", "/", False),
        ("POST", "/dev/wallet", False),
        ("OPTIONS", "/dev/wallet/pay", False),
        ("GET", "/api/health", False),
        ("GET", "/api/web/x", False),
    ],
)
def test_which_requests_it_takes(method, path, taken):
    assert web_static.handles(method, path) is taken


@pytest.mark.parametrize(
    "headers, ok",
    [
        ({}, False),
        ({"X-SI64-Dev-Wallet": "0", "Host": "127.0.0.1:8000"}, False),
        ({"X-SI64-Dev-Wallet": "1", "Host": "127.0.0.1:8000"}, True),
        ({"X-SI64-Dev-Wallet": "1", "Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"}, True),
        ({"X-SI64-Dev-Wallet": "1", "Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:9000"}, False),
        ({"X-SI64-Dev-Wallet": "1", "Host": "127.0.0.1:8000", "Origin": "null"}, False),
    ],
)
def test_the_dev_wallet_answers_its_own_page_only(headers, ok, monkeypatch, tmp_path):
    monkeypatch.setenv("SI64_STATE_DIR", str(tmp_path))  # its keypair, never the user's .local/
    h = FakeHandler("POST", "/dev/wallet/sign", headers, b'{"message": "aGk="}')
    assert web_static._same_origin(h) is ok  # type: ignore[arg-type]
    web_static.handle(h)  # type: ignore[arg-type]
    assert h.status == (200 if ok else 403)


def test_a_refused_payment_request_never_reaches_the_chain(monkeypatch):
    def no_chain(*args: object) -> str:
        raise AssertionError("paid")

    monkeypatch.setattr(web_static, "pay", no_chain)
    own = {"X-SI64-Dev-Wallet": "1", "Host": "h"}
    recipient = "11111111111111111111111111111111"
    for body, status in [
        ({"recipient": recipient, "lamports": 0}, 400),
        ({"recipient": recipient, "lamports": 10**12}, 400),
        ({"recipient": recipient, "lamports": 1.5}, 400),
        ({"recipient": "not-a-key", "lamports": 1000}, 400),
        ({"recipient": recipient, "lamports": 1000, "reference": "nope"}, 400),
        ({"recipient": recipient, "lamports": 1000, "memo": ""}, 400),
        ({"recipient": recipient, "lamports": 1000, "memo": "x" * 257}, 400),
    ]:
        h = FakeHandler("POST", "/dev/wallet/pay", own, json.dumps(body).encode())
        web_static.handle(h)  # type: ignore[arg-type]
        assert h.status == status, body
    h = FakeHandler("POST", "/dev/wallet/pay", {**own, "Origin": "http://evil.example"}, b"{}")
    web_static.handle(h)  # type: ignore[arg-type]
    assert h.status == 403


@pytest.mark.parametrize("path", ["/web/../app.py", "/web/../../etc/passwd", "/web/", "/web/nope.js", "/web/vendor"])
def test_nothing_outside_web_is_served(path):
    h = FakeHandler("GET", path)
    web_static.handle(h)  # type: ignore[arg-type]
    assert h.status == 404


def test_the_page_loads_the_dev_wallet_and_its_modules_are_javascript():
    h = FakeHandler("GET", "/")
    web_static.handle(h)  # type: ignore[arg-type]
    assert h.status == 200 and h.wfile.getvalue().count(b'<script type="module" src="/dev/wallet.js">') == 1
    h = FakeHandler("GET", "/web/app.js")
    web_static.handle(h)  # type: ignore[arg-type]
    assert h.status == 200 and h.sent["Content-Type"] == "text/javascript; charset=utf-8"
    assert (web_static.WEB_ROOT / "index.html").read_text().count("/dev/wallet.js") == 0  # S3 serves no dev wallet
