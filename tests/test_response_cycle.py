"""The server's HTTP layer (vapixlog.protocol + vapixlog.response_cycle) on a real socket:
what uvicorn's own cycle guarantees still holds with the leaner one."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from vapixlog.protocol import http_protocol
from vapixlog.response_cycle import HOLD_LIMIT, TurnWriter

SEEN: list[str] = []  # every HTTP request's path, as the app got it


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        SEEN.append(scope["path"])
    if scope["type"] == "websocket":  # accepted, then closed by the client
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await receive()
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/echo":  # the body as the app received it: its length and digest
        if scope["query_string"] == b"late":  # the pieces pile up before the first receive
            await asyncio.sleep(0.3)
        body, more = b"", True
        while more:
            message = await receive()
            body += message["body"]
            more = message["more_body"]
        answer = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        return
    if path == "/header":  # a header the query names: x-test: <query>
        value = scope["query_string"].replace(b"%0D%0A", b"\r\n").replace(b"%20", b" ")
        name = b"x test" if value == b"badname" else b"x-test"
        pairs: list[Any] = [(name, value), (b"content-length", b"2")]
        if value == b"as-a-list":  # ASGI allows any iterable pair, bytearrays too
            pairs = [[bytearray(name), bytearray(value)], [b"content-length", b"2"]]
        await send({"type": "http.response.start", "status": 200, "headers": pairs})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/asgi":  # whether an earlier request's change to scope["asgi"] shows
        shared = scope["asgi"].pop("touched", False)
        scope["asgi"]["touched"] = True
        answer = b"shared" if shared else b"fresh!"
        headers = [(b"content-length", b"6")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        return
    if path == "/boom":  # an application error before the answer
        raise RuntimeError("boom")
    if path == "/stream":  # no content-length: chunked, in two parts
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        return
    if path == "/short":  # promises more than it sends
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]}
        )
        await send({"type": "http.response.body", "body": b"four"})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    yield from serve()


def serve(**config_options: Any) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="critical",
        http=http_protocol(10.0),
        server_header=False,
        **config_options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    sock.close()


def exchange(port: int, *pieces: bytes, pause: float = 0.0, half_close: bool = False) -> bytes:
    """Send `pieces` (waiting `pause` between them; then shut the sending side if
    `half_close`), then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        for index, piece in enumerate(pieces):
            if index and pause:
                time.sleep(pause)
            conn.sendall(piece)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def request(path: str, body: bytes = b"", method: str = "POST") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_a_body_in_pieces_reaches_the_app_whole(port: int) -> None:
    body = bytes(range(256)) * 800  # 200 KiB: past the 64 KiB at which reading pauses
    for path in ("/echo", "/echo?late"):  # read as they come; piled up, then read
        head = request(path, body)[: -len(body)]
        pieces = [head, body[:10], body[10:20], body[20:70_000], body[70_000:]]
        answer = exchange(port, *pieces, pause=0.05)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
        assert answer.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode())
    one_piece = exchange(port, request("/echo", b"hello"))
    assert one_piece.endswith(f"5 {hashlib.sha256(b'hello').hexdigest()}".encode())


def test_response_headers_are_checked_even_after_a_valid_one(port: int) -> None:
    good = exchange(port, request("/header?fine", method="GET"))
    assert good.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nx-test: fine\r\n" in good
    assert exchange(port, request("/header?fine", method="GET")).startswith(b"HTTP/1.1 200 OK")
    listed = exchange(port, request("/header?as-a-list", method="GET"))
    assert listed.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nx-test: as-a-list\r\n" in listed
    # A value with CR LF (response splitting) and a name with a space: the app's error, and
    # the connection closes with nothing sent (uvicorn's behaviour: the response had begun).
    for query in ("fine%0D%0Ax-injected:%201", "badname"):
        assert exchange(port, request(f"/header?{query}", method="GET")) == b""


def test_streamed_answer_is_chunked_and_head_has_no_body(port: int) -> None:
    answer = exchange(port, request("/stream", method="GET"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head
    assert body == b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n"
    answer = exchange(port, request("/stream", method="HEAD"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b""
    assert b"transfer-encoding" not in head


def test_an_answer_shorter_than_its_length_closes_the_connection(port: int) -> None:
    answer = exchange(port, request("/short", method="GET"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 9" in head
    assert body == b"four"  # then closed: the client sees a truncated answer, never a hang


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    keep = [
        f"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b
        for b in (b"first", b"second")
    ]
    answer = exchange(port, keep[0] + keep[1] + request("/echo", b"third"))
    digests = [hashlib.sha256(b).hexdigest() for b in (b"first", b"second", b"third")]
    positions = [answer.find(d.encode()) for d in digests]
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert -1 not in positions and positions == sorted(positions)


def test_a_websocket_upgrade_is_handed_to_uvicorn(port: int) -> None:
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(handshake)
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 101 "), answer[:200]
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer  # RFC 6455's example accept key


def test_a_request_behind_a_431_never_reaches_the_app(port: int) -> None:
    huge = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(70))
    first = b"GET /too-large HTTP/1.1\r\nHost: t\r\n" + huge + b"\r\n"
    second = b"GET /behind-the-431 HTTP/1.1\r\nHost: t\r\n\r\n"
    answer = exchange(port, first + second)  # one packet: parsed in one go
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert answer.count(b"HTTP/1.1") == 1
    time.sleep(0.2)
    assert "/behind-the-431" not in SEEN and "/too-large" not in SEEN


def test_an_answer_reaches_a_client_that_half_closed(port: int) -> None:
    """A client may send a keep-alive request and shut its sending side at once: the
    transport closes on that end of input, and the answer made meanwhile (held for the
    turn) goes out first. Each try is a race between the two; all must be answered."""
    keep_alive = b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
    for _ in range(30):
        answer = exchange(port, keep_alive, half_close=True)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"two\r\n0\r\n\r\n")


def test_each_request_has_its_own_asgi_scope(port: int) -> None:
    keep = b"GET /asgi HTTP/1.1\r\nHost: t\r\n\r\n"
    answer = exchange(port, keep, keep, request("/asgi", method="GET"), pause=0.05)
    assert answer.count(b"fresh!") == 3 and b"shared" not in answer


def test_the_servers_own_answers_carry_nosniff(port: int) -> None:
    for raw, status in ((b"NOT HTTP AT ALL\r\n\r\n", b"400"), (request("/boom"), b"500")):
        answer = exchange(port, raw)
        head = answer.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 " + status), answer[:100]
        assert b"\r\nx-content-type-options: nosniff" in head
    # Over uvicorn's limit_concurrency (the service sets it from --max-connections).
    for full in serve(limit_concurrency=1):
        head = exchange(full, request("/echo", b"x")).partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 503 ") and b"\r\nx-content-type-options: nosniff" in head


# ----- TurnWriter: what responses write in one turn of the loop goes out after it ----------


class RecordingTransport(asyncio.Transport):
    """The socket end of a transport: the calls that reach it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", b"".join(list_of_data)))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 5000)}.get(name)

    def get_write_buffer_size(self) -> int:
        return 0  # what reaches it is sent at once

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_what_responses_write_in_a_turn_goes_out_after_it() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first, second = RecordingTransport(), RecordingTransport()
        a, b = TurnWriter(first, loop), TurnWriter(second, loop)
        a.write(b"head a,")
        b.write(b"head b,")
        a.write(bytearray(b"body a"))
        assert first.calls == [] and second.calls == []  # held while the turn goes on
        b.write(b"body b")
        await asyncio.sleep(0)  # the next turn
        assert first.calls == [("writelines", b"head a,body a")]
        assert second.calls == [("writelines", b"head b,body b")]
        a.write(b"later")  # a new turn holds again
        assert first.calls[1:] == []
        await asyncio.sleep(0)
        assert first.calls[1:] == [("writelines", b"later")]

    asyncio.run(scenario())


def test_a_connection_holds_a_bounded_amount_and_a_copy() -> None:
    async def scenario() -> None:
        transport = RecordingTransport()
        writer = TurnWriter(transport, asyncio.get_running_loop())
        body = bytearray(b"x" * (HOLD_LIMIT // 2))
        writer.write(body)
        body[:5] = b"later"  # the app may reuse its buffer once `send` returned
        assert transport.calls == []
        assert writer.get_write_buffer_size() == HOLD_LIMIT // 2  # held bytes are unsent
        writer.write(b"y" * (HOLD_LIMIT // 2 + 1))  # past the limit: out at once
        assert transport.calls == [
            ("writelines", b"x" * (HOLD_LIMIT // 2) + b"y" * (HOLD_LIMIT // 2 + 1))
        ]
        writer.close()
        assert transport.calls[1:] == [("close", b"")]

    asyncio.run(scenario())


@pytest.mark.parametrize("event", ["shutdown", "bad request", "keep-alive timeout"])
def test_what_is_held_goes_out_before_the_protocol_closes(event: str) -> None:
    """The protocol's own answers and closes never overtake (or drop) a held response."""

    async def scenario() -> list[tuple[str, bytes]]:
        config = uvicorn.Config(app, lifespan="off", http=http_protocol(10.0), timeout_keep_alive=0)
        config.load()
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=uvicorn.server.ServerState(), app_state={}
        )
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.sleep(0)  # the app answers; its answer is held until the next turn
        assert transport.calls == []
        if event == "shutdown":
            protocol.shutdown()
        elif event == "bad request":
            protocol.data_received(b"NOT HTTP\r\n\r\n")
        else:
            protocol._on_timer()  # the keep-alive deadline (0 s) has passed
        return transport.calls

    calls = asyncio.run(scenario())
    assert calls[0][0] == "writelines" and calls[0][1].endswith(b"two\r\n0\r\n\r\n")
    assert calls[-1] == ("close", b"")
