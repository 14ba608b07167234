"""One system log entry as structured fields, for readers that need more than the line.

The volatile log and the journal keep the formatted line (`line.format_line`); remote syslog
needs the parts (time with its offset, severity, tag, pid, message) to build RFC 3164 and
RFC 5424 messages. `tag` and `message` are the text as written, not yet escaped: each output
escapes what its own format requires. `line` is the formatted line itself, made once by the
log: the AXIS format sends it as it is, RFC 5424 takes its time text.

A named tuple: an entry is made for every write while someone reads entries (remote syslog
forwards them), and a frozen dataclass takes three times as long to make.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from vapixlog.severity import Severity


class Entry(NamedTuple):
    time: datetime  # aware: local time with its UTC offset, as in the log line
    hostname: str
    severity: Severity
    tag: str
    pid: int
    message: str
    audit: bool  # an audit event (what remote syslog `type: Audit` forwards)
    line: str  # the log line of these fields (`line.format_line`), as the log keeps it


# Called on the event loop thread inside every write: must be quick, never block or raise.
EntryTap = Callable[[Entry], None]
