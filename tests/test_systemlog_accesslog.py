"""`systemlog.cgi` (parameters, framing, both paths) and `accesslog.cgi` (the HTTP access
log: failed logins always, successes with the access log on, bounded, lost at reboot),
end to end against real server processes through httpx and curl."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from reboots import reboot_and_wait
from servers import USERS, Server
from vapixlog.syslog.line import parse_line

SYSTEMLOG = "/axis-cgi/systemlog.cgi"
SYSTEMLOGS = [SYSTEMLOG, "/axis-cgi/admin/systemlog.cgi"]
ACCESSLOGS = ["/axis-cgi/accesslog.cgi", "/axis-cgi/admin/accesslog.cgi"]
WRITE = "/config/rest/log/v1/writeMessage"
HOST = "cgi-host"
HEADER = "\n----- System log -----\n\n\n"
ACCESS_HEADER = "\n----- Access log -----\n\n\n"
ENTRIES = 40  # the bound of the access log on the server that has it on
HELPER = Path(__file__).with_name("accesslog_server.py")


class AccessLogServer(Server):
    """A server with `--access-log on` (through `tests/accesslog_server.py`)."""

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "VAPIXLOG_ADMIN_PASSWORD": USERS["root"][1]}
        self.log_path = self.state_dir.parent / f"server-{self.port}.log"
        command = [sys.executable, str(HELPER), "serve", "--port", str(self.port)]
        command += ["--state-dir", str(self.state_dir), *self.extra_args]
        out = self.log_path.open("a")
        self.proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, text=True, env=env
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.output()}")
            try:
                httpx.get(self.url + "/config/rest/log/v1", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.output()}")


def _start(server: Server) -> Server:
    server.add_users()
    server.start()
    return server


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default: access log off."""
    state = tmp_path_factory.mktemp("cgis") / "state"
    server = _start(Server(state, extra_args=["--hostname", HOST]))
    yield server
    if server.proc:
        server.stop()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The access log on, bounded at `ENTRIES`."""
    state = tmp_path_factory.mktemp("accesslog") / "state"
    server = _start(AccessLogServer(state, extra_args=["--access-log-entries", str(ENTRIES)]))
    yield server
    if server.proc:
        server.stop()


@pytest.fixture(scope="module")
def admin(device: Server) -> Iterator[httpx.Client]:
    with client_for(device) as client:
        yield client


def write(client: httpx.Client, msg: str, severity: int = 6) -> None:
    body = {"data": {"msg": msg, "severity": severity}}
    assert client.post(WRITE, json=body).json() == {"status": "success"}


def entries(text: str, header: str = HEADER) -> list[str]:
    """The entry lines of a framed answer; every one a well-formed log line."""
    assert text.startswith(header), text[:200]
    lines = text[len(header) :].splitlines()
    assert all(parse_line(line) for line in lines), lines
    return lines


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


# ----- systemlog.cgi ------------------------------------------------------------------------


@pytest.mark.parametrize("path", SYSTEMLOGS)
def test_systemlog_is_framed_as_the_device_frames_it(admin: httpx.Client, path: str) -> None:
    token = uuid.uuid4().hex
    write(admin, f"framed {token}")
    reply = admin.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    lines = entries(reply.text)
    assert f" {HOST} " in lines[0]
    assert lines[-1].endswith(f"framed {token}")


def test_appname_selects_one_tag_with_its_own_header(admin: httpx.Client) -> None:
    token = uuid.uuid4().hex
    write(admin, f"app line {token}")
    reply = admin.get(SYSTEMLOG, params={"appname": "log-api"})
    header = "\n----- Contents of SYSTEM_LOG for 'log-api' -----\n\n\n"
    lines = entries(reply.text, header)
    assert lines[-1].endswith(f"app line {token}")
    assert {parsed.tag for parsed in map(parse_line, lines) if parsed} == {"log-api"}
    none = admin.get(SYSTEMLOG, params={"appname": "no_such.app-1"})
    assert none.text == "\n----- Contents of SYSTEM_LOG for 'no_such.app-1' -----\n\n\n"


def test_text_search_txt_and_tail(admin: httpx.Client) -> None:
    token = uuid.uuid4().hex
    for n in range(5):
        write(admin, f"needle{n} {token} [x]")
    assert len(entries(admin.get(SYSTEMLOG, params={"text": token}).text)) == 5
    one = entries(admin.get(SYSTEMLOG, params={"text": f"needle3{token}"}).text)
    assert one == []  # a substring of the line, not of words
    found = entries(admin.get(SYSTEMLOG, params={"search_txt": f"needle3 {token} [x]"}).text)
    assert len(found) == 1 and found[0].endswith(f"needle3 {token} [x]")
    assert entries(admin.get(SYSTEMLOG, params={"text": token.upper()}).text) == []  # case
    last = entries(admin.get(SYSTEMLOG, params={"text": token, "tail": "2"}).text)
    assert [line[-len(token) - 12 :] for line in last] == [
        f"needle3 {token} [x]",
        f"needle4 {token} [x]",
    ]
    everything = entries(admin.get(SYSTEMLOG, params={"tail": "2147483647"}).text)
    assert len(entries(admin.get(SYSTEMLOG).text)) >= len(everything) > 5
    assert len(entries(admin.get(SYSTEMLOG, params={"tail": "1"}).text)) == 1
    assert admin.get(SYSTEMLOG, params={"format": "text", "tail": "1"}).status_code == 200


def test_search_txt_matches_escaped_text(admin: httpx.Client) -> None:
    token = uuid.uuid4().hex
    write(admin, f"tab\there {token}")
    found = entries(admin.get(SYSTEMLOG, params={"search_txt": f"tab\there {token}"}).text)
    assert len(found) == 1 and found[0].endswith(f"tab\\x09here {token}")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("nosuch=1", 'unsupported parameter "nosuch"'),
        ("tail=1&tail=2", 'parameter "tail" given more than once'),
        ("appname=", 'invalid appname ""'),
        ("appname=a%20b", 'invalid appname "a b"'),
        ("appname=" + "a" * 65, "invalid appname"),
        ("appname=%1b%5b31m", 'invalid appname "\\x1b[31m"'),
        ("text=", 'invalid text ""'),
        ("text=a-b", 'invalid text "a-b"'),
        ("text=" + "a" * 257, "invalid text"),
        ("search_txt=", "invalid search_txt"),
        ("search_txt=" + "a" * 257, "invalid search_txt"),
        ("tail=0", 'invalid tail "0"'),
        ("tail=-1", 'invalid tail "-1"'),
        ("tail=1.5", 'invalid tail "1.5"'),
        ("tail=abc", 'invalid tail "abc"'),
        ("tail=2147483648", 'invalid tail "2147483648"'),
        ("tail=99999999999999999999", 'invalid tail "99999999999999999999"'),
        ("format=html", 'unsupported format "html"'),
        ("format=%22%0a", 'unsupported format "\\x22\\x0a"'),
    ],
)
def test_bad_parameters_get_the_cgis_own_error(admin: httpx.Client, query: str, error: str) -> None:
    reply = admin.get(f"{SYSTEMLOG}?{query}")
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.text.startswith(f"Error: {error}") and reply.text.endswith(".\n")


@pytest.mark.parametrize("path", SYSTEMLOGS + ACCESSLOGS)
def test_only_get_and_only_admins(device: Server, path: str) -> None:
    with client_for(device) as root:
        for method in ("POST", "HEAD", "PUT", "DELETE"):
            reply = root.request(method, path)
            assert (reply.status_code, reply.headers.get("allow")) == (405, "GET"), method
    for user in ("viewer", "op"):
        with client_for(device, user, digest=True) as client:
            assert client.get(path).status_code == 403
    assert httpx.get(device.url + path, timeout=10).status_code == 401


@pytest.mark.parametrize("path", SYSTEMLOGS)
def test_curl_digest(device: Server, path: str) -> None:
    done = curl("--digest", "-u", f"root:{USERS['root'][1]}", f"{device.url}{path}?tail=3")
    assert done.returncode == 0, done.stderr
    assert len(entries(done.stdout)) == 3
    bad = curl("--digest", "-u", f"root:{USERS['root'][1]}", "-w", "%{http_code}",
               f"{device.url}{path}?tail=x")  # fmt: skip
    assert bad.stdout == 'Error: invalid tail "x": a whole number from 1 to 2147483647.\n400'


# ----- accesslog.cgi ------------------------------------------------------------------------


def failing_client(server: Server, address: str, auth: httpx.Auth) -> httpx.Client:
    """Failed logins from an address of their own (DECISIONS 3)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, auth=auth, transport=transport, timeout=10)


def test_off_failures_for_known_users_only_by_name(device: Server, admin: httpx.Client) -> None:
    before = entries(admin.get(ACCESSLOGS[0]).text, ACCESS_HEADER)
    assert not [line for line in before if " GET 200" in line]  # successes: off by default
    secret = f"mallory-{uuid.uuid4().hex}"
    with failing_client(device, "127.0.0.7", httpx.BasicAuth("root", "wrong")) as client:
        assert client.get(SYSTEMLOG).status_code == 401
    with failing_client(device, "127.0.0.7", httpx.DigestAuth(secret, "x")) as client:
        assert client.get("/axis-cgi/admin/systemlog.cgi").status_code == 401
    with failing_client(device, "127.0.0.7", httpx.BasicAuth("a\nb", "x")) as client:
        assert client.get("/x%1b").status_code == 401
    done = curl("--digest", "-u", "op:wrong", "--interface", "127.0.0.7", device.url + WRITE)
    assert done.returncode == 0, done.stderr
    for path in ACCESSLOGS:
        reply = admin.get(path, params={"search_txt": "127.0.0.7"})
        assert reply.status_code == 200
        parsed = [m for m in map(parse_line, entries(reply.text, ACCESS_HEADER)) if m]
        assert {m.tag for m in parsed} == {"httpd"}
        messages = [m.message for m in parsed]
        assert messages == [
            f"root from 127.0.0.7 failed to access {SYSTEMLOG}.Password mismatch",
            "<unknown user> from 127.0.0.7 failed to access "
            "/axis-cgi/admin/systemlog.cgi.Password mismatch",
            "<unknown user> from 127.0.0.7 failed to access /x\\x1b.Password mismatch",
            f"op from 127.0.0.7 failed to access {WRITE}.Password mismatch",
        ]
        assert secret not in reply.text
    report = admin.get("/axis-cgi/serverreport.cgi").text
    section = report.split("\n----- Access log -----\n\n", 1)[1].split("\n-----", 1)[0]
    assert f"root from 127.0.0.7 failed to access {SYSTEMLOG}.Password mismatch" in section
    assert secret not in section  # (the system log's audit entry still names it: not ours)


def test_on_successes_with_user_path_method_status(logged: Server) -> None:
    token = uuid.uuid4().hex
    with client_for(logged) as root, client_for(logged, "viewer", digest=True) as viewer:
        write(root, "hello")
        assert viewer.get(ACCESSLOGS[1]).status_code == 403
        assert httpx.post(logged.url + "/axis-cgi/systemready.cgi", json={}).status_code == 200
        assert root.get(f"/nothing-{token}").status_code == 404
        messages = [
            m.message
            for m in map(parse_line, entries(root.get(ACCESSLOGS[0]).text, ACCESS_HEADER))
            if m
        ]
        tail = entries(root.get(ACCESSLOGS[1], params={"tail": "1", "text": token}).text,
                       ACCESS_HEADER)  # fmt: skip
    assert messages[-4:] == [
        f"root from 127.0.0.1 {WRITE} POST 200",
        f"viewer from 127.0.0.1 {ACCESSLOGS[1]} GET 403",
        "<anonymous> from 127.0.0.1 /axis-cgi/systemready.cgi POST 200",
        f"root from 127.0.0.1 /nothing-{token} GET 404",
    ]
    assert len(tail) == 1 and tail[0].endswith(f"/nothing-{token} GET 404")
    assert all(" [ NOTICE  ] httpd[" in line for line in tail)


def test_access_log_is_bounded_under_load_and_lost_at_reboot(logged: Server) -> None:
    with client_for(logged) as root:
        for n in range(10 * ENTRIES):  # bounded loop: ten times the bound
            assert root.get(f"/load/{n}").status_code == 404
        long = root.get("/p" + "x" * 2000)
        assert long.status_code == 404
        lines = entries(root.get(ACCESSLOGS[0]).text, ACCESS_HEADER)
        assert len(lines) == ENTRIES
        assert lines[-2].endswith(f"/load/{10 * ENTRIES - 1} GET 404")
        assert lines[-1].endswith("/p" + "x" * 510 + "... GET 404")
    reboot_and_wait(logged)
    with client_for(logged) as root:
        after = entries(root.get(ACCESSLOGS[0]).text, ACCESS_HEADER)
    assert not [line for line in after if "/load/" in line]


def test_serve_access_log_on_records_successes(tmp_path: Path) -> None:
    """`vapixlog serve --access-log on`, the flag itself (the tests above start the server
    through a helper that sets a small bound)."""
    server = start_server(tmp_path / "state", "--access-log", "on")
    try:
        with client_for(server) as client:
            assert client.get("/config/rest/log/v1/persistent/enabled").status_code == 200
            log = client.get(ACCESSLOGS[0]).text
        assert "root from 127.0.0.1 /config/rest/log/v1/persistent/enabled GET 200" in log
    finally:
        server.stop()
