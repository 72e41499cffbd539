"""Base58 (Bitcoin alphabet, as Solana uses it) — pure Python, no solders import.

Used for request validation (public keys, transaction signatures) and for
reading instruction data of `getTransaction` results in "json" encoding.
The codec is a bijection between strings over the alphabet and byte strings:
each leading zero byte is one leading "1", the rest is a big-endian number.
"""
from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}

# Base58 of n bytes is at most ceil(n * log(256) / log(58)) characters.
PUBKEY_MAX_CHARS = 44
SIGNATURE_MAX_CHARS = 88


def encode(data: bytes) -> str:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("base58.encode needs bytes")
    data = bytes(data)
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    return "1" * zeros + "".join(reversed(out))


def decode(s: str) -> bytes:
    """Bytes of a base58 string; ValueError on any character outside the alphabet."""
    if not isinstance(s, str):
        raise TypeError("base58.decode needs str")
    n = 0
    for c in s:
        try:
            n = n * 58 + _INDEX[c]
        except KeyError:
            raise ValueError("invalid base58 character") from None
    zeros = len(s) - len(s.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def _is_len(s, size: int, max_chars: int) -> bool:
    if not isinstance(s, str) or not 1 <= len(s) <= max_chars:
        return False
    try:
        return len(decode(s)) == size
    except ValueError:
        return False


def is_pubkey(s) -> bool:
    """True for a base58 string of exactly 32 bytes (a Solana public key)."""
    return _is_len(s, 32, PUBKEY_MAX_CHARS)


def is_signature(s) -> bool:
    """True for a base58 string of exactly 64 bytes (an ed25519 / transaction signature)."""
    return _is_len(s, 64, SIGNATURE_MAX_CHARS)
