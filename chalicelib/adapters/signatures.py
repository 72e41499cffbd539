"""ed25519 verification of renter signatures (ports.SignatureVerifier), through solders.

solders is imported on the first verification only (settle), never on the cold path.
"""

from __future__ import annotations


def verify_ed25519(pubkey_b58: str, message: bytes, signature_b58: str) -> bool:
    from solders.pubkey import Pubkey
    from solders.signature import Signature

    try:
        return Signature.from_string(signature_b58).verify(Pubkey.from_string(pubkey_b58), message)
    except (ValueError, TypeError):
        return False
