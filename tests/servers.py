"""Run real `vapixlog serve` processes on loopback ports for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

VAPIXLOG = [sys.executable, "-m", "vapixlog.cli"]
USERS = {
    "root": ("admin", "rootpass"),
    "op": ("operator", "oppass"),
    "viewer": ("viewer", "viewpass"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int) -> int:
    """A first port of `count` free consecutive ports, below the kernel's ephemeral range
    (32768 and up), where other tests' client connections cannot take one meanwhile."""
    for _ in range(100):
        base = random.randrange(20000, 32700 - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} free consecutive ports")


def run_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VAPIXLOG, *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass
class Server:
    state_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_users(self) -> None:
        for name, (role, password) in USERS.items():
            result = run_cli(
                "users",
                "add",
                name,
                "--role",
                role,
                "--password",
                password,
                state_dir=self.state_dir,
            )
            assert result.returncode == 0, result.stderr

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "VAPIXLOG_ADMIN_PASSWORD": USERS["root"][1]}
        self.log_path = self.state_dir.parent / f"server-{self.port}.log"
        out = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [
                *VAPIXLOG,
                "serve",
                "--port",
                str(self.port),
                "--state-dir",
                str(self.state_dir),
                *self.default_args(),
                *self.extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                # Up is up, whatever certificate an HTTPS device shows.
                httpx.get(self.url + "/config/rest/log/v1", timeout=1, verify=False)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()  # a server that never answered must not outlive the test
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def default_args(self) -> list[str]:
        """Every scheme (Basic, Digest SHA-256 and MD5), unless a test chooses a policy: the
        tests of other features use whichever their client likes (DECISIONS 1)."""
        return [] if "--auth-policy" in self.extra_args else ["--auth-policy", "any"]

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def persistent_text(self) -> str:
        folder = self.state_dir / "log" / "persistent"
        files = sorted(folder.glob("messages-*.log"))
        return "".join(path.read_text() for path in files)
