"""A real rsyslogd for end-to-end tests: loopback inputs, everything it parsed in JSON files.

`rsyslogd -n` (no daemon) with its own config, work dir and pid file. Inputs, each with its
own ruleset and output file `<input>.jsonl`:

- `udp`: imudp;
- `tcp`: imtcp, LF framing only (octet-counting detection off: an AXIS line starts with
  digits, which rsyslog would otherwise take for an octet count);
- `tls`: imtcp over GnuTLS with a certificate of the trusted test CA (octet counting,
  RFC 5425);
- `rogue`: TLS with a certificate of another CA, which the device must refuse.

Each record holds the raw message and the fields rsyslog parsed from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pki import ServerFiles
from servers import free_port

RSYSLOGD = "/usr/sbin/rsyslogd"
INPUTS = ("udp", "tcp", "tls", "rogue")
# Property -> JSON key: what rsyslog parsed from each message.
_FIELDS = {
    "rawmsg": "raw",
    "hostname": "hostname",
    "app-name": "appname",
    "procid": "procid",
    "msgid": "msgid",
    "syslogseverity": "severity",
    "syslogfacility": "facility",
    "timereported": "timestamp",
    "structured-data": "sd",
    "msg": "msg",
    "protocol-version": "version",
}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Rsyslog:
    def __init__(self, folder: Path, *, tls: ServerFiles, rogue: ServerFiles, ca: Path) -> None:
        self.folder = folder
        self.work = folder / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.ports = {
            "udp": free_udp_port(),
            "tcp": free_port(),
            "tls": free_port(),
            "rogue": free_port(),
        }
        self.config = folder / "rsyslog.conf"
        self.config.write_text(self._config(tls, rogue, ca))
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self, tls: ServerFiles, rogue: ServerFiles, ca: Path) -> str:
        fields = "\n".join(
            f'  property(outname="{key}" name="{name}" format="jsonf"'
            + (' dateFormat="rfc3339"' if name == "timereported" else "")
            + ")"
            for name, key in _FIELDS.items()
        )
        rulesets = "\n".join(
            f'ruleset(name="{name}") {{ action(type="omfile" file="{self.file(name)}" '
            'template="fields") }'
            for name in INPUTS
        )
        tls_input = 'type="imtcp" address="127.0.0.1" streamDriver.name="gtls" '
        tls_input += 'streamDriver.mode="1" streamDriver.authMode="anon"'
        return f"""
global(workDirectory="{self.work}" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{ca}"
       defaultNetstreamDriverCertFile="{tls.cert}" defaultNetstreamDriverKeyFile="{tls.key}")
module(load="imudp")
module(load="imtcp")
template(name="fields" type="list" option.jsonf="on") {{
{fields}
}}
{rulesets}
input(type="imudp" address="127.0.0.1" port="{self.ports["udp"]}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{self.ports["tcp"]}" ruleset="tcp"
      supportOctetCountedFraming="off")
input({tls_input} port="{self.ports["tls"]}" ruleset="tls")
input({tls_input} port="{self.ports["rogue"]}" ruleset="rogue"
      streamDriver.certFile="{rogue.cert}" streamDriver.keyFile="{rogue.key}")
"""

    def file(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def start(self, timeout: float = 10.0) -> None:
        log = (self.folder / "rsyslogd.out").open("ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.folder / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TZ": "UTC"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "rsyslogd.out").read_text()
            try:  # the TCP inputs listen once every input is set up
                socket.create_connection(("127.0.0.1", self.ports["tcp"]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def records(self, name: str) -> list[dict[str, Any]]:
        path = self.file(name)
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        with contextlib.suppress(json.JSONDecodeError):  # a line being written
            return [json.loads(line) for line in lines]
        return [json.loads(line) for line in lines[:-1]]

    def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        count: int = 1,
        start: int = 0,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The records of input `name` from the `start`th on that match, once there are at
        least `count` (or the timeout has passed)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.records(name)[start:] if predicate(record)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def containing(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda record: text in record["raw"]
