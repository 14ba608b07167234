"""The Python cost of one request in each layer of the service, without the network.

The ASGI app of a real device (state in a temporary folder) is called directly with the
scope of a `writeMessage` (Basic auth, persistent off) many times; the difference between
layers is what each layer costs. Then the whole app with Digest (MD5 and SHA-256), each
request with a fresh header (64 nonces, rising counts, as bench/run.py sends them). Used to
decide where to optimize (docs/benchmarks.md).

    python bench/asgi_micro.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import hashlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvloop

from vapixlog.app import PathPrefixDispatch, create_app
from vapixlog.auth import AuthMiddleware, DigestAuthority, UserStore, ensure_admin
from vapixlog.auth.middleware import USER_SCOPE_KEY
from vapixlog.device import Device, DeviceConfig
from vapixlog.severity import Severity

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
PATH = "/config/rest/log/v1/writeMessage"
BODY = b'{"data":{"msg":"benchmark entry from wrk, one line","severity":6}}'


def scope(auth: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"authorization", auth),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


def digest_scope(headers: Iterator[bytes]) -> dict[str, Any]:
    return scope(next(headers))


async def per_request_us(app: App, make_scope: Callable[[], dict[str, Any]], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(500):  # warm-up
        await app(make_scope(), receive, send)
    statuses.clear()
    start = time.perf_counter()
    for _ in range(n):
        await app(make_scope(), receive, send)
    elapsed = time.perf_counter() - start
    assert set(statuses) == {200}, set(statuses)
    return elapsed / n * 1e6


def digest_headers(new_nonce: Callable[[], str], algorithm: str, count: int) -> list[bytes]:
    """`count` single-use Digest headers for root: 64 nonces, counts rising on each."""
    hash_function = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def h(text: str) -> str:
        return hash_function(text.encode()).hexdigest()

    realm = "AXIS_ACCC8E000000"
    ha1, ha2 = h(f"root:{realm}:benchpass"), h(f"POST:{PATH}")
    nonces = [new_nonce() for _ in range(64)]
    headers = []
    for i in range(count):
        nonce, nc, cnonce = nonces[i % 64], f"{i // 64 + 1:08x}", f"c{i % 64:07x}"
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        headers.append(
            f'Digest username="root", realm="{realm}", nonce="{nonce}", uri="{PATH}", '
            f'algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}", '
            f'response="{response}"'.encode()
        )
    return headers


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        users = UserStore.load_or_create(state / "users.json", realm="AXIS_ACCC8E000000")
        ensure_admin(users, "benchpass")
        device = Device(DeviceConfig(state, rate_limit=None))
        app = create_app(device, users)
        await device.start()
        try:
            auth = b"Basic " + base64.b64encode(b"root:benchpass")
            user = users.get("root")

            def authed() -> dict[str, Any]:
                s = scope(auth)
                s[USER_SCOPE_KEY] = user
                return s

            authenticated: Any = app  # under the edge layers (vapixlog.edge)
            while not isinstance(authenticated, AuthMiddleware):
                authenticated = authenticated.app
            assert isinstance(authenticated.app, PathPrefixDispatch)
            dca = authenticated.app.app
            auth_dca = AuthMiddleware(dca, store=users, digest=DigestAuthority(users.realm))
            layers: list[tuple[str, App, Callable[[], dict[str, Any]]]] = [
                ("DcaApp alone (user already set)", dca, authed),
                ("AuthMiddleware + DcaApp", auth_dca, lambda: scope(auth)),
                ("the app without the edge", authenticated, lambda: scope(auth)),
                ("the whole app (create_app)", app, lambda: scope(auth)),
            ]
            for name, layer, make in layers:
                print(f"{name:<40} {await per_request_us(layer, make, n):6.1f} us/request")
            assert authenticated.digest is not None
            for algorithm in ("MD5", "SHA-256"):
                headers = digest_headers(authenticated.digest.new_nonce, algorithm, n + 500)
                us = await per_request_us(app, functools.partial(digest_scope, iter(headers)), n)
                print(f"{'the whole app, Digest ' + algorithm:<40} {us:6.1f} us/request")
            start = time.perf_counter()
            for _ in range(n):
                device.syslog.log(Severity.INFO, "benchmark entry from wrk, one line")
            print(
                f"{'SystemLog.log (format_line + volatile)':<40} "
                f"{(time.perf_counter() - start) / n * 1e6:6.1f} us/entry"
            )
        finally:
            await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(args.requests))


if __name__ == "__main__":
    main()
