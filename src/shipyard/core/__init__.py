"""Core: errors, settings and entities shared by every shipyard package."""

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
