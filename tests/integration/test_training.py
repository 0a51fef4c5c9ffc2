"""sy.train and sy.evaluate on a real store (SQLite and PostgreSQL), as a user calls them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, NotFoundError


@pytest.fixture
def cancer(sy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """breast-cancer@1 split into @train and @test (stratified, seed 1)."""
    from sklearn.datasets import load_breast_cancer

    monkeypatch.chdir(tmp_path)
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    version = sy.data.add("cancer", frame)
    sy.data.split(version.ref, method="stratified", target="target", test=0.25, seed=1)
    yield sy


def _runs(sy: Any) -> list[Any]:
    return list(sy.search_runs(max_results=1000, output_format="list"))


def test_train_cross_validates_each_family_and_refits_the_best(cancer: Any) -> None:
    sy = cancer
    result = sy.train(
        "cancer@train", "target", models=["linear", "hist_gradient_boosting"], cv=3,
        valid="cancer@test", seed=0,
    )  # fmt: skip
    board = result.leaderboard
    assert result.task == "binary" and result.metric == "roc_auc"
    assert list(board["model"]) == sorted(
        board["model"], key=lambda m: -board.set_index("model").loc[m, "roc_auc_mean"]
    ), "best first"
    assert set(board["model"]) == {"linear", "hist_gradient_boosting"}
    assert (board["roc_auc_mean"] > 0.95).all() and (board["roc_auc_std"] >= 0).all()
    assert {"accuracy_mean", "f1_mean", "neg_log_loss_mean"} <= set(board.columns)

    # The runs: one training run, a nested run per candidate, the refitted best.
    runs = {r.run_id: r for r in _runs(sy)}
    parent = runs[result.run_id]
    assert parent.tags["shipyard.best_run"] == result.best_run_id
    best = runs[result.best_run_id]
    assert best.parent_run_id == result.run_id
    assert sum(1 for r in runs.values() if r.parent_run_id == result.run_id) == 3
    train_ref = sy.data.get("cancer@train").ref
    assert [(v.ref, ctx) for v, ctx in sy.get_run_inputs(result.run_id)] == [
        (train_ref, "training")
    ]
    assert (sy.data.get("cancer@test").ref, "valid") in [
        (v.ref, ctx) for v, ctx in sy.get_run_inputs(result.best_run_id)
    ]
    artifacts = {a.path for a in sy.list_artifacts(result.best_run_id, "model")}
    assert {"model/model.skops", "model/shipyard-model.json", "model/input_example.json"} <= (
        artifacts
    )
    meta = json.loads(sy.load_artifact(result.best_run_id, "model/shipyard-model.json"))
    assert (meta["flavor"], meta["task"], meta["classes"]) == ("sklearn", "binary", [0, 1])
    assert sy.get_run(result.best_run_id).params["target"] == "target"
    assert [c["name"] for c in meta["signature"]["inputs"]] == list(X_train_columns(sy))

    # Evaluated once on the test version, with intervals, logged on the best run.
    ev = result.evaluation
    assert ev is not None and ev.rows == len(sy.data.get("cancer@test").to_pandas())
    low, high = ev.confidence_intervals["roc_auc"]
    assert low <= ev.metrics["roc_auc"] <= high
    logged = sy.get_run(result.best_run_id).metrics
    assert logged["valid_roc_auc"] == pytest.approx(ev.metrics["roc_auc"])
    evaluation = {a.path for a in sy.list_artifacts(result.best_run_id, "evaluation")}
    assert {
        "evaluation/valid_learning_curve.png",
        "evaluation/valid_roc_curve.png",
        "evaluation/valid_report.html",
    } <= evaluation, evaluation
    report = sy.load_artifact(result.best_run_id, "evaluation/valid_report.html").decode()
    assert "Leaderboard" in report and "hist_gradient_boosting" in report
    test = sy.data.get("cancer@test").to_pandas()
    from sklearn.metrics import roc_auc_score

    proba = result.model.predict_proba(test.drop(columns=["target"]))[:, 1]
    assert ev.metrics["roc_auc"] == pytest.approx(roc_auc_score(test["target"], proba))


def test_same_seed_same_scores(cancer: Any) -> None:
    sy = cancer
    first = sy.train("cancer@train", "target", models=["hist_gradient_boosting"], cv=3, seed=3)
    again = sy.train("cancer@train", "target", models=["hist_gradient_boosting"], cv=3, seed=3)
    assert first.best.scores == again.best.scores


def test_tuning_runs_each_trial_as_a_nested_run_and_resumes(cancer: Any) -> None:
    sy = cancer
    result = sy.train("cancer@train", "target", models=["linear"], tune=4, cv=3, seed=0)
    trials = [r for r in _runs(sy) if r.tags.get("shipyard.role") == "trial"]
    assert len(trials) == 4, "a nested run per trial, pruned ones included"
    assert all(r.parent_run_id == result.run_id for r in trials)
    assert all("cv_roc_auc" in r.metrics and "C" in r.params for r in trials)
    assert result.best.trials + result.best.pruned == 4
    complete = [r for r in trials if r.tags["shipyard.trial_state"] == "complete"]
    best_trial = max(complete, key=lambda r: r.metrics["cv_roc_auc"])
    assert result.best.scores["roc_auc"][0] == pytest.approx(best_trial.metrics["cv_roc_auc"])

    # The study lives in the store: the same command again runs only the missing trials.
    again = sy.train("cancer@train", "target", models=["linear"], tune=6, cv=3, seed=0)
    trials = [r for r in _runs(sy) if r.tags.get("shipyard.role") == "trial"]
    assert len(trials) == 6 and again.best.trials + again.best.pruned == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nope"}, "target 'nope' is not a column"),
        ({"target": "target", "models": ["gbm3000"]}, "gbm3000"),
        ({"target": "target", "metric": "r2"}, "does not fit a binary task"),
        ({"target": "target", "task": "regression", "data": "text"}, "regression"),
        ({"target": "one"}, "one class"),
    ],
)
def test_bad_input_is_refused_before_any_run(
    cancer: Any, kwargs: dict[str, Any], message: str
) -> None:
    sy = cancer
    frame = sy.data.get("cancer@train").to_pandas()
    frame["one"] = 1
    frame["text"] = np.where(frame["target"] == 1, "yes", "no")
    data: Any = frame
    if kwargs.pop("data", None) == "text":
        data, kwargs["target"] = frame, "text"
    with pytest.raises(InvalidInputError, match=message):
        sy.train(data, **kwargs)
    with pytest.raises(NotFoundError):
        sy.train("cancer@99", "target")
    assert _runs(sy) == [], "nothing was started"


def test_evaluate_any_model_with_slices_and_warnings(
    cancer: Any, external_links: Callable[[str], list[str]]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sy = cancer
    train = sy.data.get("cancer@train").to_pandas()
    test = sy.data.get("cancer@test").to_pandas()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train.drop(columns=["target"]), train["target"])
    test["size"] = np.where(test["mean_radius"] > test["mean_radius"].median(), "big", "small")
    seen = pd.concat([test, train.head(20).assign(size="small")])  # 20 rows seen in training
    with sy.start_run(name="manual") as run:
        report = sy.evaluate(
            model, seen, "target", slices="size", train_data=train.drop(columns=["target"])
        )
    assert set(report.slices["slice"]) == {"big", "small"}
    assert report.slices["n"].sum() == len(seen)
    assert any("20 of" in w and "training data" in w for w in report.warnings)
    assert report.per_class is not None and list(report.per_class["support"]) == [
        int((seen["target"] == 0).sum()),
        int((seen["target"] == 1).sum()),
    ]
    assert report.importance is not None and report.importance["importance"].iloc[0] > 0
    logged = sy.get_run(run.run_id)
    assert logged.metrics["test_accuracy"] == pytest.approx(report.metrics["accuracy"])
    assert "training data" in logged.tags["shipyard.warnings"]
    paths = {a.path for a in sy.list_artifacts(run.run_id, "evaluation")}
    assert "evaluation/test_report.html" in paths
    assert "evaluation/test_confusion_matrix.png" in paths
    html = sy.load_artifact(run.run_id, "evaluation/test_report.html").decode()
    assert external_links(html) == [], "works offline: no src or href leaves the page"
    assert "roc_auc" in html


def test_a_leaking_feature_is_flagged_on_the_run(cancer: Any) -> None:
    sy = cancer
    frame = sy.data.get("cancer@train").to_pandas()
    frame["leak"] = frame["target"] * 10 + np.random.default_rng(0).random(len(frame))
    result = sy.train(frame, "target", models=["linear"], cv=3)
    assert any("'leak'" in w and "almost perfectly" in w for w in result.warnings)
    assert "'leak'" in sy.get_run(result.run_id).tags["shipyard.warnings"]


def test_trials_run_in_parallel_processes_sharing_one_study(cancer: Any) -> None:
    sy = cancer
    result = sy.train("cancer@train", "target", models=["linear"], tune=6, cv=3, n_jobs=2)
    trials = [r for r in _runs(sy) if r.tags.get("shipyard.role") == "trial"]
    assert len(trials) == 6 and all(r.parent_run_id == result.run_id for r in trials)
    assert len({r.pid for r in trials}) == 2, "two worker processes ran the trials"
    assert len({r.tags["shipyard.trial"] for r in trials}) == 6, "no trial ran twice"
    assert result.best.trials + result.best.pruned == 6
    assert sy.get_run(result.run_id).status == "FINISHED"
    with pytest.raises(InvalidInputError, match="n_jobs"):
        sy.train("cancer@train", "target", models=["linear"], n_jobs=0)


def test_trials_run_on_a_dask_cluster(cancer: Any) -> None:
    import os

    from distributed import Client, LocalCluster

    sy = cancer
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        worker_pids = set(client.run(os.getpid).values())
        result = sy.train(
            "cancer@train", "target", models=["linear"], tune=4, cv=3, scheduler=client
        )
    trials = [r for r in _runs(sy) if r.tags.get("shipyard.role") == "trial"]
    assert len(trials) == 4 and all(r.parent_run_id == result.run_id for r in trials)
    assert {r.pid for r in trials} <= worker_pids, "the trials ran on the cluster's workers"
    assert result.best.trials + result.best.pruned == 4
    assert sy.get_run(result.run_id).status == "FINISHED"


def _mixed(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A frame with a categorical text column, missing values and text labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    city = rng.choice(["north", "south", "east"], size=n).astype(object)
    city[::17] = None
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=n), "city": city})
    frame.loc[::13, "x"] = np.nan
    frame["label"] = np.where(np.nan_to_num(x) + (city == "north") > 0.5, "yes", "no")
    return frame


def test_text_labels_categoricals_and_missing_values_work_for_xgboost_too(sy: Any) -> None:
    frame = _mixed()
    result = sy.train(frame, "label", models=["xgboost", "linear"], cv=3, valid=_mixed(seed=1))
    assert result.task == "binary" and set(result.leaderboard["model"]) == {"xgboost", "linear"}
    assert set(result.model.predict(frame.drop(columns=["label"]))) <= {"yes", "no"}
    assert result.evaluation is not None and result.evaluation.metrics["roc_auc"] > 0.7
    with sy.start_run():
        report = sy.evaluate(result.model, _mixed(seed=2), "label", slices="city")
    assert "<missing>" in set(report.slices["slice"]), "rows without a city are a slice too"


def test_evaluate_takes_the_task_and_classes_from_the_model(sy: Any) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True).frame
    model = LogisticRegression(max_iter=2000).fit(iris.drop(columns=["target"]), iris["target"])
    two_classes = iris[iris["target"] != 2]  # a test set that lacks one class
    report = sy.evaluate(model, two_classes, "target", log=False, plots=False)
    assert report.task == "multiclass" and report.per_class is not None
    unknown = iris.assign(target=iris["target"].replace({2: 7}))
    with pytest.raises(InvalidInputError, match=r"never trained on: \[7\]"):
        sy.evaluate(model, unknown, "target", log=False)


def test_search_space_changes_start_a_new_study_and_failures_are_explained(cancer: Any) -> None:
    sy = cancer
    narrow = {"knn": {"n_neighbors": {"type": "int", "low": 3, "high": 5}}}
    sy.train("cancer@train", "target", models=["knn"], tune=2, cv=3, search_space=narrow)
    wide = {"knn": {"n_neighbors": {"type": "int", "low": 20, "high": 30}}}
    again = sy.train("cancer@train", "target", models=["knn"], tune=2, cv=3, search_space=wide)
    assert 20 <= again.best.params["n_neighbors"] <= 30, "not the old study's best"
    impossible = {"knn": {"n_neighbors": {"type": "categorical", "choices": [5000]}}}
    with pytest.raises(InvalidInputError, match="no trial of knn completed; the first error"):
        sy.train("cancer@train", "target", models=["knn"], tune=2, cv=3, search_space=impossible)
    failed = [r for r in _runs(sy) if r.tags.get("shipyard.trial_state") == "failed"]
    assert len(failed) == 2 and "n_neighbors" in failed[0].tags["shipyard.error"]


def test_validation_data_and_group_folds_are_checked_before_any_run(cancer: Any) -> None:
    sy = cancer
    with pytest.raises(NotFoundError):
        sy.train("cancer@train", "target", models=["linear"], valid="cancer@99")
    with pytest.raises(InvalidInputError, match="no target column"):
        sy.train("cancer@train", "target", models=["linear"], valid=pd.DataFrame({"a": [1]}))
    frame = sy.data.get("cancer@train").to_pandas().assign(site=lambda f: f.index % 7)
    with pytest.raises(InvalidInputError, match="straddle folds"):
        sy.train(frame, "target", models=["linear"], group_column="site", cv_strategy="kfold")
    assert _runs(sy) == []
    grouped = sy.train(frame, "target", models=["linear"], group_column="site", cv=3)
    assert grouped.best.scores["roc_auc"][0] > 0.9


def X_train_columns(sy: Any) -> list[str]:
    return [c for c in sy.data.get("cancer@train").to_pandas().columns if c != "target"]
