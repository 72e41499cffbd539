"""Webhooks, the pure part: URL and event checks, the SSRF address rule, the HMAC signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chalicelib.domain import webhooks as W
from chalicelib.domain.errors import InvalidRequest


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata endpoint
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::5",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "100.64.0.1",  # carrier-grade NAT: not global
        "224.0.0.1",
        "not-an-ip",
    ],
)
def test_private_loopback_link_local_addresses_are_refused(address):
    assert W.refused_address(address) is not None
    with pytest.raises(InvalidRequest):
        W.check_delivery_addresses([address], allow_local=False)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"])
def test_public_addresses_pass(address):
    assert W.refused_address(address) is None
    W.check_delivery_addresses([address], allow_local=False)


def test_one_private_address_among_public_ones_refuses_the_delivery():
    with pytest.raises(InvalidRequest):
        W.check_delivery_addresses(["1.1.1.1", "10.0.0.1"], allow_local=False)


def test_locally_private_addresses_are_allowed_but_nothing_resolved_is_not():
    W.check_delivery_addresses(["127.0.0.1"], allow_local=True)
    with pytest.raises(InvalidRequest):
        W.check_delivery_addresses([], allow_local=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # http in production
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/x",
        "https://user:pw@hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https:///nohost",
        "https://hooks.example.com/x#frag",
        "https://hooks.example.com/ x",
        "https://hooks.example.com:99999/x",
        "",
        None,
        7,
        "https://h.example/" + "a" * W.MAX_URL_CHARS,
    ],
)
def test_bad_or_private_urls_are_refused_in_production(url):
    with pytest.raises(InvalidRequest) as err:
        W.check_url(url, allow_local=False)
    assert err.value.reason == "url"


def test_production_accepts_https_to_a_name_and_local_accepts_http_loopback():
    assert W.check_url("https://hooks.example.com/si64?x=1", allow_local=False) == "https://hooks.example.com/si64?x=1"
    assert W.check_url("http://127.0.0.1:9999/hook", allow_local=True) == "http://127.0.0.1:9999/hook"
    with pytest.raises(InvalidRequest):
        W.check_url("ftp://127.0.0.1/x", allow_local=True)


def test_events_must_be_known_and_non_empty():
    assert W.check_events(["contract.settled", "refund.failed", "contract.settled"]) == (
        "contract.settled",
        "refund.failed",
    )
    for bad in ([], None, "contract.settled", ["contract.nope"], [1]):
        with pytest.raises(InvalidRequest) as err:
            W.check_events(bad)
        assert err.value.reason == "events"


def test_signature_is_hmac_sha256_of_t_dot_raw_body_and_verifies():
    body = b'{"id":"evt_1","type":"contract.settled","created":1700000000,"data":{}}'
    header = W.signature_header("whsec_abc", 1_700_000_000, body)
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert W.verify_signature("whsec_abc", header, body, now_s=1_700_000_010)


@pytest.mark.parametrize(
    "secret,header,body,now",
    [
        ("whsec_other", None, b"{}", 1_700_000_000),  # another secret
        ("whsec_abc", "tampered", b"{}", 1_700_000_000),
        ("whsec_abc", None, b'{"x":1}', 1_700_000_000),  # another body
        ("whsec_abc", None, b"{}", 1_700_000_000 + W.SIGNATURE_TOLERANCE_SECONDS + 1),  # too late: a replay
    ],
)
def test_signature_refuses_another_secret_body_or_an_old_timestamp(secret, header, body, now):
    good = W.signature_header("whsec_abc", 1_700_000_000, b"{}")
    assert not W.verify_signature(secret, good if header is None else header, body, now_s=now)


def test_public_view_never_shows_the_secret():
    w = W.Webhook("WH-1", "admin", "https://h.example/", ("contract.settled",), "whsec_s", 1_700_000_000_123)
    view = W.public_view(w)
    assert "secret" not in view and "whsec_s" not in repr(view)
    assert view == {
        "webhook_id": "WH-1",
        "url": "https://h.example/",
        "events": ["contract.settled"],
        "created_at": 1_700_000_000,
    }
