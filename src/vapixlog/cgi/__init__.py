"""Legacy VAPIX CGIs (`/axis-cgi/...`) the Log API's use case needs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from vapixlog.auth.users import Role, User


def require(request: Request, role: Role) -> User | PlainTextResponse:
    """The authenticated user if their role grants `role`, else a 401/403 text response."""
    user = request.scope.get("vapixlog.user")
    if not isinstance(user, User):
        return PlainTextResponse("Authentication required\n", status_code=401)
    if not user.role.grants([role]):
        return PlainTextResponse(f"Forbidden: this requires the {role} role\n", status_code=403)
    return user
