"""Identities and roles: viewer < editor < approver < admin.

The actor is the configured user name (``SHIPYARD_USER``, else the OS user). A user
given a role with ``shipyard users add`` has that role; in embedded mode (no server)
anyone else is the local user and gets ``admin``: they own the store's files anyway.
The checks live here, in the domain code, so the team server enforces the same rules.

What each role may do:

========  ==================================================================
viewer    read: list, show, load, verify
editor    log and register models, edit descriptions, move aliases through the gates,
          roll back
approver  approve a version for an alias (and all an editor may do)
admin     force a promotion past failing gates (with a reason), set policies,
          manage users, delete models
========  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.store.users_store import ROLES, SqlUserStore

_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Identity:
    """Who is acting, and with which role (``assigned``: stored, not the embedded default)."""

    name: str
    role: str
    assigned: bool

    def can(self, role: str) -> bool:
        """True if this identity's role is ``role`` or above."""
        return _RANK[self.role] >= _RANK[check_role(role)]


def check_role(role: str) -> str:
    if role not in _RANK:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def current_identity(store: SqlUserStore, *, embedded: bool = True) -> Identity:
    """The identity of ``store.actor``: its stored role, else admin when embedded, else viewer."""
    role = store.role_of(store.actor)
    if role is not None:
        return Identity(store.actor, role, True)
    return Identity(store.actor, "admin" if embedded else "viewer", False)


def require_role(identity: Identity, role: str, *, to: str) -> None:
    """Raise PermissionDeniedError unless ``identity`` has ``role`` or above.

    Args:
        identity: who acts.
        role: the least role the action needs.
        to: the action, as words (``"force a promotion"``).
    """
    if not identity.can(role):
        raise PermissionDeniedError(
            f"user {identity.name!r} has the {identity.role} role; to {to} needs the {role} "
            f"role or above: an admin can grant it with `shipyard users add {identity.name} "
            f"--role {role}`"
        )
