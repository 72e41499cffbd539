"""Local Solana chain: a JSON-RPC + pub/sub front for LiteSVM that stock clients use like devnet.

    python -m dev.chain --host 127.0.0.1 --port 8899     # WebSocket on 8900

or in-process::

    from dev.chain import ChainServer
    server = ChainServer("127.0.0.1", 0).start()
    ...
    server.stop()

Behaviour (slots, blockhash window, commitment, failures, duplicates) is
described in ``dev/chain/core.py``.
"""

from .core import LAMPORTS_PER_SIGNATURE, MAX_PROCESSING_AGE, Chain, RpcError
from .server import ChainServer

__all__ = ["ChainServer", "Chain", "RpcError", "LAMPORTS_PER_SIGNATURE", "MAX_PROCESSING_AGE"]
