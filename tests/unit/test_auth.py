"""services/auth.py: the renter signs domain.signing.renter_message (with the body hash
when there is a body); the operator presents the admin key. On fakes: no sockets."""

from __future__ import annotations

import hashlib

import pytest
from solders.keypair import Keypair

from chalicelib.adapters.signatures import verify_ed25519
from chalicelib.api import schemas
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.signing import renter_message
from chalicelib.services.auth import Auth, RenterCredentials

NOW_MS = 1_764_070_000_000
PATH = "/api/contracts/CTR-abcdefghijklmnopqrstuv/settle"


class AdminKey:
    def is_admin(self, presented):
        return presented == "k"


class NoDevices:
    def get(self, device_id):
        return None


def auth(verify=verify_ed25519) -> Auth:
    return Auth(secrets=AdminKey(), clock=lambda: NOW_MS, verify_signature=verify, devices=NoDevices())


def creds(kp: Keypair, message: bytes, ts: str) -> RenterCredentials:
    return RenterCredentials(str(kp.pubkey()), ts, str(kp.sign_message(message)))


TS = str(NOW_MS // 1000)


def test_empty_body_signs_the_plain_message():
    kp = Keypair()
    assert renter_message("POST", PATH, TS) == f"si64:POST {PATH}:{TS}".encode()
    assert auth().renter(creds(kp, renter_message("POST", PATH, TS), TS), "POST", PATH, b"") == str(kp.pubkey())


def test_a_body_is_bound_by_its_hash():
    kp, body = Keypair(), b'{"reason": "done"}'
    signed = renter_message("POST", PATH, TS, body)
    assert signed == f"si64:POST {PATH}:{TS}:{hashlib.sha256(body).hexdigest()}".encode()
    assert auth().renter(creds(kp, signed, TS), "POST", PATH, body) == str(kp.pubkey())
    with pytest.raises(Unauthorized) as exc:  # the same signature does not cover another body
        auth().renter(creds(kp, signed, TS), "POST", PATH, b'{"reason": "other"}')
    assert exc.value.reason == "X-Signature"
    with pytest.raises(Unauthorized):  # nor does a signature without the hash cover a body
        auth().renter(creds(kp, renter_message("POST", PATH, TS), TS), "POST", PATH, body)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"wallet": "not-a-key"}, "X-Wallet"),
        ({"timestamp": "yesterday"}, "X-Timestamp"),
        ({"timestamp": "\u00b2"}, "X-Timestamp"),  # a digit to str.isdigit(), not to int()
        ({"timestamp": str(NOW_MS // 1000 - 301)}, "expired"),
        ({"timestamp": str(NOW_MS // 1000 + 301)}, "expired"),
        ({"signature": "x"}, "X-Signature"),
    ],
)
def test_refusals_name_the_check(change, reason):
    kp = Keypair()
    good = creds(kp, renter_message("POST", PATH, TS), TS)
    with pytest.raises(Unauthorized) as exc:
        auth().renter(RenterCredentials(**{**good.__dict__, **change}), "POST", PATH)
    assert exc.value.reason == reason


def test_the_verifier_is_a_port():
    seen = []

    def verify(pubkey, message, signature):
        seen.append(message)
        return True

    kp = Keypair()
    auth(verify).renter(RenterCredentials(str(kp.pubkey()), TS, str(kp.sign_message(b"x"))), "POST", PATH, b"{}")
    assert seen == [renter_message("POST", PATH, TS, b"{}")]


def test_missing_headers_are_refused_at_the_edge():
    with pytest.raises(Unauthorized) as exc:
        schemas.renter_credentials({"x-wallet": "w", "x-timestamp": "1"})
    assert exc.value.reason == "missing"


def test_admin():
    auth().admin("k")
    with pytest.raises(Unauthorized) as exc:
        auth().admin(None)
    assert exc.value.reason == "X-Admin-Key"
