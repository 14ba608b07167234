"""100 tests, each with a fresh device: the plugin makes a device cheap enough for that."""

import httpx
import pytest

LOG = "/config/rest/log/v1"


@pytest.mark.parametrize("n", range(100))
def test_each_test_gets_a_fresh_device(axis_device, n):
    with httpx.Client(base_url=axis_device.url, auth=axis_device.admin, timeout=5) as client:
        # Whatever the previous test did to its device, this one starts as new.
        assert client.get(f"{LOG}/persistent/enabled").json()["data"] is False
        client.patch(f"{LOG}/persistent/enabled", json={"data": True}).raise_for_status()
        written = client.post(f"{LOG}/writeMessage", json={"data": {"msg": f"[test {n}]"}})
        assert written.json() == {"status": "success"}
        log = client.get("/axis-cgi/systemlog.cgi").text
    assert f"[test {n}]" in log
    assert not any(f"[test {m}]" in log for m in range(100) if m != n)
