"""The shipyard side of ``benchmarks/tracking.py``: runs one workload, prints one result line.

Run by the benchmark with the project's python, in a fresh folder::

    python benchmarks/_shipyard_worker.py w1 --dir /tmp/x --points 20000

The store lives in ``<dir>/store`` (``SHIPYARD_HOME``). The last stdout line is
``@@RESULT {json}``; ``_mlflow_worker.py`` is its twin for MLflow, with the same
workloads, data and clocks (see ``_common.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from _common import (
    FILTER,
    ORDER,
    emit,
    parse_args,
    run_concurrently,
    time_searches,
    value,
    w3_summary,
    w4_run,
)


def w1(args: argparse.Namespace) -> dict[str, Any]:
    """One ``log_metric`` call per point into one run; the clock stops when all are durable."""
    import shipyard as sy

    sy.set_experiment("w1")
    with sy.start_run(name="w1") as run:
        t0 = time.perf_counter()
        for i in range(args.points):
            sy.log_metric("loss", value(i), step=i)
        sy.flush()
    seconds = time.perf_counter() - t0  # includes ending the run
    stored = len(sy.get_metric_history(run.run_id, "loss"))
    return {"points": args.points, "seconds": seconds, "stored": stored}


def w2(args: argparse.Namespace) -> dict[str, Any]:
    """``log_batch`` in chunks of ``--chunk`` points (the tuples are built before the clock)."""
    import shipyard as sy

    sy.set_experiment("w2")
    n, chunk = args.points, args.chunk
    ts = int(time.time() * 1000)
    chunks = [
        [("loss", value(i), i, ts) for i in range(start, min(start + chunk, n))]
        for start in range(0, n, chunk)
    ]
    with sy.start_run(name="w2") as run:
        t0 = time.perf_counter()
        for batch in chunks:
            sy.log_batch(metrics=batch)
        sy.flush()
    seconds = time.perf_counter() - t0
    stored = len(sy.get_metric_history(run.run_id, "loss"))
    return {"points": n, "seconds": seconds, "stored": stored}


def w3_child(args: argparse.Namespace) -> dict[str, Any]:
    """One concurrent writer: start a run, wait for GO, log per call, end the run."""
    import shipyard as sy

    sy.set_experiment("w3")  # the first of the children to get here creates the store
    errors = 0
    with sy.start_run(name=f"w3-{args.index}") as run:
        emit("READY", {"run_id": run.run_id})
        sys.stdin.readline()
        t0 = time.monotonic()
        for i in range(args.points):
            try:
                sy.log_metric("loss", value(i), step=i)
            except Exception:  # a failed call is a lost point, counted below
                errors += 1
    t1 = time.monotonic()  # after end_run: the points are durable
    return {"run_id": run.run_id, "t0": t0, "t1": t1, "errors": errors}


def w3(args: argparse.Namespace) -> dict[str, Any]:
    """``--procs`` processes log at once into their own runs; then count what was stored.

    The store does not exist when the children start: they create it concurrently.
    """
    children = run_concurrently(args, __file__)
    import shipyard as sy

    stored = sum(
        len({m.step for m in sy.get_metric_history(c["run_id"], "loss")}) for c in children
    )
    return w3_summary(children, stored, args.points * args.procs)


def w4_setup(args: argparse.Namespace) -> dict[str, Any]:
    """Create ``--runs`` finished runs with params, metrics and tags (not in the table)."""
    import shipyard as sy

    sy.set_experiment("w4")
    t0 = time.perf_counter()
    for i in range(args.runs):
        params, metrics, tags = w4_run(i)
        with sy.start_run(name=f"run-{i}", tags=tags):
            sy.log_params(params)
            sy.log_metrics(metrics)
    return {"runs": args.runs, "seconds": time.perf_counter() - t0}


def w4_search(args: argparse.Namespace) -> dict[str, Any]:
    """(a) filtered, ordered, limited to 100; (b) every run as a DataFrame."""
    import shipyard as sy

    return time_searches(
        args,
        lambda: sy.search_runs(FILTER, experiment_names=["w4"], order_by=[ORDER], max_results=100),
        lambda: sy.search_runs(experiment_names=["w4"], max_results=None),
    )


WORKLOADS = {
    "w1": w1,
    "w2": w2,
    "w3": w3,
    "w3-child": w3_child,
    "w4-setup": w4_setup,
    "w4-search": w4_search,
}


def main() -> None:
    args = parse_args(sorted(WORKLOADS), __doc__)
    os.environ["SHIPYARD_HOME"] = str(args.dir / "store")
    emit("RESULT", WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
