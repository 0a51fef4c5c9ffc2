"""The public Python API: ``import shipyard as sy``.

Settings are read once, from ``SHIPYARD_*`` variables and ``shipyard.toml``,
when the first call needs the store; :func:`configure` switches to other
settings (tests and notebooks use it).

Example::

    import shipyard as sy
    sy.set_experiment("churn")
    with sy.start_run(name="rf-baseline"):
        sy.log_params({"n_estimators": 200})
        sy.log_metric("loss", 0.25, step=1)
    sy.search_runs("metrics.loss < 0.3", order_by=["metrics.loss"])
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.core import session
from shipyard.core.config import Settings
from shipyard.core.entities import (
    Artifact,
    DatasetVersion,
    Experiment,
    Metric,
    Run,
    RunStatus,
)
from shipyard.tracking.tracker import ActiveRun, Tracker

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.core.entities import ModelVersion, Monitor
    from shipyard.monitoring.monitor import MonitorContext
    from shipyard.pipelines.loop import LoopResult
    from shipyard.pipelines.runner import PipelineContext, PipelineResult
    from shipyard.registry import LoggedModel, ModelRegistry, Promotion
    from shipyard.registry.model_folder import LoadedModel
    from shipyard.store.registry_store import AliasMove

_lock = threading.Lock()
_tracker: Tracker | None = None


def _get() -> Tracker:
    global _tracker
    settings_ = session.current_settings()
    tracker_ = _tracker
    if tracker_ is None or tracker_.settings is not settings_:
        with _lock:
            if _tracker is None or _tracker.settings is not settings_:
                _tracker = Tracker(settings_)
            tracker_ = _tracker
    return tracker_


def configure(settings: Settings | None = None) -> Settings:
    """Use ``settings`` (default: read the environment again) for every following call.

    Queued points of the previous store are flushed first; its active runs stay as they are.
    ``sy.data`` follows the same settings.
    """
    global _tracker
    with _lock:
        if _tracker is not None:
            _tracker.flush()
        _tracker = Tracker(session.set_settings(settings))
        return _tracker.settings


def settings() -> Settings:
    """The settings in effect."""
    return _get().settings


def tracker() -> Tracker:
    """The :class:`Tracker` behind the module-level functions."""
    return _get()


# -- experiments -----------------------------------------------------------------------


def set_experiment(name: str) -> Experiment:
    """Send new runs to experiment ``name`` (created if missing)."""
    return _get().set_experiment(name)


def create_experiment(name: str, *, description: str = "") -> Experiment:
    return _get().store.create_experiment(name, description=description)


def get_experiment(id_or_name: str) -> Experiment:
    return _get().store.get_experiment(id_or_name)


def list_experiments(*, view: str = "active") -> list[Experiment]:
    return _get().store.list_experiments(view=view)


def rename_experiment(id_or_name: str, new_name: str) -> Experiment:
    return _get().store.rename_experiment(id_or_name, new_name)


def delete_experiment(id_or_name: str) -> Experiment:
    return _get().store.delete_experiment(id_or_name)


def restore_experiment(id_or_name: str) -> Experiment:
    return _get().store.restore_experiment(id_or_name)


# -- runs --------------------------------------------------------------------------------


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str = "",
    run_id: str | None = None,
) -> ActiveRun:
    """Start (or resume) a run; use it as ``with sy.start_run(...) as run:``."""
    return _get().start_run(
        name,
        experiment=experiment,
        nested=nested,
        parent_run_id=parent_run_id,
        tags=tags,
        description=description,
        run_id=run_id,
    )


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    _get().end_run(status)


def active_run() -> ActiveRun | None:
    return _get().active_run()


def delete_run(run_id: str) -> None:
    _get().store.delete_run(run_id)


def restore_run(run_id: str) -> None:
    _get().store.restore_run(run_id)


# -- logging -----------------------------------------------------------------------------


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    *,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Queue one metric point. Returns at once; :func:`flush` makes it durable."""
    _get().log_metric(key, value, step, timestamp=timestamp, run_id=run_id)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    *,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    _get().log_metrics(metrics, step, timestamp=timestamp, run_id=run_id)


def log_batch(
    metrics: Iterable[Metric | tuple[Any, ...]] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
) -> None:
    _get().log_batch(metrics, params, tags, run_id=run_id)


def log_param(key: str, value: Any, *, run_id: str | None = None) -> None:
    _get().log_params({key: value}, run_id=run_id)


def log_params(params: Mapping[str, Any], *, run_id: str | None = None) -> None:
    _get().log_params(params, run_id=run_id)


def set_tag(key: str, value: Any, *, run_id: str | None = None) -> None:
    _get().set_tags({key: value}, run_id=run_id)


def set_tags(tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
    _get().set_tags(tags, run_id=run_id)


def set_description(description: str, *, run_id: str | None = None) -> None:
    _get().set_description(description, run_id=run_id)


def log_artifact(
    local_path: str | os.PathLike[str],
    artifact_path: str | None = None,
    *,
    run_id: str | None = None,
) -> None:
    _get().log_artifact(local_path, artifact_path, run_id=run_id)


def log_artifacts(
    local_dir: str | os.PathLike[str],
    artifact_path: str | None = None,
    *,
    run_id: str | None = None,
) -> None:
    _get().log_artifacts(local_dir, artifact_path, run_id=run_id)


def log_dict(data: Any, artifact_file: str, *, run_id: str | None = None) -> None:
    _get().log_dict(data, artifact_file, run_id=run_id)


def log_text(text: str, artifact_file: str, *, run_id: str | None = None) -> None:
    _get().log_text(text, artifact_file, run_id=run_id)


def log_figure(figure: Any, artifact_file: str, *, run_id: str | None = None) -> None:
    _get().log_figure(figure, artifact_file, run_id=run_id)


def log_table(table: Any, artifact_file: str, *, run_id: str | None = None) -> None:
    _get().log_table(table, artifact_file, run_id=run_id)


def log_input(version: Any, *, context: str = "", run_id: str | None = None) -> None:
    """Record that the active run (or ``run_id``) read a dataset version.

    ``version`` is a :class:`~shipyard.core.entities.DatasetVersion` or what
    ``sy.data.get`` returns.
    """
    inner = getattr(version, "version", None)
    target = inner if isinstance(inner, DatasetVersion) else version
    _get().log_input(target, context=context, run_id=run_id)


def get_run_inputs(run_id: str) -> list[tuple[DatasetVersion, str]]:
    """``(dataset version, context)`` for each input the run logged."""
    return _get().run_inputs(run_id)


def flush() -> None:
    """Write every queued metric point now."""
    _get().flush()


# -- reading -----------------------------------------------------------------------------


def get_run(run_id: str) -> Run:
    return _get().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of ``key`` in run ``run_id``, by step then timestamp."""
    return _get().get_metric_history(run_id, key)


def search_runs(
    filter_string: str | None = None,
    *,
    experiment_names: Sequence[str] | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
    view: str = "active",
    output_format: Literal["pandas", "list"] = "pandas",
) -> pd.DataFrame | list[Run]:
    """Runs matching ``filter_string`` (all active experiments unless named).

    With ``output_format="pandas"`` the next page token is in ``df.attrs["next_page_token"]``.
    """
    return _get().search_runs(
        filter_string,
        experiment_names=experiment_names,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        view=view,
        output_format=output_format,
    )


def compare_runs(*run_ids: str, only_differences: bool = False) -> pd.DataFrame:
    """A field-by-run table of attributes, params, metrics and tags, with a ``differs`` column."""
    from shipyard.tracking.results import compare_frame

    ids = (
        list(run_ids[0]) if len(run_ids) == 1 and not isinstance(run_ids[0], str) else list(run_ids)
    )
    return compare_frame([get_run(r) for r in ids], only_differences=only_differences)


def list_artifacts(run_id: str, path: str = "") -> list[Artifact]:
    return _get().list_artifacts(run_id, path)


def load_artifact(run_id: str, path: str) -> bytes:
    return _get().load_artifact(run_id, path)


def download_artifacts(
    run_id: str, path: str = "", dst: str | os.PathLike[str] | None = None
) -> Path:
    return _get().download_artifacts(run_id, path, dst)


def autolog(*, log_models: bool = True, disable: bool = False) -> None:
    """Record scikit-learn ``fit`` calls (params, training metrics, model) and scorer calls."""
    from shipyard.tracking.autolog import autolog as _autolog

    def log_fitted(model: Any, run_id: str, X: Any) -> object:
        import pandas as pd

        frame = X if isinstance(X, pd.DataFrame) or X is None else pd.DataFrame(X)
        example = None if frame is None else frame.head(5)
        return model_registry().log_model(
            model, "model", input_example=example, run_id=run_id, signature=frame
        )

    _autolog(_get(), log_models=log_models, model_logger=log_fitted, disable=disable)


# -- model registry and governance ------------------------------------------------------


def model_registry() -> ModelRegistry:
    """The :class:`~shipyard.registry.ModelRegistry` of the store in effect, with the
    scorer and data validator its promotion gates use."""
    from shipyard.registry import ModelRegistry

    tracker = _get()
    return ModelRegistry(
        tracker, scorer=_score_on_dataset, validator=_validate_dataset,
        embedded=not tracker.settings.uri,
    )  # fmt: skip


def _score_on_dataset(model: Any, data: str, metric: str, target: str | None) -> float:
    """One scorer-name metric of a loaded model on a dataset version (the beat_champion gate)."""
    from shipyard import data as data_api
    from shipyard.core.errors import InvalidInputError
    from shipyard.training.metrics import PROBABILITY_METRICS, compute_metrics, infer_task

    frame, label = data_api.catalog().frame(data)
    if not target or target not in frame.columns:
        raise InvalidInputError(
            f"the gate needs the target column of {label}: set 'target:' in the policy's "
            f"beat_champion gate (columns: {', '.join(map(str, frame.columns[:12]))})"
        )
    X, y = frame.drop(columns=[target]), frame[target]
    task = (
        model.meta.task
        if model.meta.task in ("binary", "multiclass", "regression")
        else (infer_task(y))
    )
    proba = model.predict_proba(X) if metric in PROBABILITY_METRICS else None
    classes = model.classes_ if task != "regression" else None
    return compute_metrics(task, y, model.predict(X), proba, classes=classes, metrics=[metric])[
        metric
    ]


def _validate_dataset(data: str, expectations: str | None) -> tuple[bool, str]:
    from shipyard import data as data_api

    report = data_api.catalog().validate(data, expectations)
    if report.passed:
        return True, f"{data}: {len(report.results)} check(s) passed"
    failed = "; ".join(r.message for r in report.failures[:5])
    count = f"{len(report.failures)} of {len(report.results)}"
    return False, f"{data}: {count} check(s) failed: {failed}"


def log_model(
    model: Any,
    path: str = "model",
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Any = None,
    task: str | None = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
) -> LoggedModel:
    """Log ``model`` as a model folder in the active run: flavor detected, signature inferred
    from ``input_example`` (or given: a Signature, or the training data as a DataFrame, whose
    ranges and categories a server's input checks then use), every file hashed. With
    ``registered_model_name`` also register it.

    Example::

        with sy.start_run():
            sy.log_model(pipeline, "model", input_example=X[:5])
    """
    registry = model_registry()
    logged = registry.log_model(
        model, path, flavor=flavor, input_example=input_example, signature=signature,
        task=task, run_id=run_id,
    )  # fmt: skip
    if registered_model_name is not None:
        registry.register(logged.run_id, registered_model_name, path=logged.path)
    return logged


def register_model(
    run_id: str,
    name: str,
    *,
    path: str = "model",
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register the model folder a run logged as the next version of ``name``."""
    return model_registry().register(run_id, name, path=path, description=description, tags=tags)


def load_model(ref: str) -> LoadedModel:
    """``sy.load_model("churn@production")`` or ``"churn@3"``: the model, every hash checked
    before anything is deserialised; it has ``predict`` (and ``predict_proba`` where the
    flavor has probabilities)."""
    return model_registry().load(ref)


def get_model_version(ref: str) -> ModelVersion:
    return model_registry().get_version(ref)


def promote_model(
    name: str, version: int, alias: str, *, force: bool = False, reason: str = ""
) -> Promotion:
    """Move ``alias`` to ``name@version`` through the gates of the model's policy."""
    return model_registry().promote(name, version, alias, force=force, reason=reason)


def rollback_model(name: str, alias: str) -> AliasMove:
    """Move ``alias`` back to the version that held it before the last promotion."""
    return model_registry().rollback(name, alias)


# -- monitoring -------------------------------------------------------------------------


def monitor_context() -> MonitorContext:
    """What monitors read and write in the store in effect: monitors and alerts, the
    registry, the data catalog and the servers' prediction log under the store's home."""
    from shipyard import data as data_api
    from shipyard.monitoring.monitor import MonitorContext
    from shipyard.serving.server import log_root_of
    from shipyard.store.monitor_store import SqlMonitorStore

    tracker = _get()
    return MonitorContext(
        store=SqlMonitorStore(tracker.db, actor=tracker.settings.actor),
        registry=model_registry(), catalog=data_api.catalog(tracker.settings),
        log_root=Path(log_root_of(tracker.settings)),
    )  # fmt: skip


def create_monitor(
    name: str,
    *,
    model: str,
    reference: str,
    alias: str = "production",
    window: str | int = "1h",
    schedule: str | None = None,
    target: str | None = None,
    features: Sequence[str] = (),
    rules: str | Mapping[str, Any] | None = None,
    on_drift: str = "none",
    retrain: Mapping[str, Any] | None = None,
    domain_classifier: bool = False,
    min_rows: int = 30,
    replace: bool = False,
) -> Monitor:
    """Watch ``model@alias`` against the reference dataset version (editor role).

    Example::

        sy.create_monitor("churn", model="churn", reference="customers@train",
                          window="1h", schedule="*/15 * * * *", on_drift="retrain")
    """
    from shipyard.governance.identity import require_role
    from shipyard.monitoring.monitor import MonitorSpec
    from shipyard.monitoring.monitor import create_monitor as create
    from shipyard.monitoring.rules import parse_rules
    from shipyard.pipelines.loop import check_retrain_spec
    from shipyard.pipelines.scheduler import validate_cron

    ctx = monitor_context()
    require_role(ctx.registry.identity, "editor", to="create a monitor")
    if schedule is not None:
        schedule = validate_cron(schedule)
    check_retrain_spec(retrain or {})
    if (retrain or {}).get("command"):  # the scheduler will run it with its own identity
        require_role(ctx.registry.identity, "admin", to="set a retrain command")
    rule_dict = parse_rules(rules, origin="rules").to_dict() if rules else {}
    spec = MonitorSpec(
        target=target, features=tuple(features), rules=rule_dict, on_drift=on_drift,
        retrain=dict(retrain or {}), domain_classifier=domain_classifier, min_rows=min_rows,
    )  # fmt: skip
    return create(ctx, name, model=model, alias=alias, reference=reference, window=window,
                  schedule=schedule, spec=spec, replace=replace)  # fmt: skip


def run_monitor(name: str, *, dry_run: bool = False) -> LoopResult:
    """Evaluate a monitor now and carry out the actions its alerts ask for (``retrain``)."""
    from shipyard.pipelines.loop import run_monitor as run

    return run(monitor_context(), name, dry_run=dry_run)


# -- pipelines ----------------------------------------------------------------------------


def pipeline_context() -> PipelineContext:
    """The stores a pipeline run reads and writes, from the settings in effect."""
    from shipyard.pipelines.runner import PipelineContext
    from shipyard.store.dataset_store import SqlDatasetStore
    from shipyard.store.pipeline_store import SqlPipelineStore

    tracker = _get()
    actor = tracker.settings.actor
    return PipelineContext(
        settings=tracker.settings, runs=tracker.store, objects=tracker.objects,
        cache=SqlPipelineStore(tracker.db, actor=actor),
        datasets=SqlDatasetStore(tracker.db, actor=actor),
    )  # fmt: skip


def run_pipeline(
    path: str | os.PathLike[str] = "shipyard.yaml",
    *,
    force: Sequence[str] = (),
    force_downstream: bool = False,
    steps: Sequence[str] | None = None,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
) -> PipelineResult:
    """Run the pipeline ``path`` declares: changed steps run, unchanged ones are cached.

    Example::

        result = sy.run_pipeline("shipyard.yaml", jobs=2)
        [(s.name, s.status) for s in result.steps]   # [("prepare", "cached"), ("train", "ran")]
    """
    from shipyard.pipelines.runner import run_pipeline as run
    from shipyard.pipelines.spec import check_inputs, load_spec

    spec = load_spec(path)
    check_inputs(spec)
    return run(spec, pipeline_context(), force=force, force_downstream=force_downstream,
               steps=steps, jobs=jobs, executor=executor, scheduler=scheduler)  # fmt: skip
