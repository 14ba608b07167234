"""Who may do what: every user class x every operation, over Basic and Digest, with three
real HTTP clients (httpx, requests, curl) against a real server process."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from servers import USERS, Server

BASE = "/config/rest/log/v1"
VIEWER, ADMIN = {"viewer", "op", "root"}, {"root"}
OPERATIONS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", BASE, None, VIEWER),
    ("GET", BASE + "alpha/persistent", None, VIEWER),
    ("GET", BASE + "/persistent/enabled", None, VIEWER),
    ("PATCH", BASE + "/persistent/enabled", {"data": False}, ADMIN),
    ("PUT", BASE + "alpha/persistent/enabled", {"data": False}, ADMIN),
    ("PATCH", BASE + "/persistent", {"data": {"enabled": False}}, ADMIN),
    ("POST", BASE + "/writeMessage", {"data": {"msg": "matrix", "severity": 5}}, ADMIN),
    ("POST", BASE + "/persistent/clearLog", {"data": {}}, ADMIN),
    ("GET", "/axis-cgi/systemlog.cgi", None, ADMIN),
    ("GET", "/axis-cgi/admin/systemlog.cgi?tail=5", None, ADMIN),
    ("GET", "/axis-cgi/accesslog.cgi", None, ADMIN),
    ("GET", "/axis-cgi/admin/accesslog.cgi", None, ADMIN),
]
CASES = [
    pytest.param(method, path, body, allowed, id=f"{method} {path}")
    for method, path, body, allowed in OPERATIONS
]


def call_httpx(server: Server, method: str, path: str, body: Any, user: str | None, scheme: str):
    auth: httpx.Auth | None = None
    if user:
        password = USERS[user][1]
        auth = (
            httpx.BasicAuth(user, password)
            if scheme == "basic"
            else httpx.DigestAuth(user, password)
        )
    response = httpx.request(method, server.url + path, json=body, auth=auth, timeout=10)
    return response.status_code, response.headers, response.content


def call_requests(server: Server, method: str, path: str, body: Any, user: str | None, scheme: str):
    auth = None
    if user:
        password = USERS[user][1]
        auth = (
            HTTPBasicAuth(user, password) if scheme == "basic" else HTTPDigestAuth(user, password)
        )
    response = requests.request(method, server.url + path, json=body, auth=auth, timeout=10)
    return response.status_code, response.headers, response.content


def call_curl(server: Server, method: str, path: str, body: Any, user: str | None, scheme: str):
    command = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", server.url + path]
    if user:
        command += [f"--{scheme}", "-u", f"{user}:{USERS[user][1]}"]
    if body is not None:
        command += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    result = subprocess.run(command, capture_output=True, timeout=20, check=True)
    content, _, status = result.stdout.rpartition(b"\n")
    return int(status), {}, content


CLIENTS = {"httpx": call_httpx, "requests": call_requests, "curl": call_curl}


@pytest.mark.parametrize(("method", "path", "body", "allowed"), CASES)
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("scheme", ["basic", "digest"])
def test_matrix(
    shared_server: Server,
    client: str,
    scheme: str,
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
) -> None:
    call = CLIENTS[client]
    status, headers, content = call(shared_server, method, path, body, None, scheme)
    assert status == 401
    if path.startswith("/config/"):
        assert json.loads(content)["error"]["code"] == 3
    if headers:
        challenges = headers.get("www-authenticate", "")
        assert "Digest" in challenges and "Basic" in challenges
    for user in USERS:
        status, _, content = call(shared_server, method, path, body, user, scheme)
        if user in allowed:
            assert status == 200, (user, content)
        else:
            assert status == 403, (user, content)
            if path.startswith("/config/"):
                assert json.loads(content)["error"]["code"] == 4


@pytest.mark.parametrize("scheme", ["basic", "digest"])
def test_wrong_password_is_refused_and_audited(shared_server: Server, scheme: str) -> None:
    auth: httpx.Auth = (
        httpx.BasicAuth("op", "wrong") if scheme == "basic" else httpx.DigestAuth("op", "wrong")
    )
    response = httpx.get(shared_server.url + BASE, auth=auth, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == {"code": 3, "message": "Authentication failed"}
    log = httpx.get(shared_server.url + "/axis-cgi/auditlog.cgi", auth=("root", USERS["root"][1]))
    assert "Authentication: op@127.0.0.1 Authentication failed (HTTP/S)." in log.text
    assert "wrong" not in log.text


def test_viewer_reads_what_admin_wrote(shared_server: Server) -> None:
    admin = ("root", USERS["root"][1])
    viewer = httpx.DigestAuth("viewer", USERS["viewer"][1])
    httpx.patch(shared_server.url + BASE + "/persistent/enabled", json={"data": True}, auth=admin)
    assert httpx.get(shared_server.url + BASE, auth=viewer).json() == {
        "status": "success",
        "data": {"persistent": {"enabled": True}},
    }
    httpx.patch(shared_server.url + BASE + "/persistent/enabled", json={"data": False}, auth=admin)
