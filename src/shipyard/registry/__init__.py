"""Registry: model flavors (safe save and load), model folders, signatures, versions,
aliases, promotion gates and model cards."""

from shipyard.registry.gates import GATES, parse_policy
from shipyard.registry.registry import LoggedModel, ModelRegistry, Promotion, check_citation

__all__ = [
    "GATES",
    "LoggedModel",
    "ModelRegistry",
    "Promotion",
    "check_citation",
    "parse_policy",
]
