from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import USERS, Server


def start_server(state_dir: Path, *extra_args: str, port: int | None = None) -> Server:
    server = Server(state_dir, extra_args=list(extra_args))
    if port is not None:
        server.port = port
    if "--devices" not in extra_args:
        server.add_users()
        server.start()
        return server
    # A fleet's devices each have their own realm, known to the user store once `serve`
    # started: users added before could not log in to them (DECISIONS 2).
    server.start()
    server.add_users()
    name, (_, password) = "viewer", USERS["viewer"]
    deadline = time.monotonic() + 10
    while httpx.get(server.url + "/config/rest/log/v1", auth=(name, password)).status_code != 200:
        assert time.monotonic() < deadline, "users added to the fleet were not picked up"
        time.sleep(0.05)  # the server re-reads users.json at most once a second
    return server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for tests that do not depend on each other's state."""
    server = start_server(tmp_path_factory.mktemp("shared") / "state")
    yield server
    if server.proc:
        server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server with its own state dir."""
    server = start_server(tmp_path / "state")
    yield server
    if server.proc:
        server.stop()


def client_for(server: Server, user: str = "root", *, digest: bool = False) -> httpx.Client:
    password = USERS[user][1]
    auth: httpx.Auth = (
        httpx.DigestAuth(user, password) if digest else httpx.BasicAuth(user, password)
    )
    return httpx.Client(base_url=server.url, auth=auth, timeout=10)


@pytest.fixture
def admin(shared_server: Server) -> Iterator[httpx.Client]:
    with client_for(shared_server) as client:
        yield client
