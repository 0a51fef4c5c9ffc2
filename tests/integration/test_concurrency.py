"""Many writers on one store: processes, threads and forked children (SQLite and PostgreSQL).

Child processes are released together by a go-file (the ``fleet`` fixture) so that
their schema checks, run creation and metric writes overlap as much as they can.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from shipyard.core.config import Settings
from shipyard.core.entities import RunStatus
from shipyard.store.db import HEAD_REVISION, Database
from shipyard.tracking.tracker import Tracker

WORKERS = 8
POINTS = 10_000

# Logs POINTS points with one sy.log_metric call each. The short sleeps hand the GIL to the
# background writer so that every process commits many small batches while the others do.
LOGGER_SCRIPT = """
import shipyard as sy
import shipyard.client, shipyard.tracking.tracker  # load the stack before the gate
POINTS = int(os.environ["TEST_POINTS"])
wait_for_go()
run = sy.start_run(name=f"worker-{INDEX}")
print(run.run_id, flush=True)
for i in range(POINTS):
    sy.log_metric("loss", i * 0.5, step=i)
    if i % 250 == 249:
        time.sleep(0.002)
# no end_run and no flush: leaving normally must write every point and finish the run
"""

STARTER_SCRIPT = """
import shipyard as sy
import shipyard.client, shipyard.tracking.tracker
wait_for_go()
with sy.start_run(name=f"starter-{INDEX}") as run:
    for i in range(50):
        sy.log_metric("m", float(i))
print(run.run_id, flush=True)
"""


def _assert_clean_exits(results: list[Any]) -> list[str]:
    """Every child exited 0 and wrote nothing to stderr; returns the run id each printed."""
    for r in results:
        assert "locked" not in r.stderr.lower(), f"child {r.index} saw a lock error:\n{r.stderr}"
        assert r.returncode == 0, f"child {r.index} exited {r.returncode}:\n{r.stderr}"
        assert r.stderr == "", f"child {r.index} wrote to stderr:\n{r.stderr}"
    run_ids = [r.stdout.split()[0] for r in results]
    assert len(set(run_ids)) == len(results)
    return run_ids


@pytest.mark.slow
def test_eight_processes_log_ten_thousand_points_each_into_one_store(
    sy: Any, db_url: str, tmp_path: Path, fleet: Any
) -> None:
    sy.tracker().db.ensure_schema()  # the fresh-store race has its own test below
    env = fleet.env(
        db_url,
        tmp_path / "store",
        TEST_POINTS=str(POINTS),
        SHIPYARD_FLUSH_INTERVAL="0.01",
        SHIPYARD_FLUSH_MAX_POINTS="500",
    )

    run_ids = _assert_clean_exits(fleet.finish(fleet.launch(LOGGER_SCRIPT, WORKERS, env)))

    for run_id in run_ids:
        history = sy.get_metric_history(run_id, "loss")
        assert len(history) == POINTS, f"run {run_id} has {len(history)} of {POINTS} points"
        assert [m.step for m in history] == list(range(POINTS))
        assert [m.value for m in history] == [i * 0.5 for i in range(POINTS)]
        run = sy.get_run(run_id)
        assert run.status is RunStatus.FINISHED
        assert run.metrics == {"loss": (POINTS - 1) * 0.5}
    found = sy.search_runs(output_format="list")
    assert sorted(r.run_id for r in found) == sorted(run_ids)


def _fresh_store_urls(db_url: str, tmp_path: Path) -> list[str]:
    """Three never-created SQLite stores (a race needs a few tries to show), or the new PG db."""
    if db_url.startswith("sqlite"):
        return [f"sqlite:///{tmp_path / f'fresh-{r}' / 'db' / 'shipyard.db'}" for r in range(3)]
    return [db_url]


@pytest.mark.slow
def test_processes_opening_a_new_store_together_create_it_once(
    db_url: str, tmp_path: Path, fleet: Any, make_settings: Callable[..., Settings]
) -> None:
    for url in _fresh_store_urls(db_url, tmp_path):
        probe = Database(url)
        assert probe.current_revision() is None, "the store must not exist before the test"
        probe.dispose()
        home = tmp_path / f"home-{uuid.uuid4().hex[:8]}"

        run_ids = _assert_clean_exits(
            fleet.finish(fleet.launch(STARTER_SCRIPT, 4, fleet.env(url, home)))
        )

        db = Database(url)
        try:
            with db.engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
                experiments = conn.execute(text("SELECT name FROM experiments")).all()
                if db.dialect == "sqlite":
                    integrity = conn.exec_driver_sql("PRAGMA integrity_check").all()
                    assert [tuple(r) for r in integrity] == [("ok",)]
                    mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    assert str(mode).lower() == "wal"
        finally:
            db.dispose()
        assert [tuple(v) for v in versions] == [(HEAD_REVISION,)]
        assert [tuple(e) for e in experiments] == [("Default",)]

        tracker = Tracker(make_settings(url, SHIPYARD_HOME=str(home)))
        try:
            runs = tracker.search_runs(output_format="list")
            assert sorted(r.run_id for r in runs) == sorted(run_ids)
            for run in runs:
                assert run.status is RunStatus.FINISHED
                history = tracker.get_metric_history(run.run_id, "m")
                assert [m.step for m in history] == list(range(50))
        finally:
            tracker.flush()
            tracker.db.dispose()


def test_eight_threads_log_into_the_same_active_run(sy: Any) -> None:
    threads_n, per_thread = 8, 2_000
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                sy.log_metric(f"thread-{t}", float(i))  # step counted per key
                step = t * per_thread + i
                sy.log_metric("shared", float(step), step=step)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with sy.start_run(name="threads") as run:
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert not errors, errors

    for t in range(threads_n):
        history = sy.get_metric_history(run.run_id, f"thread-{t}")
        assert [m.step for m in history] == list(range(per_thread))
        assert [m.value for m in history] == [float(i) for i in range(per_thread)]
    shared = sy.get_metric_history(run.run_id, "shared")
    assert [m.step for m in shared] == list(range(threads_n * per_thread))
    assert [m.value for m in shared] == [float(s) for s in range(threads_n * per_thread)]
    assert sy.get_run(run.run_id).status is RunStatus.FINISHED


@pytest.mark.slow
def test_forked_child_logs_into_the_parents_active_run(sy: Any) -> None:
    parent_points, child_points = 20_000, 5_000
    ctx = multiprocessing.get_context("fork")

    def child() -> None:
        # No flush and no end_run: multiprocessing leaves through os._exit, so the writer's
        # after-fork hook must flush what is queued.
        for i in range(child_points):
            sy.log_metric("child", float(i), step=i)

    with sy.start_run(name="forking") as run:
        sy.log_metric("parent", 0.0, step=0)
        sy.flush()  # the parent's writer thread is alive and has a connection when we fork
        proc = ctx.Process(target=child)
        proc.start()
        for i in range(1, parent_points):
            sy.log_metric("parent", float(i), step=i)
        proc.join(timeout=60)
        assert proc.exitcode == 0
        sy.flush()
        assert sy.active_run() is not None and sy.active_run().run_id == run.run_id

    child_history = sy.get_metric_history(run.run_id, "child")
    assert [m.step for m in child_history] == list(range(child_points)), (
        f"{len(child_history)} of {child_points} points of the forked child were stored"
    )
    parent_history = sy.get_metric_history(run.run_id, "parent")
    assert [m.step for m in parent_history] == list(range(parent_points))
    stored = sy.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert stored.metrics == {"child": child_points - 1.0, "parent": parent_points - 1.0}


@pytest.mark.slow
def test_forking_while_the_writer_is_mid_transaction_never_hangs_the_child(
    make_settings: Callable[..., Settings],
) -> None:
    """SQLite's per-process lock bookkeeping is inherited by fork: a child forked while the
    parent's writer held a write transaction used to wait forever on its first write."""
    import shipyard as sy_api
    from shipyard import client

    client.configure(make_settings(SHIPYARD_FLUSH_INTERVAL="0.001", SHIPYARD_FLUSH_MAX_POINTS="50"))
    ctx = multiprocessing.get_context("fork")

    def child() -> None:
        for i in range(1000):
            sy_api.log_metric("child", float(i), step=i)

    with sy_api.start_run(name="fork-storm") as run:
        for attempt in range(15):
            for i in range(2000):  # keeps the writer thread inside transactions
                sy_api.log_metric("parent", float(i))
            proc = ctx.Process(target=child)
            proc.start()
            proc.join(timeout=30)
            if proc.exitcode is None:
                proc.kill()
            assert proc.exitcode == 0, f"forked child hung or failed at attempt {attempt}"
    assert len(sy_api.get_metric_history(run.run_id, "child")) == 15 * 1000
