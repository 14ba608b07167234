"""The authentication policy (`serve --auth-policy`, the device's
Network.HTTP.AuthenticationPolicy): which schemes a port challenges with and accepts, and that
real clients in their Digest or automatic modes log in under the default policy."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from conftest import start_server
from servers import USERS, Server
from vapixlog.client import Client

API = "/config/rest/log/v1/persistent/enabled"
PASSWORD = USERS["root"][1]
DIGEST_MD5 = re.compile(
    r'Digest realm="AXIS_[0-9A-F]{12}", nonce="[A-Za-z0-9+/]{11}=[0-9a-f]{40}", '
    r'algorithm=MD5, qop="auth"'
)


def challenges(url: str, **kwargs: object) -> list[str]:
    response = httpx.get(url + API, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 401
    return response.headers.get_list("www-authenticate")


def serial_of(server: Server) -> str:
    identity = json.loads((server.state_dir / "identity.json").read_text())
    return str(identity["serial"])


@pytest.fixture(scope="module")
def recommended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("rec") / "state", "--auth-policy", "recommended")
    yield server
    server.stop()


def test_http_offers_digest_md5_only_in_the_devices_shape(recommended: Server) -> None:
    offered = challenges(recommended.url)
    assert len(offered) == 1 and DIGEST_MD5.fullmatch(offered[0]), offered
    assert f'realm="AXIS_{serial_of(recommended)}"' in offered[0]


def test_basic_over_http_is_challenged_not_counted_as_a_failure(recommended: Server) -> None:
    response = httpx.get(recommended.url + API, auth=("root", PASSWORD), timeout=10)
    assert response.status_code == 401
    assert DIGEST_MD5.fullmatch(response.headers["www-authenticate"])
    with Client(recommended.url, user="root", password=PASSWORD) as client:
        log = client.audit_log()
    assert "Authentication successful" in log  # the audit log the check reads is there
    assert "Authentication failed" not in log


def test_real_clients_log_in_with_digest(recommended: Server) -> None:
    url = recommended.url + API
    assert httpx.get(url, auth=httpx.DigestAuth("root", PASSWORD)).json()["status"] == "success"
    assert requests.get(url, auth=HTTPDigestAuth("root", PASSWORD), timeout=10).ok
    assert not requests.get(url, auth=HTTPBasicAuth("root", PASSWORD), timeout=10).ok
    for mode in ("--digest", "--anyauth"):
        curl = subprocess.run(
            ["curl", "-s", mode, "-u", f"root:{PASSWORD}", url],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert curl.stdout == '{"status":"success","data":false}', mode
    with Client(recommended.url, user="root", password=PASSWORD) as client:
        assert client.persistent_enabled() is False
        assert client.auth_scheme == "digest"


def test_ax_devil_device_api_logs_in(recommended: Server) -> None:
    from ax_devil_device_api import Client as AxClient
    from ax_devil_device_api import DeviceConfig

    config = DeviceConfig.http("127.0.0.1", "root", PASSWORD, port=recommended.port)
    with AxClient(config) as device:
        report = device.device_debug.download_server_report()
    assert report[:2] == b"PK"


@pytest.mark.parametrize(
    ("policy", "basic", "digest"),
    [
        ("basic", True, ()),
        ("digest", False, ("MD5",)),
        ("basic_digest", False, ("MD5",)),
        ("any", True, ("SHA-256", "MD5")),
    ],
)
def test_each_policy_over_http(
    tmp_path: Path, policy: str, basic: bool, digest: tuple[str, ...]
) -> None:
    server = start_server(tmp_path / "state", "--auth-policy", policy)
    try:
        offered = challenges(server.url)
        algorithms = tuple(re.findall(r"algorithm=([\w-]+)", " ".join(offered)))
        assert algorithms == digest
        assert any(c.startswith("Basic ") for c in offered) is basic
        url = server.url + API
        assert httpx.get(url, auth=("root", PASSWORD)).is_success is basic
        assert httpx.get(url, auth=httpx.DigestAuth("root", PASSWORD)).is_success is bool(digest)
    finally:
        server.stop()
