"""sy.evaluate without a store: any fitted model, a DataFrame, nothing logged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.training.evaluation import evaluate


def _cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


def test_tree_models_get_shap_values_and_linear_ones_do_not() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    frame = _cancer()
    X, y = frame.drop(columns=["target"]), frame["target"]
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    report = evaluate(forest, frame, "target", log=False, bootstrap=0, plots=False)
    assert report.shap is not None
    assert set(report.shap["feature"]) == set(X.columns)
    assert report.shap["mean_abs_shap"].is_monotonic_decreasing
    top_shap = set(report.shap["feature"].head(5))
    top_perm = set(report.importance["feature"].head(10))
    assert top_shap & top_perm, "SHAP and permutation importance agree on some top features"

    linear = LogisticRegression(max_iter=5000).fit(X, y)
    assert evaluate(linear, frame, "target", log=False, bootstrap=0, plots=False).shap is None


def test_regression_metrics_match_sklearn_and_get_regression_plots() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    frame = load_diabetes(as_frame=True).frame
    X, y = frame.drop(columns=["target"]), frame["target"]
    model = Ridge().fit(X, y)
    report = evaluate(model, frame, "target", log=False, bootstrap=200, importance=False)
    pred = model.predict(X)
    assert report.task == "regression"
    assert report.metrics["neg_root_mean_squared_error"] == pytest.approx(
        -root_mean_squared_error(y, pred)
    )
    assert report.metrics["neg_mean_absolute_error"] == pytest.approx(-mean_absolute_error(y, pred))
    assert report.metrics["r2"] == pytest.approx(r2_score(y, pred))
    low, high = report.confidence_intervals["r2"]
    assert low < report.metrics["r2"] < high
    assert {"residuals", "predicted_vs_actual"} <= {p.name for p in report.plots}
    assert report.confusion is None and report.per_class is None
    assert "<html" in report.html.lower()


def test_a_model_missing_columns_or_a_wrong_target_is_refused() -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _cancer()
    model = LogisticRegression(max_iter=5000).fit(frame.drop(columns=["target"]), frame["target"])
    with pytest.raises(InvalidInputError, match="target 'label' is not a column"):
        evaluate(model, frame, "label", log=False)
    with pytest.raises(InvalidInputError, match="mean radius"):
        evaluate(model, frame.drop(columns=["mean radius"]), "target", log=False)
    with pytest.raises(InvalidInputError, match="slice column 'zone'"):
        evaluate(model, frame, "target", slices="zone", log=False)
    small = frame.sample(60, random_state=0)
    report = evaluate(model, small, "target", log=False, bootstrap=100, plots=False)
    assert any("only 60 rows" in w for w in report.warnings)
    assert np.isfinite(report.metrics["roc_auc"])
