"""`vapixlog users ...` and the first start's root account, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from servers import VAPIXLOG, Server, free_port, run_cli


def test_users_add_list_remove(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert (
        run_cli(
            "users", "add", "alice", "--role", "operator", "--password", "s3cret:x", state_dir=state
        ).returncode
        == 0
    )
    assert (
        run_cli(
            "users", "add", "bob", "--role", "viewer", "--password", "pw", state_dir=state
        ).returncode
        == 0
    )
    listed = run_cli("users", "list", state_dir=state)
    assert listed.stdout.splitlines() == ["alice\toperator", "bob\tviewer"]
    stored = (state / "users.json").read_text()
    assert "s3cret" not in stored and json.loads(stored)["users"]["alice"]["ha1"]
    assert (state / "users.json").stat().st_mode & 0o077 == 0
    assert run_cli("users", "remove", "bob", state_dir=state).returncode == 0
    missing = run_cli("users", "remove", "bob", state_dir=state)
    assert missing.returncode == 1 and "no user 'bob'" in missing.stderr
    bad = run_cli("users", "add", "bad:name", "--role", "admin", "--password", "x", state_dir=state)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    bad_role = run_cli(
        "users", "add", "carol", "--role", "root", "--password", "x", state_dir=state
    )
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_first_start_creates_root_with_a_password_shown_once(tmp_path: Path) -> None:
    server = Server(tmp_path / "state")
    env = {k: v for k, v in os.environ.items() if k != "VAPIXLOG_ADMIN_PASSWORD"}
    proc = subprocess.Popen(
        [*VAPIXLOG, "serve", "--port", str(server.port), "--state-dir", str(server.state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "state dir" in first, first  # stderr (DECISIONS 15), then the password
        first = proc.stdout.readline()
        match = re.search(r"Created user 'root' \(admin\) with password: (\S+)", first)
        assert match, first
        password = match[1]
        for _ in range(100):
            try:
                response = httpx.get(
                    server.url + "/config/rest/log/v1", auth=httpx.DigestAuth("root", password)
                )
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response.status_code == 200
        assert password not in (server.state_dir / "users.json").read_text()
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[0]
        assert password not in rest
    finally:
        if proc.poll() is None:  # a failed assertion must not leave the server running
            proc.kill()
            proc.wait()

    # The second start finds the user and prints no password.
    server.start()
    server.stop()
    assert "Created user" not in server.output()


def test_serve_rejects_bad_flags(tmp_path: Path) -> None:
    for flags in (["--serial", "xyz"], ["--persistent-max-size", "lots"], ["--port", "http"]):
        result = subprocess.run(
            [*VAPIXLOG, "serve", "--port", str(free_port()), "--state-dir", str(tmp_path), *flags]
            if "--port" not in flags
            else [*VAPIXLOG, "serve", *flags],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert result.returncode == 2, (flags, result.stderr)
        assert "Traceback" not in result.stderr
