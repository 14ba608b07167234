"""`FaultLayer`: the edge layer that makes requests fail as their `FaultPlan` says.

Installed only when a device has a plan (`--fault`, `--control`, the pytest fixture): without
one there is no wrapper at all. With an empty plan a request costs one truth test.

Each request is matched against the plan (for a JSON-RPC reboot, the call's `method` is read
from the body, which is then replayed to the CGI). What the faults that fire do, in order:
`delay` waits (delays add up); `status` answers in the endpoint's dialect
(`vapixlog.edge.dialect`) without handling the request; `reset=request` resets the connection
before the request is handled; the others shape the response as it goes out: `reset=before`
swallows it and resets the connection when its head would go, `reset=after` resets once the
head went, `takes` holds the body back, `slow` paces it, `truncate` closes the connection
(after what was sent is flushed) part-way through the body. Resets set `SO_LINGER` to 0, so
the client sees a TCP RST. The control endpoint is never faulted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Collection, Mapping
from http import HTTPStatus
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vapixlog.edge.answers import send_answer
from vapixlog.edge.dialect import error_answer
from vapixlog.faults.plan import FaultPlan
from vapixlog.faults.spec import Fault
from vapixlog.protocol import TRANSPORT_SCOPE_KEY

_PEEK_LIMIT = 64 << 10  # a JSON-RPC call read to find its method
_DRAIN_LIMIT = 5.0  # seconds to wait for what was sent to leave before a close


class FaultLayer:
    def __init__(
        self,
        app: ASGIApp,
        plan: FaultPlan,
        *,
        json_rpc_versions: Mapping[str, str],
        exempt: Collection[str] = (),
    ) -> None:
        self.app = app
        self.plan = plan
        self.json_rpc_versions = dict(json_rpc_versions)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.plan or scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        call: dict[str, Any] | None = None
        if self.plan.needs_rpc_method(method, path):
            call, receive = await _read_call(receive)
        faults = self.plan.fired(method, path, _rpc_method(call))
        if not faults:
            await self.app(scope, receive, send)
            return
        await self._inflict(faults, scope, receive, send, call)

    async def _inflict(
        self,
        faults: list[Fault],
        scope: Scope,
        receive: Receive,
        send: Send,
        call: dict[str, Any] | None,
    ) -> None:
        delay = sum(_number(f) for f in faults if f.action == "delay")
        if delay:
            await asyncio.sleep(delay)
        transport = scope.get(TRANSPORT_SCOPE_KEY)
        for fault in faults:
            if fault.action == "status":
                status = int(_number(fault))
                await self._answer(scope, status, receive, send, call)
                return
            if fault.action == "reset" and fault.value == "request":
                await _reset(transport)
                return
        shaped = _Shaper(send, transport, faults)
        await self.app(scope, receive, shaped.send)

    async def _answer(
        self, scope: Scope, status: int, receive: Receive, send: Send, call: dict[str, Any] | None
    ) -> None:
        path = scope["path"]
        if call is None and path in self.json_rpc_versions:
            call, _ = await _read_call(receive)  # to echo its context and method
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        message = f"{phrase} (injected fault)"
        answer_status, body, ctype = error_answer(
            path, status, message, self.json_rpc_versions, call=call
        )
        headers = [(b"retry-after", b"1")] if status in (429, 503) else []
        await send_answer(send, answer_status, body, ctype, headers)


class _Shaper:
    """The response as the faults shape it (see the module doc)."""

    def __init__(self, send: Send, transport: Any, faults: list[Fault]) -> None:
        self._send = send
        self._transport = transport
        self._reset = next((f.value for f in faults if f.action == "reset"), None)
        self._takes = sum(_number(f) for f in faults if f.action == "takes")
        rates = [int(_number(f)) for f in faults if f.action == "slow"]
        self._rate = min(rates) if rates else None
        cuts = [int(_number(f)) for f in faults if f.action == "truncate"]
        self._room = min(cuts) if cuts else None
        self._gone = False  # the connection was reset or closed: swallow the rest

    async def send(self, message: Message) -> None:
        if self._gone:
            return
        if message["type"] == "http.response.start":
            if self._reset == "before":
                self._gone = True
                await _reset(self._transport)
                return
            await self._send(message)
            if self._reset == "after":
                self._gone = True
                await _drain(self._transport)
                await _reset(self._transport)
            elif self._takes:
                await asyncio.sleep(self._takes)
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        cut = False
        if self._room is not None and (
            len(body) > self._room or (more and len(body) == self._room)
        ):
            body, more, cut = body[: self._room], True, True
        if self._room is not None:
            self._room -= len(body)
        await self._paced(body, more)
        if cut:
            self._gone = True
            await _drain(self._transport)
            await _close(self._transport)

    async def _paced(self, body: bytes, more: bool) -> None:
        if self._rate is None or not body:
            await self._send({"type": "http.response.body", "body": body, "more_body": more})
            return
        piece = max(1, self._rate // 10)
        start = time.monotonic()
        for offset in range(0, len(body), piece):
            chunk = body[offset : offset + piece]
            last = offset + piece >= len(body)
            await self._send(
                {"type": "http.response.body", "body": chunk, "more_body": more or not last}
            )
            due = start + (offset + len(chunk)) / self._rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))


async def _read_call(receive: Receive) -> tuple[dict[str, Any] | None, Receive]:
    """The JSON-RPC call in the request body (None: not one), and a `receive` that gives the
    body to the app again."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more and size <= _PEEK_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return None, _replay([message], receive)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]
    try:
        call = orjson.loads(body) if not more else None
    except orjson.JSONDecodeError:
        call = None
    return (call if isinstance(call, dict) else None), _replay(replay, receive)


def _number(fault: Fault) -> float:
    assert isinstance(fault.value, int | float)
    return float(fault.value)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _rpc_method(call: dict[str, Any] | None) -> str | None:
    method = call.get("method") if call else None
    return method if isinstance(method, str) else None


async def _drain(transport: Any) -> None:
    """Wait (a little) until what was written has left for the client."""
    if transport is None:
        return
    deadline = time.monotonic() + _DRAIN_LIMIT
    while transport.get_write_buffer_size() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)  # let the client read it before the connection goes


async def _reset(transport: Any) -> None:
    """Reset the connection (TCP RST); without a transport, fail the request."""
    if transport is None:
        raise ConnectionResetError("fault: reset (no transport to reset)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await _settle()


async def _close(transport: Any) -> None:
    if transport is None:
        raise ConnectionAbortedError("fault: truncate (no transport to close)")
    transport.abort()  # what was written has left (see _drain): the client gets a FIN
    await _settle()


async def _settle() -> None:
    """Let the server see the connection go before the app returns."""
    for _ in range(3):
        await asyncio.sleep(0)
