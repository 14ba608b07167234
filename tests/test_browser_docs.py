"""The browsable documentation renders in headless Chromium (Debian's, driven by Playwright)
with no network beyond the device: Swagger UI shows the Log API's operations and the doc page
renders doc.md. Screenshots go to test-artifacts/."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Request, Route

from chromium import ARTIFACTS, browser
from servers import USERS, Server

__all__ = ["browser"]  # a fixture, used by name


def open_page(
    browser: Browser, server: Server, path: str
) -> tuple[Page, BrowserContext, list[str]]:
    """Load `path` as admin; return the page, its context and every URL it tried outside the
    device."""
    context = browser.new_context(
        http_credentials={"username": "root", "password": USERS["root"][1]},
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    foreign: list[str] = []
    device = urlsplit(server.url).netloc

    def guard(route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc == device:
            route.continue_()
        else:  # no network: anything else is refused and remembered
            foreign.append(request.url)
            route.abort()

    page.route("**/*", guard)
    page.goto(server.url + path)
    return page, context, foreign


def test_swagger_ui_renders_the_log_api(browser: Browser, shared_server: Server) -> None:
    page, context, foreign = open_page(
        browser,
        shared_server,
        "/config/web-ui/swagger-ui/?url=/config/discover/apis/log/v1/openapi.json",
    )
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/log/v1/writeMessage" in " ".join(paths)
    assert page.locator(".info .title").inner_text().startswith("Log")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "swagger-ui.png"), full_page=False)
    context.close()
    assert foreign == []


def test_doc_page_renders_doc_md(browser: Browser, shared_server: Server) -> None:
    page, context, foreign = open_page(
        browser,
        shared_server,
        "/config/web-ui/cu-doc.html?md-doc-loc=/config/discover/apis/log/v1/doc.md",
    )
    page.wait_for_selector("#doc h1", timeout=15_000)
    assert page.locator("#doc h1").inner_text() == "Log API"
    assert page.locator("#doc h2").all_inner_texts()[:3] == ["Structure", "Entities", "Data types"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "doc-page.png"), full_page=False)
    context.close()
    assert foreign == []
