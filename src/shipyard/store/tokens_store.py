"""API tokens: a random secret shown once, stored as its SHA-256; each change audited.

A token reads ``sy_<token_id>_<secret>``. Looking one up takes its id (the primary
key), hashes the secret and compares in constant time, so a database dump yields no
usable token and a wrong secret costs the same time as a right one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.validation import check_name
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.schema import api_tokens

TOKEN_ROLES = ("predict", "viewer", "editor", "approver", "admin")
PREFIX = "sy_"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record (never its secret)."""

    token_id: str
    name: str
    role: str
    created_at: int
    created_by: str
    expires_at: int | None
    revoked_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now_ms())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqlTokenStore:
    """The api_tokens table.

    Args:
        db: the database.
        actor: the name every audit event records.
    """

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    def create(
        self, name: str, role: str, *, expires_at: int | None = None
    ) -> tuple[str, ApiToken]:
        """A new token: ``(the token text, shown only now; its record)``."""
        check_name(name, what="token name")
        if role not in TOKEN_ROLES:
            raise InvalidInputError(
                f"a token's role is one of {', '.join(TOKEN_ROLES)}, got {role!r}"
            )
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        ts = now_ms()

        def tx(conn: Connection) -> None:
            conn.execute(
                insert(api_tokens).values(
                    token_id=token_id, name=name, role=role, secret_hash=_digest(secret),
                    created_at=ts, created_by=self.actor, expires_at=expires_at,
                )
            )  # fmt: skip
            append_event(
                conn, actor=self.actor, action="token.create", entity_type="token",
                entity=f"{name}/{token_id}", after={"role": role, "expires_at": expires_at},
            )  # fmt: skip

        self.db.write(tx)
        record = ApiToken(token_id, name, role, ts, self.actor, expires_at, None)
        return f"{PREFIX}{token_id}_{secret}", record

    def verify(self, token: str) -> ApiToken | None:
        """The active token ``token`` names; None if malformed, unknown, wrong or revoked."""
        if not token.startswith(PREFIX):
            return None
        token_id, sep, secret = token[len(PREFIX) :].partition("_")
        if not sep or not token_id or not secret:
            return None
        with self.db.read() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        found = _record(row)
        return found if found.active else None

    def list(self) -> list[ApiToken]:
        with self.db.read() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at)).all()
        return [_record(r) for r in rows]

    def revoke(self, token_id: str) -> None:
        def tx(conn: Connection) -> None:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
            if row is None:
                raise NotFoundError(
                    f"no token with id {token_id!r}; `shipyard tokens list` shows them"
                )
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id)
                .values(revoked_at=now_ms())
            )
            append_event(
                conn, actor=self.actor, action="token.revoke", entity_type="token",
                entity=f"{row.name}/{token_id}", before={"role": row.role},
            )  # fmt: skip

        self.db.write(tx)


def _record(row: Any) -> ApiToken:
    return ApiToken(
        row.token_id, row.name, row.role, row.created_at, row.created_by, row.expires_at,
        row.revoked_at,
    )  # fmt: skip
