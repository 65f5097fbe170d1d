"""Secrets encrypted at rest in the SQLite store (``--encryption-key-file``).

Why here: the promise is about the bytes on disk, so these tests read the real ``joblet.db`` and
its WAL as a thief with a copy of the data dir would, and reopen the real store with and without
the key.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from joblet.security.encryption import AesGcmEncryption, EncryptionError
from joblet.store import SqliteStore, open_store
from joblet.store.interface import Key

SECRET_VALUE = b"hunter2-the-launch-codes"
B64 = base64.b64encode(SECRET_VALUE)
KEY = AesGcmEncryption([("key1", bytes(range(32)))])


def secret(name: str = "s") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "data": {"password": B64.decode()}, "stringData": None}


def configmap() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"},
            "data": {"visible": "plain-configmap-value"}}


def on_disk(db: Path, copy_to: Path) -> bytes:
    """What a copy of the database and its WAL (taken while the server runs) contains."""
    copy_to.mkdir()
    blob = b""
    for suffix in ("", "-wal"):
        src = Path(f"{db}{suffix}")
        if src.exists():
            shutil.copy(src, copy_to / src.name)
            blob += (copy_to / src.name).read_bytes()
    return blob


def test_copied_db_and_wal_hold_no_secret_value(tmp_path: Path) -> None:
    db = tmp_path / "joblet.db"
    store = SqliteStore(db, encryption=KEY)
    store.create(Key("secrets", "default", "s"), secret())
    store.create(Key("configmaps", "default", "cm"), configmap())
    store.flush()
    blob = on_disk(db, tmp_path / "copy")
    assert b"plain-configmap-value" in blob  # the copy is real: other objects are readable in it
    assert b"k8s:enc:aesgcm:v1:key1:" in blob
    assert SECRET_VALUE not in blob and B64 not in blob
    store.close()
    blob = on_disk(db, tmp_path / "copy-after-close")
    assert SECRET_VALUE not in blob and B64 not in blob

    reopened = SqliteStore(db, encryption=KEY)
    assert reopened.get(Key("secrets", "default", "s"))["data"] == {"password": B64.decode()}
    reopened.close()


def test_without_the_key_the_store_refuses_to_open(tmp_path: Path) -> None:
    store = open_store(tmp_path, encryption=KEY)
    store.create(Key("secrets", "default", "s"), secret())
    store.close()
    with pytest.raises(EncryptionError, match=r"secrets encrypted with provider aesgcm key 'key1'.*--encryption-key-file"):
        open_store(tmp_path)
    with pytest.raises(EncryptionError, match="not in the key file"):
        open_store(tmp_path, encryption=AesGcmEncryption([("other", bytes(32))]))
    with pytest.raises(EncryptionError, match="wrong key"):
        open_store(tmp_path, encryption=AesGcmEncryption([("key1", bytes(32))]))


def test_rows_written_before_encryption_are_read_and_rewritten_encrypted(tmp_path: Path) -> None:
    db = tmp_path / "joblet.db"
    plain = SqliteStore(db)
    for i in range(50):
        plain.create(Key("secrets", "default", f"s{i}"), secret(f"s{i}"))
    plain.close()
    assert B64 in db.read_bytes()  # the old row really is in clear

    store = SqliteStore(db, encryption=KEY)
    assert store.get(Key("secrets", "default", "s7"))["data"]["password"] == B64.decode()
    blob = on_disk(db, tmp_path / "copy")
    assert SECRET_VALUE not in blob and B64 not in blob  # secure_delete zeroed the old cells
    rv = store.get(Key("secrets", "default", "s7"))["metadata"]["resourceVersion"]
    store.close()
    assert SqliteStore(db, encryption=KEY).get(Key("secrets", "default", "s7"))["metadata"]["resourceVersion"] == rv


def test_rotation_rewrites_with_the_new_key(tmp_path: Path) -> None:
    db = tmp_path / "joblet.db"
    old = SqliteStore(db, encryption=KEY)
    old.create(Key("secrets", "default", "s"), secret())
    old.close()
    new_key = AesGcmEncryption([("key2", bytes(range(1, 33))), ("key1", bytes(range(32)))])
    SqliteStore(db, encryption=new_key).close()
    only_new = AesGcmEncryption([("key2", bytes(range(1, 33)))])
    assert SqliteStore(db, encryption=only_new).get(Key("secrets", "default", "s"))["data"]["password"] == B64.decode()
