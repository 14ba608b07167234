"""Fault injection: a device that fails as asked, in the dialect of the endpoint that fails.

`spec` is the grammar (`vapixlog serve --fault SPEC`), `plan` the faults of one device and
when each fires, `layer` the edge layer that inflicts them, `control` the admin-only control
endpoint (`serve --control`). The reboot faults are carried out by the device's server
(`vapixlog.server.DeviceServer`). Nothing here is installed unless faults are asked for.
"""

from __future__ import annotations

from vapixlog.faults.plan import FaultPlan, RebootFaults
from vapixlog.faults.spec import OPERATIONS, Fault, FaultSpecError, parse

__all__ = ["OPERATIONS", "Fault", "FaultPlan", "FaultSpecError", "RebootFaults", "parse"]
