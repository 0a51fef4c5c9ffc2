"""Prometheus metrics of one server (its own registry, so tests and several apps in one
process do not share counters).

``shipyard_requests_total{route,status}`` and ``shipyard_request_seconds{route}``;
``shipyard_predictions_total{model,class}`` (classifiers) or the
``shipyard_prediction_value{model}`` histogram (regressors);
``shipyard_validation_failures_total{model,reason}`` (rejected and flagged inputs);
``shipyard_model_info{model,version,flavor,ref}``; ``shipyard_model_swaps_total``;
and the prediction log's ``queue_depth``, ``dropped`` and ``written_rows``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from fastapi import Request

    from shipyard.core.errors import ShipyardError
    from shipyard.serving.app import Server
    from shipyard.serving.models import ModelSlot, ServedModel

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
