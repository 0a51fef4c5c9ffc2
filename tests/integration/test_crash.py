"""A process killed with SIGKILL while logging leaves a store that opens cleanly."""

from __future__ import annotations

import importlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.core.config import Settings
from shipyard.core.entities import RunStatus

# Logs forever, committing a small batch every few milliseconds, until it is killed.
CRASHER_SCRIPT = """
import shipyard as sy
import shipyard.client, shipyard.tracking.tracker
wait_for_go()
run = sy.start_run(name="doomed")
print(run.run_id, flush=True)
i = 0
while True:
    sy.log_metric("loss", float(i))
    i += 1
    if i % 50 == 0:
        time.sleep(0.0005)
"""

DURABLE_BEFORE_KILL = 3_000


def _doctor() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("shipyard.store.maintenance")
    except ImportError:
        return None
    return getattr(module, "doctor", None)


@pytest.mark.slow
def test_store_opens_cleanly_after_a_logging_process_is_killed(
    sy: Any,
    db_url: str,
    tmp_path: Path,
    fleet: Any,
    make_settings: Callable[..., Settings],
) -> None:
    env = fleet.env(
        db_url,
        tmp_path / "store",
        SHIPYARD_FLUSH_INTERVAL="0.005",
        SHIPYARD_FLUSH_MAX_POINTS="100",
    )
    (proc,) = fleet.launch(CRASHER_SCRIPT, 1, env)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read() if proc.stderr else ""

    store = sy.tracker().store
    deadline = time.monotonic() + 60
    while store.count_metric_points(run_id) < DURABLE_BEFORE_KILL:
        assert proc.poll() is None, f"the logging process died early:\n{proc.communicate()[1]}"
        assert time.monotonic() < deadline, "the logging process wrote too few points"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    sy.tracker().db.dispose()

    # A new session opens the store as it was left.
    sy.configure(make_settings(db_url))
    run = sy.get_run(run_id)
    assert run.status is RunStatus.RUNNING  # nobody ended it: a stale run, not a broken store
    history = sy.get_metric_history(run_id, "loss")
    n = len(history)
    assert n >= DURABLE_BEFORE_KILL
    assert [m.step for m in history] == list(range(n)), "points are not a contiguous prefix"
    assert [m.value for m in history] == [float(s) for s in range(n)]
    assert sy.tracker().store.count_metric_points(run_id) == n
    assert run.metrics == {"loss": float(n - 1)}  # latest value agrees with the chunks

    tracker = sy.tracker()
    if tracker.db.dialect == "sqlite":
        with tracker.db.read() as conn:
            integrity = conn.exec_driver_sql("PRAGMA integrity_check").all()
            foreign = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        assert [tuple(r) for r in integrity] == [("ok",)]
        assert foreign == []

    # ... and takes new writes (no lock was left behind).
    with sy.start_run(name="after-the-crash") as after:
        for i in range(100):
            sy.log_metric("loss", float(i))
    assert len(sy.get_metric_history(after.run_id, "loss")) == 100
    assert sy.get_run(after.run_id).status is RunStatus.FINISHED

    doctor = _doctor()
    if doctor is None:
        pytest.skip("shipyard.store.maintenance.doctor is not available yet")
    report = doctor(tracker.store, tracker.objects)
    assert report.consistent, report.to_dict()
    assert run_id in {s.run_id for s in report.stale}
    assert after.run_id not in {s.run_id for s in report.stale}
