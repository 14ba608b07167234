"""Users, roles, and HTTP Basic and Digest (RFC 7616) authentication."""

from vapixlog.auth.digest import DigestAuthority, DigestResult
from vapixlog.auth.digest_header import MalformedHeader, parse_params
from vapixlog.auth.middleware import USER_SCOPE_KEY, AuthMiddleware
from vapixlog.auth.users import Role, User, UserStore, compute_ha1, ensure_admin, validate_name

__all__ = [
    "USER_SCOPE_KEY",
    "AuthMiddleware",
    "DigestAuthority",
    "DigestResult",
    "MalformedHeader",
    "Role",
    "User",
    "UserStore",
    "compute_ha1",
    "ensure_admin",
    "parse_params",
    "validate_name",
]
