"""Device metrics agent: sample the host, post batches to ``POST /api/metrics/{contract_id}``.

Importable::

    from si64.agent import MetricsReporter
    result = asyncio.run(MetricsReporter(api_url, contract_id, device_key).run())

* Samples CPU %, memory (MB used), disk and network I/O (MB/s, 1 MB = 10^6 bytes)
  every ``interval`` seconds (default 0.5) with psutil. I/O figures are real
  deltas of the kernel's byte counters over the interval, divided by the
  interval actually measured (monotonic clock); a counter that went backwards
  (reset, hot-unplug) counts as 0 for that interval. ``timestamp_ms`` is the
  wall-clock time of the sample.
* Never blocks its event loop: psutil reads and HTTP calls run in the default
  thread executor; the loop only schedules.
* Batches: every ``batch_seconds`` (default 5) the buffered samples are posted
  as ``{"samples": [...]}`` in chunks of at most 120 (docs/api.md). A backlog after an
  outage goes out in consecutive full batches.
* While the API is unreachable (connection errors, 5xx, 429) the sender retries
  with exponential backoff and full jitter (``Backoff``), and samples keep going
  into a bounded buffer (``SampleBuffer``): when full, the oldest sample is
  dropped and counted. A batch that was stored but whose answer was lost is
  stored once only: the API keys a batch by its first timestamp and a digest.
* Stops cleanly when the contract ends (409 ``contract_not_active``), and with
  an error on 401/403/404 (wrong key, device not leased to the contract, unknown
  contract): retrying those cannot help. A 400 drops that batch (counted).
* With a ``ReceiptChain`` (``si64 agent --sign``: si64/device_receipts.py) each batch carries
  the device-signed ``receipt``: the batch is signed and persisted once, then sent and resent
  exactly as signed until the API stores it (a retry or a restart is a replay, never a new
  ``seq``). A 409 ``receipt_sequence`` (the API's chain head is not ours) stops with an error.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .client import Unreachable, http_json
from .device_receipts import ReceiptChain

MAX_BATCH = 120  # docs/api.md: a batch holds at most 120 samples
MB = 1_000_000


# ------------------------------------------------------------------ sampling
class Sampler:
    """Per-interval deltas from psutil's cumulative counters. ``ps`` is psutil (or a stand-in)."""

    def __init__(
        self,
        ps=None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ):
        if ps is None:
            import psutil as ps
        self.ps, self.clock, self.wall_ms = ps, clock, wall_ms
        self._last: tuple[float, int | None, int | None] | None = None
        self.disk_available = self.net_available = True
        self.prime()

    def _disk_bytes(self) -> int | None:
        c = self.ps.disk_io_counters()
        return None if c is None else int(c.read_bytes) + int(c.write_bytes)

    def _net_bytes(self) -> int | None:
        c = self.ps.net_io_counters()
        return None if c is None else int(c.bytes_sent) + int(c.bytes_recv)

    def prime(self) -> None:
        self.ps.cpu_percent(interval=None)  # starts psutil's own interval for the next call
        self._last = (self.clock(), self._disk_bytes(), self._net_bytes())

    @staticmethod
    def _rate(now_b: int | None, last_b: int | None, dt: float) -> float:
        if now_b is None or last_b is None or dt <= 0:
            return 0.0
        delta = now_b - last_b
        return round(max(delta, 0) / dt / MB, 6)

    def sample(self) -> dict:
        """One sample covering the time since the previous call (or since prime())."""
        t = self.clock()
        disk, net = self._disk_bytes(), self._net_bytes()
        cpu = self.ps.cpu_percent(interval=None)  # system-wide %, since the previous call: never sleeps
        mem = self.ps.virtual_memory()
        last_t, last_disk, last_net = self._last
        dt = t - last_t
        self._last = (t, disk, net)
        self.disk_available, self.net_available = disk is not None, net is not None
        return {
            "timestamp_ms": self.wall_ms(),
            "cpu_percent": round(min(max(float(cpu), 0.0), 100.0), 2),
            "memory_mb": round((int(mem.total) - int(mem.available)) / MB, 3),
            "disk_io_mbps": self._rate(disk, last_disk, dt),
            "network_io_mbps": self._rate(net, last_net, dt),
        }


# ------------------------------------------------------------------ buffer and backoff
class SampleBuffer:
    """Bounded FIFO of samples. Full → the oldest is dropped and counted. Acked by sequence number."""

    def __init__(self, maxlen: int):
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.maxlen = maxlen
        self._q: collections.deque[tuple[int, dict]] = collections.deque()
        self._seq = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._q)

    def add(self, sample: dict) -> None:
        if len(self._q) >= self.maxlen:
            self._q.popleft()
            self.dropped += 1
        self._seq += 1
        self._q.append((self._seq, sample))

    def peek(self, n: int) -> tuple[int, list[dict]]:
        """The oldest ≤ n samples and the sequence number of the last one (0 if none)."""
        items = [self._q[i] for i in range(min(n, len(self._q)))]
        return (items[-1][0] if items else 0), [s for _, s in items]

    def ack(self, upto_seq: int) -> int:
        """Forget every sample up to ``upto_seq`` (some may already have been dropped). Returns how many."""
        n = 0
        while self._q and self._q[0][0] <= upto_seq:
            self._q.popleft()
            n += 1
        return n


class Backoff:
    """Exponential backoff with full jitter: the k-th consecutive failure waits U(0, min(cap, base·2^k))."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base, self.cap, self.rng = base, cap, rng or random.Random()
        self.failures = 0

    def ceiling(self) -> float:
        return min(self.cap, self.base * (2 ** min(self.failures, 30)))

    def next_delay(self) -> float:
        delay = self.rng.uniform(0, self.ceiling())
        self.failures += 1
        return max(delay, self.base / 10)  # never a hot loop

    def reset(self) -> None:
        self.failures = 0


# ------------------------------------------------------------------ reporter
class AgentStop(Exception):
    """The agent must stop; ``fatal`` says whether that is an error (exit 1) or a clean end (exit 0)."""

    def __init__(self, message: str, fatal: bool):
        super().__init__(message)
        self.fatal = fatal


@dataclass
class Result:
    reason: str  # "contract_ended" | "stopped" | "fatal"
    message: str
    samples_sent: int = 0
    batches_sent: int = 0
    dropped: int = 0
    rejected: int = 0
    failures: int = 0
    last_response: dict | None = None
    stats: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.reason == "fatal" else 0


Transport = Callable[[str, str, dict, dict], tuple[int, Any, dict]]  # (method, url, body, headers)


def _urllib_transport(timeout: float) -> Transport:
    def post(method, url, body, headers):
        return http_json(method, url, body, headers, timeout=timeout)

    return post


class MetricsReporter:
    def __init__(
        self,
        api_url: str,
        contract_id: str,
        device_key: str,
        *,
        interval: float = 0.5,
        batch_seconds: float = 5.0,
        max_buffer: int = 6000,
        timeout: float = 10.0,
        sampler: Sampler | None = None,
        transport: Transport | None = None,
        backoff: Backoff | None = None,
        log: Callable[[str], None] | None = None,
        sleep=asyncio.sleep,
        chain: ReceiptChain | None = None,
    ):
        if interval <= 0 or batch_seconds <= 0:
            raise ValueError("interval and batch_seconds must be positive")
        self.url = f"{api_url.rstrip('/')}/api/metrics/{contract_id}"
        self.contract_id, self.device_key = contract_id, device_key
        self.interval, self.batch_seconds = interval, batch_seconds
        self.buffer = SampleBuffer(max_buffer)
        self._sampler = sampler
        self.transport = transport or _urllib_transport(timeout)
        self.backoff = backoff or Backoff(base=min(0.5, batch_seconds), cap=30.0)
        self.log = log or (lambda msg: None)
        self.sleep = sleep
        self.result = Result("stopped", "")
        self._stop = asyncio.Event()
        self._ended: AgentStop | None = None
        self._wake: asyncio.Event | None = None
        self.chain = chain
        self._pending_upto = 0  # the buffer's sequence number of the pending signed batch's last sample

    # -- control
    def stop(self) -> None:
        """Ask run() to flush what it can and return (safe from a signal handler in the loop)."""
        self._stop.set()

    # -- one POST, classified
    async def _post(self, samples: list[dict], receipt: dict | None = None) -> dict:
        body: dict[str, Any] = {"samples": samples}
        if receipt is not None:
            body["receipt"] = receipt
        headers = {"X-Device-Key": self.device_key}
        status, parsed, rh = await asyncio.get_running_loop().run_in_executor(
            None, self.transport, "POST", self.url, body, headers
        )
        code = parsed.get("code") if isinstance(parsed, dict) else None
        detail = parsed.get("detail") if isinstance(parsed, dict) else parsed
        if 200 <= status < 300:
            return parsed if isinstance(parsed, dict) else {}
        if status == 409 and code == "contract_not_active":
            raise AgentStop(f"contract {self.contract_id} has ended (409 contract_not_active)", fatal=False)
        reason = parsed.get("reason") if isinstance(parsed, dict) else None
        if status == 409 and "receipt_sequence" in (code, reason):
            raise AgentStop(
                f"409 receipt_sequence: {detail} (the API's receipt chain of {self.contract_id} is not this "
                "agent's: was its chain state lost or the key used elsewhere?)",
                fatal=True,
            )
        if status in (401, 403, 404):
            hint = " (this device has a registered signing key: run the agent with --sign)"
            hint = hint if status == 401 and reason == "receipt" and self.chain is None else ""
            raise AgentStop(f"{status} {code or ''}: {detail}{hint}".replace("  ", " "), fatal=True)
        if status in (400, 413):
            raise _Refused(f"{status} {code}: {detail}")
        retry_after = None
        if status == 429:
            for k, v in rh.items():
                if k.lower() == "retry-after":
                    try:
                        retry_after = float(v)
                    except ValueError:
                        pass
        raise _Retry(f"{status} {code or ''}: {detail}", retry_after)

    async def send_ready(self) -> None:
        """Post everything buffered, in batches of ≤ 120; on a retryable failure, back off and retry."""
        while (len(self.buffer) or self._pending_batch()) and not self._ended:
            seq, batch, receipt = self._next_batch()
            try:
                answer = await self._post(batch, receipt)
            except AgentStop as stop:
                self._ended = stop
                return
            except _Refused as exc:  # the API refused this batch: drop it, say so, carry on
                if self.chain is not None:
                    self.chain.refused()
                self.result.rejected += self.buffer.ack(seq)
                self.log(f"batch of {len(batch)} samples refused and dropped: {exc}")
                continue
            except (_Retry, Unreachable) as exc:
                self.result.failures += 1
                delay = self.backoff.next_delay()
                if isinstance(exc, _Retry) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                self.log(
                    f"post failed ({exc}); retry #{self.backoff.failures} in {delay:.2f} s, "
                    f"{len(self.buffer)} samples buffered, {self.buffer.dropped} dropped so far"
                )
                if await self._wait(delay):
                    return
                continue
            self.backoff.reset()
            if self.chain is not None:
                self.chain.acknowledged()
            self.buffer.ack(seq)
            self.result.samples_sent += len(batch)
            self.result.batches_sent += 1
            self.result.last_response = answer

    def _pending_batch(self) -> bool:
        return self.chain is not None and self.chain.pending is not None

    def _next_batch(self) -> tuple[int, list[dict], dict | None]:
        """(buffer sequence number to ack, samples, receipt) of the batch to send now. Signed, a
        batch is frozen: the pending one (of this run, or persisted by an earlier run, whose samples
        are no longer in the buffer: nothing to ack) goes out again exactly as signed."""
        if self.chain is None:
            seq, batch = self.buffer.peek(MAX_BATCH)
            return seq, batch, None
        if self.chain.pending is None:
            self._pending_upto, batch = self.buffer.peek(MAX_BATCH)
            self.chain.sign(batch)
        pending = self.chain.pending
        assert pending is not None
        return self._pending_upto, pending.samples, pending.receipt

    async def _wait(self, seconds: float) -> bool:
        """Sleep, but wake early on stop. True if stopping."""
        if self._stop.is_set():
            return True
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return False

    async def _sample_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sampler is None:
            self._sampler = await loop.run_in_executor(None, Sampler)
        next_at = loop.time() + self.interval
        while not self._stop.is_set() and not self._ended:
            if await self._wait(max(0.0, next_at - loop.time())):
                return
            sample = await loop.run_in_executor(None, self._sampler.sample)
            self.buffer.add(sample)
            next_at += self.interval
            if next_at < loop.time():  # fell behind (suspended host): skip, do not burst
                next_at = loop.time() + self.interval

    async def _send_loop(self) -> None:
        while not self._ended:
            stopping = await self._wait(self.batch_seconds)
            await self.send_ready()
            if stopping or self._stop.is_set():
                return

    async def run(self) -> Result:
        sampler = asyncio.create_task(self._sample_loop())
        sender = asyncio.create_task(self._send_loop())
        try:
            done, _ = await asyncio.wait({sampler, sender}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()  # surface a crash of either loop
            self._stop.set()
            await asyncio.gather(sampler, sender)
        finally:
            for t in (sampler, sender):
                t.cancel()
        r = self.result
        r.dropped = self.buffer.dropped
        r.stats = {"buffered_unsent": len(self.buffer)}
        totals = (
            f"{r.samples_sent} samples in {r.batches_sent} batches sent, {r.dropped} dropped, "
            f"{r.rejected} refused, {r.failures} failed posts"
        )
        if self._ended is not None:
            r.reason = "fatal" if self._ended.fatal else "contract_ended"
            r.message = f"{self._ended}; agent stopped: {totals}"
        else:
            r.reason = "stopped"
            r.message = f"agent stopped: {totals}, {len(self.buffer)} unsent"
        return r


class _Refused(Exception):
    """The API refused a batch as malformed (400/413): resending it cannot help."""


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after
