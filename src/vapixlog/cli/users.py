"""`vapixlog users`: add, list and remove the device's users (in its state dir)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    from vapixlog.auth import UserStore


LOCAL_STATE_DIR = Path(".vapixlog-state")  # where `make serve` keeps it


def default_state_dir() -> Path:
    return resolve_state_dir(None)[0]


def resolve_state_dir(given: Path | None) -> tuple[Path, str]:
    """The state dir and why it is that one (DECISIONS 15): `--state-dir`, else
    $VAPIXLOG_STATE_DIR, else ./.vapixlog-state if it exists (`make serve`'s), else the
    platform's data dir."""
    if given is not None:
        return given, "--state-dir"
    if os.environ.get("VAPIXLOG_STATE_DIR"):
        return Path(os.environ["VAPIXLOG_STATE_DIR"]), "$VAPIXLOG_STATE_DIR"
    if LOCAL_STATE_DIR.is_dir():
        return LOCAL_STATE_DIR, "found in the current directory"
    return Path(platformdirs.user_data_dir("vapixlog")), "the default"


def announce_state_dir(given: Path | None) -> Path:
    """Resolve the state dir and say on stderr which one a command uses (one line)."""
    state_dir, why = resolve_state_dir(given)
    print(f"vapixlog: state dir {state_dir.absolute()} ({why})", file=sys.stderr, flush=True)
    return state_dir


def state_dir_help() -> str:
    return (
        "where users, identity and logs are kept (default: $VAPIXLOG_STATE_DIR, else "
        f"./{LOCAL_STATE_DIR} if it exists, else {platformdirs.user_data_dir('vapixlog')})"
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="manage the device's users")
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument("--state-dir", type=Path, default=None, metavar="DIR", help=state_dir_help())
    state.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing on success but passwords"
    )
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", help="add a user or change one", parents=[state])
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["admin", "operator", "viewer"])
    add.add_argument("--password", help="default: ask (or generate when stdin is no terminal)")
    user_commands.add_parser("list", help="list users and roles", parents=[state])
    remove = user_commands.add_parser("remove", help="remove a user", parents=[state])
    remove.add_argument("name")
    users.set_defaults(handler=run)


def open_users(
    state_dir: Path, *, serial: str | None = None, hostname: str | None = None
) -> UserStore:
    """The user store of a state dir; its Digest realm is `AXIS_<serial>`, as on a device."""
    from vapixlog.auth import UserStore
    from vapixlog.auth.users import device_realm
    from vapixlog.device import Identity

    state_dir.mkdir(parents=True, exist_ok=True)
    identity = Identity.load_or_create(
        state_dir / "identity.json", serial=serial, hostname=hostname
    )
    return UserStore.load_or_create(state_dir / "users.json", realm=device_realm(identity.serial))


def register_realms(
    store: UserStore, realms: list[str], *, state_dir: Path, admin_password: str | None
) -> str | None:
    """Make the store know every served device's realm (`vapixlog.server.device_realms`).

    Users added before a device existed have no hash for its realm and cannot log in to
    it; root is fixed when `admin_password` (VAPIXLOG_ADMIN_PASSWORD) proves its password.
    Returns one warning line naming the others, or None when every user can log in to all.
    """
    store.add_realms(realms)
    if admin_password:
        store.complete("root", admin_password)
    missing = store.missing(realms)
    if not missing:
        return None
    lacking = {realm for names in missing.values() for realm in names}
    devices = sum(realm in lacking for realm in realms)
    users = [store.get(name) for name in missing]
    named = ", ".join(f"{user.name} ({user.role})" for user in users if user is not None)
    if len(users) == 1 and users[0] is not None:
        command = f"vapixlog users add {users[0].name} --role {users[0].role}"
    else:
        command = "vapixlog users add NAME --role ROLE"
    return (
        f"vapixlog: warning: {'user' if len(users) == 1 else 'users'} {named} cannot log in "
        f"to {devices} of {len(realms)} devices (added before those devices existed; only "
        f"password hashes per device are kept); set the password again for every device "
        f"with: {command} --state-dir {state_dir}"
    )


def run(args: argparse.Namespace) -> int:
    from vapixlog.auth import Role

    if args.quiet:
        state_dir = resolve_state_dir(args.state_dir)[0]
    else:
        state_dir = announce_state_dir(args.state_dir)
    try:
        store = open_users(state_dir)
    except OSError as exc:
        print(f"vapixlog: cannot use state dir {state_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.users_command == "list":
        users = store.list()
        for user in users:
            print(f"{user.name}\t{user.role}")
        if not users and not args.quiet:
            print("vapixlog: no users yet", file=sys.stderr)
        return 0
    if args.users_command == "remove":
        if not store.remove(args.name):
            print(f"vapixlog: no user {args.name!r} in {state_dir}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"Removed user {args.name!r}", file=sys.stderr)
        return 0
    existed = store.get(args.name) is not None
    password = args.password
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"Password for {args.name}: ")
        else:
            import secrets

            password = secrets.token_urlsafe(12)
            print(f"Password for {args.name}: {password}")
    try:
        store.add(args.name, Role(args.role), password)
    except ValueError as exc:
        print(f"vapixlog: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        done = "Changed" if existed else "Added"
        print(f"{done} user {args.name!r} ({args.role})", file=sys.stderr)
    return 0
