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

A kill in the middle of a write may leave a partial last line; the next start cuts it off and
sets it aside in `<state>/log/recovered/` ("repaired persistent log ..."). That repair is
expected and counted (`repairs`), and torn lines are only counted in the final files.

Used by pytest (`run_crash_test`) and as a script (`make crash-test`):

    python tests/crashtest.py --kills 200 [--writers 16] [--seed S] [--state-dir DIR]

The last line printed (stdout) is `kills=N acked=N lost=N duplicated=N torn=N`; the exit
status is non-zero when lost, duplicated or torn is non-zero, a start failed, or nothing was
acknowledged at all. Progress and diagnostics go to stderr.
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
from vapixlog.syslog.line import parse_line

BASE = "/config/rest/log/v1"
SYSTEMLOG = "/axis-cgi/systemlog.cgi"
ADMIN = ("root", USERS["root"][1])
# Small files, so that kills also hit rotations; a cap that is never reached (a dropped
# oldest file would lose acknowledged messages legitimately).
SERVER_ARGS = ["--persistent-file-size", "256K", "--persistent-max-size", "1G"]
MESSAGE = re.compile(r"crash k\d+ w\d+ n\d+")
BOOT = re.compile(r"starting on \S+ \(serial \w+\), boot ([0-9a-f-]{36})")
REPAIRED = "repaired persistent log "
SUCCESS = {"status": "success"}


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
    start_failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # first few details, for diagnosis
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.duplicated == self.torn == 0
            and not self.start_failures
            and self.acked > 0
        )

    def line(self) -> str:
        return (
            f"kills={self.kills} acked={self.acked} lost={self.lost} "
            f"duplicated={self.duplicated} torn={self.torn}"
        )

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Load:
    """The writers of one round: they write until the server goes away."""

    def __init__(self, server: Server, round_no: int, writers: int) -> None:
        self.server = server
        self.round_no = round_no
        self.writers = writers
        self.sent: list[str] = []
        self.acked: list[str] = []
        self.refused = 0

    async def run(self, stop: asyncio.Event) -> None:
        auth = httpx.BasicAuth(*ADMIN)
        limits = httpx.Limits(max_connections=self.writers)
        async with httpx.AsyncClient(
            base_url=self.server.url, auth=auth, limits=limits, timeout=10
        ) as client:
            await asyncio.gather(*(self._writer(client, n, stop) for n in range(self.writers)))

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
    return boots[0]


def check_files(state_dir: Path, sent: set[str], acked: list[str], result: CrashResult) -> None:
    """Count lost, duplicated and torn in the persistent files of `state_dir`."""
    counts: Counter[str] = Counter()
    for path in sorted((state_dir / "log" / "persistent").glob("messages-*.log")):
        data = path.read_bytes()
        raws = data.split(b"\n")
        tail = raws.pop()  # b"" when the file ends in a newline, as it must
        if tail:
            result.torn += 1
            result.note(f"{path.name} does not end in a newline: {tail[-200:]!r}")
        for raw in raws:
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text = None
            parsed = parse_line(text) if text is not None else None
            if parsed is None:
                result.torn += 1
                result.note(f"unparsable line in {path.name}: {raw[:200]!r}")
            elif parsed.tag == "log-api":
                if MESSAGE.fullmatch(parsed.message) and parsed.message in sent:
                    counts[parsed.message] += 1
                else:
                    result.torn += 1
                    result.note(f"interleaved or unknown line in {path.name}: {raw[:200]!r}")
    for msg in acked:
        if counts[msg] == 0:
            result.lost += 1
            result.note(f"lost: {msg}")
    for msg, count in counts.items():
        if count > 1:
            result.duplicated += 1
            result.note(f"{count} times: {msg}")
    recovered = state_dir / "log" / "recovered"
    result.recovered_files = len(list(recovered.glob("*.torn"))) if recovered.exists() else 0


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
            load = _Load(server, round_no, writers)
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
            if progress and (result.kills % 20 == 0 or result.kills == kills):
                progress(
                    f"{result.kills}/{kills} kills, {len(acked)} acked, "
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
        f"recovered_files={result.recovered_files} seconds={result.seconds:.1f}"
    )
    for failure in result.start_failures:
        _stderr(f"START FAILED: {failure}")
    for problem in result.problems:
        _stderr(f"problem: {problem}")
    if result.acked == 0:
        _stderr("nothing was acknowledged: the test tested nothing")
    if workdir is not None:
        if result.ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            _stderr(f"state kept in {state_dir} (server output in {workdir})")
    print(result.line(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
