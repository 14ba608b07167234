"""The client over HTTPS: a CA file, a pinned fingerprint, the insecure switch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servers import USERS
from test_tls import TlsServer
from vapixlog.client import AuthenticationError, CertificatePinError, Client, TlsError

PASSWORD = USERS["root"][1]


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    server = TlsServer(
        tmp_path_factory.mktemp("client-tls") / "state", extra_args=["--tls-self-signed"]
    )
    server.add_users()
    server.start()
    yield server
    if server.proc:
        server.stop()


def pin(server: TlsServer) -> str:
    (fingerprint,) = server.fingerprints()
    return fingerprint


def test_ca_file(https: TlsServer) -> None:
    cafile = https.state_dir / "tls" / "cert.pem"
    with Client(https.url, user="root", password=PASSWORD, ca_file=cafile) as c:
        c.write_message("over https")
        assert c.auth_scheme == "digest"
        assert "over https" in c.system_log()


@pytest.mark.parametrize("colons", [True, False])
def test_pinned_fingerprint(https: TlsServer, colons: bool) -> None:
    fingerprint = pin(https) if colons else pin(https).replace(":", "").lower()
    with Client(https.url, user="root", password=PASSWORD, pin_sha256=fingerprint) as c:
        assert c.persistent_enabled() is False


def test_wrong_pin_fails_before_credentials_are_sent(https: TlsServer) -> None:
    wrong = "00" * 32
    with (
        Client(https.url, user="root", password="a wrong password", pin_sha256=wrong) as c,
        pytest.raises(CertificatePinError) as refused,
    ):
        c.write_message("never sent")
    assert pin(https) in str(refused.value)
    # Had the request gone out, the wrong password would be an audited failed login.
    with Client(https.url, user="root", password=PASSWORD, pin_sha256=pin(https)) as c:
        log = c.audit_log()
    assert "Authentication failed" not in log and "never sent" not in log
    # (As it is with the right pin.)
    with (
        Client(https.url, user="root", password="a wrong password", pin_sha256=pin(https)) as c,
        pytest.raises(AuthenticationError),
    ):
        c.write_message("refused")
    with Client(https.url, user="root", password=PASSWORD, pin_sha256=pin(https)) as c:
        failed = "Authentication: root@127.0.0.1 Authentication failed (HTTP/S)."
        assert failed in c.audit_log()


def test_untrusted_certificate_and_insecure(https: TlsServer) -> None:
    with Client(https.url, user="root", password=PASSWORD) as c, pytest.raises(TlsError) as bad:
        c.persistent_enabled()
    assert "certificate" in str(bad.value)
    with Client(https.url, user="root", password=PASSWORD, insecure=True) as c:
        assert c.persistent_enabled() is False
    with pytest.raises(ValueError, match="fingerprint"):
        Client(https.url, pin_sha256="AA:BB")
    with pytest.raises(ValueError, match="insecure"):
        Client(https.url, insecure=True, pin_sha256=pin(https))
