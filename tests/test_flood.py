"""A flood of big messages from many clients: disk use and memory stay bounded (< 40 s)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

from conftest import client_for, start_server
from syslog_files import persistent_lines
from vapixlog.syslog.logfiles import list_logs

MAX = 2 << 20
UNIT = 256 << 10
CLIENTS = 8
FLOOD_SECONDS = 8.0
MSG_CHARS = 4096


def _message(client: int, index: int) -> str:
    head = f"flood c{client} {index:06d} "
    return head + "x" * (MSG_CHARS - len(head))


def _disk_use(folder: Path) -> int:
    total = 0
    with suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with suppress(FileNotFoundError):  # dropped between listing and stat
                total += entry.stat().st_size
    return total


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _sample(
    folder: Path, pid: int, stop: threading.Event, out: list[tuple[float, int, int]]
) -> None:
    while not stop.is_set():
        out.append((time.monotonic(), _disk_use(folder), _rss(pid)))
        stop.wait(0.05)


def _between(samples: list[tuple[float, int, int]], start: float, end: float) -> Iterator[int]:
    return (rss for t, _, rss in samples if start <= t < end)


def test_flood_keeps_disk_and_memory_bounded(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "state",
        "--persistent-max-size", "2M",
        "--persistent-file-size", "256K",
        "--rate-limit", "off",
    )  # fmt: skip
    assert server.proc is not None
    folder = server.state_dir / "log" / "persistent"
    try:
        with client_for(server) as admin:
            assert admin.patch("/config/rest/log/v1/persistent/enabled", json={"data": True})
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(folder, server.proc.pid, stop, samples))
        acked: list[list[int]] = [[] for _ in range(CLIENTS)]
        errors: list[str] = []
        start = time.monotonic()
        deadline = start + FLOOD_SECONDS

        def flood(client: int) -> None:
            with client_for(server) as http:
                index = 0
                while time.monotonic() < deadline:
                    response = http.post(
                        "/config/rest/log/v1/writeMessage",
                        json={"data": {"msg": _message(client, index)}},
                    )
                    if response.status_code != 200 or "warnings" in response.json():
                        errors.append(response.text)
                        return
                    acked[client].append(index)
                    index += 1

        sampler.start()
        writers = [threading.Thread(target=flood, args=(c,)) for c in range(CLIENTS)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=FLOOD_SECONDS + 20)
        stop.set()
        sampler.join()
        assert errors == []
        assert server.proc.poll() is None
        total = sum(map(len, acked))
        written = total * (MSG_CHARS + 80)
        assert written > 4 * MAX, f"only {total} messages acknowledged: no real flood"

        # Disk use never went past the cap plus one rotation unit.
        assert len(samples) > 100
        assert max(disk for _, disk, _ in samples) <= MAX + UNIT
        # Memory stays bounded: little growth over the flood, none at its end.
        base = samples[0][2]
        peak = max(rss for _, _, rss in samples)
        assert peak - base < 50 << 20, (base, peak)
        middle = max(_between(samples, start + 3, start + 5))
        end = max(_between(samples, start + 6, start + FLOOD_SECONDS))
        assert end <= middle + (8 << 20), (middle, end)
        print(
            f"flood: {total} messages, rss {base >> 20} -> {peak >> 20} MiB, "
            f"disk max {max(d for _, d, _ in samples) >> 10} KiB"
        )

        # Rotation dropped the oldest data first: the newest messages are kept.
        numbers = [seq for seq, _ in list_logs(folder)]
        assert numbers[0] > 1
        assert numbers == list(range(numbers[0], numbers[-1] + 1))
        kept = {line.message[:16] for line in persistent_lines(server.state_dir)}
        for client in range(CLIENTS):
            assert _message(client, 0)[:16] not in kept
            assert _message(client, acked[client][-1])[:16] in kept
        with client_for(server) as admin:
            log = admin.get("/axis-cgi/systemlog.cgi", timeout=30).text
        assert "dropped oldest file messages-" in log
    finally:
        server.stop()


def test_flood_helpers() -> None:
    assert len(_message(3, 42)) == MSG_CHARS
    assert _message(3, 42).startswith("flood c3 000042 x")
    assert _rss(os.getpid()) > 0
    assert _disk_use(Path("/nonexistent")) == 0
