"""Device-level states seen through the app: API calls during a reboot's shutdown window."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from vapixlog.app import create_app
from vapixlog.auth import Role, UserStore
from vapixlog.device import Device, DeviceConfig


def test_api_calls_after_a_reboot_request_answer_503_until_it_is_cancelled(tmp_path: Path) -> None:
    users = UserStore.load_or_create(tmp_path / "users.json", realm="AXIS_TEST")
    users.add("root", Role.ADMIN, "pw")
    device = Device(DeviceConfig(tmp_path / "device"))
    with TestClient(create_app(device, users)) as client:
        client.auth = ("root", "pw")
        assert client.get("/config/rest/log/v1").status_code == 200
        client.portal.call(lambda: device.prepare_reboot(actor="root@test"))
        refused = client.get("/config/rest/log/v1/persistent/enabled")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == 10
        # The CGIs still answer while the device goes down.
        assert "Entity Management: root@test Restart." in client.get("/axis-cgi/auditlog.cgi").text
        device.cancel_reboot()  # e.g. a --reboot-command that failed
        assert client.get("/config/rest/log/v1").status_code == 200
