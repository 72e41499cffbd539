"""The actors of a load run: the fleet (contracts the device agents report for), device
agents, renters and the slot monitor. Every loop is bounded by a deadline and a count.

* ``Fleet``: a few operator wallets rent one contract per agent (each payment bound by its
  memo, ``signing.rent_memo``), spread over the tiers in proportion to their devices.
* ``run_agents``: one ``si64.agent.MetricsReporter`` per contract, on one asyncio loop
  (its HTTP posts go through a bounded thread pool, one keep-alive connection per thread),
  each with the device key of the device its contract is leased on (``stack.json``). The
  samples are synthetic (no psutil per agent: 200 agents must not load the host).
* ``RenterActor``: a thread that rents, reads, extends and settles, paying with ``si64.renter``
  (memos ``rent_memo`` / ``extend_memo``) and settling with ``renter_headers``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from chalicelib.domain import money
from chalicelib.domain.signing import extend_memo, rent_memo
from dev.load.http import Api
from si64.agent import MetricsReporter
from si64.client import Unreachable
from si64.renter import Renter, renter_headers

SOL = 10**9
NO_CAPACITY_RETRIES = 20  # a 409 no_capacity leaves the payment unconsumed: present it again
RETRYABLE = (0, 429, 503)  # no answer, rate limited, unavailable: the same request again is safe


def wait_before_resend(status: int, headers: dict, default: float) -> None:
    """A 429 waits its Retry-After (at most 10 s); anything else `default` seconds."""
    try:
        delay = float(headers.get("retry-after", default)) if status == 429 else default
    except ValueError:
        delay = default
    time.sleep(min(max(delay, 0.1), 10.0))


def unexpected(status: int) -> bool:
    """What the run reports as a problem: anything but success and a 429 (a named, expected refusal)."""
    return status != 429


@dataclass
class Contract:
    contract_id: str
    tier: str
    device_id: str
    owner: str  # wallet
    paid_lamports: int  # what the API accepted payments for (rent + extends)
    settled: dict | None = None  # the settle answer (200)
    settled_at: float | None = None  # time.monotonic() when that answer arrived


@dataclass
class Ledger:
    """What the generator knows it did; compared with the books afterwards."""

    contracts: dict = field(default_factory=dict)  # contract_id -> Contract
    orphans: int = 0  # payments that never became a contract (no capacity until the deadline)
    failures: list = field(default_factory=list)  # one line per unexpected answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, c: Contract) -> None:
        with self.lock:
            self.contracts[c.contract_id] = c

    def fail(self, line: str) -> None:
        with self.lock:
            if len(self.failures) < 200:
                self.failures.append(line)


class Wallet:
    """A funded keypair and its own stock solana-py client (si64.renter.Renter)."""

    def __init__(self, rpc_url: str, treasury: str, name: str):
        from solders.keypair import Keypair

        self.renter = Renter(rpc_url, blockhash_ttl=20.0)
        self.kp, self.treasury, self.name, self._n = Keypair(), treasury, name, 0
        self.address = str(self.kp.pubkey())

    def fund(self, lamports: int) -> None:
        self.renter.airdrop(self.kp.pubkey(), lamports)

    def pay(self, lamports: int, memo: str) -> str:
        """A transfer bound by `memo`, plus a counter memo so every payment is distinct. Not
        awaited: the local chain has executed it when sendTransaction answers (as make bench)."""
        self._n += 1
        return self.renter.pay(
            self.kp, self.treasury, lamports, [memo, f"si64-load-{self.name}-{self._n}"], confirm=False
        )

    def close(self) -> None:
        self.renter.close()


def hours_for(seconds: int) -> float:
    """A duration in hours (multiples of 0.05 h: exact in decimal) covering `seconds`."""
    return float(max(1, -(-seconds // 180)) * Decimal("0.05"))


def seconds_of(hours: float) -> int:
    """What the server makes of `hours` sent as JSON (docs/api.md: round_half_up(hours × 3600))."""
    return money.duration_seconds(Decimal(repr(hours)))


def _why(ans) -> str:
    return f"{ans.get('code')} {ans.get('reason') or ''}".strip() if isinstance(ans, dict) else ""


def rent(
    api: Api, w: Wallet, tier: str, hours: float, ledger: Ledger, deadline: float, op: str = "rent"
) -> Contract | None:
    """Pay and rent. A 409 no_capacity presents the same payment again until `deadline`; no
    answer, a 429 or a 503 sends the same request again (docs/api.md: a retry is safe)."""
    seconds = seconds_of(hours)
    price = money.price_lamports(money.TIERS[tier].lamports_per_hour, seconds)
    sig = w.pay(price, rent_memo(tier, seconds))
    body = {"wallet": w.address, "tier": tier, "duration_hours": hours, "tx_signature": sig}
    for _ in range(NO_CAPACITY_RETRIES):
        status, ans, rh = api.call(op, "POST", "/api/rent", body)
        if status in (200, 201):
            c = Contract(ans["contract_id"], tier, ans["device_id"], w.address, price)
            ledger.add(c)
            return c
        if status in RETRYABLE and unexpected(status):
            ledger.fail(f"{op} {tier} {sig[:12]}: {status} {_why(ans)} (sent again)")
        elif not (status == 409 and isinstance(ans, dict) and ans.get("code") == "no_capacity"):
            ledger.fail(f"{op} {tier} {sig[:12]}: {status} {_why(ans)}")
            return None
        if time.monotonic() > deadline:
            break
        wait_before_resend(status, rh, random.uniform(0.2, 1.0))
    with ledger.lock:
        ledger.orphans += 1
    return None


def settle(api: Api, w: Wallet, c: Contract, ledger: Ledger, op: str = "settle", tries: int = 6) -> bool:
    path = f"/api/contracts/{c.contract_id}/settle"
    for _ in range(tries):
        status, ans, rh = api.call(op, "POST", path, headers=renter_headers(w.kp, "POST", path))
        if status == 200:
            c.settled, c.settled_at = ans, time.monotonic()
            return True
        if unexpected(status):
            ledger.fail(f"{op} {c.contract_id}: {status} {_why(ans)}")
        if status not in RETRYABLE:
            return False
        wait_before_resend(status, rh, 0.5)
    return False


class Fleet:
    """The contracts the device agents report for, rented by `owners` operator wallets."""

    def __init__(self, api: Api, stack: dict, ledger: Ledger, owners: int = 8):
        self.api, self.stack, self.ledger = api, stack, ledger
        self.wallets = [Wallet(stack["rpc_url"], stack["treasury"], f"fleet{i}") for i in range(owners)]
        self.contracts: list[tuple[Wallet, Contract]] = []

    def rent_all(self, device_tiers: list[str], n: int, run_seconds: float, budget: float) -> None:
        hours = hours_for(int(run_seconds) + 600)
        deadline = time.monotonic() + budget
        tiers = [device_tiers[i % len(device_tiers)] for i in range(n)]
        lock = threading.Lock()

        def work(k: int) -> None:
            w = self.wallets[k]
            w.fund(100 * SOL)
            for tier in tiers[k :: len(self.wallets)]:
                if time.monotonic() > deadline:
                    return
                c = rent(self.api, w, tier, hours, self.ledger, deadline, op="rent_fleet")
                if c:
                    with lock:
                        self.contracts.append((w, c))

        with ThreadPoolExecutor(len(self.wallets)) as ex:
            list(ex.map(work, range(len(self.wallets))))

    def settle_all(self, budget: float) -> None:
        deadline = time.monotonic() + budget

        def work(pair):
            w, c = pair
            if time.monotonic() < deadline:
                settle(self.api, w, c, self.ledger, op="settle_fleet")

        with ThreadPoolExecutor(8) as ex:
            list(ex.map(work, self.contracts))

    def close(self) -> None:
        for w in self.wallets:
            w.close()


class SyntheticSampler:
    """What a device reports, without reading the host (MetricsReporter's `sampler`)."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def sample(self) -> dict:
        r = self.rng
        return {
            "timestamp_ms": time.time_ns() // 1_000_000,
            "cpu_percent": round(r.uniform(5, 95), 2),
            "memory_mb": round(r.uniform(1000, 8000), 3),
            "disk_io_mbps": round(r.uniform(0, 50), 3),
            "network_io_mbps": round(r.uniform(0, 20), 3),
        }


def run_agents(
    api: Api,
    device_keys: dict,
    contracts: list[Contract],
    seconds: float,
    *,
    interval: float = 0.5,
    batch_seconds: float = 5.0,
    threads: int = 32,
    stop_grace: float = 60.0,
) -> dict:
    """One MetricsReporter per contract for `seconds`, then stop() and a bounded flush."""

    def transport(method, url, body, headers):
        path = url[len(api.base_url) :]
        status, parsed, rh = api.call("metrics_batch", method, path, body, headers)
        if status == 0:
            raise Unreachable("no answer")
        return status, parsed, rh

    async def main() -> list:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="agent-http"))
        rng = random.Random(7)
        reporters = [
            MetricsReporter(
                api.base_url,
                c.contract_id,
                device_keys[c.device_id],
                interval=interval,
                batch_seconds=batch_seconds,
                timeout=api.timeout,
                sampler=SyntheticSampler(random.Random(rng.random())),
                transport=transport,
            )
            for c in contracts
        ]

        async def one(rep: MetricsReporter):
            await asyncio.sleep(rng.uniform(0, batch_seconds))  # spread the fleet's posts
            return await rep.run()

        tasks = [asyncio.create_task(one(r)) for r in reporters]
        await asyncio.sleep(seconds)
        for r in reporters:
            r.stop()
        done, pending = await asyncio.wait(tasks, timeout=stop_grace)
        for t in pending:
            t.cancel()
        out = []
        for t in tasks:
            if t not in done or t.cancelled():
                out.append("did_not_stop")  # still flushing after the grace period
            elif t.exception() is not None:
                out.append(f"crashed: {type(t.exception()).__name__}: {t.exception()}")
            else:
                out.append(t.result())
        return out

    results = asyncio.run(main())
    reasons: dict = {}
    for r in results:
        key = r if isinstance(r, str) else r.reason
        reasons[key] = reasons.get(key, 0) + 1
    ok = [r for r in results if not isinstance(r, str)]
    return {
        "agents": len(contracts),
        "samples_sent": sum(r.samples_sent for r in ok),
        "batches_sent": sum(r.batches_sent for r in ok),
        "samples_dropped": sum(r.dropped for r in ok),
        "batches_refused": sum(r.rejected for r in ok),
        "failed_posts": sum(r.failures for r in ok),
        "ended_by": reasons,
        "fatal": [r.message for r in ok if r.reason == "fatal"][:10],
    }


class RenterActor:
    """One renter thread: rent → status → extend → settle, again until the deadline, with
    `think` seconds of pause on average between steps."""

    def __init__(
        self,
        api: Api,
        stack: dict,
        ledger: Ledger,
        name: str,
        tiers: list[str],
        seed: int,
        think: float = 0.25,
        max_cycles: int = 1000,
    ):
        self.api, self.ledger, self.tiers, self.think, self.max_cycles = api, ledger, tiers, think, max_cycles
        self.wallet = Wallet(stack["rpc_url"], stack["treasury"], name)
        self.rng = random.Random(seed)
        self.cycles = 0
        self.error: str | None = None
        self.stopped = threading.Event()  # set: no new cycle starts (the ramp's stop)

    def run(self, start_at: float, stop_at: float, hard_stop: float) -> None:
        try:
            self.wallet.fund(20 * SOL)
            time.sleep(max(0.0, start_at - time.monotonic()) + self.rng.uniform(0, 2 * self.think))
            while time.monotonic() < stop_at and self.cycles < self.max_cycles and not self.stopped.is_set():
                self.cycle(hard_stop)
                self.cycles += 1
        except Exception as exc:  # noqa: BLE001 — any crash is reported and fails the run
            self.error = f"{type(exc).__name__}: {exc}"
            self.ledger.fail(f"renter {self.wallet.name}: {self.error}")
        finally:
            self.wallet.close()

    def pause(self) -> None:
        if self.think > 0:
            time.sleep(self.rng.uniform(0, 2 * self.think))

    def cycle(self, hard_stop: float) -> None:
        api, w, rng = self.api, self.wallet, self.rng
        c = rent(api, w, rng.choice(self.tiers), 0.05, self.ledger, hard_stop)
        if c is None:
            return
        path = f"/api/contracts/{c.contract_id}"
        status, ans, _ = api.read("status", path)
        if status != 200:
            self.ledger.fail(f"status {c.contract_id}: {status} {_why(ans)}")
        self.pause()
        extra = seconds_of(0.05)
        price = money.price_lamports(money.TIERS[c.tier].lamports_per_hour, extra)
        body = {"additional_hours": 0.05, "tx_signature": w.pay(price, extend_memo(c.contract_id, extra))}
        for _ in range(6):
            status, ans, rh = api.call("extend", "POST", f"{path}/extend", body)
            if status == 200:
                c.paid_lamports += price
                break
            if unexpected(status):
                self.ledger.fail(f"extend {c.contract_id}: {status} {_why(ans)}")
            if status not in RETRYABLE:
                break
            wait_before_resend(status, rh, 0.5)
        self.pause()
        if settle(api, w, c, self.ledger) and rng.random() < 0.1:
            status, ans, _ = api.call(
                "settle_again", "POST", f"{path}/settle", headers=renter_headers(w.kp, "POST", f"{path}/settle")
            )
            if status == 200 and ans.get("refund_lamports") != c.settled.get("refund_lamports"):
                self.ledger.fail(f"settle again {c.contract_id}: not the first settlement")
            elif status not in (200, 429):
                self.ledger.fail(f"settle again {c.contract_id}: {status} {_why(ans)}")
