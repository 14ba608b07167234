"""Fleet insight (issue 18) from a real capture: an emulated fleet of 6 devices, errors planted
on some of them (persistent logging on, then writeMessage) before `vapixlog capture`, an
unreachable device, and then a truncated tar, a foreign tar and a garbage file dropped into
the folder. `summarize`'s figures, `logs index` (incremental) and `logs search` (each
filter) are checked against the planted truth; report.html is rendered in Chromium at
1280x800 and phone width (screenshots: test-artifacts/insight-report*.png; the desktop one
is copied to docs/insight-report.png when VAPIXLOG_UPDATE_DOCS=1 is set)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from chromium import ARTIFACTS, browser
from conftest import start_server
from servers import USERS, VAPIXLOG, free_port, free_port_block

__all__ = ["browser"]  # a fixture, used by name

API = "/config/rest/log/v1"
ROOT = ("root", USERS["root"][1])
DOCS = Path(__file__).parents[1] / "docs"
MARK = "zq7planted"
# (device index, severity, message): numbers, addresses and ids differ, the message is one.
PLANTED = [
    (0, 3, f"{MARK} sensor 3 read failed at 0x1f3a from 10.0.0.5:80"),
    (0, 4, f"{MARK} fan speed low: 1200 rpm"),
    (2, 3, f"{MARK} sensor 7 read failed at 0x2b from 10.0.0.9:8080"),
    (2, 2, f"{MARK} watchdog <script>alert(1)</script> after 5000 ms"),
    (3, 3, f"{MARK} sensor 12 read failed at 0xff from 192.168.1.20:443"),
]
ERROR_DEVICES = {0, 2, 3}


@dataclass
class Capture:
    out: Path
    urls: list[str]
    unreachable: str
    devices: dict[int, str]  # index -> device name (archive stem)
    serials: dict[int, str]
    lines: dict[tuple[int, str], str]  # (index, message) -> the line as the device wrote it


def vapixlog(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
    env["VAPIXLOG_PASSWORD"] = ROOT[1]
    result = subprocess.run(
        [*VAPIXLOG, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    base = tmp_path_factory.mktemp("insight")
    fleet = start_server(
        base / "state", "--devices", "6", "--reboot-downtime", "0.2", port=free_port_block(6)
    )
    try:
        urls = (fleet.state_dir / "devices.txt").read_text().split()
        with httpx.Client(auth=ROOT, timeout=10) as client:
            for index in sorted({i for i, _, _ in PLANTED}):
                reply = client.patch(urls[index] + f"{API}/persistent/enabled", json={"data": True})
                assert reply.status_code == 200, reply.text
            for index, severity, message in PLANTED:
                data = {"data": {"msg": message, "severity": severity}}
                reply = client.post(urls[index] + f"{API}/writeMessage", json=data)
                assert reply.status_code == 200, reply.text
                time.sleep(0.01)  # distinct times for --since/--until
        unreachable = f"http://127.0.0.1:{free_port()}"
        devices_file = base / "fleet.txt"
        devices_file.write_text("\n".join([*urls, unreachable]) + "\n")
        out = base / "out"
        result = vapixlog("capture", "--json", "--devices-file", str(devices_file), "-o", str(out))
        assert result.returncode == 1, result.stderr  # the unreachable device
    finally:
        fleet.stop()
    report = json.loads(result.stdout)
    by_url = {d["device"]: d for d in report["devices"]}
    devices = {i: Path(by_url[url]["file"]).name.removesuffix(".tar") for i, url in enumerate(urls)}
    serials = {i: by_url[url]["serial"] for i, url in enumerate(urls)}
    lines: dict[tuple[int, str], str] = {}
    for index, _, message in PLANTED:
        with tarfile.open(out / f"{devices[index]}.tar") as tar:
            text = tar.extractfile("var/log/persist-all.log").read().decode()  # type: ignore[union-attr]
        (line,) = [line for line in text.splitlines() if line.endswith(message)]
        lines[(index, message)] = line
    # The bad files: a truncated archive, a foreign tar, garbage.
    good = (out / f"{devices[1]}.tar").read_bytes()
    (out / "cut_short.tar").write_bytes(good[:1500])
    foreign = io.BytesIO()
    with tarfile.open(fileobj=foreign, mode="w") as tar:
        member = tarfile.TarInfo("etc/hosts")
        member.size = 9
        tar.addfile(member, io.BytesIO(b"127.0.0.1"))
    (out / "foreign.tar").write_bytes(foreign.getvalue())
    (out / "garbage.tar").write_bytes(os.urandom(3000))
    yield Capture(out, urls, unreachable, devices, serials, lines)


# ----- summary.json and report.html ----------------------------------------------------------


@pytest.fixture(scope="module")
def summary(capture: Capture) -> dict:  # type: ignore[type-arg]
    result = vapixlog("summarize", str(capture.out))
    assert result.returncode == 0, result.stderr
    for name in ("cut_short.tar", "foreign.tar", "garbage.tar"):
        assert name in result.stderr
    return json.loads((capture.out / "summary.json").read_text())  # type: ignore[no-any-return]


def test_the_summary_matches_the_planted_truth(capture: Capture, summary: dict) -> None:  # type: ignore[type-arg]
    fleet = summary["fleet"]
    assert fleet["outcomes"] == {"captured": 6, "unreadable": 3, "failed": 1}
    assert fleet["failed_stages"] == {"connect": 1}
    assert fleet["devices_with_errors"] == len(ERROR_DEVICES)
    severity = fleet["severity"]
    assert (severity["CRIT"], severity["ERR"], severity["WARNING"]) == (1, 3, 1)
    assert severity["EMERG"] == severity["ALERT"] == 0
    top = fleet["error_messages"][0]
    assert top["pattern"] == f"{MARK} sensor <n> read failed at <hex> from <ip>"
    assert (top["tag"], top["devices"], top["entries"], top["severity"]) == ("log-api", 3, 3, "ERR")
    assert fleet["error_message_groups"] == 2
    problems = {p["file"]: p["kind"] for p in fleet["problems"]}
    assert problems == {
        "cut_short.tar": "truncated",
        "foreign.tar": "foreign",
        "garbage.tar": "corrupt",
    }
    assert fleet["reboot_seconds"]["count"] == 6 and fleet["reboot_seconds"]["min"] >= 0.2

    devices = {d["device"]: d for d in summary["devices"]}
    failed = devices[capture.unreachable]
    assert (failed["outcome"], failed["failed_stage"]) == ("failed", "connect")
    for index, name in capture.devices.items():
        device = devices[name]
        assert device["outcome"] == "captured" and device["serial"] == capture.serials[index]
        assert device["firmware"] and device["old_boot_id"] and device["new_boot_id"]
        assert device["old_boot_id"] != device["new_boot_id"]
        assert set(device["stages"]) == {"enable", "reboot", "wait", "disable", "download", "clear"}
        planted = [(i, m) for i, s, m in PLANTED if i == index]
        errors = [capture.lines[(i, m)] for i, s, m in PLANTED if i == index and s <= 3]
        assert device["errors"] == errors and device["errors_total"] == len(errors)
        for key in planted:  # the planted lines were the last ones of the old boot
            assert capture.lines[key] in device["last_before_shutdown"]
    assert devices["foreign"]["outcome"] == "unreadable"


def test_an_empty_or_missing_folder_is_named_not_a_traceback(tmp_path: Path) -> None:
    result = vapixlog("summarize", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no archives" in result.stderr
    assert "no archives" in (tmp_path / "report.html").read_text()
    assert vapixlog("summarize", str(tmp_path / "nope")).returncode == 2
    result = vapixlog("logs", "index", str(tmp_path))
    assert result.returncode == 0 and "indexed 0 archives" in result.stdout


def test_archives_made_elsewhere_leave_the_sidecar_fields_empty(
    capture: Capture, tmp_path: Path
) -> None:
    from vapixlog.insight import after_capture

    shutil.copy(capture.out / f"{capture.devices[2]}.tar", tmp_path / "Axis_SR_x.tar")
    assert after_capture(tmp_path) == f"report: {tmp_path / 'report.html'} (1 device)"
    (device,) = json.loads((tmp_path / "summary.json").read_text())["devices"]
    assert (device["outcome"], device["url"], device["serial"], device["firmware"]) == (
        "archive-only",
        None,
        None,
        None,
    )
    assert device["stages"] == {} and device["old_boot_id"] is None
    assert device["errors_total"] == 2 and device["reboot_seconds"] >= 0.2  # from the log
    assert after_capture(tmp_path / "missing").startswith("note: no report for ")


def test_ten_thousand_devices_make_pages_not_one_huge_page(tmp_path: Path) -> None:
    from vapixlog.insight.report import PAGE_SIZE, write_report

    device = {
        "device": "d", "archive": "d.tar", "url": "http://10.0.0.1", "serial": "ACCC8E000000",
        "firmware": "12.11.77", "outcome": "captured", "failed_stage": None, "error": None,
        "problem": None, "old_boot_id": "a", "new_boot_id": "b", "stages": {"wait": 1.0},
        "reboot_seconds": 1.0, "entries": 40, "errors_total": 1, "errors": ["x" * 100],
        "last_before_shutdown": ["y" * 100] * 10,
    }  # fmt: skip
    devices = [{**device, "device": f"dev{i:05}"} for i in range(10_000)]
    fleet = {
        "devices": 10_000, "outcomes": {"captured": 10_000}, "devices_with_errors": 10_000,
        "entries": 400_000, "severity": {"ERR": 10_000}, "error_messages": [],
        "error_message_groups": 0, "problems": [], "stage_median_seconds": {"wait": 1.0},
        "reboot_seconds": {"count": 10_000, "min": 1.0, "median": 1.0, "p90": 1.0, "max": 1.0,
                           "edges": [1.0, 2.0], "counts": [10_000]},
    }  # fmt: skip
    started = time.monotonic()
    pages = write_report(tmp_path, {"folder": "f", "generated_at": "t", "fleet": fleet,
                                    "devices": devices})  # fmt: skip
    assert time.monotonic() - started < 10
    assert len(pages) == 10_000 // PAGE_SIZE
    assert max(page.stat().st_size for page in pages) < 1_500_000


# ----- the index and search ------------------------------------------------------------------


def search(capture: Capture, *args: str) -> list[str]:
    result = vapixlog("logs", "search", "-C", str(capture.out), *args)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.splitlines()


def expected(capture: Capture, keep: object = lambda i, s, m: True) -> list[str]:
    chosen = [(i, m) for i, s, m in PLANTED if keep(i, s, m)]  # type: ignore[operator]
    return [f"{capture.devices[i]}: {capture.lines[(i, m)]}" for i, m in chosen]


def by_time(lines: list[str]) -> list[str]:
    return sorted(lines, key=lambda text: text.split(": ", 1)[1])


def test_index_is_incremental_and_names_bad_files(capture: Capture) -> None:
    first = vapixlog("logs", "index", str(capture.out))
    assert first.returncode == 0, first.stderr
    assert "indexed 9 archives" in first.stdout  # 6 captures and the 3 bad files (recorded)
    for name in ("cut_short.tar", "foreign.tar", "garbage.tar"):
        assert name in first.stderr
    again = vapixlog("logs", "index", str(capture.out))
    assert "indexed 0 archives (0 lines), 9 unchanged" in again.stdout
    assert "garbage.tar" in again.stderr  # still named
    (capture.out / "garbage.tar").unlink()
    (capture.out / "garbage.tar").write_bytes(os.urandom(2000))
    third = vapixlog("logs", "index", str(capture.out))
    assert "indexed 1 archive (0 lines), 8 unchanged" in third.stdout


def test_search_finds_exactly_the_planted_lines_with_each_filter(capture: Capture) -> None:
    vapixlog("logs", "index", str(capture.out))
    everything = search(capture, MARK)
    assert everything == by_time(expected(capture))  # newest last
    assert search(capture, "", "--severity", "err") == by_time(
        expected(capture, lambda i, s, m: s <= 3)
    )
    assert search(capture, "sensor failed", "--severity", "crit") == []
    assert search(capture, "", "--severity", "crit") == expected(capture, lambda i, s, m: s <= 2)
    assert search(capture, MARK, "--device", capture.serials[2]) == expected(
        capture, lambda i, s, m: i == 2
    )
    assert search(capture, MARK, "--device", capture.devices[0]) == expected(
        capture, lambda i, s, m: i == 0
    )
    port = capture.devices[3].split("_")[1]  # a part of the archive name
    assert search(capture, MARK, "--device", port) == expected(capture, lambda i, s, m: i == 3)
    assert search(capture, "0x2b") == expected(capture, lambda i, s, m: "0x2b" in m)
    times = [line.split(": ", 1)[1].split(" ", 1)[0] for line in everything]
    assert search(capture, MARK, "--since", times[2]) == everything[2:]
    assert search(capture, MARK, "--until", times[1]) == everything[:2]
    assert search(capture, MARK, "--since", times[1], "--until", times[3]) == everything[1:4]
    rows = [json.loads(line) for line in search(capture, MARK, "--json", "--severity", "crit")]
    assert [(r["device"], r["serial"], r["severity"], r["tag"]) for r in rows] == [
        (capture.devices[2], capture.serials[2], "CRIT", "log-api")
    ]
    assert rows[0]["line"] == capture.lines[(2, PLANTED[3][2])] and rows[0]["boot"]
    assert search(capture, "no-such-word-anywhere") == []


# ----- the page in Chromium ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("viewport", "shot"),
    [({"width": 1280, "height": 800}, "insight-report.png"),
     ({"width": 390, "height": 844}, "insight-report-phone.png")],
)  # fmt: skip
def test_report_renders_offline_without_overflow(
    browser: Browser,
    capture: Capture,
    summary: dict,  # type: ignore[type-arg]
    viewport: dict[str, int],
    shot: str,
) -> None:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto((capture.out / "report.html").as_uri())
    try:
        assert page.locator("script").count() == 0  # the planted <script> is text
        assert "<script>alert(1)</script>" in page.locator("body").inner_text()
        assert page.locator("svg.chart").count() == 4
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
        text = page.locator("body").inner_text()
        for name in ("cut_short.tar", "foreign.tar", "garbage.tar", capture.unreachable):
            assert name in text
        assert f"{MARK} sensor <n> read failed at <hex> from <ip>" in text
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=viewport["width"] < 500)
        if viewport["width"] == 1280 and os.environ.get("VAPIXLOG_UPDATE_DOCS") == "1":
            shutil.copy(ARTIFACTS / shot, DOCS / shot)
        assert requests == [(capture.out / "report.html").as_uri()]  # nothing else fetched
        assert not [line for line in console if line.startswith("error")], console
    finally:
        context.close()
