"""sy.autolog() on real scikit-learn estimators: runs, params, metrics, models, restore."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.metrics
import skops.io
from joblib import parallel_backend
from sklearn.base import ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import shipyard as sy
from shipyard.core.config import load_settings
from shipyard.core.entities import Run, RunStatus
from shipyard.tracking.autolog import _param_values


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[None]:
    sy.configure(load_settings({"SHIPYARD_HOME": str(tmp_path)}, cwd=tmp_path))
    yield
    sy.autolog(disable=True)
    tracker = sy.tracker()
    while tracker.active_run() is not None:
        tracker.end_run()
    tracker.flush()
    tracker.db.dispose()


def _runs() -> list[Run]:
    runs = sy.search_runs(output_format="list")
    assert isinstance(runs, list)
    return runs


def _only_run() -> Run:
    runs = _runs()
    assert len(runs) == 1, [r.name for r in runs]
    return sy.get_run(runs[0].run_id)


def _iris() -> tuple[Any, Any, Any, Any]:
    X, y = load_iris(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_a_fit_logs_params_tags_training_metrics_and_the_model() -> None:
    X_train, _, y_train, _ = _iris()
    sy.autolog()
    model = LogisticRegression(C=0.5, max_iter=500).fit(X_train, y_train)

    run = _only_run()
    assert run.name == "LogisticRegression"
    assert run.status is RunStatus.FINISHED
    assert run.params["C"] == "0.5"
    assert run.params["max_iter"] == "500"
    assert run.tags["estimator_name"] == "LogisticRegression"
    assert run.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    proba = model.predict_proba(X_train)
    expected = {
        "training_accuracy_score": sklearn.metrics.accuracy_score(y_train, model.predict(X_train)),
        "training_roc_auc": sklearn.metrics.roc_auc_score(
            y_train, proba, multi_class="ovr", average="weighted"
        ),
        "training_log_loss": sklearn.metrics.log_loss(y_train, proba),
        "training_score": model.score(X_train, y_train),
    }
    for key, value in expected.items():
        assert run.metrics[key] == pytest.approx(value), key
    for key in ("training_precision_score", "training_recall_score", "training_f1_score"):
        assert 0.9 < run.metrics[key] <= 1.0
    assert {a.path for a in sy.list_artifacts(run.run_id)} == {
        "model/shipyard-model.json",
        "model/model.skops",
        "model/input_example.json",
    }
    meta = json.loads(sy.load_artifact(run.run_id, "model/shipyard-model.json"))
    assert meta["flavor"] == "sklearn"
    assert f"scikit-learn=={sklearn.__version__}" in meta["requirements"]
    assert f"skops=={skops.__version__}" in meta["requirements"]
    assert len(meta["signature"]["inputs"]) == X_train.shape[1]


def test_the_saved_model_loads_back_with_skops_and_predicts_the_same() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    sy.autolog()
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)

    run = _only_run()
    assert "training_roc_auc" in run.metrics  # binary: on proba[:, 1]
    data = sy.load_artifact(run.run_id, "model/model.skops")
    assert not data.startswith(b"\x80")  # a zip written by skops, not a pickle
    assert skops.io.get_untrusted_types(data=data) == []
    loaded = skops.io.loads(data, trusted=[])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_grid_search_over_a_pipeline_logs_one_run_with_the_best_score() -> None:
    X_train, _, y_train, _ = _iris()
    sy.autolog()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    search = GridSearchCV(pipe, {"clf__C": [0.01, 1.0]}, cv=3).fit(X_train, y_train)

    run = _only_run()
    assert run.name == "GridSearchCV"
    assert run.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert run.params["best_clf__C"] == str(search.best_params_["clf__C"])
    assert run.params["estimator__clf__max_iter"] == "500"
    assert "estimator" not in run.params  # estimators themselves are not params
    assert run.metrics["training_score"] == pytest.approx(search.score(X_train, y_train))
    data = sy.load_artifact(run.run_id, "model/model.skops")
    trusted = skops.io.get_untrusted_types(data=data)
    assert set(trusted) <= {
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.model_selection._split.StratifiedKFold",
    }
    loaded = skops.io.loads(data, trusted=trusted)
    np.testing.assert_array_equal(loaded.predict(X_train), search.predict(X_train))


def test_fits_in_joblib_worker_threads_are_nested_fits() -> None:
    X_train, _, y_train, _ = _iris()
    sy.autolog(log_models=False)
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=2)
    with parallel_backend("threading", n_jobs=2):
        search.fit(X_train, y_train)  # a clone's params in the run would warn (an error here)

    run = _only_run()
    assert run.params["estimator__C"] == "1.0"
    assert len(sy.get_metric_history(run.run_id, "training_score")) == 1


def test_a_regressor_logs_regression_metrics() -> None:
    X, y = load_diabetes(return_X_y=True)
    sy.autolog(log_models=False)
    model = Ridge(alpha=0.1).fit(X, y)

    run = _only_run()
    y_pred = model.predict(X)
    mse = sklearn.metrics.mean_squared_error(y, y_pred)
    assert run.metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert run.metrics["training_root_mean_squared_error"] == pytest.approx(np.sqrt(mse))
    assert run.metrics["training_mean_absolute_error"] == pytest.approx(
        sklearn.metrics.mean_absolute_error(y, y_pred)
    )
    assert run.metrics["training_r2_score"] == pytest.approx(model.score(X, y))
    assert run.metrics["training_score"] == pytest.approx(model.score(X, y))
    assert "training_accuracy_score" not in run.metrics
    assert sy.list_artifacts(run.run_id) == []


def test_held_out_metrics_are_logged_under_the_name_of_the_data() -> None:
    X_train, X_test, y_train, y_test = _iris()
    sy.autolog(log_models=False)
    with sy.start_run() as active:
        model = LogisticRegression(max_iter=500).fit(X_train, y_train)
        y_pred = model.predict(X_test)
        accuracy = sklearn.metrics.accuracy_score(y_test, y_pred)
        sklearn.metrics.accuracy_score(y_test, y_pred)  # again: the next step
        f1 = sklearn.metrics.f1_score(y_true=y_test, y_pred=y_pred, average="macro")
        score = model.score(X_test, y_test)
        model.score(X_train, y_train)  # the training data is not held out
        sklearn.metrics.accuracy_score(y_test, y_test)  # not a prediction
        proba = model.predict_proba(X_test[:20])  # a slice: no variable holds it
        auc = sklearn.metrics.roc_auc_score(y_test[:20] == 2, proba[:, 2])

    history = sy.get_metric_history(active.run_id, "accuracy_score_X_test")
    assert [(m.value, m.step) for m in history] == [(accuracy, 0), (accuracy, 1)]
    metrics = sy.get_run(active.run_id).metrics
    assert metrics["f1_score_X_test"] == pytest.approx(f1)
    assert metrics["score_X_test"] == pytest.approx(score)
    assert metrics["roc_auc_score_eval"] == pytest.approx(auc)
    assert not {"score_X_train", "score_eval"} & set(metrics)
    assert sum(k.startswith("accuracy_score") for k in metrics) == 1


def test_held_out_metrics_after_the_autolog_run_ended_go_to_the_training_run() -> None:
    X_train, X_test, y_train, y_test = _iris()
    sy.autolog(log_models=False)
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    y_pred = model.predict(X_test)
    accuracy = sklearn.metrics.accuracy_score(y_test, y_pred)  # the autolog run has ended
    (trained,) = _runs()
    assert str(trained.status) == "FINISHED"
    with sy.start_run(name="evaluation") as evaluation:
        sklearn.metrics.accuracy_score(y_test, y_pred)

    history = sy.get_metric_history(trained.run_id, "accuracy_score_X_test")
    assert [p.value for p in history] == [accuracy, accuracy]
    assert "accuracy_score_X_test" not in sy.get_run(evaluation.run_id).metrics


def test_disable_restores_every_original_attribute() -> None:
    originals = {
        (LogisticRegression, "fit"): LogisticRegression.__dict__["fit"],
        (Pipeline, "predict"): Pipeline.__dict__["predict"],
        (ClassifierMixin, "score"): ClassifierMixin.__dict__["score"],
    }
    fit = LogisticRegression.fit
    accuracy_score = sklearn.metrics.accuracy_score
    sy.autolog()
    assert LogisticRegression.fit is not fit
    assert sklearn.metrics.accuracy_score is not accuracy_score
    sy.autolog()  # a second call patches nothing twice
    assert LogisticRegression.fit.__wrapped__ is fit
    sy.autolog(disable=True)

    assert LogisticRegression.fit is fit
    assert sklearn.metrics.accuracy_score is accuracy_score
    for (owner, name), original in originals.items():
        assert owner.__dict__[name] is original
    X_train, _, y_train, _ = _iris()
    LogisticRegression(max_iter=500).fit(X_train, y_train)
    assert _runs() == []


def test_patching_keeps_hasattr_answers_of_available_if_methods() -> None:
    sy.autolog()
    assert not hasattr(SVC(), "predict_proba")
    assert hasattr(SVC(probability=True), "predict_proba")
    assert not hasattr(Pipeline([("scale", StandardScaler())]), "predict")


def test_a_fit_inside_an_active_run_logs_there_and_leaves_it_active() -> None:
    X_train, _, y_train, _ = _iris()
    sy.autolog(log_models=False)
    with sy.start_run(name="mine") as mine:
        LogisticRegression(max_iter=500).fit(X_train, y_train)
        active = sy.active_run()
        assert active is not None
        assert active.run_id == mine.run_id

    run = _only_run()
    assert run.run_id == mine.run_id
    assert run.status is RunStatus.FINISHED
    assert run.params["max_iter"] == "500"
    assert "training_accuracy_score" in run.metrics


def test_a_failing_fit_ends_its_run_failed_and_raises_the_sklearn_error() -> None:
    X_train, _, y_train, _ = _iris()
    X_bad = X_train.copy()
    X_bad[0, 0] = np.nan
    sy.autolog()
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(X_bad, y_train)

    run = _only_run()
    assert run.status is RunStatus.FAILED
    assert run.params["C"] == "1.0"  # params are logged before fit runs
    assert sy.active_run() is None


def test_param_values_skip_estimators_and_cut_long_values() -> None:
    values = _param_values({"est": LogisticRegression(), "long": "x" * 7000, "n": 3})
    assert values.keys() == {"long", "n"}
    assert len(values["long"]) == 6000
    assert values["long"].endswith("...")
    assert values["n"] == "3"
