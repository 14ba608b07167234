"""Digest (RFC 7616) end to end: real clients against a real socket, crafted headers,
stale nonces, replays, and garbage."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fakeclock import FakeClock
from vapixlog.auth import (
    AuthMiddleware,
    DigestAuthority,
    MalformedHeader,
    Role,
    UserStore,
    parse_params,
)

REALM = "AXIS_ACCC8E123456"
USER, PASSWORD = "alice", "wonder:land ä"
CURL = "/usr/bin/curl"


async def whoami(request: Request) -> PlainTextResponse:
    user = request.scope["vapixlog.user"]
    return PlainTextResponse(f"{user.name} {user.role}")


class Env:
    """A store, an authority with a fake clock, the wrapped app, and recorded failures."""

    def __init__(self, tmp: Path, *, real_clock: bool = False, **digest_kw: Any) -> None:
        self.store = UserStore.load_or_create(tmp / "users.json", REALM)
        self.store.add(USER, Role.OPERATOR, PASSWORD)
        self.store.add("root", Role.ADMIN, "rootpw")
        self.clock = FakeClock(1_700_000_000.0)
        clock = time.time if real_clock else self.clock
        self.digest = DigestAuthority(REALM, clock=clock, **digest_kw)
        self.failures: list[tuple[str | None, str, str]] = []
        inner = Starlette(routes=[Route("/{path:path}", whoami, methods=["GET", "POST"])])
        self.app = AuthMiddleware(
            inner,
            store=self.store,
            digest=self.digest,
            on_failure=lambda u, h, r: self.failures.append((u, h, r)),
        )

    def client(self) -> _SyncASGI:
        transport = httpx.ASGITransport(app=self.app, client=("192.0.2.7", 4711))
        return _SyncASGI(transport)


class _SyncASGI:
    """Minimal sync facade over httpx.AsyncClient + ASGITransport, for readable tests."""

    def __init__(self, transport: httpx.ASGITransport) -> None:
        self._transport = transport

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._transport, base_url="http://device") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def challenge(resp: httpx.Response, algorithm: str) -> dict[str, str]:
    for value in resp.headers.get_list("www-authenticate"):
        if value.startswith("Digest ") and f"algorithm={algorithm}," in value:
            return parse_params(value[len("Digest ") :])
    raise AssertionError(f"no {algorithm} challenge")


def digest_header(
    chal: dict[str, str],
    *,
    algorithm: str,
    method: str = "GET",
    uri: str = "/x",
    user: str = USER,
    password: str = PASSWORD,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    extra: str = "",
) -> str:
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def hx(s: str) -> str:
        return h(s.encode()).hexdigest()

    ha1 = hx(f"{user}:{chal['realm']}:{password}")
    ncv = f"{nc:08x}"
    response = hx(f"{ha1}:{chal['nonce']}:{ncv}:{cnonce}:auth:{hx(f'{method}:{uri}')}")
    return (
        f'Digest username="{user}", realm="{chal["realm"]}", nonce="{chal["nonce"]}", '
        f'uri="{uri}", algorithm={algorithm}, response="{response}", qop=auth, nc={ncv}, '
        f'cnonce="{cnonce}"{extra}'
    )


# -- real socket -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Env]]:
    env = Env(tmp_path_factory.mktemp("srv"), real_clock=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(env.app, lifespan="off", log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if srv.started:
            break
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{port}", env
    srv.should_exit = True
    thread.join(5)
    sock.close()


def test_httpx_digest_real_socket_uses_sha256(server: tuple[str, Env]) -> None:
    url, _ = server
    with httpx.Client(auth=httpx.DigestAuth(USER, PASSWORD)) as c:
        r = c.get(f"{url}/config/rest/log/v1?x=1&y=%20")
        assert r.status_code == 200, r.text
        assert r.text == "alice operator"
        assert "algorithm=SHA-256" in r.request.headers["authorization"]
        # The same nonce is reused with increasing nc: no further challenge round trips.
        for _ in range(5):
            r = c.get(f"{url}/other")
            assert r.status_code == 200
            assert len(r.history) == 0


def test_requests_digest_real_socket(server: tuple[str, Env]) -> None:
    url, _ = server
    with requests.Session() as s:
        s.auth = requests.auth.HTTPDigestAuth("root", "rootpw")
        r = s.get(f"{url}/a/b?q=1", timeout=5)
        assert r.status_code == 200, r.text
        assert r.text == "root admin"
        # requests merges all challenges into one dict; the later MD5 one wins.
        assert "algorithm=" in r.request.headers["Authorization"]
        assert s.get(f"{url}/again", timeout=5).status_code == 200


@pytest.mark.skipif(not Path(CURL).exists(), reason="needs curl")
@pytest.mark.parametrize("mode", ["--digest", "--basic"])
def test_curl_real_socket(server: tuple[str, Env], mode: str) -> None:
    url, _ = server
    out = subprocess.run(
        [CURL, "-sS", mode, "-u", f"{USER}:{PASSWORD}", "-w", "\n%{http_code}", f"{url}/p?a=b"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.splitlines() == ["alice operator", "200"]


@pytest.mark.skipif(not Path(CURL).exists(), reason="needs curl")
def test_curl_wrong_password_real_socket(server: tuple[str, Env]) -> None:
    url, env = server
    env.failures.clear()
    out = subprocess.run(
        [
            CURL,
            "-sS",
            "--digest",
            "-u",
            f"{USER}:nope",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"{url}/p",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout == "401"
    assert env.failures and env.failures[-1][:2] == (USER, "127.0.0.1")


# -- crafted headers -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_crafted_header_both_algorithms(env: Env, algorithm: str) -> None:
    c = env.client()
    first = c.get("/x")
    assert first.status_code == 401
    chal = challenge(first, algorithm)
    for nc in (1, 2, 7):  # increasing nc on one nonce keeps working
        r = c.get("/x", headers={"Authorization": digest_header(chal, algorithm=algorithm, nc=nc)})
        assert r.status_code == 200, r.text
        assert r.text == "alice operator"
    assert env.failures == []


def test_challenges_share_one_nonce_in_the_devices_shape(env: Env) -> None:
    values = env.client().get("/x").headers.get_list("www-authenticate")
    assert len(values) == 3
    assert values[0].startswith("Digest ") and "algorithm=SHA-256" in values[0]
    assert values[1].startswith("Digest ") and "algorithm=MD5" in values[1]
    assert values[2] == f'Basic realm="{REALM}"'
    a, b = (parse_params(v[len("Digest ") :]) for v in values[:2])
    assert a["nonce"] == b["nonce"] and "opaque" not in a
    assert a["realm"] == REALM and a["qop"] == "auth" and "stale" not in a
    # As devices (Apache mod_auth_digest): realm, nonce, algorithm, qop, in that order;
    # the nonce is 12 base64 characters of a time stamp ending in "=", then 40 hex digits.
    assert re.fullmatch(
        rf'Digest realm="{REALM}", nonce="[A-Za-z0-9+/]{{11}}=[0-9a-f]{{40}}", '
        r'algorithm=MD5, qop="auth"',
        values[1],
    )


def test_httpx_digest_auth_via_asgi(env: Env) -> None:
    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=env.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://d", auth=httpx.DigestAuth("root", "rootpw")
        ) as c:
            return [(await c.get(f"/x/{i}?i={i}")).status_code for i in range(20)]

    assert asyncio.run(go()) == [200] * 20


def test_uppercase_hex_response_and_quoted_params_in_any_order(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "MD5")
    header = digest_header(chal, algorithm="MD5")
    params = parse_params(header[len("Digest ") :])
    params["response"] = params["response"].upper()
    shuffled = ",\t ".join(f'{k}="{v}"' for k, v in sorted(params.items(), reverse=True))
    r = c.get("/x", headers={"Authorization": "DIGEST " + shuffled})
    assert r.status_code == 200, r.text


def test_uri_must_match_request_target(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    ok = digest_header(chal, algorithm="SHA-256", uri="/x?a=1", nc=1)
    assert c.get("/x?a=1", headers={"Authorization": ok}).status_code == 200
    no_query = digest_header(chal, algorithm="SHA-256", uri="/x", nc=2)
    assert c.get("/x?a=1", headers={"Authorization": no_query}).status_code == 401
    other = digest_header(chal, algorithm="SHA-256", uri="/y", nc=3)
    assert c.get("/x", headers={"Authorization": other}).status_code == 401
    assert [f[2] for f in env.failures] == ["uri does not match request"] * 2


def test_method_is_part_of_the_hash(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    header = digest_header(chal, algorithm="SHA-256", method="GET")
    assert c.request("POST", "/x", headers={"Authorization": header}).status_code == 401
    header = digest_header(chal, algorithm="SHA-256", method="POST", nc=2)
    assert c.request("POST", "/x", headers={"Authorization": header}).status_code == 200


# -- stale, replay, failure ------------------------------------------------------------


def test_expired_nonce_is_stale_not_a_failure(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    env.clock.now += 301
    r = c.get("/x", headers={"Authorization": digest_header(chal, algorithm="SHA-256")})
    assert r.status_code == 401
    digests = [v for v in r.headers.get_list("www-authenticate") if v.startswith("Digest")]
    assert len(digests) == 2 and all(", stale=true, " in v for v in digests)
    assert env.failures == []
    assert r.text == "Authentication required\n"
    # The fresh nonce from the stale challenge works at once.
    fresh = challenge(r, "SHA-256")
    r = c.get("/x", headers={"Authorization": digest_header(fresh, algorithm="SHA-256")})
    assert r.status_code == 200


def test_expired_nonce_with_wrong_password_is_a_failure(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    env.clock.now += 301
    bad = digest_header(chal, algorithm="SHA-256", password="wrong")
    r = c.get("/x", headers={"Authorization": bad})
    assert r.status_code == 401
    assert "stale" not in r.headers["www-authenticate"]
    assert env.failures == [(USER, "192.0.2.7", "wrong password or unknown user")]


def test_nonce_from_another_server_is_stale(env: Env, tmp_path: Path) -> None:
    other = Env(tmp_path / "other")
    other_chal = challenge(other.client().get("/x"), "MD5")
    r = env.client().get(
        "/x", headers={"Authorization": digest_header(other_chal, algorithm="MD5")}
    )
    assert r.status_code == 401
    assert "stale=true" in r.headers["www-authenticate"]
    assert env.failures == []


def test_replayed_nc_rejected(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    h1 = digest_header(chal, algorithm="SHA-256", nc=1)
    h5 = digest_header(chal, algorithm="SHA-256", nc=5)
    assert c.get("/x", headers={"Authorization": h1}).status_code == 200
    assert c.get("/x", headers={"Authorization": h1}).status_code == 401  # exact replay
    assert c.get("/x", headers={"Authorization": h5}).status_code == 200
    r = c.get("/x", headers={"Authorization": h5})  # replay of the highest
    assert r.status_code == 401
    assert "stale" not in r.headers["www-authenticate"]
    assert env.failures == [(USER, "192.0.2.7", "replayed nonce count")] * 2


def test_out_of_order_counts_within_the_window_are_accepted_once(env: Env) -> None:
    # Several connections sharing one nonce deliver their counts out of order.
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")

    def get(nc: int) -> int:
        header = digest_header(chal, algorithm="SHA-256", nc=nc)
        return c.get("/x", headers={"Authorization": header}).status_code

    assert [get(nc) for nc in (2, 1, 5, 3, 4)] == [200] * 5
    assert [get(nc) for nc in (1, 3, 5)] == [401] * 3
    assert get(100) == 200
    assert get(36) == 401  # 64 or more below the highest: too old to tell, refused
    assert get(99) == 200


def test_nc_zero_rejected(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    r = c.get("/x", headers={"Authorization": digest_header(chal, algorithm="SHA-256", nc=0)})
    assert r.status_code == 401


def test_tracker_eviction_never_allows_replay(tmp_path: Path) -> None:
    env = Env(tmp_path, max_tracked_nonces=2)
    c = env.client()
    chals = []
    for _ in range(3):
        chals.append(challenge(c.get("/x"), "MD5"))
        env.clock.now += 0.01
    for chal in chals:
        h = digest_header(chal, algorithm="MD5", nc=1)
        assert c.get("/x", headers={"Authorization": h}).status_code == 200
    # The first nonce was evicted while valid: a replay must not be accepted; it is
    # answered as stale so an honest client simply takes the new nonce.
    replay = digest_header(chals[0], algorithm="MD5", nc=1)
    r = c.get("/x", headers={"Authorization": replay})
    assert r.status_code == 401 and "stale=true" in r.headers["www-authenticate"]
    assert len(env.digest._seen) <= 2


def test_expired_entries_are_evicted(env: Env) -> None:
    c = env.client()
    for _ in range(3):
        chal = challenge(c.get("/x"), "MD5")
        c.get("/x", headers={"Authorization": digest_header(chal, algorithm="MD5")})
    assert len(env.digest._seen) == 3
    env.clock.now += 400
    chal = challenge(c.get("/x"), "MD5")
    assert c.get("/x", headers={"Authorization": digest_header(chal, algorithm="MD5")}).is_success
    assert len(env.digest._seen) == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"password": "wrong"}, "wrong password or unknown user"),
        ({"user": "mallory"}, "wrong password or unknown user"),
        ({"extra": ", userhash=true"}, "userhash=true not supported"),
    ],
)
def test_digest_failures_reported(env: Env, kwargs: dict[str, Any], reason: str) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    r = c.get(
        "/config/x",
        headers={
            "Authorization": digest_header(chal, algorithm="SHA-256", uri="/config/x", **kwargs)
        },
    )
    assert r.status_code == 401
    assert r.json() == {"status": "error", "error": {"code": 3, "message": "Authentication failed"}}
    assert env.failures == [(kwargs.get("user", USER), "192.0.2.7", reason)]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda h: h.replace("algorithm=SHA-256", "algorithm=MD5-sess"), "unsupported algorithm"),
        (lambda h: h.replace(f'realm="{REALM}"', 'realm="other"'), "wrong realm"),
        (lambda h: h.replace("qop=auth", "qop=auth-int"), "unsupported qop"),
        (lambda h: h.replace("nc=00000001", "nc=1"), "bad nc"),
        (lambda h: h.replace(', cnonce="0a4f113b"', ""), "missing cnonce"),
        (lambda h: h + ", userhash=maybe", "bad userhash"),
        (lambda h: h + ', username*="x"', "username* not supported"),
        (lambda h: h + ", nc=00000002", "malformed Digest header: duplicate parameter nc"),
        (
            lambda h: h + ', cnonce="unterminated',
            "malformed Digest header: cannot parse parameters",
        ),
    ],
)
def test_digest_bad_params(env: Env, edit: Any, reason: str) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    header = edit(digest_header(chal, algorithm="SHA-256"))
    assert c.get("/x", headers={"Authorization": header}).status_code == 401
    assert env.failures[0][2] == reason


def test_default_algorithm_is_md5(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "MD5")
    header = digest_header(chal, algorithm="MD5").replace("algorithm=MD5, ", "")
    assert c.get("/x", headers={"Authorization": header}).status_code == 200


# -- parser ----------------------------------------------------------------------------


def test_parse_params() -> None:
    text = ' a=1 ,, B="x, \\"y\\"\\\\" ,c = "" ,d=tok/en=,  '
    assert parse_params(text) == {"a": "1", "b": 'x, "y"\\', "c": "", "d": "tok/en="}
    assert parse_params("") == {}
    for bad in ['a="x', "a=1 b=2", "a", "=1", "a=1,a=2", "a=1, A=2", 'a=x"y"', "a=" + "x" * 9000]:
        with pytest.raises(MalformedHeader):
            parse_params(bad)


def _parsed(parse: Any, text: str) -> object:
    try:
        return parse(text)
    except MalformedHeader as exc:
        return ("malformed", str(exc))


_header_piece = st.sampled_from(
    ['username', 'nc', '=', '="v"', '="a,b"', '=tok', ', ', ',', ' ', '"', '\\"', "\\\\", "\t",
     "\n", "NC", '=""', 'q="a\\"b"', ";", "é", "\u2028", "\x0b", "a", "-", "1", "=x=y"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_header_piece, max_size=12).map("".join))
def test_parse_params_quick_path_agrees_with_the_walk(text: str) -> None:
    """The one-pass parse of headers without escapes answers as the walk, one parameter at a
    time, does: the same parameters, or the same complaint."""
    from vapixlog.auth.digest_header import _walk_params

    assert _parsed(parse_params, text) == _parsed(_walk_params, text)


# -- garbage never breaks the server ---------------------------------------------------

_latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
_param = st.tuples(
    st.sampled_from(
        [
            "username",
            "realm",
            "nonce",
            "uri",
            "response",
            "qop",
            "nc",
            "cnonce",
            "algorithm",
            "opaque",
            "userhash",
            "x",
        ]
    ),
    st.one_of(_latin1, st.sampled_from(["auth", "MD5", "SHA-256", "00000001", REALM, "/x"])),
    st.booleans(),
)


@st.composite
def authorization_values(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["raw", "digest", "basic", "params"]))
    if kind == "raw":
        return draw(st.binary(max_size=300))
    if kind == "basic":
        return b"Basic " + draw(_latin1).encode("latin-1")
    if kind == "digest":
        return b"Digest " + draw(_latin1).encode("latin-1")
    params = draw(st.lists(_param, max_size=12))
    parts = [
        f'{k}="{v.replace(chr(34), chr(92) + chr(34))}"' if quoted else f"{k}={v}"
        for k, v, quoted in params
    ]
    return ("Digest " + ", ".join(parts)).encode("latin-1")


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=authorization_values())
def test_garbage_authorization_is_always_401(env: Env, value: bytes) -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/config/x",
        "raw_path": b"/config/x",
        "query_string": b"",
        "headers": [(b"authorization", value)],
        "client": ("10.0.0.1", 1),
    }
    asyncio.run(env.app(scope, receive, send))
    assert sent[0]["status"] == 401
    assert len([h for h in sent[0]["headers"] if h[0] == b"www-authenticate"]) == 3
    assert b'"code":3' in sent[1]["body"]


def test_a_nonce_of_another_server_is_stale(env: Env) -> None:
    c = env.client()
    chal = challenge(c.get("/x"), "SHA-256")
    chal["nonce"] = chal["nonce"][:12] + "0" * 40  # right shape, not our HMAC
    r = c.get("/x", headers={"Authorization": digest_header(chal, algorithm="SHA-256")})
    assert r.status_code == 401
    assert "stale=true" in r.headers["www-authenticate"]
    assert env.failures == []
