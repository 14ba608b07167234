"""A newcomer's first hour (issue 16): the state dir, set-up messages, one-line errors with
their fix, help texts, success messages, `syslog --follow` across a reboot, HEAD. Each test
runs the `vapixlog` command as a user does (a subprocess) and reads what it prints."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from servers import USERS, VAPIXLOG, Server, free_port
from test_tls import TlsServer
from vapixlog.cli import build_parser
from vapixlog.cli.capture import _error
from vapixlog.client import AsyncClient, DeviceOutcome, Outcome, RpcError, Stage

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = USERS["root"][1]


def vapixlog(
    *args: str,
    device: Server | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run `vapixlog ARGS` with no VAPIXLOG_* variables but those given (and the device's)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
    if device is not None:
        environ |= {"VAPIXLOG_DEVICE": device.url, "VAPIXLOG_PASSWORD": PASSWORD}
    result = subprocess.run(
        [*VAPIXLOG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ | env,
        cwd=cwd,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("first-hour") / "state", "--reboot-downtime", "0.3"
    )
    yield server
    if server.proc:
        server.stop()


def serve_until_started(state: Path, *args: str, port: int, **env: str) -> tuple[int, str]:
    """Start `vapixlog serve`, wait until it answers, stop it; its exit code and output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")} | env
    proc = subprocess.Popen(
        [*VAPIXLOG, "serve", "--port", str(port), "--state-dir", str(state), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/config/rest/log/v1", timeout=1)
                time.sleep(0.2)  # the other devices' start-up lines, if any
                break
            except httpx.TransportError:
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output, output
    return proc.returncode, output


# Items 1-3: one state dir for `make serve` and the CLI, and every command says which.


def test_make_serve_and_the_cli_agree_on_the_state_dir(tmp_path: Path) -> None:
    dry = subprocess.run(
        ["make", "-n", "serve"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "--state-dir .vapixlog-state" in dry
    assert "The vapixlog command is .venv/bin/vapixlog" in dry  # where the command is
    chosen = subprocess.run(
        ["make", "-n", "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "VAPIXLOG_STATE_DIR": "/tmp/elsewhere"},
    ).stdout
    assert "--state-dir /tmp/elsewhere" in chosen

    # The CLI, run where `make serve` ran, finds ./.vapixlog-state.
    (tmp_path / ".vapixlog-state").mkdir()
    listed = vapixlog("users", "list", cwd=tmp_path)
    local = tmp_path / ".vapixlog-state"
    assert listed.returncode == 0
    assert f"state dir {local} (found in the current directory)" in listed.stderr
    assert "no users yet" in listed.stderr
    added = vapixlog("users", "add", "alice", "--role", "viewer", "--password", "pw", cwd=tmp_path)
    assert added.returncode == 0 and "Added user 'alice' (viewer)" in added.stderr
    assert "alice" in (local / "users.json").read_text()
    changed = vapixlog(
        "users", "add", "alice", "--role", "operator", "--password", "x", cwd=tmp_path
    )
    assert "Changed user 'alice' (operator)" in changed.stderr
    quiet = vapixlog(
        "users", "add", "bob", "--role", "viewer", "--password", "p", "-q", cwd=tmp_path
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    removed = vapixlog("users", "remove", "bob", cwd=tmp_path)
    assert "Removed user 'bob'" in removed.stderr

    env_dir = tmp_path / "from-env"
    by_env = vapixlog("users", "list", cwd=tmp_path, VAPIXLOG_STATE_DIR=str(env_dir))
    assert f"state dir {env_dir} ($VAPIXLOG_STATE_DIR)" in by_env.stderr
    flag = vapixlog("users", "list", "--state-dir", str(env_dir), cwd=tmp_path)
    assert f"state dir {env_dir} (--state-dir)" in flag.stderr
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    platform = vapixlog("users", "list", cwd=elsewhere, HOME=str(tmp_path / "home"))
    assert "(the default)" in platform.stderr


def test_first_start_hint_and_an_ignored_admin_password(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    code, first = serve_until_started(state, port=port)
    assert code == 0, first
    assert f"state dir {state} (--state-dir)" in first
    assert f"vapixlog users add root --role admin --state-dir {state}" in first
    assert "is ignored" not in first

    code, again = serve_until_started(state, port=port, VAPIXLOG_ADMIN_PASSWORD="secret")
    assert code == 0, again
    assert "VAPIXLOG_ADMIN_PASSWORD is ignored" in again and "root keeps its password" in again
    assert f"--state-dir {state}" in again and "Created user" not in again


# Item 4: no tracebacks; a port in use found before anything is created.


def test_bad_ports_and_state_dirs_are_one_line_errors(tmp_path: Path) -> None:
    invalid = vapixlog("persistent", "status", "--device", "http://127.0.0.1:99999")
    assert invalid.returncode == 2
    assert invalid.stderr == (
        "vapixlog: invalid device URL 'http://127.0.0.1:99999': the port must be a number "
        "from 1 to 65535\n"
    )
    for command in (["serve", "--port", str(free_port())], ["users", "list"]):
        result = vapixlog(*command, "--state-dir", "/proc/nope")
        assert result.returncode == 2, result.stderr
        assert "vapixlog: cannot use state dir /proc/nope: No such file or directory" in (
            result.stderr
        )

    state = tmp_path / "state"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = vapixlog("serve", "--port", str(port), "--state-dir", str(state))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 already in use" in result.stderr
    assert "Created user" not in result.stdout and not state.exists()


# Item 5: a 401 says whether a password was given, and names the URL and the user.


def test_401_without_a_password(device: Server) -> None:
    result = vapixlog("persistent", "status", "--device", device.url, "--user", "op")
    assert result.returncode == 1
    assert result.stderr == (
        f"vapixlog: {device.url}: authentication failed for user 'op': no password given "
        "(use --password or set VAPIXLOG_PASSWORD) (HTTP 401, code 3)\n"
    )
    wrong = vapixlog("persistent", "status", "--device", device.url, "--password", "nope")
    assert "user 'root': wrong user name or password (HTTP 401" in wrong.stderr


def test_401_in_a_capture_without_a_password(device: Server, tmp_path: Path) -> None:
    result = vapixlog("capture", "-o", str(tmp_path), "--device", device.url, "--json")
    assert result.returncode == 1
    assert "authentication failed for user 'root': no password given" in result.stderr


# Item 6: a fleet outcome names the stage of a dead device.


def test_fleet_outcome_names_the_failed_stage() -> None:
    dead = DeviceOutcome(url="http://10.0.0.7", ok=False, seconds=1.0, error="refused")
    assert dead.failed_at == "connect"
    late = DeviceOutcome(url="http://x", ok=False, seconds=1.0, stage=Stage.WAIT, error="e")
    assert late.failed_at == "wait"
    done = DeviceOutcome(url="http://x", ok=True, seconds=1.0, outcome=Outcome.CAPTURED)
    assert done.failed_at is None
    readme = (ROOT / "README.md").read_text()
    assert "failed at {o.stage}" not in readme and "o.failed_at" in readme


# Items 7 and 8: a device listed twice, wording without repetition, normalised URLs.


def test_capture_of_a_device_listed_twice_runs_once(device: Server, tmp_path: Path) -> None:
    host_port = device.url.removeprefix("http://")
    result = vapixlog(
        "capture", "-o", str(tmp_path / "out"), "--json",
        "--device", device.url + "/", "--device", host_port,
        device=device,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    import json

    document = json.loads(result.stdout)
    assert [entry["device"] for entry in document["devices"]] == [device.url]
    assert len(list((tmp_path / "out").glob("*.tar"))) == 1


def test_failure_wording_says_each_thing_once() -> None:
    url = "http://10.0.0.5"
    refused = DeviceOutcome(url=url, ok=False, seconds=1, error=f"{url}: connection refused")
    assert _error(refused) == "connection refused"
    reboot = DeviceOutcome(
        url=url,
        ok=False,
        seconds=1,
        stage=Stage.REBOOT,
        error="reboot: busy (HTTP 200, code 423); failed at stage reboot; persistent logging "
        "turned off again",
    )
    assert _error(reboot) == "busy (HTTP 200, code 423); persistent logging turned off again"


class _WebServer(BaseHTTPRequestHandler):
    """Any web server that is not a device: an HTML 404 for everything."""

    def _answer(self) -> None:
        body = b"<!DOCTYPE HTML>\n<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_a_web_server_that_is_no_device_is_described(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = vapixlog("report", "-o", str(tmp_path / "r.tar"), "--device", url)
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "<!DOCTYPE" not in result.stderr
    assert result.stderr == (
        f"vapixlog: {url}/axis-cgi/serverreport.cgi?mode=tar_all answered with a web page, "
        "not a VAPIX answer (not an Axis device, or a path this device does not have) "
        "(HTTP 404)\n"
    )


def test_a_web_server_is_no_device_without_a_log_api(tmp_path: Path) -> None:
    """A 404 everywhere is not AXIS OS 10.x (which answers systemready.cgi): the client must
    not report `no-log-api`, and `capture` must not count it as a device that needs none."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        status = vapixlog("persistent", "status", "--device", url, "--password", "x")
        captured = vapixlog("capture", "--device", url, "-o", str(tmp_path / "out"), "--json")
    finally:
        server.shutdown()
    assert status.returncode == 1
    assert "not an Axis device" in status.stderr and "no Log API" in status.stderr
    assert captured.returncode == 1
    assert '"no-log-api"' not in captured.stdout


# Item 10: TLS errors say what fixes them.


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    server = TlsServer(tmp_path_factory.mktemp("tls") / "state", extra_args=["--tls-self-signed"])
    server.add_users()
    server.start()
    yield server
    if server.proc:
        server.stop()


def test_tls_errors_name_the_fix(https: TlsServer, device: Server) -> None:
    untrusted = vapixlog("persistent", "status", "--device", https.url, "--password", PASSWORD)
    assert untrusted.returncode == 1
    assert "certificate not trusted" in untrusted.stderr
    for option in ("--ca-file", "--pin-sha256", "--insecure"):
        assert option in untrusted.stderr
    plain = https.url.replace("https://", "http://")
    to_https = vapixlog("persistent", "status", "--device", plain, "--password", PASSWORD)
    assert "if this port serves HTTPS, use an https:// URL" in to_https.stderr
    to_http = device.url.replace("http://", "https://")
    to_plain = vapixlog("persistent", "status", "--device", to_http, "--password", PASSWORD)
    assert "this port answers plain HTTP, not HTTPS" in to_plain.stderr
    assert "use an http:// URL" in to_plain.stderr


# Item 11: a line break in msg.


def test_a_line_break_in_msg_is_refused_as_such(device: Server) -> None:
    result = vapixlog("write", "two\nlines", device=device)
    assert result.returncode == 1
    assert "data.msg: must be one line (no line breaks) to match the pattern ^.*$" in (
        result.stderr
    )


# Item 12: help texts.


def test_help_texts() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    assert isinstance(commands, dict)
    for action in commands["serve"]._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        if action.default not in (None, False, []):
            assert "default" in action.help, action.dest
    serve_help = " ".join(vapixlog("serve", "--help").stdout.split())
    for shown in ("(default 8080)", "(default 4M)", "(default 64M)", "(default 8M)", "(default 2)"):
        assert shown in serve_help
    capture_help = " ".join(vapixlog("capture", "--help").stdout.split())
    assert "repeat it for more devices" in capture_help
    assert "folder for the captures" in capture_help
    assert "default tar_all" in vapixlog("report", "--help").stdout
    version = vapixlog("--version")
    assert version.returncode == 0 and version.stdout.startswith("vapixlog ")


# Item 13: success messages, and --quiet.


def test_success_is_said_unless_quiet(device: Server) -> None:
    written = vapixlog("write", "hello", device=device)
    assert written.stderr == (f"Written to the system log with severity info ({device.url})\n")
    assert vapixlog("write", "hello", "-q", device=device).stderr == ""
    on = vapixlog("persistent", "on", device=device)
    assert on.stderr == f"Persistent logging turned on ({device.url})\n"
    off = vapixlog("persistent", "off", device=device)
    assert off.stderr == f"Persistent logging turned off ({device.url})\n"
    cleared = vapixlog("clear", device=device)
    assert cleared.stderr == f"Persistent log cleared ({device.url})\n"
    rebooted = vapixlog("reboot", device=device)
    assert rebooted.returncode == 0 and "Reboot requested" in rebooted.stderr
    _wait_until_up(device)


def _wait_until_up(device: Server) -> None:
    deadline = time.monotonic() + 20
    auth = httpx.DigestAuth("root", PASSWORD)
    while time.monotonic() < deadline:
        try:
            if httpx.get(device.url + "/config/rest/log/v1", auth=auth).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the device did not come back")


# Item 14: a fleet starts with one summary line.


def test_a_fleet_starts_quietly(tmp_path: Path) -> None:
    port = free_port()
    while any(_taken(port + i) for i in range(3)):
        port = free_port()
    code, output = serve_until_started(tmp_path / "state", "--devices", "3", port=port)
    assert code == 0, output
    assert f"3 devices on ports {port}..{port + 2}" in output
    assert "Uvicorn running" not in output and "Started server process" not in output


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# Item 15: syslog --follow across a reboot.


def test_follow_across_a_reboot_shows_the_shutdown_and_a_new_boot(device: Server) -> None:
    _wait_until_up(device)
    assert vapixlog("persistent", "on", "-q", device=device).returncode == 0
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
    environ |= {"VAPIXLOG_DEVICE": device.url, "VAPIXLOG_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [*VAPIXLOG, "syslog", "--follow", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen: list[str] = []
    try:
        seen.append(proc.stdout.readline())  # the first fetch has started
        time.sleep(0.5)
        deadline = time.monotonic() + 30
        for boots in (1, 2):
            if boots == 2:  # persistent logging off: the last lines are lost, and said so
                assert vapixlog("persistent", "off", "-q", device=device).returncode == 0
            # Written and rebooted at once: the follower may not see the line before.
            assert vapixlog("write", f"last words {boots}", "-q", device=device).returncode == 0
            assert vapixlog("reboot", "-q", device=device).returncode == 0
            while sum(line.startswith("----- new boot") for line in seen) < boots:
                assert time.monotonic() < deadline, seen
                seen.append(proc.stdout.readline())
            while not any("starting on" in line for line in seen[-1:]):
                assert time.monotonic() < deadline, seen
                seen.append(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        vapixlog("persistent", "off", "-q", device=device)
    marker = next(i for i, line in enumerate(seen) if line.startswith("----- new boot"))
    before = "".join(seen[:marker])
    assert "last words 1" in before and "shutting down" in before
    assert sum("last words 1" in line for line in seen) == 1
    assert "the device restarted" in seen[marker]
    assert not any(line.startswith("----- System log") for line in seen[marker:])
    assert "are lost (persistent logging is off" in proc.stderr.read()


# Item 16: HEAD; output paths; a missing devices file; sizes; the 417 message.


def test_head_works_where_get_does(device: Server) -> None:
    auth = httpx.DigestAuth("root", PASSWORD)
    for path in ("/config/rest/log/v1", "/config/rest/log/v1/persistent/enabled", "/logs"):
        got = httpx.get(device.url + path, auth=auth)
        head = httpx.head(device.url + path, auth=auth)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-length"] == str(len(got.content))
    cgi = httpx.head(device.url + "/axis-cgi/systemlog.cgi", auth=auth)
    assert cgi.status_code == 405  # not on the CGIs (DECISIONS 16)


def test_output_paths_and_files_are_checked(device: Server, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    capture = vapixlog("capture", "--output", str(afile), device=device)
    assert capture.returncode == 2
    assert f"--output {afile} is a file; give a folder" in capture.stderr
    report = vapixlog("report", "-o", "/nonexistent/dir/x.tar", device=device)
    assert report.returncode == 2 and ".part" not in report.stderr
    assert "/nonexistent/dir/x.tar" in report.stderr
    no_file = vapixlog("capture", "-o", str(tmp_path), "--devices-file", "/nonexistent")
    assert no_file.returncode == 2
    assert no_file.stderr == ("vapixlog: --devices-file /nonexistent: No such file or directory\n")
    sizes = vapixlog(
        "serve", "--port", str(free_port()), "--state-dir", str(tmp_path / "s"),
        "--persistent-max-size", "1K",
    )  # fmt: skip
    assert sizes.returncode == 2
    assert "--persistent-max-size (1K) must be at least --persistent-file-size (8M)" in (
        sizes.stderr
    )


def test_unsupported_api_versions_are_listed_in_words() -> None:
    async def main() -> str:
        client = AsyncClient("http://127.0.0.1:9")

        async def rpc(*args: object, **kwargs: object) -> dict[str, object]:
            return {"apiVersions": ["2.0", "3.1"]}

        client._rpc = rpc  # type: ignore[method-assign]
        try:
            await client._rpc_version("/axis-cgi/firmwaremanagement.cgi", lambda *a: None)  # type: ignore[arg-type,return-value]
        except RpcError as exc:
            return str(exc)
        finally:
            await client.aclose()
        return ""

    message = asyncio.run(main())
    assert "offers API versions 2.0, 3.1; this client speaks 1.x only" in message
    assert "[" not in message
