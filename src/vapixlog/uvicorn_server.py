"""uvicorn's server, made cheap to run by the thousand in one process.

uvicorn's main loop wakes every server ten times a second to refresh its `Date` header and
see whether it should exit: 10,000 emulated devices made that 100,000 wake-ups a second,
and even a wake-up a second each (a timed wait per server) took most of a core. Here a
server waits on an event to exit, and one clock per event loop refreshes the `Date` header
of every running server once a second, on the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator
from email.utils import formatdate

import uvicorn

# The running servers of each event loop, refreshed by that loop's clock task (held here:
# the loop itself keeps only a weak reference to a task).
_running: dict[asyncio.AbstractEventLoop, set[DeviceUvicornServer]] = {}
_clocks: set[asyncio.Task[None]] = set()


class DeviceUvicornServer(uvicorn.Server):
    """A uvicorn server that sleeps until told to exit; signals are the process's."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    async def main_loop(self) -> None:
        if await self.on_tick(0):  # uvicorn's own bookkeeping, the first Date header
            return
        servers = _clock_for(asyncio.get_running_loop())
        servers.add(self)
        try:
            await self._exit.wait()
        finally:
            servers.discard(self)

    def set_date(self, date: bytes) -> None:
        if self.config.date_header:
            self.server_state.default_headers = [(b"date", date), *self.config.encoded_headers]

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The process handles signals once for all its devices (`vapixlog.server.serve`).
        yield


def _clock_for(loop: asyncio.AbstractEventLoop) -> set[DeviceUvicornServer]:
    servers = _running.get(loop)
    if servers is None:
        servers = _running[loop] = set()
        task = loop.create_task(_clock(loop, servers))
        _clocks.add(task)
        task.add_done_callback(_clocks.discard)
    return servers


async def _clock(loop: asyncio.AbstractEventLoop, servers: set[DeviceUvicornServer]) -> None:
    """Sets the `Date` header of `servers` at each second; ends when none is left (no await
    between the last check and the removal: a server added later starts a new clock)."""
    try:
        while True:
            await asyncio.sleep(1.0 - time.time() % 1.0)
            if not servers:
                return
            date = formatdate(time.time(), usegmt=True).encode()
            for server in servers:
                server.set_date(date)
    finally:
        if _running.get(loop) is servers:
            del _running[loop]
