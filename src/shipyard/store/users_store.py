"""Users and their roles (viewer < editor < approver < admin), each change audited."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.validation import check_name
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.schema import users

ROLES = ("viewer", "editor", "approver", "admin")


class SqlUserStore:
    """The users table.

    Args:
        db: the database.
        actor: the name every audit event records.
    """

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    def role_of(self, name: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(select(users.c.role).where(users.c.name == name)).scalar()

    def list_users(self) -> list[tuple[str, str, int, str]]:
        """``(name, role, created_at, created_by)`` of every user with a stored role."""
        with self.db.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name))
            return [(r.name, r.role, r.created_at, r.created_by) for r in rows]

    def set_role(self, name: str, role: str | None) -> None:
        """Give user ``name`` a role (None: remove the user)."""
        check_name(name, what="user name")
        if role is not None and role not in ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")

        def tx(conn: Connection) -> None:
            old = conn.execute(select(users.c.role).where(users.c.name == name)).scalar()
            if role is None and old is None:
                raise NotFoundError(f"user {name!r} has no stored role")
            conn.execute(delete(users).where(users.c.name == name))
            if role is not None:
                conn.execute(
                    insert(users).values(
                        name=name, role=role, created_at=now_ms(), created_by=self.actor
                    )
                )
            append_event(
                conn, actor=self.actor, action="user.set_role" if role else "user.remove",
                entity_type="user", entity=name, before={"role": old}, after={"role": role},
            )  # fmt: skip

        self.db.write(tx)
