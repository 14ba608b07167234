"""remotesyslog.cgi as remote-syslog.md describes it: methods, defaults, every error code,
roles, the settings kept across a crash, and the audit entries of changes. Forwarding itself
is proven against rsyslog in test_remote_syslog_forwarding.py."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from remotesyslog_api import audit_log, call, post, rpc, setup, system_log
from servers import USERS, Server

SIX = ["address", "port", "protocol", "syslogFormat", "severity", "type"]


@pytest.fixture(autouse=True)
def _reset(shared_server: Server) -> None:
    assert "error" not in rpc(shared_server, "setup", {"servers": []})


def test_a_new_device_has_no_servers(shared_server: Server) -> None:
    body = {"apiVersion": "1.2", "context": "poll", "method": "status"}
    reply = call(shared_server, body)
    assert list(reply) == ["apiVersion", "context", "method", "data"]
    assert reply == {**body, "data": {"enabled": False, "servers": []}}


def test_get_supported_versions_needs_no_api_version(shared_server: Server) -> None:
    reply = call(shared_server, {"context": "probe", "method": "getSupportedVersions"})
    assert reply == {
        "apiVersion": "1.2",
        "context": "probe",
        "method": "getSupportedVersions",
        "data": {"apiVersions": ["1.2"]},
    }


@pytest.mark.parametrize(
    ("protocol", "ports"),
    [("UDP", (514, 514, 514)), ("TCP", (514, 514, 601)), ("TLS", (6514, 6514, 6514))],
)
def test_setup_fills_in_the_defaults(
    shared_server: Server, protocol: str, ports: tuple[int, ...]
) -> None:
    formats = ("AXIS", "RFC3164", "RFC5424")
    for syslog_format, port in zip(formats, ports, strict=True):
        data = setup(
            shared_server,
            {"address": "127.0.0.1", "protocol": protocol, "syslogFormat": syslog_format},
        )
        assert data == {
            "enabled": True,  # setup also enables
            "servers": [
                {
                    "address": "127.0.0.1",
                    "port": port,
                    "protocol": protocol,
                    "syslogFormat": syslog_format,
                    "severity": "Warning",
                    "type": "All",
                }
            ],
        }
    # Nothing but the address: TLS, RFC5424, Warning, All.
    data = setup(shared_server, {"address": "::1"})
    assert list(data["servers"][0]) == SIX
    assert data["servers"][0] == {
        "address": "::1",
        "port": 6514,
        "protocol": "TLS",
        "syslogFormat": "RFC5424",
        "severity": "Warning",
        "type": "All",
    }


def test_enable_disable_test_and_status(shared_server: Server) -> None:
    assert rpc(shared_server, "enable")["error"] == {
        "code": 2200,
        "message": "No server configured",
    }
    assert rpc(shared_server, "test")["error"]["code"] == 2202
    servers = [
        {"address": "127.0.0.1", "protocol": "UDP"},
        {
            "address": "localhost",
            "port": 6601,
            "protocol": "TCP",
            "syslogFormat": "RFC3164",
            "severity": "Notice",
            "type": "Audit",
        },
    ]
    configured = setup(shared_server, *servers)["servers"]
    assert configured[1] == {**servers[1]}
    off = rpc(shared_server, "disable")
    assert off["data"] == {"enabled": False, "servers": configured}
    assert rpc(shared_server, "status")["data"] == off["data"]  # configured but off
    assert rpc(shared_server, "test")["error"] == {
        "code": 2202,
        "message": "Remote syslog is disabled, send test message is not possible",
    }
    on = rpc(shared_server, "enable")
    assert on["data"] == {"enabled": True, "servers": configured}
    assert rpc(shared_server, "test")["data"] == on["data"]  # answers at once, checks nothing
    # An empty list removes every server and turns forwarding off.
    assert setup(shared_server) == {"enabled": False, "servers": []}


def _server(**fields: Any) -> dict[str, Any]:
    return {"address": "127.0.0.1", **fields}


def _invalid(prop: str, address: str | None = "127.0.0.1") -> dict[str, Any]:
    details = (
        {"propertyName": prop} if address is None else {"address": address, "propertyName": prop}
    )
    return {"code": 2104, "message": "Invalid parameter value specified", "details": details}


@pytest.mark.parametrize(
    ("servers", "error"),
    [
        ([_server(port=0)], _invalid("port")),
        ([_server(port=65536)], _invalid("port")),
        ([_server(port=-1)], _invalid("port")),
        ([_server(port="514")], _invalid("port")),
        ([_server(port=514.0)], _invalid("port")),
        ([_server(port=True)], _invalid("port")),
        ([_server(protocol="udp")], _invalid("protocol")),
        ([_server(protocol="SCTP")], _invalid("protocol")),
        ([_server(protocol=None)], _invalid("protocol")),
        ([_server(syslogFormat="RFC5425")], _invalid("syslogFormat")),
        ([_server(syslogFormat=3164)], _invalid("syslogFormat")),
        ([_server(severity="Warn")], _invalid("severity")),
        ([_server(severity=4)], _invalid("severity")),
        ([_server(severity="warning")], _invalid("severity")),
        ([_server(type="Security")], _invalid("type")),
        ([_server(type=["All"])], _invalid("type")),
        ([{"address": ""}], _invalid("address", "")),
        ([{"address": "not an address"}], _invalid("address", "not an address")),
        ([{"address": "300.1.1.1"}], _invalid("address", "300.1.1.1")),
        ([{"address": 192}], _invalid("address", None)),
        ([{"address": "a" * 254}], _invalid("address", "a" * 254)),
        (["127.0.0.1"], _invalid("servers", None)),
        (
            [{"protocol": "UDP"}],
            {
                "code": 2103,
                "message": "Required parameter missing",
                "details": {"propertyName": "address"},
            },
        ),
        (
            [_server(), _server(), _server()],
            {"code": 2203, "message": "Too many servers specified"},
        ),
        ([_server(), _server()], {"code": 2201, "message": "Identical servers not allowed"}),
        (
            # The same destination written differently, whatever the format or filter.
            [
                {"address": "::1", "port": 514, "protocol": "TCP"},
                {
                    "address": "0:0:0::1",
                    "port": 514,
                    "protocol": "TCP",
                    "syslogFormat": "AXIS",
                    "type": "Audit",
                },
            ],
            {"code": 2201, "message": "Identical servers not allowed"},
        ),
    ],
)
def test_setup_refuses_bad_servers(
    shared_server: Server, servers: list[Any], error: dict[str, Any]
) -> None:
    reply = call(
        shared_server,
        {"apiVersion": "1.2", "context": "vl-7", "method": "setup", "params": {"servers": servers}},
    )
    assert reply == {"apiVersion": "1.2", "context": "vl-7", "method": "setup", "error": error}
    assert rpc(shared_server, "status")["data"] == {"enabled": False, "servers": []}


def test_several_problems_are_all_listed(shared_server: Server) -> None:
    servers = [
        {"address": "127.0.0.1", "protocol": "QUIC", "severity": "Loud"},
        {"port": 0},
    ]
    error = rpc(shared_server, "setup", {"servers": servers})["error"]
    first = _invalid("protocol")
    assert error == {
        **first,
        "errors": [
            first,
            _invalid("severity"),
            {
                "code": 2103,
                "message": "Required parameter missing",
                "details": {"propertyName": "address"},
            },
            _invalid("port", None),
        ],
    }


def test_a_different_destination_is_not_identical(shared_server: Server) -> None:
    data = setup(shared_server, _server(protocol="UDP"), _server(protocol="TCP"))
    assert [s["protocol"] for s in data["servers"]] == ["UDP", "TCP"]


@pytest.mark.parametrize(
    ("body", "headers", "code", "echo"),
    [
        (b"{not json", None, 2101, {}),
        (b"[]", None, 2101, {}),
        (b'"setup"', None, 2101, {}),
        (b'{"apiVersion": "1.2"}', None, 2101, {}),
        (b'{"apiVersion": "1.2", "method": 7}', None, 2101, {}),
        (
            b'{"apiVersion": "1.2", "method": "status", "context": 1}',
            None,
            2101,
            {"method": "status"},
        ),
        (
            b'{"apiVersion": "1.2", "method": "setup", "params": []}',
            None,
            2101,
            {"method": "setup"},
        ),
        (b'{"apiVersion": "1.2", "method": "status"}', {"content-type": "text/plain"}, 2101, {}),
        (
            b'{"apiVersion": "1.2", "method": "status"}',
            {"content-type": "application/x-www-form-urlencoded"},
            2101,
            {},
        ),
        (
            b'{"apiVersion": "1.2", "context": "c", "method": "rotate"}',
            None,
            2102,
            {"context": "c", "method": "rotate"},
        ),
        (b'{"apiVersion": "1.2", "method": "stauts"}', None, 2102, {"method": "stauts"}),
        (b'{"method": "status"}', None, 2100, {"method": "status"}),
        (b'{"apiVersion": "2.1", "method": "status"}', None, 2100, {"method": "status"}),
        (b'{"apiVersion": 1.2, "method": "status"}', None, 2100, {"method": "status"}),
        (b'{"apiVersion": "one", "method": "status"}', None, 2100, {"method": "status"}),
        (b'{"apiVersion": "1.2", "method": "setup"}', None, 2103, {"method": "setup"}),
        (
            b'{"apiVersion": "1.2", "method": "setup", "params": {}}',
            None,
            2103,
            {"method": "setup"},
        ),
        (
            b'{"apiVersion": "1.2", "method": "setup", "params": {"servers": {}}}',
            None,
            2104,
            {"method": "setup"},
        ),
        (
            b'{"apiVersion": "1.2", "method": "status", "pad": "' + b"x" * 20_000 + b'"}',
            None,
            2107,
            {},
        ),
    ],
)
def test_unreadable_requests_get_the_apis_codes(
    shared_server: Server,
    body: bytes,
    headers: dict[str, str] | None,
    code: int,
    echo: dict[str, Any],
) -> None:
    response = post(shared_server, body, headers=headers or {"content-type": "application/json"})
    assert response.status_code == 200
    reply = response.json()
    assert reply["apiVersion"] == "1.2"
    assert reply["error"]["code"] == code and reply["error"]["message"]
    assert {k: reply[k] for k in ("context", "method") if k in reply} == echo
    assert "data" not in reply


@pytest.mark.parametrize("user", ["op", "viewer"])
@pytest.mark.parametrize(
    "body",
    [
        {"apiVersion": "1.2", "context": "x", "method": "status"},
        {"context": "x", "method": "getSupportedVersions"},
        {"apiVersion": "1.2", "context": "x", "method": "setup", "params": {"servers": []}},
        {"apiVersion": "1.2", "context": "x", "method": "enable"},
        {"apiVersion": "1.2", "context": "x", "method": "test"},
    ],
)
def test_only_administrators(shared_server: Server, user: str, body: dict[str, Any]) -> None:
    reply = call(shared_server, body, auth=(user, USERS[user][1]))
    assert reply == {
        "apiVersion": "1.2",
        "context": "x",
        "method": body["method"],
        "error": {"code": 2105, "message": "Authorization failed"},
    }
    # Even a malformed request tells a non-administrator nothing else.
    bad = post(shared_server, b"{nope", auth=(user, USERS[user][1])).json()
    assert bad["error"]["code"] == 2105
    # No credentials: the device's 401 challenge.
    anonymous = post(shared_server, body, auth=None)
    assert anonymous.status_code == 401
    assert "www-authenticate" in anonymous.headers


def test_a_page_of_another_site_is_refused(shared_server: Server) -> None:
    reply = call(
        shared_server,
        {"apiVersion": "1.2", "method": "setup", "params": {"servers": [_server()]}},
        headers={"content-type": "application/json", "Origin": "http://attacker.test"},
    )
    assert reply["apiVersion"] == "1.2" and "error" in reply
    assert rpc(shared_server, "status")["data"]["servers"] == []


def audit_lines(server: Server) -> list[str]:
    """The remote syslog entries of the audit log (AXIS OS 12.5+, the default profile)."""
    return [line for line in audit_log(server) if "API.RemoteSyslog1" in line]


def test_settings_survive_a_crash_and_changes_are_audited(server: Server) -> None:
    servers = [
        {
            "address": "127.0.0.1",
            "port": 1514,
            "protocol": "UDP",
            "syslogFormat": "AXIS",
            "severity": "Debug",
            "type": "All",
        },
        {
            "address": "127.0.0.2",
            "port": 6514,
            "protocol": "TLS",
            "syslogFormat": "RFC5424",
            "severity": "Error",
            "type": "Audit",
        },
    ]
    setup(server, *servers)
    rpc(server, "disable")
    audited = audit_lines(server)
    assert [line.split("]: ", 1)[1] for line in audited] == [
        "API Activity: root@127.0.0.1 configured API.RemoteSyslog1.Servers (UDP 127.0.0.1:1514 "
        "AXIS Debug All; TLS 127.0.0.2:6514 RFC5424 Error Audit).",
        "API Activity: root@127.0.0.1 configured API.RemoteSyslog1.Enabled (false).",
    ]
    assert all("[ INFO    ] audit[" in line for line in audited)
    assert not [line for line in system_log(server) if "API.RemoteSyslog1" in line]
    server.stop(signal.SIGKILL)
    server.start()
    assert rpc(server, "status")["data"] == {"enabled": False, "servers": servers}
    assert rpc(server, "enable")["data"] == {"enabled": True, "servers": servers}
    assert [line.split("]: ", 1)[1] for line in audit_lines(server)][2:] == [
        "API Activity: root@127.0.0.1 configured API.RemoteSyslog1.Enabled (true)."
    ]  # after those of the previous boot: the audit log survives the crash
    # Status and test change nothing and are not audited.
    rpc(server, "status")
    rpc(server, "test")
    assert len(audit_lines(server)) == 3
