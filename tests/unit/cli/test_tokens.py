"""``joblet token create|list|revoke`` as a user runs them (a real ``joblet`` process on a data
dir), and the expiry parser, table-driven."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from joblet.cli.tokens import parse_expiry
from joblet.kubeconfig import write_kubeconfig
from joblet.security.tokens import TokenStore


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)),
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("1d12h", timedelta(days=1, hours=12)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("90s", timedelta(seconds=90)),
])
def test_parse_expiry(text: str, expected: timedelta) -> None:
    assert parse_expiry(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("0s", "expiry must be positive"),
    ("-1h", "expiry must be positive"),
    ("tomorrow", 'time: invalid duration "tomorrow"'),
    ("5", 'time: missing unit in duration "5"'),
    ("3w", 'time: unknown unit "w" in duration "3w"'),
])
def test_parse_expiry_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_expiry(text)


def joblet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "joblet", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": "/nonexistent"})


def test_create_prints_only_the_token_which_authenticates_until_revoked(tmp_path: Path) -> None:
    d = tmp_path / "data"
    made = joblet("token", "create", "alice", "--group", "devs", "--group", "ops", "--expires", "24h",
                  "--data-dir", str(d))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and len(token) >= 40
    store = TokenStore(d)
    entry = store.lookup(token, datetime.now(UTC))
    assert entry is not None and entry.name == "alice" and entry.groups == ("devs", "ops")
    assert entry.expires is not None
    assert timedelta(hours=23) < entry.expires - datetime.now(UTC) <= timedelta(hours=24)
    assert store.lookup(token, datetime.now(UTC) + timedelta(hours=25)) is None  # expired
    raw = (d / "tokens.json").read_text()
    assert token not in raw  # only the hash is kept
    assert stat.S_IMODE((d / "tokens.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700

    again = joblet("token", "create", "alice", "--data-dir", str(d))
    assert again.returncode == 1 and again.stdout == "" and "exists" in again.stderr

    listed = joblet("token", "list", "--data-dir", str(d))
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["NAME", "GROUPS", "EXPIRES"]
    assert listed.stdout.splitlines()[1].split()[:2] == ["alice", "devs,ops"]
    assert json.loads(raw)[0]["sha256"] not in listed.stdout

    revoked = joblet("token", "revoke", "alice", "--data-dir", str(d))
    assert revoked.returncode == 0
    assert TokenStore(d).lookup(token, datetime.now(UTC)) is None
    assert joblet("token", "revoke", "alice", "--data-dir", str(d)).returncode == 1


def test_bad_input_exits_2_and_issues_nothing(tmp_path: Path) -> None:
    d = tmp_path / "data"
    for args in (["bob", "--expires", "soon"], ["has space"], ["bob", "--group", "a/b"]):
        result = joblet("token", "create", *args, "--data-dir", str(d))
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
    assert TokenStore(d).entries() == []


def test_kubeconfig_out_carries_server_ca_and_the_new_token(tmp_path: Path) -> None:
    d = tmp_path / "data"
    (d / "pki").mkdir(parents=True)
    (d / "pki" / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    write_kubeconfig(d / "kubeconfig", "https://127.0.0.1:7443", "admin-token")
    out = tmp_path / "alice.kubeconfig"
    made = joblet("token", "create", "alice", "--kubeconfig-out", str(out), "--data-dir", str(d))
    assert made.returncode == 0, made.stderr
    config = yaml.safe_load(out.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert config["users"][0]["user"]["token"] == made.stdout.strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    missing = joblet("token", "create", "bob", "--kubeconfig-out", str(tmp_path / "b"), "--data-dir",
                     str(tmp_path / "empty"))
    assert missing.returncode == 1 and "start `joblet server` once" in missing.stderr
    assert TokenStore(tmp_path / "empty").entries() == []  # no half-made user
