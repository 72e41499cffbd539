"""The device agent signs its batches: receipts chained from seq 0, the same receipt on a retry,
the chain resumed after a restart, the key file (0600) and `si64 devices keygen`.

The API is `ReceiptApi`, a transport that keeps receipts as docs/api.md says the server does
(replay of the same seq and message: 200, stored once; out of sequence: 409 receipt_sequence;
a signature that does not verify: 401 reason receipt). No sockets."""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from si64 import agent as ag
from si64 import cli
from si64.client import OpsError, Unreachable
from si64.device_receipts import ReceiptChain, chain_path, device_key_path, load_or_create_device_key
from si64_protocol.receipts import GENESIS_PREV, chain_problem, message_sha256, receipt_message, samples_sha256

CID = "CTR-x"


class Sampler:
    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.t, self.lock = start, threading.Lock()

    def sample(self) -> dict[str, Any]:
        with self.lock:
            self.t += 500
            return {
                "timestamp_ms": self.t,
                "cpu_percent": 1.0,
                "memory_mb": 1.0,
                "disk_io_mbps": 0.0,
                "network_io_mbps": 0.0,
            }


class ReceiptApi:
    """POST /api/metrics/CTR-x as the server keeps receipts; `fail(n, body)` decides per post."""

    def __init__(self, pubkey: Pubkey, stop_after: int = 4) -> None:
        self.pubkey, self.stop_after = pubkey, stop_after
        self.stored: list[dict[str, Any]] = []  # receipts, in seq order
        self.samples: list[list[dict[str, Any]]] = []
        self.posts: list[dict[str, Any]] = []
        self.replays = 0
        self.fault: Any = None  # fault(n_post, body) -> None | exception to raise | (status, body)

    def __call__(self, method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        self.posts.append(json.loads(json.dumps(body)))
        n = len(self.posts)
        out = None if self.fault is None else self.fault(n, body)
        if isinstance(out, Exception):
            raise out
        lose_answer = out == ("store-then-lose",)
        if out is not None and not lose_answer:
            return out
        r = body.get("receipt")
        if r is None:
            return 401, {"code": "unauthorized", "detail": "no receipt", "reason": "receipt"}, {}
        msg = receipt_message(CID, r["seq"], r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
        if not Signature.from_string(r["signature"]).verify(self.pubkey, msg.encode()):
            return 401, {"code": "unauthorized", "detail": "bad receipt", "reason": "receipt"}, {}
        if r["samples_sha256"] != samples_sha256(body["samples"]):
            return 401, {"code": "unauthorized", "detail": "samples differ", "reason": "receipt"}, {}
        if r["seq"] < len(self.stored) and self.stored[r["seq"]] == r:
            self.replays += 1
        else:
            prev = GENESIS_PREV if not self.stored else _msg_hash(self.stored[-1])
            if r["seq"] != len(self.stored) or r["prev_sha256"] != prev:
                return 409, {"code": "receipt_sequence", "detail": f"expected seq {len(self.stored)}"}, {}
            self.stored.append(r)
            self.samples.append(body["samples"])
        if lose_answer:
            raise Unreachable("timed out")  # stored, but the answer never came back
        if len(self.stored) > self.stop_after:
            return 409, {"code": "contract_not_active", "detail": "ended"}, {}
        return 200, {"cost_so_far_lamports": 1}, {}


def _msg_hash(r: dict[str, Any]) -> str:
    return message_sha256(
        receipt_message(CID, r["seq"], r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
    )


def _reporter(transport: Any, chain: ReceiptChain | None, **kw: Any) -> ag.MetricsReporter:
    kw.setdefault("interval", 0.002)
    kw.setdefault("batch_seconds", 0.02)
    return ag.MetricsReporter(
        "http://api.test",
        CID,
        "dk",
        sampler=kw.pop("sampler", Sampler()),
        transport=transport,
        backoff=ag.Backoff(base=0.005, cap=0.01, rng=random.Random(1)),
        chain=chain,
        **kw,
    )


def _run(r: ag.MetricsReporter) -> ag.Result:
    return asyncio.run(asyncio.wait_for(r.run(), 60))


def test_signed_batches_form_one_chain_from_seq_0_over_the_samples_sent(tmp_path: Path) -> None:
    kp = Keypair()
    api = ReceiptApi(kp.pubkey())
    result = _run(_reporter(api, ReceiptChain(CID, kp, tmp_path / "c.json")))
    assert result.reason == "contract_ended"
    assert [r["seq"] for r in api.stored] == list(range(len(api.stored))) and len(api.stored) == 5
    assert chain_problem(CID, api.stored) is None
    for r, samples in zip(api.stored, api.samples, strict=True):
        assert r["from_ms"] == samples[0]["timestamp_ms"] and r["to_ms"] == samples[-1]["timestamp_ms"]
        assert r["samples_sha256"] == samples_sha256(samples)
    stamps = [s["timestamp_ms"] for b in api.samples for s in b]
    assert stamps == sorted(set(stamps))  # every sample once, in order


def test_without_a_key_batches_carry_no_receipt() -> None:
    bodies: list[dict[str, Any]] = []

    def transport(method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        bodies.append(body)
        if len(bodies) > 2:
            return 409, {"code": "contract_not_active", "detail": "ended"}, {}
        return 200, {}, {}

    _run(_reporter(transport, None))
    assert bodies and all(set(b) == {"samples"} for b in bodies)


def test_a_batch_resent_after_timeouts_carries_the_same_receipt_and_samples(tmp_path: Path) -> None:
    kp = Keypair()
    api = ReceiptApi(kp.pubkey(), stop_after=2)
    # post 1 is stored but its answer is lost, posts 2-3 time out: all three are the same batch
    api.fault = lambda n, body: ("store-then-lose",) if n == 1 else (Unreachable("timed out") if n <= 3 else None)
    _run(_reporter(api, ReceiptChain(CID, kp, tmp_path / "c.json")))
    first = api.posts[0]
    assert api.posts[1] == first and api.posts[2] == first and api.posts[3] == first  # the buffer grew meanwhile
    assert api.replays == 1  # the 4th post reached the server again: a replay, stored once
    assert api.posts[4]["receipt"]["seq"] == 1
    assert chain_problem(CID, api.stored) is None and len(api.stored) == 3


def test_a_restarted_agent_resends_its_pending_receipt_then_continues_the_chain(tmp_path: Path) -> None:
    kp = Keypair()
    state = tmp_path / "chain.json"
    api = ReceiptApi(kp.pubkey(), stop_after=100)

    async def first_run() -> None:
        # from the 3rd batch (seq 2) on, each batch is stored and its answer lost; set before the run,
        # by seq, so the agent cannot send seq 2 before the fault is in place
        api.fault = lambda n, body: ("store-then-lose",) if body["receipt"]["seq"] >= 2 else None
        r = _reporter(api, ReceiptChain(CID, kp, state))
        task = asyncio.create_task(r.run())
        while len(api.stored) < 3:
            await asyncio.sleep(0.005)
        r.stop()  # the agent dies with seq 2 pending
        await task

    asyncio.run(asyncio.wait_for(first_run(), 60))
    pending = json.loads(state.read_text())["pending"]
    assert pending["receipt"] == api.stored[2]
    api.fault, api.stop_after = None, 4
    n_before = len(api.posts)
    restarted = ReceiptChain(CID, kp, state)  # a new process: state from the file only
    assert restarted.next_seq == 3 and restarted.pending is not None
    result = _run(_reporter(api, restarted, sampler=Sampler(start=1_800_000_000_000)))
    assert result.reason == "contract_ended"
    assert api.posts[n_before]["receipt"] == pending["receipt"] and api.posts[n_before]["samples"] == pending["samples"]
    assert api.replays >= 1
    assert chain_problem(CID, api.stored) is None and len(api.stored) == 5  # no fork, no gap


def test_a_refused_batch_gives_its_seq_to_the_next_batch(tmp_path: Path) -> None:
    kp = Keypair()
    api = ReceiptApi(kp.pubkey(), stop_after=2)
    bad: tuple[int, dict[str, str], dict[str, str]] = (
        400,
        {"code": "invalid_request", "detail": "bad sample", "reason": "samples[0]"},
        {},
    )
    api.fault = lambda n, body: bad if n == 1 else None
    result = _run(_reporter(api, ReceiptChain(CID, kp, tmp_path / "c.json")))
    assert result.rejected >= 1 and api.posts[0]["receipt"]["seq"] == 0 == api.posts[1]["receipt"]["seq"]
    assert api.posts[1]["samples"] != api.posts[0]["samples"]
    assert chain_problem(CID, api.stored) is None


def test_receipt_sequence_409_stops_the_agent_with_an_error(tmp_path: Path) -> None:
    kp = Keypair()
    api = ReceiptApi(kp.pubkey())
    other = ReceiptChain(CID, Keypair())  # the server already holds a receipt this agent never signed
    api.stored.append(other.sign([Sampler().sample()]).receipt)
    result = _run(_reporter(api, ReceiptChain(CID, kp, tmp_path / "c.json")))
    assert result.reason == "fatal" and result.exit_code == 1 and "receipt_sequence" in result.message


def test_key_and_chain_files_are_private_and_reused(tmp_path: Path) -> None:
    path = device_key_path("M2-01", base=tmp_path)
    kp, created = load_or_create_device_key(path)
    again, created_again = load_or_create_device_key(path)
    assert created and not created_again and again.pubkey() == kp.pubkey()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    chain = ReceiptChain(CID, kp, chain_path(path, CID))
    chain.sign([Sampler().sample()])
    assert stat.S_IMODE(os.stat(chain_path(path, CID)).st_mode) == 0o600
    with pytest.raises(OpsError, match="another contract or key"):
        ReceiptChain(CID, Keypair(), chain_path(path, CID))


def test_devices_keygen_prints_the_public_key_once_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SI64_STATE_DIR", str(tmp_path))
    assert cli.main(["devices", "keygen", "THOR-01"]) == 0
    out, err = capsys.readouterr()
    key_file = tmp_path / "devices" / "THOR-01" / "keypair.json"
    kp = Keypair.from_bytes(bytes(json.loads(key_file.read_text())))
    assert out.strip() == str(kp.pubkey()) and "new key" in err and "set-key THOR-01" in err
    assert cli.main(["devices", "keygen", "THOR-01"]) == 0
    out2, err2 = capsys.readouterr()
    assert out2 == out and "existing key" in err2


def test_an_unsigned_agent_of_a_keyed_device_is_told_to_sign() -> None:
    api = ReceiptApi(Keypair().pubkey())
    result = _run(_reporter(api, None))
    assert result.reason == "fatal" and result.exit_code == 1
    assert "401 unauthorized: no receipt (this device has a registered signing key: run the agent with --sign)" in (
        result.message
    )
