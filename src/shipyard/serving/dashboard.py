"""A Grafana dashboard for the model server's Prometheus metrics and the monitor gauges.

``shipyard deploy manifests`` writes it as ``grafana/shipyard-monitoring.json``; the
repository keeps a copy in ``deploy/grafana/``. Import it in Grafana (Dashboards ->
Import) and pick the Prometheus data source that scrapes the servers' ``/metrics``.
"""

from __future__ import annotations

import json
from typing import Any

_DS = {"type": "prometheus", "uid": "${datasource}"}
_LATENCY = "sum by (le) (rate(shipyard_request_seconds_bucket[5m]))"


def _panel(
    pid: int, title: str, exprs: list[tuple[str, str]], *, x: int, y: int, unit: str = "short",
    kind: str = "timeseries", w: int = 12, h: int = 8, thresholds: list[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    for value, color in zip(thresholds or [], ("orange", "red"), strict=False):
        steps.append({"color": color, "value": value})
    return {
        "id": pid, "type": kind, "title": title, "datasource": _DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit,
                                     "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                     "datasource": _DS} for i, (expr, legend) in enumerate(exprs)],
    }  # fmt: skip


def grafana_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (schema version 39)."""
    panels = [
        _panel(1, "Drift share (newest window)",
               [("shipyard_monitor_drift_share", "{{monitor}}")],
               x=0, y=0, unit="percentunit", thresholds=[0.3, 0.5]),
        _panel(2, "Open alerts", [("sum by (severity) (shipyard_monitor_alerts_open)",
                                   "{{severity}}")], x=12, y=0, kind="stat", thresholds=[1, 5]),
        _panel(3, "Column drift distance",
               [("shipyard_monitor_column_drift_distance", "{{monitor}} {{column}}")],
               x=0, y=8, thresholds=[0.1, 0.2]),
        _panel(4, "Drifted columns", [("sum by (monitor) (shipyard_monitor_column_drifted)",
                                       "{{monitor}}")], x=12, y=8),
        _panel(5, "Prediction drift distance",
               [("shipyard_monitor_prediction_drift_distance", "{{monitor}}")], x=0, y=16,
               thresholds=[0.1, 0.2]),
        _panel(6, "Live performance", [("shipyard_monitor_performance",
                                        "{{monitor}} {{metric}}")], x=12, y=16),
        _panel(7, "Missing rate by column",
               [("shipyard_monitor_missing_rate", "{{monitor}} {{column}}")], x=0, y=24,
               unit="percentunit", thresholds=[0.05, 0.2]),
        _panel(8, "Requests per second by status",
               [("sum by (status) (rate(shipyard_requests_total[5m]))", "{{status}}")],
               x=12, y=24, unit="reqps"),
        _panel(9, "Latency p50 / p99",
               [(f"histogram_quantile({q}, {_LATENCY})", f"p{round(q * 100)}")
                for q in (0.5, 0.99)], x=0, y=32, unit="s"),
        _panel(10, "Predictions by class",
               [("sum by (model, class) (rate(shipyard_predictions_total[5m]))",
                 "{{model}} {{class}}")], x=12, y=32, unit="reqps"),
        _panel(11, "Validation failures",
               [("sum by (model, reason) (rate(shipyard_validation_failures_total[5m]))",
                 "{{model}} {{reason}}")], x=0, y=40),
        _panel(12, "Prediction log: queue and drops",
               [("shipyard_prediction_log_queue_depth", "queued"),
                ("shipyard_prediction_log_dropped", "dropped (total)")], x=12, y=40),
    ]  # fmt: skip
    return {
        "title": "shipyard: model monitoring", "uid": "shipyard-monitoring",
        "tags": ["shipyard", "mlops"], "timezone": "utc", "schemaVersion": 39,
        "version": 1, "refresh": "30s", "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource",
                                 "query": "prometheus", "label": "Prometheus"}]},
        "panels": panels,
    }  # fmt: skip


def dashboard_json() -> str:
    """:func:`grafana_dashboard` as the text of the file."""
    return json.dumps(grafana_dashboard(), indent=2) + "\n"
