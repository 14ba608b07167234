"""Fleet insight (issue 18): one device failing at each stage of the capture procedure.

A real fleet (`vapixlog serve --devices 8 --control`): on device k a fault, armed through
the control endpoint, makes `vapixlog capture` fail at stage k of `Stage` (enable, reboot,
wait, disable, download, clear); the last two devices are healthy. An error line is
planted on every device before the capture (persistent logging on, then writeMessage; the
faults are armed after that, so their counts start with the capture). summary.json and
report.html must name each failing device with exactly its stage and outcome, the healthy
ones as captured, and count only what the archives hold.

Every stage can be made to fail by a fault of the emulator (none is left out):
- enable: the first PATCH of persistent/enabled answers 500 (the clean-up PATCH succeeds);
- reboot: the reboot JSON-RPC call answers error 400 (not transient: not asked again);
- wait: the reboot hangs, and `--wait-timeout` is short;
- disable: every second PATCH of persistent/enabled answers 500 (the enable is the first;
  the fault plan outlives the reboot);
- download: the server report is cut after 3000 bytes (not a complete tar);
- clear: clearLog answers 500 (the tar was downloaded before it: kept, without sidecar).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from servers import free_port_block
from test_insight import API, ROOT, vapixlog

CONTROL = "/vapixlog/control/faults"
PERSISTENT = "PATCH /config/rest/log/*/persistent/enabled"
# Stage -> the fault that makes a capture fail there, on a device of its own.
FAULTS = {
    "enable": f"{PERSISTENT}:status=500,first=1",
    "reboot": "reboot:status=400",
    "wait": "reboot:hang",
    "disable": f"{PERSISTENT}:status=500,every=2",
    "download": "report:truncate=3000",
    "clear": "clearLog:status=500",
}
STAGES = list(FAULTS)
HEALTHY = 2
MARK = "zq9stage"


def planted(index: int) -> str:
    """The error line planted on device `index` (one message when masked)."""
    return f"{MARK} device {index} failed at 0x{index:x}"


@dataclass
class Run:
    out: Path
    urls: list[str]  # STAGES' devices first, in order, then the healthy ones
    report: dict  # type: ignore[type-arg]  # capture --json
    seconds: float


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    from vapixlog.client._capture import Stage

    assert [stage.value for stage in Stage] == STAGES  # a new stage needs a device here
    base = tmp_path_factory.mktemp("stages")
    count = len(STAGES) + HEALTHY
    fleet = start_server(
        base / "state",
        "--devices",
        str(count),
        "--control",
        "--reboot-downtime",
        "0.2",
        port=free_port_block(count),
    )
    try:
        urls = (fleet.state_dir / "devices.txt").read_text().split()
        with httpx.Client(auth=ROOT, timeout=10) as client:
            for index, url in enumerate(urls):  # kept across the reboot: persistent
                reply = client.patch(url + f"{API}/persistent/enabled", json={"data": True})
                assert reply.status_code == 200, reply.text
                data = {"data": {"msg": planted(index), "severity": 3}}
                reply = client.post(url + f"{API}/writeMessage", json=data)
                assert reply.status_code == 200, reply.text
            for url, spec in zip(urls, FAULTS.values(), strict=False):
                reply = client.put(url + CONTROL, json={"faults": [spec]})
                assert reply.status_code == 200 and reply.json() == {"faults": [spec]}, reply.text
        devices_file = base / "fleet.txt"
        devices_file.write_text("\n".join(urls) + "\n")
        out = base / "out"
        started = time.monotonic()
        result = vapixlog(
            "capture", "--json", "--devices-file", str(devices_file), "-o", str(out),
            "--retries", "0", "--reboot-grace", "1", "--wait-timeout", "3",
        )  # fmt: skip
        seconds = time.monotonic() - started
        assert result.returncode == 1, result.stderr  # the failing devices
    finally:
        fleet.stop()
    yield Run(out, urls, json.loads(result.stdout), seconds)


def test_capture_fails_each_device_at_its_stage(run: Run) -> None:
    by_url = {d["device"]: d for d in run.report["devices"]}
    for url, stage in zip(run.urls, STAGES, strict=False):
        assert (by_url[url]["outcome"], by_url[url]["failed_stage"]) == ("failed", stage), url
    for url in run.urls[len(STAGES) :]:
        assert by_url[url]["outcome"] == "captured", by_url[url]
    assert run.seconds < 60  # about 9 s: the wait stage's 3 s timeout and 0.2 s reboots


def test_the_summary_names_each_failing_stage(run: Run) -> None:
    summary = json.loads((run.out / "summary.json").read_text())
    fleet = summary["fleet"]
    assert fleet["outcomes"] == {"failed": len(STAGES), "captured": HEALTHY}
    assert fleet["failed_stages"] == dict.fromkeys(STAGES, 1)
    assert fleet["problems"] == []
    devices = {d["url"]: d for d in summary["devices"]}
    assert len(devices) == len(summary["devices"]) == len(STAGES) + HEALTHY
    for index, (url, stage) in enumerate(zip(run.urls, STAGES, strict=False)):
        device = devices[url]
        assert (device["outcome"], device["failed_stage"]) == ("failed", stage), device
        assert device["error"], device
        done = STAGES[: STAGES.index(stage)]
        assert set(device["stages"]) >= set(done), (stage, device["stages"])
        if stage == "clear":  # downloaded before it failed: its archive is read
            assert device["archive"] and device["errors_total"] == 1
            assert device["errors"][0].endswith(planted(index))
        else:
            assert device["archive"] is None and device["errors_total"] == 0
    for index, url in enumerate(run.urls[len(STAGES) :], start=len(STAGES)):
        device = devices[url]
        assert (device["outcome"], device["failed_stage"]) == ("captured", None)
        assert set(device["stages"]) == set(STAGES)
        assert device["old_boot_id"] != device["new_boot_id"]
        assert device["errors"][0].endswith(planted(index))
    # Errors from the archives only: the healthy devices and the one that failed at clear.
    assert fleet["devices_with_errors"] == HEALTHY + 1
    assert fleet["severity"]["ERR"] >= HEALTHY + 1
    top = fleet["error_messages"][0]
    assert top["pattern"] == f"{MARK} device <n> failed at <hex>"
    assert (top["devices"], top["entries"]) == (HEALTHY + 1, HEALTHY + 1)
    assert fleet["reboot_seconds"]["count"] == HEALTHY + 1


def test_the_report_names_each_failing_device_and_stage(run: Run) -> None:
    summary = json.loads((run.out / "summary.json").read_text())
    names = {d["url"]: escape(d["device"]) for d in summary["devices"]}
    html = (run.out / "report.html").read_text()
    assert "<h2>Failed devices (6)</h2>" in html
    failures = re.findall(r"<tr><td>([^<]*)</td><td class=bad>([^<]*)</td>", html)
    assert sorted(failures) == sorted(
        (names[url], stage) for url, stage in zip(run.urls, STAGES, strict=False)
    )
    row = r"<td data-label=device><b>([^<]*)</b>.*?<td data-label=outcome class=\w+>([^<]*)</td>"
    rows = dict(re.findall(row, html))
    assert rows == {
        **{names[url]: f"failed at {stage}" for url, stage in zip(run.urls, STAGES, strict=False)},
        **{names[url]: "captured" for url in run.urls[len(STAGES) :]},
    }
