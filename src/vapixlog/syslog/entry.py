"""One system log entry as structured fields, for readers that need more than the line.

The volatile log and the journal keep the formatted line (`line.format_line`); remote syslog
needs the parts (time with its offset, severity, tag, pid, message) to build RFC 3164 and
RFC 5424 messages. `tag` and `message` are the text as written, not yet escaped: each output
escapes what its own format requires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vapixlog.severity import Severity


@dataclass(frozen=True, slots=True)
class Entry:
    time: datetime  # aware: local time with its UTC offset, as in the log line
    hostname: str
    severity: Severity
    tag: str
    pid: int
    message: str
    audit: bool  # an audit event (what remote syslog `type: Audit` forwards)


# Called on the event loop thread inside every write: must be quick, never block or raise.
EntryTap = Callable[[Entry], None]
