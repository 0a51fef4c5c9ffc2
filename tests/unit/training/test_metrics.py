"""Metrics by scorer name, checked against scikit-learn's own scorers and metric functions."""

from __future__ import annotations

import doctest
import functools
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import InvalidInputError
from shipyard.training import metrics
from shipyard.training.metrics import (
    DEFAULT_METRIC,
    PROBABILITY_METRICS,
    TASKS,
    ConfusionMatrix,
    bootstrap_ci,
    check_target,
    compute_metrics,
    confusion,
    display_value,
    infer_task,
    metric_direction,
    metrics_by_slice,
    per_class_metrics,
    scorer_names,
)

LOADERS: dict[str, Callable[..., Any]] = {
    "binary": load_breast_cancer,
    "multiclass": load_iris,
    "regression": load_diabetes,
}


@functools.cache
def fitted(task: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """A model fitted on 60% of a bundled dataset, and the 40% it did not see."""
    X, y = LOADERS[task](return_X_y=True)
    stratify = None if task == "regression" else y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, random_state=0, stratify=stratify
    )
    final = Ridge() if task == "regression" else LogisticRegression(C=0.05, max_iter=2000)
    model = make_pipeline(StandardScaler(), final).fit(X_train, y_train)
    return model, X_test, y_test


def scores_of(task: str, **kwargs: Any) -> dict[str, float]:
    model, X, y = fitted(task)
    proba = None if task == "regression" else model.predict_proba(X)
    classes = None if task == "regression" else model.classes_
    return compute_metrics(task, y, model.predict(X), proba, classes=classes, **kwargs)


# -- scores equal scikit-learn's scorers ------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_every_metric_equals_the_sklearn_scorer(task: str) -> None:
    model, X, y = fitted(task)
    scores = scores_of(task)
    assert list(scores) == list(scorer_names(task))
    for name, value in scores.items():
        expected = skm.get_scorer(name)(model, X, y)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-12), name
    assert DEFAULT_METRIC[task] in scores
    # the test must be able to fail: the scores are not trivially perfect
    assert scores["r2" if task == "regression" else "accuracy"] < 1


def test_losses_are_negated_so_greater_is_better() -> None:
    rmse = math.sqrt(skm.mean_squared_error([1.0, 2.0, 4.0], [2.0, 2.0, 2.0]))
    scores = compute_metrics("regression", [1.0, 2.0, 4.0], [2.0, 2.0, 2.0])
    assert scores["neg_root_mean_squared_error"] == pytest.approx(-rmse)
    assert display_value("neg_root_mean_squared_error", scores["neg_root_mean_squared_error"]) == (
        "rmse",
        pytest.approx(rmse),
    )
    assert metric_direction("neg_root_mean_squared_error") == "maximize"


def test_string_labels_positive_class_is_the_last_class() -> None:
    model, X, y = fitted("binary")
    names = np.array(["malignant", "benign"])[y]  # sorted: benign < malignant, so positive
    pred = names[model.predict(X)]
    proba = model.predict_proba(X)  # columns 0, 1 = malignant, benign: reorder to sorted labels
    sorted_proba = proba[:, ::-1]
    scores = compute_metrics("binary", names, pred, sorted_proba, classes=["benign", "malignant"])
    assert scores["recall"] == pytest.approx(skm.recall_score(names, pred, pos_label="malignant"))
    assert scores["f1"] == pytest.approx(skm.f1_score(names, pred, pos_label="malignant"))
    assert scores["roc_auc"] == pytest.approx(skm.roc_auc_score(names == "malignant", proba[:, 0]))
    assert scores["average_precision"] == pytest.approx(
        skm.average_precision_score(names == "malignant", proba[:, 0])
    )
    # the probability of the positive class alone is accepted too
    alone = compute_metrics("binary", names, pred, proba[:, 0], classes=["benign", "malignant"])
    assert alone == pytest.approx(scores)


def test_probability_metrics_are_left_out_without_probabilities() -> None:
    model, X, y = fitted("binary")
    scores = compute_metrics("binary", y, model.predict(X))
    assert set(scores) == set(scorer_names("binary")) - PROBABILITY_METRICS
    assert all(math.isfinite(v) for v in scores.values())
    chosen = compute_metrics("binary", y, model.predict(X), metrics=["roc_auc", "f1"])
    assert list(chosen) == ["f1"]


def test_undefined_metrics_are_nan_not_errors() -> None:
    one_class = compute_metrics("binary", [1, 1, 1], [1, 0, 1], [0.9, 0.4, 0.8], classes=[0, 1])
    assert math.isnan(one_class["roc_auc"])
    assert one_class["average_precision"] == pytest.approx(1.0)  # defined with positives only
    assert one_class["accuracy"] == pytest.approx(2 / 3)
    no_positive = compute_metrics("binary", [0, 0], [0, 1], [0.1, 0.7], classes=[0, 1])
    assert math.isnan(no_positive["average_precision"]) and math.isnan(no_positive["roc_auc"])
    assert no_positive["precision"] == 0.0  # zero_division=0, as scikit-learn's scorers
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    missing = compute_metrics("multiclass", [0, 1], [0, 1], proba, classes=[0, 1, 2])
    assert math.isnan(missing["roc_auc_ovr"]) and math.isnan(missing["roc_auc_ovr_weighted"])
    assert missing["neg_log_loss"] == pytest.approx(-skm.log_loss([0, 1], proba, labels=[0, 1, 2]))
    assert math.isnan(compute_metrics("regression", [1.0], [2.0])["r2"])


def test_classification_edge_cases_match_sklearn_functions() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 60)
    pred = np.where(rng.random(60) < 0.5, y, 3)  # class 3 over-predicted
    pred[y == 2] = 0  # class 2 never predicted
    y[y == 1] = 0  # class 1 absent from y_true, present in y_pred
    pred[:3] = 1
    scores = compute_metrics("multiclass", y, pred, classes=[0, 1, 2, 3])
    for average in ("macro", "weighted"):
        for metric in ("precision", "recall", "f1"):
            expected = getattr(skm, f"{metric}_score")(y, pred, average=average, zero_division=0)
            assert scores[f"{metric}_{average}"] == pytest.approx(expected)
    with pytest.warns(UserWarning):  # sklearn warns about class 1; we do not
        expected = skm.balanced_accuracy_score(y, pred)
    assert scores["balanced_accuracy"] == pytest.approx(expected)
    r2_constant = compute_metrics("regression", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])["r2"]
    assert r2_constant == skm.r2_score([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0


# -- names and errors -------------------------------------------------------------------------


def test_unknown_and_unfitting_metric_names_are_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown metric 'f1_macr'.*'f1_macro'.*accuracy"):
        compute_metrics("binary", [0, 1], [0, 1], metrics=["f1_macr"])
    with pytest.raises(InvalidInputError, match=r"'f1' does not fit a multiclass.*f1_macro"):
        compute_metrics("multiclass", [0, 1, 2], [0, 1, 2], metrics=["f1"])
    with pytest.raises(InvalidInputError, match=r"'r2' does not fit a binary.*roc_auc"):
        compute_metrics("binary", [0, 1], [0, 1], metrics=["r2"])
    with pytest.raises(InvalidInputError, match="task must be one of"):
        scorer_names("ranking")
    with pytest.raises(InvalidInputError, match="unknown metric"):
        metric_direction("rmse")


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="y_pred has 2 rows but y_true has 3"):
        compute_metrics("binary", [0, 1, 1], [0, 1])
    with pytest.raises(InvalidInputError, match=r"3 columns but there are 2 classes.*classes="):
        compute_metrics("binary", [0, 1], [0, 1], np.full((2, 3), 1 / 3))
    with pytest.raises(InvalidInputError, match="decision_function"):
        compute_metrics("binary", [0, 1], [0, 1], [-2.0, 3.0])
    with pytest.raises(InvalidInputError, match=r"label\(s\) \['c'\].*classes="):
        compute_metrics("binary", ["a", "b", "c"], ["a", "b", "b"], classes=["a", "b"])
    with pytest.raises(InvalidInputError, match=r"1 missing or infinite value"):
        compute_metrics("regression", [1.0, np.nan], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match=r"pass classes=\[negative, positive\]"):
        compute_metrics("binary", [1, 1], [1, 1])


@pytest.mark.parametrize(
    ("y", "task"),
    [
        ([True, False, True], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        (pd.Series(["x", "y"] * 5, dtype="category"), "binary"),
        ([0, 1] * 3, "binary"),
        ([0.0, 1.0, np.nan] * 3, "binary"),
        ([1, 2, 3, 4, 5] * 20, "multiclass"),  # ratings: 20 rows per value
        (list(range(15)) * 4, "regression"),  # 15 values in 60 rows: too few rows per value
        (list(range(30)) * 100, "regression"),  # more than 20 distinct values
        ([0.5, 1.5, 2.5] * 50, "regression"),  # not whole numbers
        (load_diabetes().target, "regression"),
        (load_iris().target, "multiclass"),
    ],
)
def test_infer_task(y: Any, task: str) -> None:
    assert infer_task(y) == task


def test_check_target_rejects_what_cannot_be_learned() -> None:
    assert check_target(load_iris().target, "multiclass") == "multiclass"
    assert check_target(load_breast_cancer().target) == "binary"
    with pytest.raises(InvalidInputError, match="one class"):
        check_target(["a"] * 5, "binary")
    with pytest.raises(InvalidInputError, match=r"must be numeric.*pd\.to_numeric"):
        check_target(["1.5", "2.5", "x"], "regression")
    with pytest.raises(InvalidInputError, match=r"2 missing value\(s\) in 5 rows; drop"):
        check_target([1.0, np.nan, 2.0, np.nan, 3.0], "regression")
    with pytest.raises(InvalidInputError, match=r"class 'c' has fewer than 2 rows"):
        check_target(["a", "a", "b", "b", "c"], "multiclass")
    with pytest.raises(InvalidInputError, match="task='multiclass'"):
        check_target([0, 1, 2, 0, 1, 2], "binary")
    with pytest.raises(InvalidInputError, match="constant"):
        check_target([3.0, 3.0, 3.0], "regression")


def test_display_value_names_losses_for_people() -> None:
    assert display_value("neg_root_mean_squared_error", -1.2) == ("rmse", 1.2)
    assert display_value("neg_log_loss", -0.3) == ("log_loss", 0.3)
    assert display_value("neg_mean_absolute_percentage_error", 0.0) == ("mape", 0.0)
    assert display_value("roc_auc", 0.9) == ("roc_auc", 0.9)
    assert display_value("neg_max_error", -4.0) == ("max_error", 4.0)


# -- confusion matrix, per class, per slice ---------------------------------------------------


def test_confusion_matrix_matches_sklearn_and_is_json_ready() -> None:
    model, X, y = fitted("multiclass")
    pred = model.predict(X)
    matrix = confusion(y, pred, model.classes_)
    np.testing.assert_array_equal(matrix.counts, skm.confusion_matrix(y, pred))
    np.testing.assert_allclose(matrix.normalized(), skm.confusion_matrix(y, pred, normalize="true"))
    assert matrix.counts.dtype == np.int64 and not matrix.counts.flags.writeable
    data = json.loads(json.dumps(matrix.to_dict()))
    assert data["classes"] == [0, 1, 2] and data["counts"] == matrix.counts.tolist()
    empty_row = confusion(["a", "b"], ["a", "a"], classes=["a", "b", "c"]).normalized()
    assert empty_row.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    with pytest.raises(InvalidInputError, match="2x2"):
        ConfusionMatrix(("a", "b"), np.zeros((3, 3), dtype=np.int64))


def test_per_class_metrics_match_sklearn() -> None:
    model, X, y = fitted("multiclass")
    pred = model.predict(X)
    table = per_class_metrics(y, pred, [2, 1, 0])
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=[2, 1, 0], zero_division=0
    )
    assert table["class"].tolist() == [2, 1, 0]
    np.testing.assert_allclose(table["precision"], precision)
    np.testing.assert_allclose(table["recall"], recall)
    np.testing.assert_allclose(table["f1"], f1)
    assert table["support"].tolist() == support.tolist()


def test_metrics_by_slice_scores_each_slice_like_sklearn() -> None:
    model, X, y = fitted("binary")
    pred, proba = model.predict(X), model.predict_proba(X)
    region = np.array(["north", "south", "east"])[np.arange(len(y)) % 3]
    region[:4] = "west"  # a tiny slice
    table = metrics_by_slice("binary", y, pred, proba, region, min_rows=5)
    assert table["slice"].tolist() == ["east", "north", "south", "west"]
    assert table["n"].sum() == len(y) and table.columns[:2].tolist() == ["slice", "n"]
    for row in table.itertuples(index=False):
        rows = region == row.slice
        if row.n < 5:
            assert math.isnan(row.accuracy) and math.isnan(row.roc_auc)
            continue
        assert row.accuracy == pytest.approx(skm.accuracy_score(y[rows], pred[rows]))
        assert row.f1_macro == pytest.approx(skm.f1_score(y[rows], pred[rows], average="macro"))
        assert row.roc_auc == pytest.approx(skm.roc_auc_score(y[rows], proba[rows, 1]))
        assert row.neg_log_loss == pytest.approx(-skm.log_loss(y[rows], proba[rows]))


def test_metrics_by_slice_keeps_missing_values_and_all_classes() -> None:
    y = np.array([0, 0, 1, 1, 0, 0])
    pred = np.array([0, 1, 1, 1, 0, 0])
    proba = np.array([0.1, 0.6, 0.8, 0.9, 0.2, 0.3])
    key = pd.Series(["a", "a", "b", "b", None, None])
    table = metrics_by_slice(
        "binary", y, pred, proba, key, metrics=["accuracy", "roc_auc", "recall"]
    )
    assert table["slice"].tolist()[:2] == ["a", "b"] and pd.isna(table["slice"].iloc[2])
    assert table["accuracy"].tolist() == [0.5, 1.0, 1.0]
    assert math.isnan(table["roc_auc"].iloc[0])  # slice "a" has no positive
    assert table["recall"].tolist()[1] == 1.0
    with pytest.raises(InvalidInputError, match="slices has 2 values but y_true has 6"):
        metrics_by_slice("binary", y, pred, proba, ["a", "b"])


# -- bootstrap --------------------------------------------------------------------------------


def _reference_values(
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    functions: dict[str, Callable[..., float]],
    *,
    n_resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """The documented resamples, scored by one scikit-learn call each; NaN where undefined."""
    rows = np.random.default_rng(seed).integers(0, len(y), size=(n_resamples, len(y)))
    values: dict[str, list[float]] = {name: [] for name in functions}
    for index in rows:
        part = None if proba is None else proba[index]
        for name, function in functions.items():
            try:
                values[name].append(function(y[index], pred[index], part))
            except ValueError:  # undefined for this resample
                values[name].append(math.nan)
    return {name: np.array(found) for name, found in values.items()}


REFERENCE: dict[str, dict[str, Callable[..., float]]] = {
    "binary": {
        "accuracy": lambda y, p, q: skm.accuracy_score(y, p),
        "balanced_accuracy": lambda y, p, q: skm.balanced_accuracy_score(y, p),
        "f1": lambda y, p, q: skm.f1_score(y, p, zero_division=0),
        "precision_macro": lambda y, p, q: skm.precision_score(
            y, p, average="macro", zero_division=0
        ),
        "roc_auc": lambda y, p, q: skm.roc_auc_score(y, q[:, 1]),
        "average_precision": lambda y, p, q: skm.average_precision_score(y, q[:, 1]),
        "neg_log_loss": lambda y, p, q: -skm.log_loss(y, q, labels=[0, 1]),
        "neg_brier_score": lambda y, p, q: -skm.brier_score_loss(y, q[:, 1], pos_label=1),
    },
    "multiclass": {
        "f1_macro": lambda y, p, q: skm.f1_score(y, p, average="macro", zero_division=0),
        "recall_weighted": lambda y, p, q: skm.recall_score(
            y, p, average="weighted", zero_division=0
        ),
        "roc_auc_ovr": lambda y, p, q: skm.roc_auc_score(y, q, multi_class="ovr"),
        "roc_auc_ovr_weighted": lambda y, p, q: skm.roc_auc_score(
            y, q, multi_class="ovr", average="weighted"
        ),
    },
    "regression": {
        "neg_root_mean_squared_error": lambda y, p, q: -skm.root_mean_squared_error(y, p),
        "neg_mean_absolute_error": lambda y, p, q: -skm.mean_absolute_error(y, p),
        "neg_mean_absolute_percentage_error": lambda y, p, q: (
            -skm.mean_absolute_percentage_error(y, p)
        ),
        "r2": lambda y, p, q: skm.r2_score(y, p),
    },
}


@pytest.mark.parametrize("task", TASKS)
def test_bootstrap_equals_a_resample_by_resample_sklearn_loop(task: str) -> None:
    model, X, y = fitted(task)
    pred = model.predict(X)
    proba = None if task == "regression" else model.predict_proba(X)
    functions = REFERENCE[task]
    expected = _reference_values(y, pred, proba, functions, n_resamples=40, seed=7)
    for confidence in (0.5, 0.9):
        found = bootstrap_ci(
            task, y, pred, proba, metrics=list(functions), n_resamples=40, seed=7,
            confidence=confidence,
        )  # fmt: skip
        tail = (1 - confidence) / 2 * 100
        for name, values in expected.items():
            low, high = np.percentile(values[~np.isnan(values)], [tail, 100 - tail])
            assert found[name] == pytest.approx((low, high), rel=1e-9, abs=1e-12), name


def _noisy_binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, n), 0.001, 0.999)
    return y, (score > 0.5).astype(int), score


def test_bootstrap_interval_contains_estimate_and_narrows_with_more_rows() -> None:
    widths = {}
    for n in (200, 5000):
        y, pred, score = _noisy_binary(n)
        point = compute_metrics("binary", y, pred, score)
        intervals = bootstrap_ci("binary", y, pred, score, n_resamples=300)
        assert set(intervals) == set(point)
        for name, (low, high) in intervals.items():
            assert low <= point[name] <= high, name
            assert low < high, name
        widths[n] = intervals["accuracy"][1] - intervals["accuracy"][0]
    # the width shrinks like 1/sqrt(n): 5x narrower for 25x the rows
    assert widths[5000] < widths[200] / 3


def test_bootstrap_is_reproducible_for_a_seed_and_validates_arguments() -> None:
    y, pred, score = _noisy_binary(300)
    first = bootstrap_ci("binary", y, pred, score, metrics=["roc_auc"], n_resamples=100, seed=1)
    again = bootstrap_ci("binary", y, pred, score, metrics=["roc_auc"], n_resamples=100, seed=1)
    other = bootstrap_ci("binary", y, pred, score, metrics=["roc_auc"], n_resamples=100, seed=2)
    assert first == again and first != other
    wider = bootstrap_ci("binary", y, pred, score, metrics=["roc_auc"], n_resamples=100, seed=1,
                         confidence=0.99)  # fmt: skip
    assert wider["roc_auc"][0] < first["roc_auc"][0] < first["roc_auc"][1] < wider["roc_auc"][1]
    with pytest.raises(InvalidInputError, match="confidence must be between 0 and 1"):
        bootstrap_ci("binary", y, pred, confidence=95)
    with pytest.raises(InvalidInputError, match="n_resamples"):
        bootstrap_ci("binary", y, pred, n_resamples=0)


def test_bootstrap_of_one_class_slice_skips_undefined_resamples() -> None:
    intervals = bootstrap_ci(
        "binary", [0, 0, 0, 1], [0, 0, 1, 1], [0.1, 0.2, 0.6, 0.9], n_resamples=200,
        metrics=["roc_auc", "accuracy"],
    )  # fmt: skip
    assert intervals["roc_auc"] == (1.0, 1.0)  # resamples without class 1 are left out
    only_negatives = bootstrap_ci(
        "binary", [0, 0], [0, 0], [0.1, 0.2], classes=[0, 1], metrics=["roc_auc"]
    )
    assert all(math.isnan(v) for v in only_negatives["roc_auc"])


def test_bootstrap_of_1000_rows_is_fast() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1000)
    proba = rng.dirichlet(np.ones(3), 1000)
    pred = proba.argmax(axis=1)
    yb, predb, scoreb = _noisy_binary(1000)
    yr = rng.normal(size=1000)
    started = time.perf_counter()
    bootstrap_ci("binary", yb, predb, scoreb, n_resamples=1000)
    bootstrap_ci("multiclass", y, pred, proba, n_resamples=1000)
    bootstrap_ci("regression", yr, yr + rng.normal(size=1000), n_resamples=1000)
    assert time.perf_counter() - started < 6  # about 2 s each at most on a busy machine


def test_documented_examples_run() -> None:
    result = doctest.testmod(metrics, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_bootstrap_in_chunks_gives_the_same_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    y, pred, score = _noisy_binary(500)
    whole = bootstrap_ci("binary", y, pred, score, n_resamples=50, seed=4)
    monkeypatch.setattr(metrics, "BOOTSTRAP_CELLS", 500 * 7)  # 7 resamples per chunk
    chunked = bootstrap_ci("binary", y, pred, score, n_resamples=50, seed=4)
    assert chunked.keys() == whole.keys()
    for name, interval in whole.items():  # equal up to float rounding of matrix products
        assert chunked[name] == pytest.approx(interval, rel=1e-12), name
