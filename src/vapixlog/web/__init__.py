"""Browsable documentation, offline: Swagger UI and a Markdown page for doc.md.

The assets (swagger-ui-dist, marked, DOMPurify) are shipped in `assets/`, refreshed by
`scripts/update-web-assets.sh`; the pages' own script and style are files in `ui/`. No page
loads anything from another origin, and none carries inline script (the edge gives every HTML
page a strict Content-Security-Policy; Swagger UI's is relaxed only for inline styles and
`data:` images, which it needs).

Each page shows only the device's own documents: the `url` and `md-doc-loc` parameters must be
exactly one of the paths discovery lists (no `..`, encodings or other origins to smuggle).
"""

from __future__ import annotations

import html
from collections.abc import Collection
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from vapixlog.edge import content_security_policy

WEB_UI = "/config/web-ui"
ASSETS = Path(__file__).with_name("assets")
UI = Path(__file__).with_name("ui")
# Swagger UI sets inline styles and draws some icons from data: URLs.
SWAGGER_CSP = content_security_policy(style_src="'self' 'unsafe-inline'")

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Swagger UI</title>
<link rel="stylesheet" href="{web_ui}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{web_ui}/assets/swagger-ui-bundle.js"></script>
<script src="{web_ui}/ui/swagger-init.js" data-url="{url}"></script>
</body>
</html>
"""

_DOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API documentation</title>
<link rel="stylesheet" href="{web_ui}/ui/cu-doc.css">
</head>
<body>
<main id="doc">Loading {source}...</main>
<script src="{web_ui}/assets/marked.min.js"></script>
<script src="{web_ui}/assets/purify.min.js"></script>
<script src="{web_ui}/ui/cu-doc.js" data-source="{source}"></script>
</body>
</html>
"""


def routes(*, markdown: Collection[str], openapi: Collection[str]) -> list[BaseRoute]:
    """The pages, for the device's `markdown` documents and `openapi` documents (paths)."""

    def allowed(request: Request, name: str, documents: Collection[str]) -> str | None:
        value = request.query_params.get(name, "")
        return value if value in documents else None

    async def swagger_ui(request: Request) -> Response:
        url = allowed(request, "url", openapi)
        if url is None:
            return _refuse("url", openapi)
        page = _SWAGGER_PAGE.format(web_ui=WEB_UI, url=html.escape(url))
        return HTMLResponse(page, headers={"Content-Security-Policy": SWAGGER_CSP})

    async def doc_page(request: Request) -> Response:
        source = allowed(request, "md-doc-loc", markdown)
        if source is None:
            return _refuse("md-doc-loc", markdown)
        return HTMLResponse(_DOC_PAGE.format(web_ui=WEB_UI, source=html.escape(source)))

    return [
        Route(f"{WEB_UI}/swagger-ui/", swagger_ui, methods=["GET"]),
        Route(f"{WEB_UI}/cu-doc.html", doc_page, methods=["GET"]),
        Mount(f"{WEB_UI}/ui", StaticFiles(directory=UI), name="web-ui-pages"),
        Mount(f"{WEB_UI}/assets", StaticFiles(directory=ASSETS), name="web-ui-assets"),
    ]


def _refuse(name: str, documents: Collection[str]) -> Response:
    listed = ", ".join(sorted(documents))
    return PlainTextResponse(f"{name} must be one of this device's documents: {listed}\n", 400)
