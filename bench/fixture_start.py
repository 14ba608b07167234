"""`make bench` row: the pytest plugin's per-device start (issue 15; goal of issue 17).

Starts `COUNT` emulated devices one after the other, as a test session with a fresh device
per test does (`vapixlog.testing.EmulatedDevice`: the real device service in-process, on a
free loopback port), each until it serves; a device is stopped in the background, as the
fixtures do. Reported: the median start and the 90th percentile, and the whole sequence.
Run alone: `.venv/bin/python bench/fixture_start.py`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from vapixlog import testing

COUNT = 200
GOAL_MS = 20.0  # issue 17: a device starts in <= 20 ms in process


def measure(folder: Path, count: int = COUNT) -> tuple[float, float, float]:
    """(median, p90, wall) seconds of starting `count` devices (stop included in wall)."""
    times = []
    began = time.perf_counter()
    for index in range(count):
        start = time.perf_counter()
        device = testing.EmulatedDevice(folder / f"device-{index}").start()
        times.append(time.perf_counter() - start)
        device.stop(wait=False)
    testing.drain()
    wall = time.perf_counter() - began
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)], wall


def bench_fixture_start(res: object, folder: Path) -> None:
    from run import Row  # bench/run.py, which calls this

    median, p90, wall = measure(folder)
    res.add(  # type: ignore[attr-defined]
        Row(
            f"pytest plugin: start a fresh device (median of {COUNT})",
            f"{median * 1000:.1f} ms",
            f"p90 {p90 * 1000:.1f} ms; {COUNT} in {wall:.1f} s",
            goal=f"<= {GOAL_MS:.0f} ms",
            met=median * 1000 <= GOAL_MS,
        )
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        median, p90, wall = measure(Path(tmp))
    print(
        f"median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, {COUNT} devices in {wall:.1f} s"
    )
