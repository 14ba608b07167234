"""apidiscovery.cgi as on AXIS OS 12.11 (device-security.md section 6): anonymous, globs on id
and version, the documented error codes in HTTP 200; and the DCA discovery read by a real
client (ax-devil-device-api)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from servers import USERS, Server

PATH = "/axis-cgi/apidiscovery.cgi"


def call(server: Server, body: Any) -> dict[str, Any]:
    response = httpx.post(server.url + PATH, json=body, timeout=10)  # no login
    assert response.status_code == 200
    reply: dict[str, Any] = response.json()
    assert reply["apiVersion"] == "1.1"
    return reply


def ids(reply: dict[str, Any]) -> dict[str, str]:
    return {api["id"]: api["version"] for api in reply["data"]["apiList"]}


def test_the_list_names_what_the_device_serves(shared_server: Server) -> None:
    reply = call(shared_server, {"apiVersion": "1.0", "context": "c", "method": "getApiList"})
    assert list(reply) == ["apiVersion", "context", "method", "data"]
    assert ids(reply) == {
        "api-discovery": "1.1",
        "fwmgr": "1.10",
        "remote-syslog": "1.2",
        "systemready": "1.4",  # as 12.11.77 lists it, while the CGI answers 1.5
        "audit-log": "1.0",  # AXIS OS 12.5+
    }
    for api in reply["data"]["apiList"]:
        assert set(api) == {"id", "version", "name", "docLink", "status"}
        assert api["status"] == "official"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"id": "remote-*"}, {"remote-syslog"}),
        ({"id": "fwmg?"}, {"fwmgr"}),
        ({"version": "1.1*"}, {"api-discovery", "fwmgr"}),
        ({"id": "ptz-control"}, set()),  # unknown: an empty list, not an error
    ],
)
def test_globs_on_id_and_version(
    shared_server: Server, params: dict[str, str], expected: set[str]
) -> None:
    reply = call(shared_server, {"apiVersion": "1.1", "method": "getApiList", "params": params})
    assert set(ids(reply)) == expected


def test_get_supported_versions(shared_server: Server) -> None:
    reply = call(shared_server, {"method": "getSupportedVersions"})
    assert reply["data"] == {"apiVersions": ["1.1"]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", 4000),
        (b'{"apiVersion": "1.0", "method": "getAll"}', 2004),
        (b'{"apiVersion": "2.0", "method": "getApiList"}', 2003),
        (b'{"method": "getApiList"}', 4002),
        (b'{"apiVersion": "1.0", "method": "getApiList", "params": {"id": 7}}', 4002),
    ],
)
def test_errors_have_the_documented_codes(shared_server: Server, body: bytes, code: int) -> None:
    response = httpx.post(shared_server.url + PATH, content=body, timeout=10)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == code


def test_only_post(shared_server: Server) -> None:
    response = httpx.get(shared_server.url + PATH, timeout=10)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == 2002


def test_a_real_client_follows_the_dca_discovery(shared_server: Server) -> None:
    from ax_devil_device_api import Client, DeviceConfig

    password = USERS["root"][1]
    config = DeviceConfig.http("127.0.0.1", "root", password, port=shared_server.port)
    with Client(config) as device:
        apis = device.discovery.discover()
        log = apis.get_api("log", "v1")
        assert log is not None
        assert "writeMessage" in log.get_documentation()
        assert log.get_openapi_spec()["openapi"].startswith("3.")
