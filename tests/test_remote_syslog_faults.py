"""Remote syslog faults: a real rsyslogd stopped and started again mid-stream, and a
receiver that accepts a connection and never reads. Writers must never wait, the service
must keep answering, drops must be counted and told, memory must stay bounded."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from reboots import ADMIN
from remote_syslog_setup import device, pki, rsyslog, target, wait_for_line, write
from remotesyslog_api import rpc, setup, system_log
from rsyslog import Rsyslog, containing
from servers import Server
from vapixlog.forward.sender import BACKOFF_MAX

__all__ = ["device", "pki", "rsyslog"]  # fixtures, used by name
DROPPED = re.compile(r"(\d+) messages? dropped")


def patience(latencies: list[float], floor: float) -> float:
    """How long a write may take: `floor`, or more on a machine so loaded that the typical
    write is slow too; a writer waiting for the network would take seconds either way."""
    return max(floor, 20 * statistics.median(latencies))


def test_a_server_that_restarts(device: Server, rsyslog: Rsyslog) -> None:
    start = len(rsyslog.records("tcp"))
    run = uuid.uuid4().hex
    setup(device, target(rsyslog, "tcp", syslogFormat="RFC5424", severity="Debug"))
    mark = uuid.uuid4().hex
    write(device, f"{mark} marks where this test starts in the log", severity=7)
    latencies: list[float] = []
    written: list[tuple[int, float]] = []  # (sequence number, when)

    def burst(count: int) -> None:
        for _ in range(count):
            sequence = len(written)
            written.append((sequence, time.monotonic()))
            latencies.append(write(device, f"{run} {sequence}", client=client))
            time.sleep(0.01)

    def arrived() -> set[int]:
        records = rsyslog.records("tcp")[start:]
        return {int(r["msg"].split()[1]) for r in records if r["msg"].startswith(run)}

    with httpx.Client(base_url=device.url, auth=ADMIN, timeout=10) as client:
        burst(20)
        assert len(rsyslog.wait_for("tcp", containing(run), start=start, count=20)) == 20
        rsyslog.stop()
        burst(40)  # no server: dropped; writers never wait
        assert rpc(device, "status")["data"]["enabled"] is True  # the service answers
        rsyslog.start()
        up = time.monotonic()
        deadline = up + 10
        while time.monotonic() < deadline and not any(
            when >= up for n, when in written if n in arrived()
        ):
            burst(5)
        after = [when for n, when in written if n in arrived() and when >= up]
        assert after, "forwarding did not resume within 10 s"
        resumed = min(after)
        # Forwarding resumes within a few seconds: at the next attempt of the backoff.
        assert resumed - up < BACKOFF_MAX + patience(latencies, 1.0)
        first = len(written)
        burst(20)
        rsyslog.wait_for("tcp", containing(run), start=start, count=len(arrived()) + 20, timeout=5)
    assert set(range(first, first + 20)) <= arrived()  # once back, nothing is lost
    assert max(latencies) < patience(latencies, 1.0), latencies
    # The log tells the loss and the recovery, in at most one line per 5 s.
    name = f"remote syslog server 1 (TCP 127.0.0.1:{rsyslog.ports['tcp']}): "
    wait_for_line(device, name + "forwarding again", timeout=12)
    log = system_log(device)
    log = log[next(i for i, line in enumerate(log) if mark in line) :]
    lines = [line for line in log if name in line]
    assert "connection lost: the server closed the connection" in lines[0]
    dropped = sum(int(m[1]) for line in lines if (m := DROPPED.search(line)))
    assert 0 < dropped <= len(written) - 20


def rss(server: Server) -> int:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return (
        int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        * 1024
    )


def test_a_receiver_that_stops_reading_cannot_grow_memory(device: Server) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    acceptor.start()
    port = listener.getsockname()[1]
    message = "x" * 4096
    server = {"address": "127.0.0.1", "port": port, "protocol": "TCP", "severity": "Debug"}
    try:
        setup(device, {**server, "syslogFormat": "AXIS"})
        with (
            httpx.Client(base_url=device.url, auth=ADMIN, timeout=10) as client,
            ThreadPoolExecutor(8) as pool,
        ):
            # More than the queue holds: drops start, and the log says so at once.
            list(pool.map(lambda _: write(device, message, client=client), range(1000)))
            acceptor.join(5)
            assert accepted, "the device did not connect"
            line = wait_for_line(device, f"remote syslog server 1 (TCP 127.0.0.1:{port}): ")
            assert re.search(r"\d+ messages? dropped: the server does not keep up$", line)
            before = rss(device)
            latencies = list(pool.map(lambda _: write(device, message, client=client), range(4000)))
            grown = rss(device) - before
        assert grown < 8 << 20, f"{grown} bytes more after 16 MiB of messages"
        assert max(latencies) < patience(latencies, 2.0)  # no writer waited for the receiver
    finally:
        setup(device)
        for sock in (*accepted, listener):
            sock.close()
