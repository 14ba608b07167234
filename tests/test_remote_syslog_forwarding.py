"""Remote syslog against a real rsyslogd: every transport and format as rsyslog parses it,
the filters, `test`, TLS trust and the CA kept in the state dir, and several devices that
each forward on their own, across a reboot. Faults: test_remote_syslog_faults.py."""

from __future__ import annotations

import datetime
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from reboots import reboot_and_wait
from remote_syslog_setup import (  # the fixtures too
    Pki,
    device,
    device_line,
    pki,
    rsyslog,
    start_device,
    target,
    wait_for_line,
    write,
)
from remotesyslog_api import rpc, setup
from rsyslog import Rsyslog, containing
from servers import Server, free_port_block, run_cli
from vapixlog.syslog.line import ParsedLine

__all__ = ["device", "pki", "rsyslog"]  # fixtures, used by name
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def assert_as_sent(record: dict[str, Any], raw: str, line: ParsedLine, syslog_format: str) -> None:
    """The raw message is what the formats define, and rsyslog parsed the device's fields."""
    if syslog_format == "AXIS":
        assert record["raw"] == raw  # the device's own line, without PRI
        assert record["hostname"] == line.hostname
        return
    pri = f"<{8 + line.severity}>"
    parsed = {
        "hostname": line.hostname,
        "appname": line.tag,
        "procid": str(line.pid),
        "msgid": "-",
        "sd": "-",
        "severity": str(int(line.severity)),
        "facility": "1",
    }
    assert {key: record[key] for key in parsed} == parsed
    if syslog_format == "RFC5424":
        bom = "" if line.message.isascii() else "\ufeff"  # rsyslog keeps the BOM in msg
        assert record["raw"] == (
            f"{pri}1 {line.timestamp} {line.hostname} {line.tag} {line.pid} - - {bom}{line.message}"
        )
        assert record["timestamp"] == line.timestamp  # milliseconds and the +05:30 offset
        assert record["msg"] == bom + line.message
        assert record["version"] == "1"
        return
    t = datetime.datetime.fromisoformat(line.timestamp)
    stamp = f"{MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}.{line.timestamp[20:23]}"
    assert record["raw"] == f"{pri}{stamp} {line.hostname} {line.tag}[{line.pid}]: {line.message}"
    # No offset in RFC 3164: rsyslog reads the device's local time as its own (UTC).
    assert record["timestamp"][5:23] == line.timestamp[5:23]
    assert record["timestamp"].endswith("+00:00") and line.timestamp.endswith("+05:30")
    assert record["msg"] == " " + line.message  # rsyslog keeps the space after "tag:"


@pytest.mark.parametrize("syslog_format", ["AXIS", "RFC3164", "RFC5424"])
@pytest.mark.parametrize("name", ["udp", "tcp", "tls"])
def test_entries_arrive_as_the_device_wrote_them(
    device: Server, rsyslog: Rsyslog, name: str, syslog_format: str
) -> None:
    start = len(rsyslog.records(name))
    server = target(rsyslog, name, syslogFormat=syslog_format, severity="Debug")
    setup(device, server)
    marker = uuid.uuid4().hex
    write(device, f"{marker}: caf\u00e9 \\ \x07 \u202e done", severity=3)
    found = rsyslog.wait_for(name, containing(marker), start=start)
    assert len(found) == 1
    assert_as_sent(found[0], *device_line(device, marker), syslog_format)
    # An audit entry (type All forwards the audit log too): that of the setup itself, written
    # once the server is in use.
    audit = (
        f"API Activity: root@127.0.0.1 configured API.RemoteSyslog1.Servers "
        f"({server['protocol']} 127.0.0.1:{server['port']} {syslog_format} Debug All)."
    )
    found = rsyslog.wait_for(name, containing(audit), start=start)
    assert len(found) == 1
    assert_as_sent(found[0], *device_line(device, audit, audit=True), syslog_format)


def test_severity_threshold_and_type_audit(device: Server, rsyslog: Rsyslog) -> None:
    start = {name: len(rsyslog.records(name)) for name in ("udp", "tcp")}
    setup(
        device,
        target(rsyslog, "udp", syslogFormat="RFC5424", severity="Warning", type="All"),
        target(rsyslog, "tcp", syslogFormat="RFC5424", severity="Debug", type="Audit"),
    )
    marker = uuid.uuid4().hex
    for severity in range(8):
        write(device, f"{marker} {severity}", severity=severity)
    # An audit event: a failed login (INFO, process httpd, in the audit log of 12.5+).
    failed = httpx.get(device.url + "/axis-cgi/systemlog.cgi", auth=("root", "wrong"), timeout=10)
    assert failed.status_code == 401
    passed = rsyslog.wait_for("udp", containing(marker), start=start["udp"], count=5)
    login = "Authentication: root@127.0.0.1 Authentication failed (HTTP/S)."
    audit = rsyslog.wait_for("tcp", containing(login), start=start["tcp"])
    time.sleep(0.3)  # anything more would have arrived by now
    passed = rsyslog.wait_for("udp", containing(marker), start=start["udp"], timeout=0)
    assert sorted(record["severity"] for record in passed) == ["0", "1", "2", "3", "4"]
    # Type Audit: every audit event whatever the threshold (they are all INFO), nothing else.
    assert len(audit) == 1 and audit[0]["severity"] == "6" and audit[0]["appname"] == "httpd"
    audited = rsyslog.records("tcp")[start["tcp"] :]
    assert all(r["msg"].startswith(("API Activity: ", "Authentication: ")) for r in audited)
    assert not [r for r in audited if marker in r["msg"]]
    # Type All at Warning: the threshold applies to audit events too (INFO: not sent).
    assert not [r for r in rsyslog.records("udp")[start["udp"] :] if login in r["msg"]]


def test_test_sends_one_message_per_severity_at_or_above_the_threshold(
    device: Server, rsyslog: Rsyslog
) -> None:
    start = {name: len(rsyslog.records(name)) for name in ("udp", "tcp", "tls")}
    setup(
        device,
        target(rsyslog, "tcp", syslogFormat="RFC3164", severity="Warning"),
        target(rsyslog, "udp", syslogFormat="RFC5424", severity="Debug"),
    )
    reply = rpc(device, "test")
    assert reply["data"] == rpc(device, "status")["data"]
    levels = [
        "Emergency",
        "Alert",
        "Critical",
        "Error",
        "Warning",
        "Notice",
        "Informational",
        "Debug",
    ]
    test = containing("remote-syslogd-test: This is ")
    at_warning = rsyslog.wait_for("tcp", test, start=start["tcp"], count=5)
    at_debug = rsyslog.wait_for("udp", test, start=start["udp"], count=8)
    time.sleep(0.3)
    assert len(rsyslog.wait_for("tcp", test, start=start["tcp"], timeout=0)) == 5
    assert [r["msg"] for r in at_warning] == [
        f" remote-syslogd-test: This is {level} message" for level in levels[:5]
    ]
    assert [r["severity"] for r in at_warning] == ["0", "1", "2", "3", "4"]
    assert sorted(r["msg"] for r in at_debug) == sorted(
        f"remote-syslogd-test: This is {level} message" for level in levels
    )
    assert {r["appname"] for r in at_debug} == {"remote-syslogd"}
    # A server of type Audit gets the audit test event instead, whatever its threshold.
    setup(device, target(rsyslog, "tls", syslogFormat="RFC5424", type="Audit"))
    rpc(device, "test")
    found = rsyslog.wait_for("tls", containing("Base Event"), start=start["tls"])
    assert [r["msg"] for r in found] == ["Base Event: This is an audit test message."]
    assert found[0]["appname"] == "audit"
    assert not rsyslog.wait_for("tls", test, start=start["tls"], timeout=0)


def test_tls_with_a_certificate_of_another_ca_is_refused_and_reported(
    device: Server, rsyslog: Rsyslog
) -> None:
    start = len(rsyslog.records("rogue"))
    setup(device, target(rsyslog, "rogue", severity="Debug"))
    marker = uuid.uuid4().hex
    write(device, marker, severity=2)
    port = rsyslog.ports["rogue"]
    line = wait_for_line(
        device,
        f"remote syslog server 1 (TLS 127.0.0.1:{port}): cannot connect: "
        "TLS: the server's certificate is not trusted",
    )
    assert "[ WARNING ] remote-syslogd[" in line
    assert rsyslog.records("rogue")[start:] == []  # not even the handshake got through
    # status keeps the API's shape: the failure is in the log, not in extra fields.
    data = rpc(device, "status")["data"]
    assert data == {
        "enabled": True,
        "servers": [
            {
                **target(rsyslog, "rogue"),
                "syslogFormat": "RFC5424",
                "severity": "Debug",
                "type": "All",
            }
        ],
    }


def test_each_device_forwards_on_its_own_across_a_reboot(
    tmp_path: Path, pki: Pki, rsyslog: Rsyslog
) -> None:
    port = free_port_block(2)
    first = start_device(tmp_path, pki, "--devices", "2", "--reboot-downtime", "0.3", port=port)
    second = Server(first.state_dir, port=port + 1)
    try:
        start = {name: len(rsyslog.records(name)) for name in ("udp", "tcp")}
        setup(first, target(rsyslog, "udp", syslogFormat="RFC5424", severity="Debug"))
        setup(second, target(rsyslog, "tcp", syslogFormat="RFC5424", severity="Debug"))
        marker = uuid.uuid4().hex
        write(first, f"{marker} first")
        write(second, f"{marker} second")
        one = rsyslog.wait_for("udp", containing(marker), start=start["udp"])
        two = rsyslog.wait_for("tcp", containing(marker), start=start["tcp"])
        assert [r["msg"] for r in one] == [f"{marker} first"]
        assert [r["msg"] for r in two] == [f"{marker} second"]
        assert one[0]["hostname"] != two[0]["hostname"]
        for index in ("0000", "0001"):  # each device keeps its own copy of the CA
            assert (first.state_dir / "devices" / index / "remote-syslog-ca.pem").exists()
        # A reboot stops and starts forwarding with the device, settings kept.
        boot, _ = reboot_and_wait(first)
        booted = rsyslog.wait_for("udp", containing(f"boot {boot}"), start=start["udp"])
        assert booted and "starting on" in booted[0]["msg"]
        ended = rsyslog.wait_for("udp", containing("reboot: ending boot"), start=start["udp"])
        assert len(ended) == 1  # the shutdown entry left before the device went down
        write(first, f"{marker} again")
        assert rsyslog.wait_for("udp", containing(f"{marker} again"), start=start["udp"])
        assert rsyslog.wait_for("tcp", containing("again"), start=start["tcp"], timeout=0) == []
    finally:
        first.stop()


def test_the_ca_is_kept_in_the_state_dir(
    device: Server, rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    refused = run_cli("serve", "--remote-syslog-ca", str(junk), state_dir=tmp_path / "state")
    assert refused.returncode == 2 and "--remote-syslog-ca" in refused.stderr
    copy = device.state_dir / "remote-syslog-ca.pem"
    assert copy.read_bytes() == pki.ca.cert_path.read_bytes()
    # A later start without the option still trusts the CA: the device keeps its copy.
    device.stop()
    option = device.extra_args.index("--remote-syslog-ca")
    del device.extra_args[option : option + 2]
    device.start()
    start = len(rsyslog.records("tls"))
    setup(device, target(rsyslog, "tls", severity="Debug"))
    marker = uuid.uuid4().hex
    write(device, marker)
    assert len(rsyslog.wait_for("tls", containing(marker), start=start)) == 1
