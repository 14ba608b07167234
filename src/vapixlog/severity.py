"""RFC 5424 severities, shared by the service and the client."""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Syslog severity (RFC 5424, section 6.2.1). Lower is more severe."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7

    @property
    def label(self) -> str:
        """The level name as Axis devices print it in log lines (`INFO`, `ERR`, ...)."""
        return _AXIS_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Accept a number (`3`), a name (`error`) or a device label (`err`)."""
        text = text.strip()
        if text.isdigit():
            return cls(int(text))
        key = text.upper()
        for severity in cls:
            if key in (severity.name, severity.label, _ALIASES.get(severity)):
                return severity
        raise ValueError(f"unknown severity {text!r}; use 0..7 or a name such as 'info'")


_AXIS_LABELS = {
    Severity.EMERGENCY: "EMERG",
    Severity.ALERT: "ALERT",
    Severity.CRITICAL: "CRIT",
    Severity.ERROR: "ERR",
    Severity.WARNING: "WARNING",
    Severity.NOTICE: "NOTICE",
    Severity.INFO: "INFO",
    Severity.DEBUG: "DEBUG",
}
_ALIASES = {Severity.INFO: "INFORMATIONAL", Severity.WARNING: "WARN"}


# The names the remote syslog API (remotesyslog.cgi) gives the severities, by value.
API_NAMES = (
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
)
