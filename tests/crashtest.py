"""Crash safety harness: SIGKILL a loaded `vapixlog serve` at random moments, many times.

A real server process runs with persistent logging on while `writers` concurrent clients
POST `writeMessage` with unique messages (`crash k<round> w<writer> n<seq>`). After a random
0.05..0.5 s of load the server is killed with SIGKILL, started again on the same port and
state dir (the setting persists, nothing is re-enabled), checked (alive, answering, a new boot
whose log says the previous one "ended without a clean shutdown", persistent logging still
on), and the load goes on. After the last kill, one more start and a clean stop, then every
persistent file is read and checked:

* lost: acknowledged messages (the POST answered exactly `{"status":"success"}`) that are
  not in the files;
* duplicated: messages found more than once;
* torn: files not ending in a newline, lines that do not parse with `parse_line`, and
  `log-api` lines whose message is not exactly one message we sent (two lines run together
  still parse, so the message itself is checked).

Next to the writers, one auditor per round keeps calling the Remote Syslog API's `setup`
(`/axis-cgi/remotesyslog.cgi`), one call in flight at a time, each with a destination port
never used before in the run (1024, 1025, ...). A call is acknowledged when it answers
HTTP 200 with `data` and no `error`: its audit entry (`API Activity: root@127.0.0.1 configured
API.RemoteSyslog1.Servers (UDP 127.0.0.1:<port> RFC5424 Debug All).`) is then durable in the
audit log (AXIS OS 12.5+, `<state>/audit/log/`), and the audit files are checked the same way:
`audit_lost`, `audit_duplicated`, `audit_torn` (a line that does not parse, one that holds
another line's timestamp, one naming the setting with a port that was never sent).

A kill in the middle of a write may leave a partial last line; the next start cuts it off and
sets it aside in `<state>/log/recovered/` ("repaired persistent log ...") or
`<state>/audit/recovered/` ("repaired audit log ..."). Those repairs are expected and counted
(`repairs`, `audit_repairs`), and torn lines are only counted in the final files.

Used by pytest (`run_crash_test`) and as a script (`make crash-test`):

    python tests/crashtest.py --kills 200 [--writers 16] [--seed S] [--state-dir DIR]

The last line printed (stdout) is `kills=N acked=N lost=N duplicated=N torn=N audit_acked=N
audit_lost=N audit_duplicated=N audit_torn=N` (one line); the exit status is non-zero when a
lost, duplicated or torn figure is non-zero, a start failed, or no message or no audited call
was acknowledged at all. Progress and diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from servers import USERS, Server
from vapixlog.syslog.line import ParsedLine, parse_line

BASE = "/config/rest/log/v1"
SYSTEMLOG = "/axis-cgi/systemlog.cgi"
REMOTESYSLOG = "/axis-cgi/remotesyslog.cgi"
ADMIN = ("root", USERS["root"][1])
# Small files, so that kills also hit rotations; a cap that is never reached (a dropped
# oldest file would lose acknowledged messages legitimately).
SERVER_ARGS = ["--persistent-file-size", "256K", "--persistent-max-size", "1G"]
MESSAGE = re.compile(r"crash k\d+ w\d+ n\d+")
BOOT = re.compile(r"starting on \S+ \(serial \w+\), boot ([0-9a-f-]{36})")
REPAIRED = "repaired persistent log "
SUCCESS = {"status": "success"}
# The auditor's setup calls: destination ports counted up from 1024, each used once in a run,
# so far below the ports tests take for their own listeners (20000 and up, `servers.py`).
FIRST_PORT = 1024
LAST_PORT = 65535
AUDITED_SETTING = "API.RemoteSyslog1.Servers"
AUDITED = re.compile(
    r"API Activity: root@127\.0\.0\.1 configured API\.RemoteSyslog1\.Servers "
    r"\(UDP 127\.0\.0\.1:(\d+) RFC5424 Debug All\)\."
)
AUDIT_REPAIRED = "repaired audit log "
# Between two setup calls, to keep the auditor light next to the writers: each call saves the
# settings and writes its audit entry, both synced. About 15 calls a second; measured side by
# side, the writers lose a few percent of their throughput (within the machine's noise).
AUDIT_PAUSE = 0.05
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")  # a line run into another


@dataclass
class CrashResult:
    kills: int = 0
    acked: int = 0
    lost: int = 0
    duplicated: int = 0
    torn: int = 0
    sent: int = 0  # POSTs attempted (acknowledged or not)
    refused: int = 0  # answers other than plain success (warnings, 429, ...)
    repairs: int = 0  # "repaired persistent log" entries seen after the restarts
    recovered_files: int = 0  # tails set aside in log/recovered/
    audit_acked: int = 0  # setup calls answered with `data`
    audit_lost: int = 0
    audit_duplicated: int = 0
    audit_torn: int = 0
    audit_sent: int = 0  # setup calls attempted
    audit_refused: int = 0  # setup calls answered with an `error` or not HTTP 200
    audit_repairs: int = 0  # "repaired audit log" entries seen after the restarts
    audit_recovered_files: int = 0  # tails set aside in audit/recovered/
    start_failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # first few details, for diagnosis
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.duplicated == self.torn == 0
            and self.audit_lost == self.audit_duplicated == self.audit_torn == 0
            and not self.start_failures
            and self.acked > 0
            and self.audit_acked > 0
        )

    def line(self) -> str:
        return (
            f"kills={self.kills} acked={self.acked} lost={self.lost} "
            f"duplicated={self.duplicated} torn={self.torn} audit_acked={self.audit_acked} "
            f"audit_lost={self.audit_lost} audit_duplicated={self.audit_duplicated} "
            f"audit_torn={self.audit_torn}"
        )

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Ports:
    """The auditor's destination ports: counted up over the whole run, never one twice."""

    def __init__(self) -> None:
        self._next = FIRST_PORT

    def take(self) -> int | None:
        """The next unused port; None once all are used."""
        if self._next > LAST_PORT:
            return None
        port, self._next = self._next, self._next + 1
        return port


def _setup_call(port: int) -> dict[str, object]:
    server = {
        "address": "127.0.0.1",
        "port": port,
        "protocol": "UDP",
        "syslogFormat": "RFC5424",
        "severity": "Debug",
        "type": "All",
    }
    return {
        "apiVersion": "1.0",
        "context": "crash",
        "method": "setup",
        "params": {"servers": [server]},
    }


class _Load:
    """The writers and the auditor of one round: they write until the server goes away."""

    def __init__(self, server: Server, round_no: int, writers: int, ports: _Ports) -> None:
        self.server = server
        self.round_no = round_no
        self.writers = writers
        self.ports = ports
        self.sent: list[str] = []
        self.acked: list[str] = []
        self.refused = 0
        self.audit_sent: list[int] = []
        self.audit_acked: list[int] = []
        self.audit_refused = 0

    async def run(self, stop: asyncio.Event) -> None:
        auth = httpx.BasicAuth(*ADMIN)
        limits = httpx.Limits(max_connections=self.writers)
        async with (
            httpx.AsyncClient(
                base_url=self.server.url, auth=auth, limits=limits, timeout=10
            ) as client,
            httpx.AsyncClient(
                base_url=self.server.url,
                auth=auth,
                limits=httpx.Limits(max_connections=1),
                timeout=10,
            ) as audit_client,
        ):
            await asyncio.gather(
                self._auditor(audit_client, stop),
                *(self._writer(client, n, stop) for n in range(self.writers)),
            )

    async def _auditor(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """One `setup` call at a time, a new port each, light next to the writers."""
        while not stop.is_set():
            port = self.ports.take()
            if port is None:
                return
            self.audit_sent.append(port)
            try:
                response = await client.post(REMOTESYSLOG, json=_setup_call(port))
            except httpx.TransportError:  # the server was killed: this round is over
                return
            try:
                body = response.json()
            except ValueError:
                body = None
            if (
                response.status_code == 200
                and isinstance(body, dict)
                and "data" in body
                and "error" not in body
            ):
                self.audit_acked.append(port)
            else:
                self.audit_refused += 1
            await asyncio.sleep(AUDIT_PAUSE)

    async def _writer(self, client: httpx.AsyncClient, writer: int, stop: asyncio.Event) -> None:
        seq = 0
        while not stop.is_set():
            msg = f"crash k{self.round_no} w{writer} n{seq}"
            seq += 1
            self.sent.append(msg)
            try:
                response = await client.post(f"{BASE}/writeMessage", json={"data": {"msg": msg}})
            except httpx.TransportError:  # the server was killed: this round is over
                return
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code == 200 and body == SUCCESS:
                self.acked.append(msg)
            else:
                self.refused += 1
                if response.status_code == 429:  # rate limited: back off a little
                    await asyncio.sleep(0.05)


def _boot_log(server: Server) -> str:
    response = httpx.get(server.url + SYSTEMLOG, auth=ADMIN, timeout=10)
    response.raise_for_status()
    return response.text


def _start_and_check(
    server: Server, previous_boot: str | None, result: CrashResult, timeout: float
) -> str | None:
    """Start the server; return its boot id, or None (and a start failure) if it failed."""
    try:
        server.start(timeout=timeout)
        if server.proc is None or server.proc.poll() is not None:
            raise RuntimeError("the server process is not alive")
        log = _boot_log(server)
        enabled = httpx.get(server.url + BASE + "/persistent/enabled", auth=ADMIN, timeout=10)
    except (RuntimeError, httpx.HTTPError) as error:
        result.start_failures.append(f"start after {result.kills} kills: {error}")
        return None
    boots: list[str] = BOOT.findall(log)
    if len(boots) != 1 or boots[0] == previous_boot:
        result.start_failures.append(f"start after {result.kills} kills: no new boot entry")
        return None
    if previous_boot is not None:
        unclean = f"previous boot {previous_boot} ended without a clean shutdown"
        if unclean not in log:
            result.start_failures.append(f"start after {result.kills} kills: no {unclean!r} entry")
    if previous_boot is not None and enabled.json() != {"status": "success", "data": True}:
        result.start_failures.append(
            f"start after {result.kills} kills: persistent logging is not on: {enabled.text}"
        )
    result.repairs += log.count(REPAIRED)
    result.audit_repairs += log.count(AUDIT_REPAIRED)
    return boots[0]


def _read_lines(path: Path, torn: Callable[[str], None]) -> list[tuple[bytes, ParsedLine]]:
    """The lines of `path` that parse; `torn(detail)` for a last line without its newline and
    for every line that does not parse."""
    raws = path.read_bytes().split(b"\n")
    tail = raws.pop()  # b"" when the file ends in a newline, as it must
    if tail:
        torn(f"{path.name} does not end in a newline: {tail[-200:]!r}")
    lines: list[tuple[bytes, ParsedLine]] = []
    for raw in raws:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = None
        parsed = parse_line(text) if text is not None else None
        if parsed is None:
            torn(f"unparsable line in {path.name}: {raw[:200]!r}")
        else:
            lines.append((raw, parsed))
    return lines


def _recovered_files(folder: Path) -> int:
    return len(list(folder.glob("*.torn"))) if folder.exists() else 0


def check_files(state_dir: Path, sent: set[str], acked: list[str], result: CrashResult) -> None:
    """Count lost, duplicated and torn in the persistent files of `state_dir`."""

    def torn(detail: str) -> None:
        result.torn += 1
        result.note(detail)

    counts: Counter[str] = Counter()
    for path in sorted((state_dir / "log" / "persistent").glob("messages-*.log")):
        for raw, parsed in _read_lines(path, torn):
            if parsed.tag == "log-api":
                if MESSAGE.fullmatch(parsed.message) and parsed.message in sent:
                    counts[parsed.message] += 1
                else:
                    torn(f"interleaved or unknown line in {path.name}: {raw[:200]!r}")
    for msg in acked:
        if counts[msg] == 0:
            result.lost += 1
            result.note(f"lost: {msg}")
    for msg, count in counts.items():
        if count > 1:
            result.duplicated += 1
            result.note(f"{count} times: {msg}")
    result.recovered_files = _recovered_files(state_dir / "log" / "recovered")


def check_audit_files(
    state_dir: Path, sent: set[int], acked: list[int], result: CrashResult
) -> None:
    """Count audit_lost, audit_duplicated and audit_torn in the audit files of `state_dir`:
    `sent` and `acked` are the ports of the setup calls made and acknowledged."""

    def torn(detail: str) -> None:
        result.audit_torn += 1
        result.note(f"audit: {detail}")

    counts: Counter[int] = Counter()
    paths = sorted((state_dir / "audit" / "log").glob("messages-*.log"))
    if paths and paths[0].name != "messages-000001.log":  # dropped at the cap: losses follow
        result.note(f"audit: the oldest files were dropped, the first left is {paths[0].name}")
    for path in paths:
        for raw, parsed in _read_lines(path, torn):
            match = AUDITED.fullmatch(parsed.message)
            if match and int(match[1]) in sent:
                counts[int(match[1])] += 1
            elif TIMESTAMP.search(parsed.message) or AUDITED_SETTING in parsed.message:
                torn(f"interleaved or unknown line in {path.name}: {raw[:200]!r}")
    for port in acked:
        if counts[port] == 0:
            result.audit_lost += 1
            result.note(f"audit lost: setup of port {port}")
    for port, count in counts.items():
        if count > 1:
            result.audit_duplicated += 1
            result.note(f"audit: {count} times: setup of port {port}")
    result.audit_recovered_files = _recovered_files(state_dir / "audit" / "recovered")


async def run_crash_test(
    state_dir: Path,
    *,
    kills: int,
    writers: int = 16,
    seed: int | None = None,
    min_load: float = 0.05,
    max_load: float = 0.5,
    start_timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> CrashResult:
    """Kill a loaded server `kills` times; `state_dir` must not exist yet (or be empty)."""
    started = time.monotonic()
    rng = random.Random(seed)
    result = CrashResult()
    sent: set[str] = set()
    acked: list[str] = []
    ports = _Ports()
    audit_sent: set[int] = set()
    audit_acked: list[int] = []
    server = Server(state_dir, extra_args=list(SERVER_ARGS))
    server.add_users()
    boot = _start_and_check(server, None, result, start_timeout)
    try:
        if boot is None:
            return result
        enable = httpx.patch(
            server.url + BASE + "/persistent/enabled", json={"data": True}, auth=ADMIN, timeout=10
        )
        if enable.json() != SUCCESS:
            result.start_failures.append(f"cannot enable persistent logging: {enable.text}")
            return result
        for round_no in range(kills):
            load = _Load(server, round_no, writers, ports)
            stop = asyncio.Event()
            task = asyncio.create_task(load.run(stop))
            await asyncio.sleep(rng.uniform(min_load, max_load))
            server.kill()
            stop.set()
            result.kills += 1
            try:
                await asyncio.wait_for(task, 30)
            except TimeoutError:
                result.note(f"round {round_no}: writers did not stop after the kill")
            sent.update(load.sent)
            acked += load.acked
            result.refused += load.refused
            audit_sent.update(load.audit_sent)
            audit_acked += load.audit_acked
            result.audit_refused += load.audit_refused
            if progress and (result.kills % 20 == 0 or result.kills == kills):
                progress(
                    f"{result.kills}/{kills} kills, {len(acked)} acked, "
                    f"{len(audit_acked)} audit acked, "
                    f"{time.monotonic() - started:.0f} s"
                )
            boot = _start_and_check(server, boot, result, start_timeout)
            if boot is None:
                return result
        # The final clean stop: SIGTERM, the service writes its journal out and exits 0.
        assert server.proc is not None
        code = server.stop()
        if code != 0:
            result.start_failures.append(f"clean stop exited with {code}")
    finally:
        if server.proc is not None:
            with contextlib.suppress(Exception):
                server.kill()
        result.sent = len(sent)
        result.acked = len(acked)
        check_files(state_dir, sent, acked, result)
        result.audit_sent = len(audit_sent)
        result.audit_acked = len(audit_acked)
        check_audit_files(state_dir, audit_sent, audit_acked, result)
        result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default: a temporary dir, kept on failure"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    workdir = None
    state_dir = args.state_dir
    if state_dir is None:
        workdir = Path(tempfile.mkdtemp(prefix="vapixlog-crash-"))
        state_dir = workdir / "state"
    _stderr(f"crash test: {args.kills} kills, {args.writers} writers, seed {seed}, {state_dir}")
    result = asyncio.run(
        run_crash_test(
            state_dir, kills=args.kills, writers=args.writers, seed=seed, progress=_stderr
        )
    )
    _stderr(
        f"sent={result.sent} refused={result.refused} repairs={result.repairs} "
        f"recovered_files={result.recovered_files} audit_sent={result.audit_sent} "
        f"audit_refused={result.audit_refused} audit_repairs={result.audit_repairs} "
        f"audit_recovered_files={result.audit_recovered_files} seconds={result.seconds:.1f}"
    )
    for failure in result.start_failures:
        _stderr(f"START FAILED: {failure}")
    for problem in result.problems:
        _stderr(f"problem: {problem}")
    if result.acked == 0:
        _stderr("nothing was acknowledged: the test tested nothing")
    if result.audit_acked == 0:
        _stderr("no audited call was acknowledged: the audit log was not tested")
    if workdir is not None:
        if result.ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            _stderr(f"state kept in {state_dir} (server output in {workdir})")
    print(result.line(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
