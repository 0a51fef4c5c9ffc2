"""Small real datasets and a helper to round-trip a model through its folder."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from shipyard.registry.model_folder import META_FILE, LoadedModel, load_model_files


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast-cancer features (30 floats) and 0/1 target, bundled with scikit-learn."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes features (10 floats) and a numeric target, bundled with scikit-learn."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture
def reload() -> Callable[[dict[str, bytes]], LoadedModel]:
    """Load a packaged folder back from its ``name -> bytes`` dict."""

    def _reload(files: dict[str, bytes]) -> LoadedModel:
        return load_model_files(files.__getitem__, files[META_FILE])

    return _reload
