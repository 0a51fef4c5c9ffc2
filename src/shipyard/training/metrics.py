"""Metrics named by scikit-learn scorer names: scores, per class, per slice, bootstrap intervals.

Values follow scikit-learn's scorer convention, **greater is better**: losses are negated
under ``neg_`` names, so tuning always maximises and :func:`compute_metrics` equals
``sklearn.metrics.get_scorer(name)(model, X, y)``; :func:`display_value` turns them back for
people. As in scikit-learn, the positive class of a binary task is the last of ``classes``
(``predict_proba(X)[:, 1]``), precision/recall/F1 are 0 where they divide by zero, and macro
averages run over the classes seen in ``y_true`` or ``y_pred``; an undefined metric (ROC AUC
without both classes) is NaN. Metrics are computed in numpy from *row weights* (1 per row for
a score or slice, draw counts for a bootstrap resample), so thousands of resamples are a few
matrix operations; the tests compare every metric with scikit-learn.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.core.errors import InvalidInputError

Task: TypeAlias = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")

MAX_INFERRED_CLASSES = 20
"""A numeric target with more distinct values than this is inferred to be a regression target."""
MIN_ROWS_PER_INFERRED_CLASS = 10
"""A numeric target is inferred to be classes only with this many rows per distinct value."""
BOOTSTRAP_CELLS = 2_000_000
"""Resamples are drawn in chunks of at most this many (resample, row) weights."""

_LABELS = ("accuracy", "balanced_accuracy")
_AVERAGED = tuple(f"{m}_{a}" for a in ("macro", "weighted") for m in ("precision", "recall", "f1"))
_BINARY_PROBA = ("roc_auc", "average_precision", "neg_log_loss", "neg_brier_score")
_MULTICLASS_PROBA = ("roc_auc_ovr", "roc_auc_ovr_weighted", "neg_log_loss")
_REGRESSION: tuple[str, ...] = ("neg_root_mean_squared_error", "neg_mean_absolute_error")
_REGRESSION += ("neg_mean_absolute_percentage_error", "neg_mean_squared_error", "r2")
_SCORERS: dict[Task, tuple[str, ...]] = {
    "binary": (*_LABELS, "precision", "recall", "f1", *_AVERAGED, *_BINARY_PROBA),
    "multiclass": (*_LABELS, *_AVERAGED, *_MULTICLASS_PROBA),
    "regression": _REGRESSION,
}
PROBABILITY_METRICS = frozenset(_BINARY_PROBA + _MULTICLASS_PROBA)
"""Metrics computed from ``y_proba``; they are left out when no probabilities are given."""
_RANK_METRICS = PROBABILITY_METRICS - {"neg_log_loss", "neg_brier_score"}

DEFAULT_METRIC: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "f1_macro",
    "regression": "neg_root_mean_squared_error",
}
"""The metric tuning maximises, per task: ``roc_auc`` ignores the threshold and the class
balance; ``f1_macro`` weighs rare classes equally and needs no probabilities; RMSE is in the
target's unit."""

_SHORT_NAMES = {
    "neg_root_mean_squared_error": "rmse",
    "neg_mean_absolute_error": "mae",
    "neg_mean_absolute_percentage_error": "mape",
    "neg_mean_squared_error": "mse",
    "neg_log_loss": "log_loss",
    "neg_brier_score": "brier_score",
}

Array: TypeAlias = npt.NDArray[Any]
FloatArray: TypeAlias = npt.NDArray[np.float64]


# -- tasks and targets ------------------------------------------------------------------------


def _check_task(task: object) -> Task:
    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    return task


def _values(y: npt.ArrayLike, name: str) -> Array:
    if isinstance(y, pd.DataFrame):
        raise InvalidInputError(f"{name} must be one column; got a DataFrame (select a column)")
    values = y.to_numpy() if isinstance(y, pd.Series | pd.Index) else np.asarray(y)
    if values.ndim != 1:
        raise InvalidInputError(
            f"{name} must be one-dimensional (one value per row); got shape {values.shape}"
        )
    return values


def _as_series(y: npt.ArrayLike, name: str) -> pd.Series:
    if isinstance(y, pd.Series):
        return y
    series = pd.Series(_values(y, name))
    return series.infer_objects() if series.dtype == object else series


def _is_label_dtype(dtype: Any) -> bool:
    types = pd.api.types
    categorical = isinstance(dtype, pd.CategoricalDtype)
    return bool(categorical or types.is_bool_dtype(dtype) or types.is_string_dtype(dtype))


def _is_number_dtype(dtype: Any) -> bool:
    types = pd.api.types
    return bool(types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype)
                and not types.is_complex_dtype(dtype))  # fmt: skip


def infer_task(y: npt.ArrayLike) -> Task:
    """Guess the task from the target column; missing values are ignored.

    - bool, category, string or object labels: ``binary`` with at most 2 distinct values,
      else ``multiclass``;
    - numbers with at most 2 distinct values: ``binary``;
    - whole numbers with at most :data:`MAX_INFERRED_CLASSES` (20) distinct values *and* at
      least :data:`MIN_ROWS_PER_INFERRED_CLASS` (10) rows per distinct value on average:
      ``multiclass`` (a 1-5 rating in 1,000 rows is classes; 15 ages in 60 rows are not);
    - other numbers: ``regression``. Pass the task where this guess is wrong.

    Args:
        y: the target values (Series, array or list).

    Returns:
        ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Raises:
        InvalidInputError: ``y`` is not one-dimensional, has no values, or holds dates,
            durations or complex numbers.

    Example::

        >>> infer_task(["no", "yes"]), infer_task([0, 1, 2] * 10), infer_task([0.5, 1.7, 2.2])
        ('binary', 'multiclass', 'regression')
    """
    series = _as_series(y, "y")
    values = series.dropna()
    if len(values) == 0:
        raise InvalidInputError(
            f"cannot infer the task: the target has no values ({len(series)} rows, all missing)"
        )
    distinct = int(values.nunique())
    if _is_label_dtype(series.dtype):
        return "binary" if distinct <= 2 else "multiclass"
    if not _is_number_dtype(series.dtype):
        raise InvalidInputError(
            f"cannot use a target of dtype {series.dtype} (dates, durations or complex numbers); "
            "convert it to numbers or labels first"
        )
    if distinct <= 2:
        return "binary"
    numbers = values.to_numpy(dtype=np.float64)
    whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
    few = distinct <= MAX_INFERRED_CLASSES
    if whole and few and distinct * MIN_ROWS_PER_INFERRED_CLASS <= len(values):
        return "multiclass"
    return "regression"


def check_target(y: npt.ArrayLike, task: Task | str | None = None) -> Task:
    """Check that ``y`` can be the target of a ``task`` model, and return the task.

    Args:
        y: the target values.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``; None infers it
            (:func:`infer_task`).

    Returns:
        The task.

    Raises:
        InvalidInputError: the target has missing values, is constant, is not numeric for a
            regression, has the wrong number of classes for the task, or has a class with fewer
            than 2 rows.

    Example::

        >>> check_target([0, 1, 1, 0], "binary")
        'binary'
        >>> check_target(["a", "a", "b"], "binary")
        Traceback (most recent call last):
        ...
        shipyard.core.errors.InvalidInputError: class 'b' has fewer than 2 rows; ...
    """
    series = _as_series(y, "y")
    chosen = infer_task(series) if task is None else _check_task(task)
    if len(series) == 0:
        raise InvalidInputError("the target has no rows")
    missing = int(series.isna().sum())
    if missing:
        raise InvalidInputError(
            f"the target has {missing} missing value(s) in {len(series)} rows; drop those rows "
            "first (frame.dropna(subset=[target])) or fill them"
        )
    if chosen == "regression":
        if not _is_number_dtype(series.dtype):
            raise InvalidInputError(
                f"a regression target must be numeric; got dtype {series.dtype}: convert it "
                "(pd.to_numeric) or use task='binary' or 'multiclass'"
            )
        numbers = _regression_values(series.to_numpy(), "the target")
        if np.all(numbers == numbers[0]):
            raise InvalidInputError(f"the target is constant ({numbers[0]!r}): nothing to learn")
        return chosen
    counts = series.value_counts(sort=True)
    labels = ", ".join(f"{label}: {count}" for label, count in counts.head(10).items())
    if len(counts) < 2:
        raise InvalidInputError(f"the target has one class ({labels}); a classifier needs two")
    if (chosen == "binary") != (len(counts) == 2):
        expected, other = ("2", "multiclass") if chosen == "binary" else ("3 or more", "binary")
        raise InvalidInputError(
            f"a {chosen} target has {expected} classes; this one has {len(counts)} ({labels}): "
            f"use task={other!r}"
        )
    rare = counts[counts < 2].index[:10]
    if len(rare):
        raise InvalidInputError(
            f"class {', '.join(map(repr, rare))} has fewer than 2 rows; cross-validation needs "
            "at least 2 rows per class: drop or merge the rare classes"
        )
    return chosen


# -- metric names -----------------------------------------------------------------------------


def scorer_names(task: Task | str) -> tuple[str, ...]:
    """The metrics of a task, as scikit-learn scorer names.

    Binary: accuracy, balanced_accuracy, precision, recall, f1 (of the positive class, the
    last of ``classes``), precision/recall/f1 ``_macro`` and ``_weighted``, roc_auc,
    average_precision (PR AUC), neg_log_loss, neg_brier_score. Multiclass: the same without
    the binary ones, with roc_auc_ovr and roc_auc_ovr_weighted. Regression:
    neg_root_mean_squared_error, neg_mean_absolute_error, neg_mean_absolute_percentage_error,
    neg_mean_squared_error, r2.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns:
        The names, in the order above.

    Raises:
        InvalidInputError: an unknown task.

    Example::

        >>> scorer_names("regression")[:2]
        ('neg_root_mean_squared_error', 'neg_mean_absolute_error')
    """
    return _SCORERS[_check_task(task)]


def _check_name(name: object, task: Task | None) -> str:
    """``name`` if it is a metric of ``task`` (of any task for None), else a clear error."""
    valid = _SCORERS[task] if task else tuple({n: 0 for t in TASKS for n in _SCORERS[t]})
    if name in valid:
        return name
    listing = f"the {task or 'known'} metrics are: {', '.join(valid)}"
    owners = [t for t in TASKS if name in _SCORERS[t]]
    if owners:
        hint = ""
        if task == "multiclass" and name in ("precision", "recall", "f1"):
            hint = f" (use {name}_macro or {name}_weighted)"
        elif task == "multiclass" and name == "roc_auc":
            hint = " (use roc_auc_ovr or roc_auc_ovr_weighted)"
        raise InvalidInputError(
            f"metric {name!r} does not fit a {task} task{hint}; it is a "
            f"{' and '.join(owners)} metric; {listing}"
        )
    short = str(name).removeprefix("neg_")
    close = [k for k, v in _SHORT_NAMES.items() if v == short and k in valid]
    close = close or difflib.get_close_matches(str(name), valid, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise InvalidInputError(f"unknown metric {name!r}{guess}; {listing}")


def _resolve_metrics(
    task: Task, metrics: Sequence[str] | str | None, *, has_proba: bool
) -> list[str]:
    if metrics is None:
        names = list(_SCORERS[task])
    else:
        chosen = [metrics] if isinstance(metrics, str) else list(metrics)
        names = list(dict.fromkeys(_check_name(name, task) for name in chosen))
    if not has_proba:
        names = [name for name in names if name not in PROBABILITY_METRICS]
    return names


def metric_direction(name: str) -> Literal["maximize"]:
    """Which way is better for a metric: always ``"maximize"`` (losses are ``neg_*``).

    Args:
        name: a scorer name of any task.

    Returns:
        ``"maximize"``.

    Raises:
        InvalidInputError: ``name`` is not a metric of any task.

    Example::

        >>> metric_direction("neg_log_loss")
        'maximize'
    """
    _check_name(name, None)
    return "maximize"


def display_value(name: str, value: float) -> tuple[str, float]:
    """A short name and the positive value of a metric, for people.

    ``neg_*`` losses are negated back (``neg_root_mean_squared_error`` -1.2 is ``rmse`` 1.2,
    and for those lower is better); other metrics keep their name and value. Any scorer-style
    name works, also ones this module does not compute.

    Args:
        name: a scorer name.
        value: its value in the scorer convention.

    Returns:
        ``(short_name, value)``.

    Example::

        >>> display_value("neg_root_mean_squared_error", -1.2), display_value("r2", 0.8)
        (('rmse', 1.2), ('r2', 0.8))
    """
    if name in _SHORT_NAMES:
        return _SHORT_NAMES[name], -float(value) + 0.0
    if name.startswith("neg_"):
        return name[4:], -float(value) + 0.0
    return name, float(value)


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Inputs:
    """Validated rows: class codes (or floats for regression) and probabilities."""

    task: Task
    classes: tuple[Any, ...]
    true: Array
    pred: Array
    proba: FloatArray | None

    def take(self, rows: Array) -> _Inputs:
        proba = None if self.proba is None else self.proba[rows]
        return _Inputs(self.task, self.classes, self.true[rows], self.pred[rows], proba)


def _classes(classes: npt.ArrayLike | None, y_true: Array, y_pred: Array) -> tuple[Any, ...]:
    if classes is not None:
        found = tuple(_values(classes, "classes").tolist())
        if len(set(found)) != len(found):
            raise InvalidInputError(f"classes has repeated labels: {list(found)}")
        return found
    try:
        return tuple(np.unique(np.concatenate([y_true, y_pred])).tolist())
    except TypeError as exc:
        raise InvalidInputError(
            "the labels in y_true and y_pred are of mixed types and cannot be sorted; pass "
            "classes= (the model's classes_)"
        ) from exc


def _codes(values: Array, index: pd.Index, name: str) -> Array:
    codes = index.get_indexer(values)
    bad = codes < 0
    if bad.any():
        missing = int(pd.isna(values[bad]).sum())
        if missing:
            raise InvalidInputError(
                f"{name} has {missing} missing value(s); drop those rows before scoring"
            )
        unknown = pd.unique(values[bad])[:5].tolist()
        raise InvalidInputError(
            f"{name} has label(s) {unknown} that are not among classes {list(index)}; pass "
            "classes= listing every label (the model's classes_)"
        )
    return np.asarray(codes, dtype=np.intp)


def _probabilities(y_proba: npt.ArrayLike, n: int, classes: tuple[Any, ...]) -> FloatArray:
    try:
        proba = np.asarray(y_proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("y_proba must be numbers: the output of predict_proba(X)") from exc
    if proba.ndim == 1 and len(classes) == 2:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape[0] != n:
        raise InvalidInputError(
            f"y_proba must have one row per row of y_true ({n}) and one column per class; got "
            f"shape {proba.shape}"
        )
    if proba.shape[1] != len(classes):
        raise InvalidInputError(
            f"y_proba has {proba.shape[1]} columns but there are {len(classes)} classes "
            f"{list(classes)}; pass classes= in the order of predict_proba's columns (the "
            "model's classes_)"
        )
    sums = proba.sum(axis=1)
    if not (np.all(np.isfinite(proba)) and proba.min() >= 0 and np.allclose(sums, 1, atol=1e-3)):
        raise InvalidInputError(
            "y_proba must be probabilities: rows of numbers in [0, 1] that sum to 1 (the "
            "output of predict_proba, not decision_function)"
        )
    return proba


def _regression_values(values: Array, name: str) -> FloatArray:
    series = _as_series(values, name)
    if not _is_number_dtype(series.dtype):
        raise InvalidInputError(
            f"{name} must be numbers for a regression; got dtype {series.dtype}"
        )
    numbers: FloatArray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = int((~np.isfinite(numbers)).sum())
    if bad:
        raise InvalidInputError(
            f"{name} has {bad} missing or infinite value(s); drop those rows before scoring"
        )
    return numbers


def _prepare(
    task: Task | str,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    y_proba: npt.ArrayLike | None,
    classes: npt.ArrayLike | None,
) -> _Inputs:
    task = _check_task(task)
    true, pred = _paired(y_true, y_pred)
    if len(true) == 0:
        raise InvalidInputError("y_true is empty; there is nothing to score")
    if task == "regression":
        if y_proba is not None:
            raise InvalidInputError("y_proba is for classification; pass None for a regression")
        true_f = _regression_values(true, "y_true")
        return _Inputs(task, (), true_f, _regression_values(pred, "y_pred"), None)
    found, true_codes, pred_codes = _label_codes(true, pred, classes)
    if task == "binary" and len(found) != 2:
        hint = (
            "pass classes=[negative, positive] (the model's classes_)"
            if len(found) < 2
            else "use task='multiclass'"
        )
        raise InvalidInputError(
            f"a binary task has 2 classes; got {len(found)}: {list(found)[:10]}; {hint}"
        )
    if len(found) < 2:
        raise InvalidInputError(
            f"only class {found[0]!r} occurs; pass classes= (the model's classes_)"
        )
    proba = None if y_proba is None else _probabilities(y_proba, len(true), found)
    return _Inputs(task, found, true_codes, pred_codes, proba)


def _paired(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[Array, Array]:
    true, pred = _values(y_true, "y_true"), _values(y_pred, "y_pred")
    if len(pred) != len(true):
        raise InvalidInputError(
            f"y_pred has {len(pred)} rows but y_true has {len(true)}; pass one prediction per row"
        )
    return true, pred


def _label_codes(
    true: Array, pred: Array, classes: npt.ArrayLike | None
) -> tuple[tuple[Any, ...], Array, Array]:
    """The classes, and the position in them of each true and predicted label."""
    missing = int(pd.isna(true).sum())
    if missing:
        raise InvalidInputError(
            f"y_true has {missing} missing value(s); drop those rows before scoring"
        )
    found = _classes(classes, true, pred)
    index = pd.Index(found)
    return found, _codes(true, index, "y_true"), _codes(pred, index, "y_pred")


# -- weighted metric kernels ------------------------------------------------------------------


def _div(num: Array, den: Array, fill: float) -> FloatArray:
    """``num / den``, ``fill`` where ``den`` is 0."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.full(num.shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


@dataclass(frozen=True, eq=False)
class _Groups:
    """Rows sorted by a key, cut where the key changes: sums of row weights per key."""

    order: Array
    starts: Array
    keys: Array

    @classmethod
    def of(cls, keys: Array) -> _Groups:
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        return cls(order, starts, ordered[starts])

    def sums(self, weights: FloatArray) -> FloatArray:
        """``(resamples, groups)`` sums of ``weights`` ``(resamples, rows)``, by ascending key."""
        return np.add.reduceat(weights[:, self.order], self.starts, axis=1)


@dataclass(frozen=True, eq=False)
class _Ranking:
    """One score column and which rows are positive, for ROC AUC and average precision."""

    ties: _Groups
    positive: FloatArray  # in score order

    @classmethod
    def of(cls, score: FloatArray, positive: Array) -> _Ranking:
        ties = _Groups.of(score)
        return cls(ties, positive[ties.order].astype(np.float64))

    def curves(self, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Weighted positives and negatives per distinct score, ascending."""
        total = weights[:, self.ties.order]
        pos = total * self.positive
        if len(self.ties.starts) < len(self.ties.order):  # tied scores: sum each run of ties
            total = np.add.reduceat(total, self.ties.starts, axis=1)
            pos = np.add.reduceat(pos, self.ties.starts, axis=1)
        return pos, total - pos


def _roc_auc(pos: FloatArray, neg: FloatArray) -> FloatArray:
    """P(score of a positive > score of a negative), ties counting half; NaN without both."""
    wins = (pos * (np.cumsum(neg, axis=1) - 0.5 * neg)).sum(axis=1)
    return _div(wins, pos.sum(axis=1) * neg.sum(axis=1), math.nan)


def _average_precision(pos: FloatArray, neg: FloatArray) -> FloatArray:
    """Sum over thresholds of the recall gained times the precision; NaN without positives."""
    pos, neg = pos[:, ::-1], neg[:, ::-1]
    tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    return _div((pos * _div(tps, tps + fps, 0.0)).sum(axis=1), pos.sum(axis=1), math.nan)


class _Kernel:
    """Computes named metrics of fixed rows for any number of row-weight vectors at once."""

    def __init__(self, inputs: _Inputs, names: Sequence[str]) -> None:
        self.inputs = inputs
        self.names = list(names)
        self.n = len(inputs.true)
        task, proba = inputs.task, inputs.proba
        if task == "regression":
            error = np.abs(inputs.pred - inputs.true)
            relative = error / np.maximum(np.abs(inputs.true), np.finfo(np.float64).eps)
            self.losses = np.column_stack([error**2, error, relative])
            return
        k = len(inputs.classes)
        self.k = k
        self.pairs = _Groups.of(inputs.true * k + inputs.pred)
        self.rankings: list[_Ranking] = []
        if proba is None:
            return
        if _RANK_METRICS.intersection(self.names):
            wanted = [1] if task == "binary" else range(k)
            self.rankings = [_Ranking.of(proba[:, j], inputs.true == j) for j in wanted]
        eps = np.finfo(np.float64).eps
        picked = proba[np.arange(self.n), inputs.true]
        self.log_loss = -np.log(np.clip(picked, eps, 1 - eps))
        self.brier = ((inputs.true == k - 1) - proba[:, -1]) ** 2

    def __call__(self, weights: FloatArray) -> dict[str, FloatArray]:
        """``{name: values}``, one value per row of ``weights`` ``(resamples, rows)``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.inputs.task == "regression":
                found = self._regression(weights)
            else:
                found = self._classification(weights)
        return {name: found[name] for name in self.names}

    def _regression(self, weights: FloatArray) -> dict[str, FloatArray]:
        rows = weights.sum(axis=1)
        sums = weights @ self.losses
        mse = sums[:, 0] / rows
        found = {
            "neg_mean_squared_error": -mse,
            "neg_root_mean_squared_error": -np.sqrt(mse),
            "neg_mean_absolute_error": -sums[:, 1] / rows,
            "neg_mean_absolute_percentage_error": -sums[:, 2] / rows,
        }
        if "r2" in self.names:
            true = self.inputs.true
            mean = (weights @ true) / rows
            total = (weights * (true[None, :] - mean[:, None]) ** 2).sum(axis=1)
            r2 = np.where(total == 0, 0.0, 1 - _div(sums[:, 0], total, 0.0))
            r2 = np.where(sums[:, 0] == 0, 1.0, r2)  # as sklearn's force_finite
            found["r2"] = np.where(rows < 2, math.nan, r2)
        return found

    def _classification(self, weights: FloatArray) -> dict[str, FloatArray]:
        k, resamples = self.k, weights.shape[0]
        counts = np.zeros((resamples, k * k))
        counts[:, self.pairs.keys] = self.pairs.sums(weights)
        matrix = counts.reshape(resamples, k, k)  # [resample, true, predicted]
        hits = np.diagonal(matrix, axis1=1, axis2=2)
        support, predicted = matrix.sum(axis=2), matrix.sum(axis=1)
        rows = support.sum(axis=1)
        recall = _div(hits, support, 0.0)
        per_class = {
            "precision": _div(hits, predicted, 0.0),
            "recall": recall,
            "f1": _div(2 * hits, support + predicted, 0.0),
        }
        present = (support + predicted) > 0
        seen = support > 0
        found = {"accuracy": hits.sum(axis=1) / rows}
        found["balanced_accuracy"] = (recall * seen).sum(axis=1) / seen.sum(axis=1)
        for metric, values in per_class.items():
            found[metric] = values[:, -1]
            found[f"{metric}_macro"] = (values * present).sum(axis=1) / present.sum(axis=1)
            found[f"{metric}_weighted"] = (values * support).sum(axis=1) / rows
        if self.rankings:
            curves = [ranking.curves(weights) for ranking in self.rankings]
            aucs = np.column_stack([_roc_auc(*curve) for curve in curves])
            found["roc_auc"] = found["roc_auc_ovr"] = aucs.mean(axis=1)
            positives = np.column_stack([pos.sum(axis=1) for pos, _ in curves])
            found["roc_auc_ovr_weighted"] = (aucs * positives).sum(axis=1) / rows
            if "average_precision" in self.names:
                found["average_precision"] = _average_precision(*curves[-1])
        if self.inputs.proba is not None:
            found["neg_log_loss"] = -(weights @ self.log_loss) / rows
            found["neg_brier_score"] = -(weights @ self.brier) / rows  # binary only
        return found


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a whole number >= 1; got {value!r}")


# -- public functions -------------------------------------------------------------------------


def compute_metrics(
    task: Task | str,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    y_proba: npt.ArrayLike | None = None,
    *,
    classes: npt.ArrayLike | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Score predictions with scikit-learn scorer names (greater is always better).

    Each value equals ``sklearn.metrics.get_scorer(name)(model, X, y)`` for a model whose
    ``predict(X)`` is ``y_pred`` and ``predict_proba(X)`` is ``y_proba``: losses are negated
    (``neg_log_loss`` is minus the log loss). ``precision``, ``recall`` and ``f1`` of a binary
    task are those of the positive class, the last of ``classes`` (for 0/1 labels: 1).

    Undefined values are NaN: ``roc_auc`` without both classes in ``y_true``,
    ``roc_auc_ovr`` without every class, ``average_precision`` without positives, ``r2`` of
    one row. Probability metrics are left out of the result when ``y_proba`` is None.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: the true targets.
        y_pred: the predictions (``model.predict(X)``).
        y_proba: for classification, ``model.predict_proba(X)`` (columns in ``classes``
            order); for binary also just the probability of the positive class.
        classes: the class labels in ``y_proba``'s column order (the model's ``classes_``);
            default: the sorted labels of ``y_true`` and ``y_pred``. Pass it when scoring a
            part of the data that may lack a class.
        metrics: scorer names to compute; default all of :func:`scorer_names` (task).

    Returns:
        ``{name: value}`` in the order of ``metrics``.

    Raises:
        InvalidInputError: unknown or unfitting metric names, mismatched lengths, missing
            values, labels outside ``classes``, or ``y_proba`` that are not probabilities.

    Example::

        >>> scores = compute_metrics("binary", [0, 1, 1, 0], [0, 1, 0, 0], [0.2, 0.9, 0.4, 0.3])
        >>> scores["accuracy"], scores["recall"], scores["roc_auc"]
        (0.75, 0.5, 1.0)
        >>> compute_metrics("regression", [1.0, 2.0], [1.5, 2.0], metrics=["r2", "rmse"])
        Traceback (most recent call last):
        ...
        shipyard.core.errors.InvalidInputError: unknown metric 'rmse' (did you mean ...
    """
    inputs = _prepare(task, y_true, y_pred, y_proba, classes)
    names = _resolve_metrics(inputs.task, metrics, has_proba=inputs.proba is not None)
    values = _Kernel(inputs, names)(np.ones((1, len(inputs.true))))
    return {name: float(value[0]) + 0.0 for name, value in values.items()}


def metrics_by_slice(
    task: Task | str,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    y_proba: npt.ArrayLike | None,
    slices: npt.ArrayLike,
    *,
    classes: npt.ArrayLike | None = None,
    metrics: Sequence[str] | None = None,
    min_rows: int = 1,
) -> pd.DataFrame:
    """The metrics of each slice of the rows (say each region), to find where a model fails.

    Classes default to those of all rows, so a slice that lacks a class is still scored
    against every class (its ``roc_auc`` may then be NaN).

    Args:
        task, y_true, y_pred, y_proba, classes, metrics: as in :func:`compute_metrics`.
        slices: one slice value per row (array or Series aligned with ``y_true``); missing
            values form a slice of their own.
        min_rows: slices with fewer rows are listed with NaN metrics.

    Returns:
        One row per slice value, sorted by value: columns ``slice``, ``n`` (rows) and one per
        metric.

    Raises:
        InvalidInputError: as :func:`compute_metrics`, or ``slices`` of another length.

    Example::

        >>> table = metrics_by_slice(
        ...     "binary", [0, 1, 1, 0], [0, 1, 0, 0], None, ["north", "north", "south", "south"],
        ...     metrics=["accuracy"],
        ... )
        >>> table.to_dict("records")
        [{'slice': 'north', 'n': 2, 'accuracy': 1.0}, {'slice': 'south', 'n': 2, 'accuracy': 0.5}]
    """
    inputs = _prepare(task, y_true, y_pred, y_proba, classes)
    names = _resolve_metrics(inputs.task, metrics, has_proba=inputs.proba is not None)
    _check_count("min_rows", min_rows)
    keys = _values(slices, "slices")
    if len(keys) != len(inputs.true):
        raise InvalidInputError(
            f"slices has {len(keys)} values but y_true has {len(inputs.true)}; pass one slice "
            "value per row"
        )
    try:
        codes, uniques = pd.factorize(keys, sort=True, use_na_sentinel=False)
    except TypeError:  # values of mixed types: keep first-seen order
        codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    groups = _Groups.of(codes)
    bounds = [*groups.starts.tolist(), len(codes)]
    records = []
    for j, code in enumerate(groups.keys.tolist()):
        rows = np.sort(groups.order[bounds[j] : bounds[j + 1]])
        record: dict[str, Any] = {"slice": uniques[code], "n": len(rows)}
        if len(rows) >= min_rows:
            values = _Kernel(inputs.take(rows), names)(np.ones((1, len(rows))))
            record |= {name: float(value[0]) + 0.0 for name, value in values.items()}
        else:
            record |= dict.fromkeys(names, math.nan)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=["slice", "n", *names])


def bootstrap_ci(
    task: Task | str,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    y_proba: npt.ArrayLike | None = None,
    *,
    metrics: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    classes: npt.ArrayLike | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals of metrics: how much they would vary by chance.

    Resample ``b`` scores the rows ``numpy.random.default_rng(seed).integers(0, n, (n_resamples,
    n))[b]`` (drawn with replacement); the interval runs between the ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` quantiles (numpy's linear interpolation) of the resampled
    values. Resamples where a metric is undefined (NaN, e.g. ``roc_auc`` of a resample with one
    class) are left out; a metric undefined in every resample gets ``(nan, nan)``. The same
    inputs and seed give the same intervals.

    Args:
        task, y_true, y_pred, y_proba, classes, metrics: as in :func:`compute_metrics`.
        n_resamples: how many resamples.
        confidence: the interval's coverage, between 0 and 1.
        seed: seeds the resampling.

    Returns:
        ``{name: (low, high)}`` in the scorer convention (``low <= high``).

    Raises:
        InvalidInputError: as :func:`compute_metrics`; bad ``n_resamples`` or ``confidence``.

    Example::

        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 500)
        >>> pred = np.where(rng.random(500) < 0.8, y, 1 - y)
        >>> low, high = bootstrap_ci("binary", y, pred, metrics=["accuracy"])["accuracy"]
        >>> bool(low < compute_metrics("binary", y, pred)["accuracy"] < high), round(high - low, 2)
        (True, 0.07)
    """
    _check_count("n_resamples", n_resamples)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidInputError(f"confidence must be a number such as 0.95; got {confidence!r}")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be between 0 and 1 (0.95); got {confidence}")
    inputs = _prepare(task, y_true, y_pred, y_proba, classes)
    names = _resolve_metrics(inputs.task, metrics, has_proba=inputs.proba is not None)
    kernel = _Kernel(inputs, names)
    n = len(inputs.true)
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CELLS // n)
    found: dict[str, list[FloatArray]] = {name: [] for name in names}
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        drawn = rng.integers(0, n, size=(size, n))
        cells = (np.arange(size)[:, None] * n + drawn).ravel()
        weights = np.bincount(cells, minlength=size * n).reshape(size, n).astype(np.float64)
        for name, values in kernel(weights).items():
            found[name].append(values)
    tail = (1 - confidence) / 2 * 100
    intervals = {}
    for name, parts in found.items():
        values = np.concatenate(parts)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            intervals[name] = (math.nan, math.nan)
            continue
        low, high = np.percentile(values, [tail, 100 - tail])
        intervals[name] = (float(low) + 0.0, float(high) + 0.0)  # no -0.0
    return intervals


@dataclass(frozen=True, eq=False)
class ConfusionMatrix:
    """Counts of (true class, predicted class) pairs.

    Attributes:
        classes: the class labels, in row and column order.
        counts: ``counts[i, j]`` rows of true class ``classes[i]`` predicted as ``classes[j]``
            (a read-only 2-D int64 array).
    """

    classes: tuple[Any, ...]
    counts: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        classes, counts = tuple(self.classes), np.array(self.counts, dtype=np.int64)
        if counts.shape != (len(classes),) * 2:
            raise InvalidInputError(f"{len(classes)} classes need {len(classes)}x{len(classes)} "
                                    f"counts; got shape {counts.shape}")  # fmt: skip
        counts.setflags(write=False)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "counts", counts)

    def normalized(self) -> FloatArray:
        """Each row divided by its total: the share of each true class predicted as each class.

        A class with no rows gets a row of zeros (as scikit-learn's ``normalize="true"``).
        """
        return _div(self.counts, self.counts.sum(axis=1, keepdims=True), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"classes": [...], "counts": [[...]], "normalized": [[...]]}``."""
        return {
            "classes": [_json_scalar(label) for label in self.classes],
            "counts": self.counts.tolist(),
            "normalized": self.normalized().tolist(),
        }


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def confusion(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: npt.ArrayLike | None = None
) -> ConfusionMatrix:
    """The confusion matrix: rows are true classes, columns predicted classes.

    Args:
        y_true: the true labels.
        y_pred: the predicted labels.
        classes: row and column order (the model's ``classes_``); default the sorted labels of
            ``y_true`` and ``y_pred``.

    Returns:
        A :class:`ConfusionMatrix`.

    Raises:
        InvalidInputError: mismatched lengths, missing values, or labels outside ``classes``.

    Example::

        >>> matrix = confusion(["cat", "dog", "dog"], ["cat", "cat", "dog"])
        >>> matrix.classes, matrix.counts.tolist(), matrix.normalized().tolist()
        (('cat', 'dog'), [[1, 0], [1, 1]], [[1.0, 0.0], [0.5, 0.5]])
    """
    true, pred = _paired(y_true, y_pred)
    found, true_codes, pred_codes = _label_codes(true, pred, classes)
    k = len(found)
    counts = np.bincount(true_codes * k + pred_codes, minlength=k * k).reshape(k, k)
    return ConfusionMatrix(found, counts)


def per_class_metrics(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: npt.ArrayLike | None = None
) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class (0 where undefined).

    Args:
        y_true: the true labels.
        y_pred: the predicted labels.
        classes: the classes to list, in order; default the sorted labels of ``y_true`` and
            ``y_pred``.

    Returns:
        One row per class: columns ``class``, ``precision``, ``recall``, ``f1`` and
        ``support`` (rows of that class in ``y_true``).

    Raises:
        InvalidInputError: as :func:`confusion`.

    Example::

        >>> per_class_metrics(["a", "b", "b"], ["a", "a", "b"]).to_dict("records")[0]
        {'class': 'a', 'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    """
    matrix = confusion(y_true, y_pred, classes)
    counts = matrix.counts
    hits = np.diagonal(counts)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    return pd.DataFrame(
        {
            "class": list(matrix.classes),
            "precision": _div(hits, predicted, 0.0),
            "recall": _div(hits, support, 0.0),
            "f1": _div(2 * hits, support + predicted, 0.0),
            "support": support.astype(np.int64),
        }
    )
