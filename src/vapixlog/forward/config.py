"""Remote syslog settings: the servers, their defaults, how they are checked and stored.

The names and values are the API's (remote-syslog.md section 3): a server object in
`remotesyslog.cgi` is exactly `Server.to_json()`. The settings live in `remote-syslog.json`
in the device's state dir, replaced atomically, so a crash leaves the old or the new file.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vapixlog.files import write_atomic
from vapixlog.severity import API_NAMES, Severity

MAX_SERVERS = 2
SETTINGS_FILE = "remote-syslog.json"
CA_FILE = "remote-syslog-ca.pem"  # the copy of `serve --remote-syslog-ca`


class Protocol(enum.StrEnum):
    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"


class Format(enum.StrEnum):
    AXIS = "AXIS"
    RFC3164 = "RFC3164"
    RFC5424 = "RFC5424"


class LogType(enum.StrEnum):
    ALL = "All"
    AUDIT = "Audit"


SEVERITY_NAMES = API_NAMES  # the API's names, in RFC 5424 order (Emergency = 0 ... Debug = 7)
_SEVERITY_BY_NAME = {name: Severity(value) for value, name in enumerate(SEVERITY_NAMES)}

# The API reference's per-format table; the knowledge base's flat "TCP 601" disagrees.
DEFAULT_PORTS = {
    Protocol.UDP: {Format.AXIS: 514, Format.RFC3164: 514, Format.RFC5424: 514},
    Protocol.TCP: {Format.AXIS: 514, Format.RFC3164: 514, Format.RFC5424: 601},
    Protocol.TLS: {Format.AXIS: 6514, Format.RFC3164: 6514, Format.RFC5424: 6514},
}

# A DNS name (RFC 1123 labels); the documented examples are all IP literals, and a name is
# what an operator types too, so both are accepted.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Server:
    address: str
    port: int
    protocol: Protocol = Protocol.TLS
    syslog_format: Format = Format.RFC5424
    severity: Severity = Severity.WARNING
    log_type: LogType = LogType.ALL

    def to_json(self) -> dict[str, Any]:
        """The API's server object; always all six fields."""
        return {
            "address": self.address,
            "port": self.port,
            "protocol": str(self.protocol),
            "syslogFormat": str(self.syslog_format),
            "severity": SEVERITY_NAMES[self.severity],
            "type": str(self.log_type),
        }

    @property
    def destination(self) -> tuple[str, int, Protocol]:
        """Where messages go: two servers with the same destination are identical."""
        try:
            host = ipaddress.ip_address(self.address).compressed
        except ValueError:
            host = self.address.lower().rstrip(".")
        return host, self.port, self.protocol

    def describe(self) -> str:
        """`TLS 192.0.2.10:6514`, for log lines."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    servers: tuple[Server, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "servers": [s.to_json() for s in self.servers]}


@dataclass(frozen=True)
class Problem:
    """A property of one server object that is missing or not valid."""

    missing: bool  # True: required but absent (2103); False: an invalid value (2104)
    property_name: str
    address: str | None  # the server's address, when it has a usable one


def valid_address(address: str) -> bool:
    """An IPv4 or IPv6 literal, or a DNS host name."""
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        pass
    name = address.removesuffix(".")
    if not 0 < len(name) <= 253 or name.replace(".", "").isdigit():
        return False  # all digits: a mistyped IPv4 address, not a name
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def parse_server(obj: object) -> Server | list[Problem]:
    """A server object of a `setup` request, defaults applied; or what is wrong with it,
    in the order of the fields (address, port, protocol, syslogFormat, severity, type).
    Unknown members are ignored, as JSON-RPC CGIs on devices do."""
    if not isinstance(obj, dict):
        return [Problem(False, "servers", None)]
    problems: list[Problem] = []
    address = obj.get("address")
    named = address if isinstance(address, str) else None
    if "address" not in obj:
        problems.append(Problem(True, "address", None))
    elif not isinstance(address, str) or not valid_address(address):
        problems.append(Problem(False, "address", named))

    def choice(key: str, kind: type[enum.StrEnum], default: enum.StrEnum) -> Any:
        value = obj.get(key, default)
        if isinstance(value, str) and value in kind.__members__.values():
            return kind(value)
        problems.append(Problem(False, key, named))
        return default

    port = obj.get("port")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535
    ):
        problems.append(Problem(False, "port", named))
    protocol = choice("protocol", Protocol, Protocol.TLS)
    syslog_format = choice("syslogFormat", Format, Format.RFC5424)
    severity_name = obj.get("severity", "Warning")
    severity = _SEVERITY_BY_NAME.get(severity_name) if isinstance(severity_name, str) else None
    if severity is None:
        problems.append(Problem(False, "severity", named))
    log_type = choice("type", LogType, LogType.ALL)
    if problems:
        return problems
    assert isinstance(address, str) and severity is not None
    return Server(
        address=address,
        port=port if isinstance(port, int) else DEFAULT_PORTS[protocol][syslog_format],
        protocol=protocol,
        syslog_format=syslog_format,
        severity=severity,
        log_type=log_type,
    )


def has_identical(servers: tuple[Server, ...]) -> bool:
    destinations = [server.destination for server in servers]
    return len(set(destinations)) != len(destinations)


def load(state_dir: Path) -> Settings:
    """The stored settings; defaults (off, no server) when there are none or they are
    unreadable (written by hand, or by another version)."""
    try:
        stored = orjson.loads((state_dir / SETTINGS_FILE).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return Settings()
    if not isinstance(stored, dict) or not isinstance(stored.get("servers"), list):
        return Settings()
    parsed = [parse_server(obj) for obj in stored["servers"][:MAX_SERVERS]]
    servers = tuple(s for s in parsed if isinstance(s, Server))
    return Settings(enabled=stored.get("enabled") is True and bool(servers), servers=servers)


def save(state_dir: Path, settings: Settings) -> None:
    """Replace the stored settings atomically (blocking: call it off the event loop)."""
    data = orjson.dumps(settings.to_json(), option=orjson.OPT_INDENT_2)
    write_atomic(state_dir / SETTINGS_FILE, data)
