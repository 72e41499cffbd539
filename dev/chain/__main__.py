"""CLI: ``python -m dev.chain [--host 127.0.0.1] [--port 8899] [--slot-ms 400] [--timing instant|real]
[--drop-rate 0.1]``.

``--timing real`` (default ``$SI64_CHAIN_TIMING`` or ``instant``): confirmed one slot and
finalized 32 slots after a transaction lands, instead of at once. ``--drop-rate``
(default ``$SI64_CHAIN_DROP_RATE`` or 0): the share of sent transactions that are dropped
after preflight and never land.

Prints ``local chain ready rpc=http://HOST:PORT ws=ws://HOST:PORT+1`` once both
ports listen; SIGTERM or SIGINT stops it and frees both ports.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .core import TIMING, Chain
from .server import ChainServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.chain", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SI64_RPC_PORT", "8899")),
        help="JSON-RPC port; the WebSocket listens on port+1 (default $SI64_RPC_PORT or 8899)",
    )
    parser.add_argument("--slot-ms", type=int, default=400, help="milliseconds per slot (default 400)")
    parser.add_argument(
        "--timing",
        choices=sorted(TIMING),
        default=os.environ.get("SI64_CHAIN_TIMING") or "instant",
        help="instant: finalized at once; real: confirmed after 1 slot, finalized after 32 ($SI64_CHAIN_TIMING)",
    )
    parser.add_argument(
        "--drop-rate",
        type=float,
        default=float(os.environ.get("SI64_CHAIN_DROP_RATE") or 0),
        help="share of sent transactions dropped after preflight, 0 <= r < 1 (default $SI64_CHAIN_DROP_RATE or 0)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        chain = Chain(slot_seconds=args.slot_ms / 1000, timing=args.timing, drop_rate=args.drop_rate)
        server = ChainServer(args.host, args.port, chain=chain).start()
    except (OSError, ValueError) as exc:
        print(f"local chain failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    extra = f" timing={args.timing}" if args.timing != "instant" else ""
    extra += f" drop_rate={args.drop_rate:g}" if args.drop_rate else ""
    print(f"local chain ready rpc={server.rpc_url} ws={server.ws_url}{extra}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
