"""Auth on fakes: renter credentials (signing string, body hash, ±300 s window, ASCII digits only)
and the operator key. Real ed25519 (solders, in-process); the clock and secrets are fakes."""

from __future__ import annotations

import hashlib

import pytest
from solders.keypair import Keypair

from chalicelib.adapters.signatures import verify_ed25519
from chalicelib.config import Settings
from chalicelib.domain.commands import RenterCredentials
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.signing import renter_message
from chalicelib.services.auth import Auth
from tests.support.fakes import FakeClock, FakePorts

from .conftest import ADMIN_KEY

PATH = "/api/contracts/CTR-abcdefghijklmnopqrstuv/settle"
CLOCK = FakeClock()
NOW = str(CLOCK() // 1000)


class Recording:
    """A verifier that records what it was asked and delegates to ed25519."""

    def __init__(self):
        self.asked: list[tuple[str, bytes, str]] = []

    def __call__(self, pubkey, message, signature):
        self.asked.append((pubkey, message, signature))
        return verify_ed25519(pubkey, message, signature)


def make(admin_key=ADMIN_KEY, verify=None) -> Auth:
    """The container's Auth on fakes (its window from the default settings: ±300 s)."""
    ports = FakePorts.build(admin_key=admin_key, clock=CLOCK)
    return ports.container(Settings(), verify_signature=verify or verify_ed25519).auth


def signed(kp: Keypair, ts: str = NOW, method="POST", path=PATH, body=b"") -> RenterCredentials:
    return RenterCredentials(str(kp.pubkey()), ts, str(kp.sign_message(renter_message(method, path, ts, body))))


def test_a_signed_request_names_its_wallet_and_the_exact_string_was_checked():
    kp, rec = Keypair(), Recording()
    assert make(verify=rec).renter(signed(kp), "POST", PATH) == str(kp.pubkey())
    assert rec.asked[0][1] == f"si64:POST {PATH}:{NOW}".encode()


def test_a_body_is_covered_by_its_hash():
    kp, body, rec = Keypair(), b'{"additional_hours": 1}', Recording()
    assert make(verify=rec).renter(signed(kp, body=body), "POST", PATH, body) == str(kp.pubkey())
    assert rec.asked[0][1] == f"si64:POST {PATH}:{NOW}:{hashlib.sha256(body).hexdigest()}".encode()
    for other in (b'{"additional_hours": 2}', b""):
        with pytest.raises(Unauthorized) as exc:
            make().renter(signed(kp, body=body), "POST", PATH, other)
        assert exc.value.reason == "X-Signature"


@pytest.mark.parametrize("method, path", [("GET", PATH), ("POST", PATH.replace("settle", "extend"))])
def test_a_signature_is_for_one_method_and_path(method, path):
    kp = Keypair()
    with pytest.raises(Unauthorized):
        make().renter(signed(kp, method=method, path=path), "POST", PATH)


@pytest.mark.parametrize("offset, ok", [(-300, True), (300, True), (-301, False), (301, False)])
def test_the_window_is_300_seconds_either_way(offset, ok):
    kp = Keypair()
    creds = signed(kp, ts=str(int(NOW) + offset))
    if ok:
        assert make().renter(creds, "POST", PATH) == str(kp.pubkey())
    else:
        with pytest.raises(Unauthorized) as exc:
            make().renter(creds, "POST", PATH)
        assert exc.value.reason == "expired"


@pytest.mark.parametrize(
    "ts",
    [
        "\u00b2",
        "\uff11\uff17\uff16\uff14",
        "\u0661\u0667\u0666\u0664",
        "1764000000.0",
        "-1764000000",
        " 1764000000",
        "",
        "1" * 13,
    ],
)
def test_a_timestamp_that_is_not_ascii_unix_seconds_is_refused_before_the_signature(ts):
    rec = Recording()
    with pytest.raises(Unauthorized) as exc:
        make(verify=rec).renter(signed(Keypair(), ts=ts), "POST", PATH)
    assert exc.value.reason == "X-Timestamp" and rec.asked == []


def test_a_wallet_that_is_not_a_public_key_is_refused():
    kp = Keypair()
    good = signed(kp)
    with pytest.raises(Unauthorized) as exc:
        make().renter(RenterCredentials("not-base58-0OIl", good.timestamp, good.signature), "POST", PATH)
    assert exc.value.reason == "X-Wallet"


def test_a_signature_by_another_key_or_malformed_is_refused():
    kp, other, rec = Keypair(), Keypair(), Recording()
    forged = RenterCredentials(str(kp.pubkey()), NOW, signed(other).signature)
    with pytest.raises(Unauthorized) as exc:
        make(verify=rec).renter(forged, "POST", PATH)
    assert exc.value.reason == "X-Signature" and len(rec.asked) == 1
    with pytest.raises(Unauthorized) as exc:
        make(verify=rec).renter(RenterCredentials(str(kp.pubkey()), NOW, "x"), "POST", PATH)
    assert exc.value.reason == "X-Signature" and len(rec.asked) == 1  # a malformed one is not even verified


def test_admin_key():
    make().admin(ADMIN_KEY)
    for presented in (None, "", ADMIN_KEY + "x", ADMIN_KEY[:-1], ADMIN_KEY.upper()):
        with pytest.raises(Unauthorized) as exc:
            make().admin(presented)
        assert exc.value.reason == "X-Admin-Key"


def test_no_admin_key_configured_admits_nobody():
    for presented in (None, "", "anything"):
        with pytest.raises(Unauthorized):
            make(admin_key=None).admin(presented)
