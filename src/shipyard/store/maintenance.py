"""Store maintenance: prove a store is consistent (``doctor``) and reclaim space (``gc``).

:func:`doctor` checks that every object a run references (its artifacts and its
environment document) exists and still hashes to its name, lists objects that
nothing references, finds runs left RUNNING by a process that has died, and on
SQLite runs the database's own integrity checks. :func:`gc` purges soft-deleted
runs and experiments, then deletes unreferenced objects older than a grace
period (an object is written before the run records it, so a fresh object with
no reference yet may be one a live process is about to record).

Example::

    report = doctor(store, objects)
    if not report.consistent:
        for issue in report.corrupt:
            print(issue.run_id, issue.path)
    mark_stale(store, [s.run_id for s in report.stale])
    gc(store, objects, older_than_s=3600)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from shipyard.core.entities import RunStatus
from shipyard.core.errors import (
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    StoreUnavailableError,
)
from shipyard.store.manifest import manifest_entries
from shipyard.store.objects import LocalObjectStore, ObjectStore, check_digest
from shipyard.store.schema import (
    artifacts,
    dataset_tags,
    dataset_versions,
    datasets,
    metric_chunks,
    pipeline_cache,
    runs,
)
from shipyard.store.tracking_store import SqlTrackingStore, purgeable_runs

logger = logging.getLogger(__name__)

ENVIRONMENT = "environment"
ARTIFACT = "artifact"
DATASET = "dataset"
# A process that started this long after a run's last sign of life cannot be its owner.
_PID_REUSE_SLACK_S = 2.0
_MAX_REPORTED_DB_ERRORS = 100


@dataclass(frozen=True, slots=True)
class ObjectIssue:
    """One reference to an object that is missing or corrupt.

    ``kind`` is ``artifact`` (then ``path`` is the artifact path), ``environment``
    (the run's environment document; ``path`` is empty) or ``dataset`` (then
    ``run_id`` holds the version, ``name@N``, and ``path`` says which of its objects:
    ``(table)``, ``(manifest)``, ``(profile)``, ``(cleaner)`` or a file of a folder).
    """

    run_id: str
    kind: str
    path: str
    digest: str

    @property
    def where(self) -> str:
        """``run_id:path`` for an artifact, ``run_id:(environment)`` for the environment."""
        if self.kind == ENVIRONMENT:
            return f"{self.run_id}:(environment)"
        return f"{self.run_id}:{self.path}"

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "kind": self.kind, "path": self.path, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class StaleRun:
    """A run still marked RUNNING whose process is known to be gone."""

    run_id: str
    pid: int | None
    host: str
    heartbeat: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "host": self.host,
            "heartbeat": self.heartbeat,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DoctorReport:
    """What :func:`doctor` found.

    ``consistent`` is False when a referenced object is missing or corrupt or the
    database fails its integrity checks. Stale runs, runs that cannot be checked
    (RUNNING on another host) and orphan objects are reported but do not make a
    store inconsistent: a crash may leave them, and ``mark_stale``/``gc`` tidy them.
    """

    missing: tuple[ObjectIssue, ...]
    corrupt: tuple[ObjectIssue, ...]
    orphans: tuple[str, ...]
    stale: tuple[StaleRun, ...]
    unchecked_running: tuple[str, ...]
    integrity_errors: tuple[str, ...]
    objects_referenced: int
    objects_stored: int
    hashes_verified: bool

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.corrupt or self.integrity_errors)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``shipyard doctor --json``)."""
        return {
            "consistent": self.consistent,
            "hashes_verified": self.hashes_verified,
            "objects_referenced": self.objects_referenced,
            "objects_stored": self.objects_stored,
            "missing": [i.to_dict() for i in self.missing],
            "corrupt": [i.to_dict() for i in self.corrupt],
            "orphans": list(self.orphans),
            "stale": [s.to_dict() for s in self.stale],
            "unchecked_running": list(self.unchecked_running),
            "integrity_errors": list(self.integrity_errors),
        }


@dataclass(frozen=True)
class GcReport:
    """What :func:`gc` removed (or, with ``dry_run``, would remove).

    ``objects_in_grace`` counts unreferenced objects kept because they are newer
    than the grace period; ``bytes_freed`` counts only objects whose size is known
    (local folders).
    """

    dry_run: bool
    runs_purged: int
    experiments_purged: int
    objects_deleted: tuple[str, ...]
    bytes_freed: int
    objects_in_grace: int
    temp_files_deleted: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "runs_purged": self.runs_purged,
            "experiments_purged": self.experiments_purged,
            "objects_deleted": list(self.objects_deleted),
            "bytes_freed": self.bytes_freed,
            "objects_in_grace": self.objects_in_grace,
            "temp_files_deleted": self.temp_files_deleted,
        }


# -- references ----------------------------------------------------------------------


def _purgeable(conn: Connection) -> tuple[Any, list[int]]:
    """The WHERE clause for runs that ``purge_deleted`` removes, and the deleted experiments."""
    return purgeable_runs(conn)


def _dataset_references(store: SqlTrackingStore, objects: ObjectStore) -> list[ObjectIssue]:
    """Objects dataset versions hold: tables, manifests and each file they list, profiles."""
    dv = dataset_versions.c
    found: list[ObjectIssue] = []
    with store.db.read() as conn:
        rows = conn.execute(
            select(datasets.c.name, dv.version, dv.kind, dv.object_digest, dv.profile_digest).join(
                datasets, datasets.c.dataset_id == dv.dataset_id
            )
        ).all()
        cleaners = conn.execute(
            select(datasets.c.name, dv.version, dataset_tags.c.value)
            .join(dataset_versions, dv.pk == dataset_tags.c.version_pk)
            .join(datasets, datasets.c.dataset_id == dv.dataset_id)
            .where(dataset_tags.c.key == "cleaner")
        ).all()
    for name, version, kind, object_digest, profile_digest in rows:
        ref = f"{name}@{version}"
        found.append(ObjectIssue(ref, DATASET, f"({kind})", object_digest))
        if profile_digest:
            found.append(ObjectIssue(ref, DATASET, "(profile)", profile_digest))
        if kind == "files":
            try:
                entries = manifest_entries(objects.get_bytes(object_digest))
            except (NotFoundError, StoreUnavailableError):
                continue  # the manifest itself is reported as missing or corrupt
            except InvalidInputError as exc:  # intact bytes this shipyard cannot read
                raise InvalidStateError(
                    f"the manifest of dataset {ref} (object {object_digest}) cannot be read: "
                    f"{exc.message}. Stopped before deleting or judging anything, since the "
                    "objects it lists are unknown; if a newer shipyard wrote it, upgrade"
                ) from None
            found.extend(ObjectIssue(ref, DATASET, path, digest) for path, digest in entries)
    for name, version, digest in cleaners:
        found.append(ObjectIssue(f"{name}@{version}", DATASET, "(cleaner)", digest))
    return found


def _references(store: SqlTrackingStore, objects: ObjectStore) -> dict[str, list[ObjectIssue]]:
    """digest -> every place that references it (artifacts, environments, datasets)."""
    refs: dict[str, list[ObjectIssue]] = {}
    for digest, places in store.all_artifact_digests().items():
        refs.setdefault(digest, []).extend(
            ObjectIssue(run_id, ARTIFACT, path, digest) for run_id, path in places
        )
    with store.db.read() as conn:
        rows = conn.execute(
            select(runs.c.run_id, runs.c.environment_digest).where(
                runs.c.environment_digest.is_not(None)
            )
        ).all()
    for run_id, digest in rows:
        refs.setdefault(digest, []).append(ObjectIssue(run_id, ENVIRONMENT, "", digest))
    for issue in _dataset_references(store, objects):
        refs.setdefault(issue.digest, []).append(issue)
    return refs


_DIGEST_IN_JSON = re.compile(r'"([0-9a-f]{64})"')


def _referenced_digests(
    store: SqlTrackingStore, objects: ObjectStore, *, surviving_purge: bool = False
) -> set[str]:
    """Every digest something references; with ``surviving_purge`` only what ``gc`` keeps."""
    with store.db.read() as conn:
        art_q = select(artifacts.c.digest).join(runs, runs.c.pk == artifacts.c.run_pk)
        env_q = select(runs.c.environment_digest).where(runs.c.environment_digest.is_not(None))
        if surviving_purge:
            where, _ = _purgeable(conn)
            art_q = art_q.where(~where)
            env_q = env_q.where(~where)
        found = {r[0] for r in conn.execute(art_q.distinct())}
        found.update(r[0] for r in conn.execute(env_q.distinct()))
        # pipeline step outputs the cache can restore: every digest in their manifests
        for (manifest,) in conn.execute(select(pipeline_cache.c.manifest_json)):
            found.update(_DIGEST_IN_JSON.findall(manifest))
    found.update(issue.digest for issue in _dataset_references(store, objects))
    return found


# -- stale runs ------------------------------------------------------------------------


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """``(state letter, start time in epoch seconds)`` from ``/proc``; None where there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    boot = _boot_time()
    started = None
    if boot is not None:
        with contextlib.suppress(ValueError, OSError):
            started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0], started


def _dead_reason(pid: int, last_seen_ms: int) -> str | None:
    """Why process ``pid`` cannot be the run's (still living) owner, or None if it may be."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} has exited"
    except PermissionError:
        pass  # the process exists and belongs to another user
    except OSError:
        return None
    stat = _proc_stat(pid)
    if stat is None:
        return None
    state, started = stat
    if state in ("Z", "X"):
        return f"process {pid} has exited (zombie)"
    if started is not None and started > last_seen_ms / 1000.0 + _PID_REUSE_SLACK_S:
        return f"pid {pid} now belongs to another process, started after the run last reported"
    return None


def _running(
    store: SqlTrackingStore,
    hostname: str,
) -> tuple[tuple[StaleRun, ...], tuple[str, ...]]:
    with store.db.read() as conn:
        rows = conn.execute(
            select(runs.c.run_id, runs.c.pid, runs.c.host, runs.c.heartbeat, runs.c.start_time)
            .where(runs.c.status == RunStatus.RUNNING.value)
            .order_by(runs.c.start_time)
        ).all()
    stale: list[StaleRun] = []
    unchecked: list[str] = []
    for run_id, pid, host, heartbeat, start_time in rows:
        if host != hostname or pid is None or pid <= 0:
            unchecked.append(run_id)
            continue
        reason = _dead_reason(pid, max(start_time, heartbeat or 0))
        if reason is not None:
            stale.append(StaleRun(run_id, pid, host, heartbeat, reason))
    return tuple(stale), tuple(unchecked)


# -- database checks -------------------------------------------------------------------


def _integrity_errors(store: SqlTrackingStore) -> list[str]:
    errors: list[str] = []
    with store.db.read() as conn:
        if store.db.dialect == "sqlite":
            for (line,) in conn.exec_driver_sql("PRAGMA integrity_check").all():
                if str(line).lower() != "ok":
                    errors.append(f"sqlite integrity_check: {line}")
            for row in conn.exec_driver_sql("PRAGMA foreign_key_check").all():
                errors.append(
                    f"sqlite foreign_key_check: row {row[1]} of table {row[0]} "
                    f"points to a missing row of {row[2]}"
                )
        c = metric_chunks.c
        bad = conn.execute(
            select(c.chunk_id, c.key)
            .where(
                (func.length(c.steps) != c.count * 8)
                | (func.length(c.timestamps) != c.count * 8)
                | (func.length(c.metric_values) != c.count * 8)
            )
            .limit(_MAX_REPORTED_DB_ERRORS)
        ).all()
        errors.extend(
            f"metric chunk {chunk_id} of metric {key!r} has arrays whose length "
            "does not match its point count"
            for chunk_id, key in bad
        )
    return errors[:_MAX_REPORTED_DB_ERRORS]


# -- doctor ----------------------------------------------------------------------------


def _check_objects(
    objects: ObjectStore,
    digests: Sequence[str],
    stored: set[str],
    *,
    verify_hashes: bool,
    progress: Callable[[int, int], None] | None,
) -> tuple[set[str], set[str]]:
    """``(missing, corrupt)`` among ``digests``."""
    missing: set[str] = set()
    corrupt: set[str] = set()
    to_hash: list[str] = []
    for digest in digests:
        try:
            check_digest(digest)
        except InvalidInputError:
            corrupt.add(digest)  # the reference itself is malformed
            continue
        if digest not in stored:
            missing.add(digest)
        elif verify_hashes:
            to_hash.append(digest)
    total = len(to_hash)
    if progress is not None:
        progress(0, total)
    if not to_hash:
        return missing, corrupt
    workers = min(8, (os.cpu_count() or 1) + 2, total)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shipyard-doctor") as pool:
        futures = {pool.submit(objects.verify, d): d for d in to_hash}
        for done, future in enumerate(as_completed(futures), start=1):
            digest = futures[future]
            try:
                ok = future.result()
            except OSError as exc:
                logger.warning("cannot read object %s: %s", digest, exc)
                ok = False
            if not ok:
                # gone between listing and hashing counts as missing
                (corrupt if objects.exists(digest) else missing).add(digest)
            if progress is not None:
                progress(done, total)
    return missing, corrupt


def doctor(
    store: SqlTrackingStore,
    objects: ObjectStore,
    *,
    verify_hashes: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DoctorReport:
    """Check a store: referenced objects, orphans, stale runs and database integrity.

    Args:
        store: the tracking store to check.
        objects: the object store its runs reference.
        verify_hashes: hash every referenced object (slow for big stores); False
            only checks that each exists.
        progress: called as ``progress(done, total)`` while objects are hashed.

    Returns:
        A :class:`DoctorReport`; ``report.consistent`` says whether the store is sound.

    Example::

        report = doctor(store, objects, verify_hashes=False)
        report.consistent, [i.where for i in report.missing]
    """
    # References first, then the listing: an object is always written before the run
    # records it, so nothing recorded in between can look missing.
    integrity = _integrity_errors(store)
    refs = _references(store, objects)
    stale, unchecked = _running(store, socket.gethostname())
    stored = {digest for digest, _ in objects.iter_objects()}
    missing, corrupt = _check_objects(
        objects, sorted(refs), stored, verify_hashes=verify_hashes, progress=progress
    )

    def issues(digests: Iterable[str]) -> tuple[ObjectIssue, ...]:
        found = [issue for d in digests for issue in refs[d]]
        return tuple(sorted(found, key=lambda i: (i.run_id, i.kind, i.path)))

    return DoctorReport(
        missing=issues(missing),
        corrupt=issues(corrupt),
        orphans=tuple(sorted(stored - set(refs))),
        stale=stale,
        unchecked_running=unchecked,
        integrity_errors=tuple(integrity),
        objects_referenced=len(refs),
        objects_stored=len(stored),
        hashes_verified=verify_hashes,
    )


def mark_stale(store: SqlTrackingStore, run_ids: Iterable[str]) -> list[str]:
    """End runs of dead processes as KILLED. Runs no longer RUNNING are left alone.

    Returns:
        The run ids that were marked.
    """
    marked: list[str] = []
    for run_id in run_ids:
        try:
            ref = store.get_run_ref(run_id)
        except NotFoundError:
            continue
        if ref.status is RunStatus.RUNNING:
            store.mark_run(run_id, RunStatus.KILLED)
            marked.append(run_id)
            logger.info("marked run %s KILLED (its process is gone)", run_id)
    return marked


# -- gc --------------------------------------------------------------------------------


def _local_object_path(objects: ObjectStore, digest: str) -> Path | None:
    if isinstance(objects, LocalObjectStore):
        return objects.root / digest[:2] / digest[2:]
    return None


def _object_size(objects: ObjectStore, digest: str) -> int:
    path = _local_object_path(objects, digest)
    if path is None:
        return 0
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _touched_since(objects: ObjectStore, digest: str, cutoff: float) -> bool:
    """Whether a local object was modified after ``cutoff`` (checked again just before delete)."""
    path = _local_object_path(objects, digest)
    if path is None:
        return False
    try:
        return path.stat().st_mtime >= cutoff
    except OSError:
        return False


def _old_temp_files(objects: ObjectStore, cutoff: float) -> list[Path]:
    """Temporary files a crashed writer left in a local store's ``.tmp`` folder."""
    if not isinstance(objects, LocalObjectStore):
        return []
    tmp = objects.root / ".tmp"
    if not tmp.is_dir():
        return []
    old = []
    for entry in os.scandir(tmp):
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                old.append(Path(entry.path))
    return old


def _count_purgeable(store: SqlTrackingStore) -> tuple[int, int]:
    with store.db.read() as conn:
        where, dead_exps = _purgeable(conn)
        n_runs = conn.execute(select(func.count()).select_from(runs).where(where)).scalar_one()
    return int(n_runs), len(dead_exps)


def gc(
    store: SqlTrackingStore,
    objects: ObjectStore,
    *,
    older_than_s: float = 3600,
    dry_run: bool = False,
) -> GcReport:
    """Purge soft-deleted runs and experiments, then delete unreferenced objects.

    Args:
        store: the tracking store.
        objects: its object store.
        older_than_s: grace period; an unreferenced object modified more recently
            is kept, since a running process may be about to record it.
        dry_run: report what would be removed and change nothing.

    Raises:
        InvalidInputError: ``older_than_s`` is negative.

    Example::

        gc(store, objects, older_than_s=0, dry_run=True).objects_deleted
    """
    if (
        isinstance(older_than_s, bool)
        or not isinstance(older_than_s, int | float)
        or not (older_than_s >= 0)
    ):
        raise InvalidInputError(
            f"older_than_s must be a number of seconds >= 0, got {older_than_s!r}"
        )
    if dry_run:
        n_runs, n_exps = _count_purgeable(store)
    else:
        n_runs, n_exps = store.purge_deleted()
    cutoff = time.time() - older_than_s
    referenced = _referenced_digests(store, objects, surviving_purge=dry_run)
    candidates: list[str] = []
    in_grace = 0
    for digest, mtime in objects.iter_objects():
        if digest in referenced:
            continue
        if mtime < cutoff:
            candidates.append(digest)
        else:
            in_grace += 1
    if candidates and not dry_run:
        # Read the references again just before deleting: anything recorded meanwhile stays.
        referenced = _referenced_digests(store, objects)
        candidates = [d for d in candidates if d not in referenced]
    candidates.sort()
    deleted: list[str] = []
    freed = 0
    for digest in candidates:
        if not dry_run and _touched_since(objects, digest, cutoff):
            in_grace += 1  # written again (deduplicated) since it was listed
            continue
        freed += _object_size(objects, digest)
        deleted.append(digest)
        if not dry_run:
            objects.delete(digest)
    temps = _old_temp_files(objects, cutoff)
    if not dry_run:
        for path in temps:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    logger.info(
        "gc%s: %d runs, %d experiments purged; %d objects deleted",
        " (dry run)" if dry_run else "",
        n_runs,
        n_exps,
        len(deleted),
    )
    return GcReport(
        dry_run=dry_run,
        runs_purged=n_runs,
        experiments_purged=n_exps,
        objects_deleted=tuple(deleted),
        bytes_freed=freed,
        objects_in_grace=in_grace,
        temp_files_deleted=len(temps),
    )
