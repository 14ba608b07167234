"""Before and after in one run: the service of another source tree against this one.

On a shared machine the absolute figures drift between runs; here each scenario runs on the
plain floor, the `--before` tree's service and this tree's service one right after the other
(server on core 0, wrk on core 1, as `bench/run.py`), `--rounds` times, so that both sides
meet the same load. Reported: each side's best rate and its ratio to the floor run just
before it, the p99, and the server's CPU time per request (all its threads, user and
system, from `/proc/PID/stat` around the run, divided by the requests answered: steadier
than the rates on a shared machine, and what a change of the hot path moves).

    cp -r src /tmp/before-src   # before the change
    .venv/bin/python bench/ab.py --before /tmp/before-src [--duration 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from run import (
    ENABLED,
    PLAIN_FLOOR,
    WORK,
    WRITE,
    Load,
    Server,
    digest_headers,
    request,
    running,
    service,
    service_env,
    wrk,
)

# (name, path, wrk script, Digest algorithm or None, persistent logging on)
SCENARIOS = [
    ("writeMessage, Basic, persistent off", WRITE, "post.lua", None, False),
    ("writeMessage, Basic, persistent on", WRITE, "post.lua", None, True),
    ("writeMessage, Digest MD5, persistent off", WRITE, "digest.lua", "MD5", False),
    ("writeMessage, Digest SHA-256, persistent off", WRITE, "digest.lua", "SHA-256", False),
    ("GET persistent/enabled, Basic", ENABLED, "get.lua", None, False),
]
PERSISTENT = {True: b"true", False: b"false"}


def cpu_seconds(server: Server) -> float:
    """User and system CPU time of the server process so far, all threads."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    port: int, path: str, script: str, algorithm: str | None, conns: int, seconds: float
) -> Load:
    if algorithm is None:
        return wrk(port, path, script, connections=conns, seconds=seconds)
    folder = WORK / f"ab-digest-{port}"
    shutil.rmtree(folder, ignore_errors=True)
    digest_headers(port, folder, int(50_000 * seconds), algorithm)
    try:
        return wrk(
            port,
            path,
            script,
            connections=conns,
            seconds=seconds,
            auth=None,
            script_args=(str(folder),),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the src folder to compare")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[32, 256])
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    floor = Server(PLAIN_FLOOR)
    before = service(WORK / "before")
    after = service(WORK / "after")
    before_env = {**service_env(), "PYTHONPATH": str(args.before.resolve())}
    best: dict[tuple[str, int, str], tuple[float, float, float, float]] = {}
    with running(floor), running(before, before_env), running(after, service_env()):
        for port in (floor.port, before.port, after.port):
            wrk(port, WRITE, "post.lua", connections=32, seconds=1)  # warm-up
        for _ in range(args.rounds):
            for name, path, script, algorithm, persistent in SCENARIOS:
                for conns in args.connections:
                    for side, server in (("before", before), ("after", after)):
                        base = wrk(
                            floor.port, WRITE, "post.lua", connections=conns, seconds=args.duration
                        )
                        status, _ = request(
                            server.port, "PATCH", ENABLED, b'{"data": %s}' % PERSISTENT[persistent]
                        )
                        assert status == 200, status
                        cpu_before = cpu_seconds(server)
                        load = measure(server.port, path, script, algorithm, conns, args.duration)
                        cpu_us = (cpu_seconds(server) - cpu_before) / max(load.requests, 1) * 1e6
                        bad = load.non_2xx + load.errors
                        ratio = load.rate / base.rate
                        print(
                            f"{name}, {conns} conn, {side}: {load.rate:,.0f} req/s "
                            f"({ratio:.2f} x floor {base.rate:,.0f}), p99 {load.p99_ms:.1f} ms, "
                            f"{cpu_us:.1f} us CPU/request"
                            + (f", {bad} non-2xx/errors" if bad else ""),
                            flush=True,
                        )
                        key = (name, conns, side)
                        if key not in best or ratio > best[key][1]:
                            best[key] = (load.rate, ratio, load.p99_ms, cpu_us)
    print("\n| scenario | before | after |\n|---|---:|---:|")
    for name, *_ in SCENARIOS:
        for conns in args.connections:
            cells = []
            for side in ("before", "after"):
                rate, ratio, p99, cpu_us = best[(name, conns, side)]
                cells.append(
                    f"{rate:,.0f} req/s, {ratio:.2f} x floor, p99 {p99:.1f} ms, {cpu_us:.1f} us CPU"
                )
            print(f"| {name}, {conns} conn | {cells[0]} | {cells[1]} |")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
