"""HTTP access to the SI64 API for the operator CLI and the device agent.

Standard library only (``urllib``), so the CLI and the agent need nothing but
``rich`` and ``psutil`` on top of the interpreter. Every failure becomes an
``OpsError`` whose ``str()`` is ONE line for a person; the CLI prints it on
stderr and exits non-zero, never with a traceback.

Where the API is (first that gives a value wins):
``--api`` / ``--admin-key`` flags, ``SI64_API_URL`` / ``SI64_ADMIN_KEY``, then
``$SI64_STATE_DIR/stack.json`` (default ``./.local/stack.json``, relative to the working directory),
which ``make run`` writes.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USER_AGENT = "si64-ops/1"


class OpsError(Exception):
    """A failure to tell the operator in one line (exit status 1 unless said otherwise)."""

    exit_code = 1


class ConfigError(OpsError):
    exit_code = 2


class Unreachable(OpsError):
    """The API did not answer at all (connection refused, DNS, timeout)."""


class ApiError(OpsError):
    """The API answered with an error status; ``str()`` is ``"401 unauthorized: …"``."""

    def __init__(self, status: int, body: Any, method: str, path: str, hint: str = ""):
        self.status, self.body, self.method, self.path = status, body, method, path
        self.code = body.get("code") if isinstance(body, dict) else None
        self.reason = body.get("reason") if isinstance(body, dict) else None
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str):  # e.g. API Gateway's {"message": ...} or a proxy's HTML page
            detail = body.get("message") if isinstance(body, dict) else None
        self.detail = detail or (str(body)[:200] if body else "no details")
        words = [str(status)]
        if self.code:
            words.append(self.code)
        line = f"{' '.join(words)}: {self.detail}"
        if self.reason:
            line += f" (reason: {self.reason})"
        line += f" [{method} {path}]"
        if hint:
            line += f" — {hint}"
        super().__init__(line.replace("\n", " "))


# ------------------------------------------------------------------ configuration
def state_dir(env: dict | None = None) -> Path:
    """$SI64_STATE_DIR, else ./.local of the working directory (where `make run` writes in a checkout)."""
    env = os.environ if env is None else env
    return Path(env.get("SI64_STATE_DIR") or ".local")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by its owner only (0600): keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def load_stack(env: dict | None = None) -> dict | None:
    """The local stack's stack.json, or None when there is none."""
    path = state_dir(env) / "stack.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


@dataclass
class Target:
    api_url: str
    admin_key: str | None
    device_keys: dict = field(default_factory=dict)
    source: str = ""  # where the URL came from, for error lines


def resolve(api: str | None = None, admin_key: str | None = None, env: dict | None = None) -> Target:
    """Flags, then environment, then stack.json."""
    env = os.environ if env is None else env
    url = api or env.get("SI64_API_URL")
    key = admin_key or env.get("SI64_ADMIN_KEY")
    source = "--api" if api else ("SI64_API_URL" if url else "")
    try:
        stack = load_stack(env)
    except ConfigError:
        if not (url and key):
            raise
        stack = None  # an explicit target does not need a readable stack.json
    if not url:
        if not stack or not stack.get("api_url"):
            raise ConfigError(
                f"no API to talk to: {state_dir(env) / 'stack.json'} not found "
                "(start the local stack with `make run`) and neither --api nor SI64_API_URL is set"
            )
        url, source = stack["api_url"], str(state_dir(env) / "stack.json")
    same_stack = bool(stack) and str(stack.get("api_url", "")).rstrip("/") == url.rstrip("/")
    if not key and same_stack:
        key = stack.get("admin_key")  # the stack's key is sent only to the stack's own URL
    device_keys = dict(stack.get("device_keys") or {}) if same_stack else {}
    return Target(url.rstrip("/"), key, device_keys, source)


# ------------------------------------------------------------------ HTTP
def http_json(
    method: str, url: str, body: Any = None, headers: dict | None = None, timeout: float = 15.0
) -> tuple[int, Any, dict]:
    """One request; returns (status, parsed JSON body or None, headers). Raises Unreachable."""
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    hdrs = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, rh = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        status, raw, rh = exc.code, exc.read(), dict(exc.headers or {})
    except urllib.error.URLError as exc:
        reason = exc.reason
        why = getattr(reason, "strerror", None) or str(reason)
        raise Unreachable(f"cannot reach the SI64 API at {_origin(url)} ({why.lower()})") from None
    except TimeoutError:
        raise Unreachable(f"the SI64 API at {_origin(url)} did not answer within {timeout:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise Unreachable(f"cannot reach the SI64 API at {_origin(url)} ({exc.__class__.__name__}: {exc})") from None
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")[:200]
    return status, parsed, rh


def _origin(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


class Client:
    """The API as the operator sees it. Raises OpsError subclasses, never anything else for HTTP."""

    def __init__(self, target: Target, timeout: float = 15.0, max_429_waits: int = 5, sleep=time.sleep):
        self.target, self.timeout, self.max_429_waits, self.sleep = target, timeout, max_429_waits, sleep
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def api_url(self) -> str:
        return self.target.api_url

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        admin: bool = False,
        headers: dict | None = None,
    ) -> Any:
        hdrs = dict(headers or {})
        if admin:
            if not self.target.admin_key:
                raise ConfigError(
                    "no admin key: pass --admin-key, set SI64_ADMIN_KEY, or use the local stack "
                    "(its stack.json holds the key)"
                )
            hdrs["X-Admin-Key"] = self.target.admin_key
        query = ""
        if params:
            query = "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = self.target.api_url + path + query
        unreachable_hint = (
            "" if "stack.json" not in self.target.source else " — is the local stack running? (`make run`)"
        )
        for attempt in range(self.max_429_waits + 1):
            with self._lock:
                self.requests += 1
            try:
                status, parsed, rh = http_json(method, url, body, hdrs, self.timeout)
            except Unreachable as exc:
                raise Unreachable(str(exc) + unreachable_hint) from None
            if status == 429 and attempt < self.max_429_waits:
                self.sleep(min(_retry_after(rh), 30.0))
                continue
            break
        if 200 <= status < 300:
            return parsed
        hint = ""
        if status == 401 and admin:
            hint = "check --admin-key / SI64_ADMIN_KEY"
        raise ApiError(status, parsed, method, path, hint)

    def get(self, path: str, **kw) -> Any:
        return self.request("GET", path, **kw)

    def pages(
        self,
        path: str,
        key: str | tuple[str, ...],
        params: dict | None = None,
        *,
        admin: bool = True,
        limit: int = 1000,
        max_pages: int | None = None,
    ) -> Iterator[dict]:
        """Yield each page (dict) of a `next_token`-paged route; stops after max_pages pages.

        The last page yielded carries ``"_truncated": True`` when a next page existed but
        max_pages was reached, so callers can say that their figures are partial.
        """
        token, n = None, 0
        while True:
            q = dict(params or {}, limit=limit)
            if token:
                q["next_token"] = token
            page = self.get(path, params=q, admin=admin)
            n += 1
            token = page.get("next_token")
            if token and max_pages is not None and n >= max_pages:
                page["_truncated"] = True
                yield page
                return
            yield page
            if not token:
                return


def _retry_after(headers: dict) -> float:
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                return max(0.0, float(v))
            except ValueError:
                break
    return 1.0
