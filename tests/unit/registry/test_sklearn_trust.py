"""Loading a logged model trusts classes of known libraries, and functions only of shipyard."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from shipyard.core.errors import InvalidStateError
from shipyard.registry.flavors.sklearn import trusted_types


def _fitted(*steps: object) -> bytes:
    X, y = np.arange(20.0).reshape(10, 2), np.array([0, 1] * 5)
    return skops.io.dumps(make_pipeline(*steps).fit(X, y))


def test_a_plain_forest_loads() -> None:
    data = _fitted(RandomForestClassifier(n_estimators=3, random_state=0))
    model = skops.io.loads(data, trusted=trusted_types(data))
    assert model.predict(np.zeros((1, 2))).shape == (1,)


def test_a_function_from_numpy_is_refused_by_name() -> None:
    # never fitted: a tampered file needs no fitting to name a function
    data = skops.io.dumps(make_pipeline(FunctionTransformer(np.load), RandomForestClassifier()))
    with pytest.raises(InvalidStateError, match=r"numpy\..*load"):
        trusted_types(data)
