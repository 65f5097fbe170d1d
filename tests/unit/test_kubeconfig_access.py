"""Kubeconfig credentials: CA data or file, token or tokenFile, client certificate data or files."""

from __future__ import annotations

import base64
from pathlib import Path

from joblet.kubeconfig import access_from_config, build_kubeconfig, load_access, write_kubeconfig


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_written_kubeconfig_round_trips(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", token="t0k", ca_data=b"CA")
    assert path.stat().st_mode & 0o777 == 0o600
    access = load_access(path)
    assert (access.server, access.token, access.ca_data, access.verify) == ("https://127.0.0.1:6443", "t0k", b"CA", True)


def test_files_relative_to_the_kubeconfig_and_data_forms(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CAFILE")
    (tmp_path / "u.crt").write_bytes(b"CERT")
    (tmp_path / "u.key").write_bytes(b"KEY")
    (tmp_path / "tok").write_text("filetoken\n")
    config = build_kubeconfig("https://h:1")
    config["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"
    config["users"][0]["user"] = {"client-certificate": "u.crt", "client-key": str(tmp_path / "u.key"),
                                  "tokenFile": str(tmp_path / "tok")}
    access = access_from_config(config, base=tmp_path)
    assert (access.ca_data, access.client_cert_data, access.client_key_data, access.token) == (
        b"CAFILE", b"CERT", b"KEY", "filetoken")
    config["users"][0]["user"] = {"client-certificate-data": b64(b"C2"), "client-key-data": b64(b"K2")}
    config["clusters"][0]["cluster"] = {"server": "https://h:1", "insecure-skip-tls-verify": True}
    access = access_from_config(config)
    assert (access.client_cert_data, access.client_key_data, access.verify) == (b"C2", b"K2", False)
