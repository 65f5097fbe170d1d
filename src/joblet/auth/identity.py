"""One identity per store: the CA, the service-account signing key and the token table that
every replica on one store shares.

Why: replicas on one PostgreSQL store serve the same cluster, so a kubeconfig written by any
of them (its CA data, its admin token) must work against all, a pod's service-account token
signed by one must verify on another, and a remote node's log endpoint (which trusts the
cluster CA) must accept every replica's client certificate. The shared material lives in the
store as the Secret ``kube-system/joblet-identity`` (encrypted at rest like every Secret when
``--encryption-key-file`` is set): the first replica creates it from its data dir (so an
existing single-server data dir's PKI is the one put into the store), a later one loads the
winner's into its own data dir (AlreadyExists → read it) and issues its own serving
certificate from the shared CA.

Tokens: each replica keeps ``D/tokens.json`` (what ``joblet token create/revoke --data-dir D``
edits); :func:`merge_tokens` makes the Secret's table hold exactly that file's entries under
the replica's origin (its data dir's identity), next to the other replicas' entries, so a token
revoked in the file, even while the replica was down, leaves the shared table on its next
publish. :class:`SharedTokenStore` accepts a token found in either. Only hashes are stored.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from joblet.api.registry import Registry
from joblet.clock import Clock
from joblet.errors import AlreadyExists, ApiError, Conflict, NotFound
from joblet.security.pki import CA_CERT, CA_KEY, PKI_DIR, ensure_ca, write_private
from joblet.security.satokens import SA_KEY_FILE, load_or_create_signing_key
from joblet.security.tokens import TokenEntry, TokenStore

log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
SECRET_NAME = "joblet-identity"
#: Secret key → path under the data dir
FILES = {"ca.crt": f"{PKI_DIR}/{CA_CERT}", "ca.key": f"{PKI_DIR}/{CA_KEY}", "sa.key": SA_KEY_FILE}
TOKENS_KEY = "tokens.json"
#: seconds a replica reuses the shared token table before reading it again
TOKEN_CACHE_SECONDS = 2.0
#: an unknown token re-reads the table at once, but not more often than this (bad tokens
#: cannot turn into a read of the store each)
TOKEN_MISS_REFRESH_SECONDS = 0.05

Obj = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def identity_secret(data_dir: Path, origin: str, tokens: list[TokenEntry]) -> Obj:
    """The Secret that makes this data dir's CA, SA key and tokens the store's identity."""
    data = {key: _b64((Path(data_dir) / rel).read_bytes()) for key, rel in FILES.items()}
    data[TOKENS_KEY] = _b64(encode_tokens([(origin, e) for e in tokens]))
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET_NAME, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "joblet"}},
            "data": data}


Shared = list[tuple[str, TokenEntry]]


def encode_tokens(entries: Shared) -> bytes:
    return json.dumps([{**e.to_json(), "origin": origin} for origin, e in entries], sort_keys=True).encode()


def decode_tokens(secret: Obj) -> Shared:
    """(origin, entry) of the Secret's token table."""
    raw = (secret.get("data") or {}).get(TOKENS_KEY)
    if not raw:
        return []
    try:
        return [(str(e.get("origin") or ""), TokenEntry.from_json(e)) for e in json.loads(base64.b64decode(raw))]
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("secret %s/%s holds an unreadable token table", NAMESPACE, SECRET_NAME)
        return []


def merge_tokens(shared: Shared, local: list[TokenEntry], origin: str) -> Shared:
    """The shared table after the replica ``origin`` publishes its token file: its entries are
    exactly the file's, every other replica's are kept."""
    return [*((o, e) for o, e in shared if o != origin), *((origin, e) for e in local)]


def share_identity(registry: Registry, data_dir: Path, origin: str, now: datetime) -> Obj:
    """Make the store's identity this data dir's: create the Secret from the data dir when the
    store has none, else write the Secret's CA and SA key into the data dir. Returns the Secret."""
    ensure_ca(data_dir, now)
    load_or_create_signing_key(data_dir)
    try:
        secret = registry.get("secrets", NAMESPACE, SECRET_NAME)
    except NotFound:
        try:
            return registry.create("secrets", identity_secret(data_dir, origin, TokenStore(data_dir).entries()))
        except AlreadyExists:  # another replica was first: take its identity
            secret = registry.get("secrets", NAMESPACE, SECRET_NAME)
    data = secret.get("data") or {}
    for key, rel in FILES.items():
        if key not in data:
            continue
        want = base64.b64decode(data[key])
        path = Path(data_dir) / rel
        if not path.exists() or path.read_bytes() != want:
            log.info("data dir %s takes the store's %s", data_dir, key)
            write_private(path, want)
    return secret


class SharedTokenStore(TokenStore):
    """The data dir's token file plus the store's shared table (read at most every
    TOKEN_CACHE_SECONDS), and :meth:`publish` to put the file's changes into the shared table."""

    def __init__(self, data_dir: Path, registry: Registry, clock: Clock, origin: str) -> None:
        super().__init__(data_dir)
        self.registry = registry
        self.clock = clock
        #: this replica's name in the shared table (its data dir's identity)
        self.origin = origin
        self._shared: list[TokenEntry] = []
        self._read_at: float | None = None

    def _others(self, shared: Shared) -> list[TokenEntry]:
        """The other replicas' entries: for its own, this replica's file is the truth (a
        ``joblet token revoke`` here ends the token here at once, before it is published)."""
        return [e for origin, e in shared if origin != self.origin]

    def _shared_entries(self, max_age: float = TOKEN_CACHE_SECONDS) -> list[TokenEntry]:
        mono = self.clock.monotonic()
        if self._read_at is None or mono - self._read_at >= max_age:
            with contextlib.suppress(ApiError, OSError):
                self._shared = self._others(decode_tokens(self.registry.get("secrets", NAMESPACE, SECRET_NAME)))
                self._read_at = mono
        return self._shared

    def entries(self) -> list[TokenEntry]:
        local = super().entries()
        hashes = {e.sha256 for e in local}
        return [*local, *(e for e in self._shared_entries() if e.sha256 not in hashes)]

    def lookup(self, token: str, now: datetime) -> TokenEntry | None:
        """A token another replica issued a moment ago is found: a miss re-reads the table."""
        found = super().lookup(token, now)
        if found is None and self._read_at is not None and \
                self.clock.monotonic() - self._read_at >= TOKEN_MISS_REFRESH_SECONDS:
            self._shared_entries(max_age=0)
            found = super().lookup(token, now)
        return found

    def publish(self) -> bool:
        """Make this replica's entries of the shared table the file's; False when another
        replica wrote the Secret meanwhile (try again)."""
        local = TokenStore.entries(self)
        try:
            secret = self.registry.get("secrets", NAMESPACE, SECRET_NAME)
        except NotFound:
            return False
        shared = decode_tokens(secret)
        merged = merge_tokens(shared, local, self.origin)
        if encode_tokens(merged) != encode_tokens(shared):
            try:
                updated = self.registry.update("secrets", {**secret, "data": {
                    **(secret.get("data") or {}), TOKENS_KEY: _b64(encode_tokens(merged))}})
            except Conflict:
                return False
            secret = updated
        self._shared = self._others(decode_tokens(secret))
        self._read_at = self.clock.monotonic()
        return True
