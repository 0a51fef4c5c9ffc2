"""The retrain loop: monitoring decides, this module acts.

When an evaluation opens an alert whose rule's action is ``retrain``, :func:`run_monitor`
carries it out for the champion ``model@alias`` the monitor watches:

1. **Data.** The labelled rows of recent traffic (logged inputs joined to feedback
   labels) are split: ``holdout_share`` of them (time-ordered, the newest) is kept aside;
   the rest plus the reference rows become a new version of the reference dataset
   (its parent: the reference; tagged with the alert).
2. **Challenger.** ``sy.train`` on that version (the families, trials and folds of
   ``retrain:`` in the monitor's spec), or the user's ``command`` with the dataset
   version in ``SHIPYARD_RETRAIN_DATA``, then registered as the next version.
3. **Champion vs challenger.** Both score the holdout rows neither was trained on; the
   challenger must do at least as well.
4. **Gates.** The registry's promotion gates of the alias's policy run as for any
   promotion; the alias moves only if they pass. The server polling the alias then
   hot-swaps to the challenger.
5. **Record.** What happened (dataset version, runs, scores, gate results, the
   outcome) is recorded on the alert, in the same transaction as its audit event, and
   a notification goes out. After a promotion the monitor's reference becomes the new
   dataset version, so drift is measured against what the new champion learned from.

``dry_run`` evaluates without storing anything and describes what would happen.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import Alert
from shipyard.core.errors import GateFailedError, InvalidInputError, ShipyardError
from shipyard.monitoring.monitor import (
    MonitorContext,
    MonitorRun,
    MonitorSpec,
    alert_event,
    evaluate_monitor,
)
from shipyard.monitoring.notify import LogNotifier, build_notifiers, dispatch
from shipyard.monitoring.performance import join_feedback
from shipyard.monitoring.prediction_log import read_predictions
from shipyard.store.db import now_ms

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_FAMILIES = ("linear", "random_forest")
"""What ``sy.train`` fits for a challenger when ``retrain:`` names no families."""
RETRAIN_KEYS = frozenset(
    {"command", "pipeline", "models", "tune", "cv", "metric", "recent", "holdout_share",
     "min_rows", "timeout_s"}
)


@dataclass(frozen=True)
class RetrainOutcome:
    """What one retrain action did (``status``: promoted, refused, failed or dry_run)."""

    alert_id: int
    status: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopResult:
    """A monitor evaluation and the actions it led to."""

    run: MonitorRun
    actions: tuple[RetrainOutcome, ...]


def check_retrain_spec(retrain: Mapping[str, Any]) -> None:
    """Refuse unknown ``retrain:`` settings early (at ``monitor create``)."""
    unknown = sorted(set(retrain) - RETRAIN_KEYS)
    if unknown:
        raise InvalidInputError(
            f"unknown retrain setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(RETRAIN_KEYS))}"
        )


def run_monitor(
    ctx: MonitorContext,
    name: str,
    *,
    dry_run: bool = False,
    now: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoopResult:
    """Evaluate the monitor, then carry out the actions its alerts ask for."""
    say = progress or (lambda _msg: None)
    run = evaluate_monitor(ctx, name, now=now, dry_run=dry_run)
    pending = [
        a for a in ctx.store.list_alerts(monitor=name, status="active")
        if a.action == "retrain" and a.action_status == "pending"
    ] if not dry_run else list(run.actions)  # fmt: skip
    outcomes: list[RetrainOutcome] = []
    if not dry_run:  # claim them: a second scheduler (or a person) must not retrain too
        pending = [a for a in pending if ctx.store.claim_action(a.alert_id)]
    if pending:
        # one retrain answers every pending alert: the newest drives it, the rest point to it
        driver, *others = sorted(pending, key=lambda a: a.alert_id, reverse=True)
        outcome = retrain(ctx, driver, dry_run=dry_run, progress=say)
        outcomes.append(outcome)
        if not dry_run:
            for alert in others:
                ctx.store.record_action(
                    alert.alert_id, status=outcome.status,
                    details={"answered_by_alert": driver.alert_id, **outcome.details},
                )  # fmt: skip
    return LoopResult(run, tuple(outcomes))


def retrain(
    ctx: MonitorContext,
    alert: Alert,
    *,
    dry_run: bool = False,
    now: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> RetrainOutcome:
    """Retrain, compare and promote for ``alert`` (see the module docstring)."""
    say = progress or (lambda _msg: None)
    monitor = ctx.store.get_monitor(alert.monitor)
    spec = MonitorSpec.from_dict(monitor.spec)
    settings = dict(spec.retrain)
    details: dict[str, Any] = {"alert": alert.alert_id, "champion": None}
    try:
        champion = ctx.registry.get_version(f"{monitor.model}@{monitor.alias}")
        details["champion"] = champion.ref
        if spec.target is None:
            raise InvalidInputError(
                f"monitor {monitor.name!r} has no target column, so there are no labels to "
                "retrain on; recreate it with --target"
            )
        at = now if now is not None else now_ms()
        horizon_s = int(settings.get("recent", spec.label_horizon_s))
        until = ctx.catalog.get(monitor.reference).version.tags.get("traffic_until_ms")
        recent = _labelled_rows(ctx, monitor.model, spec, now=at, horizon_s=horizon_s,
                                after_ms=int(until) if until else None)  # fmt: skip
        min_rows = int(settings.get("min_rows", max(spec.min_rows, 30)))
        if len(recent) < min_rows:
            raise InvalidInputError(
                f"only {len(recent)} labelled row(s) of recent traffic (at least {min_rows} "
                "needed to retrain and compare); send feedback labels to /feedback"
            )
        share = float(settings.get("holdout_share", 0.3))
        cut = len(recent) - max(int(len(recent) * share), 1)
        train_recent, holdout = recent.iloc[:cut], recent.iloc[cut:]
        details.update(recent_rows=len(recent), holdout_rows=len(holdout))
        if dry_run:
            families = settings.get("models") or DEFAULT_FAMILIES
            plan = (
                f"would add {len(train_recent)} labelled row(s) of recent traffic to "
                f"{monitor.reference} as a new version, train "
                f"{settings.get('command') or ', '.join(families)}, "
                f"register it as the next version of {monitor.model}, compare it with "
                f"{champion.ref} on {len(holdout)} held-out row(s), and promote it to "
                f"{monitor.alias!r} through the gates if it is at least as good"
            )  # fmt: skip
            return RetrainOutcome(alert.alert_id, "dry_run", plan, details)
        say(f"retrain: building training data ({len(train_recent)} recent + reference rows)")
        version = _training_version(ctx, monitor, train_recent, alert)
        details["dataset"] = version
        say(f"retrain: training a challenger on {version}")
        challenger = _train_challenger(ctx, monitor, spec=spec, settings=settings, data=version,
                                       alert=alert, details=details)  # fmt: skip
        details["challenger"] = challenger
        metric, higher, scores = _compare(ctx, spec, champion.ref, challenger, holdout)
        details.update(metric=metric, scores=scores)
        say(f"retrain: {metric} on the holdout: champion {scores['champion']:.4f}, "
            f"challenger {scores['challenger']:.4f}")  # fmt: skip
        if any(math.isnan(v) for v in scores.values()):
            return _finish(ctx, alert, "refused",
                           f"could not compare {challenger} with {champion.ref}: {metric} is "
                           f"undefined on the {len(holdout)} held-out row(s) (one class "
                           "only?); wait for more labelled traffic or set retrain.metric",
                           details)  # fmt: skip
        better = scores["challenger"] >= scores["champion"] if higher else (
            scores["challenger"] <= scores["champion"]
        )  # fmt: skip
        if not better:
            return _finish(ctx, alert, "refused",
                           f"{challenger} did worse than {champion.ref} on the holdout "
                           f"({metric} {scores['challenger']:.4f} vs {scores['champion']:.4f}); "
                           f"{monitor.alias!r} stays on {champion.ref}", details)  # fmt: skip
        name, number = challenger.rsplit("@", 1)
        try:
            promotion = ctx.registry.promote(
                name, int(number), monitor.alias,
                reason=f"retrain for alert {alert.alert_id} ({alert.rule})",
            )  # fmt: skip
        except GateFailedError as exc:
            details["gates"] = exc.details.get("gates", [])
            return _finish(ctx, alert, "refused", f"{challenger} failed the gates: {exc.message}",
                           details)  # fmt: skip
        details["gates"] = list(promotion.gates)
        moved = f"monitor reference now {version}"
        try:
            _move_reference(ctx, monitor.name, version)
        except ShipyardError as exc:  # the alias moved: that is what the outcome says
            moved = f"the monitor's reference could not move to {version}: {exc.message}"
        return _finish(ctx, alert, "promoted",
                       f"{challenger} promoted to {monitor.alias!r} (was {champion.ref}); "
                       f"{moved}", details)  # fmt: skip
    except ShipyardError as exc:
        if dry_run:
            return RetrainOutcome(alert.alert_id, "dry_run", f"would fail: {exc.message}", details)
        return _finish(ctx, alert, "failed", exc.message, details)
    except BaseException as exc:  # never leave the alert "running": record, then re-raise
        if not dry_run:
            _finish(ctx, alert, "failed", f"{type(exc).__name__}: {exc}", details)
        raise


def _finish(
    ctx: MonitorContext, alert: Alert, status: str, message: str, details: dict[str, Any]
) -> RetrainOutcome:
    details = {**details, "message": message}
    recorded = ctx.store.record_action(alert.alert_id, status=status, details=details)
    logger.info("alert %s: retrain %s: %s", alert.alert_id, status, message)
    monitor = ctx.store.get_monitor(alert.monitor)
    rules = MonitorSpec.from_dict(monitor.spec).ruleset()
    notifiers = build_notifiers(rules.notify) or [LogNotifier()]
    dispatch(notifiers, alert_event(recorded, "action", outcome=status, message=message))
    return RetrainOutcome(alert.alert_id, status, message, details)


_AT = "sy_time_ms"  # kept beside the rows until they are split and stored


def _labelled_rows(
    ctx: MonitorContext,
    model: str,
    spec: MonitorSpec,
    *,
    now: int,
    horizon_s: int,
    after_ms: int | None,
) -> pd.DataFrame:
    """Recent logged inputs with their feedback labels, oldest first, the target column
    named as in the reference; only rows logged after ``after_ms`` (the newest row an
    earlier retrain already added to the reference), so no row is added twice."""
    since = now - horizon_s * 1000
    if after_ms is not None:
        since = max(since, after_ms + 1)
    predictions = read_predictions(ctx.log_root, model, since_ms=since)
    if not len(predictions):
        return predictions
    feedback = read_predictions(ctx.log_root, model, feedback=True, since_ms=since)
    joined = join_feedback(predictions, feedback)
    joined = joined[joined["sy_label"].notna()].sort_values("sy_time", kind="stable")
    # every logged input, not only the watched ones: the challenger needs all the model's
    features = [c for c in joined.columns if not str(c).startswith("sy_") and c != spec.target]
    frame = joined[features].copy()
    frame[str(spec.target)] = joined["sy_label"].to_numpy()
    frame[_AT] = joined["sy_time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    return frame.reset_index(drop=True)


def _training_version(ctx: MonitorContext, monitor: Any, recent: pd.DataFrame, alert: Alert) -> str:
    import pandas as pd

    reference = ctx.catalog.get(monitor.reference)
    base = reference.to_pandas()
    spec = MonitorSpec.from_dict(monitor.spec)
    target = str(spec.target)
    missing = [c for c in base.columns if c not in recent.columns]
    if missing:
        raise InvalidInputError(
            f"the logged traffic lacks column(s) {', '.join(map(str, missing[:10]))} of "
            f"{reference.ref}, so it cannot be appended to it; log every input column"
        )
    add = recent[list(base.columns)].copy()
    until = int(recent[_AT].max()) if len(recent) else 0
    if target in base.columns and len(add):
        add[target] = labels_like(add[target], base[target])
    combined = pd.concat([base, add], ignore_index=True)
    version = ctx.catalog.add(
        reference.version.name, combined,
        description=f"{reference.ref} plus {len(add)} labelled row(s) of production traffic "
                    f"(retrain for alert {alert.alert_id})",
        tags={"made_by": "retrain", "alert": str(alert.alert_id), "monitor": monitor.name,
              "traffic_until_ms": str(until)},
        parents=[reference.version], step="retrain",
    )  # fmt: skip
    return version.ref


def labels_like(labels: pd.Series, reference: pd.Series) -> pd.Series:
    """Feedback labels (they come back through JSON) with the reference target's type, when
    that changes no value: ``1.0`` -> ``1`` for an integer target, ``1`` -> ``"1"`` for a
    text one. Anything else stays as it is.

    Raises:
        InvalidInputError: the labels cannot be the reference's type without changing them.
    """
    import pandas as pd

    kind = reference.dtype.kind
    if kind in "iuf":
        numbers = pd.to_numeric(labels, errors="coerce")
        bad = labels[numbers.isna() & labels.notna()]
        if len(bad) or (kind in "iu" and (numbers % 1 != 0).any()):
            shown = bad.iloc[0] if len(bad) else numbers[numbers % 1 != 0].iloc[0]
            raise InvalidInputError(
                f"a feedback label {shown!r} does not fit the reference target "
                f"{reference.name!r} ({reference.dtype}); send labels of that type"
            )
        return numbers.astype(reference.dtype) if kind in "iu" else numbers
    if kind in "OSU" or str(reference.dtype).startswith(("str", "string")):
        whole = labels.map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
        return whole.astype(str)
    return labels


def _train_challenger(
    ctx: MonitorContext,
    monitor: Any,
    *,
    spec: MonitorSpec,
    settings: Mapping[str, Any],
    data: str,
    alert: Alert,
    details: dict[str, Any],
) -> str:
    """Train and register the challenger; its ``name@version``."""
    tags = {"retrain_alert": str(alert.alert_id), "trained_on": data}
    if settings.get("pipeline"):
        return _pipeline_challenger(ctx, monitor, str(settings["pipeline"]), data, details)
    command = settings.get("command")
    if command:
        before = ctx.registry.store.get_model(monitor.model).latest_version or 0
        env = {**os.environ, "SHIPYARD_RETRAIN_DATA": data, "SHIPYARD_RETRAIN_MODEL": monitor.model,
               "SHIPYARD_RETRAIN_TARGET": str(spec.target)}  # fmt: skip
        timeout = float(settings.get("timeout_s", 3600))
        try:
            done = subprocess.run(shlex.split(str(command)), env=env, capture_output=True,
                                  text=True, check=False, timeout=timeout)  # fmt: skip
        except FileNotFoundError as exc:
            raise InvalidInputError(
                f"retrain command {command!r} cannot start: {exc.strerror}: {exc.filename}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise InvalidInputError(
                f"retrain command {command!r} ran longer than {timeout:g} s and was stopped; "
                "raise retrain.timeout_s or make it faster"
            ) from exc
        details["command_output"] = (done.stdout + done.stderr)[-2000:]
        if done.returncode != 0:
            raise InvalidInputError(
                f"retrain command {command!r} exited with {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        made = [v for v in ctx.registry.store.list_versions(monitor.model) if v.version > before]
        # the challenger is the new version whose run read the dataset version it was given
        # (someone else may have registered a version meanwhile)
        ours = [v for v in made if v.run_id and any(
            d.ref == data for d, _ in ctx.registry.tracker.run_inputs(v.run_id))]  # fmt: skip
        if not ours:
            raise InvalidInputError(
                f"retrain command {command!r} finished but registered no new version of "
                f"{monitor.model} from a run that read {data}; it must log the dataset "
                "(sy.log_input(sy.data.get(os.environ['SHIPYARD_RETRAIN_DATA']))) and "
                "register the model (sy.register_model or registered_model_name=...)"
            )
        return ours[-1].ref
    from shipyard.training import train

    result = train(
        data, str(spec.target), models=settings.get("models") or DEFAULT_FAMILIES,
        tune=int(settings.get("tune", 0)), cv=int(settings.get("cv", 3)),
        metric=settings.get("metric"), run_name=f"retrain {monitor.model} (alert {alert.alert_id})",
    )  # fmt: skip
    details["run_id"] = result.best_run_id
    version = ctx.registry.register(
        result.best_run_id, monitor.model,
        description=f"challenger retrained on {data} for alert {alert.alert_id}", tags=tags,
    )  # fmt: skip
    return version.ref


def _pipeline_challenger(
    ctx: MonitorContext, monitor: Any, path: str, data: str, details: dict[str, Any]
) -> str:
    """Run the user's pipeline (its steps see ``SHIPYARD_RETRAIN_DATA``; built-ins reading
    the dataset ``@latest`` get the new version); the challenger is the version of the
    model its run registered."""
    from shipyard.pipelines.runner import EXPERIMENT_PREFIX, PipelineContext, run_pipeline
    from shipyard.pipelines.spec import check_inputs, load_spec
    from shipyard.store.dataset_store import SqlDatasetStore
    from shipyard.store.pipeline_store import SqlPipelineStore

    tracker = ctx.registry.tracker
    pctx = PipelineContext(
        settings=tracker.settings, runs=tracker.store, objects=tracker.objects,
        cache=SqlPipelineStore(tracker.db, actor=tracker.settings.actor),
        datasets=SqlDatasetStore(tracker.db, actor=tracker.settings.actor),
    )  # fmt: skip
    spec = load_spec(path)
    check_inputs(spec)
    before = ctx.registry.store.get_model(monitor.model).latest_version or 0
    result = run_pipeline(spec, pctx, env={"SHIPYARD_RETRAIN_DATA": data,
                                           "SHIPYARD_RETRAIN_MODEL": monitor.model})  # fmt: skip
    details["pipeline_run"] = result.run_id
    if result.status != "finished":
        raise InvalidInputError(
            f"retrain pipeline {spec.name!r} {result.status}"
            + (f" at step {result.failed_step!r}" if result.failed_step else "")
            + f"; `shipyard pipeline history --file {path}` has its record"
        )
    experiment = f"{EXPERIMENT_PREFIX}{spec.name}"
    made = [v for v in ctx.registry.store.list_versions(monitor.model) if v.version > before]
    ours = [v for v in made if v.run_id and tracker.store.get_experiment(
        tracker.store.get_run(v.run_id).experiment_id).name == experiment]  # fmt: skip
    if not ours:
        raise InvalidInputError(
            f"retrain pipeline {spec.name!r} finished but registered no new version of "
            f"{monitor.model}; give its shipyard.train step `register: {monitor.model}`"
        )
    return ours[-1].ref


def _compare(
    ctx: MonitorContext, spec: MonitorSpec, champion: str, challenger: str, holdout: pd.DataFrame
) -> tuple[str, bool, dict[str, float]]:
    """Both models' primary metric on the holdout: ``(metric, higher is better, scores)``."""
    from shipyard.training.metrics import DEFAULT_METRIC, PROBABILITY_METRICS, compute_metrics

    target = str(spec.target)
    X, y = holdout.drop(columns=[target, _AT]), holdout[target]
    scores: dict[str, float] = {}
    metric = ""
    for role, ref in (("champion", champion), ("challenger", challenger)):
        model = ctx.registry.load(ref)
        task = model.meta.task if model.meta.task in DEFAULT_METRIC else "binary"
        metric = str(spec.retrain.get("metric") or DEFAULT_METRIC[task])
        classes = model.classes_ if task != "regression" else None
        labels = y
        if classes is not None and len(classes) and len(y):
            kind = type(classes[0])
            try:
                labels = y.map(kind)
            except (TypeError, ValueError):
                labels = y
        proba = model.predict_proba(X) if metric in PROBABILITY_METRICS else None
        value = compute_metrics(task, labels, model.predict(X), proba, classes=classes,
                                metrics=[metric])[metric]  # fmt: skip
        scores[role] = float(value) if value is not None and math.isfinite(value) else float("nan")
    # scikit-learn scorer names: every one is "higher is better" (errors are negated)
    return metric, True, scores


def _move_reference(ctx: MonitorContext, name: str, version: str) -> None:
    monitor = ctx.store.get_monitor(name)
    ctx.store.create_monitor(
        name, model=monitor.model, alias=monitor.alias, reference=version,
        window_s=monitor.window_s, schedule=monitor.schedule, spec=monitor.spec, replace=True,
    )  # fmt: skip
