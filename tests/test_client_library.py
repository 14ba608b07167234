"""`vapixlog.client` against a real `vapixlog serve`: negotiation, typed errors, operations,
reboot and the capture procedure."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from servers import USERS, Server, free_port
from vapixlog.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    DeviceUnavailableError,
    PermissionDeniedError,
    Severity,
    Stage,
    ValidationError,
)

ROOT = ("root", USERS["root"][1])


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("client") / "state", "--reboot-downtime", "0.5")
    yield server
    if server.proc:
        server.stop()


def client(server: Server, user: str = "root") -> Client:
    return Client(server.url, user=user, password=USERS[user][1], timeout=20)


def persistent_section(report: str) -> str:
    """The persistent system log in a text server report."""
    section = report.split("----- Persistent system log -----", 1)[1]
    return section.split("\n----- ", 1)[0].strip()  # up to the next section's marker


def members(path: Path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_digest_is_chosen_and_discovery_is_followed(device: Server) -> None:
    with client(device) as c:
        assert c.auth_scheme is None
        c.write_message("from the library", Severity.WARNING)
        assert c.auth_scheme == "digest"
        assert c.log_api_url() == device.url + "/config/rest/log/v1"
        log = c.system_log()
    assert "[ WARNING ] log-api" in log and "from the library" in log


def test_async_client(device: Server) -> None:
    async def run() -> tuple[bool, list[str], str | None]:
        async with AsyncClient(device.url, user="root", password=ROOT[1]) as c:
            warnings = await c.write_message("async hello")
            return await c.persistent_enabled(), warnings, await c.boot_id()

    enabled, warnings, boot = asyncio.run(run())
    assert enabled is False and warnings == [] and boot and len(boot) == 36


def test_typed_errors(device: Server) -> None:
    with client(device, "viewer") as viewer:
        assert viewer.persistent_enabled() is False  # a viewer may read
        with pytest.raises(PermissionDeniedError) as denied:
            viewer.write_message("not allowed")
    assert denied.value.status == 403 and denied.value.code == 4
    with client(device) as c:
        with pytest.raises(ValidationError) as invalid:
            c.write_message("bad severity", 9)
        assert invalid.value.status == 400 and invalid.value.code == 5
        assert "severity" in invalid.value.message
        with pytest.raises(ValidationError):
            c.write_message("two\nlines")
    with Client(device.url, user="root", password="wrong") as c, pytest.raises(AuthenticationError):
        c.persistent_enabled()
    with Client(device.url) as anonymous, pytest.raises(AuthenticationError) as anon:
        anonymous.system_log()
    assert anon.value.status == 401
    gone = f"http://127.0.0.1:{free_port()}"
    with (
        Client(gone, user="root", password="x") as c,
        pytest.raises(DeviceUnavailableError) as refused,
    ):
        c.persistent_enabled()
    assert "connection refused" in str(refused.value)


def test_persistent_clear_report_and_text(device: Server, tmp_path: Path) -> None:
    with client(device) as c:
        c.set_persistent(True)
        assert c.persistent_enabled() is True
        c.write_message("kept in the persistent log")
        c.set_persistent(False)
        assert c.persistent_enabled() is False
        size = c.server_report("tar_all", tmp_path / "r.tar")
        assert size == (tmp_path / "r.tar").stat().st_size
        assert not (tmp_path / "r.tar.part").exists()
        persistent = "".join(
            text for name, text in members(tmp_path / "r.tar").items() if "persist-all" in name
        )
        assert "kept in the persistent log" in persistent
        buffer = io.BytesIO()
        assert c.server_report("text", buffer) == len(buffer.getvalue())
        assert c.serial is not None and c.serial.encode() in buffer.getvalue()
        c.clear_persistent_log()
        c.server_report("tar_all", tmp_path / "cleared.tar")
        assert not any("persist-all" in name for name in members(tmp_path / "cleared.tar"))
        with pytest.raises(ValidationError):
            c.server_report("bogus", tmp_path / "bogus")
        assert not (tmp_path / "bogus").exists() and not (tmp_path / "bogus.part").exists()


def test_reboot_waits_for_a_new_boot(device: Server) -> None:
    with client(device) as c:
        before = c.boot_id()
        after = c.reboot(wait=True, timeout=60)
        assert after is not None and after != before
        assert c.boot_id() == after
        assert f"previous boot {before} shut down cleanly" in c.system_log()


def test_capture_boot_logs(device: Server, tmp_path: Path) -> None:
    stages: list[Stage] = []
    with client(device) as c:
        c.write_message("before the capture")  # volatile only: persistence is off
        result = c.capture_boot_logs(f"{tmp_path}/new/", timeout=60, on_stage=stages.append)
        assert c.persistent_enabled() is False
    assert stages == list(Stage)
    assert result.path == tmp_path / "new" / f"127.0.0.1_{device.port}_{result.serial}.tar"
    assert result.bytes == result.path.stat().st_size and result.seconds > 0
    assert result.new_boot_id != result.old_boot_id
    files = members(result.path)
    persistent = "".join(text for name, text in files.items() if "persist-all" in name)
    assert f"reboot: ending boot {result.old_boot_id}" in persistent
    assert f"boot {result.new_boot_id}" in persistent
    assert "before the capture" not in persistent
    # Cleared afterwards: the persistent log is empty again.
    log = httpx.get(device.url + "/axis-cgi/serverreport.cgi?mode=text", auth=ROOT).text
    assert persistent_section(log) == ""


def test_capture_turns_persistence_off_when_a_step_fails(device: Server, tmp_path: Path) -> None:
    with client(device) as c:
        # A wait shorter than the reboot's downtime fails after persistence was turned on;
        # the clean-up waits for the device and turns it off again.
        with pytest.raises(DeviceUnavailableError) as failed:
            c.capture_boot_logs(tmp_path, timeout=0.01)
        assert c.persistent_enabled() is False
    notes = "".join(failed.value.__notes__)
    assert "failed at stage wait" in notes and "turned off again" in notes
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("version", ["1.2", "1.4"])
def test_capture_tells_the_reboot_from_systemready(tmp_path: Path, version: str) -> None:
    """1.4 has boot ids; 1.2 has none, so the client waits for the device to go down and come
    back."""
    server = start_server(
        tmp_path / "state", "--systemready-version", version, "--reboot-downtime", "0.5"
    )
    try:
        with client(server) as c:
            result = c.capture_boot_logs(tmp_path / "out.tar", timeout=60)
        identity = (server.state_dir / "identity.json").read_text()
        assert result.serial is not None and result.serial in identity  # from the realm
        if version == "1.2":
            assert result.old_boot_id is None and result.new_boot_id is None
        else:
            assert None not in (result.old_boot_id, result.new_boot_id)
            assert result.old_boot_id != result.new_boot_id
        text = "".join(members(tmp_path / "out.tar").values())
        assert "reboot: ending boot" in text  # the shutdown of the old boot was captured
    finally:
        server.stop()
