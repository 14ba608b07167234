"""Hostile clients over raw sockets: slowloris, too many connections, malformed requests.

The server must answer every request with a status below 500 or close the connection, within
a few seconds, and keep serving everybody else.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import USERS, Server

REQUEST_TIMEOUT = 1.0
# How late a close or an answer may be on a busy two-core machine running other tests.
MARGIN = 4.0
API = "/config/rest/log/v1"
BASIC = b"Basic " + base64.b64encode(f"root:{USERS['root'][1]}".encode())
ROOT = ("root", USERS["root"][1])
T = TypeVar("T")


def _start(state_dir: Path, *args: str) -> Server:
    server = Server(state_dir, extra_args=list(args))
    server.add_users()
    server.start()
    return server


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A 1 MiB body limit lets 100 000-deep JSON reach the JSON parser.
    server = _start(
        tmp_path_factory.mktemp("hostile") / "state",
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--max-body",
        "1M",
    )
    yield server
    if server.proc:
        server.stop()


def assert_healthy(server: Server) -> None:
    assert server.proc is not None and server.proc.poll() is None, server.output()
    response = httpx.get(server.url + API, auth=ROOT, timeout=10)
    assert response.status_code == 200
    output = server.output()
    assert "Traceback" not in output and "Exception in ASGI" not in output, output[-3000:]


def status_of(port: int, data: bytes, *, wait: float = REQUEST_TIMEOUT + MARGIN) -> int | None:
    """Send `data` on a new connection: the final status the server answers, None if it closes.

    Fails when there is neither an answer nor a close within `wait` seconds.
    """
    deadline = time.monotonic() + wait
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        # Closed while we sent (e.g. after a 431): what it answered may still be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        while True:
            # Skip interim answers (100 Continue) to the final status line.
            while received.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in received:
                received = received.split(b"\r\n\r\n", 1)[1]
            if b"\r\n" in received and not received.startswith(b"HTTP/1.1 1"):
                return int(received.split(b" ", 2)[1])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no answer nor close in {wait} s to {data[:200]!r}")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except TimeoutError:
                continue
            if not chunk:
                assert not received, received  # a partial status line then a close
                return None
            received += chunk


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length (status line, headers and body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head = received.split(b"\r\n\r\n", 1)[0]
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(received) < len(head) + 4 + length:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return received


def request(
    method: bytes,
    path: bytes,
    body: bytes = b"",
    *,
    headers: list[bytes] | None = None,
    length: bytes | None = None,
) -> bytes:
    head = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Authorization: " + BASIC]
    if length is None:
        length = str(len(body)).encode()
    if length != b"":
        head.append(b"Content-Length: " + length)
    head += headers or []
    return b"\r\n".join(head) + b"\r\n\r\n" + body


# -- slowloris ------------------------------------------------------------------------------


@dataclass
class Trickler:
    """A client that sends `data` one byte every `interval` seconds until the server closes."""

    port: int
    data: bytes
    prefix: bytes = b""  # sent at once first
    interval: float = 0.3
    started: float = 0.0
    closed_after: float | None = None
    answer: bytes = b""
    error: str | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                self.started = time.monotonic()
                sock.sendall(self.prefix)
                self._trickle(sock)
        except Exception as exc:  # reported by the test
            self.error = repr(exc)

    def _trickle(self, sock: socket.socket) -> None:
        position = 0
        while time.monotonic() - self.started < 30:
            if position < len(self.data):
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(self.data[position : position + 1])  # a close: recv sees it
                position += 1
            sock.settimeout(self.interval)
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed_after = time.monotonic() - self.started
                return
            self.answer += chunk


def test_slow_headers_and_bodies_time_out_without_blocking_others(hostile_server: Server) -> None:
    port = hostile_server.port
    body = json.dumps({"data": {"msg": "slowloris-body"}}).encode()
    json_type = [b"Content-Type: application/json"]
    headers = request(b"POST", f"{API}/writeMessage".encode(), body, headers=json_type)
    headers = headers.split(b"\r\n\r\n")[0]
    slow = [Trickler(port, headers + b"\r\n\r\n") for _ in range(5)]  # slow headers
    slow += [Trickler(port, b"\r\n" * 100) for _ in range(2)]  # only blank lines
    slow += [Trickler(port, b"") for _ in range(2)]  # silent
    # Headers at once, then the body a byte at a time.
    slow_bodies = [Trickler(port, body, prefix=headers + b"\r\n\r\n") for _ in range(5)]
    for trickler in slow + slow_bodies:
        trickler.thread.start()

    # Meanwhile a normal client is answered promptly, again and again.
    latencies = []
    with httpx.Client(base_url=hostile_server.url, auth=ROOT, timeout=10) as client:
        end = time.monotonic() + REQUEST_TIMEOUT + 1.0
        while time.monotonic() < end:
            begin = time.monotonic()
            response = client.post(f"{API}/writeMessage", json={"data": {"msg": "normal"}})
            assert response.status_code == 200, (response.headers, response.text)
            latencies.append(time.monotonic() - begin)
            time.sleep(0.01)  # a client, not a flood (writeMessage is rate limited)
    assert len(latencies) >= 5 and max(latencies) < 2.0, latencies

    for trickler in slow + slow_bodies:
        trickler.thread.join(REQUEST_TIMEOUT + MARGIN + 5)
        assert trickler.error is None, trickler.error
        assert trickler.closed_after is not None, "still open"
        assert REQUEST_TIMEOUT * 0.9 < trickler.closed_after < REQUEST_TIMEOUT + MARGIN, (
            trickler.closed_after
        )
    for trickler in slow[:5]:  # part of the headers came: told why
        assert trickler.answer.startswith(b"HTTP/1.1 408 "), trickler.answer
        assert b"\r\nx-content-type-options: nosniff\r\n" in trickler.answer
    for trickler in slow[5:] + slow_bodies:  # nothing to answer, or the application owns it
        assert trickler.answer == b"", trickler.answer
    assert_healthy(hostile_server)
    assert (
        "slowloris" not in httpx.get(hostile_server.url + "/axis-cgi/systemlog.cgi", auth=ROOT).text
    )


def test_keep_alive_requests_each_get_the_full_timeout(hostile_server: Server) -> None:
    # Requests that each arrive in time pass, even when the connection lives much longer.
    with socket.create_connection(("127.0.0.1", hostile_server.port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n")
            time.sleep(REQUEST_TIMEOUT * 0.3)
            sock.sendall(b"Authorization: " + BASIC + b"\r\n\r\n")
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            time.sleep(REQUEST_TIMEOUT * 0.6)  # idle between requests: keep-alive, not this


KEEP_ALIVE = 5.0  # uvicorn's timeout_keep_alive, which the service keeps


def test_an_idle_connection_closes_after_the_keep_alive_timeout(hostile_server: Server) -> None:
    """Requests that keep coming hold a connection past the keep-alive timeout; once idle, it
    closes that long after its last answer (both deadlines share one timer per connection)."""
    with socket.create_connection(("127.0.0.1", hostile_server.port), timeout=15) as sock:
        for _ in range(3):
            sock.sendall(b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n")
            sock.sendall(b"Authorization: " + BASIC + b"\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            answered = time.monotonic()
            time.sleep(KEEP_ALIVE * 0.4)
        assert sock.recv(1) == b""  # closed by the server
        idle = time.monotonic() - answered
    assert KEEP_ALIVE - 0.3 <= idle <= KEEP_ALIVE + 1.5, idle


def test_header_size_is_bounded(hostile_server: Server) -> None:
    huge = [b"X-Filler: " + b"a" * 100_000]
    assert status_of(hostile_server.port, request(b"GET", API.encode(), headers=huge)) in (
        431,
        None,
    )
    many = [b"X-H%d: %s" % (i, b"v" * 100) for i in range(2000)]
    assert status_of(hostile_server.port, request(b"GET", API.encode(), headers=many)) in (
        431,
        None,
    )
    # Large but sane headers are fine.
    big = [b"X-Filler: " + b"a" * 20_000]
    assert status_of(hostile_server.port, request(b"GET", API.encode(), headers=big)) == 200
    assert_healthy(hostile_server)


def test_an_answer_is_never_overtaken_by_the_refusal_of_the_next_request(
    hostile_server: Server,
) -> None:
    """A HEAD answer (a head and no body) is sent before a 431 for the connection's next
    request, whose oversized headers arrive while the HEAD answer is being finished. What
    the answer writes is held until the event loop's next turn
    (`vapixlog.response_cycle.TurnWriter`); a 431 must not overtake it. The timing varies
    over many connections."""
    oversized = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70_000
    answers: dict[tuple[bytes, ...], int] = {}
    for trial in range(300):
        with socket.create_connection(("127.0.0.1", hostile_server.port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            until = time.perf_counter() + (trial % 30) * 0.00005
            while time.perf_counter() < until:
                pass
            with contextlib.suppress(OSError):  # refused half-way: fine
                sock.sendall(oversized)
            received = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    received += chunk
        lines = tuple(line[:12] for line in received.split(b"\r\n") if line[:7] == b"HTTP/1.")
        answers[lines] = answers.get(lines, 0) + 1
    # Nothing at all is possible: the close with the rest of the headers unread is a reset,
    # which may discard what the client had not read yet (as before the head was held).
    assert all(lines[:1] in ((), (b"HTTP/1.1 401",)) for lines in answers), answers
    assert answers.get((b"HTTP/1.1 401", b"HTTP/1.1 431"), 0) > 0, answers
    assert_healthy(hostile_server)


# -- connection limit -----------------------------------------------------------------------


def test_connection_count_is_bounded(tmp_path: Path) -> None:
    limit = 5
    server = _start(tmp_path / "state", "--max-connections", str(limit), "--request-timeout", "8")
    try:
        get = request(b"GET", API.encode())
        holders = [socket.create_connection(("127.0.0.1", server.port), timeout=10)]
        # One connection serving requests, the others idle: the limit is reached.
        holders[0].sendall(get)
        assert read_response(holders[0]).startswith(b"HTTP/1.1 200 ")
        holders += [
            socket.create_connection(("127.0.0.1", server.port), timeout=10)
            for _ in range(limit - 1)
        ]
        # Beyond the limit: 503 and a close, for every one of many more.
        excess = [
            socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)
        ]
        for sock in excess:
            sock.sendall(get)
        for sock in excess:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            sock.close()
        assert server.proc is not None and server.proc.poll() is None
        # Within the limit, the held connection is still served.
        holders[0].sendall(get)
        assert read_response(holders[0]).startswith(b"HTTP/1.1 200 ")
        for sock in holders:
            sock.close()
        # Once they are gone, service resumes for everybody.
        deadline = time.monotonic() + 10
        while True:
            with httpx.Client(auth=ROOT, timeout=10) as fresh:
                status = fresh.get(server.url + API).status_code
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200
        assert_healthy(server)
    finally:
        server.stop()


# -- malformed requests ---------------------------------------------------------------------

WRITE = f"{API}/writeMessage".encode()
DEEP = 100_000
BAD_BODIES = [
    b'{"data":' + b"[" * DEEP + b"]" * DEEP + b"}",
    b'{"data":' + b"[" * DEEP,
    b'{"data":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
    b'{"data": {"msg": "x", "severity": 1e400}}',
    b'{"data": {"msg": "x", "severity": -1e400}}',
    b'{"data": {"msg": "x", "severity": 1' + b"0" * 5000 + b"}}",
    b'{"data": {"msg": "x", "severity": NaN}}',
    b'{"data": {"msg": "x", "severity": Infinity}}',
    b'{"data": {"msg": "a", "msg": "b"}}',
    b'{"data": 1, "data": {"msg": "x"}}',
    b'{"data": {"msg": "\xff\xfe"}}',
    b'{"data": {"msg": "\xc0\xaf"}}',
    b'{"data": {"msg": "\\ud800"}}',
    b'{"data": {"msg": "\xed\xa0\x80"}}',
    b'{"data": {"msg": "x\\u0000y"}}',
    b'{"data": {"msg": "' + b"x" * 500_000 + b'"}}',
    b"\xef\xbb\xbf" + b'{"data": {"msg": "bom"}}',
    b"",
    b"null",
    b"\x00" * 100,
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
@pytest.mark.parametrize("method", [b"POST", b"PUT", b"PATCH"])
def test_bad_json_bodies(hostile_server: Server, method: bytes, body: bytes) -> None:
    for path in (WRITE, f"{API}/persistent/enabled".encode()):
        headers = [b"Content-Type: application/json"]
        status = status_of(hostile_server.port, request(method, path, body, headers=headers))
        assert status is not None and status < 500, (status, body[:100])


FRAMINGS = [
    # (Content-Length: None for the true one, b"" for none; extra headers; body)
    (b"-1", [], b"{}"),
    (b"99999999999999999999999", [], b"{}"),
    (b"abc", [], b"{}"),
    (b"1e3", [], b"{}"),
    (b"0x10", [], b"{}"),
    (b"", [b"Content-Length: 2", b"Content-Length: 3"], b"{}"),
    (b"", [b"Transfer-Encoding: chunked"], b"zz\r\n{}\r\n0\r\n\r\n"),
    (b"", [b"Transfer-Encoding: chunked"], b"ffffffffffffffffff\r\n{}\r\n"),
    (b"", [b"Transfer-Encoding: chunked"], b"2\r\n{}XX0\r\n\r\n"),
    (b"", [b"Transfer-Encoding: chunked"], b"2;ext=\xff\r\n{}\r\n0\r\n\r\n"),
    (b"", [b"Transfer-Encoding: chunked"], b"2\r\n{}\r\n"),  # never ends: timeout
    (b"2", [b"Transfer-Encoding: chunked"], b"2\r\n{}\r\n0\r\n\r\n"),
    (b"", [b"Transfer-Encoding: gzip, chunked"], b"2\r\n{}\r\n0\r\n\r\n"),
    (b"", [b"Transfer-Encoding: identity"], b"{}"),
    (b"100", [], b"{}"),  # shorter than declared: timeout
    (None, [b"Expect: 100-continue"], b'{"data": {"msg": "continue"}}'),
    (None, [b"Content-Type: application/json; charset=\xff"], b'{"data": {"msg": "x"}}'),
    (None, [b"Content-Type: \xff\xfe/\x80"], b'{"data": {"msg": "x"}}'),
    (None, [b"Authorization: Basic \xff\xfe"], b"{}"),
    (None, [b'Authorization: Digest username="\xff", uri="/\xfe"'], b"{}"),
    (None, [b"X-Bin: \x01\x02\x7f"], b"{}"),
    (None, [b"Bad Header Name: x"], b"{}"),
    (None, [b"NoColon"], b"{}"),
    (None, [b" folded: header"], b"{}"),
]


@pytest.mark.parametrize(("length", "headers", "body"), FRAMINGS, ids=range(len(FRAMINGS)))
def test_bad_framing(
    hostile_server: Server, length: bytes | None, headers: list[bytes], body: bytes
) -> None:
    data = request(b"POST", WRITE, body, headers=headers, length=length)
    status = status_of(hostile_server.port, data)
    assert status is None or status < 500, status


REQUEST_LINES = [
    b"GET",
    b"GET /",
    b"GET / HTTP/9.9",
    b"GET / HTTP/1.1 extra",
    b"GET  " + API.encode() + b"  HTTP/1.1",
    b"G\x00T / HTTP/1.1",
    b"\xff\xfe / HTTP/1.1",
    b"BREW /config/rest/log/v1 HTTP/1.1",
    b"GET /config/rest/log/v1/\xff\xfe HTTP/1.1",
    b"GET /config/rest/log/v1/%ff%fe HTTP/1.1",
    b"GET /config/rest/log/v1/%00 HTTP/1.1",
    b"GET /config/rest/log/v1/%zz HTTP/1.1",
    b"GET /config/rest/log/v1?%ff=%fe&strict=%ff HTTP/1.1",
    b"GET /config/rest/log/v1/" + b"a" * 60_000 + b" HTTP/1.1",
    b"GET /axis-cgi/systemlog.cgi/../../etc/passwd HTTP/1.1",
    b"GET //config//rest//log HTTP/1.1",
    b"GET http://example.com/config/rest/log/v1 HTTP/1.1",
    b"GET * HTTP/1.1",
    b"CONNECT 127.0.0.1:1 HTTP/1.1",
    b"OPTIONS * HTTP/1.1",
    b"PRI * HTTP/2.0",
    b"GET /config/rest/log/v1 HTTP/1.0",
]


@pytest.mark.parametrize("line", REQUEST_LINES, ids=range(len(REQUEST_LINES)))
def test_bad_request_lines(hostile_server: Server, line: bytes) -> None:
    data = line + b"\r\nHost: x\r\nAuthorization: " + BASIC + b"\r\n\r\n"
    status = status_of(hostile_server.port, data)
    assert status is None or status < 500, status


def test_upgrade_requests(hostile_server: Server) -> None:
    for upgrade in (b"websocket", b"h2c", b"\xff"):
        headers = [b"Connection: Upgrade", b"Upgrade: " + upgrade, b"Sec-WebSocket-Version: 13"]
        headers.append(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
        status = status_of(hostile_server.port, request(b"GET", API.encode(), headers=headers))
        assert status is None or status < 500, status
    assert_healthy(hostile_server)


# -- fuzzing --------------------------------------------------------------------------------

PATHS = [
    WRITE,
    API.encode(),
    f"{API}/persistent/enabled".encode(),
    f"{API}/persistent/clearLog".encode(),
    b"/config/rest/log/v1alpha/persistent",
    b"/config/rest/log/v1/writeMessage?strict=false",
    b"/axis-cgi/systemlog.cgi",
    b"/config/rest/",
    b"/",
]


def mostly(usual: st.SearchStrategy[T], rare: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`usual` five times out of six: most requests get far enough to reach the application."""
    return st.integers(0, 5).flatmap(lambda i: rare if i == 0 else usual)


methods = mostly(
    st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS"]),
    st.binary(min_size=1, max_size=8),
)
paths = mostly(
    st.sampled_from(PATHS),
    st.builds(lambda base, tail: base + tail, st.sampled_from(PATHS), st.binary(max_size=20)),
)
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
).map(lambda value: json.dumps({"data": value}).encode())
bodies = (
    json_bodies
    | st.sampled_from(BAD_BODIES)
    | st.binary(max_size=200)
    | st.builds(
        lambda msg, severity: b'{"data": {"msg": "%s", "severity": %s}}' % (msg, severity),
        st.binary(max_size=40),
        st.sampled_from([b"1", b"7", b"8", b"-1", b"1e400", b"NaN", b"6.0", b'"6"', b"null"]),
    )
)
lengths = mostly(
    st.none(),  # the true length
    st.sampled_from([b"", b"-1", b"abc", b"99999999999999999999", b"0", b"1", b" 5", b"1,1"]),
)
extra_headers = st.lists(
    mostly(
        st.sampled_from(
            [
                b"Content-Type: application/json",
                b"Content-Type: application/json; charset=utf-8",
                b"Content-Type: text/plain",
                b"Expect: 100-continue",
                b"Connection: close",
                b"Accept: */*",
            ]
        ),
        st.sampled_from(
            [
                b"Content-Type: \xff",
                b"Transfer-Encoding: chunked",
                b"Connection: keep-alive, Upgrade",
                b"Authorization: Basic \xff",
                b'Authorization: Digest nonce="x", response="y"',
                b"X-Big: " + b"b" * 100_000,
                b"Host: \xff",
                b"\xff: \xfe",
            ]
        )
        | st.builds(
            lambda name, value: name + b": " + value,
            st.binary(max_size=10),
            st.binary(max_size=40),
        ),
    ),
    max_size=3,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(method=methods, path=paths, body=bodies, length=lengths, headers=extra_headers)
def test_fuzzed_raw_requests_never_fail_on_the_server(
    hostile_server: Server,
    method: bytes,
    path: bytes,
    body: bytes,
    length: bytes | None,
    headers: list[bytes],
) -> None:
    data = request(method, path, body, headers=headers, length=length)
    status = status_of(hostile_server.port, data)
    assert status is None or status < 500, (status, data[:300])


def test_server_survived_the_fuzzing(hostile_server: Server) -> None:
    assert_healthy(hostile_server)
