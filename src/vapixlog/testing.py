"""Emulated devices inside the test process: what the pytest plugin's fixtures hand out.

An `EmulatedDevice` is the real thing (`vapixlog.server.DeviceServer`: the device, its app,
uvicorn, reboots) on a free loopback port, run as a task of one event loop that a daemon
thread runs for the whole process. Its methods block the calling thread only, never that
loop, so they work from sync and async tests alike (an async test's own loop is another).

    with EmulatedDevice(tmp_path / "device") as device:
        httpx.get(device.url + "/axis-cgi/systemready.cgi", ...)

Stopping does not wait for the device's shutdown (uvicorn notices within 0.1 s, the device
then writes out its journal): `stop(wait=False)` is what the fixtures do, and `drain()` waits
for every device stopped so (the plugin calls it at the end of the session).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import secrets
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from vapixlog.auth import UserStore
from vapixlog.auth.users import Role, device_realm
from vapixlog.device import DeviceConfig, Identity
from vapixlog.faults import Fault, FaultPlan
from vapixlog.profiles import FirmwareProfile, default_profile, load_profile
from vapixlog.server import DeviceServer, ServeOptions

T = TypeVar("T")
ADMIN_NAME = "root"
_START_TIMEOUT = 10.0
_random = random.SystemRandom()


class _LoopThread:
    """One event loop on a daemon thread, shared by every emulated device of the process."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="vapixlog-devices", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # a wait that will not end (a reboot that hangs) ends here
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_shared: _LoopThread | None = None
_shared_lock = threading.Lock()
_stopping: set[concurrent.futures.Future[None]] = set()


def _loop_thread() -> _LoopThread:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _LoopThread()
        return _shared


def drain(timeout: float = 30.0) -> None:
    """Wait until every device stopped with `wait=False` has shut down."""
    for future in list(_stopping):
        future.result(timeout)
        _stopping.discard(future)


def free_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range (32768 and up), where no client
    connection of the tests can take it between this look and the device's bind."""
    for _ in range(50):
        port = _random.randrange(20000, 32768)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        chosen: int = probe.getsockname()[1]
        return chosen


class EmulatedDevice:
    """One emulated device on `url`; `admin` is (user, password) of its administrator.

    `firmware`: an AXIS OS version (`vapixlog serve --firmware`) or profile; `users`: more
    accounts, name -> (role, password); `tls`: serve HTTPS with a self-signed certificate
    (`certfile`; clients pass `verify=device.certfile` or skip verification); `faults`:
    fault specs (`vapixlog.faults.spec`); `reboot_downtime`: seconds a reboot keeps the
    device down; `options`: more `ServeOptions` fields.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        firmware: str | FirmwareProfile | None = None,
        users: Mapping[str, tuple[Role | str, str]] | None = None,
        tls: bool = False,
        faults: Iterable[str | Fault] = (),
        reboot_downtime: float = 0.2,
        host: str = "127.0.0.1",
        **options: Any,
    ) -> None:
        self.state_dir = state_dir
        if isinstance(firmware, str):
            firmware = load_profile(firmware)
        self.profile = firmware or default_profile()
        self._extra_users = dict(users or {})
        self.tls = tls
        self.faults = FaultPlan(faults)
        self.host = host
        self.port = 0
        self.admin = (ADMIN_NAME, secrets.token_urlsafe(12))
        self._options = {"reboot_downtime": reboot_downtime, **options}
        self.certfile: Path | None = None
        self._server: DeviceServer | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self.users: UserStore | None = None

    # -- life --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> EmulatedDevice:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = DeviceConfig(self.state_dir, profile=self.profile)
        identity = Identity.load_or_create(
            self.state_dir / "identity.json", serial=None, hostname=None
        )
        users = UserStore.load_or_create(
            self.state_dir / "users.json", realm=device_realm(identity.serial)
        )
        users.add(*self.admin[:1], Role.ADMIN, self.admin[1])
        for name, (role, password) in self._extra_users.items():
            users.add(name, role, password)
        self.users = users
        tls_options: dict[str, Any] = {}
        if self.tls:
            from vapixlog import tls

            files = tls.self_signed(self.state_dir / "tls", identity.hostname, self.host)
            self.certfile = files.certfile
            tls_options = {"tls_certfile": str(files.certfile), "tls_keyfile": str(files.keyfile)}
        if not self.port:
            self.port = free_port(self.host)
        options = ServeOptions(host=self.host, **tls_options, **self._options)
        self._server = DeviceServer(
            config, users, port=self.port, options=options, faults=self.faults
        )
        self._task = _loop_thread().submit(self._server.run())
        _loop_thread().run(self._started(), _START_TIMEOUT + 1)
        return self

    async def _started(self) -> None:
        """Until the device serves (or its start failed)."""
        server = self._server
        assert server is not None and self._task is not None
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT
        while True:
            uvicorn_server = server._server
            if uvicorn_server is not None and uvicorn_server.started and server.device:
                return
            if self._task.done():
                self._task.result()  # its exception
                raise RuntimeError(f"the device at {self.url} stopped while starting")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the device at {self.url} did not start")
            await asyncio.sleep(0.001)

    def stop(self, *, wait: bool = True) -> None:
        """Shut the device down (as `vapixlog serve` on SIGTERM)."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        loop = _loop_thread().loop
        loop.call_soon_threadsafe(server.stop)
        if wait:
            task.result(30)
        else:
            _stopping.add(task)

    def reset(self) -> None:
        """A device as new: stopped, its state (logs, settings, users) wiped, started again
        on the same port with the same administrator, users, firmware and no faults."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.faults.clear()
        self.start()

    def __enter__(self) -> EmulatedDevice:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a test does with it ----------------------------------------------------

    def add_user(self, name: str, role: Role | str, password: str) -> None:
        """Add (or replace) an account; it can log in at once."""
        assert self.users is not None, "start the device first"
        self.users.add(name, role, password)
        self._extra_users[name] = (role, password)

    def set_faults(self, *specs: str | Fault) -> None:
        """Replace the device's faults (`vapixlog serve --fault` specs); counts start again."""
        plan = self.faults
        _loop_thread().run(_call(lambda: plan.set(specs)))

    def add_faults(self, *specs: str | Fault) -> None:
        plan = self.faults
        _loop_thread().run(_call(lambda: plan.add(specs)))

    def clear_faults(self) -> None:
        plan = self.faults
        _loop_thread().run(_call(plan.clear))

    @property
    def boot_id(self) -> str:
        server = self._server
        return server.device.boot_id if server and server.device else ""

    def reboot(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Reboot as firmwaremanagement.cgi does (audited, counted); `wait`: until the new
        boot serves (not with a reboot fault that hangs)."""
        server = self._server
        assert server is not None, "start the device first"
        _loop_thread().run(self._reboot(server, wait), timeout)

    async def _reboot(self, server: DeviceServer, wait: bool) -> None:
        device = server.device
        assert device is not None
        if not server.request_reboot():
            raise RuntimeError("a reboot is already under way")
        await device.prepare_reboot(actor=f"{ADMIN_NAME}@127.0.0.1")
        await server.reboot()
        while wait and (server.device is device or not _serving(server)):
            await asyncio.sleep(0.005)


def _serving(server: DeviceServer) -> bool:
    uvicorn_server = server._server
    return bool(uvicorn_server and uvicorn_server.started and not uvicorn_server.should_exit)


async def _call(function: Any) -> None:
    function()
