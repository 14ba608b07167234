"""A tiny HTTP proxy in front of one device that breaks chosen requests, for client tests:
drop a request before it reaches the device, drop the answer after the device acted on it,
or cut a report's body short (sent without `Content-Length` or chunking, so only the tar's
own structure can tell it is incomplete).

Each request is forwarded on a fresh connection with `Connection: close`; the answer goes
back whole, then the client's connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Match = Callable[[str, str, bytes], bool]  # method, target, body


@dataclass
class Rule:
    """`action` on the first `times` requests that `match` and carry credentials:
    `drop-before`, `drop-after`, or `truncate` (keep `keep` bytes of the body; negative:
    all but that many)."""

    match: Match
    action: str
    times: int = 1
    keep: int = 0
    hits: int = 0


@dataclass
class FaultProxy:
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, match: Match) -> int:
        """Requests with credentials that `match`, as they reached the proxy."""
        return sum(match(*request) for request in self.seen)

    # ----- the server, on its own event loop in a thread -----

    @contextlib.contextmanager
    def running(self) -> Iterator[FaultProxy]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        stop: asyncio.Event | None = None

        async def main() -> None:
            nonlocal stop
            stop = asyncio.Event()
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await stop.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        ready.wait(10)
        try:
            yield self
        finally:
            assert stop is not None
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length")),
            0,
        )
        body = await reader.readexactly(length) if length else b""
        rule = None
        if any(h.lower().startswith("authorization:") for h in headers):
            self.seen.append((method, target, body))
            rule = next(
                (r for r in self.rules if r.hits < r.times and r.match(method, target, body)), None
            )
            if rule is not None:
                rule.hits += 1
        if rule is not None and rule.action == "drop-before":
            return False  # closed: the device never saw it
        kept = [h for h in headers if not h.lower().startswith(("connection:", "keep-alive:"))]
        request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(request + body)
        await up_writer.drain()
        response = await up_reader.read()
        up_writer.close()
        if rule is not None and rule.action == "drop-after":
            return False  # the device acted on it; the answer is lost
        if rule is not None and rule.action == "truncate":
            response = _cut(response, rule.keep)
        writer.write(response)
        await writer.drain()
        return False


def _cut(response: bytes, keep: int) -> bytes:
    """The response with its body de-chunked and cut to `keep` bytes, sent without a length
    (the end of the body is the end of the connection)."""
    head, _, rest = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    chunked = any(line.lower() == b"transfer-encoding: chunked" for line in lines)
    body = _dechunk(rest) if chunked else rest
    kept = [
        line
        for line in lines
        if not line.lower().startswith((b"transfer-encoding:", b"content-length:", b"connection:"))
    ]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""]) + body[:keep]


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def is_reboot(method: str, target: str, body: bytes) -> bool:
    return "firmwaremanagement.cgi" in target and b'"reboot"' in body


def is_report(method: str, target: str, body: bytes) -> bool:
    return "serverreport.cgi" in target and "tar_all" in target


def is_persistent_change(method: str, target: str, body: bytes) -> bool:
    return target.endswith("/persistent/enabled") and method != "GET"
