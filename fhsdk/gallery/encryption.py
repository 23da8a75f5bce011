"""Encrypted gallery files: AES-256-GCM from the `cryptography` package (the `crypto` extra)."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from fhsdk.errors import BackendUnavailableError, GalleryError, InvalidInputError

MAGIC = b"FHSDK-GALLERY-AES256GCM-1\n"
_NONCE_BYTES = 12
_MAX_ENCRYPTED_BYTES = 2**31 - 1  # cryptography's AESGCM takes at most this much per message


def generate_key() -> str:
    """A new random AES-256 key as url-safe base64 text."""
    return base64.urlsafe_b64encode(_aead_class().generate_key(bit_length=256)).decode("ascii")


def _aead_class():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as error:
        raise BackendUnavailableError(
            'encrypted galleries need the cryptography package: pip install "fhsdk[crypto]"'
        ) from error
    return AESGCM


def cipher(key: str | bytes):
    """An AES-256-GCM cipher for a key from Gallery.generate_key() (base64 text) or 32 raw bytes."""
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        raw = bytes(key)
    else:
        try:
            raw = base64.b64decode(key, altchars=b"-_", validate=True)
        except (TypeError, ValueError, binascii.Error):
            raw = b""
    if len(raw) != 32:
        raise InvalidInputError(
            "a gallery key is 32 random bytes, or their url-safe base64 text (44 characters) "
            "as Gallery.generate_key() returns it: check the key or the environment variable"
        )
    return _aead_class()(raw)


def encrypt(cipher, plaintext) -> bytes:
    if len(plaintext) > _MAX_ENCRYPTED_BYTES:
        raise GalleryError(
            f"the gallery is {len(plaintext) / 2**30:.1f} GiB, too large to encrypt in one piece "
            "(2 GiB, about 4 million 128-D embeddings): save it without a key on an encrypted volume"
        )
    nonce = os.urandom(_NONCE_BYTES)  # random 96-bit nonces: safe for billions of saves under one key
    return MAGIC + nonce + cipher.encrypt(nonce, plaintext, MAGIC)


def decrypt(cipher, body: bytes, path: Path) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return cipher.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], MAGIC)
    except (InvalidTag, ValueError) as error:
        raise GalleryError(
            f"{path} could not be decrypted: the key is wrong, or the file was damaged or altered "
            "after it was saved; use the key it was saved with, or restore it from a backup"
        ) from error
