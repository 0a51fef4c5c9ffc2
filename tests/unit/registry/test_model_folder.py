"""Model folders: metadata, digests checked before loading, signature-checked predictions."""

from __future__ import annotations

import doctest
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, InvalidStateError, SchemaMismatchError
from shipyard.registry import model_folder as model_folder_module
from shipyard.registry.flavors import register_flavor
from shipyard.registry.flavors.sklearn import SklearnFlavor
from shipyard.registry.model_folder import (
    EXAMPLE_FILE,
    FORMAT_VERSION,
    META_FILE,
    LoadedModel,
    ModelMeta,
    package_model,
)
from shipyard.registry.signature import ColumnSpec, Signature
from shipyard.store.objects import CorruptObjectError

Reload = Callable[[dict[str, bytes]], LoadedModel]


def _flip(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


class SpyFlavor(SklearnFlavor):
    """The sklearn flavor under another name, counting calls to ``load``.

    It accepts only :attr:`target`, so that registering it does not take other models
    away from the sklearn flavor.
    """

    name = "test-spy"
    loads = 0
    target: Any = None

    def accepts(self, model: Any) -> bool:
        return model is SpyFlavor.target

    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> Any:
        SpyFlavor.loads += 1
        return super().load(files, options)


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 10.0, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    X.loc[::17, "income"] = np.nan
    y = pd.Series((X["age"] > 40).astype(int) ^ (X["plan"] == "pro").astype(int))
    return X, y


@pytest.fixture(scope="module")
def pipeline(mixed: tuple[pd.DataFrame, pd.Series]) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = mixed
    prep = make_column_transformer(
        (SimpleImputer(), ["age", "income"]), (OneHotEncoder(), ["plan"])
    )
    return make_pipeline(prep, LogisticRegression(max_iter=500)).fit(X, y)


def test_meta_round_trips_canonically(pipeline: Any, mixed: tuple[pd.DataFrame, Any]) -> None:
    X, _ = mixed
    files = package_model(pipeline, input_example=X)  # 200 rows: enough to pin categories
    meta = ModelMeta.from_json(files[META_FILE])
    assert meta.format_version == FORMAT_VERSION and meta.flavor == "sklearn"
    assert set(meta.files) == {"model.skops", EXAMPLE_FILE}
    assert meta.to_json() == files[META_FILE]
    assert (
        files[META_FILE]
        == json.dumps(json.loads(files[META_FILE]), sort_keys=True, separators=(",", ":")).encode()
    )
    assert meta.classes == (0, 1) and meta.python_version.count(".") == 2
    plan = next(c for c in meta.signature.inputs if c.name == "plan")  # type: ignore[union-attr]
    assert plan.categories == ("basic", "plus", "pro")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"{not json", "not JSON"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "flavor"}).encode(), "flavor"),
        (lambda d: json.dumps({**d, "format_version": 99}).encode(), "upgrade shipyard"),
        (lambda d: json.dumps({**d, "files": {"../x": d["files"]["model.skops"]}}).encode(), "x"),
        (
            lambda d: json.dumps({**d, "signature": {"inputs": [{"name": "a"}]}}).encode(),
            r"inputs\[0\]\.type",
        ),
    ],
)
def test_bad_metadata_is_refused_with_a_fix(
    mutate: Callable[[dict[str, Any]], bytes], message: str, pipeline: Any
) -> None:
    files = package_model(pipeline)
    with pytest.raises(InvalidStateError, match=message):
        ModelMeta.from_json(mutate(json.loads(files[META_FILE])))


def test_every_tampered_file_is_refused_before_the_flavor_loads(
    pipeline: Any, mixed: tuple[pd.DataFrame, Any], reload: Reload
) -> None:
    X, _ = mixed
    register_flavor(SpyFlavor())
    SpyFlavor.target = pipeline
    try:
        files = package_model(pipeline, flavor="test-spy", input_example=X.head(5))
    finally:
        SpyFlavor.target = None
    SpyFlavor.loads = 0
    assert reload(files).flavor == "test-spy" and SpyFlavor.loads == 1
    for name in ("model.skops", EXAMPLE_FILE):
        SpyFlavor.loads = 0
        tampered = {**files, name: _flip(files[name])}
        with pytest.raises(CorruptObjectError, match=name) as info:
            reload(tampered)
        expected = json.loads(files[META_FILE])["files"][name]["digest"]
        assert expected in info.value.message and info.value.details["actual"] in info.value.message
        assert SpyFlavor.loads == 0  # nothing was deserialised


def test_a_truncated_file_is_refused_for_every_flavor(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    from lightgbm import LGBMClassifier
    from sklearn.tree import DecisionTreeClassifier
    from xgboost import XGBClassifier

    X, y = cancer
    for model in (
        DecisionTreeClassifier(max_depth=3).fit(X, y),
        XGBClassifier(n_estimators=3, max_depth=2).fit(X, y),
        LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y),
    ):
        files = package_model(model)
        (name,) = (n for n in files if n != META_FILE)
        with pytest.raises(CorruptObjectError, match="changed after the model was saved"):
            reload({**files, name: files[name][:-1]})


def test_predict_selects_and_orders_columns_by_signature(
    pipeline: Any, mixed: tuple[pd.DataFrame, Any], reload: Reload
) -> None:
    X, _ = mixed
    loaded = reload(package_model(pipeline, input_example=X.head(20)))
    shuffled = X[["plan", "income", "age"]].assign(ignored=1)
    np.testing.assert_array_equal(loaded.predict(shuffled), pipeline.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(shuffled), pipeline.predict_proba(X))


def test_predict_lists_every_signature_problem(
    pipeline: Any, mixed: tuple[pd.DataFrame, Any], reload: Reload
) -> None:
    X, _ = mixed
    loaded = reload(package_model(pipeline, input_example=X))
    bad = X.head(3).drop(columns=["income"]).assign(plan=["basic", "gold", "gold"], age=1.5)
    with pytest.raises(SchemaMismatchError) as info:
        loaded.predict(bad)
    problems = info.value.details["problems"]
    assert any("missing column 'income'" in p for p in problems)
    assert any("'gold'" in p for p in problems)
    assert any("'age' expects integer" in p for p in problems)
    with pytest.raises(InvalidInputError, match="DataFrame"):
        loaded.predict([[1, 2, 3]])


def test_numpy_models_take_arrays_checked_by_position(
    cancer: tuple[pd.DataFrame, pd.Series], reload: Reload
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    arr = X.to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(arr, y)
    loaded = reload(package_model(model, input_example=arr[:5]))
    assert loaded.signature.input_names[:2] == ["0", "1"]  # type: ignore[union-attr]
    np.testing.assert_array_equal(loaded.predict(arr), model.predict(arr))
    with pytest.raises(SchemaMismatchError, match="30 input columns"):
        loaded.predict(arr[:, :5])


def test_input_example_comes_back_with_its_types(reload: Reload) -> None:
    from sklearn.dummy import DummyClassifier

    X = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [1.0, 2.0, np.nan],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "grade": pd.Categorical(["a", "b", "a"], categories=["a", "b"]),
            "ok": [True, False, True],
            "name": ["p", "q", None],
        }
    )
    model = DummyClassifier().fit(X[["n", "x"]].fillna(0), [0, 1, 0])
    sig = Signature(
        inputs=(
            *(ColumnSpec(name=c, type="float", nullable=True) for c in ("n", "x")),
            ColumnSpec(name="when", type="datetime", nullable=False),
            ColumnSpec(name="grade", type="category", nullable=False, categories=("a", "b")),
            ColumnSpec(name="ok", type="boolean", nullable=False),
            ColumnSpec(name="name", type="string", nullable=True),
        )
    )
    loaded = reload(package_model(model, input_example=X, signature=sig))
    back = loaded.input_example()
    assert back is not None
    pd.testing.assert_frame_equal(
        back, X.astype({"n": "float64"}), check_dtype=False, check_index_type=False
    )
    assert back["when"].dtype.kind == "M" and isinstance(back["grade"].dtype, pd.CategoricalDtype)
    assert reload(package_model(model)).input_example() is None


def test_an_example_that_contradicts_the_given_signature_is_refused(pipeline: Any) -> None:
    sig = Signature(inputs=(ColumnSpec(name="age", type="string", nullable=False),))
    with pytest.raises(SchemaMismatchError, match="'age' expects string"):
        package_model(pipeline, input_example=pd.DataFrame({"age": [1, 2]}), signature=sig)


def test_package_model_refuses_bad_arguments(pipeline: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown model flavor 'nope'.*sklearn"):
        package_model(pipeline, flavor="nope")
    with pytest.raises(InvalidInputError, match="xgboost flavor cannot save a Pipeline"):
        package_model(pipeline, flavor="xgboost")
    with pytest.raises(InvalidInputError, match="task"):
        package_model(pipeline, task="")


def test_an_unknown_flavor_in_the_metadata_is_an_invalid_state(
    pipeline: Any, reload: Reload
) -> None:
    files = package_model(pipeline)
    meta = json.loads(files[META_FILE])
    meta["flavor"] = "keras"
    with pytest.raises(InvalidStateError, match="flavor 'keras', not known here"):
        reload({**files, META_FILE: json.dumps(meta).encode()})


def test_docstring_examples_run() -> None:
    result = doctest.testmod(model_folder_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
