"""HTTPS for the appliance's web pages on the venue network: its certificate and when to use it.

Staff passwords, session cookies and handheld tokens cross the venue's Wi-Fi, so the pages are
served over TLS whenever they answer anything but the appliance itself (``web_tls = "auto"``,
the default). ``wicket-edge init`` makes a self-signed certificate when the configured files
(``web_cert``, ``web_key``) do not exist, naming the host name, ``localhost``, the loopback
addresses, the appliance's own IP addresses and the ``web_bind`` address, plus any names in
``web_tls_names``; a venue with its own certificate points the two settings at it instead.
Browsers and handhelds trust the self-signed certificate by its SHA-256 fingerprint, shown on
the dashboard and by ``wicket-edge tls`` (see docs/handheld.md).
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync.timeutil import utcnow
from sync.websafe import bind_host, is_loopback

VALID_DAYS = 825  # the longest phones accept for a certificate they are told to trust
TLS_MODES = ("auto", "on", "off")
_SIOCGIFADDR = 0x8915


class TlsError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class CertInfo:
    fingerprint: str  # SHA-256, colon-separated upper-case hex, as browsers show it
    names: tuple[str, ...]  # DNS names and IP addresses it is valid for
    not_after: datetime


def serves_tls(mode: str, bind: str) -> bool:
    """Whether the pages are served over HTTPS: always with ``on``, never with ``off``, and
    with ``auto`` unless they answer only on the appliance itself."""
    if mode == "auto":
        return not is_loopback(bind_host(bind))
    return mode == "on"


def local_addresses() -> list[str]:
    """The IPv4 addresses of this machine's network interfaces (Linux), loopback excluded."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            request = array.array("B", struct.pack("256s", name.encode()[:15]))
            try:
                fcntl.ioctl(s.fileno(), _SIOCGIFADDR, request)
            except OSError:  # an interface without an IPv4 address
                continue
            address = socket.inet_ntoa(request.tobytes()[20:24])
            if not ipaddress.ip_address(address).is_loopback:
                found.append(address)
    return found


def certificate_names(bind: str, extra: str = "") -> list[str]:
    """What a new certificate is made for, host names first, each once."""
    names = [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1",
             *local_addresses()]
    host = bind_host(bind)
    if host and host not in ("0.0.0.0", "::"):
        names.append(host)
    names += [n.strip() for n in extra.split(",") if n.strip()]
    return list(dict.fromkeys(n for n in names if n))


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_self_signed(cert_path: Path, key_path: Path, names: list[str],
                     now: datetime | None = None) -> CertInfo:
    """A new P-256 key (written owner-only) and a self-signed certificate for ``names``."""
    now = now or utcnow()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wicket appliance")])
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            # a CA of its own, so that phones accept it as a certificate to trust
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return describe(cert_path)


def describe(cert_path: Path) -> CertInfo:
    try:
        return describe_pem(cert_path.read_bytes())
    except OSError as e:
        raise TlsError(f"{cert_path}: cannot read the certificate: {e.strerror}") from None
    except ValueError:
        raise TlsError(f"{cert_path}: not a PEM certificate") from None


def describe_pem(pem: bytes) -> CertInfo:
    cert = x509.load_pem_x509_certificate(pem)
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n.value) for n in san)
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(":".join(digest[i:i + 2] for i in range(0, len(digest), 2)), names,
                    cert.not_valid_after_utc)


def ensure_certificate(cert_path: Path, key_path: Path, bind: str, extra: str = "",
                       say=print) -> CertInfo:
    """The configured certificate; a new self-signed one when neither file exists. One file
    without the other is an error (a venue's own certificate half copied)."""
    if cert_path.exists() != key_path.exists():
        missing = key_path if cert_path.exists() else cert_path
        raise TlsError(f"{missing}: missing (web_cert and web_key go together)")
    if not cert_path.exists():
        info = make_self_signed(cert_path, key_path, certificate_names(bind, extra))
        say(f"created a self-signed certificate {cert_path} (key {key_path}, owner-only) for "
            f"{', '.join(info.names)}; SHA-256 fingerprint {info.fingerprint}")
        return info
    return describe(cert_path)
