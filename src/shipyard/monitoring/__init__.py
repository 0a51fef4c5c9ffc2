"""Monitoring: drift, data quality and performance of served models, alerts and reports.

``sy.monitoring.DriftDetector().fit(reference).test(current)`` for the statistics;
:func:`drift_report` for an ad hoc report between two tables; monitors
(:func:`evaluate_monitor`) for windows of a served model's prediction log, stored with
their history, and the alerts their rules open. Only the prediction log (which every
server imports) loads eagerly; the rest loads on first use, so a server or
``shipyard --help`` does not pay for SciPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.prediction_log import PredictionLog, PredictionRecord, read_predictions

if TYPE_CHECKING:
    from shipyard.monitoring._stats import benjamini_hochberg, bonferroni, holm
    from shipyard.monitoring.domain import DomainClassifierResult, domain_classifier
    from shipyard.monitoring.drift import ColumnDrift, DriftDetector, DriftResult, drift_table
    from shipyard.monitoring.monitor import (
        MonitorContext,
        MonitorRun,
        MonitorSpec,
        create_monitor,
        evaluate_monitor,
    )
    from shipyard.monitoring.notify import AlertEvent
    from shipyard.monitoring.performance import join_feedback, performance_metrics
    from shipyard.monitoring.quality import Expectations, QualityResult, check_quality
    from shipyard.monitoring.reporting import DriftReport, build_report, drift_report
    from shipyard.monitoring.rules import RuleSet, parse_rules

_LAZY = {
    "benjamini_hochberg": "_stats", "bonferroni": "_stats", "holm": "_stats",
    "ColumnDrift": "drift", "DomainClassifierResult": "domain", "DriftDetector": "drift",
    "DriftResult": "drift", "domain_classifier": "domain", "drift_table": "drift",
    "MonitorContext": "monitor", "MonitorRun": "monitor", "MonitorSpec": "monitor",
    "create_monitor": "monitor", "evaluate_monitor": "monitor", "AlertEvent": "notify",
    "join_feedback": "performance", "performance_metrics": "performance",
    "Expectations": "quality", "QualityResult": "quality", "check_quality": "quality",
    "DriftReport": "reporting", "build_report": "reporting", "drift_report": "reporting",
    "RuleSet": "rules", "parse_rules": "rules",
}  # fmt: skip

__all__ = [
    "AlertEvent",
    "ColumnDrift",
    "DomainClassifierResult",
    "DriftDetector",
    "DriftReport",
    "DriftResult",
    "Expectations",
    "MonitorContext",
    "MonitorRun",
    "MonitorSpec",
    "PredictionLog",
    "PredictionRecord",
    "QualityResult",
    "RuleSet",
    "benjamini_hochberg",
    "bonferroni",
    "build_report",
    "check_quality",
    "create_monitor",
    "domain_classifier",
    "drift_report",
    "drift_table",
    "evaluate_monitor",
    "holm",
    "join_feedback",
    "parse_rules",
    "performance_metrics",
    "read_predictions",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"shipyard.monitoring.{module}"), name)
    globals()[name] = value
    return value
