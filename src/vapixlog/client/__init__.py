"""`vapixlog.client`: a Python client for the VAPIX Log API of Axis devices and of
`vapixlog serve`.

>>> from vapixlog.client import Client, Severity
>>> with Client("http://127.0.0.1:8080", user="root", password="secret") as client:
...     client.write_message("hello from a script", Severity.NOTICE)
...     result = client.capture_boot_logs("captures/")
...     print(result.path, result.bytes, f"{result.seconds:.1f} s")

`AsyncClient` has the same calls as coroutines; `capture_fleet` runs the capture on many
devices at once. Every failure is a `VapixError` subclass. See docs/client.md.
"""

from typing import TYPE_CHECKING, Any

from vapixlog.severity import Severity

if TYPE_CHECKING:
    from vapixlog.client._client import (
        AsyncClient,
        CaptureResult,
        Client,
        Stage,
        capture_file_name,
        normalize_url,
    )
    from vapixlog.client._errors import (
        AuthenticationError,
        CertificatePinError,
        DeviceUnavailableError,
        MethodNotAllowedError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitedError,
        RpcError,
        ServerError,
        TlsError,
        UnexpectedResponseError,
        ValidationError,
        VapixError,
    )
    from vapixlog.client.fleet import DeviceOutcome, FleetProgress, capture_fleet

# Imported on first use, so that `vapixlog serve` (whose CLI module names this package)
# does not load httpx.
_LAZY = {
    "vapixlog.client._client": (
        "AsyncClient",
        "CaptureResult",
        "Client",
        "Stage",
        "capture_file_name",
        "normalize_url",
    ),
    "vapixlog.client._errors": (
        "AuthenticationError",
        "CertificatePinError",
        "DeviceUnavailableError",
        "MethodNotAllowedError",
        "NotFoundError",
        "PermissionDeniedError",
        "RateLimitedError",
        "RpcError",
        "ServerError",
        "TlsError",
        "UnexpectedResponseError",
        "ValidationError",
        "VapixError",
    ),
    "vapixlog.client.fleet": ("DeviceOutcome", "FleetProgress", "capture_fleet"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "CaptureResult",
    "CertificatePinError",
    "Client",
    "DeviceOutcome",
    "DeviceUnavailableError",
    "FleetProgress",
    "MethodNotAllowedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RpcError",
    "ServerError",
    "Severity",
    "Stage",
    "TlsError",
    "UnexpectedResponseError",
    "ValidationError",
    "VapixError",
    "capture_file_name",
    "capture_fleet",
    "normalize_url",
]
