"""The edge of the service (vapixlog.edge), end to end on a real server: hardening headers on
every page, refusal of cross-site state changes in each endpoint's dialect, JSON-only bodies,
and client addresses that only a trusted proxy can set. The browser-borne attacks themselves
run in Chromium in test_browser_attacks.py."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from servers import USERS, Server
from vapixlog.edge import STRICT_CSP, TrustedProxies
from vapixlog.edge.answers import send_answer
from vapixlog.edge.crosssite import cross_site_reason

ENABLED = "/config/rest/log/v1/persistent/enabled"
WRITE = "/config/rest/log/v1/writeMessage"
FIRMWARE = "/axis-cgi/firmwaremanagement.cgi"
THROTTLED = ["--brute-force-protection", "off"]
PAGES = [
    "/",
    "/logs",
    "/config/web-ui/cu-doc.html?md-doc-loc=/config/discover/apis/log/v1/doc.md",
    "/config/web-ui/swagger-ui/?url=/config/discover/openapi.json",
]


def _scope(method: str = "POST", **headers: str) -> dict[str, object]:
    raw = [
        (name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()
    ]
    return {"type": "http", "method": method, "scheme": "http", "headers": raw}


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"host": "device:8080"}, False),  # curl, httpx, requests: no browser headers
        ({"host": "device:8080", "origin": "http://device:8080"}, False),
        ({"host": "DEVICE:8080", "origin": "http://device:8080"}, False),
        ({"host": "device", "origin": "http://device:80"}, False),
        ({"host": "device:8080", "sec_fetch_site": "same-origin"}, False),
        ({"host": "device:8080", "sec_fetch_site": "none"}, False),
        ({"host": "device:8080", "origin": "http://attacker.test"}, True),
        ({"host": "device:8080", "origin": "http://device:8081"}, True),
        ({"host": "device:8080", "origin": "https://device:8080"}, True),
        ({"host": "device:8080", "origin": "null"}, True),
        ({"host": "device:8080", "origin": "http://[bad"}, True),
        ({"host": "device:8080", "referer": "http://attacker.test/x"}, True),
        ({"host": "device:8080", "referer": "http://device:8080/logs"}, False),
        ({"host": "device:8080", "sec_fetch_site": "cross-site"}, True),
        ({"host": "device:8080", "sec_fetch_site": "same-site"}, True),
        ({"origin": "http://device:8080"}, True),  # no Host: nothing to be the same as
    ],
)
def test_cross_site_reason(headers: dict[str, str], refused: bool) -> None:
    assert (cross_site_reason(_scope(**headers)) is not None) is refused


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy: header ignored
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),  # the nearest hop
        ("127.0.0.1", ["198.51.100.1, 10.0.0.5"], "198.51.100.1"),  # 10.0.0.5 is a proxy
        ("127.0.0.1", ["<script>"], "127.0.0.1"),  # not an address: the peer stays
        ("127.0.0.1", ["198.51.100.1, evil.example"], "127.0.0.1"),
        ("127.0.0.1", ["::ffff:198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
        ("127.0.0.1", ["10.0.0.5"], "127.0.0.1"),  # only proxies: the peer
    ],
)
def test_trusted_proxies_pick_the_nearest_untrusted_address(
    peer: str, forwarded: list[str], client: str
) -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert proxies.client(peer, forwarded) == client


def test_trusted_proxy_must_be_an_address(tmp_path: Path) -> None:
    result = subprocess.run(
        [*__import__("servers").VAPIXLOG, "serve", "--trusted-proxy", "proxy.example"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "proxy.example" in result.stderr and "Traceback" not in result.stderr


# -- headers --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_html_page_has_a_strict_policy(admin: httpx.Client, path: str) -> None:
    response = admin.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split(";")
    }
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # every script is a file: <script src=...>


def test_json_and_text_answers_are_never_sniffed(
    admin: httpx.Client, shared_server: Server
) -> None:
    """Wherever an answer is made (`vapixlog.edge.headers`): the DCA REST app's answers and
    errors, the Starlette app's CGIs and 404, and the answers of the plain ASGI layers (401 of
    authentication, 403 of the cross-site guard) under both."""
    json_type = {"content-type": "application/json"}
    answers = {
        "DCA 200": admin.get(ENABLED),
        "DCA 404": admin.get("/config/rest/log/v1/nothing"),
        "DCA 405": admin.delete(ENABLED),
        "DCA 400": admin.post(WRITE, content=b"{", headers=json_type),
        "DCA 415": admin.post(WRITE, content=b"{}"),
        "DCA 401": httpx.get(shared_server.url + ENABLED),
        "DCA 403": admin.post(WRITE, json={}, headers={"origin": "http://attacker.test"}),
        "CGI 200": admin.get("/axis-cgi/systemlog.cgi"),
        "CGI 401": httpx.get(shared_server.url + "/axis-cgi/systemlog.cgi"),
        "404": admin.get("/no/such/page"),
    }
    for name, response in answers.items():
        assert response.status_code == int(name[-3:]), (name, response.status_code)
        assert response.headers.get("x-content-type-options") == "nosniff", name
        assert "content-security-policy" not in response.headers, name


def test_an_html_answer_of_a_plain_layer_gets_the_page_headers() -> None:
    """The blocked address's 403 (Apache's HTML page) is sent by `send_answer`, on every path."""
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(send_answer(send, 403, b"<html></html>", b"text/html; charset=iso-8859-1"))
    headers = dict(sent[0]["headers"])  # type: ignore[call-overload]
    assert headers[b"content-security-policy"] == STRICT_CSP.encode()
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"x-content-type-options"] == b"nosniff"


def test_no_answer_names_the_python_server(admin: httpx.Client) -> None:
    """uvicorn's `server: uvicorn` is off: nothing like a device's (docs/fidelity.md)."""
    for response in (admin.get(ENABLED), admin.get("/axis-cgi/systemlog.cgi"), admin.get("/")):
        assert "server" not in response.headers, response.headers
        assert "date" in response.headers


@pytest.mark.parametrize(
    "source",
    [
        "/config/discover/../../axis-cgi/systemlog.cgi",
        "/config/discover/%2e%2e/%2e%2e/axis-cgi/systemlog.cgi",
        "/config/discover/apis/log/v1/doc.md/../../../../axis-cgi/systemlog.cgi",
        "/config/discover/apis/log/v1/doc.md?x=1",
        "//attacker.test/evil.md",
        "http://attacker.test/evil.md",
        "/axis-cgi/systemlog.cgi",
        "",
    ],
)
def test_doc_pages_show_only_the_devices_documents(admin: httpx.Client, source: str) -> None:
    for page, name in (("cu-doc.html", "md-doc-loc"), ("swagger-ui/", "url")):
        response = admin.get(f"/config/web-ui/{page}", params={name: source})
        assert response.status_code == 400, (page, source)
        assert response.headers["content-type"].startswith("text/plain")


# -- cross-site refusal and JSON bodies ------------------------------------------------


def test_cross_site_writes_are_refused_in_each_dialect(server: Server) -> None:
    evil = {"Origin": "http://attacker.test"}
    with client_for(server) as admin:
        dca = admin.patch(ENABLED, json={"data": True}, headers=evil)
        assert dca.status_code == 403
        assert dca.json()["error"]["code"] == 12
        assert admin.get(ENABLED).json()["data"] is False
        rpc = admin.post(FIRMWARE, json={"apiVersion": "1.0", "method": "reboot"}, headers=evil)
        assert rpc.status_code == 200
        assert rpc.json()["error"]["code"] == 403
        assert rpc.json()["apiVersion"] == "1.10"
        text = admin.post("/axis-cgi/systemlog.cgi", headers=evil)
        assert text.status_code == 403
        assert text.headers["content-type"].startswith("text/plain")
        # The same requests from the device's own pages, and from plain clients, go through.
        own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        assert admin.patch(ENABLED, json={"data": True}, headers=own).status_code == 200
        assert admin.patch(ENABLED, json={"data": False}).status_code == 200
        assert admin.post(WRITE, json={"data": {"msg": "same-origin"}}, headers=own).is_success
        # Reading is never refused: a cross-site GET cannot change anything.
        assert admin.get(ENABLED, headers=evil).json()["data"] is False


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_state_changes_need_a_json_body(server: Server, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    with client_for(server) as admin:
        boot = admin.get("/logs/status").json()["boot_id"]
        dca = admin.patch(ENABLED, content=b'{"data": true}', headers=headers)
        assert dca.status_code == 415
        assert dca.json()["error"]["code"] == 8
        clear = admin.post("/config/rest/log/v1/persistent/clearLog", headers=headers)
        assert clear.status_code == 415
        rpc = admin.post(
            FIRMWARE, content=b'{"apiVersion":"1.0","method":"reboot"}', headers=headers
        )
        assert rpc.status_code == 200
        assert rpc.json()["error"]["code"] == 400
        assert admin.get(ENABLED).json()["data"] is False
        time.sleep(0.3)
        assert admin.get("/logs/status").json()["boot_id"] == boot


# -- client addresses -----------------------------------------------------------------


def _wrong_logins(server: Server, count: int, forged: bool) -> float:
    """Seconds `count` wrong passwords take from 127.0.0.1, rotating X-Forwarded-For."""
    start = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for index in range(count):
            headers = {"X-Forwarded-For": f"198.51.100.{index + 1}"} if forged else {}
            if index == 0:
                headers["X-Forwarded-For"] = "<script>alert(1)</script>"
            response = client.get(ENABLED, auth=("root", "wrong"), headers=headers)
            assert response.status_code in (401, 429)
    return time.monotonic() - start


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Server]:
    """A device whose failed logins are throttled (the project's own protection)."""
    server = start_server(tmp_path / "state", *THROTTLED)
    yield server
    if server.proc:
        server.stop()


def test_forwarded_for_is_ignored_without_a_trusted_proxy(fresh: Server) -> None:
    # Five failures are free, then delays of 0.25, 0.5, 1, 2 s: 3.75 s for nine.
    assert _wrong_logins(fresh, 9, forged=True) >= 3.5
    with client_for(fresh) as admin:
        log = admin.get("/axis-cgi/systemlog.cgi").text + admin.get("/axis-cgi/auditlog.cgi").text
    assert "root@127.0.0.1 Authentication failed" in log
    assert "198.51.100." not in log and "<script>" not in log


def test_forwarded_for_is_honoured_from_a_trusted_proxy(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--trusted-proxy", "127.0.0.1", *THROTTLED)
    try:
        assert _wrong_logins(server, 9, forged=True) < 3.0  # nine addresses: none throttled
        with client_for(server) as admin:
            log = admin.get("/axis-cgi/auditlog.cgi").text
        assert "Authentication: root@198.51.100.2 Authentication failed (HTTP/S)." in log
        assert "<script>" not in log  # not an address: the proxy's own was used
        assert "Authentication: root@127.0.0.1 Authentication failed (HTTP/S)." in log
    finally:
        server.stop()


# -- throttling never locks out an admin who is logged in ------------------------------


def test_a_guesser_does_not_lock_out_the_logged_in_admin(fresh: Server) -> None:
    """An attacker at the admin's own address keeps wrong passwords for root pending; the
    admin's Digest client (its nonce proved the password) and other users keep working."""
    import threading

    stop = threading.Event()
    attacker_statuses: list[int] = []

    def attack() -> None:
        with httpx.Client(base_url=fresh.url, timeout=30) as client:
            while not stop.is_set():
                attacker_statuses.append(client.get(ENABLED, auth=("root", "wrong")).status_code)

    with client_for(fresh, digest=True) as admin:
        assert admin.get(ENABLED).status_code == 200  # logged in before the attack
        threads = [threading.Thread(target=attack) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 10
            while attacker_statuses.count(429) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert attacker_statuses.count(429) >= 5  # the attacker is being refused
            statuses = []
            for _ in range(20):
                start = time.monotonic()
                statuses.append(admin.get(ENABLED).status_code)
                assert time.monotonic() - start < 1.0
            assert statuses == [200] * 20
            with client_for(fresh, "op") as operator:
                assert operator.get(ENABLED).status_code == 200
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    assert USERS["root"][1] != "wrong"


# -- clients that are not browsers are not affected ------------------------------------


def test_plain_clients_change_state_as_before(server: Server) -> None:
    """curl, requests and ax-devil-device-api send no Origin: the refusal never sees them."""
    import requests
    from ax_devil_device_api import Client, DeviceConfig

    password = USERS["root"][1]
    curl = subprocess.run(
        ["curl", "-s", "--digest", "-u", f"root:{password}", "-X", "PATCH", "-H",
         "Content-Type: application/json", "-d", '{"data": true}', server.url + ENABLED],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert curl.stdout == '{"status":"success"}'
    reply = requests.post(
        server.url + WRITE,
        json={"data": {"msg": "from requests"}},
        auth=requests.auth.HTTPDigestAuth("root", password),
        timeout=10,
    )
    assert reply.json() == {"status": "success"}
    config = DeviceConfig.http("127.0.0.1", "root", password, port=server.port)
    with Client(config) as device:
        report = device.device_debug.download_server_report()
    assert report[:2] == b"PK"  # a zip
    with client_for(server) as admin:
        assert admin.get(ENABLED).json()["data"] is True
        assert "from requests" in admin.get("/axis-cgi/systemlog.cgi").text
