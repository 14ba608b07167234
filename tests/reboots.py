"""Helpers to reboot a device under test and to wait for it to come back."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from servers import USERS, Server

ADMIN = ("root", USERS["root"][1])
FIRMWARE = "/axis-cgi/firmwaremanagement.cgi"
_BOOT = re.compile(r"starting on \S+ \(serial \w+\), boot ([0-9a-f-]{36})")


def rpc(server: Server, body: Any, *, auth: Any = ADMIN) -> httpx.Response:
    return httpx.post(server.url + FIRMWARE, json=body, auth=auth, timeout=10)


def boot_id(server: Server) -> str:
    log = httpx.get(server.url + "/axis-cgi/systemlog.cgi", auth=ADMIN, timeout=10).text
    match = _BOOT.search(log)
    assert match, log
    return match[1]


def reboot_and_wait(server: Server, timeout: float = 30) -> tuple[str, bool]:
    """Reboot through the CGI; return the new boot id and whether a connection was refused
    while the device was down."""
    before = boot_id(server)
    reply = rpc(server, {"apiVersion": "1.0", "context": "t", "method": "reboot"})
    assert reply.json() == {"apiVersion": "1.10", "context": "t", "method": "reboot", "data": {}}
    return wait_for_new_boot(server, before, timeout)


def wait_for_new_boot(server: Server, before: str, timeout: float = 30) -> tuple[str, bool]:
    """Wait until the device answers with a boot id other than `before`."""
    refused = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = boot_id(server)
            if now != before:
                return now, refused
        except httpx.ConnectError:
            refused = True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the device did not come back")
