"""Attacks on the device from a real browser (issue 11): Debian's Chromium, driven by Playwright,
logged in to the device as its administrator (credentials for the device's origin only), visits
an attacker's site, and opens the device's own pages with hostile parameters.

What it proves:

- A page of another origin cannot make the admin's browser change the device: no reboot, no
  change of the persistent-logging setting, no clearing of the persistent log, no message
  written. Every vector a page has without the device's consent is tried (forms in the three
  encodings, also from an opaque origin and without a referrer; fetch in no-cors and cors mode
  with a Blob, text/plain and form bodies; PUT, PATCH and JSON, which need a CORS preflight;
  sendBeacon) against the reboot CGI and every setter and trigger of the Log API, at v1 and
  v1alpha. restart.cgi reboots on a GET, which any page can make the browser send: links,
  `window.open`, `location`, meta refresh, a form GET, a 302 of the attacker's, images (also
  without a referrer), scripts, style sheets, frames and no-cors fetch; each is refused.
- A page of another site can make the admin's browser fail logins as root from his own
  address (a user name and password in a URL it navigates to). Under the device's brute-force
  block that blocks the address, as it would on a device (docs/security.md, residual risks);
  under the project's throttle, his logged-in Digest client there must still get in.
- Foreign text in the log (messages an integration writes, over Basic or Digest; an unknown
  user name in a failed login is no longer written as sent) stays text:
  the log page shows it as text, and the documentation pages (cu-doc.html, Swagger UI) load
  only the device's own documents whatever path tricks or foreign URLs their parameter holds.
  Every HTML page carries a strict Content-Security-Policy, nosniff and no-referrer.
- The defences do not break the device's own pages: the log page still writes messages and
  switches persistent logging, and the documentation still renders.

After every attack the API (a non-browser client) shows the state unchanged: same boot id,
persistent logging on, the marker written before the attack still in the persistent log, and
no new log line of a successful attack (`ATTACK_TRACE`).

No test can pass vacuously. Every attack page reports to the attacker's server what each of its
requests did; the browser must be seen sending every request that needs no preflight, and the
device must answer every top-level one (which carries the admin's login) with something else
than 401. Controls show that the same pages, against a device without defences (`BareDevice`),
deliver those requests with the admin's login and the payload intact; that the payloads
planted in the log run when rendered as HTML; and that the state-changing payloads, sent by a
non-browser client (no `Origin`, as JSON; restart.cgi by a plain GET), do change a device and
the state oracle reports each change.

Chromium keys its HTTP auth cache by top-level site and asks for no login on a subresource of
another site, so from another site only top-level navigations carry the admin's login (the
forms open new windows); from the same site every request does. Hence the sites:

- `ip`: device at http://127.0.0.1, attacker at http://127.0.0.2 (another site). Both are
  potentially trustworthy, so Chromium sends `Sec-Fetch-*`.
- `names`: the same servers as http://device.test and http://attacker.test (Chromium's host
  resolver rules), which are not potentially trustworthy: Chromium sends no `Sec-Fetch-*`, so
  the refusals must rest on `Origin`.
- `same-site` (the CSRF tests only): the attacker on another port of 127.0.0.1, as another
  service on the device's host would be. Here fetch and sendBeacon carry the login too.
- `same-site-names` (the restart.cgi tests only): the device at http://device.test, the
  attacker at http://evil.device.test, as another host of the device's domain would be. Every
  request carries the login, and none carries `Sec-Fetch-*`: a GET with no-referrer carries
  neither `Origin` nor `Referer` either, so only the browser's other headers show it.

Everything listens on loopback only.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import operator
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Dialog,
    HttpCredentials,
    Request,
    Response,
    sync_playwright,
)

from chromium import CHROMIUM, CHROMIUM_ARGS
from conftest import client_for, start_server
from servers import USERS, Server

DEVICE_ADDRESS = "127.0.0.1"
ATTACKER_ADDRESS = "127.0.0.2"  # another site than the device's
HOST_RULES = (
    f"MAP device.test {DEVICE_ADDRESS}, MAP attacker.test {ATTACKER_ADDRESS}, "
    f"MAP evil.device.test {DEVICE_ADDRESS}"
)
LOG_API = "/config/rest/log/v1"
DOC_PAGE = "/config/web-ui/cu-doc.html"
SWAGGER_PAGE = "/config/web-ui/swagger-ui/"
REAL_DOC = "/config/discover/apis/log/v1/doc.md"
REAL_SPEC = "/config/discover/apis/log/v1/openapi.json"
# Where the documentation pages may load from: themselves, their scripts and the documents.
DOC_PAGE_SOURCES = ("/config/web-ui/", "/config/discover/", "/favicon.ico")
# Log lines that only a successful attack writes: a message of the attacker's, or the audit
# entry of a reboot request, a switched-off or cleared persistent log, a remote syslog change.
ATTACK_TRACE = re.compile(
    r"\]: PWNED-|: Entity Management: \S+ Restart\.|"
    r"configured log\.v1\.persistent\.(enabled \(false\)|clearLog)|configured API\.RemoteSyslog1"
)
JSON_TYPE = {"Content-Type": "application/json"}
_T = TypeVar("_T")
WAIT = 10.0  # seconds an attack may take to run in the browser


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ----- the sites -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """How the browser addresses the device and the attacker (origins, no trailing slash)."""

    name: str
    device: str
    attacker: str

    @property
    def same_site(self) -> bool:
        """The attacker's pages are of the device's site: every request carries the login."""
        return self.name.startswith("same-site")

    @property
    def trustworthy(self) -> bool:
        """Potentially trustworthy origins (loopback addresses): Chromium sends Sec-Fetch-*."""
        return self.name in ("ip", "same-site")

    @property
    def device_netloc(self) -> str:
        return urlsplit(self.device).netloc

    @property
    def attacker_netloc(self) -> str:
        return urlsplit(self.attacker).netloc


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


class LoopbackServer:
    """Stdlib HTTP servers on loopback addresses (a free port each), in threads; `handler`
    finds this object as `self.server.owner`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *addresses: str) -> None:
        self.ports: dict[str, int] = {}
        self._servers: list[_LoopbackHTTPServer] = []
        for address in addresses:
            httpd = _LoopbackHTTPServer((address, 0), handler)
            httpd.owner = self
            self.ports[address] = int(httpd.server_address[1])
            self._servers.append(httpd)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        for httpd in self._servers:
            httpd.shutdown()
            httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _LoopbackHTTPServer

    def send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class AttackerPage:
    content_type: str
    body: bytes


class Attacker(LoopbackServer):
    """The attacker's site: generated pages, served on 127.0.0.2 (another site than the
    device) and on 127.0.0.1 (the same site, another port). A page reports what its attacks
    did with `GET /report/<page>?r=<json>`. Every response lets any origin read it (CORS), so
    only the device's own pages can keep themselves from loading the attacker's documents."""

    def __init__(self) -> None:
        self.pages: dict[str, AttackerPage] = {}
        self.reports: dict[str, dict[str, str]] = {}
        super().__init__(_AttackerHandler, ATTACKER_ADDRESS, DEVICE_ADDRESS)

    def put(self, path: str, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        self.pages[path] = AttackerPage(content_type, body.encode())


# The attacker's pages that send the browser on to `?to=URL`: a 302, a script that sets
# `location`, a meta refresh.
_HOP_PAGES = {
    "location": "<!doctype html><script>location = {to_js}</script>",
    "refresh": '<!doctype html><meta http-equiv="refresh" content="0; url={to_html}">',
}


class _AttackerHandler(_Handler):
    def do_GET(self) -> None:
        attacker: Attacker = self.server.owner
        path, _, query = self.path.partition("?")
        if path.startswith("/report/"):
            report = parse_qs(query).get("r", ["{}"])[0]
            attacker.reports[path.removeprefix("/report/")] = json.loads(report)
            self.send(204, "text/plain", b"")
            return
        to = parse_qs(query).get("to", [""])[0]
        if path == "/redirect":
            self.send(302, "text/plain", b"", {"Location": to})
            return
        if path.removeprefix("/") in _HOP_PAGES:
            hop = _HOP_PAGES[path.removeprefix("/")].format(
                to_js=json.dumps(to).replace("</", "<\\/"), to_html=html.escape(to)
            )
            self.send(200, "text/html; charset=utf-8", hop.encode())
            return
        page = attacker.pages.get(path)
        if page is None:
            self.send(404, "text/plain", b"not found\n")
        else:
            self.send(200, page.content_type, page.body, {"Access-Control-Allow-Origin": "*"})


@dataclass(frozen=True)
class Received:
    """A request as an undefended device sees it."""

    method: str
    path: str
    vector: str | None
    authorized: bool
    origin: str | None
    referer: str | None
    fetch_site: str | None
    body: bytes
    login: str | None = None  # the user name of Basic credentials, right or wrong
    at: float = 0.0  # time.monotonic() on arrival


class BareDevice(LoopbackServer):
    """A device without any defence, on 127.0.0.1: Basic auth (root), and every authorized
    request "succeeds". It shows which requests of an attack page carry the admin's login."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        super().__init__(_BareDeviceHandler, DEVICE_ADDRESS)


class _BareDeviceHandler(_Handler):
    def do_GET(self) -> None:
        bare: BareDevice = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        login = base64.b64encode(f"root:{USERS['root'][1]}".encode()).decode()
        authorized = self.headers.get("Authorization") == f"Basic {login}"
        given = self.headers.get("Authorization", "")
        user = None
        if given.startswith("Basic "):
            user = base64.b64decode(given.removeprefix("Basic ")).decode().partition(":")[0]
        received = Received(
            self.command,
            urlsplit(self.path).path,
            _vector_of(self.path),
            authorized,
            self.headers.get("Origin"),
            self.headers.get("Referer"),
            self.headers.get("Sec-Fetch-Site"),
            body,
            user,
            time.monotonic(),
        )
        bare.received.append(received)
        if authorized:
            self.send(200, "text/plain", b"done\n")
        else:
            self.send(401, "text/plain", b"", {"WWW-Authenticate": 'Basic realm="bare"'})

    do_POST = do_PUT = do_PATCH = do_OPTIONS = do_GET


# ----- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The victim, with persistent logging on and XSS payloads planted in its log."""
    server = start_server(tmp_path_factory.mktemp("attacks") / "state", "--reboot-downtime", "0.5")
    with client_for(server) as api:
        set_persistent(api, True)
        ensure_planted(api)
    yield server
    if server.proc:
        server.stop()


@pytest.fixture(scope="module")
def api(device: Server) -> Iterator[httpx.Client]:
    """The admin through the API, as a non-browser client: Basic auth, no `Origin`."""
    with client_for(device) as client:
        yield client


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    server.put("/evil.md", f"# Evil\n\n{EVIL_HTML}\n", "text/markdown; charset=utf-8")
    yield server
    server.close()


@pytest.fixture
def bare() -> Iterator[BareDevice]:
    device = BareDevice()
    yield device
    device.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: 'make test' installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules={HOST_RULES}"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=["ip", "names"])
def site(request: pytest.FixtureRequest, device: Server, attacker: Attacker) -> Site:
    """`ip` and `names` (see the module doc); the CSRF tests also run `same-site`: the
    attacker on the device's own address, another port (its pages are same-site), and the
    restart.cgi tests `same-site-names`: the same by names, another host of the domain."""
    other_site = attacker.ports[ATTACKER_ADDRESS]
    if request.param == "ip":
        return Site(
            "ip",
            f"http://{DEVICE_ADDRESS}:{device.port}",
            f"http://{ATTACKER_ADDRESS}:{other_site}",
        )
    if request.param == "names":
        return Site(
            "names", f"http://device.test:{device.port}", f"http://attacker.test:{other_site}"
        )
    same_site = attacker.ports[DEVICE_ADDRESS]
    if request.param == "same-site-names":
        return Site(
            "same-site-names",
            f"http://device.test:{device.port}",
            f"http://evil.device.test:{same_site}",
        )
    assert request.param == "same-site"
    return Site(
        "same-site",
        f"http://{DEVICE_ADDRESS}:{device.port}",
        f"http://{DEVICE_ADDRESS}:{same_site}",
    )


ALL_SITES = pytest.mark.parametrize("site", ["ip", "names", "same-site"], indirect=True)
RESTART_SITES = pytest.mark.parametrize(
    "site", ["ip", "names", "same-site", "same-site-names"], indirect=True
)


@pytest.fixture
def session(browser: Browser, site: Site) -> Iterator[Session]:
    tab = Session(browser, site)
    yield tab
    tab.close()


@pytest.fixture
def baseline(device: Server, api: httpx.Client) -> Baseline:
    return Baseline(device, api)


# ----- the device's state, through the API -----------------------------------------------------


def wait_ready(api: httpx.Client, timeout: float = 15.0) -> None:
    """Wait until the device answers the Log API (it may be rebooting after an attack)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if api.get(f"{LOG_API}/persistent/enabled").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the device did not come back"
        time.sleep(0.05)


def persistent_enabled(api: httpx.Client) -> bool:
    reply = api.get(f"{LOG_API}/persistent/enabled")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "success", body
    return bool(body["data"])


def set_persistent(api: httpx.Client, enabled: bool) -> None:
    reply = api.patch(f"{LOG_API}/persistent/enabled", json={"data": enabled})
    assert reply.status_code == 200, reply.text


def write(api: httpx.Client, msg: str) -> None:
    reply = api.post(f"{LOG_API}/writeMessage", json={"data": {"msg": msg, "severity": 6}})
    assert reply.status_code == 200, reply.text


def boot_id(api: httpx.Client) -> str:
    reply = api.get("/logs/status")
    assert reply.status_code == 200, reply.text
    return str(reply.json()["boot_id"])


def system_log(api: httpx.Client) -> str:
    reply = api.get("/axis-cgi/systemlog.cgi")
    assert reply.status_code == 200, reply.text
    return reply.text


def audit_log(api: httpx.Client) -> str:
    reply = api.get("/axis-cgi/auditlog.cgi")
    assert reply.status_code == 200, reply.text
    return reply.text


class Baseline:
    """The device's state before an attack: persistent logging on, a marker in the persistent
    log, the boot id and every log line. `assert_unchanged` checks it all after the attack."""

    def __init__(self, server: Server, api: httpx.Client) -> None:
        self.server = server
        self.api = api
        wait_ready(api)
        if not persistent_enabled(api):
            set_persistent(api, True)
        self.marker = unique("MARKER")
        write(api, self.marker)
        assert self.marker in server.persistent_text()
        self.boot_id = boot_id(api)
        self.lines = self._lines()

    def _lines(self) -> set[str]:
        return (
            set(system_log(self.api).splitlines())
            | set(audit_log(self.api).splitlines())
            | set(self.server.persistent_text().splitlines())
        )

    def assert_unchanged(self, attacks: str = "") -> None:
        """`attacks`: what the browser saw, for the failure message."""
        wait_ready(self.api)
        problems = []
        traces = sorted(line for line in self._lines() - self.lines if ATTACK_TRACE.search(line))
        if traces:
            problems.append("the log shows a successful attack:\n  " + "\n  ".join(traces))
        if boot_id(self.api) != self.boot_id:
            problems.append("the device rebooted")
        if not persistent_enabled(self.api):
            problems.append("persistent logging was turned off")
        if self.marker not in self.server.persistent_text():
            problems.append("the persistent log was cleared")
        if attacks and problems:
            problems.append(f"what the attack page saw:\n{attacks}")
        assert not problems, "\n".join(problems)


# ----- payloads planted in the log (stored XSS) ------------------------------------------------

# What a planted payload runs: write to the log with the victim's credentials, and say so.
XSS_JS = (
    "fetch('/config/rest/log/v1/writeMessage',{method:'POST',headers:{'Content-Type':"
    "'application/json'},body:JSON.stringify({data:{msg:'PWNED-XSS',severity:6}})});"
    "window.__pwned=1"
)
# As the issue gives it, planted as it is: a text-rendering check.
LITERAL_PAYLOAD = f'<img src=x onerror="{XSS_JS}">'


def encoded_payload(tag: str) -> str:
    """A payload that survives the log's quoting: no quote, colon, backslash or backtick."""
    script = base64.b64encode(XSS_JS.encode()).decode().rstrip("=")
    return f"<img src=x id=xss-{tag} alt={script} onerror=eval(atob(this.alt))>"


EVIL_HTML = '<img src=x onerror="window.__pwned=1">'


def _plant(url: str, text: str, auth: httpx.Auth) -> None:
    """An integration writes `text` into the log (often text it got from elsewhere): since
    unknown user names are no longer written as sent (DECISIONS 20), messages are how foreign
    text gets there."""
    reply = httpx.post(
        f"{url}{LOG_API}/writeMessage", json={"data": {"msg": text, "severity": 6}}, auth=auth
    )
    assert reply.status_code == 200, reply.text


def plant_basic(url: str, text: str) -> None:
    _plant(url, text, httpx.BasicAuth("root", USERS["root"][1]))


def plant_digest(url: str, text: str) -> None:
    _plant(url, text, httpx.DigestAuth("root", USERS["root"][1]))


def ensure_planted(api: httpx.Client) -> str:
    """Plant the payloads unless the current boot's log has them; return the log."""
    log = system_log(api)
    if "id=xss-basic" in log and "id=xss-digest" in log:
        return log
    url = str(api.base_url).rstrip("/")
    plant_basic(url, LITERAL_PAYLOAD)
    plant_digest(url, LITERAL_PAYLOAD)
    plant_basic(url, encoded_payload("basic"))
    plant_digest(url, encoded_payload("digest"))
    log = system_log(api)  # a success: also ends the failed-login episode
    for tag in ("basic", "digest"):
        assert encoded_payload(tag) in log, f"the {tag} payload did not reach the log"
    assert log.count('<img src=x onerror="fetch(') >= 2, "the literal payloads are missing"
    return log


# ----- the browser -------------------------------------------------------------------------------


class Session:
    """The admin's browser: one context whose credentials are for the device's origin only
    (or `device`'s; none when not `logged_in`), one page, and everything the context
    requested, got answered and was asked."""

    def __init__(
        self, browser: Browser, site: Site, device: str | None = None, *, logged_in: bool = True
    ) -> None:
        self.site = site
        credentials: HttpCredentials = {
            "username": "root",
            "password": USERS["root"][1],
            "origin": device or site.device,
        }
        self.context = browser.new_context(http_credentials=credentials if logged_in else None)
        self.page = self.context.new_page()
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.failed: list[Request] = []
        self.dialogs: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request))
        self.context.on("response", lambda response: self.responses.append(response))
        self.context.on("requestfailed", lambda request: self.failed.append(request))
        self.page.on("dialog", self._dialog)

    def log_in(self, device: str) -> None:
        """Visit the device first, as its admin does: the browser then holds the login for
        the whole device (a top-level path) and sends it with later top-level requests."""
        response = self.page.goto(f"{device}/logs")
        assert response is not None and response.status == 200

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def wait_until(self, condition: Callable[[], bool], timeout: float = WAIT) -> bool:
        """Let the browser run (and Playwright deliver its events) until `condition`."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.page.wait_for_timeout(25)
        return True

    def settle(self) -> None:
        """Let images fail and their handlers run (a planted payload fires on `error`)."""
        self.page.wait_for_function(
            "() => [...document.images].every((image) => image.complete)", timeout=5_000
        )
        self.page.wait_for_timeout(200)

    def foreign_requests(self) -> list[str]:
        return [r.url for r in self.requests if urlsplit(r.url).netloc != self.site.device_netloc]

    def assert_no_script_ran(self) -> None:
        """No planted or foreign script ran: no flag, no dialog, no `img[src=x]` element."""
        pwned = self.page.evaluate("() => window.__pwned")
        assert pwned is None, "a planted payload ran in the page"
        assert self.dialogs == []
        assert self.page.locator("img[src='x']").count() == 0

    def close(self) -> None:
        self.context.close()


# ----- cross-site request forgery: vectors, targets and the attack page ---------------------------


@dataclass(frozen=True)
class Vector:
    """One way for a page to make the browser send a request.

    `simple`: sent without asking the device first (no CORS preflight), so it reaches the
    device. `top_level`: a top-level navigation (the forms open new windows). Chromium keys
    its HTTP auth cache by the top-level site and asks for no login on a subresource or frame
    of another site, so from another site only top-level navigations carry the admin's login;
    from the same site (another port of the device's host) every simple request does (see
    `carries_login`). The other vectors are tried anyway, for browsers that differ."""

    name: str
    method: str = "POST"
    simple: bool = True
    top_level: bool = False

    def carries_login(self, site: Site) -> bool:
        return self.simple and (self.top_level or site.same_site)


VECTORS = [
    Vector("form-text-plain", top_level=True),
    Vector("form-urlencoded", top_level=True),
    Vector("form-multipart", top_level=True),
    Vector("form-sandboxed", top_level=True),  # from an opaque origin: Origin: null
    Vector("form-no-referrer", top_level=True),  # Referrer-Policy no-referrer: Origin: null
    Vector("fetch-no-cors-blob"),  # a Blob without a type: no Content-Type at all
    Vector("fetch-no-cors-text"),
    Vector("fetch-no-cors-urlencoded"),
    Vector("fetch-no-cors-no-referrer"),
    Vector("fetch-cors-text"),  # a simple CORS request: sent, only the answer is withheld
    Vector("beacon-blob"),
    Vector("beacon-text"),
    Vector("fetch-cors-json", simple=False),
    Vector("fetch-put-json", "PUT", simple=False),
    Vector("fetch-patch-json", "PATCH", simple=False),
    Vector("fetch-no-cors-patch", "PATCH", simple=False),  # the browser refuses it
]
SIMPLE_VECTORS = [vector for vector in VECTORS if vector.simple]
# Ways a page makes the browser GET a URL (restart.cgi reboots on GET), none needing a
# preflight: top-level navigations in new windows, directly or through one of the attacker's
# pages, and subresources. Those with no-referrer carry neither Origin nor Referer.
GET_VECTORS = [
    Vector("nav-link", "GET", top_level=True),  # a link, clicked
    Vector("nav-window-open", "GET", top_level=True),
    Vector("nav-location", "GET", top_level=True),  # an attacker's page sets `location`
    Vector("nav-meta-refresh", "GET", top_level=True),
    Vector("nav-redirect", "GET", top_level=True),  # the attacker's server answers 302
    Vector("form-get", "GET", top_level=True),
    Vector("img", "GET"),
    Vector("img-no-referrer", "GET"),
    Vector("img-redirect", "GET"),
    Vector("script", "GET"),
    Vector("stylesheet", "GET"),
    Vector("iframe", "GET"),
    Vector("fetch-no-cors-get-no-referrer", "GET"),
]
NO_REFERRER_VECTORS = {"img-no-referrer", "fetch-no-cors-get-no-referrer"}


@dataclass(frozen=True)
class Target:
    """A state-changing request: where, with what JSON body, and the method that works."""

    path: str
    body: dict[str, Any]
    method: str = "POST"

    @property
    def json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))

    @property
    def form_field(self) -> tuple[str, str]:
        """(name, value) of a form field whose text/plain encoding `name=value` is this JSON
        body with one more member, "x": "=" (ignored by the CGI and with ?strict=false)."""
        return self.json[:-1] + ',"x":"', '"}'

    @property
    def form_body(self) -> str:
        name, value = self.form_field
        return f"{name}={value}\r\n"

    def url(self, origin: str, vector: str) -> str:
        glue = "&" if "?" in self.path else "?"
        return f"{origin}{self.path}{glue}vector={vector}"


REBOOT = Target(
    "/axis-cgi/firmwaremanagement.cgi", {"apiVersion": "1.0", "method": "reboot", "context": "x"}
)
RESTART = Target("/axis-cgi/restart.cgi", {}, "GET")  # the legacy reboot, on GET
_ATTACKER_SYSLOG = {
    "address": "192.0.2.66",
    "port": 514,
    "protocol": "UDP",
    "syslogFormat": "RFC5424",
    "severity": "Debug",
    "type": "All",
}
# Sending the device's log to an attacker's server, or turning forwarding off.
REMOTE_SYSLOG_TARGETS = {
    "setup": Target(
        "/axis-cgi/remotesyslog.cgi",
        {
            "apiVersion": "1.0",
            "context": "x",
            "method": "setup",
            "params": {"servers": [_ATTACKER_SYSLOG]},
        },
    ),
    "disable": Target(
        "/axis-cgi/remotesyslog.cgi", {"apiVersion": "1.0", "context": "x", "method": "disable"}
    ),
}
WRITE = {"data": {"msg": "PWNED-CSRF", "severity": 6}}
V1ALPHA = "/config/rest/log/v1alpha"
LOG_API_TARGETS = {
    "v1-writeMessage": Target(f"{LOG_API}/writeMessage?strict=false", WRITE),
    "v1alpha-writeMessage": Target(f"{V1ALPHA}/writeMessage?strict=false", WRITE),
    "v1-clearLog": Target(f"{LOG_API}/persistent/clearLog?strict=false", {"data": {}}),
    "v1alpha-clearLog": Target(f"{V1ALPHA}/persistent/clearLog?strict=false", {"data": {}}),
    "v1-enabled": Target(f"{LOG_API}/persistent/enabled?strict=false", {"data": False}, "PATCH"),
    "v1alpha-enabled": Target(
        f"{V1ALPHA}/persistent/enabled?strict=false", {"data": False}, "PATCH"
    ),
    "v1-persistent": Target(
        f"{LOG_API}/persistent?strict=false", {"data": {"enabled": False}}, "PATCH"
    ),
    "v1-root": Target(
        f"{LOG_API}?strict=false", {"data": {"persistent": {"enabled": False}}}, "PATCH"
    ),
}

# Runs every attack of the page's config in turn, then reports what each did.
_RUNNER = """
"use strict";
(async () => {
  const config = JSON.parse(document.getElementById("config").textContent);
  const encodings = {
    "form-text-plain": "text/plain",
    "form-urlencoded": "application/x-www-form-urlencoded",
    "form-multipart": "multipart/form-data",
  };
  const blob = (a) => new Blob([a.body]);
  const text = { "Content-Type": "text/plain" };
  const json = { "Content-Type": "application/json" };
  const inits = {
    "fetch-no-cors-blob": (a) => ({ mode: "no-cors", body: blob(a) }),
    "fetch-no-cors-text": (a) => ({ mode: "no-cors", headers: text, body: a.body }),
    "fetch-no-cors-urlencoded": (a) => ({
      mode: "no-cors", body: new URLSearchParams([[a.name, a.value]]),
    }),
    "fetch-no-cors-no-referrer": (a) => ({
      mode: "no-cors", referrerPolicy: "no-referrer", body: blob(a),
    }),
    "fetch-cors-text": (a) => ({ mode: "cors", headers: text, body: a.body }),
    "fetch-cors-json": (a) => ({ mode: "cors", headers: json, body: a.body }),
    "fetch-put-json": (a) => ({ mode: "cors", headers: json, body: a.body }),
    "fetch-patch-json": (a) => ({ mode: "cors", headers: json, body: a.body }),
    "fetch-no-cors-patch": (a) => ({ mode: "no-cors", body: blob(a) }),
    "fetch-no-cors-get-no-referrer": () => ({ mode: "no-cors", referrerPolicy: "no-referrer" }),
  };
  const add = (tag, properties) => {
    const element = Object.assign(document.createElement(tag), properties);
    document.body.append(element);
    return element;
  };
  const via = (hop, url) => `/${hop}?to=${encodeURIComponent(url)}`;
  const gets = {
    "nav-link": (a) => add("a", { href: a.url, target: "_blank" }).click(),
    "nav-window-open": (a) => window.open(a.url),
    "nav-location": (a) => window.open(via("location", a.url)),
    "nav-meta-refresh": (a) => window.open(via("refresh", a.url)),
    "nav-redirect": (a) => window.open(via("redirect", a.url)),
    "form-get": (a) => {
      const form = add("form", { method: "get", action: a.url, target: "_blank" });
      form.append(Object.assign(document.createElement("input"), {
        type: "hidden", name: "vector", value: a.vector,
      }));
      form.submit();
    },
    "img": (a) => add("img", { src: a.url }),
    "img-no-referrer": (a) => add("img", { src: a.url, referrerPolicy: "no-referrer" }),
    "img-redirect": (a) => add("img", { src: via("redirect", a.url) }),
    "script": (a) => add("script", { src: a.url }),
    "stylesheet": (a) => add("link", { rel: "stylesheet", href: a.url }),
    "iframe": (a) => add("iframe", { src: a.url }),
  };
  const results = {};
  for (const a of config.attacks) {
    try {
      if (a.vector in gets) {
        gets[a.vector](a);
        results[a.vector] = "sent";
      } else if (a.vector in inits) {
        const init = { method: a.method, credentials: "include", ...inits[a.vector](a) };
        const response = await fetch(a.url, init);
        results[a.vector] = `answered (${response.type} ${response.status})`;
      } else if (a.vector in encodings) {
        const form = document.createElement("form");
        form.method = "post";
        form.enctype = encodings[a.vector];
        form.action = a.url;
        form.target = "_blank";
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = a.name;
        input.value = a.value;
        form.append(input);
        document.body.append(form);
        form.submit();
        results[a.vector] = "submitted";
      } else if (a.srcdoc) {
        const frame = document.createElement("iframe");
        if (a.sandbox) frame.sandbox = a.sandbox;
        frame.srcdoc = a.srcdoc;
        document.body.append(frame);
        results[a.vector] = "framed";
      } else if (a.vector === "beacon-blob") {
        results[a.vector] = `queued: ${navigator.sendBeacon(a.url, blob(a))}`;
      } else if (a.vector === "beacon-text") {
        results[a.vector] = `queued: ${navigator.sendBeacon(a.url, a.body)}`;
      } else {
        results[a.vector] = "unknown vector";
      }
    } catch (error) {
      results[a.vector] = `refused by the browser: ${error}`;
    }
  }
  const report = encodeURIComponent(JSON.stringify(results));
  await fetch(`/report/${config.page}?r=${report}`);
})();
"""
# A frame's document that submits a text/plain form into a new top-level window at once.
_AUTO_FORM = (
    '{head}<form method="post" enctype="text/plain" target="_blank" action="{url}">'
    '<input type="hidden" name="{name}" value="{value}"></form>'
    "<script>document.forms[0].submit()</script>"
)
_FRAMED_FORMS = {
    "form-sandboxed": ("", "allow-forms allow-scripts allow-popups allow-popups-to-escape-sandbox"),
    "form-no-referrer": ('<meta name="referrer" content="no-referrer">', ""),
}


def attack_page(page: str, origin: str, target: Target, vectors: list[Vector]) -> str:
    """An attacker page that sends `target` to the device at `origin` by each of `vectors`."""
    name, value = target.form_field
    attacks = []
    for vector in vectors:
        url = target.url(origin, vector.name)
        attack = {
            "vector": vector.name,
            "method": vector.method,
            "url": url,
            "body": target.json,
            "name": name,
            "value": value,
        }
        if vector.name in _FRAMED_FORMS:
            head, attack["sandbox"] = _FRAMED_FORMS[vector.name]
            escaped = {
                k: html.escape(v) for k, v in {"url": url, "name": name, "value": value}.items()
            }
            attack["srcdoc"] = _AUTO_FORM.format(head=head, **escaped)
        attacks.append(attack)
    config = json.dumps({"page": page, "attacks": attacks}).replace("</", "<\\/")
    return (
        "<!doctype html><meta charset=utf-8><title>Cute cats</title><body>\n"
        f'<script type="application/json" id="config">{config}</script>\n'
        f"<script>{_RUNNER}</script>"
    )


@dataclass
class Outcome:
    """What an attack page did: its own report, and per vector the requests the browser sent
    to the device (CORS preflights aside), the device's answers to them, and those that
    failed in the browser (`failures`)."""

    report: dict[str, str]
    sent: dict[str, list[Request]] = field(default_factory=dict)
    answers: dict[str, list[Response]] = field(default_factory=dict)
    failed: dict[str, list[Request]] = field(default_factory=dict)

    def statuses(self, vector: str) -> list[int]:
        return [response.status for response in self.answers.get(vector, [])]

    def failures(self, vector: str) -> list[str]:
        """Why requests failed: WITHHELD for an answer the browser kept from the page."""
        return [request.failure or "?" for request in self.failed.get(vector, [])]

    def answered(self, vector: str) -> bool:
        """The device answered (the answer may have been withheld from the page)."""
        return bool(self.statuses(vector)) or WITHHELD in self.failures(vector)

    def summary(self) -> str:
        return "\n".join(
            f"  {vector}: page says {result!r}, sent {len(self.sent.get(vector, []))}, "
            f"device answered {self.statuses(vector)}"
            + (f", failed {failures}" if (failures := self.failures(vector)) else "")
            for vector, result in self.report.items()
        )


# The failure of a request whose answer arrived but was kept from the page (Chromium's opaque
# response blocking: an image, script or style sheet answered with text, and nosniff): proof
# that the device answered.
WITHHELD = "net::ERR_BLOCKED_BY_ORB"


def _vector_of(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("vector")
    return values[0] if values else None


def _group(items: list[_T], key: Callable[[_T], str | None]) -> dict[str, list[_T]]:
    found: dict[str, list[_T]] = {}
    for item in items:
        name = key(item)
        if name is not None:
            found.setdefault(name, []).append(item)
    return found


def run_attacks(
    session: Session,
    attacker: Attacker,
    origin: str,
    target: Target,
    vectors: list[Vector],
    *,
    every_answer: bool = False,
) -> Outcome:
    """Log in to the device at `origin`, then open an attacker page that sends `target` to it
    by each of `vectors`. Returns once the page has reported what each attack did, the browser
    has sent every simple vector's request, and the device has answered every top-level one
    (with `every_answer`, every simple one) with something else than 401 (a browser that had
    the login would have sent it then): proof that the attacks ran."""
    page = unique("page")
    attacker.put(f"/{page}", attack_page(page, origin, target, vectors))
    netloc = urlsplit(origin).netloc

    def vector(request: Request) -> str | None:
        """The attack a request of the browser belongs to (CORS preflights aside)."""
        if request.method == "OPTIONS" or urlsplit(request.url).netloc != netloc:
            return None
        return _vector_of(request.url)

    def outcome() -> Outcome:
        return Outcome(
            attacker.reports.get(page, {}),
            _group(session.requests, vector),
            _group(session.responses, lambda response: vector(response.request)),
            _group(session.failed, vector),
        )

    def finished() -> bool:
        now = outcome()
        return page in attacker.reports and all(
            v.name in now.sent
            and (not v.top_level or any(s != 401 for s in now.statuses(v.name)))
            and (not every_answer or now.answered(v.name))
            for v in vectors
            if v.simple
        )

    session.log_in(origin)
    session.page.goto(f"{session.site.attacker}/{page}")
    ran = session.wait_until(finished)
    result = outcome()
    assert ran, f"the attack did not run to the end in the browser:\n{result.summary()}"
    assert set(result.report) == {vector.name for vector in vectors}, result.summary()
    return result


# ----- controls: the harness sees what it claims to see -------------------------------------------


def _fetch_site(site: Site, vector: Vector) -> str | None:
    """The Sec-Fetch-Site Chromium sends with an attack request."""
    if not site.trustworthy:
        return None  # not potentially trustworthy origins: no Sec-Fetch-* at all
    if site.same_site and vector.name != "form-sandboxed":
        return "same-site"
    return "cross-site"  # another site, or an opaque origin (the sandboxed frame)


@ALL_SITES
def test_control_attacks_carry_the_admin_login_to_an_undefended_device(
    browser: Browser, site: Site, attacker: Attacker, bare: BareDevice
) -> None:
    """Against a device without defences (`BareDevice`), the attack page's requests arrive
    with the admin's login (see `Vector.carries_login`) and a foreign or null Origin, and the
    text/plain form's with a JSON body: they would reboot a device that took them. In `names`
    mode no request carries Sec-Fetch-Site, so the real device has only Origin to go by."""
    received, detail = _attack_undefended(browser, site, attacker, bare, REBOOT, VECTORS)
    for vector in SIMPLE_VECTORS:
        requests = received.get(vector.name, [])
        assert requests, f"{vector.name} never arrived\n{detail}"
        if vector.carries_login(site):
            assert any(r.authorized for r in requests), f"{vector.name}: no login\n{detail}"
        assert {r.origin for r in requests} <= {site.attacker, "null"}, detail
        assert {r.fetch_site for r in requests} == {_fetch_site(site, vector)}, detail
    sent = received["form-text-plain"][0].body
    assert json.loads(sent) == {**REBOOT.body, "x": "="}, sent


@RESTART_SITES
def test_control_restart_gets_carry_the_admin_login_to_an_undefended_device(
    browser: Browser, site: Site, attacker: Attacker, bare: BareDevice
) -> None:
    """Against a device without defences, every GET of the attack page reaches restart.cgi,
    the top-level ones (and in `same-site` mode all) with the admin's login: each would reboot
    a device that took it. None has an Origin of the device's; the no-referrer ones have
    neither Origin nor Referer, and in `names` mode no Sec-Fetch-Site either, so for those the
    real device has only the browser's other headers (its User-Agent) to go by."""
    received, detail = _attack_undefended(browser, site, attacker, bare, RESTART, GET_VECTORS)
    for vector in GET_VECTORS:
        requests = received.get(vector.name, [])
        assert requests, f"{vector.name} never arrived\n{detail}"
        assert {(r.method, r.path) for r in requests} == {("GET", RESTART.path)}, detail
        if vector.carries_login(site):
            assert any(r.authorized for r in requests), f"{vector.name}: no login\n{detail}"
        assert {r.origin for r in requests} <= {None, site.attacker, "null"}, detail
        assert {r.fetch_site for r in requests} == {_fetch_site(site, vector)}, detail
        if vector.name in NO_REFERRER_VECTORS:
            assert {(r.origin, r.referer) for r in requests} == {(None, None)}, detail


def _attack_undefended(
    browser: Browser,
    site: Site,
    attacker: Attacker,
    bare: BareDevice,
    target: Target,
    vectors: list[Vector],
) -> tuple[dict[str, list[Received]], str]:
    """Run the attacks on `bare`: what it received, by vector (CORS preflights aside), and a
    description of everything for failure messages."""
    origin = f"http://{urlsplit(site.device).hostname}:{bare.ports[DEVICE_ADDRESS]}"
    session = Session(browser, site, device=origin)
    try:
        outcome = run_attacks(session, attacker, origin, target, vectors)
    finally:
        session.close()
    received = _group([r for r in bare.received if r.method != "OPTIONS"], lambda r: r.vector)
    detail = "\n".join(f"  {r}" for r in bare.received) + "\n" + outcome.summary()
    return received, detail


def test_control_planted_payload_runs_when_rendered_as_html(
    browser: Browser, api: httpx.Client
) -> None:
    """The encoded payloads in the log are live: rendered as HTML by the doc page's renderer
    (marked, into innerHTML, without a CSP), they run. So it is the device's pages that must
    keep the log text."""
    log = ensure_planted(api)
    marked = api.get("/config/web-ui/assets/marked.min.js")
    assert marked.status_code == 200
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content("<main id=doc></main>")
        page.add_script_tag(content=marked.text)
        page.evaluate(
            "(text) => { document.getElementById('doc').innerHTML = marked.parse(text); }", log
        )
        page.wait_for_function("() => window.__pwned === 1", timeout=5_000)
        assert page.locator("img#xss-digest").count() == 1
    finally:
        context.close()


def test_control_same_payloads_without_origin_change_the_device(tmp_path: Path) -> None:
    """The bodies the attack forms send, sent by a non-browser client (no Origin, as JSON), do
    change a device, and the state oracle reports each change: the attack tests' checks are
    not blind. The reboot comes last; this device is not the one the attacks use."""
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.5")
    try:
        with client_for(server) as api:
            set_persistent(api, True)
            Baseline(server, api).assert_unchanged()  # nothing happened: nothing reported
            changes = [
                ("v1-writeMessage", "PWNED-CSRF"),
                ("v1alpha-writeMessage", "PWNED-CSRF"),
                ("v1-clearLog", "the persistent log was cleared"),
                ("v1alpha-clearLog", "the persistent log was cleared"),
                ("v1-enabled", "persistent logging was turned off"),
                ("v1alpha-enabled", "persistent logging was turned off"),
                ("v1-persistent", "persistent logging was turned off"),
                ("v1-root", "persistent logging was turned off"),
            ]
            for name, problem in changes:
                target = LOG_API_TARGETS[name]
                before = Baseline(server, api)
                reply = api.request(
                    target.method, target.path, content=target.form_body, headers=JSON_TYPE
                )
                assert reply.status_code == 200, (name, reply.text)
                with pytest.raises(AssertionError, match=problem) as found:
                    before.assert_unchanged()
                assert "the log shows a successful attack" in str(found.value), name
            for name, target in REMOTE_SYSLOG_TARGETS.items():
                before = Baseline(server, api)
                reply = api.post(target.path, content=target.form_body, headers=JSON_TYPE)
                assert "error" not in reply.json(), (name, reply.text)
                with pytest.raises(AssertionError, match="the log shows a successful attack"):
                    before.assert_unchanged()
            before = Baseline(server, api)
            reply = api.post(REBOOT.path, content=REBOOT.form_body, headers=JSON_TYPE)
            assert "error" not in reply.json(), reply.text
            with pytest.raises(AssertionError, match="the device rebooted") as found:
                before.assert_unchanged()
            assert "the log shows a successful attack" in str(found.value)  # the audit entry
            before = Baseline(server, api)  # restart.cgi: a plain GET with the login reboots
            reply = api.get(RESTART.path)
            assert reply.status_code == 200, reply.text
            with pytest.raises(AssertionError, match="the device rebooted") as found:
                before.assert_unchanged()
            assert "the log shows a successful attack" in str(found.value)  # the audit entry
    finally:
        if server.proc:
            server.stop()


# ----- cross-site request forgery ----------------------------------------------------------------


@ALL_SITES
@pytest.mark.parametrize("vector", SIMPLE_VECTORS, ids=lambda vector: vector.name)
def test_cross_site_reboot_is_refused(
    session: Session, attacker: Attacker, baseline: Baseline, vector: Vector
) -> None:
    outcome = run_attacks(session, attacker, session.site.device, REBOOT, [vector])
    baseline.assert_unchanged(outcome.summary())


@RESTART_SITES
def test_cross_site_restart_cgi_is_refused(
    session: Session, attacker: Attacker, baseline: Baseline
) -> None:
    """GET restart.cgi reboots: every way a page has to make the browser GET it reaches the
    device, which answers it: 403, refused as a browser's request from elsewhere before the
    login is looked at (a 401 or 200 would mean it got past the guard), or an answer the
    browser withheld from an image, script or style sheet (its status unseen; the boot id
    tells)."""
    outcome = run_attacks(
        session, attacker, session.site.device, RESTART, GET_VECTORS, every_answer=True
    )
    not_refused = [v.name for v in GET_VECTORS if not set(outcome.statuses(v.name)) <= {403}]
    assert not_refused == [], f"not refused:\n{outcome.summary()}"
    baseline.assert_unchanged(outcome.summary())


@ALL_SITES
@pytest.mark.parametrize("name", list(LOG_API_TARGETS))
def test_cross_site_log_api_changes_are_refused(
    session: Session, attacker: Attacker, baseline: Baseline, name: str
) -> None:
    target = LOG_API_TARGETS[name]
    outcome = run_attacks(session, attacker, session.site.device, target, VECTORS)
    accepted = [v.name for v in VECTORS if any(200 <= s < 300 for s in outcome.statuses(v.name))]
    assert accepted == [], f"the device accepted cross-site requests:\n{outcome.summary()}"
    baseline.assert_unchanged(outcome.summary())


@ALL_SITES
@pytest.mark.parametrize("name", list(REMOTE_SYSLOG_TARGETS))
def test_cross_site_remote_syslog_changes_are_refused(
    session: Session, attacker: Attacker, baseline: Baseline, name: str
) -> None:
    """remotesyslog.cgi answers every call with HTTP 200: a refusal is its JSON-RPC error 403,
    and the audit log (ATTACK_TRACE) tells whether a change got through."""
    target = REMOTE_SYSLOG_TARGETS[name]
    outcome = run_attacks(session, attacker, session.site.device, target, VECTORS)
    baseline.assert_unchanged(outcome.summary())


# ----- denial of service: failed logins a page makes the admin's browser send -------------------

# A page may put a user name and password in the URL of a top-level navigation
# (http://root:guess@device/...), and Chromium sends them as the login. So any page the admin
# opens can make his browser fail logins as root, from his own address, where his other
# clients (a management system, scripts) log in too. The page navigates LOCKOUT_WINDOWS
# windows every LOCKOUT_STEP seconds (time for the challenge and the answer to the login it
# provokes, on a loaded machine) for LOCKOUT_SECONDS, then reports how many attempts it made.
LOCKOUT_WINDOWS = 12
LOCKOUT_STEP = 0.15
LOCKOUT_SECONDS = 2.0
_LOCKOUT_RUNNER = """
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("config").textContent);
  const windows = Array.from({ length: config.windows }, () => window.open("about:blank"));
  const started = Date.now();
  let sent = 0;
  const step = () => {
    for (const target of windows) {
      const url = new URL(config.url);
      url.username = "root";
      url.password = `guess-${sent}`;
      target.location = url.href;
      sent += 1;
    }
    if (Date.now() - started < config.milliseconds) {
      setTimeout(step, config.step);
    } else {
      const report = encodeURIComponent(JSON.stringify({ sent: String(sent) }));
      fetch(`/report/${config.page}?r=${report}`);
    }
  };
  step();
})();
"""


def lockout_session(browser: Browser, attacker: Attacker, port: int) -> Session:
    """The admin's browser, not logged in to the device on `port` (his other clients are),
    on another site than the device's (`ip`)."""
    attacker_origin = f"http://{ATTACKER_ADDRESS}:{attacker.ports[ATTACKER_ADDRESS]}"
    site = Site("ip", f"http://{DEVICE_ADDRESS}:{port}", attacker_origin)
    return Session(browser, site, logged_in=False)


def open_lockout_page(session: Session, attacker: Attacker) -> str:
    """Open a page of the attacker's that makes the browser fail logins as root on the
    session's device; returns the page's name (the key of its report)."""
    page = unique("lockout")
    config = {
        "page": page,
        "windows": LOCKOUT_WINDOWS,
        "milliseconds": int(LOCKOUT_SECONDS * 1000),
        "step": int(LOCKOUT_STEP * 1000),
        "url": f"{session.site.device}/axis-cgi/systemlog.cgi?vector=url-credentials",
    }
    attacker.put(
        f"/{page}",
        "<!doctype html><meta charset=utf-8><title>Cute cats</title><body>\n"
        f'<script type="application/json" id="config">{json.dumps(config)}</script>\n'
        f"<script>{_LOCKOUT_RUNNER}</script>",
    )
    session.page.goto(f"{session.site.attacker}/{page}")
    return page


def test_control_lockout_page_sends_root_with_wrong_passwords(
    browser: Browser, attacker: Attacker, bare: BareDevice
) -> None:
    """Against a device without defences, the lockout page's navigations arrive with root's
    name and a wrong password, more than 20 within one second: enough for the device's
    brute-force protection to block the address they come from."""
    seen = []
    for _ in range(3):  # a busy machine may slow the browser down: the page may try again
        bare.received.clear()
        session = lockout_session(browser, attacker, bare.ports[DEVICE_ADDRESS])
        try:
            page = open_lockout_page(session, attacker)
            ended = functools.partial(operator.contains, attacker.reports, page)
            assert session.wait_until(ended), "the page did not end"
        finally:
            session.close()
        guesses = sorted(r.at for r in bare.received if r.login == "root" and not r.authorized)
        in_one_second = max(
            (sum(1 for t in guesses if start <= t < start + 1.0) for start in guesses), default=0
        )
        seen.append((len(guesses), in_one_second, attacker.reports[page]))
        if in_one_second > 20:
            return
    raise AssertionError(f"never more than 20 guesses in one second: {seen}")


def test_cross_site_page_cannot_lock_the_logged_in_admin_out(
    browser: Browser, attacker: Attacker, tmp_path: Path
) -> None:
    """While a page of another site makes the admin's browser fail logins as root (see the
    control above), the admin's own Digest client at the same address, logged in before,
    must be served throughout under the project's throttle (its proven nonce passes the
    refusals, docs/security.md). Under the device's brute-force block the address is blocked,
    the admin's clients included, exactly as on a device: a residual risk, documented."""
    server = start_server(tmp_path / "state", "--brute-force-protection", "off")
    session = lockout_session(browser, attacker, server.port)
    try:
        statuses: list[int] = []
        with client_for(server, digest=True) as admin:  # from 127.0.0.1 too
            assert admin.get("/logs/status").status_code == 200  # logged in before
            page = open_lockout_page(session, attacker)

            def served() -> bool:  # every 0.3 s, as a management system polls
                statuses.append(admin.get("/logs/status").status_code)
                session.page.wait_for_timeout(300)
                return False

            session.wait_until(served, timeout=LOCKOUT_SECONDS + 0.5)
        assert session.wait_until(lambda: page in attacker.reports), "the page did not finish"
        refused = [status for status in statuses if status != 200]
        assert refused == [], (
            f"the admin's client was refused {len(refused)} of {len(statuses)} times: "
            f"{sorted(set(refused))}"
        )
    finally:
        session.close()
        if server.proc:
            server.kill()  # failed logins may still be pending: no graceful wait


# ----- stored XSS: the log page and the documentation pages ---------------------------------------


@pytest.mark.parametrize("path", ["/", "/logs"])
def test_log_page_shows_planted_payloads_as_text(
    session: Session, site: Site, api: httpx.Client, baseline: Baseline, path: str
) -> None:
    ensure_planted(api)
    page = session.page
    page.goto(site.device + path)
    page.wait_for_function(
        "() => ['id=xss-basic', 'id=xss-digest'].every("
        "(tag) => document.getElementById('log').innerText.includes(tag))",
        timeout=10_000,
    )
    text = page.locator("#log").inner_text()
    assert "<img src=x onerror=" in text  # the literal payloads, as text
    assert encoded_payload("basic") in text
    session.settle()
    session.assert_no_script_ran()
    assert session.foreign_requests() == []
    baseline.assert_unchanged()


def _doc_attack_url(site: Site, page: str, params: dict[str, str]) -> str:
    values = {
        name: value.format(attacker=site.attacker, attacker_host=site.attacker_netloc)
        for name, value in params.items()
    }
    return f"{site.device}{page}?{urlencode(values, quote_via=quote, safe='/')}"


def _assert_doc_page_safe(session: Session) -> None:
    """Only the device's own documents were loaded, nothing of the log shows, nothing ran."""
    session.settle()
    session.assert_no_script_ran()
    assert session.foreign_requests() == []
    loaded = [urlsplit(r.url).path for r in session.requests]
    assert [path for path in loaded if not path.startswith(DOC_PAGE_SOURCES)] == []
    assert "authentication failed" not in session.page.locator("body").inner_text()


# md-doc-loc values: path tricks towards the log (which holds the planted payloads) and
# documents of other origins (the attacker's, which holds raw HTML).
DOC_SOURCES = {
    "dot-dot": "/config/discover/../../axis-cgi/systemlog.cgi",
    "dot-dot-report": "/config/discover/../../axis-cgi/serverreport.cgi",
    "pct-2e": "/config/discover/%2e%2e/%2e%2e/axis-cgi/systemlog.cgi",
    "pct-2E": "/config/discover/%2E%2E/%2E%2E/axis-cgi/systemlog.cgi",
    "mixed-dots": "/config/discover/.%2e/%2e./axis-cgi/systemlog.cgi",
    "double-pct": "/config/discover/%252e%252e/%252e%252e/axis-cgi/systemlog.cgi",
    "pct-slash": "/config/discover/..%2f..%2faxis-cgi/systemlog.cgi",
    "nested-dots": "/config/discover/....//....//axis-cgi/systemlog.cgi",
    "backslashes": "/config/discover/..\\..\\axis-cgi/systemlog.cgi",
    "pct-backslashes": "/config/discover/..%5c..%5caxis-cgi/systemlog.cgi",
    "protocol-relative": "//{attacker_host}/evil.md",
    "backslash-host": "/\\{attacker_host}/evil.md",
    "absolute": "{attacker}/evil.md",
    "data-url": f"data:text/markdown,{EVIL_HTML}",
}


@pytest.mark.parametrize("name", list(DOC_SOURCES))
def test_doc_page_loads_only_the_devices_documents(
    session: Session, site: Site, api: httpx.Client, baseline: Baseline, name: str
) -> None:
    ensure_planted(api)
    page = session.page
    response = page.goto(_doc_attack_url(site, DOC_PAGE, {"md-doc-loc": DOC_SOURCES[name]}))
    assert response is not None
    if response.status == 200:  # the page ran its loader: wait until it has its answer
        page.wait_for_function(
            "() => { const doc = document.getElementById('doc');"
            " return !doc || !doc.textContent.startsWith('Loading'); }",
            timeout=10_000,
        )
    else:  # refused
        assert 400 <= response.status < 500, response.status
    _assert_doc_page_safe(session)
    baseline.assert_unchanged()


SWAGGER_SOURCES = {
    "dot-dot": {"url": "/config/discover/../../axis-cgi/systemlog.cgi"},
    "pct-2e": {"url": "/config/discover/%2e%2e/%2e%2e/axis-cgi/systemlog.cgi"},
    "backslashes": {"url": "/config/discover/..\\..\\axis-cgi/systemlog.cgi"},
    "protocol-relative": {"url": "//{attacker_host}/evil.json"},
    "backslash-host": {"url": "/\\{attacker_host}/evil.json"},
    "absolute": {"url": "{attacker}/evil.json"},
    "data-url": {"url": 'data:application/json,{{"openapi":"3.0.0"}}'},
    "config-url": {"url": REAL_SPEC, "configUrl": "{attacker}/evil-config.json"},
}


@pytest.mark.parametrize("name", list(SWAGGER_SOURCES))
def test_swagger_ui_loads_only_the_devices_documents(
    session: Session, site: Site, attacker: Attacker, baseline: Baseline, name: str
) -> None:
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Evil", "version": "1", "description": EVIL_HTML},
        "paths": {},
    }
    attacker.put("/evil.json", json.dumps(spec), "application/json")
    attacker.put("/evil-config.json", json.dumps({"url": f"{site.attacker}/evil.json"}))
    page = session.page
    response = page.goto(_doc_attack_url(site, SWAGGER_PAGE, SWAGGER_SOURCES[name]))
    assert response is not None
    if response.status == 200:  # Swagger UI ran: wait until it shows a spec or an error
        page.wait_for_selector(
            ".swagger-ui .information-container, .swagger-ui .errors-wrapper, .swagger-ui .info",
            timeout=10_000,
        )
    else:  # refused
        assert 400 <= response.status < 500, response.status
    _assert_doc_page_safe(session)
    baseline.assert_unchanged()


# ----- the device's own pages still work, with strict headers -------------------------------------


def test_own_documentation_renders(session: Session, site: Site) -> None:
    page = session.page
    page.goto(_doc_attack_url(site, DOC_PAGE, {"md-doc-loc": REAL_DOC}))
    page.wait_for_selector("#doc h1", timeout=10_000)
    assert page.locator("#doc h1").inner_text() == "Log API"
    page.goto(_doc_attack_url(site, SWAGGER_PAGE, {"url": REAL_SPEC}))
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    assert "/log/v1/writeMessage" in " ".join(
        page.locator(".opblock-summary-path").all_inner_texts()
    )
    assert session.foreign_requests() == []
    assert session.dialogs == []


def test_own_log_page_still_writes_and_switches_persistence(
    session: Session, site: Site, device: Server, api: httpx.Client
) -> None:
    """The log page, same-origin, changes the device through the same API the attacks use."""
    wait_ready(api)
    set_persistent(api, True)
    page = session.page
    page.goto(f"{site.device}/logs")
    page.wait_for_selector("#stream-state[data-state='live']", timeout=10_000)
    page.wait_for_function("() => !document.getElementById('persistent').disabled")

    message = unique("SAME-ORIGIN")
    page.fill("#write-message", message)
    page.click("#write-form button[type=submit]")
    page.wait_for_function(
        "(pending) => !pending.includes(document.getElementById('write-result').textContent)",
        arg=["", "Writing\u2026"],
    )
    assert page.locator("#write-result").inner_text() == "Written."
    page.locator("#log .row", has_text=message).wait_for(timeout=5_000)
    assert message in system_log(api)

    switch = page.locator("#persistent")
    for wanted, note in [(False, "is off"), (True, "is on")]:
        switch.focus()
        page.keyboard.press("Space")
        page.wait_for_function(
            "(note) => document.getElementById('persistent-note').textContent.includes(note)"
            " || document.getElementById('persistent-note').textContent.startsWith('Not')",
            arg=note,
        )
        assert note in page.locator("#persistent-note").inner_text()
        assert persistent_enabled(api) is wanted
    assert session.foreign_requests() == []


def _policies(headers: httpx.Headers) -> list[dict[str, list[str]]]:
    """Every Content-Security-Policy as {directive: sources}."""
    policies = []
    for header in headers.get_list("content-security-policy"):
        policy: dict[str, list[str]] = {}
        for directive in header.split(";"):
            name, *sources = directive.split()
            policy.setdefault(name.lower(), [s.lower() for s in sources])
        policies.append(policy)
    return policies


def _effective(policy: dict[str, list[str]], directive: str) -> list[str] | None:
    """A fetch directive's sources, falling back to default-src as browsers do."""
    return policy.get(directive, policy.get("default-src"))


UNSAFE_SCRIPT_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:"}
UNSAFE_SCRIPT_SOURCES |= {"http:", "https:", "blob:"}


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/logs",
        f"{DOC_PAGE}?md-doc-loc={REAL_DOC}",
        f"{SWAGGER_PAGE}?url={REAL_SPEC}",
    ],
)
def test_html_pages_carry_a_strict_policy(api: httpx.Client, path: str) -> None:
    """Each property must hold in one of the page's policies (browsers enforce them all)."""
    reply = api.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    policies = _policies(reply.headers)
    assert policies, "no Content-Security-Policy"

    def holds(check: Callable[[dict[str, list[str]]], bool]) -> bool:
        return any(check(policy) for policy in policies)

    assert holds(lambda p: p.get("frame-ancestors") == ["'none'"]), policies
    assert holds(lambda p: p.get("base-uri") == ["'none'"]), policies
    assert holds(lambda p: _effective(p, "object-src") == ["'none'"]), policies
    assert holds(
        lambda p: (
            (sources := _effective(p, "script-src")) is not None
            and not set(sources) & UNSAFE_SCRIPT_SOURCES
        )
    ), policies
    assert reply.headers.get("x-content-type-options") == "nosniff"
    assert reply.headers.get("referrer-policy") == "no-referrer"
