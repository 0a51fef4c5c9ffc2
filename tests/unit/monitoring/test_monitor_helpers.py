"""The small pieces of monitors and the retrain loop: durations, label types, specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.monitor import MonitorSpec, parse_duration, prediction_series
from shipyard.pipelines.loop import labels_like


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("1h", 3600), ("7d", 604800), (" 90s ", 90), ("1.5h", 5400), (60, 60)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "10", "-1h", "0s", "1 hour"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"duration|at least one second"):
        parse_duration(text)


def test_class_labels_with_gaps_compare_equal_to_predicted_classes() -> None:
    # a left join with unlabelled rows turns integer labels into floats
    labels = prediction_series(pd.Series([1.0, 0.0, np.nan, 1.0]), "binary").dropna()
    predicted = prediction_series(np.array([1, 0, 1]), "binary")
    assert set(labels[labels != "<NA>"]) == set(predicted) == {"0", "1"}
    assert prediction_series(pd.Series([0.5, 1.5]), "regression").dtype.kind == "f"


def test_labels_take_the_reference_type_only_when_no_value_changes() -> None:
    ints = pd.Series([0, 1, 1], name="churn")
    assert labels_like(pd.Series([1.0, 0.0]), ints).tolist() == [1, 0]
    assert labels_like(pd.Series([1.0, 0.0]), ints).dtype == ints.dtype
    with pytest.raises(InvalidInputError, match="does not fit"):
        labels_like(pd.Series([12.7]), ints)
    with pytest.raises(InvalidInputError, match="does not fit"):
        labels_like(pd.Series(["yes"]), ints)
    text = pd.Series(["1", "0"], dtype=object)
    assert labels_like(pd.Series([1.0, 0.0]), text).tolist() == ["1", "0"]
    floats = pd.Series([0.5])
    assert labels_like(pd.Series(["2.5"]), floats).tolist() == [2.5]


def test_a_spec_refuses_bad_settings_and_round_trips() -> None:
    spec = MonitorSpec(target="y", features=("a", "b"), on_drift="retrain",
                       rules={"rules": [{"name": "d", "when": "drift_share > 0.3"}]})  # fmt: skip
    assert MonitorSpec.from_dict(spec.to_dict()) == spec
    assert [r.action for r in spec.ruleset().rules] == ["retrain"]
    with pytest.raises(InvalidInputError, match="on_drift"):
        MonitorSpec(on_drift="page")
    with pytest.raises(InvalidInputError, match="unknown monitor setting"):
        MonitorSpec.from_dict({"windw": "1h"})
    with pytest.raises(InvalidInputError, match="metric"):
        MonitorSpec(rules={"rules": [{"name": "d", "when": "drift > 1"}]})
