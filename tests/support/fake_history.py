"""`ports.ChainHistory` over the two chain fakes: payments landed on a `FakeRpc`
and refund transfers landed by a `FakeRefundChain` are one history of the treasury, in the
order they landed, with the treasury's balance before and after each (what a node's
preBalances/postBalances say). The treasury is funded first by a faucet transfer, as
`make run` does with an airdrop: its funding is in the history and not in the ledger.

`FakeChainHistory(rpc, refund_chain, funding=…)` follows what lands on both (their `on_land`
hooks), so it must be built before anything lands. `down` makes every call Unavailable.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.payments import Transfer
from chalicelib.domain.reconcile import ChainTx, SignatureInfo, summarize
from tests.support.fake_chain import FakeRefundChain, FakeRpc, RefundTransfer, new_signature, new_wallet, payment_tx

FUNDING = 1_000 * 10**9


class FakeChainHistory:
    def __init__(self, rpc: FakeRpc, refund_chain: FakeRefundChain, funding: int = FUNDING) -> None:
        if rpc.treasury != refund_chain.treasury:
            raise ValueError("the payment node and the refund chain must share the treasury")
        self.rpc, self.refunds, self.treasury = rpc, refund_chain, rpc.treasury
        self.log: list[ChainTx] = []  # oldest first
        self.lamports = 0
        self.down = False
        self.calls: list[str] = []
        self.others: dict[str, list[ChainTx]] = {}  # the payments touching each other address, oldest first

        def landed_payment(sig: str) -> None:
            raw = rpc.landed[sig].tx
            tx = summarize(sig, raw)
            for key in raw["transaction"]["message"]["accountKeys"]:
                if key != self.treasury:  # any other address (a payer, a Solana Pay reference)
                    self.others.setdefault(key, []).append(replace(tx, slot=raw["slot"]))
            self._record(tx, payment=True)

        def landed_refund(t: RefundTransfer) -> None:
            self._record(
                ChainTx(
                    t.signature,
                    0,
                    rpc.now_s(),
                    t.err is not None,
                    (self.treasury,),
                    () if t.err is not None else (Transfer(t.source, t.destination, t.lamports),),
                    (t.memo,),
                    t.fee,
                ),
                payment=False,
            )

        rpc.on_land.append(landed_payment)
        refund_chain.on_land.append(landed_refund)
        self.faucet = new_wallet()
        self.funding_signature = rpc.land(
            payment_tx(
                new_signature(),
                signers=[self.faucet],
                transfers=[(self.faucet, self.treasury, funding)],
                block_time=rpc.now_s(),
            )
        )

    def _record(self, tx: ChainTx, *, payment: bool) -> None:
        if payment and self.treasury not in {k for t in tx.transfers for k in (t.source, t.destination)}:
            return  # a transfer elsewhere is not in the treasury's history
        delta = -tx.fee if self.treasury in tx.signers else 0
        if not tx.failed:
            delta += sum(t.lamports for t in tx.transfers if t.destination == self.treasury)
            delta -= sum(t.lamports for t in tx.transfers if t.source == self.treasury)
        before = self.lamports
        self.lamports += delta
        slot = len(self.log) + 1
        self.log.append(
            ChainTx(
                tx.signature,
                slot,
                tx.block_time,
                tx.failed,
                tx.signers,
                tx.transfers,
                tx.memos,
                tx.fee,
                {self.treasury: (before, self.lamports)},
            )
        )

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.down:
            raise Unavailable(f"Solana RPC unreachable ({method})", reason="rpc")

    # -- the port ----------------------------------------------------------------
    def balance(self, address: str) -> tuple[int, int]:
        self._enter("balance")
        if address != self.treasury:
            raise ValueError("this fake knows the treasury's balance only")
        return self.lamports, len(self.log)

    def signatures(self, address: str, before: str | None, limit: int) -> list[SignatureInfo]:
        self._enter("signatures")
        txs = list(reversed(self.log if address == self.treasury else self.others.get(address, [])))
        if before is not None:
            idx = next((i for i, t in enumerate(txs) if t.signature == before), None)
            txs = [] if idx is None else txs[idx + 1 :]
        return [
            SignatureInfo(t.signature, t.slot, t.block_time, t.failed, "; ".join(t.memos) or None) for t in txs[:limit]
        ]

    def transaction(self, signature: str) -> ChainTx | None:
        self._enter("transaction")
        found = next((t for t in self.log if t.signature == signature), None)
        return found or next((t for ts in self.others.values() for t in ts if t.signature == signature), None)
