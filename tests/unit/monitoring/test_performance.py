"""Live performance: feedback joined onto the prediction log, metrics, windows, comparison."""

from __future__ import annotations

import doctest
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import InvalidInputError, SchemaMismatchError
from shipyard.monitoring import performance as performance_module
from shipyard.monitoring.performance import (
    TASKS,
    compare_with_validation,
    infer_task,
    join_feedback,
    performance_by_window,
    performance_metrics,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class Traffic:
    """A prediction log over three hours and the feedback for every row of it."""

    predictions: pd.DataFrame
    feedback: pd.DataFrame
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None


def make_traffic(kind: str = "binary", seed: int = 0) -> Traffic:
    """Real data, a real model, and frames shaped like the prediction and feedback logs."""
    rng = np.random.default_rng(seed)
    if kind == "regression":
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        model = Ridge(alpha=1.0)
    else:
        loader = load_breast_cancer if kind == "binary" else load_iris
        X, y = loader(return_X_y=True, as_frame=True)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000, C=0.05))
    order = rng.permutation(len(X))
    train, live = order[: len(X) // 2], order[len(X) // 2 :]
    model.fit(X.iloc[train], y.iloc[train])
    X_live, y_live = X.iloc[live].reset_index(drop=True), y.iloc[live].to_numpy()
    y_pred = model.predict(X_live)
    n = len(X_live)
    sizes = rng.integers(1, 6, n)  # requests of 1..5 rows
    request = np.repeat(np.arange(n), sizes)[:n]
    row = pd.Series(request).groupby(request).cumcount().to_numpy()
    seconds = np.sort(rng.uniform(0, 3 * 3600, request.max() + 1))[request]
    times = pd.Timestamp(T0) + pd.to_timedelta(seconds, unit="s")
    predictions = X_live.iloc[:, :4].copy()
    predictions["sy_request_id"] = [f"req-{r}" for r in request]
    predictions["sy_row"] = row
    predictions["sy_time"] = times
    predictions["sy_model"] = "m"
    predictions["sy_version"] = 1
    predictions["sy_latency_ms"] = 2.0
    predictions["sy_prediction"] = y_pred
    predictions["sy_flags"] = ""
    proba = None
    if kind != "regression":
        proba = model.predict_proba(X_live)
        for j, cls in enumerate(model.classes_):
            predictions[f"sy_proba_{cls}"] = proba[:, j]
    delay = pd.to_timedelta(rng.uniform(60, 7200, n), unit="s")
    feedback = pd.DataFrame(
        {
            "sy_request_id": predictions["sy_request_id"],
            "sy_row": row,
            "sy_time": times + delay,
            "sy_label": y_live,
        }
    ).sample(frac=1.0, random_state=seed, ignore_index=True)  # arrival order is not row order
    return Traffic(predictions, feedback, y_live, y_pred, proba)


# --------------------------------------------------------------------------------------
# join_feedback


def test_join_adds_labels_in_prediction_order() -> None:
    t = make_traffic()
    joined = join_feedback(t.predictions, t.feedback)
    assert len(joined) == len(t.predictions)
    assert joined.index.equals(t.predictions.index)
    assert (joined["sy_label"].to_numpy() == t.y_true).all()
    assert (joined["sy_label_time"] > joined["sy_time"]).all()
    assert list(joined.columns[: len(t.predictions.columns)]) == list(t.predictions.columns)


def test_a_row_labelled_twice_takes_the_later_label() -> None:
    t = make_traffic()
    first = t.predictions.iloc[0]
    key = (first["sy_request_id"], first["sy_row"])
    right = int(t.y_true[0])
    later = pd.DataFrame(
        {
            "sy_request_id": [key[0], key[0]],
            "sy_row": [key[1], key[1]],
            "sy_time": pd.to_datetime(["2026-01-05", "2026-01-04"], utc=True),
            "sy_label": [1 - right, right],  # the correction is the later record
        }
    )
    feedback = pd.concat([later, t.feedback], ignore_index=True)  # older record comes last
    joined = join_feedback(t.predictions, feedback)
    assert len(joined) == len(t.predictions)
    assert joined["sy_label"].iloc[0] == 1 - right
    assert joined["sy_label_time"].iloc[0] == pd.Timestamp("2026-01-05", tz="UTC")


def test_join_with_missing_or_partial_feedback() -> None:
    t = make_traffic()
    half = t.feedback.iloc[: len(t.feedback) // 2]
    joined = join_feedback(t.predictions, half)
    assert joined["sy_label"].notna().sum() == len(half)
    for feedback in (pd.DataFrame(), t.feedback.iloc[:0], t.feedback.drop(columns=["sy_label"])):
        none = join_feedback(t.predictions, feedback)
        assert len(none) == len(t.predictions) and none["sy_label"].isna().all()
        assert none["sy_label_time"].isna().all()


def test_join_with_empty_predictions() -> None:
    t = make_traffic()
    for predictions in (pd.DataFrame(), t.predictions.iloc[:0]):
        joined = join_feedback(predictions, t.feedback)
        assert len(joined) == 0 and {"sy_label", "sy_label_time"} <= set(joined.columns)
    assert performance_metrics(join_feedback(pd.DataFrame(), pd.DataFrame()), task="binary") == {}


def test_join_replaces_an_old_label_and_checks_its_input() -> None:
    t = make_traffic()
    once = join_feedback(t.predictions, t.feedback.iloc[:10])
    twice = join_feedback(once, t.feedback)
    assert twice["sy_label"].notna().all()
    assert list(twice.columns).count("sy_label") == 1
    with pytest.raises(SchemaMismatchError, match="sy_request_id"):
        join_feedback(t.predictions.drop(columns=["sy_request_id"]), t.feedback)
    with pytest.raises(InvalidInputError, match="DataFrame"):
        join_feedback(t.predictions, None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# performance_metrics


def _labelled(t: Traffic, share: float = 0.7, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    keep = rng.random(len(t.feedback)) < share
    joined = join_feedback(t.predictions, t.feedback[keep])
    return joined, joined["sy_label"].notna().to_numpy()


def test_binary_metrics_equal_sklearn_on_the_labelled_rows() -> None:
    t = make_traffic("binary")
    joined, mask = _labelled(t)
    assert t.proba is not None
    y, p, proba = t.y_true[mask], t.y_pred[mask], t.proba[mask, 1]
    got = performance_metrics(joined, task="binary")
    expected = {
        "accuracy": metrics.accuracy_score(y, p),
        "balanced_accuracy": metrics.balanced_accuracy_score(y, p),
        "precision": metrics.precision_score(y, p),
        "recall": metrics.recall_score(y, p),
        "f1": metrics.f1_score(y, p),
        "roc_auc": metrics.roc_auc_score(y, proba),
        "log_loss": metrics.log_loss(y, t.proba[mask]),
        "n_labelled": float(mask.sum()),
    }
    assert got == pytest.approx(expected)
    assert 0 < mask.sum() < len(mask)


def test_the_positive_class_is_the_second_class() -> None:
    t = make_traffic("binary")
    joined, mask = _labelled(t)
    y, p = t.y_true[mask], t.y_pred[mask]
    flipped = performance_metrics(joined, task="binary", classes=[1, 0])
    assert flipped["recall"] == pytest.approx(metrics.recall_score(y, p, pos_label=0))
    assert t.proba is not None
    assert flipped["roc_auc"] == pytest.approx(metrics.roc_auc_score(y == 0, t.proba[mask, 0]))
    names = {0: "benign", 1: "malignant"}
    text = joined.assign(
        sy_label=joined["sy_label"].map(names), sy_prediction=joined["sy_prediction"].map(names)
    )
    text = text.rename(
        columns={"sy_proba_0": "sy_proba_benign", "sy_proba_1": "sy_proba_malignant"}
    )
    assert performance_metrics(text, task="binary") == pytest.approx(
        performance_metrics(joined, task="binary")
    )


def test_multiclass_metrics_are_macro_averages_equal_to_sklearn() -> None:
    t = make_traffic("multiclass")
    joined, mask = _labelled(t, share=0.8)
    assert t.proba is not None
    y, p = t.y_true[mask], t.y_pred[mask]
    got = performance_metrics(joined, task="multiclass")
    for name, score in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        value = score(y, p, average="macro", zero_division=0)
        assert got[name] == pytest.approx(value) and got[f"{name}_macro"] == pytest.approx(value)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, p))
    assert got["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y, p))
    assert got["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, t.proba[mask], multi_class="ovr", average="macro")
    )
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, t.proba[mask]))
    assert infer_task(joined["sy_label"], joined["sy_prediction"]) == "multiclass"


def test_probability_metrics_need_every_class_among_the_labels() -> None:
    t = make_traffic("binary")
    joined = join_feedback(t.predictions, t.feedback)
    only_ones = joined[joined["sy_label"] == 1]
    got = performance_metrics(only_ones, task="binary")
    assert "roc_auc" not in got and "log_loss" not in got
    recall = metrics.recall_score(only_ones["sy_label"], only_ones["sy_prediction"])
    assert got["recall"] == pytest.approx(recall)
    no_proba = joined.drop(columns=["sy_proba_0", "sy_proba_1"])
    assert "roc_auc" not in performance_metrics(no_proba, task="binary")


def test_string_labels_compare_equal_to_integer_predictions() -> None:
    t = make_traffic("binary")
    joined = join_feedback(t.predictions, t.feedback.astype({"sy_label": str}))
    assert joined["sy_label"].iloc[0] in ("0", "1")
    got = performance_metrics(joined, task="binary")
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(t.y_true, t.y_pred))
    assert t.proba is not None
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(t.y_true, t.proba[:, 1]))
    mixed = pd.DataFrame({"sy_prediction": [1.0, 0.0, 2.0], "sy_label": ["1", "x", "2"]})
    assert performance_metrics(mixed, task="multiclass")["accuracy"] == pytest.approx(2 / 3)
    assert infer_task(joined["sy_label"], joined["sy_prediction"]) == "binary"


def test_regression_metrics_equal_sklearn() -> None:
    t = make_traffic("regression")
    joined, mask = _labelled(t)
    y, p = t.y_true[mask], t.y_pred[mask]
    got = performance_metrics(joined, task="regression")
    assert got == pytest.approx(
        {
            "rmse": math.sqrt(metrics.mean_squared_error(y, p)),
            "mae": metrics.mean_absolute_error(y, p),
            "r2": metrics.r2_score(y, p),
            "mape": metrics.mean_absolute_percentage_error(y, p),
            "n_labelled": float(mask.sum()),
        }
    )
    assert infer_task(joined["sy_label"], joined["sy_prediction"]) == "regression"
    zero = joined.assign(sy_label=joined["sy_label"].fillna(0.0))
    assert "mape" not in performance_metrics(zero, task="regression")
    with pytest.raises(InvalidInputError, match="numeric labels"):
        performance_metrics(joined.assign(sy_label="high"), task="regression")


def test_metrics_without_labelled_rows_and_bad_arguments() -> None:
    t = make_traffic("binary")
    unlabelled = join_feedback(t.predictions, pd.DataFrame())
    assert performance_metrics(unlabelled, task="binary") == {}
    assert performance_metrics(pd.DataFrame(), task="regression") == {}
    with pytest.raises(InvalidInputError, match="task must be one of"):
        performance_metrics(unlabelled, task="ranking")
    with pytest.raises(SchemaMismatchError, match="join_feedback"):
        performance_metrics(t.predictions, task="binary")
    iris = join_feedback(
        make_traffic("multiclass").predictions, make_traffic("multiclass").feedback
    )
    with pytest.raises(InvalidInputError, match="task='multiclass'"):
        performance_metrics(iris, task="binary")
    assert TASKS == ("binary", "multiclass", "regression")


def test_infer_task() -> None:
    assert infer_task(pd.Series([True, False]), pd.Series([True, True])) == "binary"
    assert infer_task(pd.Series(["a", "b", "c"]), pd.Series(["a", "a", "a"])) == "multiclass"
    assert infer_task(pd.Series([1.0, np.nan]), pd.Series([0, 1])) == "binary"
    assert infer_task(pd.Series(range(50)), pd.Series(range(50))) == "regression"
    assert infer_task(pd.Series([0.5, 1.0]), pd.Series([1.0, 1.0])) == "regression"
    with pytest.raises(InvalidInputError, match="task="):
        infer_task(pd.Series([], dtype=float), pd.Series([np.nan]))


# --------------------------------------------------------------------------------------
# windows


def test_windows_are_aligned_to_the_epoch_by_prediction_time() -> None:
    t = make_traffic("binary")
    shifted = t.predictions.assign(sy_time=t.predictions["sy_time"] + timedelta(minutes=20))
    windows = performance_by_window(shifted, t.feedback, window=HOUR, task="binary", min_labels=1)
    assert [w.start for w in windows] == [T0 + k * HOUR for k in range(4)]
    assert all(w.end - w.start == HOUR for w in windows)
    assert sum(w.n_predictions for w in windows) == len(t.predictions)
    assert all(w.status == "ok" and w.label_coverage == 1.0 for w in windows)
    first = windows[0]
    in_first = (shifted["sy_time"] < T0 + HOUR).to_numpy()
    assert first.metrics["accuracy"] == pytest.approx(
        metrics.accuracy_score(t.y_true[in_first], t.y_pred[in_first])
    )
    assert first.n_predictions == in_first.sum()
    json.dumps([w.to_dict() for w in windows], allow_nan=False)


def test_late_labels_update_the_window_of_their_prediction() -> None:
    t = make_traffic("binary")
    by_arrival = t.feedback.sort_values("sy_time")
    early = by_arrival.iloc[: len(by_arrival) // 2]
    before = performance_by_window(t.predictions, early, window=HOUR, task="binary")
    after = performance_by_window(t.predictions, by_arrival, window=HOUR, task="binary")
    assert [w.start for w in before] == [w.start for w in after]
    assert sum(w.n_labelled for w in before) == len(early)
    assert all(b.n_labelled <= a.n_labelled for b, a in zip(before, after, strict=True))
    assert any(b.n_labelled < a.n_labelled for b, a in zip(before, after, strict=True))
    assert [a.n_labelled for a in after] == [a.n_predictions for a in after]


def test_windows_wait_for_labels() -> None:
    t = make_traffic("binary")
    half = t.feedback.iloc[: len(t.feedback) // 2]
    many = performance_by_window(t.predictions, half, window=HOUR, task="binary", min_labels=500)
    assert {w.status for w in many} == {"waiting_for_labels"}
    assert all(w.metrics["n_labelled"] == w.n_labelled for w in many)
    covered = performance_by_window(
        t.predictions, half, window=HOUR, task="binary", min_labels=1, min_coverage=0.9
    )
    assert {w.status for w in covered} == {"waiting_for_labels"}
    assert all(0.2 < w.label_coverage < 0.8 for w in covered)
    none = performance_by_window(t.predictions, pd.DataFrame(), window=HOUR, task="binary")
    assert {w.status for w in none} == {"waiting_for_labels"} and none[0].metrics == {}


def test_start_end_and_windows_without_predictions() -> None:
    t = make_traffic("binary")
    gap = t.predictions[
        (t.predictions["sy_time"] < T0 + HOUR) | (t.predictions["sy_time"] >= T0 + 2 * HOUR)
    ]
    windows = performance_by_window(
        gap, t.feedback, window=HOUR, task="binary", min_labels=1,
        start=datetime(2025, 12, 31, 23, 0), end=T0 + 5 * HOUR,
    )  # fmt: skip
    assert [w.start for w in windows] == [T0 + k * HOUR for k in range(-1, 5)]
    assert [w.status for w in windows] == [
        "no_predictions", "ok", "no_predictions", "ok", "no_predictions", "no_predictions",
    ]  # fmt: skip
    inner = performance_by_window(
        t.predictions, t.feedback, window=HOUR, task="binary", start=T0 + HOUR, end=T0 + 2 * HOUR
    )
    assert len(inner) == 1 and inner[0].start == T0 + HOUR
    times = t.predictions["sy_time"]
    assert inner[0].n_predictions == ((times >= T0 + HOUR) & (times < T0 + 2 * HOUR)).sum()


def test_windows_of_empty_inputs_and_bad_arguments() -> None:
    assert performance_by_window(pd.DataFrame(), pd.DataFrame(), window=HOUR, task="binary") == []
    empty = performance_by_window(
        pd.DataFrame(), pd.DataFrame(), window=HOUR, task="binary", start=T0, end=T0 + 2 * HOUR
    )
    assert [(w.status, w.n_predictions, w.metrics) for w in empty] == [
        ("no_predictions", 0, {})
    ] * 2
    t = make_traffic("regression")
    reg = performance_by_window(t.predictions, t.feedback, window=3 * HOUR, task="regression")
    assert len(reg) == 1 and reg[0].metrics["rmse"] == pytest.approx(
        math.sqrt(metrics.mean_squared_error(t.y_true, t.y_pred))
    )
    for kwargs, match in (
        ({"window": timedelta(0)}, "window"),
        ({"min_labels": -1}, "min_labels"),
        ({"min_coverage": 2.0}, "min_coverage"),
        ({"start": T0, "end": T0}, "before end"),
        ({"window": timedelta(milliseconds=1)}, "windows"),
    ):
        args = {"window": HOUR, "task": "regression", **kwargs}
        with pytest.raises(InvalidInputError, match=match):
            performance_by_window(t.predictions, t.feedback, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# comparison with validation


def test_compare_with_validation_knows_which_way_is_better() -> None:
    live = {"accuracy": 0.8, "rmse": 3.0, "log_loss": 0.5, "custom": 2.0, "n_labelled": 40.0}
    validation = {"accuracy": 0.9, "rmse": 2.0, "log_loss": 0.4, "custom": 1.0, "f1": 0.7}
    got = compare_with_validation(live, validation, higher_is_better={"custom": False})
    assert list(got) == ["accuracy", "rmse", "log_loss", "custom"]
    assert got["accuracy"] == pytest.approx(
        {"live": 0.8, "validation": 0.9, "change": -0.1, "relative_change": -0.1 / 0.9,
         "improvement": -0.1}
    )  # fmt: skip
    assert got["rmse"]["change"] == 1.0 and got["rmse"]["improvement"] == -1.0
    assert got["log_loss"]["improvement"] == pytest.approx(-0.1)
    assert got["custom"]["improvement"] == -1.0
    assert math.isnan(compare_with_validation({"r2": 0.1}, {"r2": 0.0})["r2"]["relative_change"])


def test_docstring_examples_run() -> None:
    result = doctest.testmod(performance_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_binary_precision_needs_a_known_positive_class() -> None:
    zeros = pd.DataFrame({"sy_prediction": [0, 0, 0], "sy_label": [0, 0, 0]})
    alone = performance_metrics(zeros, task="binary")
    assert alone["accuracy"] == 1.0 and "precision" not in alone
    told = performance_metrics(zeros, task="binary", classes=[0, 1])
    assert (told["precision"], told["recall"]) == (0.0, 0.0)
    with pytest.raises(InvalidInputError, match="multiclass"):
        performance_metrics(zeros.assign(sy_label=[0, 2, 1]), task="binary", classes=[0, 1])
