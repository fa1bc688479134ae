"""Who may do what: roles, permissions and the principal behind a request or command.

Pure definitions shared by every context and front door. People (users, teams, sessions and
API tokens) live in ``vigil.people``; this module only says which role holds which
permission, so that a route or a command checks one permission and never a role name.

Roles: ``admin`` (everything), ``analyst`` (security: detection and cases), ``responder``
(operations: alerts and cases, not detection content), ``auditor`` (read-only, and the only
role besides admin that reads the audit trail and compliance), ``service`` (API tokens for
integrations and agents; what a token may do is narrowed further by its scopes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vigil.core.errors import ForbiddenError


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    RESPONDER = "responder"
    AUDITOR = "auditor"
    SERVICE = "service"


class Permission(StrEnum):
    EVENTS_INGEST = "events:ingest"
    EVENTS_READ = "events:read"
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    ALERTS_READ = "alerts:read"
    ALERTS_WRITE = "alerts:write"
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    METRICS_READ = "metrics:read"
    USERS_READ = "users:read"
    USERS_ADMIN = "users:admin"
    TOKENS_ADMIN = "tokens:admin"
    AUDIT_READ = "audit:read"
    COMPLIANCE_READ = "compliance:read"
    NOTIFY_ADMIN = "notify:admin"
    INTEL_READ = "intel:read"
    INTEL_WRITE = "intel:write"
    INTEL_EXPORT = "intel:export"
    INTEL_ADMIN = "intel:admin"


_P = Permission
_READ_ALL = frozenset({_P.EVENTS_READ, _P.RULES_READ, _P.ALERTS_READ, _P.CASES_READ,
                       _P.METRICS_READ, _P.USERS_READ, _P.INTEL_READ, _P.INTEL_EXPORT})
_WORK = frozenset({_P.ALERTS_WRITE, _P.CASES_WRITE})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ANALYST: _READ_ALL | _WORK | {_P.RULES_WRITE, _P.INTEL_WRITE},
    Role.RESPONDER: _READ_ALL | _WORK,
    Role.AUDITOR: _READ_ALL | {_P.AUDIT_READ, _P.COMPLIANCE_READ},
    Role.SERVICE: frozenset({_P.EVENTS_INGEST, _P.EVENTS_READ, _P.ALERTS_READ, _P.ALERTS_WRITE,
                             _P.CASES_READ, _P.CASES_WRITE, _P.INTEL_READ, _P.INTEL_EXPORT,
                             _P.INTEL_WRITE}),
}
"""The permissions each role holds (a service token is further narrowed by its scopes)."""


class PrincipalKind(StrEnum):
    USER = "user"
    TOKEN = "token"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user, an API token, or Vigil itself (detection, demo)."""

    kind: PrincipalKind
    id: int
    name: str
    role: Role
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    team: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this principal, e.g. ``user:alice``."""
        return f"{self.kind.value}:{self.name}"

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Raise :class:`ForbiddenError` unless this principal holds ``permission``."""
        if permission not in self.permissions:
            raise ForbiddenError(f"{self.actor} (role {self.role.value}) may not {permission.value}")


def principal_for(kind: PrincipalKind, id_: int, name: str, role: Role,
                  team: str | None = None,
                  scopes: frozenset[Permission] | None = None) -> Principal:
    """A principal with its role's permissions, narrowed to ``scopes`` when given."""
    granted = ROLE_PERMISSIONS[role]
    if scopes is not None:
        granted = granted & scopes
    return Principal(kind, id_, name, role, granted, team)


SYSTEM = principal_for(PrincipalKind.SYSTEM, 0, "vigil", Role.ADMIN)
"""Vigil acting on its own (detection writing alerts, grouping, timers, the demo)."""


def cli_principal() -> Principal:
    """Whoever runs the ``vigil`` command: holding the data folder makes them an admin; the
    audit trail names them by their operating-system account."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return principal_for(PrincipalKind.SYSTEM, 0, f"cli:{name}", Role.ADMIN)
