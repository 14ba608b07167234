"""The HTTP/1.1 protocol of the server: uvicorn's httptools protocol plus a request timeout.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but has no limit on how
long a request may take to *arrive*: a client that trickles its headers or its body one byte
at a time (slowloris) holds its connection, and a task, for ever. `RequestTimeoutProtocol`
adds one timer per request: the whole request, its headers and its body, must arrive within
`request_timeout` seconds, counted from the first byte of the request (for the first request
of a connection: from the connection's opening, so a silent connection is closed too). The
timer stops when the request is complete; the time the application takes to answer does not
count. The same timer closes a connection idle for uvicorn's `timeout_keep_alive` after its
last answer, which uvicorn does with a timer made and cancelled per request. On expiry the
connection is closed; when only part of the headers came, a `408 Request Timeout` goes out
first (as Apache's mod_reqtimeout does), unless an earlier response of the connection is
still under way. Over TLS the timer starts once the handshake is done; the handshake itself
has the event loop's own limit (60 s).

httptools itself has no limit on the size of the request line and headers (uvicorn's h11
protocol has one): the protocol answers `431` and closes when they pass `MAX_HEADER_BYTES`.

Connection limits (`vapixlog.connections`, one table per server): a connection beyond its
address's cap is answered `503` at once, before its request, and closed as soon as the
request comes (so that the answer is not lost to a reset), or after `REFUSED_LINGER` seconds;
it is no longer counted against `--max-connections` meanwhile. Near the total limit, a new
connection closes the oldest connections waiting for a request (silently, like uvicorn's
keep-alive timeout).

The parser's callbacks are uvicorn's, each rewritten in one frame with the additions above
(no `super()` chain a request), and every request gets a `vapixlog.response_cycle.
ResponseCycle`: the same behaviour for about 6 us less server CPU a request
(docs/benchmarks.md). What the responses write during one turn of the event loop goes out
at the start of the next (`vapixlog.response_cycle.TurnWriter`); the protocol writes it out
before its own answers and closes. The rest (websocket upgrades, flow control, the steps of a
shutdown) is uvicorn's own.

It is the class uvicorn's `Config(http=...)` takes: no uvicorn global is touched.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from vapixlog.connections import ConnectionTable
from vapixlog.edge.answers import send_answer
from vapixlog.edge.headers import NOSNIFF
from vapixlog.response_cycle import PLAIN_TEXT, ResponseCycle, TurnWriter

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT = 10.0
MAX_HEADER_BYTES = 64 << 10  # request line and headers of one request
REFUSED_LINGER = 1.0  # seconds a refused connection waits for its request before it is closed
# Scope key of the request's connection (its `TurnWriter`, a transport): faults reset it
# (vapixlog.faults).
TRANSPORT_SCOPE_KEY = "vapixlog.transport"


# The headers of the answers the protocol writes as bytes (uvicorn's, with nosniff).
_PLAIN_CLOSE = ((b"content-type", PLAIN_TEXT), NOSNIFF, (b"connection", b"close"))


def _plain_answer(status: int, text: bytes, extra: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole plain-text answer that closes the connection, as bytes."""
    headers = (*extra, *_PLAIN_CLOSE, (b"content-length", b"%d" % len(text)))
    return STATUS_LINE[status] + b"".join(b"%s: %s\r\n" % pair for pair in headers) + b"\r\n" + text


_408 = _plain_answer(408, b"Request Timeout\n")
_431 = _plain_answer(431, b"Request header fields too large\n")
_503 = _plain_answer(503, b"Too many connections from this address\n")


async def _service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's answer over `limit_concurrency`, hardened as every answer."""
    await send_answer(send, 503, b"Service Unavailable", PLAIN_TEXT, [(b"connection", b"close")])


class RequestTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive within `request_timeout` seconds."""

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    # The server's connection limits: set per server by `http_protocol`; None: no limits.
    connection_table: ClassVar[ConnectionTable[RequestTimeoutProtocol] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One timer per connection for two deadlines: `_deadline`, when the current request
        # must be complete (None: no request under way), and `_idle_deadline`, when a
        # connection waiting for its next request is closed (uvicorn's `timeout_keep_alive`,
        # which uvicorn keeps with a timer of its own made and cancelled for every request).
        # The timer is not moved per request: it is armed for the earliest deadline it knows
        # (`_timer_at`), finds later ones when it fires and sleeps again until then, so that a
        # keep-alive request costs no timer of its own.
        self._deadline: float | None = None
        self._idle_deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._in_message = False  # between the first byte of a request and its last
        self._headers_pending = False  # the current request's headers are not complete
        self._raw_header_bytes = 0  # bytes received while they were incomplete
        self._chunk_bytes = 0  # size of the data being parsed
        self._rejected = False  # answered 431: the rest of the connection is ignored
        self._over_cap = False  # refused (503) at once: its address has too many connections
        self._writer: TurnWriter | None = None  # the transport as responses see it

    def _admit(self) -> bool:
        """Count the connection against the limits (making room near the total limit), or
        refuse it: over its address's cap."""
        table = self.connection_table
        if table is None:
            return True
        admitted = table.admit(self, self.client[0] if self.client else None)
        if admitted:
            for victim in table.shed():
                victim._shed()
        else:
            self._refuse()
        if summary := table.summary():
            log.warning("%s", summary)
        return admitted

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._writer = TurnWriter(transport, self.loop)
        # What every request's scope starts from (see on_message_begin).
        self._scope_base: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            TRANSPORT_SCOPE_KEY: self._writer,  # what a response writes goes through it
        }
        if self._admit():
            self._arm()

    def data_received(self, data: bytes) -> None:
        if self._over_cap:  # its request came (and is read): the 503 went out before it
            self.transport.close()
            return
        if self._deadline is None and not self._in_message:
            # These bytes begin a request (or are stray CRLFs between requests, which must
            # not keep a connection open either).
            self._arm()
        self._idle_deadline = None
        self._chunk_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if self._headers_pending and not self.transport.is_closing():
            # All of `data` went into the request line and headers (they are not complete),
            # which httptools accumulates: bound them before they are complete.
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > MAX_HEADER_BYTES:
                self._reject()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what httptools cannot parse, with nosniff as every answer.
        answer = _plain_answer(400, msg.encode("ascii"), self.server_state.default_headers)
        self._flush_response()
        self.transport.write(answer)
        self.transport.close()

    # The parser's callbacks (uvicorn's, in one frame each, with the timer and the limits).

    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        headers: list[tuple[bytes, bytes]] = []
        self.headers = headers
        self.scope = scope = self._scope_base.copy()  # type: ignore[assignment]
        scope["asgi"] = {"version": self.asgi_version, "spec_version": "2.3"}  # its own
        scope["headers"] = headers
        scope["state"] = self.app_state.copy()
        self._in_message = self._headers_pending = True
        self._raw_header_bytes = 0
        if self._deadline is None:  # a pipelined request, already in the buffer
            self._arm()

    def on_headers_complete(self) -> None:
        self._headers_pending = False
        if self._rejected:  # a request behind a 431 in the same packet: never answered
            return
        # Their size is the URL's and each header's name and value plus 4: at most 5/4 of
        # the bytes they came in (a header line, `name:value` CRLF, has at least 4), so it
        # is counted only when those bytes could hold more than half the limit.
        if (self._raw_header_bytes + self._chunk_bytes) * 2 > MAX_HEADER_BYTES:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > MAX_HEADER_BYTES:
                self._reject()
                return
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return  # a websocket: feed_data raises HttpParserUpgrade next
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        if root_path := self.root_path:
            path = root_path + path
            raw_path = root_path.encode("ascii") + raw_path
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        limit = self.limit_concurrency
        app = self.app
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = _service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing = self.cycle
        self.cycle = ResponseCycle(
            scope,
            # What the cycle uses of its transport, `TurnWriter` has (or passes on).
            cast(asyncio.Transport, self._writer),
            self.flow,
            self.logger,
            self.server_state.default_headers,
            http_version != "1.0" and parser.should_keep_alive(),
            self.expect_100_continue,
            self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined: answered after the one before it
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if self.config.reset_contextvars:  # the server never sets it: uvicorn's way, then
            super()._start_asgi_task(cycle, app)
            return
        task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_body(self, body: bytes) -> None:
        # Checked in uvicorn's order: a websocket upgrade has no cycle.
        if self._rejected or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        cycle: ResponseCycle = self.cycle  # type: ignore[assignment]  # made by on_headers_complete
        if cycle.response_complete:
            return
        if not cycle.body:
            cycle.body = body  # a body in one piece is passed on as it came
        else:
            if type(cycle.body) is bytes:  # a second piece: from now on, appended in place
                cycle.body = bytearray(cycle.body)
            cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._in_message = False
        self._disarm()
        if self._rejected or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        cycle = self.cycle
        if cycle.response_complete:
            return
        cycle.more_body = False
        cycle.message_event.set()
        if self.connection_table is not None:
            self.connection_table.busy(self)  # being answered: never shed

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive deadline on the connection's one timer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_deadline = deadline = self.loop.time() + self.timeout_keep_alive
            if self._timer is None or deadline < self._timer_at:  # `_wake_by`'s test, inline
                self._wake_by(deadline)
        if self.connection_table is not None and self._idle():
            self.connection_table.waiting(self)  # for the next request (keep-alive)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls it when data comes and when the connection is lost.
        self._idle_deadline = None

    def handle_websocket_upgrade(self) -> None:
        self._flush_response()
        self._stop_timer()  # the connection now belongs to the websocket protocol
        if self.connection_table is not None:
            self.connection_table.release(self)  # which never calls our connection_lost
        super().handle_websocket_upgrade()

    def eof_received(self) -> None:
        # The client half-closed: the transport closes itself when this returns (None, as
        # uvicorn's), so an answer already made but held (`TurnWriter`) goes out first.
        self._flush_response()

    def shutdown(self) -> None:
        self._flush_response()  # the server closes idle connections: what they hold first
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self.connection_table is not None:
            self.connection_table.release(self)
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = deadline = self.loop.time() + self.request_timeout
        self._wake_by(deadline)

    def _disarm(self) -> None:
        self._deadline = None  # an armed timer finds no deadline and lapses

    def _wake_by(self, when: float) -> None:
        """Make the timer fire at `when` or earlier."""
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _stop_timer(self) -> None:
        self._deadline = self._idle_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        deadline, idle = self._deadline, self._idle_deadline
        if deadline is not None and deadline <= now:
            self._on_request_timeout()
        elif idle is not None and idle <= now:
            self._idle_deadline = None
            self._flush_response()
            self.timeout_keep_alive_handler()
        elif deadline is not None or idle is not None:  # armed for earlier ones: not yet
            self._wake_by(min(d for d in (deadline, idle) if d is not None))

    def _on_request_timeout(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self._flush_response()
        if self.pipeline:
            # Reading is paused while an earlier request of this connection is answered:
            # the wait is ours, not the client's.
            self._arm()
            return
        # Part of the headers came: answer 408 (unless an earlier response is under way).
        if self._headers_pending and self._idle():
            self.transport.write(_408)
        self.transport.close()

    def _shed(self) -> None:
        """Close this connection waiting for a request, to make room near the limit."""
        # Out of the count of `limit_concurrency` at once: the transport calls connection_lost
        # only later, maybe after the request of the connection that made room.
        self.connections.discard(self)
        self._flush_response()
        self.transport.close()

    def _refuse(self) -> None:
        """Refuse a connection over its address's cap: 503 now, close on its request."""
        self._over_cap = True
        self.connections.discard(self)  # not served: not counted by `limit_concurrency`
        self.transport.write(_503)
        self._deadline = None
        self._timer_at = self.loop.time() + REFUSED_LINGER
        self._timer = self.loop.call_at(self._timer_at, self.transport.close)

    def _reject(self) -> None:
        """Refuse the request whose headers are too large, and the connection with it."""
        self._rejected = True
        self._flush_response()
        if self._idle():
            self.transport.write(_431)
        self.transport.close()

    def _flush_response(self) -> None:
        """Write what the responses hold (`TurnWriter`) before the protocol's own bytes."""
        if self._writer is not None:
            self._writer.flush()

    def _idle(self) -> bool:
        """No response of this connection is under way (one could be sent now)."""
        return self.cycle is None or self.cycle.response_complete


def http_protocol(
    request_timeout: float,
    *,
    max_connections: int | None = None,
    max_per_address: int | None = None,
) -> type[RequestTimeoutProtocol]:
    """The protocol class to pass as `uvicorn.Config(http=...)`, with its own connection table
    (counts are per server) when `max_connections` is given; `max_per_address` None: the
    default of `vapixlog.connections`."""
    if request_timeout <= 0:
        raise ValueError("request_timeout must be positive")
    table: ConnectionTable[RequestTimeoutProtocol] | None = None
    if max_connections is not None:
        table = ConnectionTable(max_connections, max_per_address)
    return type(
        "RequestTimeoutProtocol",
        (RequestTimeoutProtocol,),
        {"request_timeout": request_timeout, "connection_table": table},
    )
