"""Bearer tokens, stored hashed: the admin token and those ``joblet token create`` issues.

Why: a token file that leaks (a backup, a copied data dir) must not let anyone in, so only
the SHA-256 of each token is kept, as a password file would. Tokens are 256 random bits, so
a plain hash is enough (no slow KDF needed). The file ``D/tokens.json`` is written 0600 with
a temp file and rename; each entry is ``{name, sha256, groups, expires}`` (``expires`` an
RFC 3339 time or null). The admin token belongs to the group ``system:masters``, which the
default ``cluster-admin`` ClusterRoleBinding grants everything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from joblet.errors import AlreadyExists, NotFound

TOKENS_FILE = "tokens.json"
ADMIN_NAME = "admin"
ADMIN_GROUPS = ("system:masters",)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    name: str
    sha256: str
    groups: tuple[str, ...] = ()
    expires: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "groups": list(self.groups),
                "expires": self.expires.isoformat() if self.expires else None}

    @staticmethod
    def from_json(raw: dict[str, Any]) -> TokenEntry:
        expires = raw.get("expires")
        return TokenEntry(str(raw["name"]), str(raw["sha256"]), tuple(str(g) for g in raw.get("groups") or ()),
                          datetime.fromisoformat(expires) if expires else None)


class TokenStore:
    """The token file of one data dir. Re-read on every lookup whose file changed, so a
    ``joblet token revoke`` run beside a live server takes effect at once."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / TOKENS_FILE
        self._cache: tuple[float, list[TokenEntry]] | None = None

    # ---- reading

    def entries(self) -> list[TokenEntry]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._cache is None or self._cache[0] != mtime:
            raw = json.loads(self.path.read_text() or "[]")
            self._cache = (mtime, [TokenEntry.from_json(e) for e in raw])
        return list(self._cache[1])

    def lookup(self, token: str, now: datetime) -> TokenEntry | None:
        """The unexpired entry this token belongs to (constant-time comparison)."""
        digest = token_hash(token)
        found: TokenEntry | None = None
        for entry in self.entries():
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        if found is None or (found.expires is not None and found.expires <= now):
            return None
        return found

    # ---- writing

    def create(self, name: str, groups: tuple[str, ...] = (), expires: datetime | None = None,
               *, replace: bool = False, token: str | None = None) -> str:
        """Issue a token for ``name``; returns the token itself (shown once, never stored).

        ``token`` stores the hash of a token the user chose (``--token-file``) instead of a new one."""
        entries = self.entries()
        if any(e.name == name for e in entries):
            if not replace:
                raise AlreadyExists(f'token "{name}" already exists', {"name": name, "kind": "tokens"})
            entries = [e for e in entries if e.name != name]
        token = token or new_token()
        entries.append(TokenEntry(name, token_hash(token), tuple(groups), expires))
        self._write(entries)
        return token

    def revoke(self, name: str) -> None:
        entries = self.entries()
        kept = [e for e in entries if e.name != name]
        if len(kept) == len(entries):
            raise NotFound(f'token "{name}" not found', {"name": name, "kind": "tokens"})
        self._write(kept)

    def ensure_admin(self) -> str | None:
        """Create the admin token on first start; None when one exists already."""
        if any(e.name == ADMIN_NAME for e in self.entries()):
            return None
        return self.create(ADMIN_NAME, ADMIN_GROUPS)

    def _write(self, entries: list[TokenEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([e.to_json() for e in entries], f, indent=1)
        os.replace(tmp, self.path)
        self._cache = None
