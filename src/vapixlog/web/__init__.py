"""Browsable documentation, offline: Swagger UI and a Markdown page for doc.md.

The assets (swagger-ui-dist, marked) are shipped in `assets/`, refreshed by
`scripts/update-web-assets.sh`; no page loads anything from another origin.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_UI = "/config/web-ui"
ASSETS = Path(__file__).with_name("assets")
# Only documents of this device may be shown: no page loads a spec from elsewhere.
_ALLOWED_SOURCES = ("/config/discover/",)

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{web_ui}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{web_ui}/assets/swagger-ui-bundle.js"></script>
<script src="{web_ui}/swagger-ui/init.js" data-url="{url}"></script>
</body>
</html>
"""

_SWAGGER_INIT = """
const url = document.currentScript.dataset.url;
window.ui = SwaggerUIBundle({url: url, dom_id: "#swagger-ui", deepLinking: true});
"""

_DOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API documentation</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1d1d1f; }}
pre, code {{ background: #f4f4f6; border-radius: 4px; }}
pre {{ padding: 0.75rem; overflow-x: auto; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }}
</style>
</head>
<body>
<main id="doc">Loading {source}...</main>
<script src="{web_ui}/assets/marked.min.js"></script>
<script src="{web_ui}/cu-doc.js" data-source="{source}"></script>
</body>
</html>
"""

_DOC_INIT = """
const source = document.currentScript.dataset.source;
fetch(source, {credentials: "same-origin"})
  .then((response) => {
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    return response.text();
  })
  .then((text) => { document.getElementById("doc").innerHTML = marked.parse(text); })
  .catch((error) => { document.getElementById("doc").textContent = "Cannot load: " + error; });
"""


def _source(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "")
    return value if value.startswith(_ALLOWED_SOURCES) else None


async def swagger_ui(request: Request) -> Response:
    url = _source(request, "url")
    if url is None:
        return PlainTextResponse(f"url must name a document under {_ALLOWED_SOURCES[0]}", 400)
    page = _SWAGGER_PAGE.format(title="Swagger UI", web_ui=WEB_UI, url=html.escape(url))
    return HTMLResponse(page)


async def doc_page(request: Request) -> Response:
    source = _source(request, "md-doc-loc")
    if source is None:
        return PlainTextResponse(
            f"md-doc-loc must name a document under {_ALLOWED_SOURCES[0]}", 400
        )
    return HTMLResponse(_DOC_PAGE.format(web_ui=WEB_UI, source=html.escape(source)))


def routes() -> list[BaseRoute]:
    return [
        Route(f"{WEB_UI}/swagger-ui/", swagger_ui, methods=["GET"]),
        Route(f"{WEB_UI}/swagger-ui/init.js", _js(_SWAGGER_INIT), methods=["GET"]),
        Route(f"{WEB_UI}/cu-doc.html", doc_page, methods=["GET"]),
        Route(f"{WEB_UI}/cu-doc.js", _js(_DOC_INIT), methods=["GET"]),
        Mount(f"{WEB_UI}/assets", StaticFiles(directory=ASSETS), name="web-ui-assets"),
    ]


def _js(text: str) -> Callable[[Request], Awaitable[Response]]:
    async def script(request: Request) -> Response:
        return Response(text, media_type="text/javascript")

    return script
