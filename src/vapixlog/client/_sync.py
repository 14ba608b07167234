"""`Client`: the calls of `AsyncClient`, synchronously, on a private event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from vapixlog.client._boot import BootState
from vapixlog.client._capture import CaptureResult, Stage
from vapixlog.client._client import AsyncClient
from vapixlog.client._remote_syslog import RemoteSyslogStatus, SyslogServer
from vapixlog.severity import Severity

T = TypeVar("T")


class Client:
    """The synchronous client: the calls of `AsyncClient`, run on a private event loop.

    Do not use it inside a running event loop (use `AsyncClient` there).

    >>> from vapixlog.client import Client, Severity
    >>> with Client("https://192.168.0.90", user="root", password="pw",
    ...             pin_sha256="AA:BB:...") as client:
    ...     client.write_message("maintenance starts", Severity.NOTICE)
    ...     print(client.persistent_enabled())
    ...     client.capture_boot_logs("captures/")
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        ca_file: str | Path | None = None,
        pin_sha256: str | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        report_timeout: float = 300.0,
    ) -> None:
        self._runner = asyncio.Runner()
        self._client = AsyncClient(
            url,
            user=user,
            password=password,
            ca_file=ca_file,
            pin_sha256=pin_sha256,
            insecure=insecure,
            timeout=timeout,
            report_timeout=report_timeout,
        )
        self.url = self._client.url

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(call)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and the private event loop."""
        try:
            with contextlib.suppress(RuntimeError):
                self._run(self._client.aclose())
        finally:
            self._runner.close()

    @property
    def auth_scheme(self) -> str | None:
        """See `AsyncClient.auth_scheme`."""
        return self._client.auth_scheme

    def log_api_url(self) -> str:
        """See `AsyncClient.log_api_url`."""
        return self._run(self._client.log_api_url())

    def write_message(self, msg: str, severity: Severity | int = Severity.INFO) -> list[str]:
        """See `AsyncClient.write_message`."""
        return self._run(self._client.write_message(msg, severity))

    def persistent_enabled(self) -> bool:
        """See `AsyncClient.persistent_enabled`."""
        return self._run(self._client.persistent_enabled())

    def set_persistent(self, enabled: bool) -> None:
        """See `AsyncClient.set_persistent`."""
        self._run(self._client.set_persistent(enabled))

    def clear_persistent_log(self) -> None:
        """See `AsyncClient.clear_persistent_log`."""
        self._run(self._client.clear_persistent_log())

    def server_report(
        self, mode: str = "tar_all", dest: str | os.PathLike[str] | IO[bytes] | None = None
    ) -> int:
        """See `AsyncClient.server_report`."""
        return self._run(self._client.server_report(mode, dest))

    def report_text(self) -> str:
        """See `AsyncClient.report_text`."""
        return self._run(self._client.report_text())

    def system_ready(self) -> BootState | None:
        """See `AsyncClient.system_ready`."""
        return self._run(self._client.system_ready())

    @property
    def serial(self) -> str | None:
        """See `AsyncClient.serial`."""
        return self._client.serial

    def boot_id(self) -> str | None:
        """See `AsyncClient.boot_id`."""
        return self._run(self._client.boot_id())

    def system_log(self) -> str:
        """See `AsyncClient.system_log`."""
        return self._run(self._client.system_log())

    def audit_log(self, tail: int | None = None) -> str:
        """See `AsyncClient.audit_log`."""
        return self._run(self._client.audit_log(tail))

    def reboot(self, *, wait: bool = True, timeout: float = 300.0) -> str | None:
        """See `AsyncClient.reboot`."""
        return self._run(self._client.reboot(wait=wait, timeout=timeout))

    def capture_boot_logs(
        self,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: float = 300.0,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> CaptureResult:
        """See `AsyncClient.capture_boot_logs`."""
        return self._run(self._client.capture_boot_logs(dest, timeout=timeout, on_stage=on_stage))

    def remote_syslog_setup(
        self, servers: list[SyslogServer | dict[str, Any]]
    ) -> RemoteSyslogStatus:
        """See `AsyncClient.remote_syslog_setup`."""
        return self._run(self._client.remote_syslog_setup(servers))

    def remote_syslog_enable(self) -> RemoteSyslogStatus:
        """See `AsyncClient.remote_syslog_enable`."""
        return self._run(self._client.remote_syslog_enable())

    def remote_syslog_disable(self) -> RemoteSyslogStatus:
        """See `AsyncClient.remote_syslog_disable`."""
        return self._run(self._client.remote_syslog_disable())

    def remote_syslog_status(self) -> RemoteSyslogStatus:
        """See `AsyncClient.remote_syslog_status`."""
        return self._run(self._client.remote_syslog_status())

    def remote_syslog_test(self) -> RemoteSyslogStatus:
        """See `AsyncClient.remote_syslog_test`."""
        return self._run(self._client.remote_syslog_test())

    def remote_syslog_versions(self) -> list[str]:
        """See `AsyncClient.remote_syslog_versions`."""
        return self._run(self._client.remote_syslog_versions())
