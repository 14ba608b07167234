"""The capture client under faults (issue 15): a truncated report is refused, a dropped
connection on a safe step is retried, a reboot reply that never came does not lead to a
second reboot. Each through `tests/faultproxy.py` in front of a real `vapixlog serve`."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from faultproxy import FaultProxy, Rule, is_persistent_change, is_reboot, is_report
from servers import USERS, Server
from test_client_fleet import capture
from vapixlog.client import (
    ArchiveError,
    AsyncClient,
    CaptureResult,
    RetryPolicy,
    capture_fleet,
)
from vapixlog.client._archive import TarCheck

ROOT = ("root", USERS["root"][1])
FAST = RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.2)
PERSISTENT = "/config/rest/log/v1/persistent/enabled"
CONTROL = "/vapixlog/control/faults"


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.2")
    yield server
    if server.proc:
        server.stop()


def lifetime(server: Server) -> dict[str, int]:
    counts: dict[str, int] = json.loads((server.state_dir / "lifetime.json").read_text())
    return counts


def persistent_on(server: Server) -> bool:
    answer = httpx.get(server.url + PERSISTENT, auth=ROOT, timeout=10).json()
    return bool(answer["data"])


def run_capture(url: str, dest: Path, *, grace: float = 15.0) -> CaptureResult:
    async def main() -> CaptureResult:
        async with AsyncClient(url, user=ROOT[0], password=ROOT[1]) as client:
            from vapixlog.client._capture import capture_boot_logs

            return await capture_boot_logs(client, dest, timeout=30, retry=FAST, reboot_grace=grace)

    return asyncio.run(main())


def tar_all(server: Server) -> bytes:
    url = server.url + "/axis-cgi/serverreport.cgi?mode=tar_all"
    return httpx.get(url, auth=ROOT, timeout=30).content


def test_every_truncation_of_a_report_is_refused(device: Server) -> None:
    data = tar_all(device)
    check = TarCheck()
    check.feed(data)
    check.finish()
    assert check.members >= 5
    assert len(data) % 512 == 0 and data.endswith(bytes(1024))
    for size in [*range(0, len(data) - 1024, 97), len(data) - 1024, len(data) - 1]:
        check = TarCheck("http://x")
        check.feed(data[:size])
        with pytest.raises(ArchiveError, match="not a complete tar archive: truncated"):
            check.finish()
    damaged = bytearray(data)
    damaged[100] ^= 0x20  # a header byte: the checksum no longer matches
    with pytest.raises(ArchiveError, match="bad header at byte 0"):
        TarCheck().feed(bytes(damaged))


@pytest.mark.parametrize("cut", ["middle", "end-marker"])
def test_a_truncated_report_is_an_error_not_a_file(
    device: Server, tmp_path: Path, cut: str
) -> None:
    """Cut without a Content-Length (HTTP cannot tell): in a member's data, or exactly
    before the end-of-archive marker (every member complete)."""
    keep = 3000 if cut == "middle" else -1024
    proxy = FaultProxy(device.port, [Rule(is_report, "truncate", times=99, keep=keep)])
    with proxy.running():
        with pytest.raises(ArchiveError) as failed:
            run_capture(proxy.url, tmp_path / "out.tar")
        assert proxy.count(is_report) == FAST.attempts  # a safe step: tried again
    text = str(failed.value) + "".join(failed.value.__notes__)
    why = "truncated at byte 3000" if cut == "middle" else "no end-of-archive marker"
    assert "the server report is not a complete tar archive: truncated" in text and why in text
    assert "failed at stage download" in text
    assert not list(tmp_path.glob("out.tar*"))  # neither the tar, its part file, a sidecar
    assert not persistent_on(device)
    # The persistent log is not cleared: the capture can be run again, nothing is lost.
    assert "reboot: ending boot" in tar_all(device).decode("latin-1")


def test_a_truncated_report_through_the_command(device: Server, tmp_path: Path) -> None:
    proxy = FaultProxy(device.port, [Rule(is_report, "truncate", times=99, keep=5000)])
    with proxy.running():
        code, report, stderr = capture(
            "--device", proxy.url, "-o", str(tmp_path / "o"), "--retries", "0"
        )
    assert code == 1
    (result,) = report["devices"]
    assert result["failed_stage"] == "download"
    assert "not a complete tar archive: truncated at byte 5000" in result["error"]
    assert "not a complete tar archive" in stderr
    assert not list((tmp_path / "o").glob("*.tar*"))


def test_dropped_connections_on_safe_steps_are_retried(device: Server, tmp_path: Path) -> None:
    rules = [
        Rule(is_persistent_change, "drop-before", times=2),
        Rule(is_report, "drop-after", times=1),
    ]
    proxy = FaultProxy(device.port, rules)
    with proxy.running():
        result = run_capture(proxy.url, tmp_path / "out.tar")
        assert [rule.hits for rule in rules] == [2, 1]
        assert proxy.count(is_report) == 2
        assert proxy.count(is_reboot) == 1
    assert result.path is not None
    with tarfile.open(result.path) as tar:
        assert tar.getmember("var/log/messages")
    assert lifetime(device)["restarts"] == 1
    assert not persistent_on(device)
    sidecar = json.loads((tmp_path / "out.tar.json").read_text())
    assert sidecar["outcome"] == "captured" and sidecar["serial"] == result.serial
    assert sidecar["old_boot_id"] == result.old_boot_id != sidecar["new_boot_id"]
    assert set(sidecar["stages"]) == {"enable", "reboot", "wait", "disable", "download", "clear"}
    assert sidecar["firmware"] and sidecar["url"] == proxy.url


def test_no_second_reboot_after_a_reply_that_never_came(device: Server, tmp_path: Path) -> None:
    """The device rebooted, its answer was lost: the boot id tells, nothing is repeated."""
    proxy = FaultProxy(device.port, [Rule(is_reboot, "drop-after")])
    with proxy.running():
        result = run_capture(proxy.url, tmp_path / "out.tar")
        assert proxy.count(is_reboot) == 1
    assert result.new_boot_id != result.old_boot_id
    assert lifetime(device) == {"boots": 2, "restarts": 1}
    report = httpx.get(device.url + "/axis-cgi/serverreport.cgi", auth=ROOT, timeout=30).text
    assert "Restart Counter: 1" in report
    assert not persistent_on(device)


def test_a_reboot_request_that_never_arrived_is_sent_again(device: Server, tmp_path: Path) -> None:
    """No answer, and the device stayed in the same boot for the grace period: the request
    did not get through, and asking again is the first reboot, not a second."""
    proxy = FaultProxy(device.port, [Rule(is_reboot, "drop-before")])
    with proxy.running():
        result = run_capture(proxy.url, tmp_path / "out.tar", grace=1.0)
        assert proxy.count(is_reboot) == 2
    assert result.new_boot_id != result.old_boot_id
    assert lifetime(device) == {"boots": 2, "restarts": 1}


def test_a_foreign_file_is_not_overwritten(device: Server, tmp_path: Path) -> None:
    """A tar the folder's journal does not know (an older capture) stays; the device is left
    alone."""
    out = tmp_path / "out"
    out.mkdir()
    serial = httpx.get(device.url + "/axis-cgi/serverreport.cgi", auth=ROOT).text
    serial = serial.split("Serial No: ", 1)[1].split()[0]
    foreign = out / f"127.0.0.1_{device.port}_{serial}.tar"
    foreign.write_bytes(b"an older capture")

    async def main() -> None:
        (outcome,) = await capture_fleet(
            [device.url],
            out,
            client_factory=lambda url: AsyncClient(url, user=ROOT[0], password=ROOT[1]),
            retry=FAST,
        )
        assert not outcome.ok and outcome.stage is None
        assert "exists and is not from this folder's capture journal" in (outcome.error or "")

    asyncio.run(main())
    assert foreign.read_bytes() == b"an older capture"
    assert lifetime(device)["restarts"] == 0 and not persistent_on(device)


def test_tar_check_follows_pax_sizes() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("x" * 200)  # a long name: a pax record
        info.pax_headers = {"comment": "c" * 600}
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    check = TarCheck()
    check.feed(buffer.getvalue())
    check.finish()
    assert check.members == 1


# Per device, a fault of the server's own fault layer (`serve --fault` grammar, set through
# the control endpoint) at one stage of the procedure; every device must end captured,
# rebooted exactly once, with persistent logging off.
STAGE_FAULTS = [
    "systemready:status=503,first=2",  # first contact: a JSON-RPC error, not "no systemready"
    "persistent:status=503,first=2",  # first contact and enable: DCA 503, retried
    "persistent:reset=before,first=3",  # handled, the answer lost: idempotent, retried
    "reboot:reset=before,first=1",  # rebooted, the answer lost: the boot id tells
    "reboot:reset=request,first=1",  # never handled: same boot for the grace, asked again
    "reboot:status=503,first=1",  # JSON-RPC error 503: refused, asked again
    "reboot:downtime=3",  # a slow reboot: waited for
    "report:truncate=4096,first=1",  # a cut report: refused, downloaded again
    "report:reset=after,first=1",  # the connection reset after the head: downloaded again
    "clearLog:status=500,first=1",  # DCA 500 on the clear: retried
]


@pytest.mark.timeout(120)
def test_a_fault_at_each_stage_of_a_fleet_capture(tmp_path: Path) -> None:
    from servers import free_port_block

    count = len(STAGE_FAULTS)
    state = tmp_path / "state"
    fleet = start_server(
        state, "--devices", str(count), "--reboot-downtime", "0.2", "--control",
        port=free_port_block(count),
    )  # fmt: skip
    try:
        urls = (state / "devices.txt").read_text().split()
        with httpx.Client(auth=ROOT, timeout=10) as http:
            for url, fault in zip(urls, STAGE_FAULTS, strict=True):
                answer = http.put(url + "/vapixlog/control/faults", json={"faults": [fault]})
                assert answer.status_code == 200, answer.text
        out = tmp_path / "out"
        args = [arg for url in urls for arg in ("--device", url)]
        code, report, stderr = capture(*args, "-o", str(out), "--reboot-grace", "1")
        outcomes = {d["device"]: d for d in report["devices"]}
        for index, (url, fault) in enumerate(zip(urls, STAGE_FAULTS, strict=True)):
            assert outcomes[url]["ok"], (fault, outcomes[url])
            counts = json.loads((state / "devices" / f"{index:04d}" / "lifetime.json").read_text())
            assert counts == {"boots": 2, "restarts": 1}, fault
            assert not persistent_on_url(url), fault
            sidecar = json.loads(Path(outcomes[url]["file"] + ".json").read_text())
            assert None not in (sidecar["old_boot_id"], sidecar["new_boot_id"]), fault
            assert sidecar["old_boot_id"] != sidecar["new_boot_id"], fault
        assert code == 0, stderr
        assert len(list(out.glob("*.tar"))) == count
        # The lost request was watched for the grace period before it was sent again.
        lost = outcomes[urls[STAGE_FAULTS.index("reboot:reset=request,first=1")]]
        stages = json.loads(Path(lost["file"] + ".json").read_text())["stages"]
        assert stages["reboot"] >= 1.0, stages
    finally:
        fleet.stop()


def persistent_on_url(url: str) -> bool:
    return bool(httpx.get(url + PERSISTENT, auth=ROOT, timeout=10).json()["data"])


def test_error_answers_of_a_starting_device_are_not_its_new_boot(tmp_path: Path) -> None:
    """After a reboot, systemready.cgi answers errors (HTTP 200, a JSON-RPC error) three
    times: the wait goes on until the device tells its new boot, never taking an error
    answer for a boot without an id."""
    server = start_server(tmp_path / "state", "--reboot-downtime", "1", "--control")
    spec = "systemready:status=500,first=3"

    async def main() -> tuple[str | None, str | None]:
        async with AsyncClient(server.url, user=ROOT[0], password=ROOT[1]) as client:
            before = await client.system_ready()
            assert before is not None and before.boot_id
            # Armed now, fired by the first three answers after the reboot (the plan
            # outlives it; the address refuses connections meanwhile).
            async with httpx.AsyncClient(auth=ROOT) as control:
                reply = await control.put(server.url + CONTROL, json={"faults": [spec]})
                assert reply.status_code == 200, reply.text
            await client.reboot(wait=False)
            after = await client.wait_for_new_boot(before, 30)
            return before.boot_id, after

    try:
        old, new = asyncio.run(main())
        assert new is not None and new != old, (old, new)
        ready = {"apiVersion": "1.0", "method": "systemready"}
        now = httpx.post(server.url + "/axis-cgi/systemready.cgi", json=ready, timeout=10)
        assert now.json()["data"]["bootid"] == new
    finally:
        server.stop()
