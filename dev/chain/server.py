"""HTTP JSON-RPC (port P) and WebSocket pub/sub (port P+1) servers for the local chain.

``ChainServer(host, port).start()`` runs both in background threads; ``stop()``
closes both listening sockets and every open connection. ``port=0`` picks a
free pair of consecutive ports.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.pubkey import Pubkey

from .core import Chain, RpcError, TxRecord
from .encode import encode_account
from .rpc import RpcMethods

log = logging.getLogger("dev.chain")

MAX_BODY = 8 * 1024 * 1024


# ------------------------------------------------------------------------ HTTP
class _RpcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "si64-local-chain/1"
    timeout = 120  # idle keep-alive connections are closed after this

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(413, b'{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request"},"id":null}')
            return
        body = self.rfile.read(length)
        status, out = self.server.rpc.handle_http(body)  # type: ignore[attr-defined]
        if status == 0:  # test control "disconnect": no answer at all
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(status, out or b"")

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/health":
            self._send(200, b"ok", "text/plain")
        else:
            self._send(405, b"Used HTTP Method is not allowed. POST or OPTIONS is required", "text/plain")

    def do_OPTIONS(self) -> None:
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, solana-client")
        self.send_header("Access-Control-Max-Age", "86400")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("http %s - %s", self.address_string(), fmt % args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, rpc: RpcMethods):
        self.rpc = rpc
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _RpcHandler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass


# ------------------------------------------------------------------- WebSocket
_NO_NOTIFICATIONS = {
    "slotSubscribe": "slotUnsubscribe",
    "rootSubscribe": "rootUnsubscribe",
    "logsSubscribe": "logsUnsubscribe",
    "programSubscribe": "programUnsubscribe",
    "blockSubscribe": "blockUnsubscribe",
    "slotsUpdatesSubscribe": "slotsUpdatesUnsubscribe",
    "voteSubscribe": "voteUnsubscribe",
}


class _PubSub:
    """Solana pub/sub: ``signatureSubscribe`` (one-shot, fired when the transaction lands or at once
    if it already has), ``accountSubscribe`` (fired when a landed transaction touches the account);
    the other subscriptions are accepted and never fire."""

    def __init__(self, chain: Chain, loop: asyncio.AbstractEventLoop):
        self.chain = chain
        self.loop = loop
        self._next_id = 0
        self.sig_subs: dict[str, dict[int, tuple[Any, str | None]]] = defaultdict(dict)
        self.sig_waiting: dict[int, Any] = {}  # landed, not yet at the subscription's commitment
        self.account_subs: dict[str, dict[int, tuple[Any, dict]]] = defaultdict(dict)
        self.other_subs: dict[int, Any] = {}
        chain.add_listener(self._from_chain_thread)

    def close(self) -> None:
        self.chain.remove_listener(self._from_chain_thread)

    def _from_chain_thread(self, record: TxRecord) -> None:
        self.loop.call_soon_threadsafe(self._on_record, record)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @staticmethod
    def _sig_note(sub_id: int, record: TxRecord) -> str:
        return json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "signatureNotification",
                "params": {
                    "result": {"context": {"slot": record.slot}, "value": {"err": record.err}},
                    "subscription": sub_id,
                },
            }
        )

    def _account_note(self, sub_id: int, key: str, cfg: dict) -> str:
        acc = self.chain.get_account(Pubkey.from_string(key))
        try:
            value = (
                encode_account(acc, cfg.get("encoding") or "base58")
                if acc is not None
                else {
                    "data": ["", cfg.get("encoding") or "base58"],
                    "executable": False,
                    "lamports": 0,
                    "owner": "11111111111111111111111111111111",
                    "rentEpoch": 0,
                    "space": 0,
                }
            )
        except RpcError:
            value = None
        return json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "accountNotification",
                "params": {"result": {"context": {"slot": self.chain.slot()}, "value": value}, "subscription": sub_id},
            }
        )

    def _on_record(self, record: TxRecord) -> None:
        for sub_id, (ws, commitment) in self.sig_subs.pop(record.signature, {}).items():
            self._notify_at(sub_id, ws, record, commitment)
        for key in dict.fromkeys(record.keys):
            for sub_id, (ws, cfg) in list(self.account_subs.get(key, {}).items()):
                asyncio.ensure_future(self._safe_send(ws, self._account_note(sub_id, key, cfg)))

    @staticmethod
    async def _safe_send(ws, text: str) -> None:
        try:
            await ws.send(text)
        except Exception:  # noqa: BLE001 - a subscriber that went away
            pass

    def _notify_at(self, sub_id: int, ws, record: TxRecord, commitment: str | None) -> None:
        """Notify once `record` reached `commitment` (at once on the instant chain); checked
        every slot meanwhile, until then or until the subscription is dropped."""
        if self.chain.reached(record, commitment):
            self.sig_waiting.pop(sub_id, None)
            asyncio.ensure_future(self._safe_send(ws, self._sig_note(sub_id, record)))
            return
        self.sig_waiting[sub_id] = ws

        def again() -> None:
            if sub_id in self.sig_waiting:
                self._notify_at(sub_id, ws, record, commitment)

        self.loop.call_later(min(self.chain.slot_seconds, 0.5), again)

    def _drop(self, sub_id: int) -> bool:
        found = self.other_subs.pop(sub_id, None) is not None
        found = self.sig_waiting.pop(sub_id, None) is not None or found
        for table in (self.sig_subs, self.account_subs):
            for key in list(table):
                if table[key].pop(sub_id, None) is not None:
                    found = True
                if not table[key]:
                    del table[key]
        return found

    async def handler(self, ws) -> None:
        mine: set[int] = set()
        try:
            async for message in ws:
                try:
                    req = json.loads(message)
                except ValueError:
                    await ws.send(
                        json.dumps({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
                    )
                    continue
                for item in req if isinstance(req, list) else [req]:
                    await self._handle(ws, item, mine)
        except Exception:  # noqa: BLE001 - connection closed or broken
            pass
        finally:
            for sub_id in mine:
                self._drop(sub_id)

    async def _handle(self, ws, req: Any, mine: set[int]) -> None:
        if not isinstance(req, dict) or "id" not in req:
            return  # notifications such as web3.js's heartbeat "ping" get no answer
        req_id, method, params = req.get("id"), req.get("method"), req.get("params") or []
        after: str | None = None
        try:
            if method == "signatureSubscribe":
                signature = str(params[0])
                commitment = params[1].get("commitment") if len(params) > 1 and isinstance(params[1], dict) else None
                sub_id = self._new_id()
                record = self.chain.get_record(signature)
                if record is not None and self.chain.reached(record, commitment):
                    after = self._sig_note(sub_id, record)  # already there: notify at once, one-shot
                elif record is not None:  # landed, not yet at the commitment asked for
                    mine.add(sub_id)
                    self._notify_at(sub_id, ws, record, commitment)
                else:
                    self.sig_subs[signature][sub_id] = (ws, commitment)
                    mine.add(sub_id)
                result: Any = sub_id
            elif method == "accountSubscribe":
                key = str(Pubkey.from_string(str(params[0])))
                cfg = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
                sub_id = self._new_id()
                self.account_subs[key][sub_id] = (ws, cfg)
                mine.add(sub_id)
                result = sub_id
            elif method in _NO_NOTIFICATIONS:
                sub_id = self._new_id()
                self.other_subs[sub_id] = ws
                mine.add(sub_id)
                result = sub_id
            elif isinstance(method, str) and method.endswith("Unsubscribe"):
                sub_id = params[0] if params else None
                if isinstance(sub_id, int):
                    self._drop(sub_id)
                    mine.discard(sub_id)
                result = True  # a fired signature subscription is already gone; unsubscribing is harmless
            else:
                raise RpcError(-32601, "Method not found")
            response = {"jsonrpc": "2.0", "result": result, "id": req_id}
        except RpcError as exc:
            response = {"jsonrpc": "2.0", "error": exc.to_json(), "id": req_id}
        except (IndexError, ValueError, TypeError) as exc:
            response = {"jsonrpc": "2.0", "error": {"code": -32602, "message": f"Invalid params: {exc}"}, "id": req_id}
        await ws.send(json.dumps(response))
        if after is not None:
            await ws.send(after)


# ---------------------------------------------------------------------- server
def _check_loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be a loopback IPv4 address, got {host!r}") from None
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(f"the local chain listens on loopback only, got {host!r}")
    return host


class ChainServer:
    """The local chain: JSON-RPC on ``http://host:port``, pub/sub on ``ws://host:port+1``.

    >>> server = ChainServer("127.0.0.1", 0).start()   # 0: any free pair of ports
    >>> server.rpc_url, server.ws_url
    >>> server.fund(pubkey, 2 * 10**9)                 # airdrop, returns the signature
    >>> server.advance_slots(151)                      # expire every blockhash issued so far
    >>> server.stop()
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8899, slot_seconds: float = 0.4, chain: Chain | None = None
    ):
        self.host = _check_loopback(host)
        self._requested_port = port
        self.chain = chain or Chain(slot_seconds=slot_seconds)
        self.rpc = RpcMethods(self.chain)
        self.port: int | None = None
        self.ws_port: int | None = None
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._ws_thread: threading.Thread | None = None
        self._ws_loop: asyncio.AbstractEventLoop | None = None
        self._ws_stop: asyncio.Event | None = None
        self._pubsub: _PubSub | None = None

    # ------------------------------------------------------------ addresses
    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    @property
    def faucet(self) -> Pubkey:
        return self.chain.faucet.pubkey()

    # -------------------------------------------------------------- helpers
    def fund(self, pubkey: Pubkey | str, lamports: int) -> str:
        """Airdrop ``lamports`` to ``pubkey`` (a real, landed faucet transfer); returns its signature."""
        key = pubkey if isinstance(pubkey, Pubkey) else Pubkey.from_string(str(pubkey))
        return self.chain.request_airdrop(key, lamports)

    def advance_slots(self, slots: int) -> int:
        """Move the chain ``slots`` slots ahead; returns the new slot."""
        return self.chain.advance_slots(slots)

    # -------------------------------------------- test controls (README "Test controls")
    def advance_past_block_height(self, height: int) -> int:
        """Advance until the block height exceeds ``height``; returns the new height."""
        return self.chain.advance_past_block_height(height)

    def fail_rpc(
        self,
        mode: str = "error",
        seconds: float | None = None,
        requests: int | None = None,
        methods: list | None = None,
    ) -> None:
        """Fail HTTP JSON-RPC requests: ``error`` (-32005), ``http503`` or ``disconnect``."""
        self.chain.faults.fail(mode, seconds, requests, methods)

    def slow_rpc(
        self,
        delay_seconds: float,
        seconds: float | None = None,
        requests: int | None = None,
        methods: list | None = None,
    ) -> None:
        self.chain.faults.slow(delay_seconds, seconds, requests, methods)

    def drop_transactions(self, seconds: float | None = None, requests: int | None = None) -> None:
        """``sendTransaction`` accepts (after preflight) and never lands the transaction."""
        self.chain.faults.drop(seconds, requests)

    def refuse_account(self, pubkey: Pubkey | str, refused: bool = True) -> None:
        """Transactions writing to ``pubkey`` fail with ``InsufficientFundsForRent``."""
        self.chain.faults.refuse(str(pubkey), refused)

    def clear_faults(self) -> None:
        self.chain.faults.clear()

    @property
    def dropped(self) -> list[str]:
        """Signatures that ``sendTransaction`` accepted and dropped, oldest first."""
        return list(self.chain.faults.dropped)

    # ------------------------------------------------------------ lifecycle
    def _bind(self) -> tuple[_HttpServer, socket.socket]:
        attempts = 50 if self._requested_port == 0 else 1
        last: OSError | None = None
        for _ in range(attempts):
            http = _HttpServer((self.host, self._requested_port), self.rpc)
            port = http.server_address[1]
            try:
                ws_sock = socket.create_server((self.host, port + 1))
            except OSError as exc:
                http.server_close()
                last = exc
                continue
            return http, ws_sock
        raise OSError(f"cannot bind the WebSocket port next to the RPC port: {last}")

    def start(self) -> ChainServer:
        if self._http is not None:
            return self
        http, ws_sock = self._bind()
        self._http = http
        self.port = http.server_address[1]
        self.ws_port = ws_sock.getsockname()[1]

        ready = threading.Event()
        failure: list[BaseException] = []

        def run_ws() -> None:
            loop = asyncio.new_event_loop()
            self._ws_loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._ws_main(ws_sock, ready))
            except BaseException as exc:  # noqa: BLE001 - report a start failure to start()
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._ws_thread = threading.Thread(target=run_ws, name="local-chain-ws", daemon=True)
        self._ws_thread.start()
        self._http_thread = threading.Thread(
            target=http.serve_forever, kwargs={"poll_interval": 0.1}, name="local-chain-http", daemon=True
        )
        self._http_thread.start()
        ready.wait(10)
        if failure:
            self.stop()
            raise RuntimeError(f"local chain WebSocket server failed to start: {failure[0]!r}")
        return self

    async def _ws_main(self, sock: socket.socket, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        loop = asyncio.get_running_loop()
        self._ws_stop = asyncio.Event()
        self._pubsub = _PubSub(self.chain, loop)
        server = await serve(
            self._pubsub.handler,
            sock=sock,
            ping_interval=None,
            max_size=2**22,
            logger=logging.getLogger("dev.chain.ws"),
        )
        ready.set()
        try:
            await self._ws_stop.wait()
        finally:
            self._pubsub.close()
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 5)
            except TimeoutError:
                pass

    def stop(self) -> None:
        """Close both ports and every connection; idempotent."""
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
            http.close_all_connections()
        if self._ws_loop is not None and self._ws_stop is not None and not self._ws_loop.is_closed():
            try:
                self._ws_loop.call_soon_threadsafe(self._ws_stop.set)
            except RuntimeError:
                pass
        for thread in (self._http_thread, self._ws_thread):
            if thread is not None:
                thread.join(10)
        self._http_thread = self._ws_thread = None
        self._ws_loop = self._ws_stop = None

    def __enter__(self) -> ChainServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
