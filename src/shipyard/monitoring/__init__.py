"""Monitoring: the prediction log servers write, and (later) drift, quality and alerts."""

from shipyard.monitoring.prediction_log import PredictionLog, PredictionRecord, read_predictions

__all__ = ["PredictionLog", "PredictionRecord", "read_predictions"]
