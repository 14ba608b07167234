"""Every firmware profile against a real `vapixlog serve`: one process emulating AXIS OS 10.12,
11.10, 12.4 and 12.11.77 side by side (`--firmware-mix`), each switch checked where it acts:
DCA paths and methods, systemready fields, apidiscovery, systemlog.cgi `text`, remote syslog
versions and formats, the brute-force default and its wording, the log page's Log API."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_server
from servers import USERS, Server, free_port_block
from vapixlog.client import Client, NoLogApiError

ROOT = ("root", USERS["root"][1])
VERSIONS = ("10.12", "11.10", "12.4", "12.11.77")
FWMGR = "/axis-cgi/firmwaremanagement.cgi"
DISCOVERY_CGI = "/axis-cgi/apidiscovery.cgi"
READY = "/axis-cgi/systemready.cgi"
SYSLOG_CGI = "/axis-cgi/remotesyslog.cgi"


def wait_until_up(urls: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                httpx.post(url + READY, json={"method": "getSupportedVersions"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{url} did not start"
                time.sleep(0.05)


def firmware_of(url: str) -> str:
    body = {"apiVersion": "1.0", "method": "status"}
    digest = httpx.DigestAuth(*ROOT)  # offered by every policy over HTTP
    reply = httpx.post(url + FWMGR, json=body, auth=digest, timeout=10).json()
    return str(reply["data"]["activeFirmwareVersion"])


def start_fleet(
    state_dir: Path, mix: str, count: int, *extra: str
) -> tuple[Server, dict[str, str]]:
    """A `--devices` fleet with a firmware mix; its URL per firmware version."""
    fleet = Server(state_dir, port=free_port_block(count))
    fleet.extra_args = ["--devices", str(count), "--firmware-mix", mix, *extra]
    fleet.add_users()
    fleet.start()
    try:
        urls = (state_dir / "devices.txt").read_text().split()
        wait_until_up(urls)
        return fleet, {url: firmware_of(url) for url in urls}
    except BaseException:
        fleet.stop()  # a fixture that fails here never reaches its teardown
        raise


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """firmware version -> the URL of the device running it."""
    state = tmp_path_factory.mktemp("profiles") / "state"
    fleet, firmware = start_fleet(state, "10.12:1,11.10:1,12.4:1,12.11:1", 4)
    yield {version: url for url, version in firmware.items()}
    fleet.stop()


def rpc(url: str, cgi: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = httpx.post(url + cgi, json=body, timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def test_each_device_claims_its_firmware(devices: dict[str, str]) -> None:
    assert sorted(devices) == sorted(VERSIONS)  # one device each, as the mix asked
    for version, url in devices.items():
        report = httpx.get(url + "/axis-cgi/serverreport.cgi", auth=ROOT, timeout=10).text
        assert f'RELEASE="{version}"' in report


def test_10_12_has_no_device_configuration_apis(devices: dict[str, str]) -> None:
    url = devices["10.12"]
    for path in (
        "/config/discover",
        "/config/rest/log/v1",
        "/config/rest/log/v1alpha/persistent/enabled",
        "/config/web-ui/swagger-ui/",
    ):
        assert httpx.get(url + path, auth=ROOT, timeout=10).status_code == 404, path
    with Client(url, user="root", password=ROOT[1]) as client, pytest.raises(NoLogApiError):
        client.persistent_enabled()


def test_11_10_serves_the_alpha_with_put_only(devices: dict[str, str]) -> None:
    url = devices["11.10"]
    root = "/config/rest/log/v1alpha"
    with httpx.Client(base_url=url, auth=ROOT, timeout=10) as http:
        entry = http.get("/config/discover").json()["apis"]["log"]["v1"]
        assert entry["rest_api"] == root
        assert (entry["state"], entry["version"]) == ("alpha", "1.0.0-alpha.1")
        assert http.get("/config/rest/log/v1").status_code == 404
        patched = http.patch(root + "/persistent/enabled", json={"data": True})
        assert (patched.status_code, patched.headers["allow"]) == (405, "GET, PUT")
        posted = http.post(root + "/writeMessage", json={"data": {"msg": "x"}})
        assert (posted.status_code, posted.headers["allow"]) == (405, "PUT")
        written = http.put(root + "/writeMessage", json={"data": {"msg": "put on 11.10"}})
        assert written.json() == {"status": "success"}
        # The device's OpenAPI documents the same methods.
        paths = http.get("/config/discover/apis/log/v1/openapi.json").json()["paths"]
        assert set(paths["/log/v1alpha/writeMessage"]) == {"put"}
        assert set(paths["/log/v1alpha/persistent/enabled"]) == {"get", "put"}
        assert not paths["/log/v1alpha/writeMessage"]["put"].get("deprecated")
    # The client finds the alpha and learns PUT from the first 405.
    with Client(url, user="root", password=ROOT[1]) as client:
        client.set_persistent(True)
        assert client.persistent_enabled() is True
        client.set_persistent(False)
        assert client.log_api_url() == url + root


@pytest.mark.parametrize("version", ["12.4", "12.11.77"])
def test_12_serves_v1_and_the_alias_with_patch_and_put(
    devices: dict[str, str], version: str
) -> None:
    with httpx.Client(base_url=devices[version], auth=ROOT, timeout=10) as http:
        entry = http.get("/config/discover").json()["apis"]["log"]["v1"]
        assert (entry["rest_api"], entry["state"]) == ("/config/rest/log/v1", "released")
        for root in ("/config/rest/log/v1", "/config/rest/log/v1alpha"):
            for method in ("PATCH", "PUT"):
                response = http.request(method, root + "/persistent/enabled", json={"data": False})
                assert response.json() == {"status": "success"}, (root, method)


@pytest.mark.parametrize(
    ("version", "api_version", "fields"),
    [
        ("10.12", "1.2", {"systemready", "needsetup"}),
        ("11.10", "1.4", {"systemready", "needsetup", "uptime", "bootid"}),
        ("12.4", "1.4", {"systemready", "needsetup", "uptime", "bootid"}),
        ("12.11.77", "1.5", {"systemready", "needsetup", "uptime", "bootid", "passphrasepolicy"}),
    ],
)
def test_systemready_fields_follow_the_firmware(
    devices: dict[str, str], version: str, api_version: str, fields: set[str]
) -> None:
    reply = rpc(devices[version], READY, {"apiVersion": "1.0", "method": "systemready"})
    assert reply["apiVersion"] == api_version and set(reply["data"]) == fields


def test_apidiscovery_follows_the_firmware(devices: dict[str, str]) -> None:
    body = {"apiVersion": "1.0", "method": "getApiList"}
    # 10.12 demands a login (as 9.80 did), answers 1.0 and has no `status` in its entries.
    anonymous = httpx.post(devices["10.12"] + DISCOVERY_CGI, json=body, timeout=10)
    assert anonymous.status_code == 401
    listed: dict[str, dict[str, str]] = {}
    for version, url in devices.items():
        auth = ROOT if version == "10.12" else None
        reply = rpc(url, DISCOVERY_CGI, body, auth=auth)
        entries = reply["data"]["apiList"]
        assert reply["apiVersion"] == ("1.0" if version == "10.12" else "1.1")
        assert all(("status" in entry) is (version != "10.12") for entry in entries)
        listed[version] = {entry["id"]: entry["version"] for entry in entries}
    assert listed["10.12"] == {
        "api-discovery": "1.0",
        "fwmgr": "1.10",
        "remote-syslog": "1.0",
        "systemready": "1.2",
    }
    assert listed["11.10"]["remote-syslog"] == "1.1" and "audit-log" not in listed["11.10"]
    assert "audit-log" not in listed["12.4"]  # 12.x before the audit log
    assert listed["12.11.77"]["audit-log"] == "1.0"
    assert listed["12.11.77"]["systemready"] == "1.4"  # while the CGI answers 1.5


@pytest.mark.parametrize(
    ("version", "status"), [("10.12", 400), ("11.10", 400), ("12.4", 200), ("12.11.77", 200)]
)
def test_systemlog_text_exists_from_11_11_45(
    devices: dict[str, str], version: str, status: int
) -> None:
    response = httpx.get(
        devices[version] + "/axis-cgi/systemlog.cgi", params={"text": "boot"}, auth=ROOT
    )
    assert response.status_code == status
    if status == 400:
        assert response.text == 'Error: unsupported parameter "text".\n'
    else:
        assert all("boot" in line for line in response.text.split("\n")[4:-1])


@pytest.mark.parametrize(
    ("version", "api_version", "axis_format"),
    [("10.12", "1.0", False), ("11.10", "1.1", True), ("12.11.77", "1.2", True)],
)
def test_remote_syslog_version_and_the_axis_format(
    devices: dict[str, str], version: str, api_version: str, axis_format: bool
) -> None:
    url = devices[version]
    versions = rpc(url, SYSLOG_CGI, {"method": "getSupportedVersions"}, auth=ROOT)
    assert versions["data"] == {"apiVersions": [api_version]}
    server = {"address": "127.0.0.1", "port": 9, "protocol": "UDP", "syslogFormat": "AXIS"}
    setup = {"apiVersion": api_version, "method": "setup", "params": {"servers": [server]}}
    reply = rpc(url, SYSLOG_CGI, setup, auth=ROOT)
    assert reply["apiVersion"] == api_version
    if axis_format:
        assert reply["data"]["servers"][0]["syslogFormat"] == "AXIS"
        clear = {"apiVersion": api_version, "method": "setup", "params": {"servers": []}}
        assert "data" in rpc(url, SYSLOG_CGI, clear, auth=ROOT)
    else:  # from AXIS OS 11.6 only
        assert reply["error"]["code"] == 2104
        assert reply["error"]["details"] == {"address": "127.0.0.1", "propertyName": "syslogFormat"}


def guess(url: str, source: str, count: int) -> list[int]:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, transport=transport, timeout=15) as guesser:
        return [guesser.get(FWMGR, auth=("root", "wrong")).status_code for _ in range(count)]


def test_brute_force_protection_defaults_to_the_firmwares(devices: dict[str, str]) -> None:
    # 11.10 (from 11.5): the 21st failure in a second blocks the address, logged `Blocklisting`.
    assert guess(devices["11.10"], "127.0.0.41", 22)[-1] == 403
    log = httpx.get(devices["11.10"] + "/axis-cgi/systemlog.cgi", auth=ROOT).text
    assert "Blocklisting address 127.0.0.41: possible DoS attack." in log
    # 10.12: off by default; failures are throttled, never blocked.
    assert 403 not in guess(devices["10.12"], "127.0.0.42", 7)


def test_10_12_blacklists_when_protection_is_turned_on(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "state", "--firmware", "10.12", "--brute-force-protection", "on"
    )
    try:
        assert guess(server.url, "127.0.0.43", 22)[-1] == 403
        log = httpx.get(server.url + "/axis-cgi/systemlog.cgi", auth=ROOT).text
        assert "[evasive20:warn] [client 127.0.0.43:" in log
        assert "Blacklisting address 127.0.0.43: possible DoS attack." in log
        assert "Firmware: AXIS OS 10.12" in server.output()
    finally:
        server.stop()


def test_the_log_page_uses_the_firmwares_log_api(devices: dict[str, str]) -> None:
    expected = {
        "10.12": None,
        "11.10": {"root": "/config/rest/log/v1alpha", "put_only": True},
        "12.11.77": {"root": "/config/rest/log/v1", "put_only": False},
    }
    for version, log_api in expected.items():
        status = httpx.get(devices[version] + "/logs/status", auth=ROOT, timeout=10).json()
        assert (status["log_api"], status["axis_os"]) == (log_api, version)
        assert status["may"]["set_persistent"] is (log_api is not None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--firmware", "9.80"], "unknown firmware '9.80'; known: 10.12, 11.10, 12.4, 12.11.77"),
        (["--firmware-mix", "10.12:1,10.12:1"], "firmware 10.12 is in the mix twice"),
        (["--firmware", "12.11", "--firmware-mix", "10.12:1"], "use either --firmware or"),
    ],
)
def test_bad_firmware_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    from servers import VAPIXLOG

    result = subprocess.run(
        [*VAPIXLOG, "serve", "--state-dir", str(tmp_path), "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
