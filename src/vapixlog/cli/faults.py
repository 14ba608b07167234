"""`vapixlog serve --fault SPEC` (repeatable) and `--control`: see `vapixlog.faults.spec`."""

from __future__ import annotations

import argparse

from vapixlog.faults import Fault, FaultPlan, FaultSpecError, parse

FAULT_HELP = (
    "make the device fail as SPEC says: TARGET:ACTION[,WHEN], where TARGET is an operation "
    "(writeMessage, reboot, report, systemready, remotesyslog, systemlog, ...) or "
    "'[METHOD] /path/glob'; ACTION delay=S, status=CODE, reset=request|before|after, "
    "truncate=BYTES, slow=BYTES_PER_S, or for the device reboot:hang, reboot:downtime=S, "
    "reboot:keep-bootid, report:takes=S; WHEN always (default), first=N, every=N, "
    "p=P[,seed=S]. Repeatable; every device gets its own counts. E.g. "
    "--fault 'writeMessage:status=503,first=2' (README: Faults)"
)


def _fault(text: str) -> Fault:
    try:
        return parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="SPEC", help=FAULT_HELP
    )
    serve.add_argument(
        "--control",
        action="store_true",
        help="serve the admin-only control endpoint /vapixlog/control/faults (GET lists the "
        "faults, PUT sets, POST adds, DELETE clears; JSON); off by default",
    )


def plan(args: argparse.Namespace) -> FaultPlan | None:
    """One device's fault plan (its own counts); None: no faults asked for."""
    faults: list[Fault] = args.fault
    return FaultPlan(faults) if faults or args.control else None
