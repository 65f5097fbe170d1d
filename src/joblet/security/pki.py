"""The data dir's PKI: a cluster CA and the API server's serving certificate.

Why: the API is HTTPS even on loopback (a token sent in clear text is readable by anyone who
can sniff the interface, and kubectl/the official client expect a CA to verify), yet a user
should never have to run openssl. The first start on a data dir generates the CA
(``D/pki/ca.crt``/``ca.key``) and a serving certificate signed by it whose subjectAltNames are
what clients dial (127.0.0.1, ::1, localhost, the host name, ``--host``, each ``--tls-san``);
when the wanted names change the serving certificate is re-issued from the same CA, so a
kubeconfig's ``certificate-authority-data`` stays valid. ECDSA P-256 keeps generation in the
milliseconds and is accepted by kubectl, Python's ssl and Node.

The CA also signs client certificates (CN = user, O = groups) for ``--client-ca`` setups:
:func:`issue_client_cert`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PKI_DIR = "pki"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVING_CERT = "apiserver.crt"
SERVING_KEY = "apiserver.key"
CA_DAYS = 3650
CERT_DAYS = 365
#: re-issue the serving certificate when it expires within this long
RENEW_BEFORE = timedelta(days=30)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ServingPaths:
    """Where the server's certificate, key and the CA that signed it are."""

    cert: Path
    key: Path
    ca: Path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as 0600 (temp file + rename), creating 0700 parents."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def split_sans(names: list[str] | tuple[str, ...]) -> tuple[list[str], list[IpAddress]]:
    """DNS names and IP addresses of a SAN list (``[::1]`` brackets stripped, duplicates dropped)."""
    dns: list[str] = []
    ips: list[IpAddress] = []
    for raw in names:
        name = raw.strip().strip("[]")
        if not name:
            continue
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name.lower() not in dns:
                dns.append(name.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    return dns, ips


def default_sans(host: str, extra: tuple[str, ...] = ()) -> list[str]:
    """What clients may dial: loopback names, this machine's name, ``--host`` and ``--tls-san``."""
    names = ["127.0.0.1", "::1", "localhost", socket.gethostname().lower()]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    names.extend(extra)
    dns, ips = split_sans(names)
    return [*dns, *(str(ip) for ip in ips)]


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    return key


def ensure_ca(data_dir: Path, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The data dir's CA, generated on first use."""
    pki = Path(data_dir) / PKI_DIR
    cert_path, key_path = pki / CA_CERT, pki / CA_KEY
    if cert_path.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), _load_key(key_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"joblet-ca@{int(now.timestamp())}")
    cert = (
        _builder(name, name, key, now, CA_DAYS, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: datetime, days: int,
             ca: bool) -> x509.CertificateBuilder:
    """A certificate valid from five minutes ago for ``days``: a CA signs certificates (and
    CRLs), a leaf only signs (ECDSA handshakes)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
    )


def _issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, subject: x509.Name, now: datetime,
           usage: x509.ObjectIdentifier, sans: list[str] | None = None,
           days: int = CERT_DAYS) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca.subject, key, now, days, ca=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans is not None:
        dns, ips = split_sans(sans)
        general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        general.extend(x509.IPAddress(ip) for ip in ips)
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def cert_sans(cert: x509.Certificate) -> tuple[set[str], set[IpAddress]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    ips = {ip for ip in ext.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)}
    return {d.lower() for d in ext.get_values_for_type(x509.DNSName)}, ips


def ensure_serving_cert(data_dir: Path, sans: list[str], now: datetime) -> ServingPaths:
    """The serving certificate for ``sans``: kept while it covers exactly these names, is
    signed by the current CA and is not about to expire; re-issued otherwise."""
    pki = Path(data_dir) / PKI_DIR
    ca, ca_key = ensure_ca(data_dir, now)
    paths = ServingPaths(pki / SERVING_CERT, pki / SERVING_KEY, pki / CA_CERT)
    dns, ips = split_sans(sans)
    if paths.cert.exists() and paths.key.exists():
        current = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        if (cert_sans(current) == (set(dns), set(ips)) and current.issuer == ca.subject
                and current.not_valid_after_utc - RENEW_BEFORE > now):
            return paths
    cert, key = _issue(ca, ca_key, _name("joblet-apiserver"), now, ExtendedKeyUsageOID.SERVER_AUTH, sans)
    write_private(paths.key, _key_pem(key))
    write_private(paths.cert, cert.public_bytes(serialization.Encoding.PEM))
    return paths


def issue_client_cert(data_dir: Path, user: str, groups: tuple[str, ...], now: datetime,
                      days: int = CERT_DAYS) -> tuple[bytes, bytes]:
    """A client certificate (CN = user, O = groups) signed by the data dir's CA: (cert PEM, key PEM)."""
    ca, ca_key = ensure_ca(data_dir, now)
    cert, key = _issue(ca, ca_key, _name(user, groups), now, ExtendedKeyUsageOID.CLIENT_AUTH, days=days)
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def subject_user(cert_pem: bytes) -> tuple[str, tuple[str, ...]]:
    """(CN, organizations) of a PEM certificate: the user and groups it stands for."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    cn = str(cns[0].value) if cns else ""
    return cn, tuple(str(o.value) for o in orgs)


#: the identity (client certificate CN) with which the API server reads a remote node's logs;
#: a node's log endpoint accepts no other peer (joblet.node.logserver).
NODE_LOG_CLIENT_CN = "system:joblet-apiserver"


def node_log_client_cert(data_dir: Path, now: datetime) -> tuple[bytes, bytes]:
    """The API server's client certificate for node log endpoints, signed by the data dir's CA."""
    return issue_client_cert(data_dir, NODE_LOG_CLIENT_CN, (), now)


def self_signed_serving_cert(cn: str, sans: list[str], now: datetime,
                             days: int = CERT_DAYS) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) of a self-signed serving certificate for ``sans``: its own trust anchor,
    for a peer that pins it (a node's log endpoint, whose PEM the API server reads off the Node)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    dns, ips = split_sans(sans)
    general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    general.extend(x509.IPAddress(ip) for ip in ips)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)
