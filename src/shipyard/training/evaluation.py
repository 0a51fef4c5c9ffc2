"""Evaluating any fitted model on held-out data: metrics, plots, report, all tracked.

:func:`evaluate` takes any scikit-learn-compatible model (``predict``, and
``predict_proba`` for probability metrics) and a dataset version or DataFrame. It
computes the task's metrics (scikit-learn scorer names), bootstrap confidence
intervals, per-class metrics and the confusion matrix, metrics per slice, permutation
importance on the held-out rows, the plots, the guards' warnings and a
self-contained HTML report; with an active run it logs all of them there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError, InvalidStateError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.training.metrics import ConfusionMatrix
    from shipyard.training.plots import Plot

logger = logging.getLogger(__name__)

IMPORTANCE_ROWS = 2_000
IMPORTANCE_REPEATS = 5
MAIN_METRICS = {  # the metrics that get confidence intervals
    "binary": ("roc_auc", "accuracy", "balanced_accuracy", "f1", "average_precision",
               "neg_log_loss"),
    "multiclass": ("f1_macro", "accuracy", "balanced_accuracy", "roc_auc_ovr", "neg_log_loss"),
    "regression": ("neg_root_mean_squared_error", "neg_mean_absolute_error", "r2"),
}  # fmt: skip
BOOTSTRAP_CELLS = 20_000_000  # rows x resamples of the confidence intervals, at most


@dataclass(eq=False)
class EvaluationReport:
    """What :func:`evaluate` measured. ``metrics`` use scikit-learn scorer names
    (greater is better: losses are ``neg_*``)."""

    task: str
    data: str
    rows: int
    metrics: dict[str, float]
    confidence_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    confusion: ConfusionMatrix | None = None
    per_class: pd.DataFrame | None = None
    slices: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None
    shap: pd.DataFrame | None = None
    plots: list[Plot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    html: str = ""
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metrics, intervals, confusion matrix, tables as records, warnings."""

        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            if frame is None:
                return None
            return json.loads(frame.to_json(orient="records"))  # type: ignore[no-any-return]

        return {
            "task": self.task,
            "data": self.data,
            "rows": self.rows,
            "metrics": self.metrics,
            "confidence_intervals": {k: list(v) for k, v in self.confidence_intervals.items()},
            "confusion_matrix": None if self.confusion is None else self.confusion.to_dict(),
            "per_class": records(self.per_class),
            "slices": records(self.slices),
            "importance": records(self.importance),
            "shap": records(self.shap),
            "plots": [p.name for p in self.plots],
            "warnings": self.warnings,
            "run_id": self.run_id,
        }


def _features_for(model: Any, frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The columns the model was fitted on (``feature_names_in_``), else all but the target."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return frame.drop(columns=[target])
    missing = [str(n) for n in names if n not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"the data lacks column(s) the model was trained on: {', '.join(missing[:10])}"
        )
    return frame[list(names)]


def permutation_importance_frame(
    model: Any, X: pd.DataFrame, y: pd.Series, *, scoring: str, seed: int = 0
) -> pd.DataFrame:
    """Permutation importance on (at most 2,000 of) the held-out rows, most important first."""
    import pandas as pd
    from sklearn.inspection import permutation_importance

    if len(y) > IMPORTANCE_ROWS:
        rows = y.sample(IMPORTANCE_ROWS, random_state=seed).index
        X, y = X.loc[rows], y.loc[rows]
    result = permutation_importance(
        model, X, y, scoring=scoring, n_repeats=IMPORTANCE_REPEATS, random_state=seed
    )
    frame = pd.DataFrame(
        {
            "feature": [str(c) for c in X.columns],
            "importance": result.importances_mean,
            "std": result.importances_std,
        }
    )
    return frame.sort_values("importance", ascending=False, ignore_index=True)


SHAP_ROWS = 1_000


def shap_importance(model: Any, X: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame | None:
    """Mean absolute SHAP value per (preprocessed) feature for tree models, most first.

    None when ``shap`` (the ``explain`` extra) is not installed or the model is not a
    tree ensemble shap's TreeExplainer takes. Uses at most 1,000 rows.
    """
    import importlib.util

    import numpy as np
    import pandas as pd

    if importlib.util.find_spec("shap") is None:
        return None
    import shap

    steps = getattr(model, "steps", None)
    estimator = steps[-1][1] if steps else model
    rows = X.sample(min(SHAP_ROWS, len(X)), random_state=seed)
    features: Any = rows
    names = [str(c) for c in rows.columns]
    if steps and len(steps) > 1:
        prefix = model[:-1]
        features = prefix.transform(rows)
        if hasattr(prefix, "get_feature_names_out"):
            names = [str(n) for n in prefix.get_feature_names_out()]
    try:
        values = shap.TreeExplainer(estimator).shap_values(features)
    except Exception as exc:  # not a tree model shap knows: no SHAP values
        logger.info("no SHAP values for %s: %s", type(estimator).__name__, exc)
        return None
    array = np.abs(np.asarray(values, dtype=float))
    if array.ndim == 3:  # (rows, features, classes) or (classes, rows, features)
        array = array.mean(axis=2) if array.shape[1] == len(names) else array.mean(axis=0)
    mean = array.mean(axis=0)
    frame = pd.DataFrame({"feature": names[: len(mean)], "mean_abs_shap": mean})
    return frame.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def evaluate(
    model: Any,
    data: Any,
    target: str,
    *,
    task: str | None = None,
    slices: str | Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    prefix: str = "test_",
    bootstrap: int = 1000,
    importance: bool = True,
    plots: bool = True,
    seed: int = 0,
    train_data: pd.DataFrame | None = None,
    warnings: Sequence[str] = (),
    leaderboard: pd.DataFrame | None = None,
    extra_plots: Sequence[Plot] = (),
    log: bool = True,
) -> EvaluationReport:
    """Evaluate a fitted model on held-out data; log it to the active run if there is one.

    Args:
        model: any fitted model with ``predict`` (and ``predict_proba`` for ROC-AUC,
            log loss, Brier score and the curves).
        data: ``"customers@test"``, a DatasetVersion or a DataFrame holding ``target``.
        target: the target column.
        task: ``binary``, ``multiclass`` or ``regression`` (default: inferred).
        slices: column(s) to compute the metrics per value of (e.g. ``"region"``).
        metrics: scorer names to compute (default: all of the task's).
        prefix: prefix of the logged metric names (``test_roc_auc``...).
        bootstrap: resamples for the confidence intervals (0: none).
        importance: compute permutation importance on the held-out rows (and, for tree
            models with the ``explain`` extra installed, mean absolute SHAP values).
        plots: make the plots (needs ``shipyard[plots]``; skipped with a warning if missing).
        seed: for the bootstrap and the importance.
        train_data: the training features, to warn about test rows seen in training.
        warnings: warnings from training to carry into the report.
        leaderboard: the candidates (best first), shown in the report.
        extra_plots: more plots for the report (the trainer's learning curve).
        log: log to the active run (if any).

    Returns:
        The :class:`EvaluationReport` (its ``html`` is the self-contained report).

    Raises:
        InvalidInputError: the target or a slice column is missing, the task does not
            fit the target, or the model lacks columns it was trained on.

    Example::

        report = sy.evaluate(pipeline, "customers@test", "churn", slices="region")
        report.metrics["roc_auc"], report.confidence_intervals["roc_auc"]
    """
    import numpy as np

    import shipyard as sy
    from shipyard.training import metrics as m
    from shipyard.training.data_input import load_frame
    from shipyard.training.guards import evaluation_warnings

    frame, version, label = load_frame(data)
    if target not in frame.columns:
        raise InvalidInputError(
            f"target {target!r} is not a column of {label}; its columns are: "
            f"{', '.join(map(str, frame.columns[:30]))}"
        )
    slice_columns = [slices] if isinstance(slices, str) else list(slices or [])
    for column in slice_columns:
        if column not in frame.columns:
            raise InvalidInputError(f"slice column {column!r} is not a column of {label}")
    y = frame[target]
    chosen = _task_of(model, y, task, label)
    names = list(metrics) if metrics is not None else list(m.scorer_names(chosen))
    X = _features_for(model, frame, target)
    pred = model.predict(X)
    proba = None
    if chosen != "regression" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
    classes = None
    if chosen != "regression":
        fitted = getattr(model, "classes_", None)
        classes = list(fitted) if fitted is not None else sorted(np.unique(y).tolist())
    y_true = y.to_numpy()
    scores = m.compute_metrics(chosen, y_true, pred, proba, classes=classes, metrics=names)
    report = EvaluationReport(task=chosen, data=label, rows=len(y), metrics=scores)
    if bootstrap:
        main = [n for n in dict.fromkeys([m.DEFAULT_METRIC[chosen], *MAIN_METRICS[chosen]])
                if n in scores]  # fmt: skip
        # Cost grows with rows x resamples: fewer resamples (at least 200) for big test sets.
        resamples = min(bootstrap, max(200, BOOTSTRAP_CELLS // max(1, len(y))))
        report.confidence_intervals = m.bootstrap_ci(
            chosen, y_true, pred, proba, metrics=main, n_resamples=resamples, seed=seed,
            classes=classes,
        )  # fmt: skip
    if chosen != "regression" and classes is not None:
        report.confusion = m.confusion(y_true, pred, classes)
        report.per_class = m.per_class_metrics(y_true, pred, classes)
    if slice_columns:
        parts = frame[slice_columns].astype(object)
        key = parts.where(parts.notna(), "<missing>").astype(str).agg(" / ".join, axis=1)
        report.slices = m.metrics_by_slice(
            chosen, y_true, pred, proba, key.to_numpy(), classes=classes, metrics=names
        )
    if importance:
        scoring = m.DEFAULT_METRIC[chosen]
        if proba is None and chosen != "regression":
            scoring = "accuracy"  # the default needs probabilities
        report.importance = permutation_importance_frame(model, X, y, scoring=scoring, seed=seed)
        report.shap = shap_importance(model, X, seed=seed)
    report.warnings = [*warnings, *evaluation_warnings(X, y, task=chosen, train_data=train_data)]
    if plots:
        report.plots = _make_plots(
            chosen, y_true=y_true, pred=pred, proba=proba, classes=classes,
            importance=report.importance,
        ) + list(extra_plots)  # fmt: skip
    report.html = _render(report, model, label, leaderboard)
    run = sy.active_run() if log else None
    if run is not None:
        _log(report, prefix, version)
        report.run_id = run.run_id
    return report


def _task_of(model: Any, y: pd.Series, task: str | None, label: str) -> Any:
    """The task: the model's own when it says (a classifier's ``classes_``, a regressor),
    else ``task`` or inferred from ``y``; the test labels must be ones the model knows.

    Raises:
        InvalidInputError: missing target values, or labels the model never saw.
    """
    import numpy as np
    from sklearn.base import is_regressor

    from shipyard.training import metrics as m

    classes = getattr(model, "classes_", None)
    if classes is None or task == "regression" or is_regressor(model):
        return m.check_target(y, "regression" if is_regressor(model) else task or m.infer_task(y))
    missing = int(y.isna().sum())
    if missing:
        raise InvalidInputError(
            f"the target {y.name!r} of {label} has {missing} missing values; drop those rows "
            "to evaluate"
        )
    unseen = sorted(set(np.unique(y.to_numpy()).tolist()) - set(np.asarray(classes).tolist()))
    if unseen:
        raise InvalidInputError(
            f"{label} has target values the model was never trained on: {unseen[:10]}; the "
            f"model knows {list(classes)[:20]}"
        )
    return "binary" if len(classes) == 2 else "multiclass"


def _make_plots(
    task: str,
    *,
    y_true: Any,
    pred: Any,
    proba: Any,
    classes: list[Any] | None,
    importance: pd.DataFrame | None,
) -> list[Plot]:
    try:
        from shipyard.training.plots import feature_importance_plot, plots_for

        made = list(plots_for(task, y_true, pred, proba, classes=classes))
        if importance is not None and len(importance):
            made.append(
                feature_importance_plot(
                    importance["feature"].tolist(),
                    importance["importance"].to_numpy(),
                    importance["std"].to_numpy(),
                )
            )
        return made
    except (ImportError, InvalidStateError) as exc:  # the plots extra is missing
        logger.warning("no plots: %s", exc)
        return []


def _render(
    report: EvaluationReport, model: Any, label: str, leaderboard: pd.DataFrame | None
) -> str:
    from shipyard.training.report import render_evaluation_report

    steps = getattr(model, "steps", None)
    name = type(steps[-1][1] if steps else model).__name__
    kwargs: dict[str, Any] = {
        "title": f"Evaluation of {name} on {label}",
        "metrics": report.metrics,
        "confidence_intervals": report.confidence_intervals,
        "per_class": report.per_class,
        "slices": report.slices,
        "leaderboard": leaderboard,
        "warnings": report.warnings,
        "context": {"data": label, "rows": str(report.rows), "task": report.task, "model": name},
    }
    try:
        return render_evaluation_report(plots=report.plots, **kwargs)
    except InvalidStateError as exc:  # plots need the plots extra: the report without them
        logger.warning("report without plots: %s", exc)
        return render_evaluation_report(plots=[], **kwargs)


def _log(report: EvaluationReport, prefix: str, version: Any) -> None:
    import math

    import shipyard as sy

    tracker = sy.tracker()
    values = {f"{prefix}{k}": v for k, v in report.metrics.items() if math.isfinite(v)}
    for k, (low, high) in report.confidence_intervals.items():
        values[f"{prefix}{k}_ci_low"], values[f"{prefix}{k}_ci_high"] = low, high
    tracker.log_metrics(values)
    if version is not None:
        tracker.log_input(version, context=prefix.rstrip("_") or "evaluation")
    stem = prefix.rstrip("_") or "eval"
    tracker.log_dict(report.to_dict(), f"evaluation/{stem}.json")
    for plot in report.plots:
        try:
            tracker.log_bytes(plot.to_png(), f"evaluation/{stem}_{plot.name}.png")
        except Exception as exc:  # a plot that cannot render must not lose the run
            logger.warning("plot %s not saved: %s", plot.name, exc)
    if report.html:
        tracker.log_text(report.html, f"evaluation/{stem}_report.html")
    if report.importance is not None:
        top = report.importance.head(10)
        tracker.set_tags({"shipyard.top_features": ", ".join(top["feature"].astype(str))})
    if report.shap is not None:
        top = report.shap.head(10)
        tracker.set_tags({"shipyard.top_shap_features": ", ".join(top["feature"].astype(str))})
    if report.warnings:
        tracker.set_tags({"shipyard.warnings": " | ".join(report.warnings)})
