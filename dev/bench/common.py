"""What every part of `make bench` shares: constants, errors, the paying wallet."""

from __future__ import annotations

import sys
from pathlib import Path

from si64.renter import Renter, renter_headers

ROOT = Path(__file__).resolve().parents[2]
BULK_ACTIVE = 300
CAPACITY = 64  # slots per device in the bench stack: 12 devices x 64 = 768
SOL = 10**9
SAMPLE = {"cpu_percent": 37.5, "memory_mb": 6144, "disk_io_mbps": 12.25, "network_io_mbps": 3.5}
ORDER = [
    "health", "pricing", "devices", "rent", "status", "extend", "settle", "metrics",
    "metrics_batch_120", "contract_metrics", "ledger_page", "entries", "stats",
]  # fmt: skip


class BenchError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def price(tier: str, hours: int) -> int:
    from chalicelib.domain import money

    return money.TIERS[tier].lamports_per_hour * hours


class Wallet:
    """One funded keypair paying the treasury through packages/si64/src/si64/renter.py. Each payment carries a
    counter memo, so every transaction (and signature) is distinct; it is not awaited (the
    local chain has executed it when sendTransaction returns)."""

    def __init__(self, rpc_url: str, treasury: str):
        from solders.keypair import Keypair

        self.renter = Renter(rpc_url, blockhash_ttl=20.0)  # a blockhash stays valid ~60 s locally
        self.kp = Keypair()
        self.wallet = str(self.kp.pubkey())
        self.treasury = treasury
        self._n = 0

    def fund(self, lamports: int) -> None:
        self.renter.airdrop(self.kp.pubkey(), lamports)

    def pay(self, lamports: int, terms: str) -> str:
        """Pay `lamports` bound by the memo `terms` (domain.signing.rent_memo / extend_memo)."""
        self._n += 1
        return self.renter.pay(self.kp, self.treasury, lamports, [terms, f"si64-bench-{self._n}"], confirm=False)

    def renter_headers(self, method: str, path: str, body: bytes | str = b"") -> dict:
        return renter_headers(self.kp, method, path, body)

    def close(self) -> None:
        self.renter.close()
