"""The Log API (log-api.md): its model is `model.json`, its behaviour the handlers below."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vapixlog.dca.binding import BoundApi, Handlers, RequestContext, Result
from vapixlog.dca.errors import RateLimitedError
from vapixlog.dca.model import Model, load_model
from vapixlog.severity import Severity

if TYPE_CHECKING:
    from vapixlog.device import Device

MODEL_PATH = Path(__file__).with_name("model.json")
DEFAULT_SEVERITY = Severity.INFO
_SEVERITIES = tuple(Severity)  # by value 0..7; indexing is cheaper than Severity(n)
WRITE_MESSAGE_TAG = "log-api"


@cache
def model() -> Model:
    return load_model(MODEL_PATH)


def bind(device: Device) -> BoundApi:
    """The Log API of one device, at `/config/rest/log/v1` and `/config/rest/log/v1alpha`."""
    handlers = Handlers()

    @handlers.trigger("writeMessage")
    async def write_message(ctx: RequestContext, data: dict[str, Any]) -> Result | None:
        wait = device.write_limiter.check(ctx.user.name, ctx.client)
        if wait is not None:
            raise RateLimitedError(
                f"writeMessage is limited to {device.write_limiter.rate} for user "
                f"{ctx.user.name} at {ctx.client}; retry after {wait} s",
                headers={"Retry-After": str(wait)},
            )
        severity = data.get("severity")
        stored = await device.syslog.write(
            DEFAULT_SEVERITY if severity is None else _SEVERITIES[severity],
            data["msg"],
            tag=WRITE_MESSAGE_TAG,
        )
        if stored is False:
            return Result(warnings=[device.syslog.not_persisted_warning()])
        return None

    @handlers.getter("persistent.enabled")
    async def get_enabled(ctx: RequestContext) -> bool:
        return device.syslog.persistent_enabled

    @handlers.setter("persistent.enabled")
    async def set_enabled(ctx: RequestContext, enabled: bool) -> Result | None:
        warning = await device.set_persistent(enabled, actor=_actor(ctx))
        return Result(warnings=[warning]) if warning else None

    @handlers.trigger("persistent.clearLog")
    async def clear_log(ctx: RequestContext, data: dict[str, Any]) -> None:
        await device.clear_persistent_log(actor=_actor(ctx))

    # The docs name the API alpha at v1alpha; current firmware serves it released at v1.
    return BoundApi(model(), handlers, aliases=("v1alpha",))


def _actor(ctx: RequestContext) -> str:
    return f"user {ctx.user.name} from {ctx.client}"
