"""The hash-chained audit log: append an event inside a change's own transaction, read, verify.

Each event stores its fields as text (``before`` and ``after`` as canonical JSON) and
``hash = BLAKE3(prev_hash, seq, at, actor, action, entity_type, entity, before, after)``,
each field length-prefixed so no two events encode alike. The first event's
``prev_hash`` is :data:`GENESIS`. Verification recomputes every hash from the stored
text, so an edited field, a removed or reordered event, or a rewritten hash breaks the
chain at a place :func:`verify_chain` names. Deleting events from the *end* leaves a
valid shorter chain: compare the head (:func:`head`) with one recorded elsewhere
(``shipyard audit verify --anchor SEQ:HASH``) to catch that too.

``append_event`` takes the caller's open write transaction, so a change and its event
commit together or not at all. Appends are serialised: SQLite's ``BEGIN IMMEDIATE``
already does it, PostgreSQL takes a transaction-scoped advisory lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import blake3
from sqlalchemy import Connection, select, text

from shipyard.core.entities import AuditEvent
from shipyard.store import schema
from shipyard.store.db import Database, now_ms

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x5A1D17  # pg_advisory_xact_lock key of the audit chain
_BATCH = 20_000


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, fields: Sequence[object]) -> str:
    """The event's hash: BLAKE3 over the previous hash and the event's fields
    (``seq, at, actor, action, entity_type, entity, before_json, after_json``), each
    length-prefixed."""
    hasher = blake3.blake3()
    for field in (prev_hash, *fields):
        data = str(field).encode()
        hasher.update(b"%d:" % len(data))
        hasher.update(data)
    return hasher.hexdigest()


def append_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's write transaction and return it."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    t = schema.audit_events
    tip = conn.execute(select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
    seq, prev = (tip[0] + 1, tip[1]) if tip is not None else (1, GENESIS)
    at = now_ms()
    before_json = canonical_json(dict(before or {}))
    after_json = canonical_json(dict(after or {}))
    digest = event_hash(
        prev, (seq, at, actor, action, entity_type, entity, before_json, after_json)
    )
    values = {
        "seq": seq, "at": at, "actor": actor, "action": action, "entity_type": entity_type,
        "entity": entity, "before_json": before_json, "after_json": after_json,
        "prev_hash": prev, "hash": digest,
    }  # fmt: skip
    conn.execute(t.insert().values(**values))
    return _event(values)


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`verify_chain` found."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    problems: tuple[str, ...] = ()
    first_bad_seq: int | None = None


def _rows(conn: Connection) -> Iterator[Any]:
    """Every event as a raw DB-API row, in ``seq`` order, fetched in batches."""
    t = schema.audit_events
    cols = (
        t.c.seq, t.c.at, t.c.actor, t.c.action, t.c.entity_type, t.c.entity,
        t.c.before_json, t.c.after_json, t.c.prev_hash, t.c.hash,
    )  # fmt: skip
    result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(
        select(*cols).order_by(t.c.seq)
    )
    for part in result.partitions(_BATCH):
        yield from part


def verify_chain(db: Database, *, anchor: tuple[int, str] | None = None) -> ChainCheck:
    """Recompute every hash; report the first place the chain breaks, and up to 20 problems.

    Args:
        db: the metadata database.
        anchor: ``(seq, hash)`` recorded earlier (``shipyard audit head``): the event
            ``seq`` must still exist with that hash, which catches events cut from the end.
    """
    problems: list[str] = []
    first_bad: int | None = None
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_seq, last_hash = 0, GENESIS
    anchor_seen = anchor is None
    hash_event = event_hash
    with db.read() as conn:
        for row in _rows(conn):
            seq, prev_hash, digest = row[0], row[8], row[9]
            count += 1
            bad = ""
            if seq != expected_seq:
                if seq > expected_seq:
                    missing = (
                        f"{expected_seq}"
                        if seq == expected_seq + 1
                        else (f"{expected_seq}-{seq - 1}")
                    )
                    bad = f"event {missing} is missing (removed) before event {seq}"
                else:
                    bad = f"event {seq} is out of order (after {expected_seq - 1})"
            elif prev_hash != prev:
                bad = (
                    f"event {seq} does not follow event {seq - 1}: its previous hash is "
                    f"{prev_hash[:12]}..., the chain has {prev[:12]}... (removed or reordered)"
                )
            elif hash_event(prev, row[:8]) != digest:
                bad = f"event {seq} ({row[3]} {row[5]}) was edited: its hash does not match"
            if bad:
                first_bad = seq if first_bad is None else first_bad
                if len(problems) < 20:
                    problems.append(bad)
            if anchor is not None and seq == anchor[0]:
                anchor_seen = True
                if digest != anchor[1]:
                    problems.append(
                        f"event {seq} has hash {digest[:12]}..., the anchor says "
                        f"{anchor[1][:12]}..."
                    )
                    first_bad = seq if first_bad is None else min(first_bad, seq)
            prev, expected_seq = digest, seq + 1
            last_seq, last_hash = seq, digest
    if not anchor_seen and anchor is not None:
        problems.append(
            f"the anchor names event {anchor[0]}, but the log ends at event {last_seq}: "
            "events were removed from the end"
        )
        first_bad = first_bad if first_bad is not None else last_seq + 1
    return ChainCheck(
        ok=not problems, events=count, head_seq=last_seq, head_hash=last_hash,
        problems=tuple(problems), first_bad_seq=first_bad,
    )  # fmt: skip


def head(db: Database) -> tuple[int, str]:
    """``(seq, hash)`` of the newest event; ``(0, GENESIS)`` for an empty log."""
    t = schema.audit_events
    with db.read() as conn:
        row = conn.execute(select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
    return (row[0], row[1]) if row is not None else (0, GENESIS)


def list_events(
    db: Database,
    *,
    entity: str | None = None,
    entity_type: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int | None = 100,
    newest_first: bool = True,
) -> list[AuditEvent]:
    """Events matching every given filter; ``entity`` matches ``churn`` and ``churn@3``."""
    t = schema.audit_events
    query = select(t)
    if entity is not None:
        query = query.where(
            (t.c.entity == entity)
            | t.c.entity.like(_escape_like(entity) + "@%", escape="\\")
            | t.c.entity.like(_escape_like(entity) + "/%", escape="\\")
        )
    if entity_type is not None:
        query = query.where(t.c.entity_type == entity_type)
    if actor is not None:
        query = query.where(t.c.actor == actor)
    if action is not None:
        query = query.where(t.c.action == action)
    query = query.order_by(t.c.seq.desc() if newest_first else t.c.seq)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        rows = conn.execute(query).mappings().all()
    return [_event(r) for r in rows]


def _event(r: Mapping[Any, Any]) -> AuditEvent:
    return AuditEvent(
        seq=r["seq"], at=r["at"], actor=r["actor"], action=r["action"],
        entity_type=r["entity_type"], entity=r["entity"],
        before=json.loads(r["before_json"]), after=json.loads(r["after_json"]),
        prev_hash=r["prev_hash"], hash=r["hash"],
    )  # fmt: skip


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
