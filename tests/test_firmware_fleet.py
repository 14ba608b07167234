"""A mixed fleet through `vapixlog capture` (the acceptance of firmware profiles, DECISIONS
12), and real clients under the default authentication policy against every profile."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from requests.auth import HTTPDigestAuth

from test_client_fleet import capture
from test_firmware_profiles import ROOT, VERSIONS, start_fleet

ACCESS_LOG = "/axis-cgi/accesslog.cgi"


def lifetime(state_dir: Path, index: int) -> dict[str, int]:
    path = state_dir / "devices" / f"{index:04d}" / "lifetime.json"
    counts: dict[str, int] = json.loads(path.read_text())
    return counts


@pytest.mark.timeout(120)
def test_a_mixed_fleet_is_captured_as_each_firmware_allows(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fleet, firmware = start_fleet(
        state, "10.12:1,11.10:1,12.11:2", 4, "--reboot-downtime", "0.2", "--access-log", "on"
    )
    try:
        urls = list(firmware)
        assert list(firmware.values()) == ["12.11.77", "10.12", "11.10", "12.11.77"]
        assert f"port {urls[1].rsplit(':', 1)[1]}: firmware 10.12" in fleet.output()
        devices_file = tmp_path / "fleet.txt"
        devices_file.write_text("\n".join(urls) + "\n")
        out = tmp_path / "out"
        code, report, stderr = capture("--devices-file", str(devices_file), "--output", str(out))

        assert code == 0, report  # a device without a Log API is not a failure
        assert stderr == ""
        assert (report["succeeded"], report["failed"], report["no_log_api"]) == (3, 0, 1)
        by_url = {device["device"]: device for device in report["devices"]}
        old = by_url[urls[1]]
        assert (old["outcome"], old["ok"], old["file"], old["failed_stage"]) == (
            "no-log-api", False, None, None,
        )  # fmt: skip
        assert "has no Log API" in old["error"]
        # Nothing was rebooted or changed on it: one boot, no restart, still its first boot.
        assert lifetime(state, 1) == {"boots": 1, "restarts": 0}
        for index in (0, 2, 3):
            device = by_url[urls[index]]
            assert device["outcome"] == "captured" and device["ok"], device
            assert device["bytes"] == Path(device["file"]).stat().st_size > 0
            with tarfile.open(device["file"]) as tar:
                assert "var/log/messages" in tar.getnames()
            assert lifetime(state, index) == {"boots": 2, "restarts": 1}
        assert len(list(out.glob("*.tar"))) == 3
        # Each through the path and methods its firmware allows (the new boot's access log
        # holds the steps after the reboot: turning saving off, the download, the clear).
        with httpx.Client(auth=ROOT, timeout=10) as http:
            alpha = http.get(urls[2] + ACCESS_LOG).text
            current = http.get(urls[0] + ACCESS_LOG).text
        assert "/config/rest/log/v1alpha/persistent/enabled PUT 200" in alpha
        assert "/config/rest/log/v1alpha/persistent/clearLog PUT 200" in alpha
        assert "/config/rest/log/v1/" not in alpha and " PATCH " not in alpha
        assert "/config/rest/log/v1/persistent/enabled PATCH 200" in current
        assert "/config/rest/log/v1/persistent/clearLog POST 200" in current
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def recommended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every profile under the default policy (Digest MD5 over HTTP): version -> URL."""
    state = tmp_path_factory.mktemp("recommended") / "state"
    mix = "10.12:1,11.10:1,12.4:1,12.11:1"
    fleet, firmware = start_fleet(state, mix, 4, "--auth-policy", "recommended")
    yield {version: url for url, version in firmware.items()}
    fleet.stop()


def paths_of(version: str) -> list[tuple[str, str]]:
    """(path, a text its answer holds): a CGI on every firmware, the Log API where it is."""
    paths = [("/axis-cgi/systemlog.cgi", "----- System log -----")]
    if version != "10.12":
        root = "v1alpha" if version == "11.10" else "v1"
        paths.append((f"/config/rest/log/{root}/persistent/enabled", '"status":"success"'))
    return paths


@pytest.mark.parametrize("version", VERSIONS)
def test_real_clients_log_in_with_the_default_policy(
    recommended: dict[str, str], version: str
) -> None:
    url = recommended[version]
    password = ROOT[1]
    for path, expected in paths_of(version):
        assert expected in httpx.get(url + path, auth=httpx.DigestAuth(*ROOT)).text, path
        answer = requests.get(url + path, auth=HTTPDigestAuth(*ROOT), timeout=10)
        assert answer.ok and expected in answer.text, path
        for mode in ("--digest", "--anyauth"):
            curl = subprocess.run(
                ["curl", "-s", "-f", mode, "-u", f"root:{password}", url + path],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert expected in curl.stdout, (mode, path)


@pytest.mark.parametrize("version", VERSIONS)
def test_ax_devil_device_api_against_every_profile(
    recommended: dict[str, str], version: str
) -> None:
    from ax_devil_device_api import Client as AxClient
    from ax_devil_device_api import DeviceConfig

    port = int(recommended[version].rsplit(":", 1)[1])
    config = DeviceConfig.http("127.0.0.1", "root", ROOT[1], port=port)
    with AxClient(config) as device:
        report = device.device_debug.download_server_report()
    assert report[:2] == b"PK"
