"""The operator ports, fakes and real adapters through the same cases:
RefundListing.by_status (DynamoDB on moto: the sparse refunds-by-status indexes),
DeadLetters.redrive (SQS on moto) and ChainHistory (the local LiteSVM chain)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain import refunds as R
from chalicelib.domain.errors import InvalidRequest, Unavailable
from chalicelib.domain.records import Claim
from tests.contract.conftest import REGION
from tests.contract.test_storage import NOW, new_contract, rent, spec
from tests.support.fakes import FakeRefundChain, FakeRefundQueue, FakeRpc, new_signature, new_wallet


# ------------------------------------------------------------ refunds by status
def _settled(store, device: str, at_ms: int, refund_min: int = 5_000) -> dc.Contract:
    c = rent(store, new_contract(device))
    after = dc.finalize(c, now_ms=at_ms, refund_min_lamports=refund_min)
    store.tx.end_rental(c, after, ledger.settlement_postings(after))
    return after


def _orphan_refund(store, lamports: int, at_ms: int) -> R.Refund:
    sig, wallet = new_signature(), new_wallet()
    r = R.new_refund(R.payment_refund_id(sig, wallet), wallet, lamports, min_lamports=5000)
    store.refunds.open_payment_refund(
        Claim(sig, "refund", r.refund_id, wallet, f"refund:{wallet}", {}),
        r,
        ledger.orphan_payment_postings(r.refund_id, lamports, sig, at_ms),
        at_ms,
    )
    return r


def test_payment_refunds_owed_are_the_queued_and_sent_ones_booked_before_a_time_oldest_first(store):
    store.devices.upsert(spec("dev-1"), 10)
    _settled(store, "dev-1", NOW + 1_000)  # a contract's refund: never listed here
    p1 = _orphan_refund(store, 900_000, NOW + 500)
    p2 = _orphan_refund(store, 800_000, NOW + 600)
    _orphan_refund(store, 10, NOW + 650)  # DUST: nothing owed
    p3 = _orphan_refund(store, 700_000, NOW + 700)
    late = _orphan_refund(store, 600_000, NOW + 9_000)  # booked after the cut-off
    sent = R.mark_sent(store.refunds.get(p2.refund_id), new_signature(), 1_000)
    store.refunds.advance(store.refunds.get(p2.refund_id), sent, [], NOW + 800)
    r3 = store.refunds.get(p3.refund_id)
    store.refunds.advance(r3, R.fail(r3, "InsufficientFundsForRent: account 1"), [], NOW + 800)  # FAILED: an operator's
    owed = store.refunds.payment_refunds_owed(NOW + 5_000, 10)
    assert [(r.refund_id, r.status) for r in owed] == [(p1.refund_id, R.QUEUED), (p2.refund_id, R.SENT)]
    assert [r.refund_id for r in store.refunds.payment_refunds_owed(NOW + 5_000, 1)] == [p1.refund_id]
    assert late.refund_id in {r.refund_id for r in store.refunds.payment_refunds_owed(NOW + 9_000, 10)}


def test_by_status_lists_contract_refunds_then_payment_refunds_newest_first_in_pages(store):
    store.devices.upsert(spec("dev-1"), 10)
    rent(store, new_contract("dev-1"))  # ACTIVE: never listed
    a = _settled(store, "dev-1", NOW + 1_000)
    b = _settled(store, "dev-1", NOW + 2_000)
    c = _settled(store, "dev-1", NOW + 3_000)
    p1 = _orphan_refund(store, 900_000, NOW + 500)
    p2 = _orphan_refund(store, 800_000, NOW + 600)
    dust = _orphan_refund(store, 10, NOW + 700)
    # one refund failed: it leaves QUEUED for FAILED
    r = store.refunds.get(b.contract_id)
    failed = R.fail(r, "InsufficientFundsForRent: account 1")
    store.refunds.advance(r, failed, [], NOW + 4_000)

    seen, token, pages = [], None, 0
    while True:
        page, token = store.refunds.by_status(R.QUEUED, 2, token)
        pages += 1
        seen += page
        if not token:
            break
    assert [x.refund_id for x in seen] == [c.contract_id, a.contract_id, p2.refund_id, p1.refund_id]
    assert pages <= 3
    got = {x.refund_id: x for x in seen}
    assert (got[a.contract_id].wallet, got[a.contract_id].lamports, got[a.contract_id].version) == (
        a.wallet,
        a.refund_lamports,
        a.version,
    )
    assert (got[p1.refund_id].wallet, got[p1.refund_id].lamports) == (p1.wallet, 900_000)

    [f], none = store.refunds.by_status(R.FAILED, 10, None)
    assert none is None and (f.refund_id, f.reason, f.status) == (b.contract_id, failed.reason, R.FAILED)
    assert [x.refund_id for x in store.refunds.by_status(R.DUST, 10, None)[0]] == [dust.refund_id]
    assert store.refunds.by_status(R.CONFIRMED, 10, None) == ([], None)
    with pytest.raises(InvalidRequest):
        store.refunds.by_status(R.QUEUED, 2, "bm90LWEtdG9rZW4")
    _, queued_token = store.refunds.by_status(R.QUEUED, 1, None)
    with pytest.raises(InvalidRequest):  # a token of another status
        store.refunds.by_status(R.FAILED, 1, queued_token)


# ------------------------------------------------------------ the dead-letter queue
@pytest.fixture(params=["fake", pytest.param("sqs", marks=pytest.mark.moto)])
def dlq(request):
    """(port, put a dead letter, bodies in the refund queue, dead letters left, a port that is down)."""
    if request.param == "fake":
        q, down = FakeRefundQueue(), FakeRefundQueue()
        down.down = True
        return (q, q.dead_letters.append, lambda: list(q.messages), lambda: len(q.dead_letters), down)
    from chalicelib.adapters.queue import RefundQueue

    sqs = request.getfixturevalue("moto_sqs")
    name = f"si64-redrive-{uuid.uuid4().hex[:8]}"
    q_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    d_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    port = RefundQueue(None, name, REGION, None, None, f"{name}-dlq")

    def drain(url):
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def left():
        a = sqs.get_queue_attributes(QueueUrl=d_url, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    return (
        port,
        lambda body: sqs.send_message(QueueUrl=d_url, MessageBody=json.dumps(body)),
        lambda: drain(q_url),
        left,
        RefundQueue(None, "si64-no-such", REGION, None, None, "si64-no-such-dlq"),
    )


def test_redrive_moves_dead_letters_back_bounded_and_says_how_many(dlq):
    port, put, moved_bodies, left, down = dlq
    assert port.redrive(10) == 0
    bodies = [{"refund_id": f"CTR-{i}", "contract_id": f"CTR-{i}", "version": i} for i in range(13)]
    for b in bodies:
        put(b)
    assert port.redrive(12) == 12  # more than one receive of 10
    assert left() == 1
    assert port.redrive(12) == 1 and left() == 0
    assert sorted(moved_bodies(), key=lambda b: b["version"]) == bodies
    with pytest.raises(Unavailable):
        down.redrive(5)


# ------------------------------------------------------------ the chain's history
@dataclass
class History:
    port: object
    treasury: str
    pay: callable  # (lamports) -> (payer, signature): payer → treasury, signed by the payer
    refund: callable  # (wallet, lamports) -> signature: treasury → wallet, signed by the treasury


def _fake_history() -> History:
    from tests.support.fake_history import FakeChainHistory

    chain = FakeRefundChain()
    rpc = FakeRpc(chain.treasury)
    h = FakeChainHistory(rpc, chain)

    def pay(lamports):
        payer = new_wallet()
        return payer, rpc.pay(payer, lamports, memo="si64 contract test")

    def refund(wallet, lamports):
        p = chain.prepare(
            R.new_refund(dc.new_contract_id(), wallet, lamports, min_lamports=1), chain.latest_blockhash()
        )
        return chain.send(p.raw)

    return History(h, chain.treasury, pay, refund)


def _local_history(chain) -> History:
    from solders.keypair import Keypair

    from chalicelib.adapters.chain_history import ChainHistoryRpc
    from chalicelib.adapters.refund_chain import RefundChainRpc
    from chalicelib.adapters.solana_rpc import SolanaRpc
    from chalicelib.adapters.treasury import TreasuryKey

    rpc = SolanaRpc(chain.rpc_url, timeout=3.0)
    kp = Keypair()
    chain.fund(kp.pubkey(), 10 * 10**9)
    treasury = str(kp.pubkey())

    def send_from(key: Keypair, to: str, lamports: int) -> str:
        # a RefundChainRpc signed by `key` is a plain System transfer + memo from `key`
        port = RefundChainRpc(rpc, TreasuryKey(bytes(key)))
        p = port.prepare(R.new_refund(dc.new_contract_id(), to, lamports, min_lamports=1), port.latest_blockhash())
        return port.send(p.raw)

    def pay(lamports):
        payer = Keypair()
        chain.fund(payer.pubkey(), 10**9)
        return str(payer.pubkey()), send_from(payer, treasury, lamports)

    return History(ChainHistoryRpc(rpc), treasury, pay, lambda w, n: send_from(kp, w, n))


@pytest.fixture(params=["fake", "local_chain"])
def history(request) -> History:
    if request.param == "fake":
        return _fake_history()
    return _local_history(request.getfixturevalue("chain_controls"))


def test_history_shows_payments_and_refunds_with_balances_newest_first(history):
    h = history
    start, slot0 = h.port.balance(h.treasury)
    payer, paid = h.pay(1_234_567)
    wallet = new_wallet()
    sent = h.refund(wallet, 1_000_000)
    now, slot1 = h.port.balance(h.treasury)
    assert slot1 >= slot0
    assert now - start == 1_234_567 - 1_000_000 - 5000

    newest = h.port.signatures(h.treasury, None, 2)
    assert [s.signature for s in newest] == [sent, paid]
    assert all(not s.failed and s.slot >= 1 for s in newest)
    older = h.port.signatures(h.treasury, paid, 1000)
    assert paid not in [s.signature for s in older] and len(older) >= 1  # at least the funding

    t = h.port.transaction(paid)
    assert t.signature == paid and not t.failed and payer in t.signers and h.treasury not in t.signers
    assert [(x.source, x.destination, x.lamports) for x in t.transfers] == [(payer, h.treasury, 1_234_567)]
    assert t.delta(h.treasury) == 1_234_567 and t.fee == 5000
    assert t.post_balance(h.treasury) - t.pre_balance(h.treasury) == 1_234_567

    r = h.port.transaction(sent)
    assert r.signers[0] == h.treasury and r.delta(h.treasury) == -1_005_000
    assert [(x.source, x.destination, x.lamports) for x in r.transfers] == [(h.treasury, wallet, 1_000_000)]
    assert any(m.startswith("si64:refund:CTR-") for m in r.memos)
    assert h.port.transaction(new_signature()) is None
