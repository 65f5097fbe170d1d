"""Encryption at rest for Secrets, as kube-apiserver's EncryptionConfiguration ``aesgcm`` provider.

Why: a data dir's ``joblet.db`` is copied into backups, CI caches and bug reports; without
encryption every Secret is there in clear (base64 is no protection). With
``joblet server --encryption-key-file FILE`` the store writes each Secret as

    k8s:enc:aesgcm:v1:<key name>:<12-byte random nonce><AES-GCM ciphertext and 16-byte tag>

exactly the layout of upstream's ``aesgcm`` provider (staging/src/k8s.io/apiserver/pkg/storage/
value/encrypt/aes), authenticated with the object's storage key (``/secrets/<ns>/<name>``) as
additional data, so a ciphertext copied onto another Secret's row does not decrypt. Rows written
before encryption was turned on stay readable and are rewritten encrypted when the store opens.

Key file format (one key per line; ``#`` comments and blank lines are ignored)::

    NAME:BASE64KEY      e.g.  key1:4hKXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX=
    BASE64KEY           a bare key is named "key1"

A key is 16, 24 or 32 random bytes (AES-128/192/256; ``joblet encryption-key generate`` prints a
32-byte one). The first key encrypts; every key decrypts, which is how a key is rotated: put the
new key first, keep the old one below it, restart (the store rewrites every Secret with the new
key), then drop the old line. Keep the file 0600 and outside the data dir.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a provider is built: the CLI imports EncryptionError on every start
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Every stored value written by an encrypting provider starts with this (upstream's marker).
ENCRYPTED_PREFIX = b"k8s:enc:"
PROVIDER_PREFIX = b"k8s:enc:aesgcm:v1:"
NONCE_SIZE = 12
KEY_SIZES = (16, 24, 32)
DEFAULT_KEY_NAME = "key1"
#: Resources whose stored values are encrypted (upstream's usual EncryptionConfiguration).
ENCRYPTED_RESOURCES = frozenset({"secrets"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class EncryptionError(Exception):
    """A key file that cannot be used, or stored data that cannot be decrypted with it."""


def generate_key_line(name: str = DEFAULT_KEY_NAME) -> str:
    """A key-file line ``NAME:BASE64KEY`` holding a fresh 32-byte (AES-256) random key."""
    _check_name(name)
    return f"{name}:{base64.b64encode(os.urandom(32)).decode()}"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise EncryptionError(f"key name {name!r} must be 1-63 letters, digits, '.', '_' or '-'")


@dataclass(frozen=True)
class _Key:
    name: str
    aead: AESGCM


class AesGcmEncryption:
    """The ``aesgcm`` provider over an ordered list of named keys (the first one encrypts)."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys:
            raise EncryptionError("no encryption key given")
        seen: set[str] = set()
        self._keys: list[_Key] = []
        for name, secret in keys:
            _check_name(name)
            if name in seen:
                raise EncryptionError(f"key name {name!r} appears twice")
            if len(secret) not in KEY_SIZES:
                raise EncryptionError(
                    f"key {name!r} is {len(secret)} bytes; AES-GCM takes 16, 24 or 32 (base64-encoded)")
            seen.add(name)
            self._keys.append(_Key(name, AESGCM(secret)))
        self._by_prefix = {PROVIDER_PREFIX + k.name.encode() + b":": k for k in self._keys}

    @property
    def primary_prefix(self) -> bytes:
        """The prefix of values written now (provider and first key's name)."""
        return PROVIDER_PREFIX + self._keys[0].name.encode() + b":"

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return self.primary_prefix + nonce + self._keys[0].aead.encrypt(nonce, plaintext, context)

    def decrypt(self, stored: bytes, context: bytes) -> bytes:
        """The plaintext of a value written by :meth:`encrypt` with any of the keys."""
        from cryptography.exceptions import InvalidTag

        for prefix, key in self._by_prefix.items():
            if stored.startswith(prefix):
                body = stored[len(prefix):]
                try:
                    return key.aead.decrypt(body[:NONCE_SIZE], body[NONCE_SIZE:], context)
                except InvalidTag:
                    raise EncryptionError(
                        f"a stored value under key {key.name!r} does not decrypt (wrong key, or tampered data)"
                    ) from None
        raise EncryptionError(f"stored value was written with {describe_prefix(stored)}, which is not in the key file")

    def is_current(self, stored: bytes) -> bool:
        """Whether ``stored`` is already encrypted with the primary key."""
        return stored.startswith(self.primary_prefix)


def describe_prefix(stored: bytes) -> str:
    """``provider aesgcm key 'key1'`` for an encrypted value (for error messages)."""
    parts = stored[len(ENCRYPTED_PREFIX):].split(b":", 3)
    if len(parts) >= 3:
        return f"provider {parts[0].decode(errors='replace')} key {parts[2].decode(errors='replace')!r}"
    return "an unknown provider"


def is_encrypted(stored: bytes) -> bool:
    return stored.startswith(ENCRYPTED_PREFIX)


def storage_context(resource: str, namespace: str, name: str) -> bytes:
    """The additional authenticated data binding a ciphertext to its row (upstream uses the etcd key)."""
    return f"/{resource}/{namespace}/{name}".encode()


def parse_key_file(text: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.rpartition(":")
        if not sep:
            name = DEFAULT_KEY_NAME
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise EncryptionError(f"line {number}: the key is not valid base64") from None
        keys.append((name.strip(), secret))
    return keys


def load_key_file(path: str | os.PathLike[str]) -> AesGcmEncryption:
    """The provider for a key file (format in this module's docstring)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise EncryptionError(f"cannot read encryption key file {p}: {e.strerror or e}") from None
    try:
        return AesGcmEncryption(parse_key_file(text))
    except EncryptionError as e:
        raise EncryptionError(f"encryption key file {p}: {e}") from None
