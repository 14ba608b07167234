"""What the fixtures offer: users, reboot, reset, options, fleets, async tests."""

import ssl

import anyio
import httpx
import pytest

LOG = "/config/rest/log/v1"
READY = "/axis-cgi/systemready.cgi"


def ready(url: str, **kwargs) -> dict:
    reply = httpx.post(url + READY, json={"apiVersion": "1", "method": "systemready"}, **kwargs)
    return reply.json()["data"]


def test_device_has_url_and_admin(axis_device):
    assert axis_device.url.startswith("http://127.0.0.1:")
    user, password = axis_device.admin
    reply = httpx.get(axis_device.url + LOG, auth=(user, password))
    assert reply.status_code == 200
    assert httpx.get(axis_device.url + LOG, auth=(user, password + "x")).status_code == 401


def test_add_user_logs_in_at_once_with_its_role(axis_device):
    axis_device.add_user("watcher", "viewer", "watch-pass")
    url = axis_device.url + f"{LOG}/writeMessage"
    body = {"data": {"msg": "hello"}}
    assert httpx.get(axis_device.url + LOG, auth=("watcher", "watch-pass")).status_code == 200
    assert httpx.post(url, json=body, auth=("watcher", "watch-pass")).status_code == 403
    axis_device.add_user("boss", "admin", "boss-pass")  # writeMessage is for admins
    assert httpx.post(url, json=body, auth=("boss", "boss-pass")).status_code == 200


def test_reboot_starts_a_new_boot(axis_device):
    before = ready(axis_device.url)["bootid"]
    assert axis_device.boot_id == before
    axis_device.reboot()
    assert ready(axis_device.url)["bootid"] == axis_device.boot_id != before


def test_reset_forgets_state_and_faults(axis_device):
    client = httpx.Client(base_url=axis_device.url, auth=axis_device.admin)
    client.patch(f"{LOG}/persistent/enabled", json={"data": True}).raise_for_status()
    axis_device.set_faults("systemready:status=500")
    url = axis_device.url
    axis_device.reset()
    assert axis_device.url == url
    assert client.get(f"{LOG}/persistent/enabled").json()["data"] is False
    assert (
        "error"
        not in httpx.post(url + READY, json={"apiVersion": "1", "method": "systemready"}).json()
    )


def test_factory_options(axis_device_factory):
    old = axis_device_factory(firmware="10.12", users={"op": ("operator", "op-pass")})
    assert httpx.get(old.url + LOG, auth=old.admin).status_code == 404  # no DCA on 10.12
    assert "bootid" not in ready(old.url)  # systemready 1.2
    secure = axis_device_factory(tls=True)
    assert secure.url.startswith("https://")
    trust = ssl.create_default_context(cafile=str(secure.certfile))
    assert ready(secure.url, verify=trust)["systemready"] == "yes"
    faulty = axis_device_factory(faults=["systemready:status=503"])
    reply = httpx.post(faulty.url + READY, json={"apiVersion": "1", "method": "systemready"})
    assert reply.json()["error"]["code"] == 503


def test_fleet_devices_are_distinct(axis_fleet):
    fleet = axis_fleet(3)
    assert len({device.url for device in fleet}) == 3
    assert len({ready(device.url)["bootid"] for device in fleet}) == 3


@pytest.mark.anyio
async def test_from_an_async_test(axis_device):
    async with httpx.AsyncClient(base_url=axis_device.url, auth=axis_device.admin) as client:
        written = await client.post(f"{LOG}/writeMessage", json={"data": {"msg": "async"}})
        assert written.status_code == 200
        before = axis_device.boot_id
        axis_device.reboot()  # blocks this thread only; the device runs on its own loop
        await anyio.sleep(0)
        reply = await client.post(READY, json={"apiVersion": "1", "method": "systemready"})
        assert reply.json()["data"]["bootid"] != before


@pytest.fixture
def anyio_backend():
    return "asyncio"
