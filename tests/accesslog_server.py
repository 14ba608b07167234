"""`vapixlog serve` with the access log on, for tests, until the CLI has `--access-log`.

Run as `python accesslog_server.py serve --port P --state-dir D [--access-log-entries N]`
(the command line `servers.Server` builds): one device, auth policy `any`, everything
else at the defaults of `vapixlog serve`. It goes through `device_configs(...,
access_log=True)`, `DeviceServer` and `serve`, as the CLI does.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from vapixlog.auth import UserStore, ensure_admin
from vapixlog.auth.policy import AuthPolicy
from vapixlog.device import Identity
from vapixlog.server import DeviceServer, ServeOptions, device_configs, serve
from vapixlog.syslog.system_log import LogLimits


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--access-log-entries", type=int, default=None)
    args, _ = parser.parse_known_args(argv)
    state_dir: Path = args.state_dir
    [config] = device_configs(
        state_dir, 1, serial=None, hostname=None, limits=LogLimits(), rate_limit=None,
        access_log=True,
    )  # fmt: skip
    if args.access_log_entries is not None:
        config = dataclasses.replace(config, access_log_entries=args.access_log_entries)
    identity = Identity.load_or_create(state_dir / "identity.json", serial=None, hostname=None)
    users = UserStore.load_or_create(state_dir / "users.json", realm=f"AXIS_{identity.serial}")
    ensure_admin(users, os.environ.get("VAPIXLOG_ADMIN_PASSWORD"))
    options = ServeOptions(auth_policy=AuthPolicy.ANY)
    asyncio.run(serve([DeviceServer(config, users, port=args.port, options=options)]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
