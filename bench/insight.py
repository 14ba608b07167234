"""Fleet insight benchmarks (issue 18): the index build over the archives of a 1000-device
capture, as a ratio to `grep -c` over the same lines extracted; query latency on that
index (p50, p95); and the report build for 1000 and 10,000 devices.

The archives are synthetic but shaped like the emulator's `tar_all` (persist-all.log,
messages, the severity files, audit.log, and a sidecar each): `LINES` lines a device, a few
at error severity. `make bench` runs it (`bench_insight`, rows with goals: the index build
>= 0.2 x `grep -c`, query p95 < 100 ms), alone with `make bench BENCH_ARGS="--only
insight"`; or: `.venv/bin/python bench/insight.py [--devices 1000] [--lines 400]` (JSON).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vapixlog.insight import build_index, search, summarize
from vapixlog.severity import Severity
from vapixlog.syslog.line import format_line

MESSAGES = [
    (Severity.INFO, "systemd", "Started Rotate log files for {n} units."),
    (Severity.NOTICE, "vapixlog", "client 10.0.{n}.7 connected"),
    (Severity.INFO, "httpd", "GET /axis-cgi/param.cgi 200 {n} bytes"),
    (Severity.WARNING, "storage", "sd card write took {n} ms"),
    (Severity.ERROR, "sensor", "sensor {n} read failed at 0x{n:x} from 10.0.0.{n}"),
    (Severity.DEBUG, "kernel", "eth0: link speed {n} Mbit/s"),
]
WEIGHTS = [40, 20, 30, 6, 1, 3]
INDEX_GOAL = 0.2  # index build >= 0.2 x grep -c over the same lines
QUERY_GOAL_MS = 100.0  # query p95
QUERIES = ["sensor failed", "0x1f", "link speed", "client connected", "boot"]


def make_folder(folder: Path, devices: int, lines: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
    for d in range(devices):
        serial = f"ACCC8E{d:06X}"
        host = f"axis-{serial.lower()}"
        old, new = f"{d:08x}-0000-4000-8000-000000000001", f"{d:08x}-0000-4000-8000-000000000002"
        moment = start
        persist: list[str] = []
        for _ in range(lines):
            moment += timedelta(milliseconds=rng.randrange(1, 500))
            severity, tag, text = rng.choices(MESSAGES, WEIGHTS)[0]
            message = text.format(n=rng.randrange(1, 4000))
            persist.append(format_line(moment, host, severity, tag, 1, message))
        persist.append(
            format_line(moment, host, Severity.NOTICE, "vapixlog", 1, f"reboot: ending boot {old}")
        )
        moment += timedelta(seconds=2)
        current = [
            format_line(moment, host, Severity.NOTICE, "vapixlog", 1, f"starting, boot {new}")
        ]
        name = f"10.0.{d // 250}.{d % 250}_80_{serial}.tar"
        members = {
            "var/log/persist-all.log": "\n".join(persist + current) + "\n",
            "var/log/messages": "\n".join(current) + "\n",
            "var/lib/syslog-ng/audit.log": "",
        }
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for member, text in members.items():
                data = text.encode()
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        (folder / name).write_bytes(buffer.getvalue())
        sidecar = {
            "url": f"http://10.0.{d // 250}.{d % 250}",
            "serial": serial,
            "firmware": "12.11.77",
            "old_boot_id": old,
            "new_boot_id": new,
            "stages": {"enable": 0.01, "reboot": 0.02, "wait": 2 + rng.random(), "disable": 0.01},
            "outcome": "captured",
        }
        (folder / (name + ".json")).write_text(json.dumps(sidecar))


def timed(function: object, *args: object) -> float:
    started = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def measure(
    work: Path, devices: int = 1000, lines: int = 400, report_devices: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Every figure, from folders made under `work` (removed when done)."""
    results: dict[str, Any] = {}
    folder = work / "capture"
    folder.mkdir(parents=True)
    make_folder(folder, devices, lines)
    extracted = work / "lines.txt"
    with extracted.open("wb") as out:
        for path in sorted(folder.glob("*.tar")):
            with tarfile.open(path) as tar:
                for member in tar:
                    file = tar.extractfile(member)
                    if file is not None:
                        out.write(file.read())
    grep = min(
        timed(
            functools.partial(subprocess.run, capture_output=True),
            ["grep", "-c", "", str(extracted)],
        )
        for _ in range(3)
    )
    cpu = time.process_time()
    index = timed(build_index, folder)
    index_cpu = time.process_time() - cpu
    again = timed(build_index, folder)
    latencies = []
    for _ in range(20):
        for query in QUERIES:
            started = time.perf_counter()
            search(folder, query, severity=Severity.ERROR, limit=1000)
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    results.update(
        devices=devices,
        lines=devices * (lines + 2),
        grep_c_seconds=round(grep, 3),
        index_seconds=round(index, 3),
        index_cpu_seconds=round(index_cpu, 3),
        index_vs_grep=round(grep / index, 4),
        reindex_unchanged_seconds=round(again, 3),
        query_p50_ms=round(statistics.median(latencies) * 1000, 2),
        query_p95_ms=round(latencies[int(0.95 * len(latencies))] * 1000, 2),
    )
    shutil.rmtree(folder)
    extracted.unlink()
    for count in report_devices:
        target = work / f"report-{count}"
        target.mkdir()
        make_folder(target, count, 40, seed=count)
        results[f"summarize_{count}_seconds"] = round(timed(summarize, target), 3)
        shutil.rmtree(target)
    return results


def bench_insight(
    res: Any,
    work: Path,
    devices: int = 1000,
    lines: int = 400,
    report_devices: tuple[int, ...] = (1000, 10_000),
) -> dict[str, Any]:
    """`make bench`'s rows (`run.Row`) into `res` (`run.Results`); returns the figures."""
    from run import Row  # bench/run.py, which calls this

    r = measure(work, devices, lines, report_devices)
    res.add(
        Row(
            f"logs index: {devices:,} archives, {r['lines']:,} lines",
            f"{r['index_seconds']:.2f} s",
            f"{r['index_vs_grep']:.3f} x grep -c ({r['grep_c_seconds'] * 1000:.0f} ms)",
            goal=f">= {INDEX_GOAL:g} x grep -c",
            met=r["index_vs_grep"] >= INDEX_GOAL,
        )
    )
    res.add(Row("logs index again, nothing changed", f"{r['reindex_unchanged_seconds']:.3f} s"))
    res.add(
        Row(
            f"logs search on that index ({len(QUERIES)} queries x 20), p50",
            f"{r['query_p50_ms']:.1f} ms",
            p99=f"p95 {r['query_p95_ms']:.1f} ms",
            goal=f"p95 < {QUERY_GOAL_MS:g} ms",
            met=r["query_p95_ms"] < QUERY_GOAL_MS,
        )
    )
    for count in report_devices:
        seconds = r[f"summarize_{count}_seconds"]
        res.add(Row(f"summarize (summary.json + report): {count:,} devices", f"{seconds:.2f} s"))
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=400)
    parser.add_argument("--report-devices", type=int, nargs="*", default=[1000, 10_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        results = measure(Path(temp), args.devices, args.lines, tuple(args.report_devices))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
