"""Pipelines: declared, cached workflows (``shipyard.yaml``), their executors and records,
the scheduler that runs them and the monitors, and the retrain loop.

Names load on first use, so ``shipyard --help`` and a no-op ``shipyard pipeline run``
import only what they need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.pipelines.runner import PipelineContext, PipelineResult, StepResult, plan
    from shipyard.pipelines.runner import run_pipeline as run_pipeline
    from shipyard.pipelines.scheduler import Job, JobState, Scheduler, next_fire, validate_cron
    from shipyard.pipelines.spec import PipelineSpec, StepSpec, load_spec, parse_spec

_LAZY = {
    "Job": "scheduler", "JobState": "scheduler", "Scheduler": "scheduler",
    "next_fire": "scheduler", "validate_cron": "scheduler", "PipelineContext": "runner",
    "PipelineResult": "runner", "StepResult": "runner", "plan": "runner",
    "run_pipeline": "runner", "PipelineSpec": "spec", "StepSpec": "spec",
    "load_spec": "spec", "parse_spec": "spec",
}  # fmt: skip

__all__ = [
    "Job",
    "JobState",
    "PipelineContext",
    "PipelineResult",
    "PipelineSpec",
    "Scheduler",
    "StepResult",
    "StepSpec",
    "load_spec",
    "next_fire",
    "parse_spec",
    "plan",
    "run_pipeline",
    "validate_cron",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"shipyard.pipelines.{module}"), name)
    globals()[name] = value
    return value
