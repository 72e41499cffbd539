"""ports.RefundChain: one suite over the fake (FakeRefundChain) and the real adapter
(RefundChainRpc) on the local LiteSVM chain. It pins what the worker relies on: exact
lamports and the refund memo, a resend lands at most once, a dropped transaction
shows no status until its blockhash expires, refusals and outages are told apart."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chalicelib.domain import refunds as R
from chalicelib.domain.contracts import new_contract_id
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.signing import refund_memo
from tests.support.fakes import FakeRefundChain, new_wallet


@dataclass
class Node:
    port: object
    treasury: str
    wallet: callable  # () -> a recipient that may receive any amount
    balance: callable  # (address) -> lamports
    memo: callable  # (signature) -> the memo text on that transaction
    drop_next: callable
    expire: callable  # (last_valid_block_height) -> None
    refuse: callable  # (address) -> None
    outage: callable  # (on: bool) -> None


def _fake() -> Node:
    ch = FakeRefundChain()

    def wallet():
        w = new_wallet()
        ch.balances[w] = 10**9
        return w

    def expire(lvbh):
        ch.height = max(ch.height, lvbh + 1)

    return Node(
        ch,
        ch.treasury,
        wallet,
        lambda a: ch.balances.get(a, 0),
        lambda s: ch.landed[s].memo,
        lambda: setattr(ch, "drop_sends", 1),
        expire,
        lambda a: ch.refused.__setitem__(a, "InsufficientFundsForRent: account 1"),
        lambda on: setattr(ch, "down", on),
    )


def _local(chain) -> Node:
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

    from chalicelib.adapters.refund_chain import RefundChainRpc
    from chalicelib.adapters.solana_rpc import SolanaRpc
    from chalicelib.adapters.treasury import TreasuryKey

    kp = Keypair()
    chain.fund(kp.pubkey(), 10 * 10**9)
    treasury = TreasuryKey(bytes(kp))
    port = RefundChainRpc(SolanaRpc(chain.rpc_url, timeout=3.0), treasury)

    def wallet():
        w = Keypair().pubkey()
        chain.fund(w, 10**9)
        return str(w)

    def outage(on):
        if on:
            chain.fail_rpc("error")
        else:
            chain.clear_faults()

    return Node(
        port,
        treasury.pubkey,
        wallet,
        lambda a: chain.chain.get_balance(Pubkey.from_string(a)),
        lambda s: chain.chain.get_record(s).memo,
        lambda: chain.drop_transactions(requests=1),
        chain.advance_past_block_height,
        lambda a: chain.refuse_account(a),
        outage,
    )


@pytest.fixture(params=["fake", "local_chain"])
def node(request) -> Node:
    if request.param == "fake":
        return _fake()
    return _local(request.getfixturevalue("chain_controls"))


def _refund(wallet: str, lamports: int) -> R.Refund:
    return R.new_refund(new_contract_id(), wallet, lamports, min_lamports=5000)


def _send(node: Node, r: R.Refund) -> tuple[R.Refund, R.PreparedTransfer]:
    p = node.port.prepare(r, node.port.latest_blockhash())
    return R.mark_sent(r, p.signature, p.last_valid_block_height, p.raw), p


def _verdict(node: Node, r: R.Refund) -> R.Verdict:
    st = node.port.status(r.tx_signature)
    return R.classify(st.value, st.block_height, r.last_valid_block_height)


def test_exact_lamports_memo_fee_and_one_landing_per_bytes(node):
    w = node.wallet()
    r = _refund(w, 1_234_567)
    w0, t0 = node.balance(w), node.balance(node.treasury)
    s, p = _send(node, r)
    assert node.port.send(p.raw) == p.signature
    assert node.port.send(p.raw) == p.signature  # resend: same signature, no second transfer
    assert _verdict(node, s).state == R.LANDED
    fee = node.port.fee(p.signature)
    assert fee == 5000
    assert node.balance(w) - w0 == 1_234_567
    assert t0 - node.balance(node.treasury) == 1_234_567 + fee
    assert node.memo(p.signature).endswith(refund_memo(r.refund_id))


def test_a_dropped_transaction_is_pending_until_its_blockhash_expires(node):
    w = node.wallet()
    r = _refund(w, 2_000_000)
    s, p = _send(node, r)
    node.drop_next()
    assert node.port.send(p.raw) == p.signature
    assert _verdict(node, s).state == R.PENDING
    node.expire(p.last_valid_block_height)
    assert _verdict(node, s).state == R.EXPIRED
    with pytest.raises(Unavailable) as exc:  # its bytes can never land now
        node.port.send(p.raw)
    assert exc.value.reason == "blockhash"
    assert node.port.fee(p.signature) is None


def test_a_refused_recipient_is_refund_refused(node):
    w = node.wallet()
    node.refuse(w)
    s, p = _send(node, _refund(w, 3_000_000))
    with pytest.raises(R.RefundRefused) as exc:
        node.port.send(p.raw)
    assert "InsufficientFundsForRent" in exc.value.reason


def test_an_outage_is_unavailable(node):
    node.outage(True)
    try:
        with pytest.raises(Unavailable):
            node.port.latest_blockhash()
        with pytest.raises(Unavailable):
            node.port.block_height()
    finally:
        node.outage(False)
    assert isinstance(node.port.block_height(), int)
