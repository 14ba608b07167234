"""DCA error codes and the error envelope (ARCHITECTURE.md, "Error codes")."""

from __future__ import annotations

from collections.abc import Mapping


class DcaError(Exception):
    """An error answered with the DCA envelope: `{"status":"error","error":{...}}`."""

    code = 100
    status = 500
    prefix = "Internal error"

    def __init__(self, detail: str = "", *, headers: Mapping[str, str] | None = None) -> None:
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.prefix}: {self.detail}" if self.detail else self.prefix


class NotFoundError(DcaError):
    code, status, prefix = 1, 404, "Resource not found"


class MethodNotAllowedError(DcaError):
    code, status, prefix = 2, 405, "Method not allowed"

    def __init__(self, detail: str, *, allow: list[str]) -> None:
        super().__init__(detail, headers={"Allow": ", ".join(allow)})


class AuthenticationError(DcaError):
    code, status, prefix = 3, 401, "Authentication required"


class PermissionDeniedError(DcaError):
    code, status, prefix = 4, 403, "Permission denied"


class ValidationError(DcaError):
    code, status, prefix = 5, 400, "Validation error"


class MalformedRequestError(DcaError):
    code, status, prefix = 6, 400, "Malformed request"


class ConflictError(DcaError):
    code, status, prefix = 11, 409, "Conflict"


class PayloadTooLargeError(DcaError):
    code, status, prefix = 7, 413, "Request body too large"


class UnsupportedMediaTypeError(DcaError):
    code, status, prefix = 8, 415, "Unsupported media type"


class CrossSiteRefusedError(DcaError):
    code, status, prefix = 12, 403, "Forbidden"


class RateLimitedError(DcaError):
    code, status, prefix = 9, 429, "Rate limited"


class ServiceUnavailableError(DcaError):
    code, status, prefix = 10, 503, "Service unavailable"


class InternalError(DcaError):
    code, status, prefix = 100, 500, "Internal error"
