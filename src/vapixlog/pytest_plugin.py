"""The pytest plugin of vapixlog (entry point `pytest11`: active wherever vapixlog is installed).

Fixtures, each device fresh for the test, in-process on a free loopback port
(`vapixlog.testing.EmulatedDevice`):

- `axis_device`: one device; `url`, `admin` ((user, password)), `add_user(name, role,
  password)`, `reboot()`, `reset()`, `set_faults(*specs)`, `clear_faults()`, `boot_id`;
- `axis_device_factory(firmware=..., users=..., tls=..., faults=..., **serve_options)`: as
  many devices as the test asks for, with options;
- `axis_fleet(n, **options)`: a list of `n` devices (a factory too).

    def test_reboot(axis_device):
        axis_device.set_faults("reboot:status=423")
        ...

The devices accept Basic and Digest (`auth_policy="any"`), so `httpx.get(url,
auth=axis_device.admin)` works; pass `auth_policy="recommended"` for a device's default
(Digest over HTTP). Methods block the calling thread only: they work from async tests too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported by the fixtures: a session that uses none pays nothing
    from vapixlog.testing import EmulatedDevice

DeviceFactory = Callable[..., "EmulatedDevice"]
FleetFactory = Callable[..., "list[EmulatedDevice]"]


def _options(options: dict[str, Any]) -> dict[str, Any]:
    from vapixlog.auth.policy import AuthPolicy

    policy = options.get("auth_policy", AuthPolicy.ANY)
    return {**options, "auth_policy": AuthPolicy(policy)}


@pytest.fixture
def axis_device_factory(tmp_path: Path) -> Iterator[DeviceFactory]:
    """Start devices with options: `factory(firmware="10.12", users={"op": ("operator",
    "pw")}, tls=True, faults=["report:takes=5"])`; all stop after the test."""
    from vapixlog.testing import EmulatedDevice

    devices: list[EmulatedDevice] = []

    def start(**options: Any) -> EmulatedDevice:
        device = EmulatedDevice(tmp_path / f"axis-device-{len(devices)}", **_options(options))
        devices.append(device)
        return device.start()

    yield start
    for device in devices:
        device.stop(wait=False)


@pytest.fixture
def axis_device(axis_device_factory: DeviceFactory) -> EmulatedDevice:
    """A fresh emulated device for this test (see the module doc)."""
    return axis_device_factory()


@pytest.fixture
def axis_fleet(axis_device_factory: DeviceFactory) -> FleetFactory:
    """`axis_fleet(n, **options)`: `n` fresh devices, each on its own port."""

    def fleet(n: int, **options: Any) -> list[EmulatedDevice]:
        return [axis_device_factory(**options) for _ in range(n)]

    return fleet


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Devices stop in the background between tests; the session waits for them."""
    testing = sys.modules.get("vapixlog.testing")
    if testing is not None:
        testing.drain()
