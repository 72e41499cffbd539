"""The renter's side of SI64, the one way every local client pays and signs.

Used by `python -m si64.wallet`, `python -m dev.demo`, `make bench`, the stack's
treasury funding and the end-to-end tests. Stock solana-py ``AsyncClient`` and
solders only:

* ``load_or_create_keypair(path)``: a keypair file in solana-keygen format (mode 0600).
* ``Renter(rpc_url)``: a synchronous facade over one ``AsyncClient`` on a private
  event loop: ``airdrop``, ``top_up``, ``pay`` (a system transfer to the treasury with
  an optional Memo program instruction, confirmed), ``balance``, ``status``, ``confirmation``,
  ``transaction`` (a confirmed transaction, jsonParsed).
* ``renter_headers(kp, method, path, body)``: ``X-Wallet`` / ``X-Timestamp`` /
  ``X-Signature`` over ``chalicelib.domain.signing.renter_message`` (the body's hash
  is part of the message when the body is not empty).

A payment binds to a request with a memo of ``chalicelib.domain.signing`` (``rent_memo``,
``extend_memo``) passed as ``memo=``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import si64_protocol as signing

from .client import write_private

MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
LAMPORTS_PER_SOL = signing.LAMPORTS_PER_SOL


class PaymentFailed(RuntimeError):
    """An airdrop or payment was rejected, failed on chain or did not confirm."""


def load_or_create_keypair(path: Path | str):
    """The keypair stored at `path` (a JSON list of 64 ints), created atomically (0600) if missing."""
    from solders.keypair import Keypair

    path = Path(path)
    if path.exists():
        return Keypair.from_bytes(bytes(json.loads(path.read_text())))
    kp = Keypair()
    write_private(path, json.dumps(list(bytes(kp))))
    return kp


def renter_headers(kp, method: str, path: str, body: bytes | str | None = b"", ts: int | None = None) -> dict:
    """The renter's credentials for one request: ed25519 over `signing.renter_message`, base58."""
    ts = int(time.time()) if ts is None else int(ts)
    raw = body.encode() if isinstance(body, str) else (body or b"")
    sig = kp.sign_message(signing.renter_message(method, path, str(ts), raw))
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": str(ts), "X-Signature": str(sig)}


def _pubkey(value):
    from solders.pubkey import Pubkey

    return Pubkey.from_string(value) if isinstance(value, str) else value


def transfer_instructions(
    payer, to, lamports: int, memo: str | Sequence[str] | None = None, references: Sequence[str] = ()
) -> list:
    """A system transfer payer -> `to`, plus a Memo program instruction signed by the payer for
    each memo text (a binding memo, and e.g. a note that makes repeated payments distinct).

    With `references` (a quote's Solana Pay reference keys) it is a Solana Pay transfer as
    wallets build it: each memo first, with no accounts, then the transfer, last, carrying each
    reference as a read-only, non-signer account."""
    from solders.instruction import AccountMeta, Instruction
    from solders.system_program import TransferParams, transfer

    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=_pubkey(to), lamports=lamports))
    texts = [memo] if isinstance(memo, str) else list(memo or ())
    if references:
        refs = [AccountMeta(_pubkey(r), False, False) for r in references]
        memos = [Instruction(_pubkey(MEMO_PROGRAM), t.encode(), []) for t in texts]
        return [*memos, Instruction(ix.program_id, ix.data, [*ix.accounts, *refs])]
    ixs = [ix]
    for text in texts:
        ixs.append(Instruction(_pubkey(MEMO_PROGRAM), text.encode(), [AccountMeta(payer.pubkey(), True, True)]))
    return ixs


class Renter:
    """Stock solana-py `AsyncClient` against one RPC URL, synchronous, on its own event loop.

    `blockhash_ttl` > 0 reuses a fetched blockhash that long (the bench: one RPC call less per
    payment); a payment whose transaction would repeat one already sent (same payer, amount, memo
    and blockhash) waits for the next blockhash instead, so every call yields a new signature.
    """

    def __init__(self, rpc_url: str, *, blockhash_ttl: float = 0.0, poll_seconds: float = 0.1):
        from solana.rpc.async_api import AsyncClient
        from solana.rpc.commitment import Confirmed

        self.rpc_url = rpc_url
        self.commitment = Confirmed
        self.loop = asyncio.new_event_loop()
        self.client = AsyncClient(rpc_url, commitment=Confirmed)
        self.blockhash_ttl = blockhash_ttl
        self.poll_seconds = poll_seconds
        self._latest = None
        self._latest_at = 0.0
        self._sent: set[str] = set()

    def __enter__(self) -> Renter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.client.close())
        finally:
            self.loop.close()

    def _run(self, coro):
        return self.loop.run_until_complete(coro)

    def _confirm(self, sig, what: str, last_valid: int | None = None, check: bool = True):
        resp = self._run(
            self.client.confirm_transaction(
                sig, self.commitment, sleep_seconds=self.poll_seconds, last_valid_block_height=last_valid
            )
        )
        status = resp.value[0]
        if check and (status is None or status.err is not None):
            raise PaymentFailed(f"{what} {sig} did not land: {status}")
        return status

    def airdrop(self, pubkey, lamports: int) -> str:
        """Request an airdrop and wait until it is confirmed; the signature."""
        sig = self._run(self.client.request_airdrop(_pubkey(pubkey), lamports)).value
        self._confirm(sig, "airdrop")
        return str(sig)

    def top_up(self, pubkey, lamports: int, minimum: int | None = None) -> int:
        """Airdrop `lamports` when the account holds less than `minimum` (default: half of it);
        the balance after."""
        if self.balance(pubkey) < (lamports // 2 if minimum is None else minimum):
            self.airdrop(pubkey, lamports)
        return self.balance(pubkey)

    def new_wallet(self, lamports: int = 2 * LAMPORTS_PER_SOL):
        """A fresh keypair holding `lamports`."""
        from solders.keypair import Keypair

        kp = Keypair()
        self.airdrop(kp.pubkey(), lamports)
        return kp

    def _blockhash(self, fresh: bool = False):
        if fresh or self._latest is None or time.monotonic() - self._latest_at > self.blockhash_ttl:
            self._latest = self._run(self.client.get_latest_blockhash(self.commitment)).value
            self._latest_at = time.monotonic()
        return self._latest

    def pay(
        self,
        payer,
        to,
        lamports: int,
        memo: str | Sequence[str] | None = None,
        *,
        skip_preflight: bool = False,
        confirm: bool = True,
        check: bool = True,
        references: Sequence[str] = (),
    ) -> str:
        """Transfer `lamports` from `payer` to `to` (with `memo` when given; with `references`, as
        a Solana Pay transfer: see `transfer_instructions`); the signature.

        confirm: wait until the transaction is confirmed; check: raise PaymentFailed when it
        failed on chain (a test that sends a failing transaction on purpose passes False)."""
        from solana.rpc.models import TxOpts
        from solders.transaction import Transaction

        ixs = transfer_instructions(payer, to, lamports, memo, references)
        latest = self._blockhash()
        deadline = time.monotonic() + 5.0
        while True:
            tx = Transaction.new_signed_with_payer(ixs, payer.pubkey(), [payer], latest.blockhash)
            if str(tx.signatures[0]) not in self._sent:
                break
            if time.monotonic() > deadline:
                raise PaymentFailed("no new blockhash for 5 s: the same payment cannot be sent twice")
            time.sleep(self.poll_seconds)
            latest = self._blockhash(fresh=True)
        opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=self.commitment)
        sig = self._run(self.client.send_transaction(tx, opts=opts)).value
        self._sent.add(str(sig))
        if confirm:
            self._confirm(sig, "payment", latest.last_valid_block_height, check)
        return str(sig)

    def pay_together(self, shares: Sequence[tuple], to, memo: str | None = None) -> str:
        """ONE transaction in which each (keypair, lamports) of `shares` transfers to `to` and
        signs (a co-signed payment; the first pays the fee and signs the memo); confirmed, its
        signature."""
        from solana.rpc.models import TxOpts
        from solders.transaction import Transaction

        first = shares[0][0]
        ixs = transfer_instructions(first, to, shares[0][1], memo)
        for kp, lamports in shares[1:]:
            ixs += transfer_instructions(kp, to, lamports)
        latest = self._blockhash(fresh=True)
        tx = Transaction.new_signed_with_payer(ixs, first.pubkey(), [kp for kp, _ in shares], latest.blockhash)
        opts = TxOpts(preflight_commitment=self.commitment)
        sig = self._run(self.client.send_transaction(tx, opts=opts)).value
        self._confirm(sig, "payment", latest.last_valid_block_height)
        return str(sig)

    def balance(self, pubkey) -> int:
        return self._run(self.client.get_balance(_pubkey(pubkey))).value

    def status(self, sig: str):
        from solders.signature import Signature

        return self._run(self.client.get_signature_statuses([Signature.from_string(sig)])).value[0]

    def confirmation(self, sig: str) -> str | None:
        """ "processed", "confirmed" or "finalized" (None when the node does not know the signature)."""
        status = self.status(sig)
        if status is None or status.confirmation_status is None:
            return None
        return str(status.confirmation_status).rsplit(".", 1)[-1].lower()

    def transaction(self, sig: str) -> dict | None:
        """The confirmed transaction as the node's `getTransaction` jsonParsed result (a dict), or None."""
        from solders.signature import Signature

        resp = self._run(
            self.client.get_transaction(
                Signature.from_string(sig), "jsonParsed", self.commitment, max_supported_transaction_version=0
            )
        )
        return json.loads(resp.to_json()).get("result")
