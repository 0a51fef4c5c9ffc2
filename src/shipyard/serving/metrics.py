"""Prometheus metrics of one server (its own registry, so tests and several apps in one
process do not share counters).

``shipyard_requests_total{route,status}`` and ``shipyard_request_seconds{route}``;
``shipyard_predictions_total{model,class}`` (classifiers) or the
``shipyard_prediction_value{model}`` histogram (regressors);
``shipyard_validation_failures_total{model,reason}`` (rejected and flagged inputs);
``shipyard_model_info{model,version,flavor,ref}``; ``shipyard_model_swaps_total``;
and the prediction log's ``queue_depth``, ``dropped`` and ``written_rows``.

Monitor gauges, read from the store at scrape time (at most every 15 s) for the monitors
of the served models, so Prometheus can alert on drift too:
``shipyard_monitor_drift_share{monitor,model}``,
``shipyard_monitor_column_drift_distance{monitor,model,column}``,
``shipyard_monitor_column_drifted{monitor,model,column}``,
``shipyard_monitor_missing_rate{monitor,model,column}``,
``shipyard_monitor_prediction_drift_distance{monitor,model}``,
``shipyard_monitor_performance{monitor,model,metric}``,
``shipyard_monitor_alerts_open{monitor,severity}`` and
``shipyard_monitor_window_timestamp_seconds{monitor}`` (start of the newest window).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from fastapi import Request

    from shipyard.core.errors import ShipyardError
    from shipyard.serving.app import Server
    from shipyard.serving.models import ModelSlot, ServedModel
    from shipyard.store.db import Database

logger = logging.getLogger(__name__)

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_MAX_CLASS_LABELS = 50  # more classes are counted under "other" (bounded label sets)


class ServerMetrics:
    """The collectors, and the calls the app makes to update them."""

    def __init__(self, server: Server) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.server = server
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shipyard_requests", "HTTP requests", ["route", "status"],
                                registry=r)  # fmt: skip
        self.latency = Histogram("shipyard_request_seconds", "Request latency", ["route"],
                                 buckets=_BUCKETS, registry=r)  # fmt: skip
        self.predictions = Counter("shipyard_predictions", "Predicted rows by class",
                                   ["model", "class"], registry=r)  # fmt: skip
        self.values = Histogram("shipyard_prediction_value", "Predicted values (regression)",
                                ["model"], registry=r)  # fmt: skip
        self.failures = Counter("shipyard_validation_failures",
                                "Rejected requests and flagged rows, by reason",
                                ["model", "reason"], registry=r)  # fmt: skip
        self.swaps = Counter("shipyard_model_swaps", "Served versions replaced", ["model"],
                             registry=r)  # fmt: skip
        self.info = Gauge("shipyard_model_info", "The served version (value 1)",
                          ["model", "version", "flavor", "ref"], registry=r)  # fmt: skip
        self.log_depth = Gauge("shipyard_prediction_log_queue_depth",
                               "Records waiting to be written", registry=r)  # fmt: skip
        self.log_dropped = Gauge("shipyard_prediction_log_dropped",
                                 "Records dropped because the queue was full (total)",
                                 registry=r)  # fmt: skip
        self.log_written = Gauge("shipyard_prediction_log_written_rows",
                                 "Rows written (total)", registry=r)  # fmt: skip
        for slot in server.slots.values():
            self._set_info(slot)
        first = next(iter(server.slots.values()), None)
        if first is not None:
            models = {slot.current.name for slot in server.slots.values()}
            r.register(MonitorCollector(first.registry.tracker.db, models))

    def _set_info(self, slot: ModelSlot) -> None:
        served = slot.current
        self.info.labels(served.name, str(served.version.version), served.model.flavor,
                         slot.ref).set(1)  # fmt: skip

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def predicted(self, served: ServedModel, predictions: np.ndarray) -> None:
        import numpy as np

        if served.classes is None:
            values = np.asarray(predictions, dtype=float).reshape(-1)
            child = self.values.labels(served.name)
            for v in values[np.isfinite(values)][:1000]:
                child.observe(float(v))
            return
        labels, counts = np.unique(np.asarray(predictions).reshape(-1), return_counts=True)
        known = {str(c) for c in served.classes[:_MAX_CLASS_LABELS]}
        for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
            name = str(label) if str(label) in known else "other"
            self.predictions.labels(served.name, name).inc(count)

    def flagged(self, model: str, reasons: Mapping[str, int]) -> None:
        for reason, rows in reasons.items():
            self.failures.labels(model, reason).inc(rows)

    def validation_failed(self, request: Request, exc: ShipyardError) -> None:
        errors = exc.details.get("errors") if isinstance(exc.details, Mapping) else None
        reason = "invalid_input"
        if errors:
            problem = str(errors[0].get("problem", ""))
            reason = problem.split(" ", 1)[0] if problem.startswith(("unseen_", "out_of_")) else (
                "missing" if problem.startswith("missing") else
                "type" if problem.startswith("expected") else
                "null" if problem.startswith("null") else "invalid_input"
            )  # fmt: skip
        model = "unknown"
        if len(self.server.slots) == 1:
            model = next(iter(self.server.slots))
        self.failures.labels(model, reason).inc()

    def swapped(self, slot: ModelSlot) -> None:
        self.swaps.labels(slot.name).inc()
        self.info.clear()
        for s in self.server.slots.values():
            self._set_info(s)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        log = self.server.prediction_log
        if log is not None:
            self.log_depth.set(log.depth)
            self.log_dropped.set(log.stats.dropped)
            self.log_written.set(log.stats.written_rows)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_PERFORMANCE = frozenset({"accuracy", "balanced_accuracy", "precision", "recall", "f1",
                          "roc_auc", "log_loss", "rmse", "mae", "r2", "mape"})  # fmt: skip


class MonitorCollector:
    """Gauges of the newest evaluated window of every monitor of the served models."""

    def __init__(self, db: Database, models: set[str], *, ttl_s: float = 15.0) -> None:
        self.db = db
        self.models = models
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] = (0.0, [])

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only (no store read at registration)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        share = gauge(
            "shipyard_monitor_drift_share",
            "Share of watched columns drifted (newest window)",
            ["monitor", "model"],
        )
        distance = gauge(
            "shipyard_monitor_column_drift_distance",
            "Drift distance per column: normalised Wasserstein or Jensen-Shannon",
            ["monitor", "model", "column"],
        )
        drifted = gauge(
            "shipyard_monitor_column_drifted",
            "1 when the column drifted",
            ["monitor", "model", "column"],
        )
        missing = gauge(
            "shipyard_monitor_missing_rate",
            "Missing share per column",
            ["monitor", "model", "column"],
        )
        prediction = gauge(
            "shipyard_monitor_prediction_drift_distance",
            "Drift distance of the predictions",
            ["monitor", "model"],
        )
        performance = gauge(
            "shipyard_monitor_performance",
            "Live metric once labels arrived",
            ["monitor", "model", "metric"],
        )
        alerts_open = gauge(
            "shipyard_monitor_alerts_open", "Open alerts by severity", ["monitor", "severity"]
        )
        stamp = gauge("shipyard_monitor_window_timestamp_seconds",
                      "Start of the newest evaluated window", ["monitor"])  # fmt: skip
        for monitor, window, alerts in self._latest():
            if window is not None:
                stamp.add_metric([monitor.name], window.start_ms / 1000)
                obs = window.summary.get("observations") or {}
                data = obs.get("dataset") or {}
                labels = [monitor.name, monitor.model]
                if data.get("drift_share") is not None:
                    share.add_metric(labels, float(data["drift_share"]))
                if data.get("prediction_drift_distance") is not None:
                    prediction.add_metric(labels, float(data["prediction_drift_distance"]))
                for metric, value in data.items():
                    if metric in _PERFORMANCE and value is not None:
                        performance.add_metric([*labels, metric], float(value))
                for column, values in (obs.get("columns") or {}).items():
                    for family, key in ((distance, "drift_distance"), (drifted, "drifted"),
                                        (missing, "missing_rate")):  # fmt: skip
                        if values.get(key) is not None:
                            family.add_metric([*labels, column], float(values[key]))
            counts: dict[str, int] = {"info": 0, "warning": 0, "critical": 0}
            for alert in alerts:
                counts[alert.severity] = counts.get(alert.severity, 0) + 1
            for severity, count in counts.items():
                alerts_open.add_metric([monitor.name, severity], count)
        yield from (share, distance, drifted, missing, prediction, performance, alerts_open,
                    stamp)  # fmt: skip

    def _latest(self) -> list[Any]:
        from shipyard.store.monitor_store import SqlMonitorStore

        with self._lock:
            at, cached = self._cached
            if time.monotonic() - at < self.ttl_s:
                return cached
            try:
                store = SqlMonitorStore(self.db)
                found = []
                for monitor in store.list_monitors():
                    if monitor.model not in self.models:
                        continue
                    windows = [w for w in store.windows(monitor.name, limit=5)
                               if w.status == "ok"]  # fmt: skip
                    found.append(
                        (
                            monitor,
                            windows[-1] if windows else None,
                            store.list_alerts(monitor=monitor.name, status="active"),
                        )
                    )
            except Exception:  # a scrape must answer even when the store does not
                logger.exception("monitor gauges: could not read the store")
                found = cached
            self._cached = (time.monotonic(), found)
            return found
