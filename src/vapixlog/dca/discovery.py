"""Discovery (`/config/discover`, dca-framework.md section 4): which APIs the device has,
where their REST root, model, documentation and OpenAPI are.

`GET /config/discover` answers the whole document; a sub-path answers the part of it at that
path (`/config/discover/apis/log` is `document["apis"]["log"]`). Per API version:
`model.json`, `doc.md` and `openapi.json`; device-wide: `/config/discover/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vapixlog.dca import envelope
from vapixlog.dca.binding import BoundApi
from vapixlog.dca.docmd import model_markdown
from vapixlog.dca.errors import NotFoundError
from vapixlog.dca.openapi import api_openapi, openapi_document

FRAMEWORK_VERSION = "1.1.0"
DISCOVER = "/config/discover"
_SWAGGER_UI = "/config/web-ui/swagger-ui/?url="
_DOC_HTML = "/config/web-ui/cu-doc.html?md-doc-loc="


def api_entry(api: BoundApi) -> dict[str, Any]:
    model = api.model
    base = f"{DISCOVER}/apis/{model.id}/v{model.major}"
    return {
        "doc": f"{base}/doc.md",
        "doc_html": f"{_DOC_HTML}{base}/doc.md",
        "model": f"{base}/model.json",
        "rest_api": f"/config/rest/{model.id}/{model.version_segment}",
        "rest_openapi": f"{base}/openapi.json",
        "rest_ui": f"{_SWAGGER_UI}{base}/openapi.json",
        "state": model.state,
        "version": model.version,
    }


def discovery_document(apis: Sequence[BoundApi]) -> dict[str, Any]:
    listed: dict[str, dict[str, Any]] = {}
    for api in apis:
        listed.setdefault(api.model.id, {})[f"v{api.model.major}"] = api_entry(api)
    return {
        "apis": listed,
        "device": {
            "rest_openapi": f"{DISCOVER}/openapi.json",
            "rest_ui": f"{_SWAGGER_UI}{DISCOVER}/openapi.json",
        },
        "framework_version": FRAMEWORK_VERSION,
    }


def browsable_documents(apis: Sequence[BoundApi]) -> tuple[set[str], set[str]]:
    """(Markdown documents, OpenAPI documents): what the web UI's pages may show."""
    entries = [api_entry(api) for api in apis]
    markdown = {entry["doc"] for entry in entries}
    openapi = {entry["rest_openapi"] for entry in entries} | {f"{DISCOVER}/openapi.json"}
    return markdown, openapi


def routes(apis: Sequence[BoundApi], *, firmware: str) -> list[Route]:
    """Discovery routes; every document is built once, and shared by every device whose APIs
    have the same shape (a fleet of N devices holds one copy, not N)."""
    shape = (firmware, tuple((id(api.model), api.aliases, api.put_only) for api in apis))
    documents = _SHARED.get(shape)
    if documents is None:
        documents = _SHARED[shape] = _documents(apis, firmware)

    async def discover(request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        response = documents.get(path)
        if response is None:
            return envelope.error(NotFoundError(request.url.path))
        return response

    return [
        Route(DISCOVER, discover, methods=["GET"]),
        Route(DISCOVER + "/{rest:path}", discover, methods=["GET"]),
    ]


# Models are loaded once per process (cached), so their ids are stable keys.
_SHARED: dict[tuple[str, tuple[tuple[int, tuple[str, ...], bool], ...]], dict[str, Response]] = {}


def _documents(apis: Sequence[BoundApi], firmware: str) -> dict[str, Response]:
    documents: dict[str, Response] = {}
    document = discovery_document(apis)
    documents[DISCOVER] = _json(document)
    for api_id, versions in document["apis"].items():
        documents[f"{DISCOVER}/apis/{api_id}"] = _json(versions)
        for version, entry in versions.items():
            documents[f"{DISCOVER}/apis/{api_id}/{version}"] = _json(entry)
    documents[f"{DISCOVER}/apis"] = _json(document["apis"])
    documents[f"{DISCOVER}/device"] = _json(document["device"])
    documents[f"{DISCOVER}/framework_version"] = _json(FRAMEWORK_VERSION)
    for api in apis:
        base = f"{DISCOVER}/apis/{api.model.id}/v{api.model.major}"
        documents[f"{base}/model.json"] = _json(api.model.document)
        documents[f"{base}/doc.md"] = Response(
            model_markdown(api.model), media_type="text/markdown; charset=utf-8"
        )
        documents[f"{base}/openapi.json"] = _json(api_openapi(api))
    documents[f"{DISCOVER}/openapi.json"] = _json(
        openapi_document(apis, title="Device Configuration APIs", version=firmware)
    )
    return documents


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")
