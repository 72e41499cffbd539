"""DynamoDB plumbing shared by the per-table repositories: error translation,
page tokens, and the connection used for cross-table transactions."""

from __future__ import annotations

import base64
import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable, Collection
from typing import Any, ParamSpec, TypeVar

import botocore.exceptions
from pynamodb.connection import Connection
from pynamodb.connection.base import BOTOCORE_EXCEPTIONS
from pynamodb.constants import BATCH_GET_ITEM
from pynamodb.exceptions import GetError, PynamoDBException, TransactWriteError

from ..domain.errors import InvalidRequest, Unavailable
from . import models

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

# Codes that mean "the database did not answer now, or is not there": 503, retry later.
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
# Failures below any response: endpoint unreachable (DNS, refused), connect or read
# timeouts, a connection closed mid-answer. Every one is a BotoCoreError subclass.
CONNECTION_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


def is_conditional_failure(exc: BaseException) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def cancellation_codes(exc: TransactWriteError) -> list[str]:
    """One code per transaction item ('None' where that item was fine)."""
    return [(r.code if r is not None else "None") for r in (exc.cancellation_reasons or [])]


def is_outage(exc: BaseException) -> bool:
    """True when DynamoDB did not answer (a connection-level failure) or answered with a
    code of UNAVAILABLE_CODES. Any other failure (a validation error, a missing
    permission, bad parameters, a PynamoDB error with no cause) is a bug, not an outage."""
    cause = getattr(exc, "cause", None) if isinstance(exc, PynamoDBException) else exc
    if isinstance(cause, CONNECTION_ERRORS):
        return True
    code = (
        getattr(exc, "cause_response_code", None)
        if isinstance(exc, PynamoDBException)
        else (getattr(cause, "response", None) or {}).get("Error", {}).get("Code")
    )
    return code in UNAVAILABLE_CODES


def translate(exc: Exception) -> Exception:
    """Map a PynamoDB/botocore failure to Unavailable (an outage, see is_outage) or leave it as it is."""
    if is_outage(exc):
        log.warning("dynamodb unavailable: %s", exc)
        return Unavailable("The database did not answer; nothing was changed. Retry later.", reason="database")
    return exc


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for repository methods: an outage becomes Unavailable, anything else stays.

    Only for functions that return: a generator's body runs after the wrapper has
    returned, outside its try, so it is refused here (return a list, or a page)."""
    if inspect.isgeneratorfunction(fn):
        raise TypeError(f"@guarded cannot wrap the generator {fn.__qualname__}: return a list instead")

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (PynamoDBException, botocore.exceptions.BotoCoreError) as exc:
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    return wrapper


def encode_token(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None, **expected: str | None) -> dict[str, Any] | None:
    """The start key of a page, checked against the key schema it must have:
    `expected` names every string key attribute, with the value it must equal (or None)."""
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(key, dict) or set(key) != set(expected):
            raise ValueError
        for name, must in expected.items():
            value = key[name]
            if (
                not isinstance(value, dict)
                or set(value) != {"S"}
                or not isinstance(value["S"], str)
                or not value["S"]
                or (must is not None and value["S"] != must)
            ):
                raise ValueError
        return key
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("'next_token' is not a token this API issued.", reason="next_token") from None


_connections: dict[tuple[Any, ...], Connection] = {}
_connections_lock = threading.Lock()  # concurrent first requests of a process build one, not one each
_MAX_CONNECTIONS = 8  # distinct endpoint settings kept (tests rebind; a process serves one)
# HTTP connections the one client keeps open: one per thread that calls at once (a Lambda instance
# serves one request; the local server one thread per connection), as PynamoDB's 10 per model did
POOL_CONNECTIONS = 32


def connection_for(meta: Any) -> Connection:
    """The process's one Connection (one botocore client) for a model's `Meta` settings (region,
    endpoint, timeouts, retries): every model with the same settings, and the cross-table calls,
    share it. Building a client costs ~0.2 s of CPU, far more than the call it makes, and each
    keeps its own pool of connections; a model per client built up to 9 per process."""
    key = (meta.region, meta.host, meta.connect_timeout_seconds, meta.read_timeout_seconds, meta.max_retry_attempts)
    conn = _connections.get(key)
    if conn is not None:
        return conn
    with _connections_lock:
        conn = _connections.get(key)
        if conn is not None:
            return conn
        if len(_connections) >= _MAX_CONNECTIONS:
            _connections.clear()
        conn = _connections[key] = Connection(
            region=meta.region,
            host=meta.host,
            connect_timeout_seconds=meta.connect_timeout_seconds,
            read_timeout_seconds=meta.read_timeout_seconds,
            max_retry_attempts=meta.max_retry_attempts,
            max_pool_connections=POOL_CONNECTIONS,
        )
    return conn


def transaction_connection() -> Connection:
    """The Connection of cross-table calls (transactions, BatchGetItem): the contracts table's."""
    return connection_for(models.ContractItem.Meta)


RawItems = dict[str, list[dict[str, Any]]]  # per table: raw items (or raw keys)


def batch_get(keys: RawItems, consistent: Collection[str] = ()) -> RawItems:
    """ONE BatchGetItem of `keys` (per table, raw keys; at most 100 in all), the tables named in
    `consistent` read strongly consistent: the raw items found, per table (any order). Keys the
    engine leaves unprocessed are asked again (at most 8 calls in all); an outage raises GetError,
    which @guarded maps as PynamoDB's own calls."""
    request = {t: {"Keys": k, "ConsistentRead": t in consistent} for t, k in keys.items() if k}
    found: RawItems = {t: [] for t in keys}
    conn = transaction_connection()
    for _ in range(8):
        if not request:
            return found
        try:
            answer = conn.dispatch(BATCH_GET_ITEM, {"RequestItems": request})
        except BOTOCORE_EXCEPTIONS as exc:  # wrapped as PynamoDB's own calls do: @guarded maps outages
            raise GetError(f"BatchGetItem failed: {exc}", exc) from exc
        for table, items in answer.get("Responses", {}).items():
            found[table].extend(items)
        request = answer.get("UnprocessedKeys") or {}
    if request:
        raise GetError("BatchGetItem left keys unprocessed after 8 attempts")
    return found
