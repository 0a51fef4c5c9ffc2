"""Model performance on live traffic, once ground truth (feedback) arrives.

The prediction log holds what a model predicted (``sy_prediction``, and one
``sy_proba_<class>`` per class for a classifier); feedback files hold the true labels
sent later (``sy_label``), keyed by request id and row. :func:`join_feedback` puts the
two side by side, :func:`performance_metrics` scores the labelled rows with
scikit-learn's metrics, :func:`performance_by_window` does so per time window, and
:func:`compare_with_validation` sets live metrics beside the ones measured at
validation time.

Windows are aligned to the Unix epoch and keyed by the time of the *prediction*, not
of the label: a label that arrives a day late is credited to the window of its
prediction, so recomputing a window later (with more feedback) updates it.

Labels and predictions are compared as the same kind of value: when their dtypes
differ (a label sent as ``"1"`` for a prediction ``1``), both are read as numbers when
every value is one, otherwise both as text (a whole float written as an integer).

Example:
    >>> import pandas as pd
    >>> preds = pd.DataFrame({"sy_request_id": ["a", "a", "b"], "sy_row": [0, 1, 0],
    ...                       "sy_prediction": [1, 0, 1]})
    >>> feedback = pd.DataFrame({"sy_request_id": ["a", "a"], "sy_row": [0, 1],
    ...                          "sy_label": ["1", "1"]})
    >>> joined = join_feedback(preds, feedback)
    >>> m = performance_metrics(joined, task="binary")
    >>> m["n_labelled"], m["accuracy"]
    (2.0, 0.5)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from shipyard.core.errors import InvalidInputError, SchemaMismatchError
from shipyard.core.plain import jsonable

logger = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "regression")
"""The tasks :func:`performance_metrics` knows."""

LOWER_IS_BETTER = frozenset({"rmse", "mae", "mape", "mse", "log_loss", "brier_score"})
"""Metrics where a smaller value is better (every other metric: larger is better)."""

WINDOW_STATUSES = ("ok", "waiting_for_labels", "no_predictions")
"""What :attr:`WindowPerformance.status` can be."""

MAX_CLASSES = 20
""":func:`infer_task`: whole numbers with more distinct values than this are a regression."""

MAX_WINDOWS = 100_000
""":func:`performance_by_window` refuses to produce more windows than this."""

PROBA_PREFIX = "sy_proba_"
_KEYS = ["sy_request_id", "sy_row"]
_EPOCH = pd.Timestamp(0, tz="UTC")


# --------------------------------------------------------------------------------------
# joining feedback


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Put the true labels next to the logged predictions they belong to.

    A left join on ``(sy_request_id, sy_row)``: every prediction row stays, in order and
    with its index; it gains ``sy_label`` (missing where no label came yet) and
    ``sy_label_time`` (when the label was logged). When a row got feedback more than
    once, the latest ``sy_time`` wins (equal times: the later record). A ``sy_label``
    already in ``predictions`` is replaced.

    Args:
        predictions: Rows of the prediction log.
        feedback: Rows of the feedback log (``sy_request_id``, ``sy_row``, ``sy_time``,
            ``sy_label``); empty, or without those columns, means no labels yet.

    Returns:
        A new frame: ``predictions`` plus ``sy_label`` and ``sy_label_time``.

    Raises:
        InvalidInputError: An argument is not a DataFrame.
        SchemaMismatchError: ``predictions`` has rows but no ``sy_request_id``/``sy_row``.

    Example:
        >>> import pandas as pd
        >>> p = pd.DataFrame({"sy_request_id": ["r1"], "sy_row": [0], "sy_prediction": [3]})
        >>> f = pd.DataFrame({"sy_request_id": ["r1", "r1"], "sy_row": [0, 0],
        ...                   "sy_time": pd.to_datetime([2, 1], unit="s", utc=True),
        ...                   "sy_label": [5, 4]})
        >>> join_feedback(p, f)["sy_label"].tolist()
        [5]
    """
    for name, frame in (("predictions", predictions), ("feedback", feedback)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(
                f"{name} must be a pandas DataFrame, got {type(frame).__name__}"
            )
    out = predictions.drop(columns=[c for c in ("sy_label", "sy_label_time") if c in predictions])
    missing = [k for k in _KEYS if k not in out.columns]
    if missing and len(out):
        raise SchemaMismatchError(
            f"predictions lack the column(s) {missing}; pass rows of the prediction log "
            "(read_predictions), which have sy_request_id and sy_row",
            details={"missing": missing},
        )
    usable = all(c in feedback.columns for c in [*_KEYS, "sy_label"]) and len(feedback) > 0
    if missing or not usable or len(out) == 0:
        return out.assign(
            sy_label=pd.Series(np.nan, index=out.index, dtype=object if missing else float),
            sy_label_time=pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]"),
        )
    labels = feedback[[*_KEYS, "sy_label"]].copy()
    if "sy_time" in feedback.columns:
        labels["sy_label_time"] = pd.to_datetime(feedback["sy_time"], utc=True)
        labels = labels.sort_values("sy_label_time", kind="stable")
    else:
        labels["sy_label_time"] = pd.Series(pd.NaT, index=labels.index, dtype="datetime64[ns, UTC]")
    labels = labels.drop_duplicates(_KEYS, keep="last")
    left = out
    if not _text_like(out["sy_request_id"]):
        left = out.assign(sy_request_id=out["sy_request_id"].astype(str))
    labels["sy_request_id"] = labels["sy_request_id"].astype(left["sy_request_id"].dtype)
    rows = pd.to_numeric(labels["sy_row"], errors="coerce")
    if pdt.is_integer_dtype(left["sy_row"].dtype) and rows.notna().all():
        rows = rows.astype(left["sy_row"].dtype)
    labels["sy_row"] = rows
    joined = left.merge(labels, on=_KEYS, how="left", validate="many_to_one", sort=False)
    joined.index = out.index
    if left is not out:
        joined["sy_request_id"] = out["sy_request_id"]
    return joined


def _text_like(series: pd.Series) -> bool:
    return pdt.is_object_dtype(series.dtype) or isinstance(series.dtype, pd.StringDtype)


# --------------------------------------------------------------------------------------
# labels and predictions as comparable values


def _align(labels: pd.Series, predictions: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both series as one kind of value (missing values stay missing)."""
    numeric = [
        pdt.is_numeric_dtype(s.dtype) or pdt.is_bool_dtype(s.dtype) for s in (labels, predictions)
    ]
    if all(numeric):
        if labels.dtype == predictions.dtype:
            return labels, predictions
        return labels.astype(float), predictions.astype(float)
    if labels.dtype == predictions.dtype and not pdt.is_object_dtype(labels.dtype):
        return labels, predictions
    as_numbers = []
    for series, is_numeric in zip((labels, predictions), numeric, strict=True):
        if is_numeric:
            as_numbers.append(series.astype(float))
            continue
        if pdt.infer_dtype(series, skipna=True) in ("boolean", "mixed"):
            break  # True/False are not read as 1/0 unless both sides are boolean
        coerced = pd.to_numeric(series.astype(object), errors="coerce")
        if int(coerced.notna().sum()) != int(series.notna().sum()):
            break
        as_numbers.append(coerced.astype(float))
    if len(as_numbers) == 2:
        return as_numbers[0], as_numbers[1]
    return _as_text(labels), _as_text(predictions)


def _as_text(series: pd.Series) -> pd.Series:
    """Values as text (object dtype); a whole float reads as an integer; NaN stays NaN."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = np.asarray([_key(v) for v in uniques], dtype=object)  # distinct values only
    out = np.full(len(series), np.nan, dtype=object)
    present = codes >= 0
    out[present] = text[codes[present]]
    return pd.Series(out, index=series.index, dtype=object)


def _key(value: Any) -> str:
    """``value`` as text; a whole float as an integer (``1.0`` -> ``"1"``)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _in_domain(value: Any, like: pd.Series) -> Any:
    """``value`` (a class label) converted to the kind of values in ``like``, or None."""
    dtype = like.dtype
    if pdt.is_bool_dtype(dtype):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        return {"True": True, "False": False}.get(_key(value))
    if pdt.is_numeric_dtype(dtype):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if pdt.is_integer_dtype(dtype) and number.is_integer():
            return int(number)
        return number
    if pdt.is_object_dtype(dtype) and pdt.infer_dtype(like, skipna=True) != "string":
        return value  # mixed values: leave the label as given
    return _key(value)


def _sorted(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=_key)


def _proba_columns(frame: pd.DataFrame) -> dict[str, str]:
    """``sy_proba_<class>`` columns by the class' text (whole floats as integers)."""
    out: dict[str, str] = {}
    for column in frame.columns:
        name = str(column)
        if not name.startswith(PROBA_PREFIX):
            continue
        suffix = name[len(PROBA_PREFIX) :]
        out.setdefault(suffix, name)
        with contextlib.suppress(ValueError):
            out.setdefault(_key(float(suffix)), name)
    return out


def _classes(
    frame: pd.DataFrame, y: pd.Series, p: pd.Series, classes: Sequence[Any] | None
) -> list[Any]:
    """The class labels, in the kind of values of ``y``: ``classes`` as given, or the sorted
    union of labels, predictions and the classes of the ``sy_proba_*`` columns."""
    if classes is not None:
        out = [_in_domain(c, y) for c in classes]
        bad = [c for c, o in zip(classes, out, strict=True) if o is None]
        if bad:
            raise InvalidInputError(
                f"classes {bad!r} do not match the kind of the labels ({y.dtype}); pass the "
                "model's classes_"
            )
        return out
    seen = set(pd.unique(y.dropna())) | set(pd.unique(p.dropna()))
    for suffix in (
        str(c)[len(PROBA_PREFIX) :] for c in frame.columns if str(c).startswith(PROBA_PREFIX)
    ):
        value = _in_domain(suffix, y)
        if value is not None:
            seen.add(value)
    return _sorted([v.item() if isinstance(v, np.generic) else v for v in seen])


# --------------------------------------------------------------------------------------
# metrics


def infer_task(labels: pd.Series, predictions: pd.Series) -> str:
    """Guess the task from labels and predictions: ``binary``, ``multiclass`` or ``regression``.

    Booleans and text are classes; numbers are a regression when any is not whole or
    when there are more than :data:`MAX_CLASSES` distinct values, classes otherwise.
    Two classes (or fewer) make ``binary``.

    Args:
        labels: True labels (missing values are ignored).
        predictions: Predictions.

    Returns:
        One of :data:`TASKS`.

    Raises:
        InvalidInputError: There is no value at all to look at.

    Example:
        >>> import pandas as pd
        >>> infer_task(pd.Series(["1", "0"]), pd.Series([1, 1])), infer_task(
        ...     pd.Series([1.5, 2.0]), pd.Series([1.4, 2.2]))
        ('binary', 'regression')
    """
    y, p = _align(pd.Series(labels), pd.Series(predictions))
    values = pd.concat([y.dropna(), p.dropna()], ignore_index=True)
    if values.empty:
        raise InvalidInputError(
            "cannot infer the task from no labels and no predictions; pass task= explicitly"
        )
    if pdt.is_numeric_dtype(values.dtype) and not pdt.is_bool_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float)
        if not np.all(np.isfinite(numbers) & (np.floor(numbers) == numbers)):
            return "regression"
        if len(np.unique(numbers)) > MAX_CLASSES:
            return "regression"
    return "binary" if values.nunique() <= 2 else "multiclass"


def performance_metrics(
    joined: pd.DataFrame, *, task: str, classes: Sequence[Any] | None = None
) -> dict[str, float]:
    """Score the labelled rows of a prediction log joined with its feedback.

    Classification gives ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``
    and ``f1``: for ``binary`` of the positive class (``classes[1]``, or the second of the
    sorted classes; the three are left out when only one class is known), for
    ``multiclass`` macro averages, also named ``precision_macro``, ``recall_macro`` and
    ``f1_macro``. With ``sy_proba_<class>`` columns and every class
    present among the labels it adds ``roc_auc`` (multiclass: one-vs-rest, macro) and
    ``log_loss`` (rows without probabilities are left out of those two). Regression
    gives ``rmse``, ``mae``, ``r2`` (from two rows) and ``mape`` (only when no label is
    0). Every result has ``n_labelled``.

    Args:
        joined: Rows of :func:`join_feedback` (``sy_prediction`` and ``sy_label``).
        task: One of :data:`TASKS`.
        classes: The model's classes (default: the sorted classes seen in labels,
            predictions and ``sy_proba_*`` column names).

    Returns:
        Metric name to value; ``{}`` when no row is labelled.

    Raises:
        InvalidInputError: ``task`` is unknown, a binary task sees more than two classes,
            or regression labels are not numbers.
        SchemaMismatchError: Rows without a ``sy_prediction`` or ``sy_label`` column.

    Example:
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"sy_prediction": [2.0, 3.0], "sy_label": [2.0, 5.0]})
        >>> performance_metrics(rows, task="regression")["mae"]
        1.0
    """
    task = _check_task(task)
    if not isinstance(joined, pd.DataFrame):
        raise InvalidInputError(f"joined must be a pandas DataFrame, got {type(joined).__name__}")
    if len(joined) == 0:
        return {}
    missing = [c for c in ("sy_prediction", "sy_label") if c not in joined.columns]
    if missing:
        raise SchemaMismatchError(
            f"the frame lacks {missing}; pass the prediction log joined with its feedback "
            "(join_feedback(predictions, feedback))",
            details={"missing": missing},
        )
    y, p = _align(joined["sy_label"], joined["sy_prediction"])
    return _metrics(joined, y, p, task=task, classes=classes)


def _check_task(task: object) -> str:
    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return str(task)


def _metrics(
    frame: pd.DataFrame, y: pd.Series, p: pd.Series, *, task: str, classes: Sequence[Any] | None
) -> dict[str, float]:
    labelled = (y.notna() & p.notna()).to_numpy()
    n = int(labelled.sum())
    if n == 0:
        return {}
    rows = frame[labelled]
    y, p = y[labelled], p[labelled]
    if task == "regression":
        out = _regression(y, p)
    else:
        out = _classification(rows, y, p, task=task, classes=_classes(frame, y, p, classes))
    out["n_labelled"] = float(n)
    return out


def _regression(y: pd.Series, p: pd.Series) -> dict[str, float]:
    from sklearn import metrics

    values = []
    for name, series in (("labels", y), ("predictions", p)):
        numbers = pd.to_numeric(series.astype(object), errors="coerce")
        if numbers.isna().any():
            example = series[numbers.isna()].iloc[0]
            raise InvalidInputError(
                f"task 'regression' needs numeric {name}, got {example!r}; pass "
                "task='binary' or 'multiclass' for classes"
            )
        values.append(numbers.to_numpy(dtype=float))
    true, pred = values
    out = {
        "rmse": float(math.sqrt(metrics.mean_squared_error(true, pred))),
        "mae": float(metrics.mean_absolute_error(true, pred)),
    }
    if len(true) >= 2:
        out["r2"] = float(metrics.r2_score(true, pred))
    if not np.any(true == 0):
        out["mape"] = float(metrics.mean_absolute_percentage_error(true, pred))
    return out


def _classification(
    rows: pd.DataFrame, y: pd.Series, p: pd.Series, *, task: str, classes: list[Any]
) -> dict[str, float]:
    from sklearn import metrics

    true, pred = y.to_numpy(dtype=object), p.to_numpy(dtype=object)
    if y.dtype == p.dtype and not pdt.is_object_dtype(y.dtype):
        true, pred = y.to_numpy(), p.to_numpy()
    out: dict[str, float] = {"accuracy": float(metrics.accuracy_score(true, pred))}
    with warnings.catch_warnings():  # classes missing from y_true or y_pred: a score of 0
        warnings.simplefilter("ignore", UserWarning)
        out["balanced_accuracy"] = float(metrics.balanced_accuracy_score(true, pred))
        if task == "binary":
            seen = {_key(v) for v in pd.unique(np.concatenate([true, pred]))}
            unknown = sorted(seen - {_key(c) for c in classes})
            if len(classes) > 2 or unknown:
                found = _sorted(classes) if len(classes) > 2 else unknown
                raise InvalidInputError(
                    f"task 'binary' but the labels and predictions hold classes beyond two "
                    f"({found[:5]!r}); pass task='multiclass', or the model's two classes"
                )
            if len(classes) < 2:  # which class is the positive one is unknown
                return out
            kw: dict[str, Any] = {"pos_label": classes[1], "average": "binary", "zero_division": 0}
            out["precision"] = float(metrics.precision_score(true, pred, **kw))
            out["recall"] = float(metrics.recall_score(true, pred, **kw))
            out["f1"] = float(metrics.f1_score(true, pred, **kw))
            out.update(_binary_proba(rows, true, classes[1]))
        else:
            for name, score in (
                ("precision", metrics.precision_score),
                ("recall", metrics.recall_score),
                ("f1", metrics.f1_score),
            ):
                value = float(score(true, pred, average="macro", zero_division=0))
                out[f"{name}_macro"] = value
                out[name] = value
            out.update(_multiclass_proba(rows, true, classes))
    return out


def _binary_proba(rows: pd.DataFrame, true: np.ndarray, positive: Any) -> dict[str, float]:
    from sklearn import metrics

    column = _proba_columns(rows).get(_key(positive))
    if column is None:
        return {}
    proba = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(proba)
    hits = (true == positive)[keep].astype(int)
    if len(np.unique(hits)) < 2:
        return {}
    return {
        "roc_auc": float(metrics.roc_auc_score(hits, proba[keep])),
        "log_loss": float(metrics.log_loss(hits, proba[keep], labels=[0, 1])),
    }


def _multiclass_proba(rows: pd.DataFrame, true: np.ndarray, classes: list[Any]) -> dict[str, float]:
    from sklearn import metrics

    columns = _proba_columns(rows)
    ordered = _sorted(classes)
    names = [columns.get(_key(c)) for c in ordered]
    if not names or any(n is None for n in names):
        return {}
    matrix = rows[[n for n in names if n is not None]].apply(pd.to_numeric, errors="coerce")
    proba = matrix.to_numpy(dtype=float)
    keep = np.isfinite(proba).all(axis=1)
    labels = true[keep]
    if {_key(v) for v in labels} != {_key(c) for c in ordered}:
        return {}  # a class without any label: roc_auc is undefined
    try:
        return {
            "roc_auc": float(
                metrics.roc_auc_score(
                    labels, proba[keep], multi_class="ovr", average="macro", labels=ordered
                )
            ),
            "log_loss": float(metrics.log_loss(labels, proba[keep], labels=ordered)),
        }
    except ValueError as exc:  # e.g. probabilities that do not sum to one
        logger.debug("probability metrics skipped: %s", exc)
        return {}


# --------------------------------------------------------------------------------------
# windows


@dataclass(frozen=True)
class WindowPerformance:
    """The performance of the predictions made in one time window ``[start, end)``.

    ``status`` is ``ok``; ``waiting_for_labels`` when fewer than ``min_labels`` rows are
    labelled or the label coverage is under ``min_coverage`` (``metrics`` then holds what
    the labels so far give, to be read with care); or ``no_predictions``.
    """

    start: datetime
    end: datetime
    n_predictions: int
    n_labelled: int
    label_coverage: float
    metrics: dict[str, float]
    status: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (times as ISO 8601 text, NaN as None)."""
        out = dataclasses.asdict(self)
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        return dict(jsonable(out))


def performance_by_window(
    predictions: pd.DataFrame,
    feedback: pd.DataFrame,
    *,
    window: timedelta,
    task: str,
    classes: Sequence[Any] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    min_labels: int = 30,
    min_coverage: float = 0.0,
) -> list[WindowPerformance]:
    """Performance per time window of prediction time, with the feedback known so far.

    Windows are ``[k * window, (k + 1) * window)`` since the Unix epoch (UTC), from the
    one holding ``start`` (default: the first prediction) to the one holding the last
    instant before ``end`` (default: the last prediction); windows without predictions in
    between are listed with status ``no_predictions``. Only predictions with ``start <=
    sy_time < end`` count. A label counts for the window of its prediction, however late
    it came. Naive datetimes are taken as UTC.

    Args:
        predictions: Rows of the prediction log (``sy_time`` and the ``sy_*`` keys).
        feedback: Rows of the feedback log (may be empty).
        window: Window length.
        task: One of :data:`TASKS`.
        classes: The model's classes (default: every class seen in the whole range).
        start: First instant to include.
        end: First instant to leave out.
        min_labels: Fewest labelled rows for a window to be ``ok``.
        min_coverage: Smallest share of labelled predictions for a window to be ``ok``.

    Returns:
        One :class:`WindowPerformance` per window, oldest first (``[]`` when there is no
        prediction and no ``start``/``end`` to span).

    Raises:
        InvalidInputError: A bad ``window``, ``task``, ``min_labels``, ``min_coverage``,
            ``start >= end``, or more than :data:`MAX_WINDOWS` windows.
        SchemaMismatchError: ``predictions`` has rows but no ``sy_time`` column.
    """
    task = _check_task(task)
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise InvalidInputError(f"window must be a positive timedelta, got {window!r}")
    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 0:
        raise InvalidInputError(f"min_labels must be a whole number >= 0, got {min_labels!r}")
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise InvalidInputError(f"min_coverage must be a share from 0 to 1, got {min_coverage!r}")
    lo, hi = _utc(start, "start"), _utc(end, "end")
    if lo is not None and hi is not None and lo >= hi:
        raise InvalidInputError(f"start ({lo}) must come before end ({hi})")
    if len(predictions) and "sy_time" not in predictions.columns:
        raise SchemaMismatchError(
            "predictions lack the column sy_time; pass rows of the prediction log",
            details={"missing": ["sy_time"]},
        )
    joined = join_feedback(predictions, feedback)
    step = pd.Timedelta(window)
    if len(joined):
        times = pd.to_datetime(joined["sy_time"], utc=True)
        keep = np.ones(len(joined), dtype=bool)
        if lo is not None:
            keep &= (times >= lo).to_numpy()
        if hi is not None:
            keep &= (times < hi).to_numpy()
        joined, times = joined[keep], times[keep]
    else:
        times = pd.Series([], dtype="datetime64[ns, UTC]")
    first = _bucket(lo, step) if lo is not None else None
    last = _bucket(hi - pd.Timedelta(1, "ns"), step) if hi is not None else None
    if len(times):
        first = first if first is not None else _bucket(times.min(), step)
        last = last if last is not None else _bucket(times.max(), step)
    if first is None or last is None:
        return []
    if last - first + 1 > MAX_WINDOWS:
        raise InvalidInputError(
            f"{last - first + 1:,} windows of {window} is more than {MAX_WINDOWS:,}; pass a "
            "longer window or a shorter start..end range"
        )
    y, p = _align(joined["sy_label"], joined["sy_prediction"]) if len(joined) else (None, None)
    if task != "regression" and y is not None and p is not None and classes is None:
        classes = _classes(joined, y, p, None)  # one positive class for every window
    buckets = ((times - _EPOCH) // step).to_numpy(dtype=np.int64)
    positions = pd.Series(np.arange(len(joined))).groupby(buckets).indices if len(joined) else {}
    out = []
    for k in range(first, last + 1):
        begin = (_EPOCH + k * step).to_pydatetime()
        where = positions.get(k)
        if where is None or y is None or p is None:
            out.append(WindowPerformance(begin, begin + window, 0, 0, 0.0, {}, "no_predictions"))
            continue
        rows, wy, wp = joined.iloc[where], y.iloc[where], p.iloc[where]
        n_labelled = int(wy.notna().sum())
        coverage = n_labelled / len(where)
        metrics = _metrics(rows, wy, wp, task=task, classes=classes)
        waiting = n_labelled < min_labels or coverage < min_coverage or not metrics
        status = "waiting_for_labels" if waiting else "ok"
        out.append(
            WindowPerformance(
                begin, begin + window, len(where), n_labelled, coverage, metrics, status
            )
        )
    return out


def _utc(value: datetime | None, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime or None, got {value!r}")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _bucket(when: pd.Timestamp, step: pd.Timedelta) -> int:
    return int((when - _EPOCH) // step)


# --------------------------------------------------------------------------------------
# live vs validation


def compare_with_validation(
    live: Mapping[str, float],
    validation: Mapping[str, float],
    *,
    higher_is_better: Mapping[str, bool] | None = None,
) -> dict[str, dict[str, float]]:
    """Set live metrics beside the validation metrics of the same model.

    For every metric in both (counts such as ``n_labelled`` left out): ``live``,
    ``validation``, ``change`` (live - validation), ``relative_change`` (change over
    ``|validation|``; NaN when validation is 0) and ``improvement`` (the change signed so
    that positive is better: :data:`LOWER_IS_BETTER` metrics are flipped).

    Args:
        live: Metrics on live traffic (e.g. from :func:`performance_metrics`).
        validation: Metrics measured at validation time.
        higher_is_better: Directions for metric names the default table gets wrong.

    Returns:
        Metric name to its comparison, in the order of ``live``.

    Example:
        >>> compare_with_validation({"rmse": 3.0}, {"rmse": 2.0})["rmse"]["improvement"]
        -1.0
    """
    directions = dict(higher_is_better or {})
    out: dict[str, dict[str, float]] = {}
    for name, value in live.items():
        if name not in validation or name.startswith("n_"):
            continue
        now, then = float(value), float(validation[name])
        change = now - then
        higher = directions.get(name, name not in LOWER_IS_BETTER)
        out[name] = {
            "live": now,
            "validation": then,
            "change": change,
            "relative_change": change / abs(then) if then != 0 else float("nan"),
            "improvement": change if higher else -change,
        }
    return out
