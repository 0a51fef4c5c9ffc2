"""Registry: model flavors (safe save and load), model folders, signatures, versions,
aliases, promotion gates and model cards."""

from shipyard.registry.cards import ModelCard, build_card
from shipyard.registry.gates import GATES, parse_policy
from shipyard.registry.registry import LoggedModel, ModelRegistry, Promotion, check_citation

__all__ = [
    "GATES",
    "LoggedModel",
    "ModelCard",
    "ModelRegistry",
    "Promotion",
    "build_card",
    "check_citation",
    "parse_policy",
]
