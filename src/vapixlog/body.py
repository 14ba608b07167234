"""Reading request bodies with a size limit, shared by the DCA engine and the CGIs."""

from __future__ import annotations

from starlette.requests import Request


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes.

    A declared `Content-Length` over the limit is refused before any of the body is read.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON (`application/json`, `application/*+json`)."""
    if content_type == "application/json":  # as most clients send it
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
