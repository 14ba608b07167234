"""`vapixlog.client`: a Python client for the VAPIX Log API of Axis devices and of
`vapixlog serve`.

>>> from vapixlog.client import Client, Severity
>>> with Client("http://127.0.0.1:8080", user="root", password="secret") as client:
...     client.write_message("hello from a script", Severity.NOTICE)
...     result = client.capture_boot_logs("captures/")
...     print(result.path, result.bytes, f"{result.seconds:.1f} s")

`AsyncClient` has the same calls as coroutines; `capture_fleet` runs the capture on many
devices at once. Every failure is a `VapixError` subclass. See the README, "Client library".
"""

from vapixlog.client._boot import BootState
from vapixlog.client._capture import CaptureResult, Stage, capture_file_name
from vapixlog.client._client import AsyncClient, normalize_url
from vapixlog.client._errors import (
    AddressBlockedError,
    ArchiveError,
    AuthenticationError,
    CertificatePinError,
    DeviceUnavailableError,
    DuplicateDeviceError,
    MethodNotAllowedError,
    NoLogApiError,
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
from vapixlog.client._journal import JOURNAL_NAME, JournalBusyError, device_key, unique_devices
from vapixlog.client._remote_syslog import RemoteSyslogStatus, SyslogServer
from vapixlog.client._retry import RetryPolicy
from vapixlog.client._sync import Client
from vapixlog.client.fleet import DeviceOutcome, FleetProgress, Outcome, capture_fleet
from vapixlog.severity import Severity

__all__ = [
    "JOURNAL_NAME",
    "AddressBlockedError",
    "ArchiveError",
    "AsyncClient",
    "AuthenticationError",
    "BootState",
    "CaptureResult",
    "CertificatePinError",
    "Client",
    "DeviceOutcome",
    "DeviceUnavailableError",
    "DuplicateDeviceError",
    "FleetProgress",
    "JournalBusyError",
    "MethodNotAllowedError",
    "NoLogApiError",
    "NotFoundError",
    "Outcome",
    "PermissionDeniedError",
    "RateLimitedError",
    "RemoteSyslogStatus",
    "RetryPolicy",
    "RpcError",
    "ServerError",
    "Severity",
    "Stage",
    "SyslogServer",
    "TlsError",
    "UnexpectedResponseError",
    "ValidationError",
    "VapixError",
    "capture_file_name",
    "capture_fleet",
    "device_key",
    "normalize_url",
    "unique_devices",
]
