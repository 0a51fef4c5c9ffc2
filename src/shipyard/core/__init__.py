"""Core: errors, settings and entities shared by every shipyard package."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.core.config import Settings, load_settings
    from shipyard.core.entities import (
        Artifact,
        DatasetVersion,
        Experiment,
        LifecycleStage,
        Metric,
        Param,
        Run,
        RunStatus,
    )
from shipyard.core.errors import (
    AlreadyExistsError,
    FilterSyntaxError,
    GateFailedError,
    InvalidInputError,
    InvalidStateError,
    NotFittedError,
    NotFoundError,
    PermissionDeniedError,
    SchemaMismatchError,
    ShipyardError,
    ShipyardWarning,
    StoreUnavailableError,
    UnauthenticatedError,
)

__all__ = [
    "AlreadyExistsError",
    "Artifact",
    "DatasetVersion",
    "Experiment",
    "FilterSyntaxError",
    "GateFailedError",
    "InvalidInputError",
    "InvalidStateError",
    "LifecycleStage",
    "Metric",
    "NotFittedError",
    "NotFoundError",
    "Param",
    "PermissionDeniedError",
    "Run",
    "RunStatus",
    "SchemaMismatchError",
    "Settings",
    "ShipyardError",
    "ShipyardWarning",
    "StoreUnavailableError",
    "UnauthenticatedError",
    "load_settings",
]


_LAZY = {"Settings": "config", "load_settings": "config", "Artifact": "entities",
         "DatasetVersion": "entities", "Experiment": "entities", "LifecycleStage": "entities",
         "Metric": "entities", "Param": "entities", "Run": "entities", "RunStatus": "entities"}


def __getattr__(name: str) -> Any:
    # settings and entities load on first use: a no-op `shipyard pipeline run` needs neither
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"shipyard.core.{module}"), name)
    globals()[name] = value
    return value
