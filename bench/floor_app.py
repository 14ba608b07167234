"""The floor's app: a bare ASGI app that reads the body and answers `{"status":"success"}`.

The floor of `make bench` (bench/run.py, issue 17) is this app on plain uvicorn, as its
command line starts it (its default config picks httptools and uvloop when installed),
without the access log:

    python -m uvicorn bench.floor_app:app --port 8090 --no-access-log   # the floor
    python bench/floor_app.py --port 8090   # reference: on the service's own server stack
    granian --interface asgi bench.floor_app:app ...  # the same app on granian

`main` serves it with the same `Config` as `vapixlog.server` (the request-timeout httptools
protocol, the connection limit) on uvloop: the floor of earlier runs, kept as a reference
row. Whatever the service does beyond the floor is the cost of the service itself.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn
import uvloop

from vapixlog.protocol import DEFAULT_REQUEST_TIMEOUT, http_protocol

_BODY = b'{"status":"success"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"20")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # read the whole body, as the service does
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        http=http_protocol(DEFAULT_REQUEST_TIMEOUT),
        limit_concurrency=1000 + 1,
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
