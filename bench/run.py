"""`make bench`: every benchmark of issue 6 in one go, one table, written to docs/benchmarks.md.

The server under test runs on core 0 and the load generator (wrk, curl, `cat`) on core 1
(`taskset`), so the two do not compete for a core. Every figure is compared with a floor
measured in the same run on the same machine, so that the ratios hold even where the
absolute numbers drift.

    .venv/bin/python bench/run.py [--duration 6] [--fleet 1000] [--only SCENARIO]

SCENARIO: requests, forwarding, fleet or insight.

The scenarios of their own modules: tar_all.py, fleet.py, forwarding.py, insight.py,
fixture_start.py (each imports this module as `run`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench-state"
DOC = ROOT / "docs" / "benchmarks.md"
PY = sys.executable
SERVER_CPU, CLIENT_CPU = "0", "1"
PASSWORD = "benchpass"  # noqa: S105  (a throwaway state dir)
BASIC = "Basic " + base64.b64encode(f"root:{PASSWORD}".encode()).decode()
API = "/config/rest/log/v1"
WRITE = f"{API}/writeMessage"
ENABLED = f"{API}/persistent/enabled"
MB = 1 << 20


# ----- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int) -> int:
    """The first of `count` free consecutive ports below the ephemeral range (32768 up)."""
    for base in range(20000, 32768 - count, 1000):
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} free consecutive ports")


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    auth: str = BASIC,
    host: str = "127.0.0.1",
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ok(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> float:
    """Seconds until `GET persistent/enabled` answers 200 (polled every 2 ms)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with contextlib.suppress(OSError):
            if request(port, "GET", ENABLED, host=host)[0] == 200:
                return time.perf_counter() - start
        time.sleep(0.002)
    raise RuntimeError(f"the server on port {port} did not answer within {timeout} s")


@dataclass
class Server:
    """A server process pinned to the server core."""

    argv: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self, env: dict[str, str] | None = None) -> Server:
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        log = (WORK / f"server-{self.port}.log").open("wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        return self

    def rss_kb(self, key: str = "VmRSS") -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {key} for {self.proc.pid}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def service(state: Path, *extra: str) -> Server:
    argv = [PY, "-m", "vapixlog.cli", "serve", "--port", "{port}", "--state-dir", str(state)]
    # Every scheme, so that Basic and Digest can both be measured (the default policy offers
    # one per port, as devices do); no brute-force block, which a load run must never meet.
    policy = ["--auth-policy", "any", "--brute-force-protection", "off"]
    return Server([*argv, *policy, "--rate-limit", "off", "--log-level", "warning", *extra])


def service_env() -> dict[str, str]:
    return {"VAPIXLOG_ADMIN_PASSWORD": PASSWORD}


@contextlib.contextmanager
def running(server: Server, env: dict[str, str] | None = None) -> Iterator[Server]:
    server.start(env)
    try:
        wait_ok(server.port)
        yield server
    finally:
        server.stop()


# ----- wrk ------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int  # connect, read, write and timeout errors
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(
    port: int,
    path: str,
    script: str,
    *,
    connections: int,
    seconds: float,
    auth: str | None = BASIC,
    script_args: tuple[str, ...] = (),
) -> Load:
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "--latency", "-t1", f"-c{connections}"]
    argv += [f"-d{seconds:g}s", "--timeout", "10s", "-s", f"bench/{script}"]
    if auth:
        argv += ["-H", f"Authorization: {auth}"]
    argv += [f"http://127.0.0.1:{port}{path}"]
    if script_args:
        argv += ["--", *script_args]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCHJSON "))
    data = json.loads(line.removeprefix("BENCHJSON "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        non_2xx=data["status"],
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
    )


# ----- Digest headers -------------------------------------------------------------------


def digest_headers(
    port: int, folder: Path, count: int, algorithm: str = "SHA-256", nonces: int = 256
) -> None:
    """`count` single-use Digest headers (`algorithm`: MD5 or SHA-256) for writeMessage in
    `folder/thread-0.txt`.

    Header i uses nonce i % nonces with nc = i // nonces + 1: each nonce's counts increase
    in the order wrk sends them, and the requests in flight on one nonce (connections /
    nonces, at most one at 256 connections) stay far inside the server's replay window of 64,
    even when a request stalls while thousands of others pass. The challenges carry no
    `opaque` (as a device's), so none is sent back.
    """
    folder.mkdir(parents=True, exist_ok=True)
    challenges = []
    for _ in range(nonces):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", WRITE, body=b"{}", headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        value = next(v for k, v in answer.getheaders() if k.lower() == "www-authenticate")
        conn.close()
        params = dict(
            part.strip().split("=", 1) for part in value.removeprefix("Digest ").split(",")
        )
        challenges.append({k: v.strip('"') for k, v in params.items()})
    realm = challenges[0]["realm"]
    hash_function = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def h(text: str) -> str:
        return hash_function(text.encode()).hexdigest()

    ha1 = h(f"root:{realm}:{PASSWORD}")
    ha2 = h(f"POST:{WRITE}")
    with (folder / "thread-0.txt").open("w") as out:
        for i in range(count):
            nonce = challenges[i % nonces]["nonce"]
            nc = f"{i // nonces + 1:08x}"
            cnonce = f"c{i % nonces:07x}"
            response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            out.write(
                f'Digest username="root", realm="{realm}", nonce="{nonce}", uri="{WRITE}", '
                f'algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}", '
                f'response="{response}"\n'
            )


# ----- fsync floor ------------------------------------------------------------------------


def fsync_floor(folder: Path, seconds: float) -> float:
    """Appends of one log line, each followed by one fdatasync, per second."""
    path = folder / "fsync-floor.log"
    line = b"2026-01-01T00:00:00.000+00:00 axis-bench [ INFO    ] log-api[1]: fsync floor\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o640)
    try:
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            os.write(fd, line)
            os.fdatasync(fd)
            count += 1
        return count / elapsed
    finally:
        os.close(fd)
        path.unlink()


# ----- the run --------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    value: str
    ratio: str = ""
    p99: str = ""
    goal: str = ""
    met: bool | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        mark = "" if row.met is None else ("  ok" if row.met else "  MISSED")
        print(f"  {row.name:<48} {row.value:>14} {row.ratio:>16} {row.p99:>10}{mark}", flush=True)


def load_row(name: str, load: Load, floor: Load | None = None) -> Row:
    ratio = f"{load.rate / floor.rate:.2f} x floor ({floor.rate:,.0f})" if floor else ""
    bad = f", {load.non_2xx} non-2xx" if load.non_2xx else ""
    bad += f", {load.errors} errors" if load.errors else ""
    return Row(name, f"{load.rate:,.0f} req/s{bad}", ratio, f"{load.p99_ms:.1f} ms")


# The floor: plain uvicorn on the bare ASGI app of bench/floor_app.py, as `uvicorn
# bench.floor_app:app --port N` starts it (its default config picks httptools and uvloop
# when installed, as here), with one change: no access log (uvicorn's default writes a line
# per request through `logging`; the service writes none, and the floor is the least a
# server must do per request). docs/benchmarks.md has the reasons and both figures.
PLAIN_FLOOR = [PY, "-m", "uvicorn", "bench.floor_app:app", "--port", "{port}", "--no-access-log"]
# References, measured once at the start and compared with no goal.
DEFAULT_UVICORN = [PY, "-m", "uvicorn", "bench.floor_app:app", "--port", "{port}"]
SERVICE_STACK_FLOOR = [PY, "bench/floor_app.py", "--port", "{port}"]


class Floor:
    """The floor server (plain uvicorn, see PLAIN_FLOOR), kept running: measured once per
    scenario, right before it.

    A scenario's ratio is taken against the floor measured seconds before it at the same
    connection count, so that load from other processes on the machine mostly cancels.
    """

    def __init__(self, res: Results, seconds: float) -> None:
        self.res = res
        self.seconds = seconds
        self.server = Server(PLAIN_FLOOR)
        self.first: dict[int, Load] = {}

    def __enter__(self) -> Floor:
        self.server.start()
        wait_ok(self.server.port)
        self.measure(32, seconds=1)  # warm-up
        for conns in (32, 256):
            self.first[conns] = load = self.measure(conns)
            name = f"floor: plain uvicorn (httptools, uvloop), bare ASGI app, POST, {conns} conn"
            self.res.add(load_row(name, load))
        self.references()
        return self

    def references(self) -> None:
        """The same app on uvicorn with its default access log (to a file), and on the
        service's own server stack (its request-timeout protocol and `Config`): the floor of
        earlier runs. Each as a ratio to the plain floor, measured right before it."""
        cases = [
            ("reference: uvicorn with its default access log (to a file)", DEFAULT_UVICORN, (32,)),
            ("reference: the service's server stack (old floor)", SERVICE_STACK_FLOOR, (32, 256)),
        ]
        for label, argv, conn_counts in cases:
            reference = Server(argv)
            with running(reference):
                wrk(reference.port, WRITE, "post.lua", connections=32, seconds=1)  # warm-up
                for conns in conn_counts:
                    paired = self.measure(conns)
                    load = wrk(
                        reference.port, WRITE, "post.lua", connections=conns, seconds=self.seconds
                    )
                    self.res.add(load_row(f"{label}, bare ASGI app, {conns} conn", load, paired))

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def measure(self, conns: int, seconds: float | None = None) -> Load:
        return wrk(
            self.server.port,
            WRITE,
            "post.lua",
            connections=conns,
            seconds=seconds or self.seconds,
        )


def bench_startup(res: Results, state: Path) -> None:
    times = []
    for _ in range(3):
        server = service(state).start(service_env())
        try:
            times.append(wait_ok(server.port))
        finally:
            server.stop()
    best = min(times)
    res.add(
        Row(
            "start-up to the first 200 (best of 3)",
            f"{best * 1000:.0f} ms",
            f"median {statistics.median(times) * 1000:.0f} ms",
            goal="< 1 s",
            met=best < 1.0,
        )
    )


def goal_row(name: str, load: Load, paired: Load, conns: int, min_ratio: float) -> Row:
    """A load row with issue 17's goals: at 32 connections `min_ratio` x the plain floor,
    at 256 a p99 of at most 50 ms; a row with non-2xx answers or errors misses either."""
    row = load_row(name, load, paired)
    clean = load.non_2xx == 0 and load.errors == 0
    if conns == 32:
        row.goal, row.met = f">= {min_ratio} x floor", load.rate >= min_ratio * paired.rate
    else:
        row.goal, row.met = "p99 <= 50 ms", load.p99_ms <= 50
    row.met = row.met and clean
    return row


def bench_service(
    res: Results,
    state: Path,
    floor: Floor,
    fsync_rate: float,
    seconds: float,
    *,
    million: bool = True,
) -> None:
    """The request rows; `million`: then the RSS after a million writes."""
    server = service(state)
    with running(server, service_env()):
        port = server.port
        writes = 0

        def write(conns: int, secs: float, script: str = "post.lua", **kw: object) -> Load:
            nonlocal writes
            load = wrk(port, WRITE, script, connections=conns, seconds=secs, **kw)  # type: ignore[arg-type]
            writes += load.requests
            return load

        write(32, 1)  # warm-up
        for conns in (32, 256):
            paired = floor.measure(conns)
            load = write(conns, seconds)
            name = f"writeMessage, Basic, persistent off, {conns} conn"
            res.add(goal_row(name, load, paired, conns, 0.6))

        status, _ = request(port, "PATCH", ENABLED, b'{"data": true}')
        assert status == 200, status
        for conns in (32, 256):
            paired = floor.measure(conns)
            load = write(conns, seconds)
            row = goal_row(
                f"writeMessage, Basic, persistent on, {conns} conn", load, paired, conns, 0.5
            )
            row.ratio += f", {load.rate / fsync_rate:.1f} x fsync"
            if conns == 32:
                row.goal += ", >= 3 x fsync"
                row.met = row.met and load.rate >= 3 * fsync_rate
            res.add(row)
        status, _ = request(port, "PATCH", ENABLED, b'{"data": false}')
        assert status == 200, status

        for algorithm in ("MD5", "SHA-256"):
            for conns in (32, 256):
                folder = WORK / "digest"
                shutil.rmtree(folder, ignore_errors=True)
                # Single-use headers: more than the floor's rate for the whole run.
                digest_headers(port, folder, int(50_000 * seconds), algorithm)
                paired = floor.measure(conns)
                load = write(conns, seconds, "digest.lua", auth=None, script_args=(str(folder),))
                name = f"writeMessage, Digest {algorithm}, persistent off, {conns} conn"
                res.add(goal_row(name, load, paired, conns, 0.5))
        shutil.rmtree(WORK / "digest", ignore_errors=True)

        for conns in (32, 256):
            paired = floor.measure(conns)
            load = wrk(port, ENABLED, "get.lua", connections=conns, seconds=seconds)
            name = f"GET persistent/enabled, Basic, {conns} conn"
            res.add(goal_row(name, load, paired, conns, 0.8))

        if not million:
            return
        # RSS after one million writes (persistent off), within a bounded time.
        target, deadline = 1_000_000, time.monotonic() + 180
        while writes < target and time.monotonic() < deadline:
            write(32, 15)
        rss = server.rss_kb() / 1024
        res.add(
            Row(
                f"server RSS after {writes:,} writes",
                f"{rss:.0f} MB",
                goal="< 150 MB",
                met=rss < 150 and writes >= target,
            )
        )


def bench_device_rss(res: Results, state: Path, count: int = 400) -> None:
    """The RSS of an idle emulated device: `vapixlog serve --devices N` (one port each) less
    `--devices 1`, over N - 1, each process measured once its last device answers and 2 s of
    quiet have passed."""
    rss = {}
    for devices in (1, count):
        first = free_port_block(devices)
        server = service(state / f"rss-{devices}", "--devices", str(devices))
        server.argv = [a.replace("{port}", str(first)) for a in server.argv]
        server.port = first + devices - 1  # wait for the last device to answer
        server.start(service_env())
        try:
            wait_ok(server.port, timeout=300)
            time.sleep(2.0)
            rss[devices] = server.rss_kb()
        finally:
            server.stop()
    per_device = (rss[count] - rss[1]) / (count - 1)
    res.add(
        Row(
            f"RSS of an idle emulated device (serve --devices {count} less --devices 1)",
            f"{per_device:.0f} KiB",
            f"{rss[count] / 1024:.0f} MiB with {count}, {rss[1] / 1024:.0f} MiB with 1",
            goal="<= 200 KiB",
            met=per_device <= 200,
        )
    )


# ----- report ---------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    versions = ", ".join(
        f"{name} {version(name)}"
        for name in ("uvicorn", "httptools", "uvloop", "starlette", "orjson")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}; "
        f"Python {platform.python_version()}, {versions}, wrk {wrk_version.split()[1]}"
    )


def table(res: Results) -> str:
    lines = [
        "| benchmark | result | ratio | p99 | goal | met |",
        "|---|---:|---|---:|---|---|",
    ]
    for row in res.rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.name} | {row.value} | {row.ratio} | {row.p99} | {row.goal} | {met} |")
    return "\n".join(lines)


def write_doc(text: str, marker: str) -> None:
    """Replace the text between `<!-- marker:start -->` and `<!-- marker:end -->`."""
    doc = DOC.read_text() if DOC.exists() else f"<!-- {marker}:start -->\n<!-- {marker}:end -->\n"
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    parser.add_argument("--no-doc", action="store_true", help="do not update the doc")
    parser.add_argument("--fleet", type=int, default=1000, help="devices to capture (0: skip)")
    parser.add_argument(
        "--only",
        choices=("forwarding", "fleet", "requests", "insight"),
        help="one scenario: forwarding (issue 14, its own section of the doc), fleet "
        "(issue 15: a capture of 10,000 devices, one loopback address each), or requests "
        "(issue 17: the floor, request and device rows only, as the doc's main table); "
        "insight (issue 18: logs index and search over 1000 archives, summarize 1000 and "
        "10,000 devices; its own section of the doc, also in the full run)",
    )
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    res = Results()
    began = time.monotonic()

    if args.only in (None, "requests"):
        with Floor(res, args.duration) as floor:
            fsync_rate = fsync_floor(WORK, 3.0)
            res.add(Row("fsync floor: 1-line append + fdatasync", f"{fsync_rate:,.0f} writes/s"))
            bench_startup(res, WORK / "service")
            from fixture_start import bench_fixture_start  # issue 15: the pytest plugin

            bench_fixture_start(res, WORK / "fixture")
            bench_device_rss(res, WORK / "rss")
            million = args.only is None
            bench_service(res, WORK / "service", floor, fsync_rate, args.duration, million=million)
    if args.only == "requests":
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        text = (
            f"Measured {when} UTC in {time.monotonic() - began:.0f} s with `make bench "
            f'BENCH_ARGS="--only requests --duration {args.duration:g}"` (the floor, request '
            "and device rows; the full `make bench` adds tar_all, the fleet capture and the "
            f"RSS after a million writes).\nMachine: {machine()}.\n\n{table(res)}"
        )
        print("\n" + text)
        if not args.no_doc:
            write_doc(text, "bench:table")
        shutil.rmtree(WORK, ignore_errors=True)
        return
    if args.only is None:
        from tar_all import bench_tar_all  # imports this module as `run`

        bench_tar_all(res, WORK / "tar")
    if args.only is None and args.fleet:
        from fleet import bench_fleet  # imports this module as `run`

        bench_fleet(res, WORK / "fleet", args.fleet, address_per_device=False)
    if args.only == "fleet":
        from fleet import bench_fleet

        fleet = Results()
        bench_fleet(fleet, WORK / "fleet", args.fleet or 10_000, address_per_device=True)
        text = (
            f"Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC with `make bench "
            f'BENCH_ARGS="--only fleet --fleet {args.fleet or 10_000}"`.\n'
            f"Machine: {machine()}.\n\n{table(fleet)}"
        )
        print("\n" + text)
        if not args.no_doc:
            write_doc(text, "bench:fleet")
        return
    if args.only in (None, "insight"):
        from insight import bench_insight  # imports this module as `run`

        insight = Results()
        bench_insight(insight, WORK / "insight")
        text = (
            f"Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC with `make bench` "
            f'(alone: `BENCH_ARGS="--only insight"`).\nMachine: {machine()}.\n\n{table(insight)}'
        )
        print("\n" + text)
        if not args.no_doc:
            write_doc(text, "bench:insight")
        if args.only == "insight":
            shutil.rmtree(WORK, ignore_errors=True)
            return
    from forwarding import bench_forwarding  # imports this module as `run`

    forwarding = Results()
    bench_forwarding(forwarding, WORK / "forwarding", args.duration)

    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    if args.only is None:
        text = (
            f"Measured {when} UTC in {time.monotonic() - began:.0f} s with `make bench` "
            f"(`.venv/bin/python bench/run.py --duration {args.duration:g}`).\n"
            f"Machine: {machine()}.\n\n{table(res)}"
        )
        print("\n" + text)
        if not args.no_doc:
            write_doc(text, "bench:table")
    text = (
        f'Measured {when} UTC with `make bench BENCH_ARGS="--only forwarding '
        f'--duration {args.duration:g}"` (`.venv/bin/python bench/run.py --only forwarding '
        f"--duration {args.duration:g}`).\nMachine: {machine()}.\n\n{table(forwarding)}"
    )
    print("\n" + text)
    if not args.no_doc:
        write_doc(text, "bench:forwarding")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
