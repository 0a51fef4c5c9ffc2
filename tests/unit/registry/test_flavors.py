"""Every flavor saves, packages and loads a real model with identical predictions."""

from __future__ import annotations

import doctest
import io
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, InvalidStateError, NotFittedError
from shipyard.registry import flavors as flavors_module
from shipyard.registry.flavors import detect_flavor, flavor_names, get_flavor
from shipyard.registry.flavors import pyfunc as pyfunc_module
from shipyard.registry.flavors import sklearn as sklearn_module
from shipyard.registry.flavors.pyfunc import PythonModel
from shipyard.registry.model_folder import META_FILE, LoadedModel, package_model
from shipyard.store.objects import CorruptObjectError

Reload = Callable[[dict[str, bytes]], LoadedModel]


def _refuses_tampering(files: dict[str, bytes], reload: Reload) -> None:
    """A changed byte in any file of the folder stops the load with the file's name."""
    for name, data in files.items():
        if name == META_FILE:
            continue
        i = len(data) // 2
        tampered = {**files, name: data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]}
        with pytest.raises(CorruptObjectError, match=re.escape(repr(name))):
            reload(tampered)


def _same(loaded: LoadedModel, model: Any, X: Any, *, proba: bool = True) -> None:
    np.testing.assert_array_equal(loaded.predict(X), np.asarray(model.predict(X)))
    if proba:
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


# --- registry ---------------------------------------------------------------------------


def test_unknown_flavor_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown model flavor 'keras'.*sklearn"):
        get_flavor("keras")
    assert flavor_names()[-5:] == ["pyfunc", "xgboost", "lightgbm", "onnx", "sklearn"]


def test_an_unsupported_model_names_its_type_and_the_fix() -> None:
    with pytest.raises(InvalidInputError, match=r"builtins\.dict.*PythonModel"):
        detect_flavor({"weights": [1, 2]})


def test_importing_the_flavors_does_not_import_the_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, shipyard.registry.flavors as f; f.get_flavor('xgboost'); "
        "f.get_flavor('lightgbm'); f.get_flavor('sklearn'); f.get_flavor('onnx'); "
        "print(sorted(m for m in ('sklearn', 'xgboost', 'lightgbm', 'onnxruntime', 'skops') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- sklearn ----------------------------------------------------------------------------


def test_sklearn_pipeline_round_trip(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    X, y = cancer
    model = make_pipeline(
        SimpleImputer(), RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    ).fit(X, y)
    files = package_model(model, input_example=X.head(5))
    assert sorted(files) == ["input_example.json", "model.skops", META_FILE]
    _refuses_tampering(files, reload)
    loaded = reload(files)
    assert loaded.flavor == "sklearn" and loaded.meta.task == "classification"
    assert loaded.classes_ == [0, 1]
    assert any(r.startswith("scikit-learn==") for r in loaded.meta.requirements)
    _same(loaded, model, X)


def test_sklearn_regressor_has_no_probabilities(
    diabetes: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    from sklearn.linear_model import Ridge

    X, y = diabetes
    model = Ridge().fit(X, y)
    loaded = reload(package_model(model, input_example=X.head(3)))
    _same(loaded, model, X, proba=False)
    assert loaded.meta.task is None and loaded.classes_ is None
    assert [c.name for c in loaded.signature.outputs] == ["prediction"]  # type: ignore[union-attr]
    with pytest.raises(InvalidStateError, match="flavor sklearn has no probabilities"):
        loaded.predict_proba(X)


def test_a_pipeline_holding_xgboost_goes_to_sklearn_and_pins_xgboost(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    X, y = cancer
    model = make_pipeline(StandardScaler(), XGBClassifier(n_estimators=5, max_depth=2)).fit(X, y)
    assert detect_flavor(model).name == "sklearn"
    loaded = reload(package_model(model))
    assert any(r.startswith("xgboost") for r in loaded.meta.requirements)
    _same(loaded, model, X)


class Doubler:
    """Not a scikit-learn class: a skops file naming it must not load."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return X * 2


def test_untrusted_skops_types_are_refused_on_save_and_on_load(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from shipyard.registry.model_folder import ModelMeta
    from shipyard.store.objects import hash_bytes

    X, y = cancer
    with pytest.raises(InvalidStateError, match=r"numpy\..*load"):
        package_model(FunctionTransformer(np.load).fit(X))  # would read files when loaded

    # A folder whose digests are right but whose skops file names a foreign class.
    files = package_model(LogisticRegression().fit(X.iloc[:, :3], y))
    evil = skops.io.dumps(make_pipeline(Doubler(), LogisticRegression()))
    meta = ModelMeta.from_json(files[META_FILE])
    entry = {"digest": hash_bytes(evil), "size": len(evil)}
    files = {**files, "model.skops": evil}
    files[META_FILE] = ModelMeta(**{**vars(meta), "files": {"model.skops": entry}}).to_json()
    with pytest.raises(InvalidStateError, match=r"Doubler") as info:
        reload(files)
    assert "shipyard does not load unreviewed" in info.value.message


def test_an_unfitted_estimator_is_refused() -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(NotFittedError, match="call fit"):
        package_model(LogisticRegression())


# --- xgboost ----------------------------------------------------------------------------


def test_xgboost_classifier_and_regressor_round_trip(
    cancer: tuple[pd.DataFrame, pd.Series],
    diabetes: tuple[pd.DataFrame, pd.Series],
    reload: Reload,
) -> None:
    from xgboost import XGBClassifier, XGBRegressor

    X, y = cancer
    clf = XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    files = package_model(clf, input_example=X.head(5))
    _refuses_tampering(files, reload)
    loaded = reload(files)
    assert loaded.flavor == "xgboost" and type(loaded.native) is XGBClassifier
    assert loaded.classes_ == [0, 1] and loaded.meta.files.keys() >= {"model.ubj"}
    _same(loaded, clf, X)

    Xr, yr = diabetes
    reg = XGBRegressor(n_estimators=10, max_depth=3).fit(Xr, yr)
    loaded = reload(package_model(reg, input_example=Xr.head(5)))
    _same(loaded, reg, Xr, proba=False)


def test_xgboost_native_booster_round_trip(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    import xgboost

    X, y = cancer
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(X, label=y), 10
    )
    loaded = reload(package_model(booster))
    assert isinstance(loaded.native, xgboost.Booster)
    p = booster.predict(xgboost.DMatrix(X))
    np.testing.assert_array_equal(loaded.predict_proba(X)[:, 1], p)
    np.testing.assert_array_equal(loaded.predict(X), (p > 0.5).astype(int))
    assert loaded.classes_ == [0, 1]


# --- lightgbm ---------------------------------------------------------------------------


def test_lightgbm_classifier_with_string_labels_and_regressor_round_trip(
    cancer: tuple[pd.DataFrame, pd.Series],
    diabetes: tuple[pd.DataFrame, pd.Series],
    reload: Reload,
) -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor

    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    clf = LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(X, labels)
    files = package_model(clf, input_example=X.head(5))
    _refuses_tampering(files, reload)
    loaded = reload(files)
    assert loaded.flavor == "lightgbm" and loaded.classes_ == ["benign", "malignant"]
    assert [c.type for c in loaded.signature.outputs] == ["string"]  # type: ignore[union-attr]
    _same(loaded, clf, X)

    Xr, yr = diabetes
    reg = LGBMRegressor(n_estimators=10, num_leaves=7, verbose=-1).fit(Xr, yr)
    loaded = reload(package_model(reg))
    _same(loaded, reg, Xr, proba=False)
    assert loaded.classes_ is None


def test_lightgbm_native_booster_round_trip(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    import lightgbm

    X, y = cancer
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1}, lightgbm.Dataset(X, y), 10
    )
    loaded = reload(package_model(booster))
    p = booster.predict(X)
    np.testing.assert_array_equal(loaded.predict_proba(X)[:, 1], p)
    assert loaded.classes_ == [0, 1]
    assert loaded.native.booster.model_to_string() == booster.model_to_string()


# --- onnx -------------------------------------------------------------------------------


def test_onnx_bytes_round_trip(cancer: tuple[pd.DataFrame, pd.Series], reload: Reload) -> None:
    import onnxruntime
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X, y)
    data = to_onnx(model, X.to_numpy(np.float32)[:1]).SerializeToString()  # default ZipMap
    assert detect_flavor(data).name == "onnx"
    files = package_model(data, input_example=X.head(5))
    _refuses_tampering(files, reload)
    loaded = reload(files)
    assert loaded.flavor == "onnx" and loaded.classes_ == [0, 1]
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {session.get_inputs()[0].name: X.to_numpy(np.float32)})
    np.testing.assert_array_equal(loaded.predict(X), label)
    np.testing.assert_array_equal(loaded.predict_proba(X), [[p[0], p[1]] for p in proba])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # the same model


def test_bytes_that_are_not_onnx_are_not_a_model() -> None:
    with pytest.raises(InvalidInputError, match="no model flavor"):
        detect_flavor(b"certainly not a protobuf graph")


# --- pyfunc -----------------------------------------------------------------------------


class NearestCentroid(PythonModel):
    """A tiny custom classifier whose learned state is one array."""

    def fit(self, X: pd.DataFrame, y: pd.Series) -> NearestCentroid:
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].to_numpy().mean(axis=0) for c in self.classes_])
        return self

    def _scores(self, X: Any) -> np.ndarray:
        d = ((np.asarray(X)[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        return np.asarray(-d / self.config["temperature"])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[np.argmax(self._scores(X), axis=1)])

    def predict_proba(self, X: Any) -> np.ndarray:
        s = self._scores(X)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def get_state(self) -> dict[str, bytes]:
        buf = io.BytesIO()
        np.savez(buf, classes=self.classes_, centroids=self.centroids_)
        return {"arrays.npz": buf.getvalue()}

    @classmethod
    def from_state(cls, state: dict[str, bytes], config: dict[str, Any]) -> NearestCentroid:
        arrays = np.load(io.BytesIO(state["arrays.npz"]), allow_pickle=False)
        model = cls(config=config)
        model.classes_, model.centroids_ = arrays["classes"], arrays["centroids"]
        return model


def test_pyfunc_module_level_class_round_trips(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    X, y = cancer
    model = NearestCentroid(config={"temperature": 1000.0}).fit(X, y)
    files = package_model(model, input_example=X.head(5))
    assert "state/arrays.npz" in files
    _refuses_tampering(files, reload)
    loaded = reload(files)
    assert loaded.flavor == "pyfunc" and type(loaded.native) is NearestCentroid
    assert loaded.meta.options["class"].endswith(":NearestCentroid")
    assert loaded.native.config == {"temperature": 1000.0}
    _same(loaded, model, X)


def test_pyfunc_local_or_main_classes_are_refused() -> None:
    class Local(PythonModel):
        def predict(self, X: Any) -> Any:
            return X

    with pytest.raises(InvalidInputError, match=r"defined in a function.*move class Local"):
        package_model(Local())
    in_main = type("Script", (PythonModel,), {"__module__": "__main__"})
    with pytest.raises(InvalidInputError, match=r"__main__ script.*importable module"):
        package_model(in_main())


def test_pyfunc_config_must_be_json() -> None:
    with pytest.raises(InvalidInputError, match="must be JSON"):
        package_model(NearestCentroid(config={"weights": np.zeros(2)}))


def test_pyfunc_loads_only_python_model_classes(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    import json

    X, y = cancer
    files = package_model(NearestCentroid(config={"temperature": 1.0}).fit(X, y))
    for target, message in [
        ("collections:OrderedDict", "not a PythonModel subclass"),
        ("no_such_module_xyz:Model", "cannot be imported here"),
    ]:
        meta = json.loads(files[META_FILE])
        meta["options"]["class"] = target
        with pytest.raises(InvalidStateError, match=message):
            reload({**files, META_FILE: json.dumps(meta).encode()})


def test_docstring_examples_run() -> None:
    for module in (flavors_module, sklearn_module, pyfunc_module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__
