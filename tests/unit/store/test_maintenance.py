"""doctor, mark_stale and gc against a real store (SQLite; PostgreSQL when configured)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.core.entities import RunStatus
from shipyard.core.errors import InvalidInputError
from shipyard.store.db import Database
from shipyard.store.maintenance import doctor, gc, mark_stale
from shipyard.store.objects import LocalObjectStore
from shipyard.store.tracking_store import RunRef, SqlTrackingStore


@dataclass
class Env:
    store: SqlTrackingStore
    objects: LocalObjectStore
    db_url: str

    def object_path(self, digest: str) -> Path:
        return self.objects.root / digest[:2] / digest[2:]

    def age(self, digest: str, seconds: float) -> None:
        """Pretend the object was written ``seconds`` ago."""
        when = time.time() - seconds
        os.utime(self.object_path(digest), (when, when))


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    db = Database(db_url, busy_timeout=5)
    yield Env(SqlTrackingStore(db), LocalObjectStore(tmp_path / "objects"), db_url)
    db.dispose()


@pytest.fixture
def make_run(env: Env) -> Callable[..., RunRef]:
    """Factory: a finished run with artifacts ``{path: bytes}`` (and optional environment)."""

    def make(
        artifacts: dict[str, bytes] | None = None,
        *,
        experiment: str = "exp",
        environment: bytes | None = None,
        finished: bool = True,
        pid: int | None = None,
        host: str = "",
        start_time: int | None = None,
    ) -> RunRef:
        exp = env.store.get_or_create_experiment(experiment)
        ref = env.store.create_run(
            experiment_id=exp.experiment_id, pid=pid, host=host, start_time=start_time
        )
        items = []
        for path, data in (artifacts or {}).items():
            info = env.objects.put_bytes(data)
            items.append((path, info.digest, info.size))
        env.store.add_artifacts(ref.pk, items)
        if environment is not None:
            digest = env.objects.put_bytes(environment).digest
            env.store.set_run_environment(
                ref.pk,
                git_commit=None,
                git_dirty=None,
                git_diff_hash=None,
                environment_digest=digest,
            )
        if finished:
            env.store.end_run(ref.pk, RunStatus.FINISHED)
        return ref

    return make


def _digest(env: Env, ref: RunRef, path: str) -> str:
    return next(a.digest for a in env.store.list_artifacts(ref.run_id) if a.path == path)


# -- doctor ---------------------------------------------------------------------------


def test_healthy_store_is_consistent(env: Env, make_run: Callable[..., RunRef]) -> None:
    make_run({"a.txt": b"a", "b/c.bin": b"c"}, environment=b'{"python": "3"}')
    make_run({"same.txt": b"a"})  # deduplicated with a.txt

    report = doctor(env.store, env.objects)

    assert report.consistent
    assert report.hashes_verified
    assert (report.missing, report.corrupt, report.orphans, report.stale) == ((), (), (), ())
    assert report.integrity_errors == ()
    assert report.objects_referenced == 3
    assert report.objects_stored == 3
    assert report.to_dict()["consistent"] is True


def test_missing_object_names_run_and_path(env: Env, make_run: Callable[..., RunRef]) -> None:
    ref = make_run({"model/model.bin": b"weights", "ok.txt": b"fine"})
    env.object_path(_digest(env, ref, "model/model.bin")).unlink()

    report = doctor(env.store, env.objects)

    assert not report.consistent
    assert [(i.run_id, i.kind, i.path) for i in report.missing] == [
        (ref.run_id, "artifact", "model/model.bin")
    ]
    assert report.missing[0].where == f"{ref.run_id}:model/model.bin"
    assert report.corrupt == ()


def test_corrupt_object_is_found_only_when_hashing(
    env: Env,
    make_run: Callable[..., RunRef],
) -> None:
    ref = make_run({"data.csv": b"x,y\n1,2\n"})
    env.object_path(_digest(env, ref, "data.csv")).write_bytes(b"x,y\n1,3\n")

    report = doctor(env.store, env.objects)
    assert not report.consistent
    assert [(i.run_id, i.path) for i in report.corrupt] == [(ref.run_id, "data.csv")]

    quick = doctor(env.store, env.objects, verify_hashes=False)
    assert quick.consistent and not quick.hashes_verified


def test_every_reference_to_a_shared_object_is_reported(
    env: Env,
    make_run: Callable[..., RunRef],
) -> None:
    first = make_run({"one.txt": b"shared"})
    second = make_run({"two.txt": b"shared"})
    env.object_path(_digest(env, first, "one.txt")).unlink()

    report = doctor(env.store, env.objects)

    assert sorted((i.run_id, i.path) for i in report.missing) == sorted(
        [(first.run_id, "one.txt"), (second.run_id, "two.txt")]
    )


def test_missing_environment_document(env: Env, make_run: Callable[..., RunRef]) -> None:
    ref = make_run(environment=b'{"packages": {}}')
    digest = env.store.get_run(ref.run_id).environment_digest
    assert digest is not None
    env.object_path(digest).unlink()

    report = doctor(env.store, env.objects)

    assert [(i.run_id, i.kind) for i in report.missing] == [(ref.run_id, "environment")]
    assert report.missing[0].where == f"{ref.run_id}:(environment)"


def test_orphans_are_reported_but_consistent(env: Env, make_run: Callable[..., RunRef]) -> None:
    make_run({"a.txt": b"a"})
    orphan = env.objects.put_bytes(b"nobody references me").digest

    report = doctor(env.store, env.objects)

    assert report.consistent
    assert report.orphans == (orphan,)


def test_progress_is_reported(env: Env, make_run: Callable[..., RunRef]) -> None:
    make_run({"a": b"1", "b": b"2", "c": b"3"})
    calls: list[tuple[int, int]] = []

    doctor(env.store, env.objects, progress=lambda done, total: calls.append((done, total)))

    assert calls[0] == (0, 3)
    assert calls[-1] == (3, 3)


# -- stale runs ------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_run_of_dead_process_is_stale_not_corrupt(
    env: Env,
    make_run: Callable[..., RunRef],
) -> None:
    host = socket.gethostname()
    dead = make_run(finished=False, pid=_dead_pid(), host=host)
    alive = make_run(finished=False, pid=os.getpid(), host=host)
    elsewhere = make_run(finished=False, pid=1234, host=host + "-other")

    report = doctor(env.store, env.objects)

    assert report.consistent
    assert [s.run_id for s in report.stale] == [dead.run_id]
    assert "exited" in report.stale[0].reason
    assert alive.run_id not in {s.run_id for s in report.stale}
    assert report.unchecked_running == (elsewhere.run_id,)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_reused_pid_is_stale(env: Env, make_run: Callable[..., RunRef]) -> None:
    # This process is alive, but it started long after a run that began in 2001.
    old = make_run(
        finished=False, pid=os.getpid(), host=socket.gethostname(), start_time=1_000_000_000_000
    )

    report = doctor(env.store, env.objects)

    assert [s.run_id for s in report.stale] == [old.run_id]
    assert "another process" in report.stale[0].reason


def test_mark_stale_kills_only_running_runs(env: Env, make_run: Callable[..., RunRef]) -> None:
    running = make_run(finished=False, pid=_dead_pid(), host=socket.gethostname())
    finished = make_run()

    marked = mark_stale(env.store, [running.run_id, finished.run_id, "0" * 32])

    assert marked == [running.run_id]
    assert env.store.get_run(running.run_id).status is RunStatus.KILLED
    assert env.store.get_run(finished.run_id).status is RunStatus.FINISHED
    assert doctor(env.store, env.objects).stale == ()


# -- database integrity ----------------------------------------------------------------


def _sqlite_path(db_url: str) -> str:
    if not db_url.startswith("sqlite:///"):
        pytest.skip("SQLite only")
    return db_url.removeprefix("sqlite:///")


def test_foreign_key_violation_is_an_integrity_error(
    env: Env,
    make_run: Callable[..., RunRef],
) -> None:
    make_run()
    path = _sqlite_path(env.db_url)
    env.store.db.dispose()
    with sqlite3.connect(path) as raw:  # foreign keys are off on a plain connection
        raw.execute("INSERT INTO params (run_pk, key, value) VALUES (9999, 'k', 'v')")

    report = doctor(env.store, env.objects)

    assert not report.consistent
    assert any("foreign_key_check" in e and "params" in e for e in report.integrity_errors)


def test_truncated_metric_chunk_is_an_integrity_error(
    env: Env,
    make_run: Callable[..., RunRef],
) -> None:
    ref = make_run(finished=False)
    env.store.write_points([(ref.pk, "loss", 0.5, 0, 1), (ref.pk, "loss", 0.4, 1, 2)])
    path = _sqlite_path(env.db_url)
    env.store.db.dispose()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE metric_chunks SET metric_values = substr(metric_values, 1, 8)")

    report = doctor(env.store, env.objects)

    assert not report.consistent
    assert any("loss" in e for e in report.integrity_errors)


# -- gc --------------------------------------------------------------------------------


def test_gc_purges_deleted_runs_and_old_orphans(
    env: Env,
    make_run: Callable[..., RunRef],
) -> None:
    keep = make_run({"keep.txt": b"keep", "shared.txt": b"shared"})
    gone = make_run({"gone.txt": b"gone", "shared.txt": b"shared"})
    env.store.delete_run(gone.run_id)
    gone_digest = _digest(env, gone, "gone.txt")
    shared_digest = _digest(env, keep, "shared.txt")
    old_orphan = env.objects.put_bytes(b"old orphan").digest
    new_orphan = env.objects.put_bytes(b"new orphan").digest
    for digest in (gone_digest, shared_digest, old_orphan):
        env.age(digest, 7200)

    report = gc(env.store, env.objects, older_than_s=3600)

    assert (report.runs_purged, report.experiments_purged) == (1, 0)
    assert set(report.objects_deleted) == {gone_digest, old_orphan}
    assert report.bytes_freed == len(b"gone") + len(b"old orphan")
    assert report.objects_in_grace == 1
    assert not env.objects.exists(gone_digest) and not env.objects.exists(old_orphan)
    assert env.objects.exists(new_orphan) and env.objects.exists(shared_digest)
    assert [
        r.run_id
        for r in env.store.search_runs(
            experiment_ids=env.store.experiment_ids(None), view="all"
        ).runs
    ] == [keep.run_id]
    after = doctor(env.store, env.objects)
    assert after.consistent and after.orphans == (new_orphan,)


def test_gc_dry_run_changes_nothing(env: Env, make_run: Callable[..., RunRef]) -> None:
    gone = make_run({"gone.txt": b"gone"}, experiment="old")
    env.store.delete_experiment("old")
    digest = _digest(env, gone, "gone.txt")

    dry = gc(env.store, env.objects, older_than_s=0, dry_run=True)

    assert dry.dry_run
    assert (dry.runs_purged, dry.experiments_purged) == (1, 1)
    assert dry.objects_deleted == (digest,)
    assert env.objects.exists(digest)
    assert env.store.get_run(gone.run_id).run_id == gone.run_id

    real = gc(env.store, env.objects, older_than_s=0)
    assert (real.runs_purged, real.experiments_purged, real.objects_deleted) == (1, 1, (digest,))
    assert not env.objects.exists(digest)
    assert env.store.list_experiments(view="all") == []


def test_gc_removes_old_temporary_files(env: Env) -> None:
    tmp = env.objects.root / ".tmp"
    tmp.mkdir(parents=True)
    old, new = tmp / "obj-old", tmp / "obj-new"
    old.write_bytes(b"partial")
    new.write_bytes(b"being written")
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    report = gc(env.store, env.objects)

    assert report.temp_files_deleted == 1
    assert not old.exists() and new.exists()


@pytest.mark.parametrize("bad", [-1, float("nan"), "10"])
def test_gc_rejects_a_bad_grace_period(env: Env, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="older_than_s"):
        gc(env.store, env.objects, older_than_s=bad)  # type: ignore[arg-type]


class _StaleListing(LocalObjectStore):
    """Lists every object as written long ago, as a listing taken before a rewrite would."""

    def iter_objects(self) -> Iterator[tuple[str, float]]:
        for digest, _ in super().iter_objects():
            yield digest, 0.0


def test_gc_keeps_an_object_written_again_after_listing(env: Env) -> None:
    objects = _StaleListing(env.objects.root)
    fresh = objects.put_bytes(b"deduplicated into a new run").digest

    report = gc(env.store, objects, older_than_s=3600)

    assert report.objects_deleted == ()
    assert report.objects_in_grace == 1
    assert objects.exists(fresh)
