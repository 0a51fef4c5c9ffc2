"""shipyard: the machine-learning lifecycle in one package.

``import shipyard as sy`` is cheap: the public functions load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Metric",
    "Run",
    "RunStatus",
    "ShipyardError",
    "active_run",
    "autolog",
    "compare_runs",
    "configure",
    "create_experiment",
    "create_monitor",
    "delete_experiment",
    "delete_run",
    "download_artifacts",
    "end_run",
    "evaluate",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_model_version",
    "get_run",
    "get_run_inputs",
    "list_artifacts",
    "list_experiments",
    "load_artifact",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "model_registry",
    "monitor_context",
    "pipeline_context",
    "promote_model",
    "register_model",
    "rename_experiment",
    "restore_experiment",
    "restore_run",
    "rollback_model",
    "run_monitor",
    "run_pipeline",
    "search_runs",
    "set_description",
    "set_experiment",
    "set_tag",
    "set_tags",
    "settings",
    "start_run",
    "tracker",
    "train",
]

_FROM_CORE = {"Metric", "Run", "RunStatus", "ShipyardError"}
_FROM_TRAINING = {"train", "evaluate"}

if TYPE_CHECKING:
    from shipyard.client import (
        active_run,
        autolog,
        compare_runs,
        configure,
        create_experiment,
        create_monitor,
        delete_experiment,
        delete_run,
        download_artifacts,
        end_run,
        flush,
        get_experiment,
        get_metric_history,
        get_model_version,
        get_run,
        get_run_inputs,
        list_artifacts,
        list_experiments,
        load_artifact,
        load_model,
        log_artifact,
        log_artifacts,
        log_batch,
        log_dict,
        log_figure,
        log_input,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        log_table,
        log_text,
        model_registry,
        monitor_context,
        pipeline_context,
        promote_model,
        register_model,
        rename_experiment,
        restore_experiment,
        restore_run,
        rollback_model,
        run_monitor,
        run_pipeline,
        search_runs,
        set_description,
        set_experiment,
        set_tag,
        set_tags,
        settings,
        start_run,
        tracker,
    )
    from shipyard.core import Metric, Run, RunStatus, ShipyardError
    from shipyard.tracking.tracker import ActiveRun
    from shipyard.training import evaluate, train


def __getattr__(name: str) -> Any:
    if name in _FROM_CORE:
        from shipyard import core

        return getattr(core, name)
    if name in _FROM_TRAINING:
        from shipyard import training

        return getattr(training, name)
    if name in ("data", "training", "monitoring", "pipelines"):
        import importlib

        # importing the subpackage binds it as shipyard.data; `from shipyard import data`
        # here would call this function again
        return importlib.import_module(f"shipyard.{name}")
    if name == "ActiveRun":
        from shipyard.tracking.tracker import ActiveRun

        return ActiveRun
    if name in __all__:
        from shipyard import client

        value = getattr(client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
