"""Monitors: a served model's logged traffic, window by window, against a reference dataset.

A monitor names a model alias (``churn@production``), a reference dataset version (the
training data, ``customers@3``), a window length and optionally a cron schedule. Each
evaluation (:func:`evaluate_monitor`):

1. reads the prediction log the server wrote since the last evaluated window (the
   last window is evaluated again: it may have been partial);
2. per window computes feature drift against the reference (:class:`DriftDetector`,
   multiple-testing corrected), prediction drift (the model's predictions on the
   reference against the logged ones), target drift and performance once feedback
   labels arrived (windows are keyed by prediction time, so labels that come late
   update the window of their prediction when it is evaluated again within
   ``label_horizon``), and data quality against the reference's expectations;
3. stores each window with its numbers (``shipyard monitor history``);
4. evaluates the alert rules on the newest window with enough rows, opens, continues
   or resolves alerts, and notifies.

Monitoring decides; it does not act. The alerts whose rule asks for an action
(``retrain``) come back in :attr:`MonitorRun.actions` for the orchestration layer
(:mod:`shipyard.pipelines`) to carry out.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import Alert, Monitor, MonitorWindow
from shipyard.core.errors import (
    InvalidInputError,
    InvalidStateError,
    SchemaMismatchError,
    ShipyardError,
)
from shipyard.monitoring.drift import DriftDetector, DriftResult
from shipyard.monitoring.notify import AlertEvent, LogNotifier, build_notifiers, dispatch
from shipyard.monitoring.performance import (
    compare_with_validation,
    join_feedback,
    performance_metrics,
)
from shipyard.monitoring.prediction_log import log_drops, read_predictions
from shipyard.monitoring.quality import Expectations, QualityResult, check_quality
from shipyard.monitoring.rules import (
    DEFAULT_RULES,
    Observations,
    RuleSet,
    evaluate_rules,
    parse_rules,
)
from shipyard.store.db import now_ms
from shipyard.store.monitor_store import AlertChanges, AlertCondition, SqlMonitorStore

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data._catalog import DataCatalog
    from shipyard.registry.registry import ModelRegistry

logger = logging.getLogger(__name__)

ON_DRIFT = ("none", "retrain")
DRIFT_METRICS = frozenset(
    {"drift_share", "drifted_columns", "dataset_drift", "prediction_drift", "drifted",
     "drift_distance", "prediction_drift_distance", "domain_auc"}
)  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float, *, what: str = "window") -> int:
    """Seconds in ``"15m"``, ``"1h"``, ``"7d"`` (or a number of seconds).

    Raises:
        InvalidInputError: not a positive duration.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise InvalidInputError(
                f"{what} {text!r} is not a duration: write a number and a unit s, m, h, d "
                "or w, e.g. '15m', '1h' or '7d'"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise InvalidInputError(f"{what} must be at least one second, got {text!r}")
    return int(seconds)


@dataclass(frozen=True)
class MonitorSpec:
    """What a monitor computes and how it reacts (stored as the monitor's ``spec``).

    Args:
        target: the label column of the reference (inferred when the reference has
            exactly one column besides the model's inputs).
        features: the columns to watch (default: the model signature's inputs).
        methods: per-column drift method overrides (see :class:`DriftDetector`).
        alpha: significance level of the drift tests.
        correction: multiple-testing correction across columns (``holm``, ``bh``,
            ``bonferroni``, ``none``).
        drift_share: share of drifted columns that counts as dataset drift.
        min_rows: a window with fewer rows is "not enough data".
        domain_classifier: also run the multivariate domain-classifier check.
        rules: alert rules as :func:`~shipyard.monitoring.rules.parse_rules` reads them
            (default: :data:`~shipyard.monitoring.rules.DEFAULT_RULES`).
        on_drift: ``retrain`` gives every drift rule the retrain action.
        retrain: how to retrain (``command``, ``models``, ``tune``, ``cv``,
            ``recent_rows``), read by the orchestration layer.
        label_horizon_s: how long after a window labels may still arrive.
        backfill_windows: most windows a first evaluation looks back over.
    """

    target: str | None = None
    features: tuple[str, ...] = ()
    methods: Mapping[str, str] = field(default_factory=dict)
    alpha: float = 0.05
    correction: str = "holm"
    drift_share: float = 0.5
    min_rows: int = 30
    domain_classifier: bool = False
    rules: Mapping[str, Any] = field(default_factory=dict)
    on_drift: str = "none"
    retrain: Mapping[str, Any] = field(default_factory=dict)
    label_horizon_s: int = 7 * 86400
    backfill_windows: int = 48

    def __post_init__(self) -> None:
        if self.on_drift not in ON_DRIFT:
            raise InvalidInputError(
                f"on_drift is one of {', '.join(ON_DRIFT)}, got {self.on_drift!r}"
            )
        if not 0 < self.alpha < 1:
            raise InvalidInputError(f"alpha must be between 0 and 1, got {self.alpha}")
        if not 0 < self.drift_share <= 1:
            raise InvalidInputError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if self.min_rows < 2:
            raise InvalidInputError(f"min_rows must be at least 2, got {self.min_rows}")
        if self.rules:
            parse_rules(dict(self.rules), origin="monitor rules")  # fails early

    def ruleset(self) -> RuleSet:
        """The rules in effect, with ``on_drift`` applied to every drift rule."""
        rules = parse_rules(dict(self.rules), origin="monitor rules") if self.rules else (
            DEFAULT_RULES
        )  # fmt: skip
        if self.on_drift == "none":
            return rules
        changed = tuple(
            replace(r, action=self.on_drift) if r.metric in DRIFT_METRICS else r
            for r in rules.rules
        )
        return replace(rules, rules=changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "features": list(self.features),
            "methods": dict(self.methods), "alpha": self.alpha,
            "correction": self.correction, "drift_share": self.drift_share,
            "min_rows": self.min_rows, "domain_classifier": self.domain_classifier,
            "rules": dict(self.rules), "on_drift": self.on_drift,
            "retrain": dict(self.retrain), "label_horizon_s": self.label_horizon_s,
            "backfill_windows": self.backfill_windows,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown monitor setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "features" in values:
            values["features"] = tuple(values["features"] or ())
        return cls(**values)


@dataclass(frozen=True)
class MonitorContext:
    """What an evaluation reads and writes: the monitor store, the registry (model
    versions and their signatures), the data catalog (the reference) and the folder the
    servers' prediction log is under."""

    store: SqlMonitorStore
    registry: ModelRegistry
    catalog: DataCatalog
    log_root: Path


@dataclass(frozen=True)
class WindowResult:
    """One evaluated window: its stored record and the results behind it."""

    window: MonitorWindow
    drift: DriftResult | None
    quality: QualityResult | None
    performance: Mapping[str, float]
    observations: Observations


@dataclass(frozen=True)
class MonitorRun:
    """What :func:`evaluate_monitor` did."""

    monitor: Monitor
    windows: tuple[WindowResult, ...]
    alerts: AlertChanges
    evaluated_window: WindowResult | None  # the window the rules looked at
    notifications: Mapping[int, Mapping[str, bool]] = field(default_factory=dict)

    @property
    def actions(self) -> list[Alert]:
        """Alerts opened now whose rule asks for an action."""
        return [a for a in self.alerts.opened if a.action != "none"]


# -- creating monitors ------------------------------------------------------------------


def create_monitor(
    ctx: MonitorContext,
    name: str,
    *,
    model: str,
    alias: str = "production",
    reference: str,
    window: str | int = "1h",
    schedule: str | None = None,
    spec: MonitorSpec | None = None,
    replace: bool = False,
) -> Monitor:
    """Check everything a monitor needs, then store it.

    Raises:
        NotFoundError: the model alias or the reference dataset does not exist.
        SchemaMismatchError: the reference lacks columns the model's signature needs.
        InvalidInputError: a bad window, target or rule.
    """
    spec = spec or MonitorSpec()
    window_s = parse_duration(window)
    version = ctx.registry.get_version(f"{model}@{alias}")
    dataset = ctx.catalog.get(reference)
    frame = dataset.to_pandas()
    inputs = _signature_inputs(version.signature)
    spec = _checked_spec(spec, frame, inputs, reference=dataset.ref, model=version.ref)
    return ctx.store.create_monitor(
        name, model=model, alias=alias, reference=dataset.ref, window_s=window_s,
        schedule=schedule, spec=spec.to_dict(), replace=replace,
    )  # fmt: skip


def _signature_inputs(signature: Mapping[str, Any] | None) -> list[str]:
    if not signature:
        return []
    return [str(c["name"]) for c in signature.get("inputs", ())]


def _checked_spec(
    spec: MonitorSpec, frame: pd.DataFrame, inputs: Sequence[str], *, reference: str, model: str
) -> MonitorSpec:
    columns = [str(c) for c in frame.columns]
    if inputs:
        missing = [c for c in inputs if c not in columns]
        if missing:
            raise SchemaMismatchError(
                f"reference {reference} lacks {len(missing)} column(s) of {model}'s signature: "
                f"{', '.join(missing[:10])}; pick the dataset version the model was trained "
                "on (its run's inputs: `shipyard lineage " + model + "`)",
                details={"missing": missing},
            )
    features = list(spec.features) or list(inputs)
    target = spec.target
    if target is None:
        rest = [c for c in columns if c not in features]
        if inputs and len(rest) == 1:
            target = rest[0]
    if target is not None and target not in columns:
        raise InvalidInputError(
            f"target {target!r} is not a column of {reference} (columns: {', '.join(columns[:12])})"
        )
    if not features:
        features = [c for c in columns if c != target]
    unknown = [c for c in features if c not in columns]
    if unknown:
        raise SchemaMismatchError(
            f"feature column(s) {', '.join(unknown)} are not in {reference}; "
            f"its columns: {', '.join(columns[:12])}"
        )
    for column in spec.methods:
        if column not in features:
            raise InvalidInputError(
                f"a drift method is set for {column!r}, which is not a watched column"
            )
    DriftDetector(method=dict(spec.methods) or None, alpha=spec.alpha,
                  correction=spec.correction).fit(frame[features].head(200))  # fmt: skip
    return replace(spec, features=tuple(features), target=target)


# -- the reference, prepared once per model version ---------------------------------------


@dataclass
class ReferenceState:
    """A monitor's reference, prepared once per model version (see :func:`reference_state`)."""

    frame: pd.DataFrame
    detector: DriftDetector
    expectations: Expectations
    task: str | None
    classes: list[Any] | None
    prediction_detector: DriftDetector | None
    target_detector: DriftDetector | None
    reference_predictions: pd.Series | None
    validation: Mapping[str, float]


_CACHE: OrderedDict[tuple[str, str, str, str], ReferenceState] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4
_REFERENCE_PREDICTION_ROWS = 50_000


def prediction_series(values: Any, task: str | None, *, index: Any = None) -> pd.Series:
    """Predictions or labels as one series to compare: class labels as text (a label sent
    back as ``"1"`` and a predicted ``1`` are the same class), numbers as they are."""
    import numpy as np
    import pandas as pd

    series = pd.Series(np.asarray(values), index=index)
    if task in ("binary", "multiclass"):
        if series.dtype.kind == "f":  # labels joined with gaps come back as floats: 1.0 -> 1
            known = series.dropna()
            if bool((known % 1 == 0).all()):
                series = series.astype("Int64")
        series = series.astype(str)
    return series.rename("prediction")


def _prediction_frame(values: Any, task: str | None) -> pd.DataFrame:
    return prediction_series(values, task).to_frame()


def reference_state(ctx: MonitorContext, monitor: Monitor, spec: MonitorSpec) -> ReferenceState:
    """The monitor's reference prepared for its current champion: the fitted drift
    detectors, quality expectations, the champion's predictions on the reference and its
    validation metrics (kept for the next evaluations of the same model version)."""
    from shipyard.registry.signature import Signature

    version = ctx.registry.get_version(f"{monitor.model}@{monitor.alias}")
    key = (monitor.reference, version.ref, version.meta_digest, repr(spec.to_dict()))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    frame = ctx.catalog.get(monitor.reference).to_pandas()
    features = list(spec.features)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            f"reference {monitor.reference} lacks watched column(s) {', '.join(missing)}; "
            f"recreate monitor {monitor.name!r} with --replace"
        )
    categorical = [c for c, kind in _signature_kinds(version.signature).items()
                   if kind == "categorical" and c in features]  # fmt: skip
    detector = DriftDetector(
        method=dict(spec.methods) or None, alpha=spec.alpha, correction=spec.correction,
        drift_share=spec.drift_share, min_rows=spec.min_rows, categorical=categorical or None,
    ).fit(frame[features])  # fmt: skip
    signature = Signature.from_dict(version.signature) if version.signature else None
    expectations = (
        Expectations.from_signature(signature, frame[features])
        if signature is not None else Expectations.from_frame(frame[features])
    )  # fmt: skip
    task, classes, ref_pred, pred_det = None, None, None, None
    try:
        model = ctx.registry.load(version)
        task = model.meta.task
        if task not in ("binary", "multiclass", "regression"):  # an older or custom model
            labels = model.classes_
            task = "regression" if labels is None else (
                "binary" if len(labels) == 2 else "multiclass"
            )  # fmt: skip
        sample = frame[features]
        if len(sample) > _REFERENCE_PREDICTION_ROWS:
            sample = sample.sample(_REFERENCE_PREDICTION_ROWS, random_state=0)
        ref_pred = prediction_series(model.predict(sample), task, index=sample.index)
        classes = model.classes_
        pred_det = DriftDetector(
            alpha=spec.alpha, min_rows=spec.min_rows,
            categorical=["prediction"] if task in ("binary", "multiclass") else None,
        ).fit(ref_pred.reset_index(drop=True).to_frame())  # fmt: skip
    except ShipyardError as exc:  # prediction drift is skipped, the rest still runs
        logger.warning("monitor %s: no prediction drift: %s", monitor.name, exc)
    target_det = None
    if spec.target is not None and spec.target in frame.columns:
        labels = _prediction_frame(frame[spec.target], task)
        target_det = DriftDetector(
            alpha=spec.alpha, min_rows=spec.min_rows,
            categorical=["prediction"] if task in ("binary", "multiclass") else None,
        ).fit(labels)  # fmt: skip
    made = ReferenceState(
        frame=frame, detector=detector, expectations=expectations, task=task, classes=classes,
        prediction_detector=pred_det, target_detector=target_det,
        reference_predictions=ref_pred, validation=_validation_metrics(version.metrics),
    )  # fmt: skip
    with _CACHE_LOCK:
        _CACHE[key] = made
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return made


def _signature_kinds(signature: Mapping[str, Any] | None) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for col in (signature or {}).get("inputs", ()):
        kinds[str(col["name"])] = "categorical" if col.get("categories") else "other"
    return kinds


_PREFIXES = ("", "valid_", "validation_", "test_", "cv_")
_SUFFIXES = ("", "_mean")


def _validation_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The version's metrics under plain names (``cv_f1_mean`` -> ``f1``), first match wins."""
    out: dict[str, float] = {}
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                 "log_loss", "rmse", "mae", "r2", "mape", "f1_macro"):  # fmt: skip
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                value = metrics.get(f"{prefix}{name}{suffix}")
                if value is not None and name not in out and math.isfinite(float(value)):
                    out[name] = float(value)
    return out


# -- evaluation -------------------------------------------------------------------------


def evaluate_monitor(
    ctx: MonitorContext,
    name: str,
    *,
    now: int | None = None,
    owner: str | None = None,
    lease_ttl_s: int = 900,
    notify: bool = True,
    dry_run: bool = False,
) -> MonitorRun:
    """Evaluate the monitor's new windows, store them, and update its alerts.

    With ``dry_run`` nothing is stored or sent: the run shows which alerts would open
    (with id 0) and resolve.

    Raises:
        NotFoundError: no such monitor, or its model alias or reference is gone.
        InvalidStateError: another process is evaluating this monitor right now.
    """
    monitor = ctx.store.get_monitor(name)
    at = now if now is not None else now_ms()
    if dry_run:
        return _evaluate(ctx, monitor, now=at, notify=False, dry_run=True)
    owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if not ctx.store.acquire_lease(name, owner, ttl_ms=lease_ttl_s * 1000):
        raise InvalidStateError(
            f"monitor {name!r} is being evaluated by another process right now; "
            "try again when it finishes"
        )

    def renew() -> None:  # a long backfill keeps the lease: one UPDATE per window
        ctx.store.acquire_lease(name, owner, ttl_ms=lease_ttl_s * 1000)

    try:
        run = _evaluate(ctx, monitor, now=at, notify=notify, dry_run=False, renew=renew)
    except BaseException as exc:  # Ctrl-C too: never keep the monitor locked
        ctx.store.release_lease(name, owner, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    status = run.evaluated_window.window.status if run.evaluated_window else "no_rows"
    ctx.store.release_lease(name, owner, status=status)
    return run


def _evaluate(
    ctx: MonitorContext,
    monitor: Monitor,
    *,
    now: int,
    notify: bool,
    dry_run: bool,
    renew: Callable[[], None] = lambda: None,
) -> MonitorRun:
    import pandas as pd

    spec = MonitorSpec.from_dict(monitor.spec)
    ref = reference_state(ctx, monitor, spec)
    step = monitor.window_s * 1000
    current_index = now // step
    last = ctx.store.windows(monitor.name, limit=1)  # the newest window with traffic
    first_index = (
        last[0].start_ms // step if last
        else current_index - max(spec.backfill_windows, 1) + 1
    )  # fmt: skip
    horizon_start = now - spec.label_horizon_s * 1000
    relabel = [
        w for w in ctx.store.windows(monitor.name, since_ms=horizon_start)
        if w.start_ms < first_index * step and w.status == "ok" and w.n_labelled < w.n_rows
    ]  # fmt: skip
    since = min([first_index * step, *(w.start_ms for w in relabel)])
    predictions = read_predictions(ctx.log_root, monitor.model, since_ms=since)
    feedback = read_predictions(ctx.log_root, monitor.model, feedback=True, since_ms=since)
    joined = join_feedback(predictions, feedback) if len(predictions) else predictions
    if len(joined):
        times = joined["sy_time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        index = times // step
        if not last:  # start at the first window with traffic, not at the backfill limit
            first_index = max(first_index, int(index.min()))
    else:
        index = None
    drops_total = log_drops(ctx.log_root, monitor.model)
    # drops since the window before: counters are lifetime totals per server process
    previous_total = int(last[0].summary.get("log_drops_total", 0)) if last else 0
    baseline = int(last[0].summary.get("log_drops_baseline", previous_total)) if last else 0
    results: list[WindowResult] = []
    for w in relabel:
        rows = joined[index == w.start_ms // step] if index is not None else joined
        results.append(_relabelled(ctx, w, rows, ref, spec, save=not dry_run))
    for i in range(first_index, current_index + 1):
        rows = joined[index == i] if index is not None else pd.DataFrame()
        if not len(rows):
            continue  # no traffic: nothing to store (a later evaluation starts from here)
        renew()
        again = bool(last) and i * step == last[0].start_ms  # the stored window, re-evaluated
        since = baseline if again else previous_total
        result = _evaluate_window(
            monitor, rows, ref, spec, start=i * step, end=(i + 1) * step, now=now,
            drops=max(drops_total - since, 0),
            extra={"log_drops_total": drops_total, "log_drops_baseline": since},
        )  # fmt: skip
        previous_total = drops_total
        if not dry_run:
            ctx.store.save_window(result.window, _values(result.observations))
        results.append(result)
    # rules look at the newest window evaluated in full, never at an older relabelled one
    ok = [r for r in results[len(relabel) :] if r.window.status == "ok"]
    latest = max(ok, key=lambda r: r.window.start_ms) if ok else None
    changes = AlertChanges((), (), ())
    notifications: dict[int, dict[str, bool]] = {}
    if latest is not None:
        rules = spec.ruleset()
        history = [
            _observations(w.summary)
            for w in ctx.store.windows(
                monitor.name, until_ms=latest.window.start_ms,
                limit=max([10, *(r.for_windows for r in rules.rules)]),
            )
            if w.status == "ok"
        ]  # fmt: skip
        evaluation = evaluate_rules(rules, latest.observations, history=history)
        holding = [
            AlertCondition(
                fingerprint=f.fingerprint, rule=f.rule.name, column=f.column or "",
                severity=f.rule.severity, message=f.message, value=f.value,
                action=f.rule.action,
            )
            for f in evaluation.firing
        ]  # fmt: skip
        if dry_run:
            changes = _preview(ctx, monitor, holding, evaluation.clear, latest.window.start_ms)
        else:
            changes = ctx.store.sync_alerts(
                monitor.name, monitor.model, holding=holding, cleared=evaluation.clear,
                window_start_ms=latest.window.start_ms,
            )  # fmt: skip
        if notify and not dry_run:
            notifiers = [*build_notifiers(rules.notify)] or [LogNotifier()]
            for kind, group in (("opened", changes.opened), ("resolved", changes.resolved)):
                for alert in group:
                    notifications[alert.alert_id] = dispatch(notifiers, alert_event(alert, kind))
    return MonitorRun(monitor, tuple(results), changes, latest, notifications)


def _preview(
    ctx: MonitorContext,
    monitor: Monitor,
    holding: Sequence[AlertCondition],
    cleared: Sequence[str],
    window_start: int,
) -> AlertChanges:
    """The alert changes an evaluation would make, made up without writing (ids are 0)."""
    active = {a.fingerprint: a for a in ctx.store.list_alerts(monitor=monitor.name,
                                                              status="active")}  # fmt: skip
    ts = now_ms()
    opened = tuple(
        Alert(
            alert_id=0, monitor=monitor.name, model=monitor.model, rule=c.rule, column=c.column,
            fingerprint=c.fingerprint, severity=c.severity, status="open", message=c.message,
            value=c.value, opened_at=ts, last_seen_at=ts, resolved_at=None, count=1,
            window_start_ms=window_start, action=c.action,
            action_status="pending" if c.action != "none" else "",
        )
        for c in holding if c.fingerprint not in active
    )  # fmt: skip
    continuing = tuple(active[c.fingerprint] for c in holding if c.fingerprint in active)
    holding_keys = {c.fingerprint for c in holding}
    resolved = tuple(a for f, a in active.items() if f in set(cleared) - holding_keys)
    return AlertChanges(opened, continuing, resolved)


def alert_event(alert: Alert, event: str, **details: Any) -> AlertEvent:
    """The notification for ``alert`` (``opened``, ``resolved`` or ``action``)."""
    return AlertEvent(
        event=event, alert_id=alert.alert_id, monitor=alert.monitor, model=alert.model,
        rule=alert.rule, severity=alert.severity, column=alert.column or None,
        message=alert.message, value=alert.value, at_ms=now_ms(),
        details={"action": alert.action, "action_status": alert.action_status, **details},
    )  # fmt: skip


def _observations(summary: Mapping[str, Any]) -> Observations:
    raw = summary.get("observations") or {}
    return Observations(
        dataset={k: float(v) for k, v in (raw.get("dataset") or {}).items() if v is not None},
        columns={
            c: {k: float(v) for k, v in vals.items() if v is not None}
            for c, vals in (raw.get("columns") or {}).items()
        },
    )


def _values(obs: Observations) -> dict[tuple[str, str], float | None]:
    out: dict[tuple[str, str], float | None] = {("", k): v for k, v in obs.dataset.items()}
    for column, vals in obs.columns.items():
        for k, v in vals.items():
            out[(column, k)] = v
    return out


def _evaluate_window(
    monitor: Monitor,
    rows: pd.DataFrame,
    ref: ReferenceState,
    spec: MonitorSpec,
    *,
    start: int,
    end: int,
    now: int,
    drops: int,
    extra: Mapping[str, Any],
) -> WindowResult:
    n = len(rows)
    dataset: dict[str, float] = {"n_rows": float(n), "prediction_log_drops": float(drops)}
    columns: dict[str, dict[str, float]] = {}
    summary: dict[str, Any] = {"partial": end > now, "reference": monitor.reference, **extra}
    drift: DriftResult | None = None
    quality: QualityResult | None = None
    perf: dict[str, float] = {}
    n_labelled = int(rows["sy_label"].notna().sum()) if n and "sy_label" in rows else 0
    if n:
        summary["versions"] = {str(k): int(v) for k, v in rows["sy_version"].value_counts().items()}
    if n == 0:
        status = "no_rows"
    elif n < spec.min_rows:
        status = "not_enough_data"
        summary["message"] = f"{n} row(s) in the window; drift needs at least {spec.min_rows}"
    else:
        status = "ok"
        features = list(spec.features)
        present = [c for c in features if c in rows.columns]
        absent = [c for c in features if c not in rows.columns]
        current = rows[present].copy()
        for column in absent:  # logged without the column: every value is missing
            current[column] = None
        drift = ref.detector.test(current[features])
        quality = check_quality(current[features], ref.expectations)
        dataset.update(
            drift_share=drift.drift_share, drifted_columns=float(len(drift.drifted_columns)),
            dataset_drift=float(drift.dataset_drift),
        )  # fmt: skip
        for c in drift.columns:
            columns.setdefault(c.column, {}).update(
                drifted=float(c.drifted), drift_distance=c.distance,
                p_value=c.adjusted_p_value if not math.isnan(c.adjusted_p_value) else c.p_value,
            )  # fmt: skip
        for q in quality.columns:
            columns.setdefault(q.column, {}).update(
                missing_rate=q.missing_rate, out_of_range_share=q.out_of_range_share,
                unseen_category_share=q.unseen_category_share,
                type_error_share=q.type_error_share,
            )  # fmt: skip
        summary["drift"] = drift.to_dict()
        summary["quality"] = quality.to_dict()
        if ref.prediction_detector is not None and "sy_prediction" in rows:
            pd_result = ref.prediction_detector.test(
                _prediction_frame(rows["sy_prediction"], ref.task)
            )
            predicted = pd_result.columns[0]
            dataset.update(prediction_drift=float(predicted.drifted),
                           prediction_drift_distance=predicted.distance)  # fmt: skip
            summary["prediction_drift"] = pd_result.to_dict()
        if spec.domain_classifier:
            from shipyard.monitoring.domain import domain_classifier

            dc = domain_classifier(ref.frame[features], current[features])
            dataset["domain_auc"] = dc.roc_auc
            summary["domain_classifier"] = {
                "roc_auc": dc.roc_auc, "drifted": dc.drifted,
                "top_features": [list(t) for t in dc.top_features],
            }  # fmt: skip
    if n:
        dataset["label_coverage"] = n_labelled / n
        perf, target = _performance(rows, ref, spec, n_labelled)
        dataset.update(perf)
        if target is not None:
            dataset["target_drift"] = target
    summary["performance"] = perf
    summary["validation"] = dict(ref.validation)
    summary["observations"] = {"dataset": dataset, "columns": columns}
    window = MonitorWindow(
        monitor=monitor.name, start_ms=start, end_ms=end, computed_at=now_ms(), n_rows=n,
        n_labelled=n_labelled, status=status, summary=summary,
    )  # fmt: skip
    return WindowResult(window, drift, quality, perf, Observations(dataset, columns))


def _performance(
    rows: pd.DataFrame, ref: ReferenceState, spec: MonitorSpec, n_labelled: int
) -> tuple[dict[str, float], float | None]:
    """The window's live metrics (and their change from validation) and target drift."""
    if n_labelled < spec.min_rows or ref.task is None:
        return {}, None
    live = performance_metrics(rows, task=ref.task, classes=ref.classes)
    out = {k: float(v) for k, v in live.items() if k != "n_labelled" and math.isfinite(v)}
    for metric, cmp in compare_with_validation(out, ref.validation).items():
        out[f"{metric}_change"] = float(cmp["change"])
    target = None
    if ref.target_detector is not None:
        labels = rows["sy_label"].dropna()
        result = ref.target_detector.test(_prediction_frame(labels, ref.task))
        target = float(result.columns[0].drifted)
    return out, target


def _relabelled(
    ctx: MonitorContext, window: MonitorWindow, rows: pd.DataFrame, ref: ReferenceState,
    spec: MonitorSpec, *, save: bool,
) -> WindowResult:  # fmt: skip
    """An older window whose labels were incomplete, with its performance recomputed."""
    n_labelled = int(rows["sy_label"].notna().sum()) if len(rows) and "sy_label" in rows else 0
    obs = _observations(window.summary)
    if n_labelled <= window.n_labelled or len(rows) != window.n_rows:  # nothing new, or the
        # log no longer holds the window's rows (retention): keep what was stored
        return WindowResult(window, None, None, window.summary.get("performance", {}), obs)
    dataset = dict(obs.dataset)
    perf, target = _performance(rows, ref, spec, n_labelled)
    dataset.update(perf)
    dataset["label_coverage"] = n_labelled / max(window.n_rows, 1)
    if target is not None:
        dataset["target_drift"] = target
    new_obs = Observations(dataset, obs.columns)
    summary = {**window.summary, "performance": perf,
               "observations": {"dataset": dataset, "columns": dict(obs.columns)}}  # fmt: skip
    updated = replace(window, n_labelled=n_labelled, computed_at=now_ms(), summary=summary)
    if save:
        ctx.store.save_window(updated, _values(new_obs))
    return WindowResult(updated, None, None, perf, new_obs)
