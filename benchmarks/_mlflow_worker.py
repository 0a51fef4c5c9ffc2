"""The MLflow side of ``benchmarks/tracking.py``: runs one workload, prints one result line.

Run by the benchmark with the python of MLflow's own venv (``.bench-venv/mlflow``)::

    .bench-venv/mlflow/bin/python benchmarks/_mlflow_worker.py w1 --dir /tmp/x --points 2000

The backend is SQLite (``sqlite:///<dir>/mlflow.db``) with artifacts in
``<dir>/artifacts``; MLflow's defaults otherwise (synchronous logging). Same
workloads, data, clocks and result line as ``_shipyard_worker.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
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


def use_store(folder: Path, experiment: str) -> str:
    """Point MLflow at the SQLite store in ``folder``; create and select ``experiment``."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        exp_id = client.create_experiment(
            experiment, artifact_location=(folder / "artifacts").as_uri()
        )
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def w1(args: argparse.Namespace) -> dict[str, Any]:
    """One ``log_metric`` call per point into one run; the clock stops after the run ends."""
    import mlflow

    use_store(args.dir, "w1")
    run = mlflow.start_run(run_name="w1")
    t0 = time.perf_counter()
    for i in range(args.points):
        mlflow.log_metric("loss", value(i), step=i)
    mlflow.end_run()
    seconds = time.perf_counter() - t0
    stored = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    return {"points": args.points, "seconds": seconds, "stored": stored}


def w2(args: argparse.Namespace) -> dict[str, Any]:
    """``MlflowClient.log_batch`` in chunks of ``--chunk`` (1000 is MLflow's maximum)."""
    import mlflow
    from mlflow.entities import Metric

    use_store(args.dir, "w2")
    client = mlflow.MlflowClient()
    n, chunk = args.points, args.chunk
    ts = int(time.time() * 1000)
    chunks = [
        [Metric("loss", value(i), ts, i) for i in range(start, min(start + chunk, n))]
        for start in range(0, n, chunk)
    ]
    run = mlflow.start_run(run_name="w2")
    run_id = run.info.run_id
    t0 = time.perf_counter()
    for batch in chunks:
        client.log_batch(run_id, metrics=batch)
    mlflow.end_run()
    seconds = time.perf_counter() - t0
    stored = len(client.get_metric_history(run_id, "loss"))
    return {"points": n, "seconds": seconds, "stored": stored}


def w3_child(args: argparse.Namespace) -> dict[str, Any]:
    """One concurrent writer: start a run, wait for GO, log per call, end the run."""
    import mlflow

    use_store(args.dir, "w3")
    errors = 0
    run = mlflow.start_run(run_name=f"w3-{args.index}")
    emit("READY", {"run_id": run.info.run_id})
    sys.stdin.readline()
    t0 = time.monotonic()
    for i in range(args.points):
        try:
            mlflow.log_metric("loss", value(i), step=i)
        except Exception:  # a failed call is a lost point, counted by the parent
            errors += 1
    mlflow.end_run()
    t1 = time.monotonic()
    return {"run_id": run.info.run_id, "t0": t0, "t1": t1, "errors": errors}


def w3(args: argparse.Namespace) -> dict[str, Any]:
    """``--procs`` processes log at once into their own runs; then count what was stored.

    The store and experiment are created here first: MLflow's schema migrations
    are not meant to race.
    """
    import mlflow

    use_store(args.dir, "w3")
    children = run_concurrently(args, __file__)
    client = mlflow.MlflowClient()
    stored = sum(
        len({m.step for m in client.get_metric_history(c["run_id"], "loss")}) for c in children
    )
    return w3_summary(children, stored, args.points * args.procs)


def w4_setup(args: argparse.Namespace) -> dict[str, Any]:
    """Create ``--runs`` finished runs through the client API (not in the table)."""
    import mlflow
    from mlflow.entities import Metric, Param

    exp_id = use_store(args.dir, "w4")
    client = mlflow.MlflowClient()
    ts = int(time.time() * 1000)
    t0 = time.perf_counter()
    for i in range(args.runs):
        params, metrics, tags = w4_run(i)
        run_id = client.create_run(exp_id, tags=tags, run_name=f"run-{i}").info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run_id)
    return {"runs": args.runs, "seconds": time.perf_counter() - t0}


def w4_search(args: argparse.Namespace) -> dict[str, Any]:
    """(a) filtered, ordered, limited to 100; (b) every run as a DataFrame."""
    import mlflow

    use_store(args.dir, "w4")
    return time_searches(
        args,
        lambda: mlflow.search_runs(
            experiment_names=["w4"], filter_string=FILTER, order_by=[ORDER], max_results=100
        ),
        lambda: mlflow.search_runs(experiment_names=["w4"]),
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
    emit("RESULT", WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
