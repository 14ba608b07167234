"""The client against an older device (legacy_device.py): Basic only, no discovery, v1alpha,
PUT instead of PATCH and POST."""

from __future__ import annotations

import pytest

from legacy_device import PASSWORD, USER, LegacyDevice
from vapixlog.client import Client, NotFoundError, Severity


def test_basic_only_no_discovery_v1alpha_and_put_fallback() -> None:
    with LegacyDevice() as device, Client(device.url, user=USER, password=PASSWORD) as c:
        assert c.persistent_enabled() is False
        assert c.auth_scheme == "basic"
        assert c.log_api_url() == device.url + "/config/rest/log/v1alpha"
        c.set_persistent(True)  # PATCH -> 405 -> PUT
        assert device.persistent is True
        c.write_message("old device", Severity.ERROR)  # PUT at once: learnt
        c.clear_persistent_log()
        assert device.messages == [{"msg": "old device", "severity": 3}]
        calls = [(method, path) for method, path, _ in device.requests]
    root = "/config/rest/log/v1alpha"
    assert calls == [
        ("GET", "/config/discover"),  # unauthenticated: the challenge says Basic
        ("GET", "/config/discover"),  # 404: no discovery
        ("GET", "/config/rest/log/v1"),  # 404
        ("GET", root),
        ("GET", root + "/persistent/enabled"),
        ("PATCH", root + "/persistent/enabled"),  # 405
        ("PUT", root + "/persistent/enabled"),
        ("PUT", root + "/writeMessage"),
        ("PUT", root + "/persistent/clearLog"),
    ]
    # Only the first request went without credentials; every later one sent Basic at once.
    assert [scheme for *_, scheme in device.requests] == [None] + ["Basic"] * 8


def test_discovery_rest_api_is_followed() -> None:
    discovery = {"apis": {"log": {"v1": {"rest_api": "/somewhere/log/v1beta"}}}}
    with (
        LegacyDevice(roots=("/somewhere/log/v1beta",), discovery=discovery) as device,
        Client(device.url, user=USER, password=PASSWORD) as c,
    ):
        c.set_persistent(True)
        assert c.log_api_url() == device.url + "/somewhere/log/v1beta"
        assert device.persistent is True


def test_no_log_api_is_not_found() -> None:
    with (
        LegacyDevice(roots=()) as device,
        Client(device.url, user=USER, password=PASSWORD) as c,
        pytest.raises(NotFoundError) as missing,
    ):
        c.persistent_enabled()
    assert "no Log API" in str(missing.value)
