"""HTTPS: `--tls-self-signed` and `--tls-cert/--tls-key`, with httpx, requests and curl."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from requests.auth import HTTPDigestAuth

from servers import USERS, VAPIXLOG, Server, free_port, run_cli

API = "/config/rest/log/v1"
PASSWORD = USERS["root"][1]
FINGERPRINT = re.compile(r"SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})")


@dataclass
class TlsServer(Server):
    """A `vapixlog serve` that speaks HTTPS, trusted through `cafile`."""

    cafile: Path | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "VAPIXLOG_ADMIN_PASSWORD": PASSWORD}
        self.log_path = self.state_dir.parent / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                *VAPIXLOG,
                "serve",
                "--port",
                str(self.port),
                "--state-dir",
                str(self.state_dir),
                *self.default_args(),
                *self.extra_args,
            ],
            stdout=self.log_path.open("a"),
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            cafile = self.cafile or self.state_dir / "tls" / "cert.pem"
            try:
                if cafile.exists():
                    httpx.get(self.url + API, verify=_context(cafile), timeout=1)
                    return
            except (httpx.TransportError, ssl.SSLError):  # not up, or the file not yet written
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def fingerprints(self) -> list[str]:
        return FINGERPRINT.findall(self.output())


def _context(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def _start(state_dir: Path, *args: str, cafile: Path | None = None) -> TlsServer:
    server = TlsServer(state_dir, extra_args=list(args), cafile=cafile)
    server.add_users()
    server.start()
    return server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    server = _start(tmp_path_factory.mktemp("tls") / "state", "--tls-self-signed")
    yield server
    if server.proc:
        server.stop()


def cert_path(server: Server) -> Path:
    return server.state_dir / "tls" / "cert.pem"


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.mark.parametrize("digest", [False, True], ids=["basic", "digest"])
def test_httpx_basic_and_digest(tls_server: TlsServer, digest: bool) -> None:
    auth: httpx.Auth = (
        httpx.DigestAuth("root", PASSWORD) if digest else httpx.BasicAuth("root", PASSWORD)
    )
    context = _context(cert_path(tls_server))
    with httpx.Client(base_url=tls_server.url, auth=auth, verify=context, timeout=10) as client:
        assert client.get(API).json()["status"] == "success"
        written = client.post(f"{API}/writeMessage", json={"data": {"msg": "over TLS"}})
        assert written.json() == {"status": "success"}
        assert "over TLS" in client.get("/axis-cgi/systemlog.cgi").text
    # By name too: the certificate also covers localhost.
    url = f"https://localhost:{tls_server.port}{API}"
    assert httpx.get(url, auth=auth, verify=context, timeout=10).status_code == 200


def test_unverified_client_is_refused_by_its_own_tls_check(tls_server: TlsServer) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_server.url + API, timeout=10)


def test_requests_digest(tls_server: TlsServer) -> None:
    response = requests.get(
        tls_server.url + API,
        auth=HTTPDigestAuth("root", PASSWORD),
        verify=str(cert_path(tls_server)),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"


def test_curl_digest_with_cacert(tls_server: TlsServer) -> None:
    hostname = json.loads((tls_server.state_dir / "identity.json").read_text())["hostname"]
    for url, extra in (
        (tls_server.url + API, []),
        # The device's own name, as a client on the network would use it.
        (
            f"https://{hostname}:{tls_server.port}{API}",
            ["--resolve", f"{hostname}:{tls_server.port}:127.0.0.1"],
        ),
    ):
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--digest",
                "-u",
                f"root:{PASSWORD}",
                *extra,
                url,
                "--cacert",
                str(cert_path(tls_server)),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["status"] == "success"


def test_self_signed_certificate_is_like_a_devices(tls_server: TlsServer) -> None:
    cert = load_cert(cert_path(tls_server))
    hostname = json.loads((tls_server.state_dir / "identity.json").read_text())["hostname"]
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == [hostname]
    assert cert.issuer == cert.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {hostname, "localhost"}
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=3640) < lifetime < datetime.timedelta(days=3660)
    assert cert.serial_number > 1 << 64  # random, not 1
    key_file = tls_server.state_dir / "tls" / "key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # The printed fingerprint is the certificate's, for clients that pin it.
    printed = tls_server.fingerprints()
    assert printed == [cert.fingerprint(hashes.SHA256()).hex(":").upper()]
    # And the server presents exactly that certificate.
    der = ssl.PEM_cert_to_DER_cert(
        ssl.get_server_certificate(("127.0.0.1", tls_server.port), timeout=10)
    )
    assert der == cert.public_bytes(serialization.Encoding.DER)


def test_plain_http_to_the_tls_port_fails_cleanly(tls_server: TlsServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"GET /config/rest/log/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):  # closed by the server: no hang (the 10 s timeout)
            answer += chunk
    assert b"HTTP/1.1 200" not in answer
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}{API}", auth=("root", PASSWORD), timeout=10)
    # The server is unharmed.
    assert tls_server.proc is not None and tls_server.proc.poll() is None
    response = httpx.get(
        tls_server.url + API,
        auth=("root", PASSWORD),
        verify=_context(cert_path(tls_server)),
        timeout=10,
    )
    assert response.status_code == 200


def test_restart_keeps_the_certificate_a_new_hostname_renews_it(tmp_path: Path) -> None:
    server = _start(tmp_path / "state", "--tls-self-signed")
    try:
        first = load_cert(cert_path(server))
        key = (server.state_dir / "tls" / "key.pem").read_bytes()
        server.restart()
        assert load_cert(cert_path(server)) == first
        assert (server.state_dir / "tls" / "key.pem").read_bytes() == key
        fingerprints = server.fingerprints()
        assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]

        server.stop()
        server.extra_args += ["--hostname", "camera-42.example"]
        server.start()
        renewed = load_cert(cert_path(server))
        assert renewed != first
        sans = renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "camera-42.example" in sans.get_values_for_type(x509.DNSName)
        assert server.fingerprints()[-1] != fingerprints[0]

        # A damaged certificate is replaced, not fatal.
        server.stop()
        cert_path(server).write_text("garbage\n")
        server.start()
        assert load_cert(cert_path(server)) != renewed
        assert len(set(server.fingerprints())) == 3
    finally:
        if server.proc:
            server.stop()


def _own_pair(directory: Path, *, name: str = "test-device") -> tuple[Path, Path]:
    """An RSA certificate and key made here, independent of vapixlog.tls."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "own-cert.pem", directory / "own-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_given_certificate_and_key(tmp_path: Path) -> None:
    cert_file, key_file = _own_pair(tmp_path / "pki")
    server = _start(
        tmp_path / "state",
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        cafile=cert_file,
    )
    try:
        response = httpx.get(
            server.url + API,
            auth=httpx.DigestAuth("root", PASSWORD),
            verify=_context(cert_file),
            timeout=10,
        )
        assert response.status_code == 200
        assert server.fingerprints() == [
            load_cert(cert_file).fingerprint(hashes.SHA256()).hex(":").upper()
        ]
        assert not (server.state_dir / "tls").exists()  # nothing generated
    finally:
        server.stop()


def _serve_fails(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli("serve", "--port", str(free_port()), *args, state_dir=tmp_path / "state")
    assert "Traceback" not in result.stderr + result.stdout
    return result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "k.pem"], "--tls-cert and --tls-key go together"),
        (
            ["--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
            "either --tls-cert/--tls-key or --tls-self-signed",
        ),
        (["--request-timeout", "0"], "must be positive"),
        (["--request-timeout", "soon"], "invalid number"),
        (["--max-connections", "-3"], "must be positive"),
    ],
)
def test_bad_flag_combinations_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _serve_fails(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_unusable_certificate_files(tmp_path: Path) -> None:
    good_cert, good_key = _own_pair(tmp_path / "a")
    _other_cert, other_key = _own_pair(tmp_path / "b")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\n\xff\xfenot base64\n")
    cases = [
        (garbage, good_key, "not a PEM certificate"),
        (good_cert, garbage, "unusable key"),
        (good_cert, other_key, "unusable key"),  # a key that does not match
        (tmp_path / "missing.pem", good_key, "no such file"),
        (tmp_path, good_key, "not a file"),
    ]
    for cert, key, message in cases:
        result = _serve_fails(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
        assert result.returncode == 1, (cert, key, result.stderr)
        assert result.stderr.startswith("vapixlog: TLS: ") and message in result.stderr, (
            result.stderr
        )
    if os.geteuid() != 0:  # root reads anything
        unreadable = tmp_path / "unreadable.pem"
        unreadable.write_bytes(good_cert.read_bytes())
        unreadable.chmod(0)
        result = _serve_fails(tmp_path, "--tls-cert", str(unreadable), "--tls-key", str(good_key))
        assert result.returncode == 1 and "cannot read" in result.stderr


def test_default_policy_over_https_offers_basic_only(tmp_path: Path) -> None:
    """`recommended` (the device's default): Basic on HTTPS, and only Basic (DECISIONS 1)."""
    server = _start(tmp_path / "state", "--tls-self-signed", "--auth-policy", "recommended")
    try:
        context = _context(cert_path(server))
        challenge = httpx.get(server.url + API, verify=context, timeout=10)
        serial = json.loads((server.state_dir / "identity.json").read_text())["serial"]
        assert challenge.headers.get_list("www-authenticate") == [f'Basic realm="AXIS_{serial}"']
        basic = httpx.get(server.url + API, auth=("root", PASSWORD), verify=context, timeout=10)
        assert basic.status_code == 200
        digest = httpx.DigestAuth("root", PASSWORD)
        assert httpx.get(server.url + API, auth=digest, verify=context).status_code == 401
        curl = subprocess.run(
            ["curl", "-s", "--anyauth", "--cacert", str(cert_path(server)),
             "-u", f"root:{PASSWORD}", server.url + API],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert '"status":"success"' in curl.stdout
    finally:
        server.stop()
