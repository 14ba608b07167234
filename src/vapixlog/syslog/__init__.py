"""The system log engine: line format, volatile ring, persistent journal.

The asyncio side (futures, the event loop) lives in the facade that uses these parts; see
`vapixlog.syslog.journal` for the thread contract of the persistent log.
"""

from vapixlog.syslog.journal import BatchDone, Journal, Notify
from vapixlog.syslog.line import (
    ParsedLine,
    escape,
    format_line,
    format_timestamp,
    parse_line,
    unescape,
)
from vapixlog.syslog.logfiles import list_logs, log_name
from vapixlog.syslog.volatile import VolatileLog

__all__ = [
    "BatchDone",
    "Journal",
    "Notify",
    "ParsedLine",
    "VolatileLog",
    "escape",
    "format_line",
    "format_timestamp",
    "list_logs",
    "log_name",
    "parse_line",
    "unescape",
]
