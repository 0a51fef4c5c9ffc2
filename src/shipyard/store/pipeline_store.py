"""Pipeline step cache entries and pipeline schedules, in the metadata database.

A cache entry maps a step's key (the hash of its code, its inputs' digests and its
params) to the manifest of the outputs it wrote, so an unchanged step is skipped and its
outputs restored from the object store when they are missing. Schedules name a spec file
the scheduler runs on a cron expression and/or when a dataset gets a new version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from shipyard.core.errors import AlreadyExistsError, NotFoundError
from shipyard.core.validation import check_name
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.schema import pipeline_cache, pipeline_schedules


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What a step with this key wrote, and the run that wrote it."""

    key: str
    pipeline: str
    step: str
    manifest: Mapping[str, Any]
    run_id: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class PipelineSchedule:
    """A pipeline the scheduler runs: on ``cron`` and/or when ``datasets`` get versions."""

    name: str
    spec_path: str
    cron: str | None
    datasets: tuple[str, ...]
    seen: Mapping[str, int] = field(default_factory=dict)
    created_at: int = 0
    created_by: str = ""
    last_run_at: int | None = None
    last_status: str = ""


def _entry(row: Any) -> CacheEntry:
    return CacheEntry(row.key, row.pipeline, row.step, json.loads(row.manifest_json), row.run_id,
                      row.created_at)  # fmt: skip


def _schedule(row: Any) -> PipelineSchedule:
    return PipelineSchedule(
        name=row.name, spec_path=row.spec_path, cron=row.cron,
        datasets=tuple(json.loads(row.datasets_json or "[]")),
        seen={k: int(v) for k, v in json.loads(row.seen_json or "{}").items()},
        created_at=row.created_at, created_by=row.created_by, last_run_at=row.last_run_at,
        last_status=row.last_status or "",
    )  # fmt: skip


class SqlPipelineStore:
    """The pipeline_cache and pipeline_schedules tables."""

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    # -- the step cache ------------------------------------------------------------------

    def cache_get(self, key: str) -> CacheEntry | None:
        with self.db.read() as conn:
            row = conn.execute(select(pipeline_cache).where(pipeline_cache.c.key == key)).first()
        return None if row is None else _entry(row)

    def cache_get_many(self, keys: Sequence[str]) -> dict[str, CacheEntry]:
        """Every known entry of ``keys`` in one query (a no-op rerun reads them all)."""
        if not keys:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                select(pipeline_cache).where(pipeline_cache.c.key.in_(list(keys)))
            ).all()
        return {r.key: _entry(r) for r in rows}

    def cache_put(
        self,
        key: str,
        *,
        pipeline: str,
        step: str,
        manifest: Mapping[str, Any],
        run_id: str | None,
    ) -> None:
        """Record (or replace) what the step with ``key`` wrote."""
        body = json.dumps(manifest, sort_keys=True)

        def tx(conn: Connection) -> None:
            conn.execute(delete(pipeline_cache).where(pipeline_cache.c.key == key))
            conn.execute(
                insert(pipeline_cache).values(
                    key=key, pipeline=pipeline, step=step, manifest_json=body, run_id=run_id,
                    created_at=now_ms(),
                )
            )  # fmt: skip

        self.db.write(tx)

    # -- schedules -----------------------------------------------------------------------

    def add_schedule(
        self,
        name: str,
        *,
        spec_path: str,
        cron: str | None,
        datasets: Sequence[str],
        seen: Mapping[str, int],
        replace: bool = False,
    ) -> PipelineSchedule:
        check_name(name, what="pipeline schedule name")

        def tx(conn: Connection) -> PipelineSchedule:
            t = pipeline_schedules
            found = conn.execute(select(t).where(t.c.name == name)).first()
            if found is not None and not replace:
                raise AlreadyExistsError(
                    f"pipeline {name!r} has a schedule already; remove it first "
                    f"(`shipyard pipeline schedule remove {name}`) or pass --replace"
                )
            if found is not None:
                conn.execute(delete(t).where(t.c.name == name))
            conn.execute(
                insert(t).values(
                    name=name, spec_path=spec_path, cron=cron,
                    datasets_json=json.dumps(list(datasets)), seen_json=json.dumps(dict(seen)),
                    created_at=now_ms(), created_by=self.actor, last_status="",
                )
            )  # fmt: skip
            append_event(
                conn, actor=self.actor, action="pipeline.schedule", entity_type="pipeline",
                entity=name, after={"spec": spec_path, "cron": cron, "datasets": list(datasets)},
            )  # fmt: skip
            return _schedule(conn.execute(select(t).where(t.c.name == name)).one())

        return self.db.write(tx)

    def list_schedules(self) -> list[PipelineSchedule]:
        with self.db.read() as conn:
            rows = conn.execute(select(pipeline_schedules).order_by(pipeline_schedules.c.name))
            return [_schedule(r) for r in rows.all()]

    def get_schedule(self, name: str) -> PipelineSchedule:
        with self.db.read() as conn:
            row = conn.execute(
                select(pipeline_schedules).where(pipeline_schedules.c.name == name)
            ).first()
        if row is None:
            raise NotFoundError(
                f"pipeline {name!r} has no schedule; `shipyard pipeline schedule list` shows them"
            )
        return _schedule(row)

    def remove_schedule(self, name: str) -> None:
        def tx(conn: Connection) -> None:
            t = pipeline_schedules
            done = conn.execute(delete(t).where(t.c.name == name))
            if not done.rowcount:
                raise NotFoundError(f"pipeline {name!r} has no schedule; nothing was removed")
            append_event(conn, actor=self.actor, action="pipeline.unschedule",
                         entity_type="pipeline", entity=name)  # fmt: skip

        self.db.write(tx)

    def mark_run(self, name: str, *, status: str, seen: Mapping[str, int]) -> None:
        """Record a scheduled run and the dataset versions it has seen."""

        def tx(conn: Connection) -> None:
            t = pipeline_schedules
            conn.execute(
                update(t)
                .where(t.c.name == name)
                .values(last_run_at=now_ms(), last_status=status, seen_json=json.dumps(dict(seen)))
            )

        self.db.write(tx)
