"""The treasury's signing key (implements `ports.TreasurySigner`), read once per cold start.

Where it comes from — exactly one source, named by configuration; the
configuration holds a *name*, never the key:

* `SI64_TREASURY_KEY_FILE`: a file path. Locally the stack's
  `$SI64_STATE_DIR/treasury.json` (`dev/stack.py load_or_create_treasury`):
  a JSON array of the 64 bytes of a Solana keypair (secret ‖ public), the
  format of `solana-keygen`.
* `SI64_TREASURY_KEY_PARAMETER`: an SSM SecureString parameter name (read
  `WithDecryption`).
* `SI64_TREASURY_SECRET_ARN`: a Secrets Manager secret (ARN or name); its
  SecretString.

Parameter and secret hold the same JSON array, or the keypair's base58 (the
form wallets export). Only the refund function's IAM role may read them.

The key never leaves this object: callers get `pubkey` and `sign(message)`.
`repr`/`str` show the public key only, the object refuses to be pickled or
copied, and no log line here carries key material. While the parameter or
secret is fetched, botocore's DEBUG logging (which would print the response
body) is held at WARNING.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.domain.errors import Unavailable

if TYPE_CHECKING:  # types only
    from solders.keypair import Keypair

    from chalicelib.config import Settings

KEYPAIR_BYTES = 64
_cache: dict[tuple[Any, ...], TreasuryKey] = {}
_lock = threading.Lock()


class TreasuryConfigError(ValueError):
    """The configured key is missing or not a keypair (a deployment mistake, not an outage).
    Its message never contains key material."""


class TreasuryKey:
    """An ed25519 keypair that signs the treasury's transactions."""

    __slots__ = ("_keypair", "_pubkey")
    _keypair: Keypair
    _pubkey: str

    def __init__(self, keypair_bytes: bytes) -> None:
        from solders.keypair import Keypair  # lazy: only the refund function signs

        if len(keypair_bytes) != KEYPAIR_BYTES:
            raise TreasuryConfigError("the treasury key is not a 64-byte keypair")
        try:
            keypair = Keypair.from_bytes(bytes(keypair_bytes))
        except Exception:  # noqa: BLE001 - solders refuses a secret/public mismatch with its own types
            raise TreasuryConfigError("the treasury key is not a valid keypair") from None
        object.__setattr__(self, "_keypair", keypair)
        object.__setattr__(self, "_pubkey", str(keypair.pubkey()))

    @property
    def pubkey(self) -> str:
        return self._pubkey

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of `message` (a serialized transaction message)."""
        return bytes(self._keypair.sign_message(bytes(message)))

    def __repr__(self) -> str:
        return f"TreasuryKey(pubkey={self._pubkey})"

    __str__ = __repr__

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TreasuryKey is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("the treasury key cannot be pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError("the treasury key cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("the treasury key cannot be copied")


def parse_keypair(text: str) -> bytes:
    """The 64 keypair bytes of a JSON array (solana-keygen) or a base58 string."""
    text = (text or "").strip()
    if not text:
        raise TreasuryConfigError("the treasury key is empty")
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError:
            raise TreasuryConfigError("the treasury key is not a JSON array") from None
        if (
            not isinstance(values, list)
            or len(values) != KEYPAIR_BYTES
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 256 for v in values)
        ):
            raise TreasuryConfigError("the treasury key is not a JSON array of 64 bytes")
        return bytes(values)
    from chalicelib.domain import keys as base58

    try:
        raw = base58.decode(text)
    except ValueError:
        raise TreasuryConfigError("the treasury key is neither a JSON array nor base58") from None
    if len(raw) != KEYPAIR_BYTES:
        raise TreasuryConfigError("the treasury key is not a 64-byte keypair")
    return raw


@contextmanager
def _quiet_botocore() -> Iterator[None]:
    """Hold botocore's loggers at WARNING so a DEBUG configuration cannot print the secret
    in a response body while it is fetched (cold start is single-threaded)."""
    loggers = [logging.getLogger(name) for name in ("botocore", "boto3", "urllib3")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() < logging.WARNING:
            lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(service, region_name=region, endpoint_url=endpoint_url)


def _fetch(source: tuple[Any, ...]) -> bytes:
    kind, name, region, endpoint_url = source
    if kind == "file":
        try:
            with open(name, encoding="utf-8") as fh:
                return parse_keypair(fh.read())
        except FileNotFoundError:
            raise TreasuryConfigError(f"the treasury key file {name} does not exist") from None
    import botocore.exceptions

    with _quiet_botocore():
        try:
            if kind == "parameter":
                answer = _client("ssm", region, endpoint_url).get_parameter(Name=name, WithDecryption=True)
                text = answer["Parameter"]["Value"]
            else:
                text = _client("secretsmanager", region, endpoint_url).get_secret_value(SecretId=name)["SecretString"]
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in (
                "ParameterNotFound",
                "ParameterVersionNotFound",
                "ResourceNotFoundException",
                "AccessDeniedException",
                "DecryptionFailure",
                "InvalidRequestException",
                "ValidationException",
            ):
                raise TreasuryConfigError(f"cannot read the treasury key {kind} {name}: {code}") from None
            raise Unavailable(f"the treasury key {kind} could not be read ({code})", reason="treasury") from None
        except (botocore.exceptions.BotoCoreError, OSError):
            raise Unavailable(f"the treasury key {kind} could not be read", reason="treasury") from None
        except KeyError:
            raise TreasuryConfigError(f"the treasury key {kind} {name} has no string value") from None
    return parse_keypair(text)


def load_treasury(
    *,
    key_file: str | None = None,
    parameter: str | None = None,
    secret_id: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    expected_pubkey: str | None = None,
) -> TreasuryKey:
    """The treasury key from exactly one source, read once per process (cached by source).

    `expected_pubkey` (the configured treasury address, SI64_TREASURY): the key must be
    its keypair, or TreasuryConfigError. An outage of SSM / Secrets Manager raises
    Unavailable (retry later); nothing is cached then.
    """
    sources = [s for s in (("file", key_file), ("parameter", parameter), ("secret", secret_id)) if s[1]]
    if len(sources) != 1:
        raise TreasuryConfigError(
            "configure exactly one of SI64_TREASURY_KEY_FILE, SI64_TREASURY_KEY_PARAMETER, SI64_TREASURY_SECRET_ARN"
        )
    kind, name = sources[0]
    source = (kind, name, region if kind != "file" else None, endpoint_url if kind != "file" else None)
    with _lock:
        key = _cache.get(source)
        if key is None:
            key = TreasuryKey(_fetch(source))
            _cache[source] = key
    if expected_pubkey and key.pubkey != expected_pubkey:
        raise TreasuryConfigError(
            f"the treasury key is for {key.pubkey}, not the configured treasury {expected_pubkey}"
        )
    return key


def treasury_from_settings(s: Settings) -> TreasuryKey:
    """`load_treasury` with the names of `config.Settings`."""
    return load_treasury(
        key_file=s.treasury_key_file,
        parameter=s.treasury_key_parameter,
        secret_id=s.treasury_secret_id,
        region=s.region,
        endpoint_url=s.aws_endpoint_url,
        expected_pubkey=s.treasury or None,
    )


def forget_cached_keys() -> None:
    """For tests: the next load reads its source again."""
    with _lock:
        _cache.clear()
