"""The log page (`/`, `/logs`) in headless Chromium (Debian's, driven by Playwright) against a
real server, and its live feed (`/logs/events`, server-sent events) with httpx.

Screenshots go to test-artifacts/ (logs-admin.png, logs-viewer.png, logs-phone.png,
logs-new-boot.png, logs-highlight.png); the
admin one is copied to docs/logs-page.png when VAPIXLOG_UPDATE_DOCS=1 is set."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route

from chromium import ARTIFACTS, browser
from conftest import client_for, start_server
from servers import USERS, Server
from vapixlog.web.logs import MAX_FOLLOWERS, QUEUE_LINES, Follower

__all__ = ["browser"]  # a fixture, used by name

DOCS = Path(__file__).parents[1] / "docs"
API = "/config/rest/log/v1"
DESKTOP = {"width": 1280, "height": 800}
SMALL_DESKTOP = {"width": 1024, "height": 700}
PHONE = {"width": 390, "height": 844}


# ----- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module; no write rate limit, so bursts are not refused."""
    server = start_server(tmp_path_factory.mktemp("weblogs") / "state", "--rate-limit", "off")
    yield server
    if server.proc:
        server.stop()


class Tab:
    """A page in its own context, logged in as `user`, that may reach only the device."""

    def __init__(
        self, browser: Browser, server: Server, user: str, viewport: dict[str, int]
    ) -> None:
        self.context: BrowserContext = browser.new_context(
            http_credentials={"username": user, "password": USERS[user][1]},
            viewport=viewport,  # type: ignore[arg-type]
        )
        self.page: Page = self.context.new_page()
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []  # every URL the page asked for, in order
        device_netloc = urlsplit(server.url).netloc

        def guard(route: Route, request: Request) -> None:
            if urlsplit(request.url).netloc == device_netloc:
                route.continue_()
            else:  # no network: anything else is refused and remembered
                self.foreign.append(request.url)
                route.abort()

        self.page.route("**/*", guard)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(server.url + "/")
        self.page.wait_for_function("() => document.getElementById('who').textContent !== ''")

    def wait_live(self) -> None:
        self.page.wait_for_selector("#stream-state[data-state='live']", timeout=10_000)

    def row(self, text: str) -> Any:
        return self.page.locator("#log .row", has_text=text)

    def close(self) -> None:
        self.context.close()
        assert self.foreign == []
        assert self.errors == []


def write(server: Server, msg: str, severity: int = 6) -> None:
    with client_for(server) as admin:
        reply = admin.post(f"{API}/writeMessage", json={"data": {"msg": msg, "severity": severity}})
        assert reply.status_code == 200, reply.text


def persistent_enabled(server: Server) -> bool:
    with client_for(server, "viewer") as viewer:
        reply = viewer.get(f"{API}/persistent/enabled")
        assert reply.status_code == 200
        return bool(reply.json()["data"])


def set_persistent(server: Server, enabled: bool) -> None:
    with client_for(server) as admin:
        reply = admin.patch(f"{API}/persistent/enabled", json={"data": enabled})
        assert reply.status_code == 200, reply.text


def audit_log(server: Server) -> str:
    with client_for(server) as admin:
        reply = admin.get("/axis-cgi/auditlog.cgi")
        assert reply.status_code == 200, reply.text
        return reply.text


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


# ----- the page in a browser ---------------------------------------------------------------


def test_admin_sees_live_lines_filters_them_and_screenshot(
    browser: Browser, device: Server
) -> None:
    for severity, text in [
        (4, "disk almost full on /var/log"),
        (5, "network: link up on eth0, 1000 Mbit/s full duplex"),
        (7, "debug: polling every 10 s"),
        (2, "critical: watchdog restarted the camera service"),
    ]:
        write(device, text, severity)
    tab = Tab(browser, device, "root", DESKTOP)
    tab.wait_live()
    page = tab.page
    assert tab.row("critical: watchdog").count() == 1  # from the initial snapshot

    # Live follow: a message written through the API is on the page within 2 s.
    error_msg, debug_msg = unique("live-error"), unique("live-debug")
    started = time.monotonic()
    write(device, error_msg, 3)
    tab.row(error_msg).wait_for(timeout=2_000)
    assert time.monotonic() - started < 2.0
    assert "s3" in (tab.row(error_msg).get_attribute("class") or "")
    assert tab.row(error_msg).locator(".b").inner_text() == "ERR"
    write(device, debug_msg, 7)
    tab.row(debug_msg).wait_for(timeout=2_000)

    # The severity filter hides lower-severity entries, the text filter non-matching ones.
    page.select_option("#filter-severity", "3")  # error and more severe
    page.wait_for_function(
        "(m) => ![...document.querySelectorAll('#log .row')].some(r => r.textContent.includes(m))",
        arg=debug_msg,
    )
    assert tab.row(error_msg).is_visible()
    assert tab.row("critical: watchdog").is_visible()
    assert tab.row("disk almost full").count() == 0
    severities = page.eval_on_selector_all(
        "#log .row:not(.marker) .b", "(badges) => badges.map((b) => b.textContent)"
    )
    assert severities and set(severities) <= {"EMERG", "ALERT", "CRIT", "ERR"}
    screenshot(page, "logs-filtered.png")
    page.fill("#filter-text", error_msg.upper())  # case-insensitive
    page.wait_for_function("() => document.querySelectorAll('#log .row:not(.marker)').length === 1")
    assert tab.row(error_msg).is_visible()
    page.fill("#filter-text", "")
    page.select_option("#filter-severity", "7")
    tab.row(debug_msg).wait_for(timeout=2_000)

    # Every control has a label, and the keyboard reaches the filters and the switch.
    unlabelled = page.eval_on_selector_all(
        "input, select", "(els) => els.filter((e) => e.labels.length === 0).map((e) => e.id)"
    )
    assert unlabelled == []
    reached = set()
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert {"persistent", "filter-severity", "filter-text", "write-message"} <= reached

    tab.close()


def test_admin_switches_persistence_clears_and_writes(browser: Browser, device: Server) -> None:
    set_persistent(device, False)
    tab = Tab(browser, device, "root", DESKTOP)
    page = tab.page
    switch = page.locator("#persistent")
    page.wait_for_function("() => !document.getElementById('persistent').disabled")
    assert not switch.is_checked()

    # Turn persistent logging on with the keyboard; the API then reports true.
    switch.focus()
    page.keyboard.press("Space")
    deadline = time.monotonic() + 5
    while not persistent_enabled(device):
        assert time.monotonic() < deadline, "the API never reported persistent logging on"
        page.wait_for_timeout(50)  # not time.sleep: Playwright must run the route guard
    page.wait_for_function("() => document.getElementById('persistent').checked")
    page.wait_for_function(
        "() => document.getElementById('persistent-note').textContent.includes('is on')"
    )
    tab.wait_live()
    assert "configured log.v1.persistent.enabled (true)." in audit_log(device)

    # Write a message with a severity picked in the form.
    message = unique("from the form")
    page.fill("#write-message", message)
    page.select_option("#write-severity", "4")
    page.click("#write-form button[type=submit]")
    tab.row(message).wait_for(timeout=3_000)
    assert tab.row(message).locator(".b").inner_text() == "WARNING"
    page.wait_for_function(
        "() => document.getElementById('usage-text').textContent.includes(' of ')"
    )
    assert device.persistent_text().count(message) == 1
    page.locator("#log").evaluate("(log) => { log.scrollTop = log.scrollHeight; }")
    page.wait_for_function(
        "() => !document.getElementById('usage-text').textContent.startsWith('0 B')"
    )
    admin_shot = screenshot(page, "logs-admin.png")
    if os.environ.get("VAPIXLOG_UPDATE_DOCS") == "1":
        shutil.copyfile(admin_shot, DOCS / "logs-page.png")

    # Clear asks first: cancelling keeps the files, confirming removes them.
    page.click("#clear-persistent")
    dialog = page.locator("#confirm-clear")
    assert dialog.is_visible()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert message in device.persistent_text()
    page.click("#clear-persistent")
    page.click("#confirm-clear-yes")
    page.wait_for_function(
        "() => document.getElementById('admin-result').textContent.includes('was')"
    )
    assert "configured log.v1.persistent.clearLog ({})." in audit_log(device)
    assert message not in device.persistent_text()

    # The server report link is the tar_all download.
    href = page.get_attribute("#report", "href")
    assert href == "/axis-cgi/serverreport.cgi?mode=tar_all"
    tab.close()
    set_persistent(device, False)


@pytest.mark.parametrize("user", ["viewer", "op"])
def test_non_admins_see_the_switch_read_only(browser: Browser, device: Server, user: str) -> None:
    set_persistent(device, True)
    try:
        tab = Tab(browser, device, user, DESKTOP)
        page = tab.page
        page.wait_for_selector("#log-notice:not([hidden])")
        assert "requires the admin role" in page.inner_text("#log-notice")
        assert not page.locator("#filters").is_visible()
        page.wait_for_function("() => document.getElementById('persistent').checked")
        switch = page.locator("#persistent")
        assert switch.is_disabled()
        assert "Read-only" in page.inner_text("#persistent-note")
        page.click("label[for=persistent]", force=True)  # clicking does nothing
        switch.focus()
        page.keyboard.press("Space")
        page.wait_for_timeout(300)
        assert persistent_enabled(device) is True
        assert switch.is_checked()
        assert not page.locator("#admin-tools").is_visible()
        # The remote syslog panel is for admins only (DECISIONS 13), its data too.
        assert not page.locator("#remote-syslog").is_visible()
        assert "remote_syslog" not in status(device, user)
        assert page.locator("#log .row").count() == 0
        # Not an empty panel: what the role may see, and what needs an admin, named as such
        # and never fetched (remotesyslog.cgi and auditlog.cgi are admin-only).
        page.wait_for_function("() => document.getElementById('facts').children.length > 0")
        facts = page.eval_on_selector_all(
            "#facts dt",
            "(dts) => Object.fromEntries(dts.map((dt) => "
            "[dt.textContent, [dt.nextElementSibling.textContent, "
            "dt.nextElementSibling.classList.contains('locked')]]))",
        )
        assert facts["Persistent logging"] == ["On", False]
        assert " used of 64.0 MiB" in facts["Persistent storage"][0]
        assert " lines, " in facts["Log in memory"][0]
        assert facts["Device clock"][0].endswith(" UTC" + status(device)["time"][-6:])
        locked = [name for name, (_, admin_only) in facts.items() if admin_only]
        assert locked == ["The system log", "Remote syslog settings", "Audit log"]
        assert all(facts[name][0].startswith("Admin only") for name in locked)
        assert [u for u in tab.requests if "remotesyslog.cgi" in u or "auditlog.cgi" in u] == []
        assert not page.locator("#audit").is_visible()
        if user == "viewer":
            screenshot(page, "logs-viewer.png")
        tab.close()
    finally:
        set_persistent(device, False)


def test_burst_of_1000_entries_keeps_the_page_responsive(browser: Browser, device: Server) -> None:
    tab = Tab(browser, device, "root", DESKTOP)
    tab.wait_live()
    page = tab.page
    # Log text is text: markup in a message never becomes elements.
    hostile = unique("<img src=x onerror=alert(1)><b>bold</b>")
    write(device, hostile, 4)
    tab.row(hostile).wait_for(timeout=2_000)
    assert page.locator("#log img, #log b").count() == 0

    # Record the longest gap between animation frames while the burst arrives.
    page.evaluate(
        """() => {
        window.maxGap = 0; let last = performance.now();
        const tick = (now) => { window.maxGap = Math.max(window.maxGap, now - last);
                                last = now; window.gapFrame = requestAnimationFrame(tick); };
        window.gapFrame = requestAnimationFrame(tick);
    }"""
    )
    prefix = unique("burst")
    count = 1000
    failures: list[str] = []

    async def burst() -> None:
        auth = httpx.BasicAuth("root", USERS["root"][1])
        async with httpx.AsyncClient(base_url=device.url, auth=auth, timeout=20) as client:
            numbers = iter(range(count))

            async def worker() -> None:
                for n in numbers:
                    body = {"data": {"msg": f"{prefix} {n:04d}", "severity": n % 8}}
                    reply = await client.post(f"{API}/writeMessage", json=body)
                    if reply.status_code != 200:
                        failures.append(reply.text)

            await asyncio.gather(*(worker() for _ in range(16)))

    started = time.monotonic()
    writer = threading.Thread(target=asyncio.run, args=(burst(),))
    writer.start()
    deadline = time.monotonic() + 60
    while writer.is_alive() and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # lets Playwright serve the page's requests meanwhile
    written = time.monotonic() - started
    assert not writer.is_alive() and failures == []
    # Concurrent writers finish in any order: wait until all 1000 reached the page.
    page.wait_for_function(
        "(p) => document.querySelectorAll('#log .row').length >= 1000 && "
        "[...document.querySelectorAll('#log .row')].filter("
        "  (r) => r.textContent.includes(p)).length === 1000",
        arg=prefix,
        timeout=10_000,
    )
    shown = time.monotonic() - started
    gap = page.evaluate("() => { cancelAnimationFrame(window.gapFrame); return window.maxGap; }")
    rows = page.locator("#log .row").count()
    skipped = page.locator("#log .row.marker", has_text="skipped").count()
    print(
        f"burst: written in {written:.2f} s, all shown after {shown:.2f} s, "
        f"longest frame gap {gap:.0f} ms, {rows} rows"
    )
    assert rows <= 2000
    assert skipped == 0
    assert gap < 1500, f"the page froze for {gap:.0f} ms"
    # Still responsive: a filter change over the full buffer applies at once.
    started = time.monotonic()
    page.select_option("#filter-severity", "0")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#log .row:not(.marker) .b')]"
        ".every((b) => b.textContent === 'EMERG')"
    )
    assert time.monotonic() - started < 2.0
    tab.close()


def test_phone_width_has_no_horizontal_overflow(browser: Browser, device: Server) -> None:
    write(device, "a long line " + "x" * 300 + " that must wrap on a phone", 4)
    tab = Tab(browser, device, "root", PHONE)
    tab.wait_live()
    page = tab.page
    overflow = page.evaluate(
        """() => {
        const width = document.documentElement.clientWidth;
        const wide = [...document.querySelectorAll('button, input, select, a, label, meter, #log')]
          .filter((e) => e.getClientRects().length)
          .filter((e) => { const r = e.getBoundingClientRect();
                           return r.left < 0 || r.right > width + 0.5; })
          .map((e) => e.id || e.tagName);
        return {scroll: document.documentElement.scrollWidth, width, wide};
    }"""
    )
    assert overflow["scroll"] <= overflow["width"], overflow
    assert overflow["wide"] == [], overflow
    # Scrolled to the newest entry, which wraps instead of widening the page.
    tab.row("that must wrap on a phone").wait_for()
    assert page.locator("#log").evaluate(
        "(log) => log.scrollHeight - log.scrollTop - log.clientHeight < 2"
    )
    screenshot(page, "logs-phone.png", full_page=True)
    tab.close()


def test_long_lines_times_highlights_audit_and_the_write_limit(
    browser: Browser, device: Server
) -> None:
    token = unique("Needle")
    long_message = f"{token} long " + "x" * (4096 - len(token) - 6)
    write(device, long_message, 4)
    write(device, f"short {token} and {token.upper()} again")
    write(device, f"{token} <b>bold</b> <img src=x onerror=window.pwned=1>")
    set_persistent(device, True)
    set_persistent(device, False)  # an audit entry the card shows (a change is audited)
    tab = Tab(browser, device, "root", DESKTOP)
    tab.wait_live()
    page = tab.page

    # Times say their date and zone: a title on each, a note on the device's offset.
    offset = status(device)["time"][-6:]
    title = tab.row("short " + token).locator("time.t").get_attribute("title") or ""
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} UTC\{offset}", title), title
    assert page.inner_text("#tz-note") == f"Times are the device's (UTC{offset})"

    # A 4096-character line is clamped to a few lines; its button (keyboard) or a click on
    # it opens and closes it.
    row = tab.row(token + " long")
    more = row.locator("button.more")
    assert re.fullmatch(r"Show all 41\d\d characters", more.inner_text())  # the whole line
    assert more.get_attribute("aria-expanded") == "false"
    clamped = (row.bounding_box() or {})["height"]
    assert clamped < 130, clamped
    more.focus()
    page.keyboard.press("Enter")
    assert more.get_attribute("aria-expanded") == "true"
    opened = (row.bounding_box() or {})["height"]
    assert opened > 4 * clamped, (clamped, opened)
    assert more.inner_text() == "Show less"
    row.locator(".clip").click()
    assert more.get_attribute("aria-expanded") == "false"
    assert (row.bounding_box() or {})["height"] == clamped

    # Text-filter matches are highlighted: <mark> elements around text, never markup.
    page.fill("#filter-text", token.lower())
    page.wait_for_function(
        "(t) => document.querySelectorAll('#log mark').length === 4 && "
        "[...document.querySelectorAll('#log .row:not(.marker)')]"
        ".every((r) => r.textContent.toLowerCase().includes(t))",
        arg=token.lower(),
    )
    marks = tab.row("short " + token).locator("mark").all_inner_texts()
    assert marks == [token, token.upper()]
    row.scroll_into_view_if_needed()
    screenshot(page, "logs-highlight.png")
    page.fill("#filter-text", "<b>bold</b> <img")
    page.wait_for_function("() => document.querySelectorAll('#log mark').length === 1")
    assert page.locator("#log mark").inner_text() == "<b>bold</b> <img"
    assert page.locator("#log b, #log img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    page.fill("#filter-text", "")

    # The audit log card (AXIS OS 12.5+): the newest entries first, as text.
    page.wait_for_selector("#audit[data-state='shown']")
    entries = page.eval_on_selector_all("#audit-lines li", "(lis) => lis.map((li) => li.innerText)")
    assert 0 < len(entries) <= 20
    assert any("log.v1.persistent.enabled (false)" in entry for entry in entries)
    tags = page.eval_on_selector_all("#audit-lines li *", "(els) => els.map((e) => e.tagName)")
    assert set(tags) <= {"TIME", "SPAN"}

    # maxlength cuts silently: the form says when the limit is reached, and what a paste lost.
    page.fill("#write-message", "y" * 5000)
    assert page.eval_on_selector("#write-message", "(i) => i.value.length") == 4096
    note = page.locator("#write-count")
    assert note.inner_text() == "4096 of 4096 characters: the limit. Anything longer is cut."
    assert "limit" in (note.get_attribute("class") or "")
    page.fill("#write-message", "")
    assert note.inner_text() == ""
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=device.url)
    page.evaluate("(n) => navigator.clipboard.writeText('z'.repeat(n))", 5000)
    page.fill("#write-message", "abc")
    page.keyboard.press("Control+V")
    page.wait_for_function("() => document.getElementById('write-count').textContent !== ''")
    assert note.inner_text() == (
        "The pasted text had 5000 characters; only 4093 fit: a message holds at most 4096 "
        "(4096 of 4096 now)."
    )
    tab.close()


@pytest.mark.parametrize("firmware", ["12.4", "10.12"])
def test_no_audit_card_before_axis_os_12_5(browser: Browser, tmp_path: Path, firmware: str) -> None:
    """No audit log before 12.5; on 10.12 no Log API either, yet the admin's live log works."""
    server = start_server(tmp_path / "state", "--firmware", firmware)
    try:
        tab = Tab(browser, server, "root", DESKTOP)
        tab.page.wait_for_selector("#audit[data-state='absent']", state="attached")
        assert not tab.page.locator("#audit").is_visible()
        assert [u for u in tab.requests if "auditlog.cgi" in u] != []  # asked once, 404
        tab.wait_live()
        assert tab.page.locator("#persistent").is_disabled() == (firmware == "10.12")
        tab.close()
    finally:
        if server.proc:
            server.stop()


def test_page_follows_the_device_across_a_reboot(browser: Browser, tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.5")
    try:
        first_boot = status(server)["boot_id"]
        # A small desktop: the status row's longer texts would not fit on one line there.
        tab = Tab(browser, server, "root", SMALL_DESKTOP)
        tab.wait_live()
        page = tab.page
        before = unique("just before the reboot")
        write(server, before)
        tab.row(before).wait_for(timeout=2_000)
        # Watch, frame by frame, what the status row says and where the log, the text filter
        # and the status row are: the reboot's messages must not move any of them.
        page.evaluate(
            """() => {
            const $ = (id) => document.getElementById(id);
            const say = () => $('stream-state').textContent + ' | ' + $('device').textContent;
            const where = () => {
                const log = $('log').getBoundingClientRect();
                const text = $('filter-text').getBoundingClientRect();
                const row = $('stream-state').getBoundingClientRect();
                return [log.top, text.left, text.width, row.top, row.height].join(' ');
            };
            window.layout = {places: [where()], said: [say()]};
            const tick = () => {
                const seen = window.layout;
                if (seen.places.at(-1) !== where()) seen.places.push(where());
                if (seen.said.at(-1) !== say()) seen.said.push(say());
                window.layoutFrame = requestAnimationFrame(tick);
            };
            window.layoutFrame = requestAnimationFrame(tick);
        }"""
        )
        with client_for(server) as admin:
            rpc = {"apiVersion": "1.0", "method": "reboot"}
            assert "error" not in admin.post("/axis-cgi/firmwaremanagement.cgi", json=rpc).json()
        page.wait_for_function(
            "() => document.getElementById('stream-state').textContent.includes('rebooting')"
        )
        assert tab.row(f"boot {first_boot}").count() >= 1
        # Back with a new boot: its log, which names the previous one, follows the old boot's
        # lines below a divider.
        page.wait_for_function(
            "(old) => document.getElementById('stream-state').dataset.state === 'live' && "
            "document.getElementById('log').textContent.includes(`previous boot ${old}`)",
            arg=first_boot,
            timeout=15_000,
        )
        new_boot = status(server)["boot_id"]
        assert new_boot != first_boot
        assert tab.row(f"ending boot {first_boot}").count() == 0  # the old boot's
        tab.row(f"boot {new_boot}").wait_for(timeout=2_000)
        page.wait_for_function(
            "(boot) => document.getElementById('device').textContent.includes(boot)",
            arg=new_boot[:8],
            timeout=10_000,
        )
        divider = page.locator("#log .row.boot")
        assert divider.count() == 1
        assert divider.inner_text() == f"\u2014 new boot {new_boot[:8]} \u2014"
        assert new_boot in (divider.get_attribute("title") or "")
        order = page.evaluate(
            """([old, previous]) => {
            const rows = [...document.querySelectorAll('#log .row')];
            const at = (text) => rows.findIndex((r) => r.textContent.includes(text));
            return [at(old), rows.findIndex((r) => r.classList.contains('boot')), at(previous)];
        }""",
            [before, f"previous boot {first_boot}"],
        )
        assert -1 < order[0] < order[1] < order[2], order
        layout = page.evaluate(
            "() => { cancelAnimationFrame(window.layoutFrame); return window.layout; }"
        )
        assert any("rebooting" in said for said in layout["said"]), layout
        assert len(layout["places"]) == 1, layout  # nothing moved
        divider.scroll_into_view_if_needed()
        screenshot(page, "logs-new-boot.png")
        tab.close()
    finally:
        if server.proc:
            server.stop()


# ----- the remote syslog card (admins only) ------------------------------------------------


def remote_syslog(server: Server, method: str, params: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"apiVersion": "1.2", "method": method}
    if params is not None:
        body["params"] = params
    with client_for(server) as admin:
        reply = admin.post("/axis-cgi/remotesyslog.cgi", json=body)
        assert reply.status_code == 200 and "error" not in reply.json(), reply.text
        return reply.json()["data"]


def test_admin_sets_up_remote_syslog_and_sees_its_health(browser: Browser, device: Server) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    try:
        tab = Tab(browser, device, "root", DESKTOP)
        page = tab.page
        card = page.locator("#remote-syslog")
        card.wait_for()
        page.wait_for_function("() => document.getElementById('rs-state').textContent !== ''")

        # One UDP server at Debug, from the form; setup turns forwarding on.
        page.fill("#rs1-address", "127.0.0.1")
        page.fill("#rs1-port", str(port))
        page.select_option("#rs1-protocol", "UDP")
        page.select_option("#rs1-format", "RFC3164")
        page.select_option("#rs1-severity", "Debug")
        page.fill("#rs2-address", "")
        page.click("#rs-form button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('rs-state').textContent.startsWith('Forwarding is on')"
        )
        item = page.locator("#rs-servers li")
        assert item.count() == 1
        text = item.inner_text()
        assert f"UDP 127.0.0.1:{port}" in text and "RFC3164" in text and "Debug" in text
        assert "type All" in text
        assert remote_syslog(device, "status")["servers"][0]["port"] == port

        # Disable, enable: the buttons follow the state.
        page.click("#rs-disable")
        page.wait_for_function(
            "() => document.getElementById('rs-state').textContent === 'Forwarding is off'"
        )
        assert "Not forwarding" in item.inner_text()
        assert page.locator("#rs-test").is_disabled()
        page.click("#rs-enable")
        page.wait_for_function(
            "() => document.getElementById('rs-state').textContent.startsWith('Forwarding is on')"
        )

        # Test messages reach the server (8 at Debug); the card counts them as sent.
        page.click("#rs-test")
        page.wait_for_function(
            "() => document.getElementById('rs-result').textContent.startsWith('Test messages')"
        )
        tests: set[bytes] = set()
        while len(tests) < 8:
            datagram = receiver.recv(65536)
            if b"remote-syslogd-test" in datagram:
                tests.add(datagram.split(b"This is ")[-1])
        page.wait_for_function(
            "() => /Sent ([89]|[1-9][0-9]+) /.test(document.getElementById('rs-servers')"
            ".textContent)",
            timeout=8_000,
        )
        assert "No problem" in item.inner_text()
        unlabelled = card.evaluate(
            "(c) => [...c.querySelectorAll('input, select')]"
            ".filter((e) => e.labels.length === 0).map((e) => e.id)"
        )
        assert unlabelled == []
        page.locator("#rs-result").scroll_into_view_if_needed()
        screenshot(page, "logs-remote-syslog.png")
        tab.close()
    finally:
        receiver.close()
        remote_syslog(device, "setup", {"servers": []})


def test_remote_syslog_errors_stay_text(browser: Browser, device: Server) -> None:
    tab = Tab(browser, device, "root", DESKTOP)
    page = tab.page
    page.locator("#remote-syslog").wait_for()
    # The CGI refuses the address and echoes it in `details.address`: shown as text.
    hostile = "<img src=x onerror=window.pwned=1>"
    page.fill("#rs1-address", hostile)
    page.fill("#rs2-address", "")
    page.click("#rs-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('rs-result').textContent.includes('failed')"
    )
    result = page.inner_text("#rs-result")
    assert "Invalid parameter value specified (2104" in result
    assert hostile in result
    assert page.locator("#remote-syslog img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    assert remote_syslog(device, "status")["servers"] == []
    tab.close()


# ----- the live feed without a browser -----------------------------------------------------


def read_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event name, decoded data) from an SSE line iterator; comments are skipped."""
    name, data = "message", ""
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads(data)
            name, data = "message", ""
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]


def status(server: Server, user: str = "root") -> dict[str, Any]:
    with client_for(server, user) as client:
        reply = client.get("/logs/status")
        assert reply.status_code == 200
        data: dict[str, Any] = reply.json()
        return data


def test_events_need_an_admin(device: Server) -> None:
    assert httpx.get(device.url + "/logs/events").status_code == 401
    assert httpx.get(device.url + "/logs/status").status_code == 401
    assert httpx.get(device.url + "/").status_code == 401
    for user in ("viewer", "op"):
        with client_for(device, user, digest=True) as client:
            assert client.get("/logs/events").status_code == 403
            assert client.get("/logs").status_code == 200
        data = status(device, user)
        assert data["role"] == USERS[user][0]
        assert data["may"]["read_log"] is False
        assert data["may"]["set_persistent"] is False
    data = status(device)
    assert data["may"]["read_log"] is True
    assert data["persistent"]["cap"] == 64 << 20
    assert str(uuid.UUID(data["boot_id"])) == data["boot_id"]


def test_events_stream_snapshot_then_new_lines(device: Server) -> None:
    before = unique("before")
    write(device, before)
    after = unique("after")
    with client_for(device, digest=True) as client, client.stream("GET", "/logs/events") as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert reply.headers["cache-control"] == "no-store"
        events = read_events(reply.iter_lines())
        name, snapshot = next(events)
        assert name == "snapshot"
        assert any(before in line for line in snapshot["lines"])
        assert snapshot["hostname"] in snapshot["lines"][-1]
        assert status(device)["live_readers"] >= 1
        write(device, after, 5)
        for name, data in events:
            assert name == "message"
            if any(after in line for line in data if isinstance(line, str)):
                break
    # The subscription ends with the connection.
    deadline = time.monotonic() + 5
    while status(device)["live_readers"] > 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_slow_reader_never_blocks_writers(device: Server) -> None:
    """A client that stops reading loses lines (with a gap marker), writers do not wait."""
    token = base64.b64encode(f"root:{USERS['root'][1]}".encode()).decode()
    auth = f"Basic {token}"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", device.port))
    sock.sendall(
        f"GET /logs/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n".encode()
    )
    try:
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        payload = "y" * 4000
        slowest = 0.0
        failures: list[str] = []
        started = time.monotonic()

        async def flood() -> None:
            nonlocal slowest
            basic = httpx.BasicAuth("root", USERS["root"][1])
            async with httpx.AsyncClient(base_url=device.url, auth=basic, timeout=20) as client:
                numbers = iter(range(1500))

                async def worker() -> None:
                    nonlocal slowest
                    for n in numbers:
                        t0 = time.monotonic()
                        body = {"data": {"msg": f"flood {n} {payload}", "severity": 7}}
                        reply = await client.post(f"{API}/writeMessage", json=body)
                        if reply.status_code != 200:
                            failures.append(reply.text)
                        slowest = max(slowest, time.monotonic() - t0)

                await asyncio.gather(*(worker() for _ in range(8)))

        # In a thread: the module's sync Playwright keeps an event loop in this one.
        writer = threading.Thread(target=asyncio.run, args=(flood(),))
        writer.start()
        writer.join(60)
        assert not writer.is_alive() and failures == []
        elapsed = time.monotonic() - started
        print(f"6 MB written past a stalled reader in {elapsed:.2f} s, slowest {slowest:.3f} s")
        assert slowest < 2.0
        assert elapsed < 30
        # Now read: the stream carries a gap marker (the queue was bounded), then goes on.
        last = unique("after the flood")
        write(device, last)
        sock.settimeout(10)
        received = bytearray()
        deadline = time.monotonic() + 15
        while last.encode() not in received[-(1 << 16) :]:
            assert time.monotonic() < deadline, "the stream did not recover"
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed the stream"
            received += chunk
            assert len(received) < 64 << 20, "more than the bounds allow"
        gaps = [
            item
            for line in bytes(received).split(b"\n")
            if line.startswith(b"data: [")
            for item in json.loads(line[6:])
            if isinstance(item, int)
        ]
        assert gaps and sum(gaps) > 0
    finally:
        sock.close()


def test_live_readers_are_limited(device: Server) -> None:
    token = base64.b64encode(f"root:{USERS['root'][1]}".encode()).decode()
    request = f"GET /logs/events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n"
    readers: list[socket.socket] = []
    # Readers of earlier tests leave once the server notices their sockets closed: counting
    # them now and leaving room for them could let the refused request in after they left.
    deadline = time.monotonic() + 10
    while status(device)["live_readers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        for _ in range(MAX_FOLLOWERS):
            sock = socket.create_connection(("127.0.0.1", device.port))
            readers.append(sock)
            sock.sendall(request.encode())
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
        assert status(device)["live_readers"] == MAX_FOLLOWERS
        with client_for(device) as admin:
            refused = admin.get("/logs/events")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "10"
    finally:
        for sock in readers:
            sock.close()


def test_follower_queue_is_bounded() -> None:
    follower = Follower(max_lines=3, max_chars=1000)
    for n in range(10):
        follower.line(f"line {n}")
    follower.line("x" * 2000)  # larger than the queue: counted, not kept
    assert follower.take() == ["line 0", "line 1", "line 2", 8]
    follower.line("line 10")
    assert follower.take() == ["line 10"]
    assert follower.skipped_total == 8
    default = Follower()
    for n in range(QUEUE_LINES + 5):
        default.line(str(n))
    taken = default.take()
    assert len(taken) == QUEUE_LINES + 1 and taken[-1] == 5
    default.end("reboot")
    assert default.ended == "reboot"


def test_streams_end_on_reboot_and_on_shutdown(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.3")
    try:
        first_boot = status(server)["boot_id"]
        with client_for(server) as admin, admin.stream("GET", "/logs/events") as reply:
            events = read_events(reply.iter_lines())
            assert next(events)[0] == "snapshot"
            rpc = {"apiVersion": "1.0", "method": "reboot"}
            assert "error" not in admin.post("/axis-cgi/firmwaremanagement.cgi", json=rpc).json()
            started = time.monotonic()
            ending = [data for name, data in events if name == "end"]
            assert ending == [{"reason": "reboot"}]
            assert time.monotonic() - started < 3
        deadline = time.monotonic() + 20
        while True:  # until the new boot answers
            try:
                if status(server)["boot_id"] != first_boot:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with client_for(server) as admin, admin.stream("GET", "/logs/events") as reply:
            events = read_events(reply.iter_lines())
            assert next(events)[0] == "snapshot"
            assert server.proc is not None
            started = time.monotonic()
            server.proc.terminate()
            ending = [data for name, data in events if name == "end"]
            assert ending == [{"reason": "shutdown"}]
            assert server.proc.wait(10) == 0
            assert time.monotonic() - started < 4  # not held up by the open stream
    finally:
        if server.proc:
            server.stop()
