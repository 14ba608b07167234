"""Fixtures and helpers of the remote syslog tests: a test CA, a real rsyslogd
(tests/rsyslog.py) and a device that trusts the CA, in a time zone with a half-hour offset
(+05:30), so the offset and the local time of each format are checked for real; rsyslogd
runs in UTC. Test modules import the fixtures they use."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest

from conftest import start_server
from pki import ServerFiles, TestCa
from reboots import ADMIN
from remotesyslog_api import audit_log, system_log
from rsyslog import RSYSLOGD, Rsyslog
from servers import Server
from vapixlog.syslog.line import ParsedLine, parse_line

WRITE = "/config/rest/log/v1/writeMessage"


@dataclass(frozen=True)
class Pki:
    ca: TestCa
    tls: ServerFiles
    rogue: ServerFiles


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = TestCa("trusted-ca", folder)
    return Pki(ca, ca.server("tls"), TestCa("rogue-ca", folder).server("rogue"))


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Rsyslog]:
    if not Path(RSYSLOGD).exists():  # a failure, not a skip: these are the acceptance tests
        pytest.fail(
            "needs Debian's rsyslog and rsyslog-gnutls: apt-get install rsyslog rsyslog-gnutls "
            "(make test installs them in a new .venv)"
        )
    server = Rsyslog(
        tmp_path_factory.mktemp("rsyslog"), tls=pki.tls, rogue=pki.rogue, ca=pki.ca.cert_path
    )
    server.start()
    yield server
    server.stop()


def start_device(folder: Path, pki: Pki, *args: str, port: int | None = None) -> Server:
    with mock.patch.dict(os.environ, {"TZ": "IST-5:30"}):
        return start_server(
            folder / "state",
            "--remote-syslog-ca",
            str(pki.ca.cert_path),
            "--rate-limit",
            "off",
            *args,
            port=port,
        )


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Server]:
    server = start_device(tmp_path_factory.mktemp("device"), pki)
    yield server
    if server.proc:
        server.stop()


def target(rsyslog: Rsyslog, name: str, **fields: Any) -> dict[str, Any]:
    protocol = {"udp": "UDP", "tcp": "TCP"}.get(name, "TLS")
    return {"address": "127.0.0.1", "port": rsyslog.ports[name], "protocol": protocol, **fields}


def write(
    server: Server, message: str, severity: int = 6, client: httpx.Client | None = None
) -> float:
    """writeMessage; returns how long the call took."""
    started = time.monotonic()
    body = {"data": {"msg": message, "severity": severity}}
    if client is None:
        response = httpx.post(server.url + WRITE, json=body, auth=ADMIN, timeout=10)
    else:
        response = client.post(WRITE, json=body)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def device_line(server: Server, text: str, *, audit: bool = False) -> tuple[str, ParsedLine]:
    """The one line with `text` in the system log, or the audit log with `audit`."""
    lines = [line for line in (audit_log if audit else system_log)(server) if text in line]
    assert len(lines) == 1, lines
    parsed = parse_line(lines[0])
    assert parsed is not None
    return lines[0], parsed


def wait_for_line(server: Server, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in system_log(server) if text in line]
        if lines or time.monotonic() > deadline:
            assert lines, f"no line with {text!r}"
            return lines[-1]
        time.sleep(0.1)
