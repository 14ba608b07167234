"""TLS for `vapixlog serve`: a given certificate and key, or a self-signed pair as on a device.

An Axis device ships with a self-signed certificate for its own hostname; clients either
accept it once or pin it. `self_signed` does the same: an EC P-256 key and a certificate for
the device hostname (plus `localhost`, 127.0.0.1 and ::1), valid for ten years, generated
once into `<state>/tls/` and reused on later starts. It is generated again only when missing,
unreadable, expired, or no longer covering the hostname (after `--hostname` changed).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALIDITY = datetime.timedelta(days=3650)


class TlsError(Exception):
    """A certificate or key that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path
    keyfile: Path
    fingerprint: str  # SHA-256 of the DER certificate, colon-separated upper-case hex


def load_pair(certfile: Path, keyfile: Path) -> TlsFiles:
    """Check that the PEM files are a usable certificate and key, as uvicorn will load them."""
    for path in (certfile, keyfile):
        if not path.exists():
            raise TlsError(f"{path}: no such file")
        if not path.is_file():
            raise TlsError(f"{path}: not a file")
    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    except OSError as exc:
        raise TlsError(f"{certfile}: cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise TlsError(f"{certfile}: not a PEM certificate") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except OSError as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise TlsError(f"{keyfile}: unusable key for {certfile}: {reason}") from None
    return TlsFiles(certfile, keyfile, fingerprint(cert))


def self_signed(directory: Path, hostname: str, address: str | None = None) -> TlsFiles:
    """The device's self-signed pair in `directory`, generated when needed; it names
    `address` too when given (a device of a fleet on its own address)."""
    certfile, keyfile = directory / CERT_NAME, directory / KEY_NAME
    try:
        files = load_pair(certfile, keyfile)
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        names = [hostname, *([address] if address else [])]
        if all(_covers(cert, name) for name in names) and _valid_now(cert):
            return files
    except (TlsError, OSError, ValueError):
        pass
    cert_pem, key_pem = generate(hostname, address)
    directory.mkdir(parents=True, exist_ok=True)
    _write(keyfile, key_pem, 0o600)
    _write(certfile, cert_pem, 0o644)
    return load_pair(certfile, keyfile)


def generate(hostname: str, address: str | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a new self-signed server certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys([hostname, address or "", "localhost", "127.0.0.1", "::1"]):
        san = _san(host)
        if san is not None:
            sans.append(san)
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _san(host: str) -> x509.GeneralName | None:
    """The SAN entry for a host name or address; None for a name a certificate cannot hold."""
    if not host:
        return None
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return x509.DNSName(host.encode("idna").decode("ascii"))
    except (UnicodeError, ValueError):
        return None


def _covers(cert: x509.Certificate, hostname: str) -> bool:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        wanted = _san(hostname)
        names = sans.get_values_for_type(x509.DNSName)
        return wanted is None or wanted.value.lower() in (name.lower() for name in names)
    return address in sans.get_values_for_type(x509.IPAddress)


def _valid_now(cert: x509.Certificate) -> bool:
    now = datetime.datetime.now(datetime.UTC)
    return cert.not_valid_before_utc <= now < cert.not_valid_after_utc


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically, created with `mode` from the start (the key is never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
