"""The audit log end to end (audit-log.md; DECISIONS 6 and 7): on AXIS OS 12.5+ profiles the
audited actions go to their own store, read at `auditlog.cgi` by admins, kept across reboots and
crashes, untouched by clearLog, in the server report; before 12.5 they stay in the system log."""

from __future__ import annotations

import io
import re
import signal
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from servers import USERS, Server, run_cli
from vapixlog.client import Client, NotFoundError

API = "/config/rest/log/v1"
AUDIT = "/axis-cgi/auditlog.cgi"
SYSTEMLOG = "/axis-cgi/systemlog.cgi"
ADMIN = ("root", USERS["root"][1])
LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d \S+ "
    r"\[ INFO    \] (audit|httpd)\[\d+\]: .+\."
)


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("audit") / "state", "--reboot-downtime", "0.2")
    yield server
    if server.proc:
        server.stop()


def audit_lines(server: Server, **params: str) -> list[str]:
    reply = httpx.get(server.url + AUDIT, params=params, auth=ADMIN, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text.endswith("\n")
    return reply.text.splitlines()


def messages(lines: list[str]) -> list[str]:
    return [line.split("]: ", 1)[1] for line in lines]


def set_persistent(server: Server, enabled: bool) -> None:
    reply = httpx.patch(
        server.url + API + "/persistent/enabled", json={"data": enabled}, auth=ADMIN, timeout=10
    )
    assert reply.json() == {"status": "success"}, reply.text


def clear_log(server: Server) -> None:
    reply = httpx.post(
        server.url + API + "/persistent/clearLog", json={"data": {}}, auth=ADMIN, timeout=10
    )
    assert reply.json() == {"status": "success"}, reply.text


def test_the_cgi_answers_as_the_spec_says(device: Server) -> None:
    for path in (AUDIT, "/axis-cgi/admin/auditlog.cgi"):
        lines = httpx.get(device.url + path, auth=ADMIN, timeout=10).text.splitlines()
        assert lines and all(LINE.fullmatch(line) for line in lines), lines
        assert "Entity Management: Audit Log started." in messages(lines)
    assert len(audit_lines(device, tail="2")) == 2
    with Client(device.url, user="root", password=ADMIN[1]) as client:  # the library's call
        assert client.audit_log(tail=1).splitlines() == audit_lines(device)[-1:]
    everything = audit_lines(device)
    assert audit_lines(device, tail="0") == everything  # ours: not a number > 0 is "absent"
    assert audit_lines(device, tail="x", unknown="1") == everything
    version = httpx.get(device.url + AUDIT, params={"version": "true", "tail": "5"}, auth=ADMIN)
    assert (version.status_code, version.text) == (200, "1.0.0")
    for method in ("POST", "PUT", "DELETE"):
        wrong = httpx.request(method, device.url + AUDIT, auth=ADMIN, timeout=10)
        assert wrong.status_code == 400, method
    assert httpx.get(device.url + AUDIT, timeout=10).status_code == 401
    for user in ("op", "viewer"):
        refused = httpx.get(device.url + AUDIT, auth=(user, USERS[user][1]), timeout=10)
        assert refused.status_code == 403
        assert refused.text.strip() == "Only an admin can access the audit logs."


def test_actions_are_audited_there_and_not_in_the_system_log(device: Server) -> None:
    set_persistent(device, True)
    set_persistent(device, False)
    clear_log(device)
    # A name the device does not know is never written as sent (DECISIONS 20).
    httpx.get(device.url + API + "/persistent/enabled", auth=("n0body-<x>", "guess"), timeout=10)
    httpx.get(device.url + API + "/persistent/enabled", auth=("op", "wrong"), timeout=10)
    audited = messages(audit_lines(device))
    expected = [
        "API Activity: root@127.0.0.1 configured log.v1.persistent.enabled (true).",
        "API Activity: root@127.0.0.1 configured log.v1.persistent.enabled (false).",
        "API Activity: root@127.0.0.1 configured log.v1.persistent.clearLog ({}).",
        "Authentication: <unknown user>@127.0.0.1 Authentication failed (HTTP/S).",
        "Authentication: op@127.0.0.1 Authentication failed (HTTP/S).",
    ]
    assert [m for m in audited if m in expected] == expected
    assert not [line for line in audit_lines(device) if "n0body" in line]
    # A successful login: once per user and address in 5 minutes, not per request.
    assert audited.count("Authentication: root@127.0.0.1 Authentication successful (HTTP/S).") == 1
    system = httpx.get(device.url + SYSTEMLOG, auth=ADMIN, timeout=10).text
    assert "configured log.v1" not in system and "Authentication failed" not in system
    assert "n0body" not in system


def test_clearlog_leaves_it_and_it_survives_reboot_and_sigkill(device: Server) -> None:
    set_persistent(device, True)
    before = audit_lines(device)
    clear_log(device)
    after = audit_lines(device)
    assert after[: len(before)] == before  # nothing of it went with the persistent log
    reboot = httpx.get(device.url + "/axis-cgi/restart.cgi", auth=ADMIN, timeout=10)
    assert reboot.status_code == 200
    _wait_down_and_up(device)
    rebooted = audit_lines(device)
    assert rebooted[: len(after)] == after
    new = messages(rebooted[len(after) :])
    assert new[:2] == [
        "Entity Management: root@127.0.0.1 Restart.",
        "Entity Management: Audit Log started.",
    ]
    set_persistent(device, False)  # acknowledged: on disk before the answer
    acknowledged = audit_lines(device)[-1]
    assert acknowledged.endswith("configured log.v1.persistent.enabled (false).")
    device.stop(signal.SIGKILL)
    device.start()
    assert acknowledged in audit_lines(device)


def test_account_changes_are_audited_when_the_device_sees_them(device: Server) -> None:
    first = messages(audit_lines(device))
    for name, role in (("root", "Administrator"), ("op", "Operator"), ("viewer", "Viewer")):
        assert f"Account Change: created account {name} ({role})." in first
    for args in (
        ("add", "carol", "--role", "viewer", "--password", "one"),
        ("add", "carol", "--role", "operator", "--password", "one"),
        ("add", "carol", "--role", "operator", "--password", "two"),
        ("remove", "carol"),
    ):
        assert run_cli("users", *args, state_dir=device.state_dir).returncode == 0
        time.sleep(1.1)  # the service looks at the user file at most once a second
        audit_lines(device)  # a request: the device notices the change
    changes = [m for m in messages(audit_lines(device)) if "account carol" in m]
    assert changes == [
        "Account Change: created account carol (Viewer).",
        "Account Change: changed account carol (Operator).",
        "Account Change: changed account carol (Password Update).",
        "Account Change: deleted account carol (Operator).",
    ]
    assert "carol" not in httpx.get(device.url + SYSTEMLOG, auth=ADMIN, timeout=10).text


def test_the_server_report_carries_it(device: Server) -> None:
    lines = audit_lines(device)
    tar = httpx.get(
        device.url + "/axis-cgi/serverreport.cgi", params={"mode": "tar_all"}, auth=ADMIN
    )
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as archive:
        member = archive.extractfile("var/lib/syslog-ng/audit.log")
        assert member is not None
        in_report = member.read().decode().splitlines()
    assert in_report[: len(lines)] == lines
    text = httpx.get(device.url + "/axis-cgi/serverreport.cgi", auth=ADMIN, timeout=30).text
    section = text.split("----- Audit log -----\n\n", 1)[1]
    assert section.startswith(lines[0])


def test_before_12_5_there_is_no_audit_log(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--firmware", "12.4")
    try:
        assert httpx.get(server.url + AUDIT, auth=ADMIN, timeout=10).status_code == 404
        with (
            Client(server.url, user="root", password=ADMIN[1]) as client,
            pytest.raises(NotFoundError),
        ):
            client.audit_log()
        set_persistent(server, True)
        httpx.get(server.url + API + "/persistent/enabled", auth=("op", "wrong"), timeout=10)
        system = httpx.get(server.url + SYSTEMLOG, auth=ADMIN, timeout=10).text.splitlines()
        audited = [line.split("]: ", 1)[1] for line in system if "] audit[" in line]
        assert "Authentication: root@127.0.0.1 Authentication successful (HTTP/S)." in audited
        assert "Account Change: created account op (Operator)." in audited
        assert [m for m in audited if "successful" not in m and "Account" not in m] == [
            "API Activity: root@127.0.0.1 configured log.v1.persistent.enabled (true).",
            "Authentication: op@127.0.0.1 Authentication failed (HTTP/S).",
        ]
        assert not (server.state_dir / "audit").exists()
    finally:
        server.stop()


def _wait_down_and_up(server: Server, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    was_down = False
    while time.monotonic() < deadline:
        try:
            httpx.get(server.url + API, timeout=1)
            if was_down:
                return
        except httpx.TransportError:
            was_down = True
        time.sleep(0.05)
    raise AssertionError("the device did not reboot")
