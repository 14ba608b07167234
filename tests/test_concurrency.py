"""Concurrent writes, enable/disable and clearLog against one real server.

Many clients interleave `writeMessage`, `PATCH persistent/enabled` true/false and
`POST persistent/clearLog`. Every request is recorded with its window `[sent, done]`: `sent` is
taken (monotonic clock, one client process) just before the request is handed to httpx, `done`
just after its answer arrived. Whatever the server does for a request happens inside that
window: it cannot act on a request before it was sent, and it answers only after acting. Nothing
else about the order of requests on different connections is known, so the checks only use
these windows:

* A write is *persisted or not* at one instant inside its window (`SystemLog.write` checks the
  flag and queues the entry in one step of the event loop). Enable, disable and clear each take
  effect at one instant inside their own windows (state changes are serialized on the server).
* **Definitely on** for write `w`: there is a successful enable `e` (the initial one counts)
  with `e.done < w.sent`, and every disable `d` with `d.sent < w.done` has `d.done < e.sent`.
  So `e` took effect before `w`, and every disable that could have taken effect before `w` did
  so before `e`: the flag was on at `w`'s instant. Overlapping enables and disables are never
  ordered by guessing; they simply do not give a write this status.
* **Definitely off** for `w`: there is a successful disable `d` with `d.done < w.sent`, and
  every enable `e` with `e.sent < w.done` has `e.done < d.sent` (the same argument mirrored).
* **Safe from clears**: every clear `c` has `c.done < w.sent`. A clear removes `w` only if it
  takes effect after `w` was queued, which needs `c.done > w.sent`.
* **Definitely cleared**: some clear `c` has `c.sent > w.done`: `w` was queued (or not) before
  `c` even started, and a clear removes everything queued before it.

Checks on the persistent files at the end (after a SIGKILL, so only what was durable counts):
(a) every write acknowledged while definitely on and safe from clears is there exactly once;
(b) no write acknowledged while definitely off is there (nothing written after a completed
disable, before the next enable can have taken effect, lands in the persistent log);
(d) no definitely cleared write is there; (c) no line is doubled, torn or unknown.

The run is bounded (fixed numbers of operations; a seeded RNG for the pauses) and ends with two
sequential phases, disable-then-write and enable-then-write, so (a), (b) and (d) always have
cases to check whatever the timing of the mixed phase was.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from conftest import start_server
from servers import USERS, Server
from vapixlog.syslog import list_logs, parse_line

BASE = "/config/rest/log/v1"
SUCCESS = {"status": "success"}
WRITERS = 8
WRITES_EACH = 60
TOGGLERS = 2
TOGGLES_EACH = 8
CLEARS = 4
TAIL_WRITERS = 4
TAIL_WRITES_EACH = 10
MESSAGE = re.compile(r"conc w\d+ n\d+")


@dataclass
class Op:
    kind: str  # "write", "enable", "disable" or "clear"
    sent: float
    done: float
    ok: bool
    msg: str = ""


class Recorder:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.ops: list[Op] = []
        self.acked_writes = 0
        self.unexpected: list[str] = []

    async def _call(self, kind: str, method: str, path: str, body: object, msg: str = "") -> Op:
        sent = time.monotonic()
        response = await self.client.request(method, BASE + path, json=body)
        done = time.monotonic()
        ok = response.status_code == 200 and response.json() == SUCCESS
        if not ok:
            self.unexpected.append(f"{kind} {msg}: {response.status_code} {response.text}")
        op = Op(kind, sent, done, ok, msg)
        self.ops.append(op)
        return op

    async def write(self, msg: str) -> None:
        op = await self._call("write", "POST", "/writeMessage", {"data": {"msg": msg}}, msg)
        self.acked_writes += op.ok

    async def set_enabled(self, enabled: bool) -> None:
        kind = "enable" if enabled else "disable"
        await self._call(kind, "PATCH", "/persistent/enabled", {"data": enabled})

    async def clear(self) -> None:
        await self._call("clear", "POST", "/persistent/clearLog", {"data": {}})


async def _exercise(server: Server, seed: int) -> Recorder:
    rng = random.Random(seed)
    auth = httpx.BasicAuth("root", USERS["root"][1])
    limits = httpx.Limits(max_connections=WRITERS + TOGGLERS + 2)
    async with httpx.AsyncClient(
        base_url=server.url, auth=auth, limits=limits, timeout=30
    ) as client:
        rec = Recorder(client)
        # Pauses drawn up front, so the RNG sequence does not depend on task scheduling.
        write_pauses = [[rng.uniform(0, 0.02) for _ in range(WRITES_EACH)] for _ in range(WRITERS)]
        toggles = [
            [(rng.random() < 0.5, rng.uniform(0.02, 0.12)) for _ in range(TOGGLES_EACH)]
            for _ in range(TOGGLERS)
        ]
        clear_pauses = [rng.uniform(0.05, 0.2) for _ in range(CLEARS)]

        # The initial enable: complete before anything else is sent.
        await rec.set_enabled(True)

        async def writer(n: int, count: int, pauses: list[float] | None) -> None:
            for i in range(count):
                await rec.write(f"conc w{n} n{i}")
                if pauses:
                    await asyncio.sleep(pauses[i])

        async def toggler(plan: list[tuple[bool, float]]) -> None:
            for enabled, pause in plan:
                await asyncio.sleep(pause)
                await rec.set_enabled(enabled)

        async def clearer() -> None:
            while rec.acked_writes < 20:  # so that (d) has cases: writes acked before a clear
                await asyncio.sleep(0.005)
            for pause in clear_pauses:
                await rec.clear()
                await asyncio.sleep(pause)

        await asyncio.gather(
            *(writer(n, WRITES_EACH, write_pauses[n]) for n in range(WRITERS)),
            *(toggler(plan) for plan in toggles),
            clearer(),
        )
        # Tail phases, each one strictly after the previous one.
        await rec.set_enabled(False)
        await asyncio.gather(
            *(writer(100 + n, TAIL_WRITES_EACH, None) for n in range(TAIL_WRITERS))
        )
        await rec.set_enabled(True)
        await asyncio.gather(
            *(writer(200 + n, TAIL_WRITES_EACH, None) for n in range(TAIL_WRITERS))
        )
    return rec


def _definitely_on(write: Op, ops: list[Op]) -> bool:
    disables = [op for op in ops if op.kind == "disable" and op.sent < write.done]
    return any(
        e.kind == "enable"
        and e.ok
        and e.done < write.sent
        and all(d.done < e.sent for d in disables)
        for e in ops
    )


def _definitely_off(write: Op, ops: list[Op]) -> bool:
    enables = [op for op in ops if op.kind == "enable" and op.sent < write.done]
    return any(
        d.kind == "disable"
        and d.ok
        and d.done < write.sent
        and all(e.done < d.sent for e in enables)
        for d in ops
    )


def _read_messages(state_dir: Path) -> tuple[Counter[str], list[str]]:
    """How often each `log-api` message is in the persistent files; and every bad line."""
    counts: Counter[str] = Counter()
    bad: list[str] = []
    for _, path in list_logs(state_dir / "log" / "persistent"):
        data = path.read_bytes()
        if not data.endswith(b"\n") and data:
            bad.append(f"{path.name} ends in a torn line")
        for raw in data.decode(errors="replace").splitlines():
            parsed = parse_line(raw)
            if parsed is None:
                bad.append(f"unparsable: {raw!r}")
            elif parsed.tag == "log-api":
                counts[parsed.message] += 1
    return counts, bad


def test_writes_toggles_and_clears_interleaved(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        rec = asyncio.run(_exercise(server, seed=20261125))
    finally:
        server.kill()  # only what was durable when acknowledged counts

    assert not rec.unexpected, rec.unexpected[:10]
    ops = rec.ops
    writes = [op for op in ops if op.kind == "write"]
    clears = [op for op in ops if op.kind == "clear"]
    assert len(clears) == CLEARS
    counts, bad = _read_messages(server.state_dir)

    # (c) no torn, doubled or unknown line
    sent = {op.msg for op in writes}
    assert not bad, bad[:10]
    assert not [m for m in counts if not MESSAGE.fullmatch(m) or m not in sent]
    assert not [m for m, n in counts.items() if n > 1]

    must_have = [
        w for w in writes if _definitely_on(w, ops) and all(c.done < w.sent for c in clears)
    ]
    off = [w for w in writes if _definitely_off(w, ops)]
    cleared = [w for w in writes if any(c.sent > w.done for c in clears)]
    # The tail phases guarantee cases (the initial enable and the clearer's wait, too).
    assert len(must_have) >= TAIL_WRITERS * TAIL_WRITES_EACH
    assert len(off) >= TAIL_WRITERS * TAIL_WRITES_EACH
    assert len(cleared) >= 20
    # (a) persisted exactly once
    missing = [w.msg for w in must_have if counts[w.msg] != 1]
    assert not missing, missing[:10]
    # (b) nothing written while definitely off
    leaked = [w.msg for w in off if counts[w.msg]]
    assert not leaked, leaked[:10]
    # (d) nothing that a later clear removed
    survived = [w.msg for w in cleared if counts[w.msg]]
    assert not survived, survived[:10]
