"""`make bench`: `vapixlog capture` of a fleet of emulated devices in one server process (one
port each, or one loopback address each: `BENCH_ARGS="--only fleet --fleet 10000"`)."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

import run

from vapixlog.server import fleet_addresses


def bench_fleet(res: run.Results, state: Path, count: int, *, address_per_device: bool) -> None:
    """`vapixlog capture` of a fleet of `count` emulated devices in one server process: on
    ports PORT..PORT+N-1, or each on its own loopback address (issue 15: 10,000 of them);
    the wall time and the peak RSS of both processes."""
    if address_per_device:
        server = run.service(state, "--devices", str(count), "--address-per-device")
        last = fleet_addresses(count)[-1]
    else:
        server = run.service(state, "--devices", str(count))
        first = run.free_port_block(count)
        server.port = first + count - 1  # wait for the last device to answer
        server.argv = [a.replace("{port}", str(first)) for a in server.argv]
        last = "127.0.0.1"
    server.argv += ["--reboot-downtime", "2"]
    concurrency = 128 if address_per_device else 32
    out = run.WORK / "fleet-out"
    server.start(run.service_env())
    try:
        up = run.wait_ok(server.port, timeout=900, host=last)
        began = time.perf_counter()
        result = subprocess.run(
            [
                "taskset",
                "-c",
                run.CLIENT_CPU,
                run.PY,
                "-m",
                "vapixlog.cli",
                "capture",
                "--json",
                "--devices-file",
                str(state / "devices.txt"),
                "--output",
                str(out),
                "--concurrency",
                str(concurrency),
            ],
            capture_output=True,
            env={**os.environ, "VAPIXLOG_PASSWORD": run.PASSWORD},
            timeout=3600,
            check=False,
        )
        seconds = time.perf_counter() - began
        # Before the service is stopped and waited for: the children waited for so far are
        # the capture's processes only (KiB).
        client_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        service_peak = server.rss_kb("VmHWM")
    finally:
        server.stop()
    tars = len(list(out.glob("*.tar")))
    where = "one address each" if address_per_device else "one port each"
    res.add(
        run.Row(
            f"capture of {count} emulated devices ({where}, concurrency {concurrency})",
            f"{seconds:.1f} s (fleet up in {up:.0f} s)",
            f"{tars} tars, exit {result.returncode}; peak RSS service "
            f"{service_peak / 1024:.0f} MiB, capture {client_peak / 1024:.0f} MiB",
            goal=f"{count} tars" + (" in < 10 min, service < 2 GiB" if count >= 10_000 else ""),
            met=tars == count
            and result.returncode == 0
            and (count < 10_000 or (seconds < 600 and service_peak < 2 << 20)),
        )
    )
