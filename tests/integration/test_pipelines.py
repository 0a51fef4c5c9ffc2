"""Pipelines on a real store: cached steps, reruns after a change, restored outputs,
failures that stop only their dependants, retries, parallel steps, built-in steps,
records nested under the pipeline run, a Dask LocalCluster, and reproduction."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

PREPARE = """
import sys
from pathlib import Path
from sklearn.datasets import load_breast_cancer
frame = load_breast_cancer(as_frame=True).frame.iloc[:200]
Path("data").mkdir(exist_ok=True)
frame.to_csv("data/raw.csv", index=False)
print("prepared", len(frame), "rows")
"""
TRAIN = """
import json, sys
from pathlib import Path
import yaml
rows = Path("data/raw.csv").read_text().splitlines()
params = yaml.safe_load(Path("params.yaml").read_text())
Path("models").mkdir(exist_ok=True)
Path("models/model.json").write_text(json.dumps({"rows": len(rows) - 1, "depth": params["depth"]}))
print("trained with depth", params["depth"])
"""
REPORT = """
import sys
from pathlib import Path
Path("report.txt").write_text(f"run {sys.argv[1]} n={sys.argv[2]}\\n")
"""
SPEC = """
pipeline: demo
params: params.yaml
steps:
  prepare: {run: "python steps/prepare.py", deps: [steps/prepare.py], outs: [data/raw.csv]}
  train:
    run: "python steps/train.py"
    deps: [steps/train.py, data/raw.csv]
    params: [depth]
    outs: [models/model.json]
  report:
    run: "python steps/report.py ${steps.train.run_id} ${params.n}"
    deps: [steps/report.py, models/model.json]
    params: [n]
    outs: [report.txt]
"""


def _project(root: Path, *, spec: str = SPEC, depth: int = 3) -> Path:
    (root / "steps").mkdir(parents=True, exist_ok=True)
    (root / "steps" / "prepare.py").write_text(PREPARE)
    (root / "steps" / "train.py").write_text(TRAIN)
    (root / "steps" / "report.py").write_text(REPORT)
    (root / "params.yaml").write_text(f"depth: {depth}\nn: 7\n")
    (root / "shipyard.yaml").write_text(textwrap.dedent(spec))
    return root / "shipyard.yaml"


def _states(result: Any) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(tmp_path / "project")


def test_unchanged_steps_are_cached_and_a_param_change_reruns_its_step_and_below(
    sy: Any, project: Path
) -> None:
    first = sy.run_pipeline(project)
    assert first.status == "finished"
    assert _states(first) == {"prepare": "ran", "train": "ran", "report": "ran"}
    train_run = first.step("train").run_id
    assert (project.parent / "report.txt").read_text() == f"run {train_run} n=7\n"

    again = sy.run_pipeline(project)
    assert _states(again) == {"prepare": "cached", "train": "cached", "report": "cached"}
    assert again.step("train").run_id == train_run  # the run that made the outputs

    (project.parent / "params.yaml").write_text("depth: 5\nn: 7\n")
    changed = sy.run_pipeline(project)
    assert _states(changed) == {"prepare": "cached", "train": "ran", "report": "ran"}
    assert '"depth": 5' in (project.parent / "models" / "model.json").read_text()


def test_missing_outputs_are_restored_from_the_cache(sy: Any, project: Path) -> None:
    sy.run_pipeline(project)
    model = project.parent / "models" / "model.json"
    before = model.read_bytes()
    model.unlink()
    result = sy.run_pipeline(project)
    assert _states(result)["train"] == "restored"
    assert model.read_bytes() == before


def test_force_and_force_downstream(sy: Any, project: Path) -> None:
    sy.run_pipeline(project)
    one = sy.run_pipeline(project, force=["prepare"])
    # prepare wrote the same bytes again, so train's inputs did not change
    assert _states(one) == {"prepare": "ran", "train": "cached", "report": "cached"}
    down = sy.run_pipeline(project, force=["prepare"], force_downstream=True)
    assert _states(down) == {"prepare": "ran", "train": "ran", "report": "ran"}
    # report's command names train's run: a new training run reruns it too
    again = sy.run_pipeline(project, force=["train"])
    assert _states(again) == {"prepare": "cached", "train": "ran", "report": "ran"}


def test_records_nest_each_step_under_the_pipeline_run_with_its_log(
    sy: Any, project: Path
) -> None:
    result = sy.run_pipeline(project)
    parent = sy.get_run(result.run_id)
    assert parent.tags["sy.pipeline"] == "demo" and parent.tags["sy.status"] == "finished"
    prepare = sy.get_run(result.step("prepare").step_run_id)
    assert prepare.parent_run_id == result.run_id
    assert prepare.tags["sy.cache_hit"] == "false" and prepare.tags["sy.key"]
    assert any(p.startswith("input:") for p in prepare.params)
    log = sy.load_artifact(prepare.run_id, "logs/prepare.log").decode()
    assert "prepared 200 rows" in log
    cached = sy.run_pipeline(project)
    record = sy.get_run(cached.step("prepare").step_run_id)
    assert record.tags["sy.cache_hit"] == "true"
    assert record.tags["sy.source_run"] == result.step("prepare").run_id


FAILING = """
pipeline: broken
steps:
  good: {run: "echo fine > good.txt", outs: [good.txt]}
  bad: {run: "echo about to fail; exit 3", outs: [bad.txt]}
  after_bad: {run: "echo never > after.txt", needs: [bad], outs: [after.txt]}
"""


def test_a_failed_step_stops_its_dependants_and_keeps_the_rest(sy: Any, tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", spec=FAILING)
    result = sy.run_pipeline(spec)
    assert result.status == "failed" and result.failed_step == "bad"
    assert _states(result) == {"good": "ran", "bad": "failed", "after_bad": "skipped"}
    assert "exited with 3" in result.step("bad").message
    assert "about to fail" in result.step("bad").message
    assert not (spec.parent / "after.txt").exists()
    record = sy.get_run(result.run_id)
    assert record.status.value == "FAILED" and record.tags["sy.failed_step"] == "bad"
    again = sy.run_pipeline(spec)
    assert _states(again)["good"] == "cached" and _states(again)["bad"] == "failed"


RETRY = """
pipeline: flaky
steps:
  flaky:
    run: "test -f seen || { touch seen; exit 1; }; echo ok > out.txt"
    outs: [out.txt]
    retries: 2
    retry_backoff_s: 0.1
"""


def test_retries_with_backoff(sy: Any, tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", spec=RETRY)
    result = sy.run_pipeline(spec)
    assert _states(result) == {"flaky": "ran"} and result.step("flaky").attempts == 2


PARALLEL = """
pipeline: wide
steps:
  a: {run: "sleep 1.5 && echo a > a.txt", outs: [a.txt]}
  b: {run: "sleep 1.5 && echo b > b.txt", outs: [b.txt]}
  join: {run: "cat a.txt b.txt > ab.txt", deps: [a.txt, b.txt], outs: [ab.txt]}
"""


def test_independent_steps_run_in_parallel(sy: Any, tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", spec=PARALLEL)
    started = time.perf_counter()
    result = sy.run_pipeline(spec, jobs=2)
    elapsed = time.perf_counter() - started
    assert _states(result) == {"a": "ran", "b": "ran", "join": "ran"}
    assert elapsed < 2.9  # two 1.5 s steps side by side, not one after the other
    assert (spec.parent / "ab.txt").read_text() == "a\nb\n"


BUILTINS = """
pipeline: churn
params: {test_size: 0.25}
steps:
  ingest: {run: "python steps/prepare.py", deps: [steps/prepare.py], outs: [data/raw.csv], dataset: cancer}
  split: {uses: shipyard.split, dataset: cancer@latest, params: [test_size], with: {target: target, method: stratified}}
  train: {uses: shipyard.train, dataset: cancer@train, needs: [split], register: cancer, with: {target: target, models: [linear], cv: 3}}
  report: {run: "python steps/report.py ${steps.train.run_id} ${params.test_size}", needs: [train], outs: [report.txt]}
"""


def test_built_in_steps_version_data_split_train_and_register(sy: Any, tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", spec=BUILTINS)
    result = sy.run_pipeline(spec)
    assert result.status == "finished", [(s.name, s.message) for s in result.steps]
    assert sy.data.get("cancer@train").version.num_rows == 150
    version = sy.get_model_version("cancer@1")
    train_run = result.step("train").run_id
    assert (spec.parent / "report.txt").read_text() == f"run {train_run} n=0.25\n"
    assert sy.get_run(version.run_id).parent_run_id == train_run
    again = sy.run_pipeline(spec)
    assert set(_states(again).values()) == {"cached"}


def test_status_says_what_would_run_and_why(sy: Any, project: Path) -> None:
    from shipyard.pipelines.runner import plan
    from shipyard.pipelines.spec import load_spec

    spec = load_spec(project)
    ctx = sy.pipeline_context()
    assert {p.name: p.will_run for p in plan(spec, ctx)} == dict.fromkeys(spec.steps, True)
    sy.run_pipeline(project)
    assert not any(p.will_run for p in plan(spec, ctx))
    (project.parent / "steps" / "train.py").write_text(TRAIN + "\n# changed\n")
    plans = {p.name: p for p in plan(spec, ctx)}
    assert not plans["prepare"].will_run and plans["train"].will_run
    assert plans["report"].will_run and "upstream train" in plans["report"].reason


@pytest.mark.slow
def test_the_dask_executor_runs_steps_on_a_cluster_with_the_same_cache(
    sy: Any, project: Path
) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:  # fmt: skip
        first = sy.run_pipeline(project, executor="dask", scheduler=cluster.scheduler_address,
                                jobs=2)  # fmt: skip
        assert _states(first) == {"prepare": "ran", "train": "ran", "report": "ran"}
        log = sy.load_artifact(first.step("prepare").step_run_id, "logs/prepare.log").decode()
        assert "prepared 200 rows" in log
        again = sy.run_pipeline(project, executor="dask", scheduler=cluster.scheduler_address)
        assert set(_states(again).values()) == {"cached"}


def test_reproduce_reruns_with_the_recorded_params_and_compares_outputs(
    sy: Any, project: Path
) -> None:
    from shipyard.pipelines.reproduce import reproduce_run

    first = sy.run_pipeline(project)
    (project.parent / "params.yaml").write_text("depth: 9\nn: 7\n")
    sy.run_pipeline(project)
    report = reproduce_run(first.run_id, sy.pipeline_context(), spec_path=project)
    assert report.status == "finished"
    by_path = {o.path: o for o in report.outputs}
    assert by_path["models/model.json"].same  # depth 3 again, as recorded
    assert '"depth": 3' in (project.parent / "models" / "model.json").read_text()
    assert not by_path["report.txt"].same  # it names the (new) training run
    assert "depth: 9" in (project.parent / "params.yaml").read_text()  # put back


def test_a_pipeline_scheduled_on_a_dataset_reruns_when_it_gets_a_version(
    sy: Any, project: Path
) -> None:
    import pandas as pd

    from shipyard.pipelines.schedules import add_pipeline_schedule, pipeline_jobs
    from shipyard.pipelines.spec import load_spec

    ctx = sy.pipeline_context()
    sy.data.add("trigger", pd.DataFrame({"x": [1, 2, 3]}))
    made = add_pipeline_schedule(ctx, load_spec(project), name="demo", cron="0 3 * * *",
                                 datasets=["trigger"])  # fmt: skip
    assert made.seen == {"trigger": 1}
    jobs = {job.name: job for job in pipeline_jobs(ctx)}
    assert set(jobs) == {"pipeline:demo", "pipeline:demo:datasets"}
    assert jobs["pipeline:demo"].schedule == "0 3 * * *"
    assert jobs["pipeline:demo:datasets"].run() is None  # nothing new: nothing runs
    sy.data.add("trigger", pd.DataFrame({"x": [1, 2, 3, 4]}))
    result = jobs["pipeline:demo:datasets"].run()
    assert result is not None and result.status == "finished"
    schedule = ctx.cache.get_schedule("demo")
    assert schedule.seen == {"trigger": 2} and schedule.last_status == "finished"
    assert jobs["pipeline:demo:datasets"].run() is None  # seen now


KILLER = """
pipeline: killer
steps:
  fine: {run: "echo ok > fine.txt", outs: [fine.txt]}
  dies: {run: "kill -9 $PPID; sleep 5", outs: [never.txt]}
"""


@pytest.mark.slow
def test_a_dask_worker_that_dies_mid_step_fails_that_step_with_a_clear_message(
    sy: Any, tmp_path: Path
) -> None:
    import dask
    from distributed import LocalCluster

    spec = _project(tmp_path / "p", spec=KILLER)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:  # fmt: skip
        result = sy.run_pipeline(spec, executor="dask", scheduler=cluster.scheduler_address,
                                 jobs=2)  # fmt: skip
    assert result.status == "failed" and result.failed_step == "dies"
    assert _states(result) == {"fine": "ran", "dies": "failed"}
    assert "Dask worker" in result.step("dies").message
    assert sy.get_run(result.run_id).tags["sy.failed_step"] == "dies"
    assert not (spec.parent / "never.txt").exists()


def test_gc_keeps_the_objects_the_step_cache_restores_from(sy: Any, project: Path) -> None:
    from shipyard.store.maintenance import gc

    sy.run_pipeline(project)
    tracker = sy.tracker()
    gc(tracker.store, tracker.objects, older_than_s=0)  # nothing is referenced by runs only
    (project.parent / "models" / "model.json").unlink()
    result = sy.run_pipeline(project)
    assert _states(result)["train"] == "restored"
