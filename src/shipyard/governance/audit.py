"""The audit log, for people: list events, verify the chain, read its head for anchoring."""

from __future__ import annotations

from shipyard.core.entities import AuditEvent
from shipyard.core.errors import InvalidInputError
from shipyard.store import audit as _store
from shipyard.store.audit import ChainCheck
from shipyard.store.db import Database

__all__ = ["ChainCheck", "audit_events", "audit_head", "parse_anchor", "verify_audit_log"]


def audit_events(
    db: Database,
    *,
    entity: str | None = None,
    entity_type: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
) -> list[AuditEvent]:
    """Events, newest first; ``entity="churn"`` also matches ``churn@3``, ``churn@production``."""
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be at least 1, got {limit}")
    return _store.list_events(
        db, entity=entity, entity_type=entity_type, actor=actor, action=action, limit=limit
    )


def verify_audit_log(db: Database, *, anchor: str | tuple[int, str] | None = None) -> ChainCheck:
    """Recompute the chain; ``anchor`` (``"SEQ:HASH"`` from ``shipyard audit head``) also
    proves no event was cut from the end."""
    parsed = parse_anchor(anchor) if isinstance(anchor, str) else anchor
    return _store.verify_chain(db, anchor=parsed)


def audit_head(db: Database) -> tuple[int, str]:
    """``(seq, hash)`` of the newest event: keep it somewhere else to anchor a later verify."""
    return _store.head(db)


def parse_anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise InvalidInputError(
            f"an anchor looks like 'SEQ:HASH' as `shipyard audit head` prints it, got {text!r}"
        )
    return int(seq), digest
