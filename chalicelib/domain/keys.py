"""Solana public keys and signatures as base58 text. Pure Python.

The codec is the maintained `base58` package (Bitcoin alphabet, as Solana
uses it); this module only adds the strictness the API needs: text outside the
alphabet is refused (the library strips trailing whitespace before decoding,
so "KEY " would otherwise pass), and the decoded length must be exact.
"""

from __future__ import annotations

import base58 as _b58

# Base58 of n bytes is at most ceil(n * log(256) / log(58)) characters.
PUBKEY_MAX_CHARS = 44
SIGNATURE_MAX_CHARS = 88


def encode(data: bytes) -> str:
    return _b58.b58encode(bytes(data)).decode("ascii")


def decode(text: str) -> bytes:
    """Bytes of base58 text ("" is b""); ValueError on any character outside the alphabet."""
    if not isinstance(text, str):
        raise TypeError("base58 text must be str")
    if text and not (text.isascii() and text.isalnum()):  # no whitespace, no punctuation
        raise ValueError("invalid base58 character")
    return _b58.b58decode(text)  # ValueError for 0, O, I, l


def _is_len(text: object, size: int, max_chars: int) -> bool:
    if not isinstance(text, str) or not 1 <= len(text) <= max_chars:
        return False
    try:
        return len(decode(text)) == size
    except ValueError:
        return False


def is_pubkey(text: object) -> bool:
    """True for base58 text of exactly 32 bytes (a Solana public key)."""
    return _is_len(text, 32, PUBKEY_MAX_CHARS)


def is_signature(text: object) -> bool:
    """True for base58 text of exactly 64 bytes (an ed25519 / transaction signature)."""
    return _is_len(text, 64, SIGNATURE_MAX_CHARS)
