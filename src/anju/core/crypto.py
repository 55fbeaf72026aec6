"""Sensitive fields: AES-GCM encryption at rest, a keyed hash for exact lookup, masking.

A resident ID number or a phone is stored as three columns: the ciphertext (random nonce
prepended), an HMAC-SHA256 of the normalised value under a key derived for that field (so
equal values can be found without decrypting), and a masked form for listings. Nothing else
keeps the clear value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12


class KeyError_(ValueError):
    """The master key is missing or malformed."""


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()).derive(
        master
    )


@dataclass(frozen=True)
class Sealed:
    """A sensitive value as stored: ciphertext, lookup hash, masked text."""

    ciphertext: bytes
    lookup: str
    masked: str


class FieldCipher:
    """Encrypts, decrypts and hashes sensitive values with keys derived from one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise KeyError_(f"master key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._aead = AESGCM(_derive(master_key, "anju/field-encryption/v1"))
        self._mac_key = _derive(master_key, "anju/field-lookup/v1")

    def encrypt(self, value: str, context: str) -> bytes:
        """Encrypt ``value``; ``context`` (the field name) is bound as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), context.encode())

    def decrypt(self, blob: bytes, context: str) -> str:
        nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, context.encode()).decode()

    def encrypt_bytes(self, value: bytes, context: str) -> bytes:
        """Encrypt binary data (a face encoding) like :meth:`encrypt`."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value, context.encode())

    def decrypt_bytes(self, blob: bytes, context: str) -> bytes:
        nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, context.encode())

    def lookup_hash(self, value: str, context: str) -> str:
        """Keyed hash of a normalised value, for exact-match search."""
        digest = hmac.new(self._mac_key, f"{context}\x00{value}".encode(), hashlib.sha256)
        return digest.hexdigest()

    def seal(self, value: str, context: str) -> Sealed:
        return Sealed(
            ciphertext=self.encrypt(value, context),
            lookup=self.lookup_hash(value, context),
            masked=mask(value),
        )


def mask(value: str) -> str:
    """Mask all but the edges: ``360426199101010071`` → ``3604**********0071``.

    ID numbers keep 4+4 characters, phones 3+4, anything short keeps only its first character.
    """
    n = len(value)
    if n >= 15:
        head, tail = 4, 4
    elif n >= 11:
        head, tail = 3, 4
    elif n >= 4:
        head, tail = 1, 1
    else:
        return "*" * n
    return value[:head] + "*" * (n - head - tail) + value[n - tail :]


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise KeyError_("the secret key is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise KeyError_(f"the secret key must decode to {KEY_BYTES} bytes")
    return key


def load_or_create_key(key_file: Path, explicit: str | None, create: bool) -> bytes:
    """The master key: ``ANJU_SECRET_KEY`` if set, else the data folder's key file.

    ``create`` makes a new key file (only ``anju init`` does); otherwise a missing key is an
    error, because a new key would make every stored sensitive value unreadable.
    """
    if explicit:
        return decode_key(explicit)
    if key_file.exists():
        return decode_key(key_file.read_text())
    if not create:
        raise KeyError_(
            f"no secret key: {key_file} is missing and ANJU_SECRET_KEY is unset (run 'anju init')"
        )
    key = generate_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_key(key) + "\n")
    return key
