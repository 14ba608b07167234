"""Fleet insight benchmarks (issue 18): the index build over the archives of a 1000-device
capture, as a ratio to `grep -c` over the same lines extracted; query latency on that
index (p50, p95); and the report build for 1000 and 10,000 devices.

The archives are synthetic but shaped like the emulator's `tar_all` (persist-all.log,
messages, the severity files, audit.log, and a sidecar each): `LINES` lines a device, a few
at error severity. Run: `.venv/bin/python bench/insight.py [--devices 1000] [--lines 400]`.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=400)
    parser.add_argument("--report-devices", type=int, nargs="*", default=[1000, 10_000])
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "capture"
        folder.mkdir()
        make_folder(folder, args.devices, args.lines)
        extracted = Path(temp) / "lines.txt"
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
        index = timed(build_index, folder)
        again = timed(build_index, folder)
        queries = ["sensor failed", "0x1f", "link speed", "client connected", "boot"]
        latencies = []
        for _ in range(20):
            for query in queries:
                started = time.perf_counter()
                search(folder, query, severity=Severity.ERROR, limit=1000)
                latencies.append(time.perf_counter() - started)
        latencies.sort()
        results.update(
            devices=args.devices,
            lines=args.devices * (args.lines + 2),
            grep_c_seconds=round(grep, 3),
            index_seconds=round(index, 3),
            index_vs_grep=round(grep / index, 4),
            reindex_unchanged_seconds=round(again, 3),
            query_p50_ms=round(statistics.median(latencies) * 1000, 2),
            query_p95_ms=round(latencies[int(0.95 * len(latencies))] * 1000, 2),
        )
        for count in args.report_devices:
            target = Path(temp) / f"report-{count}"
            target.mkdir()
            make_folder(target, count, 40, seed=count)
            results[f"summarize_{count}_seconds"] = round(timed(summarize, target), 3)
            shutil.rmtree(target)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
