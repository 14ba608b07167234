"""Issue 14: writeMessage with forwarding over TCP (RFC 5424) to a real rsyslogd, as a ratio
to writeMessage without forwarding in the same server and run.

The service runs on the server core; rsyslogd (tests/rsyslog.py, reused) and wrk share the
client core. Persistent logging stays off, as in the writeMessage scenario of bench/run.py
(Basic, 32 connections, bench/post.lua), run without forwarding before and after the
forwarded run; the ratio is to the mean of those two. The volatile log is made large enough
to keep every line of the runs, so that the entries the service logged and its
`remote-syslogd` drop lines can be counted from `systemlog.cgi` afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import run

sys.path.insert(0, str(run.ROOT / "tests"))
from pki import TestCa
from rsyslog import Rsyslog

MESSAGE = "benchmark entry from wrk, one line"  # bench/post.lua's
CGI = "/axis-cgi/remotesyslog.cgi"
DROPPED = re.compile(r"remote-syslogd\[\d+\]: remote syslog server \d .*?(\d+) messages? dropped")


def rpc(port: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "1.2", "method": method}
    if params is not None:
        body["params"] = params
    status, answer = run.request(port, "POST", CGI, json.dumps(body).encode())
    reply: dict[str, Any] = json.loads(answer)
    assert status == 200 and "error" not in reply, (status, reply)
    return reply


def system_log(port: int) -> list[str]:
    status, body = run.request(port, "GET", "/axis-cgi/systemlog.cgi")
    assert status == 200, status
    return body.decode().splitlines()


def received(server: Rsyslog) -> int:
    path = server.file("tcp")
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(MESSAGE.encode() in line for line in lines)


def drained(server: Rsyslog, quiet: float = 2.0, least: float = 6.0, most: float = 60.0) -> int:
    """rsyslog's count once it has not grown for `quiet` s and `least` s have passed (the
    service writes its drop line at most every 5 s), at most `most` s."""
    began = time.monotonic()
    count, since = received(server), time.monotonic()
    while time.monotonic() - began < most:
        time.sleep(0.25)
        now = received(server)
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and time.monotonic() - began >= least:
            break
    return count


def bench_forwarding(res: run.Results, state: Path, seconds: float) -> None:
    folder = run.WORK / "rsyslog"
    ca = TestCa("bench-ca", folder / "pki")
    rogue = TestCa("bench-rogue", folder / "pki").server("rogue")
    rsyslog = Rsyslog(folder, tls=ca.server("tls"), rogue=rogue, ca=ca.cert_path)
    rsyslog.start()
    assert rsyslog.proc is not None
    subprocess.run(  # every thread of rsyslogd onto the client core, with wrk
        ["taskset", "-a", "-p", "-c", run.CLIENT_CPU, str(rsyslog.proc.pid)],
        check=True,
        capture_output=True,
    )
    server = run.service(state, "--volatile-size", "512M")
    try:
        with run.running(server, run.service_env()):
            port = server.port
            run.wrk(port, run.WRITE, "post.lua", connections=32, seconds=5)  # warm-up
            plain = run.wrk(port, run.WRITE, "post.lua", connections=32, seconds=seconds)
            res.add(run.load_row("writeMessage, persistent off, 32 conn, no forwarding", plain))

            target = {"address": "127.0.0.1", "port": rsyslog.ports["tcp"], "protocol": "TCP"}
            target |= {"syslogFormat": "RFC5424", "severity": "Informational", "type": "All"}
            before = sum(MESSAGE in line for line in system_log(port))
            rpc(port, "setup", {"servers": [target]})
            rpc(port, "enable")
            time.sleep(0.5)  # the sender connects
            load = run.wrk(port, run.WRITE, "post.lua", connections=32, seconds=seconds)
            got = drained(rsyslog)
            lines = system_log(port)
            logged = sum(MESSAGE in line for line in lines) - before
            dropped = sum(int(m[1]) for line in lines if (m := DROPPED.search(line)))
            rpc(port, "disable")
            time.sleep(0.5)
            after = run.wrk(port, run.WRITE, "post.lua", connections=32, seconds=seconds)
            res.add(run.load_row("the same, no forwarding again (after disable)", after))
    finally:
        rsyslog.stop()

    base = (plain.rate + after.rate) / 2  # before and after: linear drift cancels
    ratio = load.rate / base
    row = run.load_row("writeMessage, forwarding to rsyslog over TCP, 32 conn", load)
    row.ratio = f"{ratio:.2f} x no forwarding (mean {base:,.0f})"
    row.goal, row.met = ">= 0.8 x no forwarding", ratio >= 0.8
    res.add(row)
    sent = load.requests - load.non_2xx
    whole = got + dropped == logged
    res.add(
        run.Row(
            "forwarded: rsyslog received + dropped vs logged",
            f"{got:,} + {dropped:,}",
            f"logged {logged:,}, wrk {sent:,} 2xx",
            goal="received + dropped = logged",
            met=whole,
        )
    )
    print(
        f"  wrk completed {sent:,} writes; the service logged {logged:,} (wrk stops with up to"
        f" 32 in flight); rsyslog received {got:,}; the service counted {dropped:,} dropped;"
        f" received + dropped == logged: {whole}; == wrk's count: {got + dropped == sent}",
        flush=True,
    )
