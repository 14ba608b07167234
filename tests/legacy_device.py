"""A tiny fake of an older device for client tests: Basic authentication only, no discovery,
the Log API at chosen roots, and PUT where current devices take PATCH and POST (which it
answers with 405, as AXIS OS 11.10 and older do)."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servers import free_port

USER, PASSWORD = "legacy", "legacypass"


def _error(status: int, code: int, message: str, **headers: str) -> Response:
    body = {"status": "error", "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class LegacyDevice:
    roots: tuple[str, ...] = ("/config/rest/log/v1alpha",)
    discovery: dict[str, Any] | None = None
    port: int = field(default_factory=free_port)
    persistent: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        auth = request.headers.get("authorization")
        self.requests.append((method, path, auth.split()[0] if auth else None))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth != expected:
            return _error(
                401, 3, "Authentication required", **{"WWW-Authenticate": 'Basic realm="old"'}
            )
        if path == "/config/discover" and self.discovery is not None:
            return JSONResponse(self.discovery)
        root = next((r for r in self.roots if path.startswith(r)), None)
        if root is None:
            return _error(404, 1, f"Resource not found: {path}")
        rest = path[len(root) :]
        if method == "GET" and rest == "":
            data = {"persistent": {"enabled": self.persistent}}
            return JSONResponse({"status": "success", "data": data})
        if method == "GET" and rest == "/persistent/enabled":
            return JSONResponse({"status": "success", "data": self.persistent})
        if rest not in ("/persistent/enabled", "/writeMessage", "/persistent/clearLog"):
            return _error(404, 1, f"Resource not found: {path}")
        if method in ("PATCH", "POST"):
            return _error(405, 2, "Method not allowed", Allow="GET, PUT")
        if method != "PUT":
            return _error(405, 2, "Method not allowed", Allow="GET, PUT")
        data = (await request.json())["data"]
        if rest == "/persistent/enabled":
            self.persistent = data
        elif rest == "/writeMessage":
            self.messages.append(data)
        return JSONResponse({"status": "success"})

    def __enter__(self) -> LegacyDevice:
        methods = ["GET", "PUT", "PATCH", "POST", "DELETE"]
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the legacy device did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
