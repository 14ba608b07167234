"""The Log API (log-api.md): its model is `model.json`, its behaviour the handlers below."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vapixlog.dca.binding import BoundApi, Handlers, RequestContext, Result
from vapixlog.dca.errors import RateLimitedError
from vapixlog.dca.model import Model, load_model
from vapixlog.severity import Severity
from vapixlog.syslog import audit as events

if TYPE_CHECKING:
    from vapixlog.device import Device
    from vapixlog.profiles import FirmwareProfile

MODEL_PATH = Path(__file__).with_name("model.json")
DEFAULT_SEVERITY = Severity.INFO
_SEVERITIES = tuple(Severity)  # by value 0..7; indexing is cheaper than Severity(n)
WRITE_MESSAGE_TAG = "log-api"


@cache
def model() -> Model:
    return load_model(MODEL_PATH)


@cache
def _variant(state: str, version: str) -> Model:
    """The model as an older firmware presents it (AXIS OS 11.x: alpha, at `v1alpha`)."""
    base = model()
    if (state, version) == (base.state, base.version):
        return base
    return load_model({**base.document, "state": state, "version": version})


def profile_model(profile: FirmwareProfile) -> Model:
    """The Log API's model on a firmware profile (its state and version in discovery)."""
    base = model()
    return _variant(profile.log_api_state or base.state, profile.log_api_version or base.version)


def bind(device: Device) -> BoundApi:
    """The Log API of one device at the REST segments its firmware profile serves:
    `/config/rest/log/v1` and `/config/rest/log/v1alpha` (12.x), `v1alpha` only (11.x)."""
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

    # The docs name the API alpha at v1alpha; current firmware serves it released at v1
    # and keeps v1alpha as an alias; 11.x serves the alpha at v1alpha only.
    profile = device.config.profile
    bound_model = profile_model(profile)
    segments = profile.log_api_versions
    aliases = tuple(segment for segment in segments if segment != bound_model.version_segment)
    if bound_model.version_segment not in segments:
        raise ValueError(f"firmware {profile.version}: the Log API is not at {segments}")
    return BoundApi(bound_model, handlers, aliases=aliases, put_only=profile.legacy_put_only)


def _actor(ctx: RequestContext) -> str:
    return events.actor(ctx.user.name, ctx.client)
