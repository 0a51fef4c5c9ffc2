"""The SQL tracking store: experiments, runs, params, tags, metrics and artifact records.

One interface (:class:`SqlTrackingStore`) over any SQLAlchemy database. The
public client and the CLI talk only to this; a later HTTP store will offer the
same methods against a shipyard server.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.core.entities import (
    Artifact,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunStatus,
)
from shipyard.core.errors import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
)
from shipyard.core.validation import check_name
from shipyard.store import search as q
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.metrics import Point, metric_keys, read_history, write_points
from shipyard.store.schema import (
    artifacts,
    experiments,
    latest_metrics,
    metric_chunks,
    model_versions,
    params,
    run_inputs,
    runs,
    tags,
)

DEFAULT_EXPERIMENT = "Default"
_STATUS = {s.value: s for s in RunStatus}
_STAGE = {s.value: s for s in LifecycleStage}
# in the order of Run's fields (after the leading pk)
_RUN_COLUMNS = (
    runs.c.pk,
    runs.c.run_id,
    runs.c.experiment_id,
    runs.c.name,
    runs.c.status,
    runs.c.start_time,
    runs.c.end_time,
    runs.c.lifecycle_stage,
    runs.c.parent_run_id,
    runs.c.description,
    runs.c.user,
    runs.c.entry_point,
    runs.c.git_commit,
    runs.c.git_dirty,
    runs.c.git_diff_hash,
    runs.c.python_version,
    runs.c.environment_digest,
    runs.c.pid,
    runs.c.host,
)
_IN_CHUNK = 5000


def _num(value: str) -> float | None:
    try:
        num = float(value)
    except ValueError:
        return None
    return num if math.isfinite(num) else None


def _raw(conn: Connection, stmt: Any) -> list[Any]:
    """All rows of ``stmt`` as the driver's tuples, skipping SQLAlchemy's Row objects.

    Only for statements whose columns need no result processing (ints, floats, text);
    booleans come back as the driver gives them (0/1 on SQLite).
    """
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _experiment(row: Any) -> Experiment:
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description or "",
    )


@dataclass(frozen=True, slots=True)
class RunRef:
    """What the writer needs to know of a run: its id, row key and whether it may be logged to."""

    run_id: str
    pk: int
    status: RunStatus
    lifecycle_stage: LifecycleStage


@dataclass(frozen=True, slots=True)
class _Fetched:
    runs: dict[int, Any]
    params: list[Any]
    metrics: list[Any]
    tags: list[Any]


RUN_TABLE_ATTRIBUTES = (
    "run_id", "experiment_id", "name", "status", "start_time", "end_time", "lifecycle_stage",
    "parent_run_id", "description", "user", "entry_point", "git_commit", "git_dirty",
    "git_diff_hash", "python_version", "environment_digest", "pid", "host",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunTable:
    """Runs column by column: attribute columns (``RUN_TABLE_ATTRIBUTES``), then one column
    per param, metric (NaN where missing) and tag (None where missing) key."""

    attributes: dict[str, list[Any]]
    params: dict[str, list[str | None]]
    metrics: dict[str, list[float]]
    tags: dict[str, list[str | None]]


@dataclass(frozen=True, slots=True)
class SearchPage:
    runs: list[Run]
    next_page_token: str | None


def purgeable_runs(conn: Connection) -> tuple[Any, list[int]]:
    """The WHERE clause for runs a purge removes, and the experiments it removes.

    Deleted runs, and the runs of deleted experiments, except runs a registered model
    version was logged by: their model files must outlive them (an experiment holding
    such a run stays too, still deleted).
    """
    registered = select(model_versions.c.run_id).where(model_versions.c.run_id.is_not(None))
    deleted_exps = select(experiments.c.experiment_id).where(
        experiments.c.lifecycle_stage == "deleted"
    )
    where = (
        (runs.c.lifecycle_stage == "deleted") | runs.c.experiment_id.in_(deleted_exps)
    ) & ~runs.c.run_id.in_(registered)
    kept = select(runs.c.experiment_id).where(runs.c.run_id.in_(registered))
    dead_exps = [
        r[0] for r in conn.execute(deleted_exps.where(~experiments.c.experiment_id.in_(kept)))
    ]
    return where, dead_exps


class SqlTrackingStore:
    """Tracking records in a SQL database.

    Args:
        db: the :class:`Database` to use (its schema is created or migrated on first use).
    """

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    def _audit(
        self,
        conn: Connection,
        action: str,
        *,
        entity_type: str,
        entity: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        append_event(
            conn, actor=self.actor, action=action, entity_type=entity_type, entity=entity,
            before=before, after=after,
        )  # fmt: skip

    # -- experiments -------------------------------------------------------------

    def create_experiment(self, name: str, *, description: str = "") -> Experiment:
        check_name(name, what="experiment name")

        def tx(conn: Connection) -> int:
            existing = conn.execute(
                select(experiments.c.experiment_id, experiments.c.lifecycle_stage).where(
                    experiments.c.name == name
                )
            ).first()
            if existing is not None:
                hint = (
                    " (it is deleted: restore it with `shipyard experiments restore`)"
                    if existing.lifecycle_stage == "deleted"
                    else ""
                )
                raise AlreadyExistsError(f"experiment {name!r} exists already{hint}")
            ts = now_ms()
            result = conn.execute(
                insert(experiments).values(
                    name=name,
                    lifecycle_stage="active",
                    description=description,
                    created_at=ts,
                    updated_at=ts,
                )
            )
            experiment_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            self._audit(
                conn,
                "experiment.create",
                entity_type="experiment",
                entity=name,
                after={"id": str(experiment_id)},
            )
            return experiment_id

        try:
            experiment_id = self.db.write(tx)
        except IntegrityError:
            raise AlreadyExistsError(f"experiment {name!r} exists already") from None
        return self.get_experiment(str(experiment_id))

    def get_or_create_experiment(self, name: str) -> Experiment:
        found = self.find_experiment(name)
        if found is not None:
            if found.lifecycle_stage is LifecycleStage.DELETED:
                raise InvalidStateError(
                    f"experiment {name!r} is deleted; restore it with "
                    f"`shipyard experiments restore {name}` or pick another name"
                )
            return found
        try:
            return self.create_experiment(name)
        except AlreadyExistsError:  # another process created it in between
            found = self.find_experiment(name)
            if found is None:  # pragma: no cover
                raise
            return found

    def find_experiment(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
        return _experiment(row) if row else None

    def get_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id (digits) or by name."""
        with self.db.read() as conn:
            row = None
            if str(id_or_name).isdigit():
                row = conn.execute(
                    select(experiments).where(experiments.c.experiment_id == int(id_or_name))
                ).first()
            if row is None:
                row = conn.execute(
                    select(experiments).where(experiments.c.name == str(id_or_name))
                ).first()
        if row is None:
            raise NotFoundError(
                f"experiment {id_or_name!r} does not exist; `shipyard experiments list` "
                "shows the experiments there are"
            )
        return _experiment(row)

    def list_experiments(self, *, view: str = "active") -> list[Experiment]:
        stage = q.lifecycle_filter(view)
        query = select(experiments).order_by(experiments.c.experiment_id)
        if stage:
            query = query.where(experiments.c.lifecycle_stage == stage)
        with self.db.read() as conn:
            return [_experiment(r) for r in conn.execute(query)]

    def rename_experiment(self, id_or_name: str, new_name: str) -> Experiment:
        check_name(new_name, what="experiment name")
        exp = self.get_experiment(id_or_name)

        def tx(conn: Connection) -> None:
            conn.execute(
                update(experiments)
                .where(experiments.c.experiment_id == int(exp.experiment_id))
                .values(name=new_name, updated_at=now_ms())
            )
            self._audit(
                conn, "experiment.rename", entity_type="experiment", entity=new_name,
                before={"name": exp.name}, after={"name": new_name},
            )  # fmt: skip

        try:
            self.db.write(tx)
        except IntegrityError:
            raise AlreadyExistsError(
                f"cannot rename {exp.name!r}: an experiment named {new_name!r} exists already"
            ) from None
        return self.get_experiment(exp.experiment_id)

    def _set_experiment_stage(self, id_or_name: str, stage: LifecycleStage) -> Experiment:
        exp = self.get_experiment(id_or_name)

        def tx(conn: Connection) -> None:
            conn.execute(
                update(experiments)
                .where(experiments.c.experiment_id == int(exp.experiment_id))
                .values(lifecycle_stage=stage.value, updated_at=now_ms())
            )
            action = "delete" if stage is LifecycleStage.DELETED else "restore"
            self._audit(
                conn, f"experiment.{action}", entity_type="experiment", entity=exp.name,
                before={"stage": exp.lifecycle_stage.value}, after={"stage": stage.value},
            )  # fmt: skip

        self.db.write(tx)
        return self.get_experiment(exp.experiment_id)

    def delete_experiment(self, id_or_name: str) -> Experiment:
        """Soft-delete: hidden from lists until restored; ``gc`` purges it."""
        return self._set_experiment_stage(id_or_name, LifecycleStage.DELETED)

    def restore_experiment(self, id_or_name: str) -> Experiment:
        return self._set_experiment_stage(id_or_name, LifecycleStage.ACTIVE)

    # -- runs --------------------------------------------------------------------

    def create_run(
        self,
        *,
        experiment_id: str,
        name: str | None = None,
        parent_run_id: str | None = None,
        description: str = "",
        user: str = "",
        entry_point: str = "",
        python_version: str = "",
        pid: int | None = None,
        host: str = "",
        tags_: Mapping[str, str] | None = None,
        start_time: int | None = None,
    ) -> RunRef:
        exp = self.get_experiment(experiment_id)
        if exp.lifecycle_stage is LifecycleStage.DELETED:
            raise InvalidStateError(f"experiment {exp.name!r} is deleted; restore it first")
        if parent_run_id is not None:
            self.get_run_ref(parent_run_id)
        run_id = uuid.uuid4().hex
        run_name = name if name else f"run-{run_id[:8]}"
        check_name(run_name, what="run name")
        ts = start_time if start_time is not None else now_ms()

        def tx(conn: Connection) -> int:
            result = conn.execute(
                insert(runs).values(
                    run_id=run_id,
                    experiment_id=int(exp.experiment_id),
                    name=run_name,
                    status=RunStatus.RUNNING.value,
                    start_time=ts,
                    lifecycle_stage="active",
                    parent_run_id=parent_run_id,
                    description=description,
                    user=user,
                    entry_point=entry_point,
                    python_version=python_version,
                    pid=pid,
                    host=host,
                    heartbeat=ts,
                )
            )
            pk = int(result.inserted_primary_key[0])  # type: ignore[index]
            if tags_:
                conn.execute(
                    insert(tags), [{"run_pk": pk, "key": k, "value": v} for k, v in tags_.items()]
                )
            self._audit(
                conn, "run.create", entity_type="run", entity=run_id,
                after={"experiment": exp.name, "name": run_name, "parent": parent_run_id},
            )  # fmt: skip
            return pk

        pk = self.db.write(tx)
        return RunRef(run_id, pk, RunStatus.RUNNING, LifecycleStage.ACTIVE)

    def get_run_ref(self, run_id: str) -> RunRef:
        with self.db.read() as conn:
            row = conn.execute(
                select(runs.c.pk, runs.c.status, runs.c.lifecycle_stage).where(
                    runs.c.run_id == run_id
                )
            ).first()
        if row is None:
            raise NotFoundError(
                f"run {run_id!r} does not exist; `shipyard runs list` shows the runs there are"
            )
        return RunRef(run_id, row.pk, RunStatus(row.status), LifecycleStage(row.lifecycle_stage))

    def set_run_environment(
        self,
        run_pk: int,
        *,
        git_commit: str | None,
        git_dirty: bool | None,
        git_diff_hash: str | None,
        environment_digest: str | None,
    ) -> None:
        self.db.write(
            lambda conn: conn.execute(
                update(runs)
                .where(runs.c.pk == run_pk)
                .values(
                    git_commit=git_commit,
                    git_dirty=git_dirty,
                    git_diff_hash=git_diff_hash,
                    environment_digest=environment_digest,
                )
            )
        )

    def end_run(self, run_pk: int, status: RunStatus, *, end_time: int | None = None) -> None:
        if not status.is_terminal:
            raise InvalidInputError(f"a run ends as FINISHED, FAILED or KILLED, not {status.value}")

        def tx(conn: Connection) -> None:
            row = conn.execute(select(runs.c.run_id, runs.c.status).where(runs.c.pk == run_pk))
            found = row.first()
            conn.execute(
                update(runs)
                .where(runs.c.pk == run_pk)
                .values(
                    status=status.value, end_time=end_time if end_time is not None else now_ms()
                )
            )
            if found is not None:
                self._audit(
                    conn, "run.end", entity_type="run", entity=found.run_id,
                    before={"status": found.status}, after={"status": status.value},
                )  # fmt: skip

        self.db.write(tx)

    def reopen_run(self, run_pk: int) -> None:
        """Mark an ended run RUNNING again (resuming it)."""

        def tx(conn: Connection) -> None:
            found = conn.execute(
                select(runs.c.run_id, runs.c.status).where(runs.c.pk == run_pk)
            ).first()
            conn.execute(
                update(runs)
                .where(runs.c.pk == run_pk)
                .values(
                    status=RunStatus.RUNNING.value,
                    end_time=None,
                    pid=os.getpid(),
                    heartbeat=now_ms(),
                )
            )
            if found is not None:
                self._audit(
                    conn, "run.resume", entity_type="run", entity=found.run_id,
                    before={"status": found.status}, after={"status": RunStatus.RUNNING.value},
                )  # fmt: skip

        self.db.write(tx)

    def update_run(
        self, run_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        ref = self.get_run_ref(run_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = check_name(name, what="run name")
        if description is not None:
            values["description"] = description
        if values:

            def tx(conn: Connection) -> None:
                before = conn.execute(
                    select(runs.c.name, runs.c.description).where(runs.c.pk == ref.pk)
                ).one()
                conn.execute(update(runs).where(runs.c.pk == ref.pk).values(**values))
                self._audit(
                    conn, "run.update", entity_type="run", entity=run_id,
                    before={k: getattr(before, k) for k in values}, after=values,
                )  # fmt: skip

            self.db.write(tx)

    def _set_run_stage(self, run_id: str, stage: LifecycleStage) -> None:
        ref = self.get_run_ref(run_id)

        def tx(conn: Connection) -> None:
            conn.execute(
                update(runs)
                .where(runs.c.pk == ref.pk)
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=now_ms() if stage is LifecycleStage.DELETED else None,
                )
            )
            action = "delete" if stage is LifecycleStage.DELETED else "restore"
            self._audit(
                conn, f"run.{action}", entity_type="run", entity=run_id,
                before={"stage": ref.lifecycle_stage.value}, after={"stage": stage.value},
            )  # fmt: skip

        self.db.write(tx)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run: hidden from searches until restored; ``gc`` purges it."""
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    # -- params and tags ---------------------------------------------------------

    def log_params(self, run_pk: int, values: Mapping[str, str]) -> None:
        """Insert params; the same key again with the same value is fine, another value is not."""
        if not values:
            return

        def tx(conn: Connection) -> None:
            keys = list(values)
            existing = dict(
                conn.execute(
                    select(params.c.key, params.c.value).where(
                        (params.c.run_pk == run_pk) & params.c.key.in_(keys)
                    )
                ).all()
            )
            clashes = {
                k: (existing[k], v) for k, v in values.items() if k in existing and existing[k] != v
            }
            if clashes:
                desc = "; ".join(
                    f"{k!r}: logged {old!r}, now {new!r}" for k, (old, new) in clashes.items()
                )
                raise InvalidInputError(
                    f"params cannot change once logged ({desc}). Use a new key, a tag for "
                    "values that change, or a new run.",
                    details={"keys": sorted(clashes)},
                )
            new_rows = [
                {"run_pk": run_pk, "key": k, "value": v, "num_value": _num(v)}
                for k, v in values.items()
                if k not in existing
            ]
            if new_rows:
                conn.execute(insert(params), new_rows)

        self.db.write(tx)

    def set_tags(self, run_pk: int, values: Mapping[str, str]) -> None:
        if not values:
            return

        def tx(conn: Connection) -> None:
            conn.execute(
                delete(tags).where((tags.c.run_pk == run_pk) & tags.c.key.in_(list(values)))
            )
            conn.execute(
                insert(tags), [{"run_pk": run_pk, "key": k, "value": v} for k, v in values.items()]
            )

        self.db.write(tx)

    def delete_tag(self, run_pk: int, key: str) -> None:
        def tx(conn: Connection) -> int:
            return conn.execute(
                delete(tags).where((tags.c.run_pk == run_pk) & (tags.c.key == key))
            ).rowcount

        if not self.db.write(tx):
            raise NotFoundError(f"tag {key!r} is not set on this run")

    # -- metrics -----------------------------------------------------------------

    def write_points(self, points: Sequence[Point]) -> int:
        ts = now_ms()
        return self.db.write(lambda conn: write_points(conn, points, now_ms=ts))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        ref = self.get_run_ref(run_id)
        with self.db.read() as conn:
            history = read_history(conn, ref.pk, key)
            if not history and key not in metric_keys(conn, ref.pk):
                known = ", ".join(metric_keys(conn, ref.pk)) or "none"
                raise NotFoundError(f"run {run_id} has no metric {key!r} (its metrics: {known})")
        return history

    # -- artifacts ---------------------------------------------------------------

    def add_artifacts(self, run_pk: int, items: Iterable[tuple[str, str, int]]) -> None:
        """Record ``(path, digest, size)`` for a run; logging a path again replaces it."""
        rows = [
            {"run_pk": run_pk, "path": p, "digest": d, "size": s, "created_at": now_ms()}
            for p, d, s in items
        ]
        if not rows:
            return

        def tx(conn: Connection) -> None:
            conn.execute(
                delete(artifacts).where(
                    (artifacts.c.run_pk == run_pk) & artifacts.c.path.in_([r["path"] for r in rows])
                )
            )
            conn.execute(insert(artifacts), rows)

        self.db.write(tx)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        ref = self.get_run_ref(run_id)
        query = select(artifacts).where(artifacts.c.run_pk == ref.pk).order_by(artifacts.c.path)
        if prefix:
            p = prefix.rstrip("/")
            query = query.where((artifacts.c.path == p) | artifacts.c.path.startswith(p + "/"))
        with self.db.read() as conn:
            return [Artifact(r.path, r.digest, r.size, r.created_at) for r in conn.execute(query)]

    def all_artifact_digests(self) -> dict[str, list[tuple[str, str]]]:
        """digest -> [(run_id, path), ...] over every run (deleted ones too)."""
        out: dict[str, list[tuple[str, str]]] = {}
        with self.db.read() as conn:
            rows = conn.execute(
                select(artifacts.c.digest, runs.c.run_id, artifacts.c.path).join(
                    runs, runs.c.pk == artifacts.c.run_pk
                )
            )
            for digest, run_id, path in rows:
                out.setdefault(digest, []).append((run_id, path))
        return out

    # -- reading runs --------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        ref = self.get_run_ref(run_id)
        return self._load_runs([ref.pk])[0]

    def _fetch(self, pks: Sequence[int], selector: Any = None) -> _Fetched:
        """Raw rows of runs ``pks`` and their params, latest metrics and tags (4 queries).

        ``selector``, a SELECT of the same pks, replaces a long IN list when given.
        """
        fetched = _Fetched({}, [], [], [])
        parts: list[Any] = (
            [selector]
            if selector is not None
            else [list(pks[i : i + _IN_CHUNK]) for i in range(0, len(pks), _IN_CHUNK)]
        )
        pm, lm, tg = params.c, latest_metrics.c, tags.c
        with self.db.read() as conn:
            for part in parts:
                for r in _raw(conn, select(*_RUN_COLUMNS).where(runs.c.pk.in_(part))):
                    fetched.runs[r[0]] = r
                fetched.params.extend(
                    _raw(conn, select(pm.run_pk, pm.key, pm.value).where(pm.run_pk.in_(part)))
                )
                fetched.metrics.extend(
                    _raw(
                        conn,
                        select(lm.run_pk, lm.key, lm.value, lm.is_nan).where(lm.run_pk.in_(part)),
                    )
                )
                fetched.tags.extend(
                    _raw(conn, select(tg.run_pk, tg.key, tg.value).where(tg.run_pk.in_(part)))
                )
        return fetched

    def _load_runs(self, pks: Sequence[int], selector: Any = None) -> list[Run]:
        """Runs for ``pks``, in that order, with params, latest metrics and tags."""
        if not pks:
            return []
        fetched = self._fetch(pks, selector)
        p_map: dict[int, dict[str, str]] = {}
        m_map: dict[int, dict[str, float]] = {}
        t_map: dict[int, dict[str, str]] = {}
        for pk, k, v in fetched.params:
            p_map.setdefault(pk, {})[k] = v
        for pk, k, v, nan in fetched.metrics:
            m_map.setdefault(pk, {})[k] = math.nan if nan else v
        for pk, k, v in fetched.tags:
            t_map.setdefault(pk, {})[k] = v
        empty: dict[str, Any] = {}
        out = []
        for pk in pks:
            r = fetched.runs[pk]
            out.append(
                Run(
                    r[1], str(r[2]), r[3], _STATUS[r[4]], r[5], r[6], _STAGE[r[7]], r[8],
                    r[9] or "", r[10] or "", r[11] or "", r[12],
                    None if r[13] is None else bool(r[13]), r[14], r[15] or "",
                    r[16], r[17], r[18] or "",
                    dict(sorted(p_map.get(pk, empty).items())),
                    dict(sorted(m_map.get(pk, empty).items())),
                    dict(sorted(t_map.get(pk, empty).items())),
                )
            )  # fmt: skip
        return out

    def _load_table(self, pks: Sequence[int], selector: Any = None) -> RunTable:
        """The same data as :meth:`_load_runs`, column by column, without Run objects."""
        n = len(pks)
        fetched = self._fetch(pks, selector) if pks else _Fetched({}, [], [], [])
        index = {pk: i for i, pk in enumerate(pks)}
        rows = [fetched.runs[pk] for pk in pks]
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_RUN_COLUMNS)
        attributes = {name: list(columns[i + 1]) for i, name in enumerate(RUN_TABLE_ATTRIBUTES)}
        attributes["experiment_id"] = [str(e) for e in attributes["experiment_id"]]

        def pivot(items: list[Any], missing: Any, nan_flag: bool) -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {}
            for item in items:
                col = out.get(item[1])
                if col is None:
                    col = out[item[1]] = [missing] * n
                col[index[item[0]]] = math.nan if nan_flag and item[3] else item[2]
            return dict(sorted(out.items()))

        return RunTable(
            attributes,
            pivot(fetched.params, None, False),
            pivot(fetched.metrics, math.nan, True),
            pivot(fetched.tags, None, False),
        )

    def search_runs(
        self,
        *,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int | None = 1000,
        page_token: str | None = None,
        view: str = "active",
    ) -> SearchPage:
        """Runs matching ``filter_string``, ordered, one page at a time (all SQL)."""
        pks, token, selector = self._search_pks(
            experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            view=view,
        )
        return SearchPage(self._load_runs(pks, selector), token)

    def search_run_table(
        self,
        *,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int | None = 1000,
        page_token: str | None = None,
        view: str = "active",
    ) -> tuple[RunTable, str | None]:
        """Like :meth:`search_runs`, column by column (for DataFrames)."""
        pks, token, selector = self._search_pks(
            experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            view=view,
        )
        return self._load_table(pks, selector), token

    def _search_pks(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        max_results: int | None,
        page_token: str | None,
        view: str,
    ) -> tuple[list[int], str | None, Any]:
        if max_results is not None and (not isinstance(max_results, int) or max_results < 1):
            raise InvalidInputError(
                f"max_results must be a positive integer or None, got {max_results!r}"
            )
        where = q.compile_filter(q.parse_filter(filter_string))
        order = q.parse_order_by(list(order_by or []))
        ids = [int(e) for e in experiment_ids]
        fp = q.fingerprint(sorted(ids), filter_string or "", list(order_by or []), view)
        offset = q.decode_page_token(page_token, fp)
        query = q.apply_order(q.base_query(ids, q.lifecycle_filter(view)).where(where), order)
        if max_results is not None:
            query = query.limit(max_results + 1)
        if offset:
            query = query.offset(offset)
        with self.db.read() as conn:
            pks = [r[0] for r in _raw(conn, query)]
        token = None
        if max_results is not None and len(pks) > max_results:
            pks = pks[:max_results]
            token = q.encode_page_token(offset + max_results, fp)
        selector = None
        if max_results is None and not offset and len(pks) > _IN_CHUNK // 5:
            selector = q.base_query(ids, q.lifecycle_filter(view)).where(where)
        return pks, token, selector

    def experiment_ids(self, names_or_ids: Sequence[str] | None) -> list[str]:
        """Resolve experiment names/ids; None means every active experiment."""
        if names_or_ids is None:
            return [e.experiment_id for e in self.list_experiments()]
        return [self.get_experiment(n).experiment_id for n in names_or_ids]

    # -- maintenance -------------------------------------------------------------

    def running_runs(self) -> list[tuple[str, int | None, str, int | None]]:
        """``(run_id, pid, host, heartbeat)`` for runs still marked RUNNING."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(runs.c.run_id, runs.c.pid, runs.c.host, runs.c.heartbeat).where(
                    runs.c.status == RunStatus.RUNNING.value
                )
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def count_metric_points(self, run_id: str) -> int:
        ref = self.get_run_ref(run_id)
        with self.db.read() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(metric_chunks.c.count), 0)).where(
                    metric_chunks.c.run_pk == ref.pk
                )
            ).scalar_one()
        return int(total)

    def purge_deleted(self) -> tuple[int, int]:
        """Permanently remove soft-deleted runs and experiments. Returns (runs, experiments)."""

        def tx(conn: Connection) -> tuple[int, int]:
            run_where, dead_exps = purgeable_runs(conn)
            dead_runs = [r[0] for r in conn.execute(select(runs.c.pk).where(run_where))]
            for start in range(0, len(dead_runs), _IN_CHUNK):
                part = dead_runs[start : start + _IN_CHUNK]
                for table in (params, tags, latest_metrics, metric_chunks, artifacts, run_inputs):
                    conn.execute(delete(table).where(table.c.run_pk.in_(part)))
                conn.execute(delete(runs).where(runs.c.pk.in_(part)))
            if dead_exps:
                conn.execute(delete(experiments).where(experiments.c.experiment_id.in_(dead_exps)))
            if dead_runs or dead_exps:
                self._audit(
                    conn, "store.purge", entity_type="store", entity="runs",
                    after={"runs": len(dead_runs), "experiments": len(dead_exps)},
                )  # fmt: skip
            return len(dead_runs), len(dead_exps)

        return self.db.write(tx)

    def mark_run(self, run_id: str, status: RunStatus) -> None:
        """Set a run's terminal status (used by ``doctor --fix`` for runs of dead processes)."""
        ref = self.get_run_ref(run_id)
        self.end_run(ref.pk, status)
