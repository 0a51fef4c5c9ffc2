"""Model families fit every task, search spaces and overrides, leak-free and savable pipelines."""

from __future__ import annotations

import doctest
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import skops.io
from sklearn import datasets
from sklearn.model_selection import KFold, cross_validate, train_test_split
from threadpoolctl import threadpool_limits

from shipyard.core.errors import InvalidInputError
from shipyard.training import models
from shipyard.training.models import (
    FAMILIES,
    TASKS,
    ModelFamily,
    ParamSpec,
    build_pipeline,
    column_roles,
    get_family,
    load_search_space_overrides,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: the type prefixes a training run's model file may need trusted (registry/flavors/sklearn.py)
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "shipyard.training.")

FAMILY_TASKS = [(name, task) for name, family in FAMILIES.items() for task in family.tasks]

# held-out score every family reaches with its default parameters (a dummy model gets
# about 0.63 accuracy on breast cancer, 0.33 on iris and R² <= 0 on diabetes)
MIN_DEFAULT_SCORE = {"binary": 0.9, "multiclass": 0.85, "regression": 0.05}


@pytest.fixture(autouse=True)
def _one_thread_each() -> Iterator[None]:
    """OpenMP threads (HistGradientBoosting has no n_jobs) crawl on a busy shared machine."""
    with threadpool_limits(1):
        yield


@cache
def _dataset(task: str) -> tuple[pd.DataFrame, pd.Series]:
    loader = {
        "binary": datasets.load_breast_cancer,
        "multiclass": datasets.load_iris,
        "regression": datasets.load_diabetes,
    }[task]
    bunch = loader(as_frame=True)
    return bunch.data, bunch.target


@pytest.fixture
def make_split() -> Callable[[str], tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]]:
    """Factory: a fixed train/test split of the task's bundled scikit-learn dataset."""

    def make(task: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
        X, y = _dataset(task)
        stratify = None if task == "regression" else y
        parts = train_test_split(X, y, test_size=0.3, random_state=0, stratify=stratify)
        return parts[0], parts[1], parts[2], parts[3]

    return make


def _score(pipe: Any, task: str, X: pd.DataFrame, y: pd.Series) -> float:
    return float(pipe.score(X, y))  # accuracy for classifiers, R² for regressors


def _ask(family: ModelFamily, task: str, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return family.suggest(study.ask(), task, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "task"), FAMILY_TASKS)
def test_every_family_learns_every_task_with_default_and_suggested_params(
    name: str, task: Any, make_split: Callable[..., Any]
) -> None:
    family = FAMILIES[name]
    X_train, X_test, y_train, y_test = make_split(task)

    default = build_pipeline(family, task, X_train, family.default_params(task), seed=0)
    assert [step for step, _ in default.steps] == ["preprocess", "model"]
    default.fit(X_train, y_train)
    assert _score(default, task, X_test, y_test) > MIN_DEFAULT_SCORE[task]

    params = _ask(family, task)
    assert set(params) == set(family.search_space(task))
    tuned = build_pipeline(family, task, X_train, params, seed=0).fit(X_train, y_train)
    model = tuned.named_steps["model"]
    if (name == "svm" or family.needs_encoded_labels) and task != "regression":
        model = model.estimator  # inside CalibratedClassifierCV / LabelEncodedClassifier
    for key, value in params.items():
        assert model.get_params()[key] == value
    predictions = tuned.predict(X_test)
    assert predictions.shape == (len(X_test),)
    if task == "regression":
        assert np.isfinite(predictions).all()
    else:
        assert set(np.unique(predictions)) <= set(y_train)
        proba = tuned.predict_proba(X_test)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


# smaller ensembles, so that fitting every family twice stays quick
FEWER_TREES = {
    name: {size: {"type": "int", "low": 10, "high": 40}}
    for name, size in [
        ("random_forest", "n_estimators"), ("hist_gradient_boosting", "max_iter"),
        ("xgboost", "n_estimators"), ("lightgbm", "n_estimators"),
    ]
}  # fmt: skip


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_same_seed_gives_identical_predictions(name: str) -> None:
    family = FAMILIES[name]
    X, y = _dataset("binary")
    params = _ask(family, "binary", seed=3, overrides=FEWER_TREES)

    def probabilities(seed: int) -> np.ndarray[Any, Any]:
        pipe = build_pipeline(family, "binary", X, params, seed=seed).fit(X, y)
        return np.asarray(pipe.predict_proba(X))

    np.testing.assert_array_equal(probabilities(7), probabilities(7))


def test_a_different_seed_changes_a_random_forest() -> None:
    X, y = _dataset("binary")
    family = FAMILIES["random_forest"]
    params = family.default_params("binary") | {"n_estimators": 10}

    def probabilities(seed: int) -> np.ndarray[Any, Any]:
        pipe = build_pipeline(family, "binary", X, params, seed=seed).fit(X, y)
        return np.asarray(pipe.predict_proba(X))

    assert not np.array_equal(probabilities(1), probabilities(2))


@pytest.mark.parametrize(("name", "task"), FAMILY_TASKS)
def test_estimators_are_seeded_and_single_threaded(name: str, task: Any) -> None:
    params = FAMILIES[name].make_estimator(task, {}, seed=42).get_params()
    seeded = {"linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"}
    if name in seeded:
        assert params["random_state"] == 42
    if name == "svm" and task != "regression":
        assert params["estimator__random_state"] == 42
    threaded = {"random_forest", "knn", "xgboost", "lightgbm"}
    if name in threaded or (name == "svm" and task != "regression"):
        assert params["n_jobs"] == 1


def _frame_with_all_roles(n: int = 90, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numbers with gaps, every categorical dtype with missing values, datetimes; a target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    count = pd.array(rng.integers(0, 10, n), dtype="Int64")
    count[rng.choice(n, 5, replace=False)] = pd.NA
    x_gappy = x.copy()
    x_gappy[rng.choice(n, 6, replace=False)] = np.nan
    city = rng.choice(np.array(["oslo", "rome", "lima", None], dtype=object), n)
    X = pd.DataFrame(
        {
            "x": x_gappy,
            "count": count,
            "city": city,
            "plan": pd.Categorical(rng.choice(["a", "b", np.nan], n)),
            "code": pd.array(rng.choice(["u", "v", None], n), dtype="string"),
            "active": rng.choice([True, False], n),
            "mixed": rng.choice(np.array([1, "one", 2.5, None], dtype=object), n),
            "signup": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        }
    )
    X.loc[X.index[:4], "signup"] = pd.NaT
    y = pd.Series((x + (city == "oslo") > 0.3).astype(int), name="y")
    return X, y


def test_column_roles_follow_the_dtypes() -> None:
    X, _ = _frame_with_all_roles()
    X["when_utc"] = X["signup"].dt.tz_localize("UTC")
    assert column_roles(X) == {
        "numeric": ["x", "count"],
        "categorical": ["city", "plan", "code", "active", "mixed"],
        "datetime": ["signup", "when_utc"],
    }


def test_an_unusable_dtype_is_refused_by_name() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0], "wait": pd.to_timedelta([1, 2], unit="s")})
    with pytest.raises(InvalidInputError, match=r"column 'wait' has dtype timedelta64.*drop it"):
        build_pipeline("random_forest", "binary", X, {}, seed=0)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_takes_missing_values_of_every_dtype(name: str) -> None:
    X, y = _frame_with_all_roles()
    pipe = build_pipeline(name, "binary", X, {}, seed=0).fit(X, y)
    new = X.head(3).copy()
    new.loc[:, ["city", "mixed"]] = ["paris", "never seen"]  # categories fit never saw
    new.loc[new.index[0], "x"] = np.nan
    assert pipe.predict(new).shape == (3,)


def test_categoricals_are_one_hot_for_linear_models_and_ordinal_for_trees() -> None:
    X, y = _frame_with_all_roles()
    linear = build_pipeline("linear", "binary", X, {}, seed=0).fit(X, y)
    forest = build_pipeline("random_forest", "binary", X, {}, seed=0).fit(X, y)
    new = X.head(1).assign(city="paris")

    linear_names = list(linear[:-1].get_feature_names_out())
    assert "categorical__city_oslo" in linear_names
    assert not any("paris" in n for n in linear_names)
    row = dict(zip(linear_names, linear[:-1].transform(new)[0], strict=True))
    assert [row[f"categorical__city_{c}"] for c in ("lima", "oslo", "rome")] == [0, 0, 0]
    assert "scale" in linear.named_steps["preprocess"].named_transformers_["numeric"].named_steps

    forest_names = list(forest[:-1].get_feature_names_out())
    assert "categorical__city" in forest_names
    row = dict(zip(forest_names, forest[:-1].transform(new)[0], strict=True))
    assert row["categorical__city"] == -1
    assert (
        "scale" not in forest.named_steps["preprocess"].named_transformers_["numeric"].named_steps
    )


def test_datetime_columns_become_year_month_day_and_weekday() -> None:
    X = pd.DataFrame(
        {"at": pd.to_datetime(["2024-02-29", "2023-12-31", None, "2022-07-04"]), "v": [1, 2, 3, 4]}
    )
    pipe = build_pipeline("random_forest", "regression", X, {}, seed=0).fit(X, [1.0, 2, 3, 4])
    out = pd.DataFrame(pipe[:-1].transform(X), columns=pipe[:-1].get_feature_names_out())
    parts = out[[f"datetime__at_{p}" for p in ("year", "month", "day", "day_of_week")]]
    assert parts.iloc[0].tolist() == [2024, 2, 29, 3]  # a Thursday
    assert parts.iloc[1].tolist() == [2023, 12, 31, 6]  # a Sunday
    assert parts.iloc[2].tolist() == [2023, 7, 29, 3]  # missing: the medians of the 3 rows


def test_cross_validation_learns_preprocessing_from_the_training_folds_only() -> None:
    X, y = _frame_with_all_roles(n=90)
    # the last fold holds an extreme value and a category no other fold has
    X.loc[X.index[-5], "x"] = 1e6
    X.loc[X.index[-3:], "city"] = "atlantis"
    pipe = build_pipeline("linear", "binary", X, {}, seed=0)
    result = cross_validate(
        pipe, X, y, cv=KFold(n_splits=3), return_estimator=True, return_indices=True
    )
    assert np.isfinite(result["test_score"]).all()  # the unseen category scored, no error
    for fitted, train in zip(result["estimator"], result["indices"]["train"], strict=True):
        rows = X.iloc[train]
        preprocess = fitted.named_steps["preprocess"].named_transformers_
        imputer, scaler = (preprocess["numeric"].named_steps[s] for s in ("impute", "scale"))
        medians = [rows["x"].median(), rows["count"].astype(float).median()]
        np.testing.assert_allclose(imputer.statistics_, medians)
        filled = rows["x"].fillna(rows["x"].median())
        np.testing.assert_allclose(scaler.mean_[0], filled.mean())
        np.testing.assert_allclose(scaler.scale_[0], filled.std(ddof=0))
        learned = preprocess["categorical"].named_steps["encode"].categories_[0]
        assert set(learned) - {"infrequent_sklearn"} == set(rows["city"].dropna())
    held_out_last = result["estimator"][-1].named_steps["preprocess"].named_transformers_
    assert held_out_last["numeric"].named_steps["scale"].mean_[0] < 10  # 1e6 never seen
    assert "atlantis" not in held_out_last["categorical"].named_steps["encode"].categories_[0]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_fitted_pipeline_round_trips_through_skops(name: str) -> None:
    X, y = _frame_with_all_roles()
    pipe = build_pipeline(name, "binary", X, {}, seed=0).fit(X, y)
    data = skops.io.dumps(pipe)
    untrusted = skops.io.get_untrusted_types(data=data)
    assert [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)] == (
        ["collections.OrderedDict"] if name == "lightgbm" else []  # in a LightGBM Booster
    )
    loaded = skops.io.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_every_family_takes_text_class_labels() -> None:
    X, y = _dataset("multiclass")
    names = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y], index=y.index)
    for family in FAMILIES.values():
        pipe = build_pipeline(family, "multiclass", X, {}, seed=0).fit(X, names)
        assert set(pipe.predict(X)) <= set(names), family.name  # XGBoost: labels encoded
        assert list(pipe.classes_) == ["setosa", "versicolor", "virginica"]


def test_get_family_knows_aliases_and_lists_the_names_it_knows() -> None:
    assert get_family("logreg") is FAMILIES["linear"]
    assert get_family("Random_Forest") is FAMILIES["random_forest"]
    with pytest.raises(InvalidInputError, match="did you mean 'random_forest'") as info:
        get_family("random_forrest")
    for name in FAMILIES:
        assert name in info.value.message


def test_a_family_whose_library_is_missing_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = models.importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util, "find_spec", lambda n, *a: None if n == "lightgbm" else real(n, *a)
    )
    with pytest.raises(InvalidInputError, match=r"pip install 'shipyard\[lightgbm\]'"):
        get_family("lightgbm")
    with pytest.raises(InvalidInputError, match=r"pip install 'shipyard\[lightgbm\]'"):
        FAMILIES["lightgbm"].make_estimator("binary", {}, seed=0)
    assert "lightgbm" not in [f.name for f in models.available_families()]
    assert get_family("xgboost").name == "xgboost"


def test_svm_refuses_more_rows_than_it_can_fit_in_reasonable_time() -> None:
    X = pd.DataFrame({"x": np.zeros(20_001)})
    with pytest.raises(InvalidInputError, match=r"at most 20,000 training rows.*got 20,001"):
        build_pipeline("svm", "binary", X, {}, seed=0)
    assert build_pipeline("svm", "binary", X.iloc[:20_000], {}, seed=0) is not None


def test_make_estimator_refuses_unknown_params_tasks_and_seeds() -> None:
    family = FAMILIES["random_forest"]
    with pytest.raises(InvalidInputError, match=r"no parameters \['n_trees'\].*n_estimators"):
        family.make_estimator("binary", {"n_trees": 3}, seed=0)
    with pytest.raises(InvalidInputError, match="pass the seed argument"):
        family.make_estimator("binary", {"random_state": 3}, seed=0)
    with pytest.raises(InvalidInputError, match="task must be one of binary, multiclass"):
        family.make_estimator("ranking", {}, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="seed must be an integer"):
        family.make_estimator("binary", {}, seed=-1)
    assert family.make_estimator("binary", {"criterion": "entropy"}, seed=0).criterion == "entropy"


def test_every_default_search_space_is_valid_and_documented() -> None:
    for name, family in FAMILIES.items():
        for task in TASKS:
            space = family.search_space(task)
            assert space, (name, task)
            assert set(family.default_params(task)) == set(space)
            for param in space:
                assert param in models.__doc__, (name, param)  # the module documents it


OVERRIDES_YAML = """
random_forest:
  n_estimators: {type: int, low: 100, high: 300}
  max_depth: {type: categorical, choices: [4, 8, null]}
logreg:
  C: {type: float, low: 1e-2, high: 10, log: true}
"""


def test_yaml_overrides_narrow_the_search_space(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(OVERRIDES_YAML, encoding="utf-8")
    overrides = load_search_space_overrides(path)
    assert overrides["random_forest"]["max_depth"].choices == (4, 8, None)
    assert overrides["linear"]["C"] == ParamSpec("float", 0.01, 10.0, log=True)

    forest = FAMILIES["random_forest"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [forest.suggest(study.ask(), "binary", overrides["random_forest"]) for _ in range(40)]
    assert all(100 <= p["n_estimators"] <= 300 for p in drawn)
    assert {p["max_depth"] for p in drawn} == {4, 8, None}
    assert {p["min_samples_leaf"] for p in drawn} - {1}  # other parameters keep their space
    fixed = optuna.trial.FixedTrial({f"random_forest.{k}": v for k, v in drawn[0].items()})
    assert forest.suggest(fixed, "binary", overrides) == drawn[0]  # the whole mapping works too
    linear = [_ask(FAMILIES["linear"], "binary", seed=s, overrides=overrides) for s in range(20)]
    assert all(0.01 <= p["C"] <= 10 for p in linear)


def test_suggest_names_trial_params_by_family() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    FAMILIES["random_forest"].suggest(trial, "binary")
    FAMILIES["lightgbm"].suggest(trial, "binary")  # both have n_estimators: no clash
    assert {"random_forest.max_depth", "lightgbm.n_estimators"} <= set(trial.params)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"random_forrest": {}}, r"key 'random_forrest'.*did you mean 'random_forest'"),
        ({"random_forest": {"n_estimator": {}}}, r"random_forest\.n_estimator: .*n_estimators"),
        ({"knn": {"p": {"type": "int", "low": 5, "high": 1}}}, r"knn\.p: 'low' \(5\) must not"),
        ({"knn": {"p": {"low": 1, "high": 2}}}, r"knn\.p: 'type' is required"),
        ({"knn": {"p": {"type": "categorical", "choices": []}}}, r"knn\.p: 'choices' must list"),
        ({"knn": {"p": {"type": "int", "low": 1, "hi": 2}}}, r"knn\.p: unknown keys \['hi'\]"),
        ({"knn": {"p": {"type": "int", "low": 1.5, "high": 2}}}, r"knn\.p: 'low' must be an int"),
        ({"svm": {"C": {"type": "float", "low": 0, "high": 1, "log": True}}}, r"svm\.C: 'log'"),
        ({"svm": {"C": [1, 2]}}, r"svm\.C: must be a mapping"),
        ({"svm": [1]}, r"svm: must map parameter names"),
    ],
)
def test_malformed_overrides_name_the_yaml_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_search_space_overrides(data)


def test_an_overrides_file_must_exist_and_parse(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_search_space_overrides(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("knn: {p: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not YAML"):
        load_search_space_overrides(bad)


def test_the_documented_examples_run() -> None:
    result = doctest.testmod(models, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0


def test_importing_the_module_loads_no_machine_learning_library() -> None:
    heavy = ("sklearn", "optuna", "lightgbm", "xgboost")
    code = (
        "import sys, shipyard.training.models as m; m.FAMILIES['svm'].default_params('binary'); "
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
