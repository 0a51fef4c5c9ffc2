"""The public tracking API against a real store: SQLite always, PostgreSQL when configured."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipyard.core.entities import Metric, RunStatus
from shipyard.core.errors import (
    AlreadyExistsError,
    FilterSyntaxError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
)


def test_issue_example_end_to_end(sy: Any) -> None:
    sy.set_experiment("churn")
    with sy.start_run(name="rf-baseline") as run:
        sy.log_params({"n_estimators": 200, "max_depth": 8, "model": "rf"})
        for step in range(100):
            sy.log_metric("loss", 1.0 / (step + 1), step=step)
        sy.log_metric("f1", 0.85)
        sy.log_dict({"classes": ["no", "yes"]}, "meta.json")
    with sy.start_run(name="lr") as other:
        sy.log_params({"model": "lr"})
        sy.log_metric("f1", 0.7)
    df = sy.search_runs("metrics.f1 > 0.8 and params.model = 'rf'", order_by=["metrics.f1 DESC"])
    assert list(df["run_id"]) == [run.run_id]
    assert df.loc[0, "metrics.f1"] == pytest.approx(0.85)
    assert df.loc[0, "params.n_estimators"] == "200"
    stored = sy.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert stored.metrics["loss"] == pytest.approx(0.01)
    history = sy.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(100))
    assert [m.value for m in history] == pytest.approx([1.0 / (s + 1) for s in range(100)])
    assert json.loads(sy.load_artifact(run.run_id, "meta.json")) == {"classes": ["no", "yes"]}
    assert sy.get_run(other.run_id).params == {"model": "lr"}


def test_with_block_ends_failed_when_an_exception_escapes(sy: Any) -> None:
    with pytest.raises(RuntimeError), sy.start_run(name="boom") as run:
        sy.log_metric("x", 1.0)
        raise RuntimeError("training diverged")
    stored = sy.get_run(run.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.metrics == {"x": 1.0}
    assert sy.active_run() is None


def test_nested_runs_record_their_parent(sy: Any) -> None:
    with sy.start_run(name="sweep") as parent:
        with pytest.raises(InvalidStateError, match="nested=True"):
            sy.start_run(name="oops")
        with sy.start_run(name="trial-1", nested=True) as child:
            sy.log_metric("score", 0.5)
    assert sy.get_run(child.run_id).parent_run_id == parent.run_id
    found = sy.search_runs(f"parent_run_id = '{parent.run_id}'", output_format="list")
    assert [r.run_id for r in found] == [child.run_id]


def test_params_are_immutable_but_repeating_the_same_value_is_fine(sy: Any) -> None:
    with sy.start_run() as run:
        sy.log_params({"lr": 0.1, "depth": 3})
        sy.log_param("lr", 0.1)
        with pytest.raises(InvalidInputError, match=r"'lr': logged '0\.1', now '0\.2'"):
            sy.log_params({"new": 1, "lr": 0.2})
    # the rejected call changed nothing: 'new' was not written either
    assert sy.get_run(run.run_id).params == {"depth": "3", "lr": "0.1"}


def test_metric_values_nan_inf_stored_faithfully_and_text_rejected(sy: Any) -> None:
    with sy.start_run() as run:
        sy.log_metric("m", math.nan, step=0)
        sy.log_metric("m", math.inf, step=1)
        sy.log_metric("m", -math.inf, step=2)
        sy.log_metric("last_nan", math.nan)
        with pytest.raises(InvalidInputError, match="real number"):
            sy.log_metric("m", "0.5")
        with pytest.raises(InvalidInputError, match="characters"):
            sy.log_metric("k" * 300, 1.0)
    values = [p.value for p in sy.get_metric_history(run.run_id, "m")]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    assert math.isnan(sy.get_run(run.run_id).metrics["last_nan"])
    assert len(sy.get_metric_history(run.run_id, "m")) == 3


def test_a_bad_point_rejects_the_whole_batch(sy: Any) -> None:
    with sy.start_run() as run:
        sy.log_metric("ok", 1.0)
        with pytest.raises(InvalidInputError):
            sy.log_batch(metrics=[("a", 1.0, 0), ("a", "bad", 1)])
        sy.log_batch(
            metrics=[("b", float(i), i) for i in range(1000)]
            + [Metric("c", 2.0, 5, 1_700_000_000_000)]
        )
    stored = sy.get_run(run.run_id)
    assert "a" not in stored.metrics
    assert len(sy.get_metric_history(run.run_id, "b")) == 1000
    assert sy.get_metric_history(run.run_id, "c") == [Metric("c", 2.0, 5, 1_700_000_000_000)]


def test_logging_to_an_ended_run_is_refused_and_resume_reopens_it(sy: Any) -> None:
    with sy.start_run() as run:
        sy.log_metric("a", 1.0)
    with pytest.raises(InvalidStateError, match="has ended"):
        sy.log_metric("a", 2.0, run_id=run.run_id)
    with sy.start_run(run_id=run.run_id):
        sy.log_metric("a", 3.0)
    assert [p.value for p in sy.get_metric_history(run.run_id, "a")] == [1.0, 3.0]
    assert sy.get_run(run.run_id).status is RunStatus.FINISHED


def test_steps_default_to_a_per_key_counter(sy: Any) -> None:
    with sy.start_run() as run:
        for v in (0.5, 0.4, 0.3):
            sy.log_metric("loss", v)
    assert [(p.step, p.value) for p in sy.get_metric_history(run.run_id, "loss")] == [
        (0, 0.5),
        (1, 0.4),
        (2, 0.3),
    ]


def test_unknown_things_raise_not_found(sy: Any) -> None:
    with pytest.raises(NotFoundError, match="shipyard runs list"):
        sy.get_run("0" * 32)
    with pytest.raises(NotFoundError, match="experiments list"):
        sy.get_experiment("nope")
    with sy.start_run() as run:
        sy.log_metric("known", 1.0)
    with pytest.raises(NotFoundError, match="known"):
        sy.get_metric_history(run.run_id, "unknown")
    with pytest.raises(NotFoundError):
        sy.search_runs(experiment_names=["missing"])


def test_experiment_lifecycle(sy: Any) -> None:
    exp = sy.create_experiment("a", description="first")
    with pytest.raises(AlreadyExistsError):
        sy.create_experiment("a")
    renamed = sy.rename_experiment("a", "b")
    assert renamed.experiment_id == exp.experiment_id and renamed.name == "b"
    sy.delete_experiment("b")
    assert "b" not in [e.name for e in sy.list_experiments()]
    assert "b" in [e.name for e in sy.list_experiments(view="deleted")]
    with pytest.raises(InvalidStateError, match="restore"):
        sy.set_experiment("b")
    sy.restore_experiment("b")
    assert sy.set_experiment("b").experiment_id == exp.experiment_id


def _populate(sy: Any) -> dict[str, str]:
    ids = {}
    sy.set_experiment("search")
    rows = [
        ("rf-1", "rf", 0.91, 100, {"team": "Core"}),
        ("rf-2", "rf", 0.80, 300, {"team": "core"}),
        ("lr-1", "lr", 0.75, None, {"team": "Edge", "data set": "v2"}),
        ("hgb-1", "hgb", None, 50, {}),
    ]
    for name, model, f1, trees, tags in rows:
        with sy.start_run(name=name, tags=tags) as run:
            params: dict[str, Any] = {"model": model}
            if trees is not None:
                params["n_estimators"] = trees
            sy.log_params(params)
            if f1 is not None:
                sy.log_metric("f1", f1)
            sy.log_metric("f1 score", 1.0)
        ids[name] = run.run_id
    return ids


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.f1 > 0.78", {"rf-1", "rf-2"}),
        ("metrics.f1 <= 0.8 AND params.model != 'rf'", {"lr-1"}),
        ("params.model IN ('rf', 'hgb')", {"rf-1", "rf-2", "hgb-1"}),
        ("params.model NOT IN ('rf')", {"lr-1", "hgb-1"}),
        ("params.n_estimators >= 100", {"rf-1", "rf-2"}),
        ("params.n_estimators = 50", {"hgb-1"}),
        ("tags.team LIKE 'c%'", {"rf-2"}),
        ("tags.team ILIKE 'c%'", {"rf-1", "rf-2"}),
        ("tags.'data set' = 'v2'", {"lr-1"}),
        ('metrics."f1 score" = 1', {"rf-1", "rf-2", "lr-1", "hgb-1"}),
        ("metrics.f1 IS NULL", {"hgb-1"}),
        ("run_name LIKE 'rf-%' OR metrics.f1 < 0.76", {"rf-1", "rf-2", "lr-1"}),
        ("NOT (params.model = 'rf')", {"lr-1", "hgb-1"}),
        ("status = 'finished'", {"rf-1", "rf-2", "lr-1", "hgb-1"}),
    ],
)
def test_search_filters(sy: Any, filter_string: str, expected: set[str]) -> None:
    _populate(sy)
    found = sy.search_runs(filter_string, experiment_names=["search"], output_format="list")
    assert {r.name for r in found} == expected


def test_search_order_limit_and_pages(sy: Any) -> None:
    _populate(sy)
    found = sy.search_runs(
        experiment_names=["search"], order_by=["metrics.f1 DESC"], output_format="list"
    )
    assert [r.name for r in found] == ["rf-1", "rf-2", "lr-1", "hgb-1"]  # missing value last
    found = sy.search_runs(
        experiment_names=["search"], order_by=["params.n_estimators ASC"], output_format="list"
    )
    assert [r.name for r in found][:3] == ["hgb-1", "rf-1", "rf-2"]
    page1 = sy.search_runs(experiment_names=["search"], order_by=["metrics.f1 ASC"], max_results=3)
    token = page1.attrs["next_page_token"]
    assert token and len(page1) == 3
    page2 = sy.search_runs(
        experiment_names=["search"], order_by=["metrics.f1 ASC"], max_results=3, page_token=token
    )
    assert len(page2) == 1 and page2.attrs["next_page_token"] is None
    assert set(page1["run_id"]) | set(page2["run_id"]) == set(_ids(sy))
    with pytest.raises(InvalidInputError, match="different search"):
        sy.search_runs(experiment_names=["search"], max_results=3, page_token=token)


def _ids(sy: Any) -> list[str]:
    return [r.run_id for r in sy.search_runs(experiment_names=["search"], output_format="list")]


def test_deleted_runs_leave_search_until_restored(sy: Any) -> None:
    ids = _populate(sy)
    sy.delete_run(ids["rf-1"])
    names = {r.name for r in sy.search_runs(experiment_names=["search"], output_format="list")}
    assert "rf-1" not in names
    deleted = sy.search_runs(experiment_names=["search"], view="deleted", output_format="list")
    assert [r.name for r in deleted] == ["rf-1"]
    sy.restore_run(ids["rf-1"])
    assert len(_ids(sy)) == 4


def test_malformed_filter_says_where(sy: Any) -> None:
    _populate(sy)
    with pytest.raises(FilterSyntaxError, match="position 13"):
        sy.search_runs("metrics.f1 > and")


def test_compare_runs_marks_differences(sy: Any) -> None:
    ids = _populate(sy)
    table = sy.compare_runs(ids["rf-1"], ids["rf-2"])
    assert bool(table.loc["params.model", "differs"]) is False
    assert bool(table.loc["metrics.f1", "differs"]) is True
    only = sy.compare_runs([ids["rf-1"], ids["rf-2"]], only_differences=True)
    assert "params.model" not in only.index and "metrics.f1" in only.index


def test_artifacts_files_folders_dicts_tables_and_figures(sy: Any, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(b"\x00\x01" * 1000)
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with sy.start_run() as run:
        sy.log_artifact(src / "a.txt")
        sy.log_artifacts(src, "folder")
        sy.log_dict({"k": [1, 2]}, "cfg/params.yaml")
        sy.log_text("hello", "notes/readme.md")
        sy.log_table(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "tables/t.parquet")
        sy.log_figure(fig, "plots/line.png")
        with pytest.raises(InvalidInputError, match="outside the run"):
            sy.log_text("x", "../escape.txt")
        with pytest.raises(InvalidInputError, match="no such file"):
            sy.log_artifact(tmp_path / "missing.txt")
    paths = [a.path for a in sy.list_artifacts(run.run_id)]
    assert paths == sorted(
        [
            "a.txt",
            "folder/a.txt",
            "folder/sub/b.bin",
            "cfg/params.yaml",
            "notes/readme.md",
            "tables/t.parquet",
            "plots/line.png",
        ]
    )
    # identical content is stored once
    arts = {a.path: a for a in sy.list_artifacts(run.run_id)}
    assert arts["a.txt"].digest == arts["folder/a.txt"].digest
    out = sy.download_artifacts(run.run_id, "folder", tmp_path / "out")
    assert (out / "folder" / "sub" / "b.bin").read_bytes() == b"\x00\x01" * 1000
    assert sy.load_artifact(run.run_id, "cfg/params.yaml").decode().startswith("k:")
    assert sy.load_artifact(run.run_id, "plots/line.png")[:4] == b"\x89PNG"
    table = pd.read_parquet(sy.download_artifacts(run.run_id, "tables/t.parquet", tmp_path / "t"))
    assert list(table["y"]) == ["a", "b"]
    with pytest.raises(NotFoundError, match="artifacts list"):
        sy.load_artifact(run.run_id, "nope.txt")


def test_run_records_git_state_entry_point_and_packages(
    sy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    (repo / "train.py").write_text("print(2)\n")  # uncommitted change
    monkeypatch.chdir(repo)
    with sy.start_run() as run:
        pass
    stored = sy.get_run(run.run_id)
    assert stored.git_commit == head
    assert stored.git_dirty is True
    assert stored.git_diff_hash and len(stored.git_diff_hash) == 64
    assert stored.python_version.count(".") == 2
    doc = json.loads(sy.tracker().objects.get_bytes(stored.environment_digest))
    assert doc["packages"]["sqlalchemy"].startswith("2.")
    assert "shipyard" in doc["packages"]

    # Nested runs (a tuning job's trials) record their parent's capture, not a new one.
    from shipyard.tracking import environment

    captures: list[Path] = []
    real = environment.git_state
    monkeypatch.setattr(environment, "git_state", lambda p: captures.append(p) or real(p))
    with sy.start_run() as parent:
        children = []
        for _ in range(3):
            with sy.start_run(nested=True) as child:
                children.append(child.run_id)
    assert len(captures) == 1
    for run_id in children:
        nested = sy.get_run(run_id)
        assert (nested.git_commit, nested.environment_digest) == (
            head,
            sy.get_run(parent.run_id).environment_digest,
        )


def test_a_server_uri_is_refused_rather_than_ignored(make_settings: Any) -> None:
    from shipyard.tracking.tracker import Tracker

    with pytest.raises(InvalidInputError, match="SHIPYARD_URI"):
        Tracker(make_settings(SHIPYARD_URI="http://tracking.example:5000"))
