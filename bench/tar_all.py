"""`make bench`: `serverreport.cgi?mode=tar_all` of 100 MB and 500 MB of persistent logs,
against `tar` of the same files piped to `cat`, and the server's RSS growth meanwhile."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import run


def fill_persistent_logs(state: Path, total: int, file_bytes: int = 8 * run.MB) -> None:
    """Persistent log files of `total` bytes of valid lines, as the journal writes them."""
    folder = state / "log" / "persistent"
    folder.mkdir(parents=True, exist_ok=True)
    existing = sum(p.stat().st_size for p in folder.glob("messages-*.log"))
    line = (
        b"2026-01-01T00:00:00.000+00:00 axis-accc8e000000 [ INFO    ] log-api[4242]: "
        b"an entry of the benchmark's persistent log, padded to a typical length ..........\n"
    )
    block = line * (run.MB // len(line))
    seq = len(list(folder.glob("messages-*.log")))
    while existing < total:
        seq += 1
        size = min(file_bytes, total - existing)
        with (folder / f"messages-{seq:06d}.log").open("wb") as out:
            written = 0
            while written + len(block) <= size:
                out.write(block)
                written += len(block)
            rest = (size - written) // len(line) * len(line)
            out.write(line * (rest // len(line)))
            written += rest
        existing += max(written, len(line))


def peak_rss_during(server: run.Server, work: subprocess.Popen[bytes]) -> int:
    """Highest VmRSS (kB) of `server` sampled every 2 ms until `work` ends."""
    peak = server.rss_kb()
    while work.poll() is None:
        peak = max(peak, server.rss_kb())
        time.sleep(0.002)
    return peak


def timed_shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], check=True, cwd=run.ROOT)
    return time.perf_counter() - start


def bench_tar_all(res: run.Results, state: Path) -> None:
    server = run.service(state, "--persistent-max-size", "1G")
    for size_mb in (100, 500):
        fill_persistent_logs(state, size_mb * run.MB)
        logs = state / "log" / "persistent"
        with run.running(server, run.service_env()):
            url = f"http://127.0.0.1:{server.port}/axis-cgi/serverreport.cgi?mode=tar_all"
            curl = ["taskset", "-c", run.CLIENT_CPU, "curl", "-sf", "-u", f"root:{run.PASSWORD}"]
            curl += ["-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
            tar = (
                f"taskset -c {run.SERVER_CPU} tar cf - -C {state} log/persistent "
                f"| taskset -c {run.CLIENT_CPU} cat > /dev/null"
            )
            timed_shell(tar)  # the files into the page cache, for both
            tar_rate = (
                max(
                    sum(p.stat().st_size for p in logs.iterdir()) / timed_shell(tar)
                    for _ in range(2)
                )
                / run.MB
            )
            best, growth = 0.0, 0
            for _ in range(2):
                before = server.rss_kb()
                proc = subprocess.Popen(curl, stdout=subprocess.PIPE)
                peak = peak_rss_during(server, proc)
                size, total = proc.communicate()[0].decode().split()
                best = max(best, int(size) / float(total) / run.MB)
                growth = max(growth, peak - before)
        growth_mb = growth / 1024
        res.add(
            run.Row(
                f"tar_all of {size_mb} MB",
                f"{best:,.0f} MB/s",
                f"{best / tar_rate:.2f} x tar ({tar_rate:,.0f} MB/s)",
                goal=">= 0.8 x tar",
                met=best >= 0.8 * tar_rate,
            )
        )
        res.add(
            run.Row(
                f"tar_all of {size_mb} MB: server peak RSS growth",
                f"{growth_mb:.1f} MB",
                goal="< 20 MB",
                met=growth_mb < 20,
            )
        )
