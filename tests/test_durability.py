"""The durability promise: a `writeMessage` that answered success with persistent logging
on is on disk, even if the server is killed with SIGKILL right after."""

from __future__ import annotations

import asyncio

import httpx

from servers import USERS, Server
from syslog_files import persistent_lines

BASE = "/config/rest/log/v1"


async def write_many(server: Server, writers: int, each: int) -> list[str]:
    acked: list[str] = []
    auth = httpx.BasicAuth("root", USERS["root"][1])
    limits = httpx.Limits(max_connections=writers)
    async with httpx.AsyncClient(
        base_url=server.url, auth=auth, limits=limits, timeout=20
    ) as client:

        async def writer(n: int) -> None:
            for i in range(each):
                msg = f"durable w{n} m{i}"
                response = await client.post(f"{BASE}/writeMessage", json={"data": {"msg": msg}})
                assert response.json() == {"status": "success"}
                acked.append(msg)

        await asyncio.gather(*(writer(n) for n in range(writers)))
    return acked


def test_acknowledged_writes_survive_sigkill(server: Server) -> None:
    auth = ("root", USERS["root"][1])
    httpx.patch(server.url + BASE + "/persistent/enabled", json={"data": True}, auth=auth)
    acked = asyncio.run(write_many(server, writers=16, each=40))
    server.kill()  # no chance to flush anything that was not already durable

    messages = [line.message for line in persistent_lines(server.state_dir)]
    for msg in acked:
        assert messages.count(msg) == 1, msg

    server.start()
    log = httpx.get(server.url + "/axis-cgi/systemlog.cgi", auth=auth).text
    assert "ended without a clean shutdown" in log
    assert "durable w0 m0" not in log  # the volatile log of the killed boot is gone
    enabled = httpx.get(server.url + BASE + "/persistent/enabled", auth=auth).json()["data"]
    assert enabled is True
