"""Drift reports: ad hoc between two tables (:func:`drift_report`), or a monitor's period
(:func:`build_report`), as HTML (self-contained) or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import Alert, Monitor, MonitorWindow
from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.drift import ColumnDrift, DriftDetector, DriftResult
from shipyard.monitoring.monitor import (
    MonitorContext,
    MonitorSpec,
    parse_duration,
    prediction_series,
    reference_state,
)
from shipyard.monitoring.prediction_log import read_predictions
from shipyard.monitoring.quality import Expectations, QualityResult, check_quality
from shipyard.monitoring.report_html import render_monitor_report, report_json
from shipyard.store.db import now_ms

if TYPE_CHECKING:
    import pandas as pd

_PERF = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
         "rmse", "mae", "r2", "mape")  # fmt: skip


@dataclass(frozen=True)
class DriftReport:
    """Feature drift, target and prediction drift, and data quality of ``current``
    against ``reference``."""

    data: DriftResult
    target: ColumnDrift | None
    prediction: ColumnDrift | None
    quality: QualityResult
    reference: pd.DataFrame = field(repr=False)
    current: pd.DataFrame = field(repr=False)

    @property
    def drifted_columns(self) -> list[str]:
        return self.data.drifted_columns

    def to_frame(self) -> pd.DataFrame:
        """One row per column (features, then the target and prediction when given)."""
        import pandas as pd

        frame = self.data.to_frame()
        extra = [c for c in (self.target, self.prediction) if c is not None]
        if extra:
            more = DriftResult(columns=tuple(extra), drift_share=0.0, dataset_drift=False,
                               threshold_share=self.data.threshold_share, n_reference=0,
                               n_current=0, correction="none",
                               alpha=self.data.alpha).to_frame()  # fmt: skip
            frame = pd.concat([frame, more], ignore_index=True)
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data.to_dict(),
            "target": _column_dict(self.target), "prediction": _column_dict(self.prediction),
            "quality": self.quality.to_dict(),
        }  # fmt: skip

    def html(self, *, title: str = "drift report") -> str:
        """A self-contained HTML page (no network needed to view it)."""
        monitor = Monitor(
            name=title, model="-", alias="-", reference="reference", window_s=1, schedule=None,
            spec={}, created_at=now_ms(), created_by="", updated_at=now_ms(),
        )  # fmt: skip
        import pandas as pd

        return render_monitor_report(
            monitor=monitor, windows=(), history=_empty_history(), drift=self.to_frame(),
            quality=self.quality.to_frame(), reference=self.reference, current=self.current,
            alerts=(), performance=None, validation=None,
            period=f"{len(self.reference)} reference rows, {len(self.current)} current rows",
        ) if isinstance(self.reference, pd.DataFrame) else ""  # fmt: skip


def _column_dict(column: ColumnDrift | None) -> dict[str, Any] | None:
    if column is None:
        return None
    result = DriftResult(columns=(column,), drift_share=0.0, dataset_drift=False,
                         threshold_share=1.0, n_reference=0, n_current=0, correction="none",
                         alpha=0.05)  # fmt: skip
    return dict(result.to_dict()["columns"][0])


def _empty_history() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"start": pd.Series([], dtype="datetime64[ns, UTC]"),
                         "column": pd.Series([], dtype=str), "name": pd.Series([], dtype=str),
                         "value": pd.Series([], dtype=float)})  # fmt: skip


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    target: str | None = None,
    prediction: str | None = None,
    columns: Sequence[str] | None = None,
    method: str | dict[str, str] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    drift_share: float = 0.5,
) -> DriftReport:
    """Compare ``current`` with ``reference``: every feature column's drift (the tests
    corrected for multiple testing), the ``target`` and ``prediction`` columns' drift
    (tested on their own), and data quality against the reference's expectations.

    Example::

        report = sy.monitoring.drift_report(train_df, live_df, target="churn",
                                            prediction="pred")
        report.drifted_columns      # ["income", "plan"]
        Path("drift.html").write_text(report.html())
    """
    for name, role in ((target, "target"), (prediction, "prediction")):
        if name is not None and name not in reference.columns:
            raise InvalidInputError(f"{role} column {name!r} is not a column of the reference")
    special = {c for c in (target, prediction) if c is not None}
    features = list(columns) if columns is not None else [
        str(c) for c in reference.columns if c not in special
    ]  # fmt: skip
    data = DriftDetector(method=method, alpha=alpha, correction=correction,
                         drift_share=drift_share).fit(reference[features]).test(
                             current[features] if set(features) <= set(current.columns)
                             else current)  # fmt: skip

    def single(name: str | None) -> ColumnDrift | None:
        if name is None or name not in current.columns:
            return None
        return DriftDetector(alpha=alpha).fit(reference[[name]]).test(current[[name]]).columns[0]

    quality = check_quality(current, Expectations.from_frame(reference[features]))
    return DriftReport(data, single(target), single(prediction), quality,
                       reference[features], current)  # fmt: skip


@dataclass(frozen=True)
class MonitorReport:
    """A monitor's report for a period: what :func:`build_report` gathered."""

    monitor: Monitor
    period: str
    windows: Sequence[MonitorWindow]
    history: pd.DataFrame
    drift: DriftResult | None
    quality: QualityResult | None
    reference: pd.DataFrame
    current: pd.DataFrame
    alerts: Sequence[Alert]
    performance: pd.DataFrame | None
    validation: dict[str, float]

    def html(self) -> str:
        return render_monitor_report(
            monitor=self.monitor, windows=self.windows, history=self.history,
            drift=self.drift.to_frame() if self.drift is not None else None,
            quality=self.quality.to_frame() if self.quality is not None else None,
            reference=self.reference, current=self.current, alerts=self.alerts,
            performance=self.performance, validation=self.validation, period=self.period,
        )  # fmt: skip

    def json(self) -> dict[str, Any]:
        return report_json(
            monitor=self.monitor, windows=self.windows, history=self.history,
            drift=self.drift.to_frame() if self.drift is not None else None,
            quality=self.quality.to_frame() if self.quality is not None else None,
            alerts=self.alerts, performance=self.performance, validation=self.validation,
            period=self.period,
        )  # fmt: skip


def build_report(ctx: MonitorContext, name: str, *, last: str = "7d") -> MonitorReport:
    """Everything the report of monitor ``name`` over the ``last`` period shows: the
    stored windows and their figures, and drift and quality of the whole period's traffic
    against the reference (recomputed here, so the distribution overlays match)."""
    import pandas as pd

    monitor = ctx.store.get_monitor(name)
    spec = MonitorSpec.from_dict(monitor.spec)
    since = now_ms() - parse_duration(last, what="--last") * 1000
    windows = ctx.store.windows(name, since_ms=since)
    rows = ctx.store.history(name, since_ms=since)
    history = pd.DataFrame(rows, columns=["start", "column", "name", "value"])
    history["start"] = pd.to_datetime(history["start"], unit="ms", utc=True)
    history["value"] = history["value"].astype(float)
    ref = reference_state(ctx, monitor, spec)
    features = list(spec.features)
    traffic = read_predictions(ctx.log_root, monitor.model, since_ms=since)
    reference = ref.frame[features].copy()
    drift = quality = None
    if len(traffic):
        current = traffic.reindex(columns=features)
        if len(current) >= spec.min_rows:
            drift = ref.detector.test(current)
        quality = check_quality(current, ref.expectations)
        if ref.reference_predictions is not None and "sy_prediction" in traffic:
            reference["prediction"] = ref.reference_predictions.reindex(reference.index)
            current["prediction"] = prediction_series(traffic["sy_prediction"], ref.task)
    else:
        current = reference.iloc[:0]
    perf_rows = []
    for w in windows:
        perf = dict(w.summary.get("performance") or {})
        perf_rows.append({
            "start": pd.Timestamp(w.start_ms, unit="ms", tz="UTC"), "n_predictions": w.n_rows,
            "n_labelled": w.n_labelled, "label_coverage": w.n_labelled / max(w.n_rows, 1),
            "status": "ok" if perf else "waiting_for_labels",
            **{k: v for k, v in perf.items() if k in _PERF},
        })  # fmt: skip
    performance = pd.DataFrame(perf_rows) if perf_rows else None
    alerts = [a for a in ctx.store.list_alerts(monitor=name)
              if a.status != "resolved" or (a.resolved_at or 0) >= since]  # fmt: skip
    return MonitorReport(
        monitor=monitor, period=f"last {last}", windows=windows, history=history, drift=drift,
        quality=quality, reference=reference, current=current, alerts=alerts,
        performance=performance, validation=dict(ref.validation),
    )  # fmt: skip
