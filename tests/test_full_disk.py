"""A full disk under the state dir: a small tmpfs mounted for the test (needs root).

Three ways the disk fills: below the keep-free floor (persistent logging pauses), to 100 %
with the floor at 0 (also across a restart), and a real ENOSPC from the kernel (no inode
left for the next file at a rotation). In every case writeMessage answers 200 with a
warning and the entry is in the volatile log, nothing stored before is damaged, writing
resumes once space returns, and the server never crashes.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from servers import Server
from syslog_files import persistent_lines

WRITE = "/config/rest/log/v1/writeMessage"
ENABLED = "/config/rest/log/v1/persistent/enabled"


def _mount_tmpfs(where: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip() or result.returncode}")


@pytest.fixture
def small_fs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs at tmp_path/state; the mount options come from the test's parameter."""
    state = tmp_path / "state"
    _mount_tmpfs(state, getattr(request, "param", "size=4m"))
    try:
        yield state
    finally:
        result = subprocess.run(["umount", str(state)], capture_output=True, check=False)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(state)], check=False)


def _free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def _fill(path: Path, leave: int) -> None:
    """Write `path` until at most `leave` bytes are free (0: until ENOSPC)."""
    chunk = b"\0" * 65536
    with path.open("ab", buffering=0) as out:
        while (free := _free(path.parent)) > leave:
            try:
                out.write(chunk[: max(1, min(len(chunk), free - leave))])
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break


def _write(client: httpx.Client, msg: str) -> list[str]:
    """writeMessage; the warnings of its answer (which must be a 200)."""
    response = client.post(WRITE, json={"data": {"msg": msg}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    warnings: list[str] = body.get("warnings", [])
    return warnings


def _stored(server: Server) -> list[str]:
    """The messages in the persistent files; each file must parse, with no torn line."""
    return [line.message for line in persistent_lines(server.state_dir)]


def _log(client: httpx.Client) -> str:
    response = client.get("/axis-cgi/systemlog.cgi")
    assert response.status_code == 200
    return response.text


def _start(state: Path, *args: str) -> tuple[Server, httpx.Client]:
    server = start_server(state, *args)
    client = client_for(server)
    response = client.patch(ENABLED, json={"data": True})
    assert response.status_code == 200
    return server, client


def _check_stored_once(server: Server, messages: list[str]) -> None:
    stored = _stored(server)
    for message in messages:
        assert stored.count(message) == 1, message


def test_keep_free_floor_pauses_and_resumes(small_fs: Path) -> None:
    server, client = _start(small_fs, "--keep-free", "1M")
    filler = small_fs / "filler"
    try:
        before = [f"before {i}" for i in range(20)]
        assert all(_write(client, msg) == [] for msg in before)
        _fill(filler, leave=512 << 10)
        assert _free(small_fs) < 1 << 20

        during = [f"during {i} " + "d" * 1000 for i in range(5)]
        for msg in during:
            (warning,) = _write(client, msg)
            assert "persistent logging is paused" in warning
            assert "volatile log only" in warning
        log = _log(client)
        assert all(msg in log for msg in during)  # in the volatile log
        assert "[ WARNING ] vapixlog[" in log
        assert "persistent log paused: less than 1048576 bytes free" in log
        _check_stored_once(server, before)
        assert not [m for m in _stored(server) if m.startswith("during ")]

        filler.unlink()
        after = [f"after {i}" for i in range(5)]
        assert all(_write(client, msg) == [] for msg in after)
        log = _log(client)
        assert "persistent log resumed: " in log
        resumed = log.split("persistent log resumed: ")[1].split(" ")[0]
        assert int(resumed) >= len(during)
        _check_stored_once(server, before + after)
        assert server.proc is not None and server.proc.poll() is None
    finally:
        client.close()
        assert server.stop() == 0


def test_disk_full_to_the_last_byte_with_no_floor(small_fs: Path) -> None:
    server, client = _start(small_fs, "--keep-free", "0")
    filler = small_fs / "filler"
    try:
        before = [f"before {i} " + "b" * 500 for i in range(20)]
        assert all(_write(client, msg) == [] for msg in before)
        _fill(filler, leave=0)
        assert _free(small_fs) == 0

        during = [f"during {i} " + "d" * 3000 for i in range(10)]
        warned = [msg for msg in during if _write(client, msg)]
        assert warned == during  # no byte left: nothing can be stored
        log = _log(client)
        assert all(msg in log for msg in during)
        assert "persistent log paused" in log or "persistent log write failed" in log
        _check_stored_once(server, before)
        assert not [m for m in _stored(server) if m.startswith("during ")]

        # The setting cannot be saved: it still applies, and the answer says so.
        for enabled in (False, True):
            response = client.patch(ENABLED, json={"data": enabled})
            assert response.status_code == 200
            (warning,) = response.json()["warnings"]
            assert "could not be saved (No space left on device)" in warning
        # A restart (and so a reboot) with the disk full: the device still comes up.
        client.close()
        assert server.stop() == 0
        server.start()
        client = client_for(server)
        assert _write(client, "restarted while full")
        assert "cannot record this boot in boot.json: [Errno 28]" in _log(client)

        filler.unlink()
        after = [f"after {i}" for i in range(5)]
        assert all(_write(client, msg) == [] for msg in after)
        log = _log(client)
        assert "persistent log resumed: " in log or "works again: " in log
        _check_stored_once(server, before + after)
        assert server.proc is not None and server.proc.poll() is None
    finally:
        client.close()
        assert server.stop() == 0


@pytest.mark.parametrize("small_fs", ["size=4m,nr_inodes=64"], indirect=True)
def test_enospc_from_the_kernel_at_a_rotation(small_fs: Path) -> None:
    """No inode is left for the next log file: a real ENOSPC inside the journal."""
    server, client = _start(small_fs, "--keep-free", "0", "--persistent-file-size", "16K")
    fillers = small_fs / "fillers"
    try:
        before = [f"before {i}" for i in range(10)]
        assert all(_write(client, msg) == [] for msg in before)
        fillers.mkdir()
        for i in range(1000):
            try:
                (fillers / str(i)).touch()
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break
        else:
            pytest.fail("the tmpfs did not run out of inodes")

        acked, warned = [], []
        for i in range(12):  # 12 x 4 KiB: past the 16 KiB file, so a rotation is due
            msg = f"during {i} " + "d" * 4000
            (warned if _write(client, msg) else acked).append(msg)
        assert warned, "no write failed"
        assert warned == [f"during {i} " + "d" * 4000 for i in range(len(acked), 12)]
        log = _log(client)
        assert "persistent log write failed: [Errno 28] No space left on device" in log
        assert all(msg in log for msg in warned)
        _check_stored_once(server, before + acked)
        assert not set(warned) & set(_stored(server))

        for path in fillers.iterdir():
            path.unlink()
        after = [f"after {i}" for i in range(5)]
        assert all(_write(client, msg) == [] for msg in after)
        log = _log(client)
        assert "persistent log works again: " in log
        lost = log.split("persistent log works again: ")[1].split(" ")[0]
        assert int(lost) >= len(warned)  # and the service's own entries meanwhile
        _check_stored_once(server, before + acked + after)
        assert server.proc is not None and server.proc.poll() is None
    finally:
        client.close()
        assert server.stop() == 0
