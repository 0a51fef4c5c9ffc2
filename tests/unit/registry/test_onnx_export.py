"""ONNX export: converted pipelines predict what scikit-learn predicts, or are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidStateError
from shipyard.registry.model_folder import LoadedModel, package_model
from shipyard.registry.onnx_export import export_onnx

Reload = Callable[[dict[str, bytes]], LoadedModel]


@pytest.fixture(scope="module")
def holey(cancer: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    """Breast-cancer data with some missing values, for the imputer."""
    X, y = cancer
    X = X.copy()
    X.iloc[::13, 2] = np.nan
    return X, y


def _logistic(X: pd.DataFrame, y: pd.Series) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)).fit(
        X, y
    )


def test_imputer_scaler_logistic_regression_matches_and_packages(
    holey: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    X, y = holey
    model = _logistic(X, y)
    data = export_onnx(model, X)
    loaded = reload(package_model(data, flavor="onnx", input_example=X.head(5)))
    assert loaded.flavor == "onnx" and loaded.classes_ == [0, 1]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-5)


def test_random_forest_matches(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = cancer
    model = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(X, y)
    assert isinstance(export_onnx(model, X), bytes)


def test_regressor_with_named_string_columns(diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = diabetes
    X = X.assign(sex=np.where(X["sex"] > 0, "m", "f"))
    numeric = [c for c in X.columns if c != "sex"]
    model = make_pipeline(
        make_column_transformer((StandardScaler(), numeric), (OneHotEncoder(), ["sex"])), Ridge()
    ).fit(X, y)
    data = export_onnx(model, X, rtol=1e-4, atol=1e-3)
    files = package_model(data, flavor="onnx")
    assert files["model.onnx"] == data


def test_an_unconvertible_step_is_named(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    X, y = cancer
    model = make_pipeline(FunctionTransformer(np.abs), DecisionTreeClassifier(max_depth=3))
    model.fit(X, y)
    with pytest.raises(InvalidStateError, match=r"cannot export the Pipeline to ONNX.*sklearn"):
        export_onnx(model, X)


def test_a_mismatch_beyond_the_tolerance_is_refused(
    holey: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = holey
    model = _logistic(X, y)
    with pytest.raises(InvalidStateError, match=r"probabilities differ on \d+ of 569 rows"):
        export_onnx(model, X, rtol=0.0, atol=0.0)  # float32 never equals float64 exactly
