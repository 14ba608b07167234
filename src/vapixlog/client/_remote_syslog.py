"""Remote syslog (`remotesyslog.cgi`, JSON-RPC): where a device forwards its log.

The calls of `AsyncClient` delegate here. Every call but `getSupportedVersions` is made at
the highest 1.x API version the device supports (asked once per client). An `error`
answer raises `PermissionDeniedError` for code 2105 (not an administrator) and `RpcError`
with the device's code otherwise; its message names every field the device refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from vapixlog.client._errors import PermissionDeniedError, RpcError, UnexpectedResponseError
from vapixlog.severity import API_NAMES

if TYPE_CHECKING:
    from vapixlog.client._client import AsyncClient

REMOTESYSLOG_CGI = "/axis-cgi/remotesyslog.cgi"
PROTOCOLS = ("UDP", "TCP", "TLS")
FORMATS = ("AXIS", "RFC3164", "RFC5424")
SEVERITIES = API_NAMES
TYPES = ("All", "Audit")
NOT_ADMIN = 2105


@dataclass(frozen=True)
class SyslogServer:
    """One remote syslog server. In `setup`, a field left None is not sent: the device
    takes its default (port by protocol and format, `TLS`, `RFC5424`, `Warning`, `All`).
    Read back from a device, a field it left out (older firmware has no `type`) is None.

    `protocol` is one of `UDP`, `TCP`, `TLS`; `syslog_format` one of `AXIS`, `RFC3164`,
    `RFC5424`; `severity` a threshold from `Emergency` to `Debug`; `type` `All` or `Audit`.
    """

    address: str
    port: int | None = None
    protocol: str | None = None
    syslog_format: str | None = None
    severity: str | None = None
    type: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The server object of the API (fields that are None left out)."""
        fields = {
            "address": self.address,
            "port": self.port,
            "protocol": self.protocol,
            "syslogFormat": self.syslog_format,
            "severity": self.severity,
            "type": self.type,
        }
        return {name: value for name, value in fields.items() if value is not None}

    @classmethod
    def from_json(cls, item: Any) -> SyslogServer:
        """A server object as a device answers it; missing or odd fields become None."""
        if not isinstance(item, dict):
            raise UnexpectedResponseError(f"a server is not a JSON object: {item!r}")

        def text(name: str) -> str | None:
            value = item.get(name)
            return value if isinstance(value, str) else None

        port = item.get("port")
        return cls(
            address=text("address") or "",
            port=port if isinstance(port, int) and not isinstance(port, bool) else None,
            protocol=text("protocol"),
            syslog_format=text("syslogFormat"),
            severity=text("severity"),
            type=text("type"),
        )


@dataclass(frozen=True)
class RemoteSyslogStatus:
    """Whether forwarding is on, and the configured servers (empty: none)."""

    enabled: bool
    servers: tuple[SyslogServer, ...]

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "servers": [s.to_json() for s in self.servers]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteSyslogStatus:
        servers = data.get("servers")
        return cls(
            enabled=data.get("enabled") is True,
            servers=tuple(SyslogServer.from_json(s) for s in servers or []),
        )


async def call(
    client: AsyncClient, method: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One JSON-RPC call to remotesyslog.cgi; its `data`."""
    return await client._rpc(REMOTESYSLOG_CGI, method, params, error=_error)


def _error(method: str, error: dict[str, Any], url: str) -> Exception:
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = str(error.get("message") or "failed")
    items = error.get("errors")
    details = [
        _details(item.get("details"))
        for item in (items if isinstance(items, list) else [error])
        if isinstance(item, dict)
    ]
    where = "; ".join(detail for detail in details if detail)
    text = f"remote syslog {method}: {message}" + (f" ({where})" if where else "")
    if code == NOT_ADMIN:
        return PermissionDeniedError(
            f"{text}: the user is not an administrator", status=200, code=code, url=url
        )
    return RpcError(text, method=method, code=code, url=url)


def _details(details: Any) -> str:
    if not isinstance(details, dict):
        return ""
    address, name = details.get("address"), details.get("propertyName")
    if address and name:
        return f"{name} of server {address}"
    return str(name or address or "")


async def supported_versions(client: AsyncClient) -> list[str]:
    """The API versions the device offers (`getSupportedVersions`), e.g. `["1.2"]`."""
    versions = (await call(client, "getSupportedVersions")).get("apiVersions")
    return [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else []


async def setup(
    client: AsyncClient, servers: list[SyslogServer | dict[str, Any]]
) -> RemoteSyslogStatus:
    """Configure the servers (at most two; none removes all) and enable forwarding."""
    items = [s.to_json() if isinstance(s, SyslogServer) else s for s in servers]
    return RemoteSyslogStatus.from_json(await call(client, "setup", {"servers": items}))


async def simple(client: AsyncClient, method: str) -> RemoteSyslogStatus:
    """`enable`, `disable`, `status` or `test`: each answers the configuration."""
    return RemoteSyslogStatus.from_json(await call(client, method))


class RemoteSyslogCalls:
    """The remote syslog calls of `AsyncClient` (admin only)."""

    async def remote_syslog_setup(
        self, servers: list[SyslogServer | dict[str, Any]]
    ) -> RemoteSyslogStatus:
        """Forward the log to these servers (at most two; `[]` removes all) and enable it.

        >>> await client.remote_syslog_setup([SyslogServer("192.0.2.10", protocol="UDP")])
        RemoteSyslogStatus(enabled=True, servers=(SyslogServer(address='192.0.2.10', ...),))
        """
        return await setup(cast("AsyncClient", self), servers)

    async def remote_syslog_enable(self) -> RemoteSyslogStatus:
        """Turn forwarding on (`RpcError` code 2200 when no server is configured)."""
        return await simple(cast("AsyncClient", self), "enable")

    async def remote_syslog_disable(self) -> RemoteSyslogStatus:
        """Turn forwarding off; the servers stay configured."""
        return await simple(cast("AsyncClient", self), "disable")

    async def remote_syslog_status(self) -> RemoteSyslogStatus:
        """Whether forwarding is on, and the servers."""
        return await simple(cast("AsyncClient", self), "status")

    async def remote_syslog_test(self) -> RemoteSyslogStatus:
        """Send the test messages, one per severity at or above each server's threshold
        (`RpcError` code 2202 while forwarding is off)."""
        return await simple(cast("AsyncClient", self), "test")

    async def remote_syslog_versions(self) -> list[str]:
        """The remotesyslog.cgi API versions the device supports (`getSupportedVersions`)."""
        return await supported_versions(cast("AsyncClient", self))
