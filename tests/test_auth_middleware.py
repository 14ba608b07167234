"""AuthMiddleware: Basic, 401 bodies and headers, reload, caching, pass-through."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from vapixlog.auth import (
    USER_SCOPE_KEY,
    AuthMiddleware,
    DigestAuthority,
    Role,
    User,
    UserStore,
)
from vapixlog.auth import middleware as middleware_module

REALM = "AXIS_ACCC8E123456"


class Recorder:
    """An inner ASGI app that records what reached it and echoes the request body."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "lifespan":
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        user = scope.get(USER_SCOPE_KEY)
        text = f"{user.name} {user.role} {len(body)}" if user else f"anon {len(body)}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text.encode()})


class Env:
    def __init__(self, tmp: Path, **kw: Any) -> None:
        self.path = tmp / "users.json"
        self.store = UserStore.load_or_create(self.path, REALM)
        self.store.add("alice", Role.VIEWER, "pw:with:colons")
        self.inner = Recorder()
        self.failures: list[tuple[str | None, str, str]] = []
        self.app = AuthMiddleware(
            self.inner,
            store=self.store,
            digest=DigestAuthority(REALM),
            on_failure=lambda u, h, r: self.failures.append((u, h, r)),
            **kw,
        )

    def call(
        self,
        path: str = "/x",
        authorization: bytes | str | None = None,
        *,
        scope_type: str = "http",
        chunks: tuple[bytes, ...] = (b"",),
    ) -> tuple[int | None, dict[bytes, list[bytes]], bytes, list[MutableMapping[str, Any]]]:
        headers = [(b"host", b"device")]
        if authorization is not None:
            value = authorization.encode() if isinstance(authorization, str) else authorization
            headers.append((b"authorization", value))
        scope: dict[str, Any] = {
            "type": scope_type,
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("203.0.113.5", 5555),
        }
        pending = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return pending.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        asyncio.run(self.app(scope, receive, send))
        status = sent[0].get("status") if sent else None
        hdrs: dict[bytes, list[bytes]] = {}
        for k, v in sent[0].get("headers", []) if sent else []:
            hdrs.setdefault(k, []).append(v)
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return status, hdrs, body, sent


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def basic(user: str, password: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_success_sets_user_and_streams_body(env: Env) -> None:
    status, _, body, _ = env.call(
        authorization=basic("alice", "pw:with:colons"), chunks=(b"ab", b"cd", b"e")
    )
    assert status == 200
    assert body == b"alice viewer 5"
    assert env.inner.scopes[-1][USER_SCOPE_KEY] == User("alice", Role.VIEWER)
    assert env.failures == []


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_scheme_is_case_insensitive(env: Env, scheme: str) -> None:
    assert env.call(authorization=basic("alice", "pw:with:colons", scheme))[0] == 200


def test_missing_credentials_config_path_gets_dca_envelope(env: Env) -> None:
    status, headers, body, _ = env.call("/config/rest/log/v1")
    assert status == 401
    assert headers[b"content-type"] == [b"application/json"]
    assert json.loads(body) == {
        "status": "error",
        "error": {"code": 3, "message": "Authentication required"},
    }
    challenges = headers[b"www-authenticate"]
    assert len(challenges) == 3
    assert challenges[0].startswith(b"Digest ") and b"algorithm=SHA-256" in challenges[0]
    assert challenges[1].startswith(b"Digest ") and b"algorithm=MD5" in challenges[1]
    assert challenges[2] == f'Basic realm="{REALM}"'.encode()
    assert headers[b"content-length"] == [str(len(body)).encode()]
    assert env.failures == []  # no credentials is not a failed login
    assert env.inner.scopes == []


def test_wrong_credentials_config_path_says_failed(env: Env) -> None:
    status, headers, body, _ = env.call("/config/x", basic("alice", "nope"))
    assert status == 401
    assert json.loads(body)["error"] == {"code": 3, "message": "Authentication failed"}
    assert len(headers[b"www-authenticate"]) == 3
    assert env.failures == [("alice", "203.0.113.5", "wrong password")]


def test_other_paths_get_plain_text(env: Env) -> None:
    status, headers, body, _ = env.call("/axis-cgi/systemlog.cgi")
    assert status == 401
    assert headers[b"content-type"][0].startswith(b"text/plain")
    assert body == b"Authentication required\n"
    status, _, body, _ = env.call("/axis-cgi/systemlog.cgi", basic("alice", "x"))
    assert body == b"Authentication failed\n"


@pytest.mark.parametrize(
    ("authorization", "failure"),
    [
        (basic("mallory", "pw"), ("mallory", "unknown user")),
        (basic("alice", ""), ("alice", "wrong password")),
        (basic("alice", "pw:with"), ("alice", "wrong password")),
        ("Basic !!!notbase64", (None, "malformed Basic credentials")),
        ("Basic YWxpY2U", (None, "malformed Basic credentials")),  # bad padding
        ("Basic " + base64.b64encode(b"alice").decode(), (None, "malformed Basic credentials")),
        (
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            (None, "malformed Basic credentials"),
        ),
        ("Basic", (None, "malformed Basic credentials")),
        (b"Basic \xff\xff", (None, "malformed Basic credentials")),
    ],
)
def test_basic_failures(env: Env, authorization: str | bytes, failure: tuple[Any, str]) -> None:
    status, _, body, _ = env.call("/config/x", authorization)
    assert status == 401
    assert json.loads(body)["error"]["message"] == "Authentication failed"
    assert env.failures == [(failure[0], "203.0.113.5", failure[1])]
    # The message and the failure report never carry the password.
    assert b"pw" not in body


@pytest.mark.parametrize("value", ["", "   ", "Bearer abc", "Negotiate xyz"])
def test_absent_or_foreign_scheme_is_just_a_challenge(env: Env, value: str) -> None:
    status, _, body, _ = env.call("/config/x", value)
    assert status == 401
    assert json.loads(body)["error"]["message"] == "Authentication required"
    assert env.failures == []


def test_basic_cache_invalidated_on_in_process_change(env: Env) -> None:
    header = basic("alice", "pw:with:colons")
    assert env.call(authorization=header)[0] == 200
    assert env.call(authorization=header)[0] == 200
    assert len(env.app._basic_cache) == 1
    env.store.add("alice", Role.ADMIN, "pw:with:colons")  # role change applies at once
    assert env.call(authorization=header)[2] == b"alice admin 0"
    env.store.remove("alice")
    assert env.call(authorization=header)[0] == 401


def test_failures_are_not_cached(env: Env) -> None:
    header = basic("bob", "pw")
    assert env.call(authorization=header)[0] == 401
    env.store.add("bob", Role.OPERATOR, "pw")
    assert env.call(authorization=header)[0] == 200


def test_basic_cache_is_bounded(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware_module, "_BASIC_CACHE_SIZE", 4)
    for i in range(10):
        env.store.add(f"u{i}", Role.VIEWER, "pw")
    for i in range(10):
        assert env.call(authorization=basic(f"u{i}", "pw"))[0] == 200
    assert len(env.app._basic_cache) == 4


def test_external_change_picked_up(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware_module, "_RELOAD_INTERVAL", 0.0)
    header = basic("alice", "pw:with:colons")
    assert env.call(authorization=header)[0] == 200
    other = UserStore(env.path)  # `vapixlog users remove alice` in another process
    other.remove("alice")
    other.add("carol", Role.ADMIN, "c")
    assert env.call(authorization=header)[0] == 401
    assert env.call(authorization=basic("carol", "c"))[2] == b"carol admin 0"


def test_reload_checked_at_most_once_per_second(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = env.store.reload_if_changed

    def counting() -> bool:
        calls.append(1)
        return original()

    monkeypatch.setattr(env.store, "reload_if_changed", counting)
    for _ in range(50):
        env.call(authorization=basic("alice", "pw:with:colons"))
    assert len(calls) == 1


def test_public_paths_bypass(tmp_path: Path) -> None:
    env = Env(tmp_path, public_paths=lambda p: p.startswith("/public/"))
    status, _, body, _ = env.call("/public/index.html")
    assert (status, body) == (200, b"anon 0")
    assert USER_SCOPE_KEY not in env.inner.scopes[-1]
    assert env.call("/private")[0] == 401


def test_lifespan_passes_through(env: Env) -> None:
    _, _, _, sent = env.call(scope_type="lifespan")
    assert env.inner.scopes[-1]["type"] == "lifespan"
    assert sent == []


def test_websocket_authenticated_or_closed(env: Env) -> None:
    _, _, _, sent = env.call("/ws", basic("alice", "pw:with:colons"), scope_type="websocket")
    assert sent == [{"type": "websocket.accept"}]
    _, _, _, sent = env.call("/ws", basic("alice", "wrong"), scope_type="websocket")
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert env.inner.scopes[-1][USER_SCOPE_KEY].name == "alice"


def test_realm_mismatch_refused(tmp_path: Path) -> None:
    store = UserStore.load_or_create(tmp_path / "u.json", REALM)
    with pytest.raises(ValueError, match="realm"):
        AuthMiddleware(Recorder(), store=store, digest=DigestAuthority("other"))


def test_internal_error_is_a_401_not_a_crash(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(name: str, password: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(env.store, "verify_password", boom)
    assert env.call(authorization=basic("alice", "x"))[0] == 401
    assert env.inner.scopes == []


def test_works_without_on_failure(tmp_path: Path) -> None:
    store = UserStore.load_or_create(tmp_path / "u.json", REALM)
    app = AuthMiddleware(Recorder(), store=store, digest=DigestAuthority(REALM))
    sent: list[MutableMapping[str, Any]] = []

    async def send(m: MutableMapping[str, Any]) -> None:
        sent.append(m)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"authorization", b"Basic " + base64.b64encode(b"x:y"))],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401
