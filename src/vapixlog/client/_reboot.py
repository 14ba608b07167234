"""The reboot step of a capture, which must never happen twice on a device.

A reboot request is sent once. If it gets no answer (the connection broke after the request
went out, a timeout), it may or may not have been carried out, so it is not sent again
blindly: `systemready.cgi` tells whether the device went down or came back in a new boot
(`reboot_happened`), watched for a grace period. Only when the device stayed up in the same
boot all that time (and can tell boots apart: a boot id or an uptime) is the request sent
again. A request that surely never left (the connection could not even be opened) is sent
again after a backoff; so is one the device refused for now (HTTP 503 or 429, or a JSON-RPC
error 500 or 503: an answer, so not carried out). A capture resumed
from a journal whose last step was the intent to reboot goes through the same check against
the boot id the journal holds (`resume_reboot`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx

from vapixlog.client._boot import BootState
from vapixlog.client._errors import (
    AddressBlockedError,
    DeviceUnavailableError,
    RateLimitedError,
    RpcError,
    VapixError,
    rpc_error,
)
from vapixlog.client._retry import RetryPolicy, retrying

if TYPE_CHECKING:
    from vapixlog.client._client import AsyncClient

FIRMWARE_CGI = "/axis-cgi/firmwaremanagement.cgi"
_BUSY = 423  # firmwaremanagement.cgi: a reboot is already under way
_TRANSIENT = (500, 503)  # JSON-RPC errors worth asking again after (the device said no)
_MAX_REQUESTS = 3


class RebootUncertainError(DeviceUnavailableError):
    """Whether a reboot request reached the device cannot be told, so it is not repeated."""


async def firmware_version(client: AsyncClient) -> str | None:
    """The active firmware version (`firmwaremanagement.cgi` `status`); None if unknown."""
    try:
        data = await client._rpc(FIRMWARE_CGI, "status")
    except (VapixError, TimeoutError):
        return None
    version = data.get("activeFirmwareVersion")
    return version if isinstance(version, str) else None


def _never_sent(exc: DeviceUnavailableError) -> bool:
    """The request never reached the device: no connection could be opened."""
    return isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


async def request_reboot_safely(
    client: AsyncClient, before: BootState | None, *, retry: RetryPolicy, grace: float
) -> None:
    """Ask for the reboot, at most once in effect (see the module's docstring)."""
    await retrying(lambda: client._rpc_version(FIRMWARE_CGI, rpc_error), retry)
    for attempt in range(1, _MAX_REQUESTS + 1):
        try:
            await client.request_reboot()
            return
        except RpcError as exc:
            if exc.code == _BUSY:  # already under way: this request or an earlier one
                return
            if exc.code not in _TRANSIENT or attempt == _MAX_REQUESTS:
                raise
            await asyncio.sleep(retry.delay(attempt, exc))  # refused for now: not carried out
        except (DeviceUnavailableError, RateLimitedError, AddressBlockedError) as exc:
            last = attempt == _MAX_REQUESTS
            if exc.status is not None or (
                isinstance(exc, DeviceUnavailableError) and _never_sent(exc)
            ):
                if last:
                    raise
                await asyncio.sleep(retry.delay(attempt, exc))  # surely not carried out
                continue
            happened = await reboot_happened(client, before, grace)
            if happened is not False:
                return  # it did (or cannot be told): the wait decides, nothing is repeated
            if last:
                exc.add_note(f"the device stayed in the same boot for {grace:g} s")
                raise
            # Up in the same boot all along: the request was not carried out.


async def resume_reboot(
    client: AsyncClient, before: BootState | None, *, retry: RetryPolicy, grace: float
) -> bool:
    """An earlier run meant to ask for the reboot and was stopped: whether the request got
    through is unknown. Ask for it only if the device shows it did not; True when asked."""
    happened = await reboot_happened(client, before, grace)
    if happened:
        return False
    if happened is None:
        raise RebootUncertainError(
            f"{client.url}: an earlier run was stopped while asking for the reboot, and "
            "whether the device rebooted cannot be told (systemready gives no boot id, or "
            "could not be read): not asking again, as it may have rebooted already (check "
            "it, then capture it into another folder)",
            url=client.url,
        )
    await request_reboot_safely(client, before, retry=retry, grace=grace)
    return True


async def reboot_happened(
    client: AsyncClient, before: BootState | None, grace: float
) -> bool | None:
    """Watch systemready for up to `grace` seconds: True as soon as the device is down,
    going down or in a new boot; False if it stayed up in the boot of `before`; None when
    it cannot tell (no systemready, or neither a boot id nor an uptime)."""
    if before is None:
        return None
    deadline = time.monotonic() + grace
    while True:
        try:
            state = await asyncio.wait_for(client._boot_state(), 5.0)
        except (DeviceUnavailableError, TimeoutError):
            return True  # down: rebooting (if not, the wait for a new boot id fails)
        except AddressBlockedError:  # cannot look: never a reason to ask again
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(1.0)
            continue
        if state is None:
            return None
        if not state.ready:
            return True
        told = state.rebooted_since(before)
        if told is None:
            return None
        if told:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(0.5, max(deadline - time.monotonic(), 0.05)))


async def wait_ready(client: AsyncClient, timeout: float) -> str | None:
    """Wait until systemready says ready; the boot id (None when it tells none)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = await asyncio.wait_for(client.system_ready(), 5.0)
            if state is None or state.ready:
                return state.boot_id if state else None
        except (DeviceUnavailableError, AddressBlockedError, TimeoutError):
            pass
        if time.monotonic() >= deadline:
            raise DeviceUnavailableError(
                f"{client.url}: not ready again within {timeout:g} s", url=client.url
            )
        await asyncio.sleep(0.5)


async def turn_off_quietly(client: AsyncClient, within: float = 5.0) -> bool:
    """Best effort: turn persistent logging off, retrying while the device is down."""
    deadline = time.monotonic() + within
    while True:
        try:
            await asyncio.wait_for(client.set_persistent(False), within)
            return True
        except (DeviceUnavailableError, AddressBlockedError, TimeoutError):
            if time.monotonic() + 0.5 > deadline:
                return False
            await asyncio.sleep(0.5)
        except (VapixError, asyncio.CancelledError):
            return False
