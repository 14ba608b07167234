"""The client side of remote syslog: the library calls (`Client.remote_syslog_*`) and
`vapixlog remote-syslog` on one device and on a fleet, against real `vapixlog serve`
processes; one `setup` + `test` through the CLI is received by a real rsyslogd."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import start_server
from remote_syslog_setup import device, pki, rsyslog  # the fixtures
from rsyslog import Rsyslog, containing
from servers import USERS, VAPIXLOG, Server, free_port, free_port_block
from test_client_cli import env_for
from vapixlog.client import (
    Client,
    PermissionDeniedError,
    RemoteSyslogStatus,
    RpcError,
    SyslogServer,
)

__all__ = ["device", "pki", "rsyslog"]
FLEET = 3


def remote_syslog(
    *args: str, server: Server | None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*VAPIXLOG, "remote-syslog", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_for(server),
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def client(device: Server) -> Iterator[Client]:
    with Client(device.url, user="root", password=USERS["root"][1]) as client:
        client.remote_syslog_setup([])
        yield client


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("fleet") / "state",
        "--devices",
        str(FLEET),
        port=free_port_block(FLEET),
    )
    yield server
    if server.proc:
        server.stop()


def test_library_calls(client: Client) -> None:
    assert client.remote_syslog_versions() == ["1.2"]
    assert client.remote_syslog_status() == RemoteSyslogStatus(enabled=False, servers=())
    status = client.remote_syslog_setup(
        [
            SyslogServer("192.0.2.10", protocol="UDP"),
            {"address": "2001:db8::50", "port": 6601, "protocol": "TCP", "type": "Audit"},
        ]
    )
    assert status.enabled
    assert status.servers == (
        SyslogServer("192.0.2.10", 514, "UDP", "RFC5424", "Warning", "All"),
        SyslogServer("2001:db8::50", 6601, "TCP", "RFC5424", "Warning", "Audit"),
    )
    assert client.remote_syslog_disable() == RemoteSyslogStatus(False, status.servers)
    with pytest.raises(RpcError) as refused:
        client.remote_syslog_test()
    assert refused.value.code == 2202 and refused.value.method == "test"
    assert client.remote_syslog_enable().enabled
    assert client.remote_syslog_test() == status
    assert client.remote_syslog_status().to_json()["servers"][1]["type"] == "Audit"


def test_library_errors(client: Client, device: Server) -> None:
    with pytest.raises(RpcError) as many:
        client.remote_syslog_setup([SyslogServer(f"192.0.2.{n}") for n in (1, 2, 3)])
    assert many.value.code == 2203
    with pytest.raises(RpcError) as bad:
        client.remote_syslog_setup([{"address": "192.0.2.10", "protocol": "SCTP", "severity": 9}])
    assert bad.value.code == 2104
    assert "protocol of server 192.0.2.10" in str(bad.value)
    assert "severity of server 192.0.2.10" in str(bad.value)
    with pytest.raises(RpcError) as none:
        client.remote_syslog_enable()
    assert none.value.code == 2200
    viewer = Client(device.url, user="viewer", password=USERS["viewer"][1])
    with viewer, pytest.raises(PermissionDeniedError) as denied:
        viewer.remote_syslog_status()
    assert denied.value.code == 2105 and "not an administrator" in str(denied.value)


def test_fields_a_device_leaves_out_are_none() -> None:
    status = RemoteSyslogStatus.from_json(
        {"enabled": True, "servers": [{"address": "192.0.2.10", "port": 514, "protocol": "UDP"}]}
    )
    assert status.servers == (SyslogServer("192.0.2.10", 514, "UDP"),)
    assert status.servers[0].to_json() == {"address": "192.0.2.10", "port": 514, "protocol": "UDP"}


def test_cli_setup_and_test_reach_rsyslog(device: Server, rsyslog: Rsyslog) -> None:
    start = len(rsyslog.records("tcp"))
    port = str(rsyslog.ports["tcp"])
    setup = remote_syslog(
        "setup",
        "--server",
        f"127.0.0.1:{port}",
        "--protocol",
        "tcp",
        "--format",
        "rfc5424",
        "--severity",
        "debug",
        server=device,
    )
    assert setup.returncode == 0, setup.stderr
    assert setup.stdout == f"forwarding on\n  127.0.0.1:{port} TCP RFC5424 Debug All\n"
    sent = remote_syslog("test", server=device)
    assert sent.returncode == 0, sent.stderr
    found = rsyslog.wait_for("tcp", containing("remote-syslogd-test"), count=8, start=start)
    assert sorted(record["msg"].strip() for record in found) == sorted(
        f"remote-syslogd-test: This is {level} message"
        for level in (
            "Emergency",
            "Alert",
            "Critical",
            "Error",
            "Warning",
            "Notice",
            "Informational",
            "Debug",
        )
    )
    status = json.loads(remote_syslog("status", "--json", server=device).stdout)
    assert status["failed"] == 0
    assert status["devices"] == [
        {
            "device": device.url,
            "ok": True,
            "enabled": True,
            "servers": [
                {
                    "address": "127.0.0.1",
                    "port": int(port),
                    "protocol": "TCP",
                    "syslogFormat": "RFC5424",
                    "severity": "Debug",
                    "type": "All",
                }
            ],
        }
    ]
    assert remote_syslog("disable", server=device).stdout.startswith("forwarding off\n")


def test_cli_fleet_with_one_device_down(fleet: Server, tmp_path: Path) -> None:
    urls = (fleet.state_dir / "devices.txt").read_text().split()
    assert len(urls) == FLEET
    dead = f"http://127.0.0.1:{free_port()}"
    devices = tmp_path / "devices.txt"
    devices.write_text("\n".join([*urls, dead, "# a comment"]) + "\n")
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"servers": [{"address": "192.0.2.7", "protocol": "UDP"}]}))
    args = ["--devices-file", str(devices), "--password", USERS["root"][1], "--json"]
    result = remote_syslog("setup", "--from-json", str(servers), *args, server=None)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"vapixlog: {dead}: ") and "refused" in result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert (document["succeeded"], document["failed"]) == (FLEET, 1)
    assert [d["device"] for d in document["devices"]] == [*urls, dead]
    for answer in document["devices"][:FLEET]:
        assert answer["ok"] and answer["enabled"]
        assert answer["servers"][0]["address"] == "192.0.2.7"
    devices.write_text("\n".join(urls) + "\n")
    status = remote_syslog("status", *args[:4], server=None)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert [line for line in lines if "forwarding" in line] == [
        f"{url}: forwarding on" for url in urls
    ]
    assert f"{urls[2]}:   192.0.2.7:514 UDP RFC5424 Warning All" in lines


def test_cli_errors(device: Server, tmp_path: Path) -> None:
    viewer = remote_syslog("status", "--user", "viewer", "--password", "viewpass", server=device)
    assert viewer.returncode == 1
    assert viewer.stderr.count("\n") == 1
    assert "not an administrator" in viewer.stderr and device.url in viewer.stderr
    for spec in ("127.0.0.1:0", "host:port", "[::1", ":514", "a:99999"):
        bad = remote_syslog("setup", "--server", spec, server=device)
        assert bad.returncode == 2 and "--server" in bad.stderr, (spec, bad.stderr)
    wrong = remote_syslog("setup", "--server", "192.0.2.1", "--protocol", "sctp", server=device)
    assert wrong.returncode == 2 and "invalid protocol 'sctp'" in wrong.stderr
    missing = remote_syslog("setup", server=device)
    assert missing.returncode == 2 and "setup needs --server" in missing.stderr
    garbage = tmp_path / "servers.json"
    garbage.write_text("{")
    not_json = remote_syslog("setup", "--from-json", str(garbage), server=device)
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    three = ["--server", "192.0.2.1", "--server", "192.0.2.2", "--server", "192.0.2.3"]
    refused = remote_syslog("setup", *three, server=device)
    assert refused.returncode == 1 and "code 2203" in refused.stderr
