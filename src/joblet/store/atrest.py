"""How object bytes are stored at rest, shared by every persistent backend (SQLite, PostgreSQL).

Why: Secret encryption (``--encryption-key-file``) must behave the same whichever database
holds the rows: Secrets are encrypted with the provider's current key on the way in (bound to
their resource/namespace/name, so a row copied to another key does not decrypt), other objects
stay plain JSON, and a row encrypted under a key the store was not given is a clear error.
"""

from __future__ import annotations

from joblet.security.encryption import (
    ENCRYPTED_RESOURCES,
    AesGcmEncryption,
    EncryptionError,
    describe_prefix,
    is_encrypted,
    storage_context,
)


def to_storage(encryption: AesGcmEncryption | None, resource: str, namespace: str, name: str, data: bytes) -> bytes:
    """The bytes to store for an object's JSON (encrypted if it is a Secret and a key is given)."""
    if encryption is None or resource not in ENCRYPTED_RESOURCES:
        return data
    return encryption.encrypt(data, storage_context(resource, namespace, name))


def from_storage(encryption: AesGcmEncryption | None, where: object, resource: str, namespace: str, name: str,
                 data: bytes) -> bytes:
    """The object's JSON from stored bytes; ``where`` names the database in the error."""
    if not is_encrypted(data):
        return data
    if encryption is None:
        raise EncryptionError(
            f"{where} holds {resource} encrypted with {describe_prefix(data)}; "
            "start with --encryption-key-file naming that key")
    return encryption.decrypt(data, storage_context(resource, namespace, name))
