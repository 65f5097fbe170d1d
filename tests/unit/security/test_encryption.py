"""The aesgcm provider and its key file: upstream's stored layout, key rotation, clear failures."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from joblet.security.encryption import (
    AesGcmEncryption,
    EncryptionError,
    generate_key_line,
    load_key_file,
    parse_key_file,
    storage_context,
)

KEY = bytes(range(32))
CTX = storage_context("secrets", "default", "s")


def test_stored_value_has_upstream_layout_and_decrypts_with_plain_aesgcm() -> None:
    enc = AesGcmEncryption([("key1", KEY)])
    stored = enc.encrypt(b'{"data":{"a":"c2VjcmV0"}}', CTX)
    prefix = b"k8s:enc:aesgcm:v1:key1:"
    assert stored.startswith(prefix)
    nonce, sealed = stored[len(prefix):len(prefix) + 12], stored[len(prefix) + 12:]
    # What upstream's aesgcm transformer does: nonce || Seal(plaintext, additionalData=ctx).
    assert AESGCM(KEY).decrypt(nonce, sealed, CTX) == b'{"data":{"a":"c2VjcmV0"}}'
    assert b"c2VjcmV0" not in stored


def test_nonce_is_random_per_write() -> None:
    enc = AesGcmEncryption([("key1", KEY)])
    assert enc.encrypt(b"x", CTX) != enc.encrypt(b"x", CTX)


def test_ciphertext_is_bound_to_its_row() -> None:
    enc = AesGcmEncryption([("key1", KEY)])
    stored = enc.encrypt(b"x", CTX)
    with pytest.raises(EncryptionError, match="does not decrypt"):
        enc.decrypt(stored, storage_context("secrets", "default", "other"))


def test_rotation_first_key_encrypts_every_key_decrypts() -> None:
    old = AesGcmEncryption([("old", KEY)])
    stored = old.encrypt(b"x", CTX)
    rotated = AesGcmEncryption([("new", os.urandom(32)), ("old", KEY)])
    assert rotated.decrypt(stored, CTX) == b"x"
    assert not rotated.is_current(stored)
    assert rotated.encrypt(b"x", CTX).startswith(b"k8s:enc:aesgcm:v1:new:")
    with pytest.raises(EncryptionError, match=r"key 'old'.*not in the key file"):
        AesGcmEncryption([("new", KEY)]).decrypt(stored, CTX)


def test_wrong_key_of_the_same_name_fails_clearly() -> None:
    stored = AesGcmEncryption([("key1", KEY)]).encrypt(b"x", CTX)
    with pytest.raises(EncryptionError, match="wrong key"):
        AesGcmEncryption([("key1", os.urandom(32))]).decrypt(stored, CTX)


def test_key_file_format() -> None:
    b64 = base64.b64encode(KEY).decode()
    text = f"# comment\n\n  second:{b64}  \n{base64.b64encode(bytes(16)).decode()}\n"
    assert parse_key_file(text) == [("second", KEY), ("key1", bytes(16))]


@pytest.mark.parametrize(("text", "message"), [
    ("", "no encryption key"),
    ("key1:not base64!", "line 1: the key is not valid base64"),
    (f"key1:{base64.b64encode(bytes(10)).decode()}", "10 bytes; AES-GCM takes 16, 24 or 32"),
    (f"a b:{base64.b64encode(KEY).decode()}", "key name 'a b'"),
    (f"k:{base64.b64encode(KEY).decode()}\nk:{base64.b64encode(KEY).decode()}", "appears twice"),
])
def test_bad_key_files_are_refused_with_the_file_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(EncryptionError, match=message) as err:
        load_key_file(path)
    assert str(path) in str(err.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(EncryptionError, match="cannot read encryption key file"):
        load_key_file(tmp_path / "nope")


def test_generated_line_loads(tmp_path: Path) -> None:
    line = generate_key_line("k2")
    assert line.startswith("k2:") and len(base64.b64decode(line[3:])) == 32
    (tmp_path / "keys").write_text(line + "\n")
    assert load_key_file(tmp_path / "keys").primary_prefix == b"k8s:enc:aesgcm:v1:k2:"
