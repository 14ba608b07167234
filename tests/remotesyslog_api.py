"""Calls to remotesyslog.cgi for the tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

from reboots import ADMIN
from servers import Server

PATH = "/axis-cgi/remotesyslog.cgi"


def post(server: Server, body: Any, *, auth: Any = ADMIN, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = kwargs.pop("headers", {"content-type": "application/json"})
    return httpx.post(
        server.url + PATH, content=content, auth=auth, headers=headers, timeout=10, **kwargs
    )


def call(server: Server, body: Any, **kwargs: Any) -> dict[str, Any]:
    response = post(server, body, **kwargs)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    reply: dict[str, Any] = response.json()
    return reply


def rpc(server: Server, method: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "1.2", "method": method}
    if params is not None:
        body["params"] = params
    return call(server, body, **kwargs)


def setup(server: Server, *servers: dict[str, Any]) -> dict[str, Any]:
    reply = rpc(server, "setup", {"servers": list(servers)})
    assert "error" not in reply, reply
    data: dict[str, Any] = reply["data"]
    return data


def system_log(server: Server) -> list[str]:
    response = httpx.get(server.url + "/axis-cgi/systemlog.cgi", auth=ADMIN, timeout=10)
    return response.text.splitlines()


def audit_log(server: Server) -> list[str]:
    """The audit log (AXIS OS 12.5+, the default profile): where changes are audited."""
    response = httpx.get(server.url + "/axis-cgi/auditlog.cgi", auth=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return response.text.splitlines()
