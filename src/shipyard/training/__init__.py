"""Training and evaluation: cross-validated training, Optuna tuning, metrics, plots.

``sy.train`` and ``sy.evaluate`` are :func:`train` and :func:`evaluate`. Modules:
``metrics`` (scorer-name metrics, per-class, slices, bootstrap intervals),
``models`` (model families, search spaces, leak-free preprocessing pipelines),
``plots`` and ``report`` (PNG and interactive HTML plots, the HTML report),
``guards`` (warnings), ``trainer`` and ``evaluation``.

Example::

    import shipyard as sy
    result = sy.train("customers@train", "churn", models=["random_forest"], tune=20)
    report = sy.evaluate(result.model, "customers@test", "churn")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.training.evaluation import EvaluationReport, evaluate
    from shipyard.training.trainer import Candidate, TrainResult, train

__all__ = ["Candidate", "EvaluationReport", "TrainResult", "evaluate", "train"]

_HOME = {
    "Candidate": "trainer",
    "TrainResult": "trainer",
    "train": "trainer",
    "EvaluationReport": "evaluation",
    "evaluate": "evaluation",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        value = getattr(importlib.import_module(f"shipyard.training.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'shipyard.training' has no attribute {name!r}")
