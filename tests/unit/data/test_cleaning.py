"""Cleaning steps against hand computation, fit-only learning, the scikit-learn export, specs."""

from __future__ import annotations

import doctest
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from shipyard.core.errors import InvalidInputError, NotFittedError, SchemaMismatchError
from shipyard.data import cleaning
from shipyard.data.cleaning import (
    SKOPS_TRUSTED_TYPES,
    Cleaner,
    CleaningSpec,
    ClipOutliers,
    Deduplicate,
    DropColumns,
    Impute,
    Normalize,
    OneHotEncode,
    OrdinalEncode,
    Scale,
    clean_frame,
)

BRIEF_YAML = """
steps:
  - impute: {columns: numeric, strategy: median}
  - one_hot_encode: {columns: [region], handle_unknown: ignore}
  - clip_outliers: {columns: [income], method: iqr, factor: 1.5}
  - drop_columns: {columns: [customer_id]}
"""


@pytest.fixture
def make_customers() -> Callable[..., pd.DataFrame]:
    """Factory: a customers frame with missing values, outliers and categories (seeded)."""

    def make(
        n: int = 60, seed: int = 0, regions: tuple[str, ...] = ("n", "s", "e")
    ) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        income = rng.normal(50_000, 8_000, n)
        rows = rng.choice(n, 8, replace=False)
        income[rows[:3]] = [400_000, -90_000, 1e6]
        income[rows[3:]] = np.nan
        age = rng.integers(18, 80, n).astype(float)
        age[rng.choice(n, 4, replace=False)] = np.nan
        region = rng.choice(np.array(regions, dtype=object), n)
        region[rng.choice(n, 3, replace=False)] = np.nan
        return pd.DataFrame(
            {
                "customer_id": np.arange(n) + 1000,
                "age": age,
                "region": pd.array(region, dtype="str"),
                "income": income,
                "churned": rng.integers(0, 2, n).astype(bool),
            },
            index=pd.RangeIndex(500, 500 + n),
        )

    return make


# -- each step against hand computation ------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("median", 3.0), ("mean", 14 / 4), ("most_frequent", 1.0), ("constant", -7.0)],
)
def test_impute_fills_with_the_statistic_of_the_fit_data(strategy: str, expected: float) -> None:
    df = pd.DataFrame({"x": [1.0, np.nan, 1.0, 5.0, np.nan, 7.0], "k": list("abcdef")})
    fill = -7.0 if strategy == "constant" else None
    out, _, report = clean_frame(df, [Impute(["x"], strategy=strategy, fill_value=fill)])  # type: ignore[arg-type]
    assert out["x"].tolist() == [1.0, expected, 1.0, 5.0, expected, 7.0]
    assert out["k"].tolist() == list("abcdef")
    assert report.steps[0].values_imputed == {"x": 2}


def test_impute_most_frequent_on_text_keeps_text() -> None:
    df = pd.DataFrame({"c": ["a", None, "b", "b"], "n": [1, 2, 3, 4]})
    out, _, report = clean_frame(df, [Impute("categorical", strategy="most_frequent")])
    assert out["c"].tolist() == ["a", "b", "b", "b"]
    assert out["n"].dtype == np.int64  # untouched columns keep their dtype
    assert report.steps[0].values_imputed == {"c": 1}


def test_scale_methods_match_hand_computation() -> None:
    x = np.array([1.0, 2.0, 4.0, 9.0, np.nan])
    df = pd.DataFrame({"x": x})
    seen = x[:4]
    standard = (x - seen.mean()) / seen.std(ddof=0)
    minmax = (x - 1.0) / 8.0
    q1, med, q3 = np.percentile(seen, [25, 50, 75])
    robust = (x - med) / (q3 - q1)
    for method, expected in (("standard", standard), ("minmax", minmax), ("robust", robust)):
        out, _, _ = clean_frame(df, [Scale(["x"], method=method)])  # type: ignore[arg-type]
        np.testing.assert_allclose(out["x"].to_numpy(), expected, equal_nan=True)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalize_is_row_wise_over_the_selected_columns(norm: str) -> None:
    df = pd.DataFrame({"a": [3.0, 0.0, -1.0], "keep": [9, 9, 9], "b": [4.0, 0.0, 1.0]})
    out, _, _ = clean_frame(df, [Normalize(["a", "b"], norm=norm)])  # type: ignore[arg-type]
    values = df[["a", "b"]].to_numpy()
    ord_ = {"l1": 1, "l2": 2, "max": np.inf}[norm]
    norms = np.linalg.norm(values, ord=ord_, axis=1, keepdims=True)
    expected = values / np.where(norms == 0, 1, norms)
    np.testing.assert_allclose(out[["a", "b"]].to_numpy(), expected)
    assert list(out.columns) == ["a", "b", "keep"]  # the block sits at its first column
    assert out["keep"].tolist() == [9, 9, 9]


def test_normalize_refuses_missing_values() -> None:
    df = pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, 2.0]})
    with pytest.raises(InvalidInputError, match=r"step 0 \(normalize\).*\['a'\].*impute"):
        clean_frame(df, [Normalize(["a", "b"])])


def test_one_hot_encode_replaces_the_column_in_place_and_ignores_unknowns() -> None:
    df = pd.DataFrame({"id": [1, 2, 3, 4], "city": ["b", "a", None, "b"], "v": [0.5] * 4})
    out, cleaner, report = clean_frame(df, [OneHotEncode(["city"])])
    assert list(out.columns) == ["id", "city_a", "city_b", "city_nan", "v"]
    assert out["city_b"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert out["city_nan"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert report.steps[0].columns_added == ("city_a", "city_b", "city_nan")
    assert report.steps[0].columns_removed == ("city",)
    unseen = cleaner.transform(pd.DataFrame({"id": [9], "city": ["zz"], "v": [1.0]}))
    assert unseen[["city_a", "city_b", "city_nan"]].to_numpy().tolist() == [[0.0, 0.0, 0.0]]


def test_one_hot_encode_error_and_infrequent_options() -> None:
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c", "d"]})
    strict = Cleaner(spec=[OneHotEncode(["c"], handle_unknown="error")]).fit(df)
    with pytest.raises(InvalidInputError, match=r"step 0 \(one_hot_encode\).*unknown categor"):
        strict.transform(pd.DataFrame({"c": ["zz"]}))
    capped = Cleaner(spec=[OneHotEncode(["c"], max_categories=3)]).fit(df)
    assert list(capped.get_feature_names_out()) == ["c_a", "c_b", "c_infrequent_sklearn"]
    assert capped.transform(pd.DataFrame({"c": ["d"]}))["c_infrequent_sklearn"].item() == 1.0


def test_ordinal_encode_with_given_order_and_unknown_value() -> None:
    df = pd.DataFrame({"size": ["M", "S", "L", None], "other": ["x", "y", "x", "y"]})
    spec = [
        OrdinalEncode(["size"], categories={"size": ["S", "M", "L"]}),
        OrdinalEncode(["other"]),
    ]
    out, cleaner, _ = clean_frame(df, spec)
    assert out["size"].tolist()[:3] == [1.0, 0.0, 2.0]
    assert np.isnan(out["size"].iloc[3])
    assert out["other"].tolist() == [0.0, 1.0, 0.0, 1.0]  # learned, sorted
    new = cleaner.transform(pd.DataFrame({"size": ["XL"], "other": ["q"]}))
    assert new.to_numpy().tolist() == [[-1.0, -1.0]]
    strict = Cleaner(spec=[OrdinalEncode(["other"], handle_unknown="error")]).fit(df)
    with pytest.raises(InvalidInputError, match=r"step 0 \(ordinal_encode\).*unknown categor"):
        strict.transform(pd.DataFrame({"size": ["S"], "other": ["q"]}))


def test_ordinal_encode_categories_must_cover_the_encoded_columns() -> None:
    df = pd.DataFrame({"a": ["x"], "b": ["y"]})
    with pytest.raises(InvalidInputError, match=r"step 0 \(ordinal_encode\).*missing for \['b'\]"):
        clean_frame(df, [OrdinalEncode(["a", "b"], categories={"a": ["x"]})])


@pytest.mark.parametrize(
    ("step", "bounds"),
    [
        # sorted values: -50 1 2 3 4 6 7 8 100, so Q1 = 2, Q3 = 7, IQR = 5
        (ClipOutliers(["x"]), (2 - 1.5 * 5, 7 + 1.5 * 5)),
        (ClipOutliers(["x"], method="iqr", factor=0.5), (2 - 0.5 * 5, 7 + 0.5 * 5)),
        # linear interpolation: position 0.8 and 7.2 of the sorted values
        (
            ClipOutliers(["x"], method="quantile", lower_q=0.1, upper_q=0.9),
            (-50 + 0.8 * 51, 8 + 0.2 * 92),
        ),
        (ClipOutliers(["x"], method="zscore", factor=1.0), None),
    ],
)
def test_clip_outliers_bounds_and_counts(
    step: ClipOutliers, bounds: tuple[float, float] | None
) -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0, 100.0, -50.0, np.nan])
    seen = x[~np.isnan(x)]
    if bounds is None:  # mean -/+ population std
        bounds = (seen.mean() - seen.std(ddof=0), seen.mean() + seen.std(ddof=0))
    assert step.bounds(pd.Series(x)) == pytest.approx(bounds)
    out, _, report = clean_frame(pd.DataFrame({"x": x}), [step])
    np.testing.assert_allclose(out["x"].to_numpy(), np.clip(x, *bounds), equal_nan=True)
    outside = int(((seen < bounds[0]) | (seen > bounds[1])).sum())
    assert outside > 0 and report.steps[0].values_clipped == {"x": outside}


def test_clip_outliers_zscore_default_factor_is_three() -> None:
    rng = np.random.default_rng(3)
    x = np.append(rng.normal(0, 1, 500), [50.0])
    out, cleaner, _ = clean_frame(pd.DataFrame({"x": x}), [ClipOutliers(["x"], method="zscore")])
    assert out["x"].max() == pytest.approx(x.mean() + 3 * x.std(ddof=0))
    assert cleaner.resolved_spec_.steps[0].factor == 3.0  # type: ignore[attr-defined]


def test_drop_columns_and_selectors() -> None:
    df = pd.DataFrame(
        {
            "i": [1, 2],
            "f": [1.5, np.nan],
            "flag": [True, False],
            "s": ["a", "b"],
            "cat": pd.Categorical(["x", "y"]),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    out, cleaner, _ = clean_frame(df, [DropColumns("categorical"), Impute("numeric")])
    assert list(out.columns) == ["i", "f", "when"]
    resolved = cleaner.resolved_spec_.steps
    assert resolved[0].columns == ("flag", "s", "cat")  # type: ignore[attr-defined]
    assert resolved[1].columns == ("i", "f")  # type: ignore[attr-defined]
    out_all, _, _ = clean_frame(df, [DropColumns("all")])
    assert out_all.shape == (2, 0)


def test_selector_matching_nothing_is_a_no_op() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0]})
    out, cleaner, report = clean_frame(df, [OneHotEncode("categorical")])
    pd.testing.assert_frame_equal(out, df)
    assert cleaner.steps_[0].transformer is None
    assert report.steps[0].columns == ()


def test_deduplicate_is_dataset_level_only() -> None:
    df = pd.DataFrame({"k": [1, 1, 2, 2, 3], "v": [1.0, 1.0, 2.0, 5.0, 3.0]}, index=list("abcde"))
    out, cleaner, report = clean_frame(df, [Deduplicate(), Scale(["v"], method="minmax")])
    assert list(out.index) == ["a", "c", "d", "e"]
    assert report.steps[0].rows_dropped == 1 and report.rows_out == 4
    # later steps learned from the deduplicated rows; transform keeps every row
    served = cleaner.transform(df)
    assert list(served.index) == list("abcde")
    assert served["v"].tolist() == [0.0, 0.0, 0.25, 1.0, 0.5]
    assert len(cleaner.fit_transform(df)) == 5
    last, _, _ = clean_frame(df, [Deduplicate(subset=["k"], keep="last")])
    assert list(last.index) == ["b", "d", "e"]
    none, _, _ = clean_frame(df, [Deduplicate(subset=["k"], keep=False)])
    assert list(none.index) == ["e"]


# -- fit learns from the data passed to fit only ----------------------------------------


def test_fit_learns_from_train_only_and_transform_changes_nothing(
    make_customers: Callable[..., pd.DataFrame],
) -> None:
    train, test = make_customers(seed=1), make_customers(n=40, seed=2, regions=("n", "w"))
    spec = CleaningSpec.from_yaml(BRIEF_YAML)
    cleaner = Cleaner(spec=spec).fit(train)
    before = cleaner.transform(train)
    served = cleaner.transform(test)
    pd.testing.assert_frame_equal(cleaner.transform(train), before)  # no state moved
    # the statistics are the train ones, computed by hand
    median_age = train["age"].median()
    filled = test["age"].isna()
    assert (served.loc[filled, "age"] == median_age).all()
    x = train["income"].fillna(train["income"].median())
    q1, q3 = x.quantile(0.25), x.quantile(0.75)
    high = q3 + 1.5 * (q3 - q1)
    assert served["income"].max() <= high + 1e-9
    # a category only the test data has ("w") gets all zeros, no new column
    assert "region_w" not in served.columns
    assert (
        (served.loc[test["region"] == "w", ["region_n", "region_s", "region_e"]] == 0).all().all()
    )
    # refitting on other data changes what is learned (the statistics really are fitted)
    other = Cleaner(spec=spec).fit(test).transform(test)
    assert not other["income"].equals(served["income"])


def test_transform_checks_columns_and_ignores_order_and_extras(
    make_customers: Callable[..., pd.DataFrame],
) -> None:
    df = make_customers()
    cleaner = Cleaner(spec=CleaningSpec.from_yaml(BRIEF_YAML)).fit(df)
    shuffled = df[list(reversed(df.columns))].assign(extra=1)
    pd.testing.assert_frame_equal(cleaner.transform(shuffled), cleaner.transform(df))
    with pytest.raises(SchemaMismatchError, match=r"\['age', 'income'\]") as info:
        cleaner.transform(df.drop(columns=["age", "income"]))
    assert info.value.details["missing"] == ["age", "income"]


def test_unfitted_cleaner_raises_not_fitted() -> None:
    cleaner = Cleaner(spec=[Impute("numeric")])
    for call in (
        lambda: cleaner.transform(pd.DataFrame({"x": [1.0]})),
        cleaner.to_sklearn,
        cleaner.get_feature_names_out,
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()


def test_fit_errors_name_the_step() -> None:
    df = pd.DataFrame({"s": ["a", "b"], "empty": [np.nan, np.nan]})
    with pytest.raises(InvalidInputError, match=r"step 0 \(scale\).*numeric.*'s'"):
        Cleaner(spec=[Scale(["s"])]).fit(df)
    with pytest.raises(InvalidInputError, match=r"step 1 \(impute\).*\['empty'\].*no values"):
        Cleaner(spec=[DropColumns(["s"]), Impute(["empty"])]).fit(df)
    with pytest.raises(SchemaMismatchError, match=r"step 0 \(impute\).*\['nope'\]"):
        Cleaner(spec=[Impute(["nope"])]).fit(df)
    with pytest.raises(InvalidInputError, match="string column names"):
        Cleaner().fit(pd.DataFrame({0: [1.0]}))


def test_text_in_a_numeric_column_at_serving_is_an_input_error() -> None:
    cleaner = Cleaner(spec=[Scale(["x"])]).fit(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(InvalidInputError, match=r"step 0 \(scale\)"):
        cleaner.transform(pd.DataFrame({"x": ["one"]}))


def test_numpy_input_gets_x_names() -> None:
    cleaner = Cleaner(spec=[Scale(["x1"], method="minmax")]).fit(np.array([[1.0, 0.0], [2.0, 4.0]]))
    assert list(cleaner.get_feature_names_out()) == ["x0", "x1"]
    assert cleaner.transform(np.array([[5.0, 2.0]]))["x1"].item() == 0.5


# -- scikit-learn contract and the exported pipeline -------------------------------------


def test_sklearn_contract_clone_pipeline_and_cross_validation(
    make_customers: Callable[..., pd.DataFrame],
) -> None:
    df = make_customers(n=120)
    spec = CleaningSpec.from_yaml(BRIEF_YAML)
    cleaner = Cleaner(spec=spec)
    assert cleaner.get_params() == {"spec": spec}
    assert cleaner.fit(df) is cleaner
    cloned = clone(cleaner)
    assert not hasattr(cloned, "steps_") and cloned.spec == spec
    model = make_pipeline(Cleaner(spec=spec), LogisticRegression(max_iter=500))
    scores = cross_val_score(model, df.drop(columns="churned"), df["churned"], cv=3)
    assert len(scores) == 3
    pandas_out = Cleaner(spec=spec).set_output(transform="pandas").fit_transform(df)
    assert list(pandas_out.index) == list(df.index)
    pd.testing.assert_frame_equal(pandas_out, Cleaner(spec=spec).fit(df).transform(df))


def test_to_sklearn_matches_transform_on_new_data_and_survives_skops(
    make_customers: Callable[..., pd.DataFrame],
) -> None:
    train = make_customers(seed=4)
    fresh = make_customers(n=30, seed=5, regions=("n", "s", "q"))
    fresh.loc[fresh.index[:2], "income"] = [5e6, -5e6]
    spec = CleaningSpec(
        (
            Deduplicate(),
            Impute("numeric", strategy="median"),
            Impute(["region"], strategy="constant", fill_value="unknown"),
            ClipOutliers(["income", "age"], method="quantile", lower_q=0.05, upper_q=0.95),
            Scale(["income"], method="robust"),
            Normalize(["age", "income"]),
            OrdinalEncode(["churned"]),
            OneHotEncode(["region"], max_categories=3, handle_unknown="infrequent_if_exist"),
            DropColumns(["customer_id"]),
        )
    )
    cleaner = Cleaner(spec=spec).fit(train)
    pipeline = cleaner.to_sklearn()
    expected = cleaner.transform(fresh)
    pd.testing.assert_frame_equal(pipeline.transform(fresh), expected)
    assert list(pipeline.get_feature_names_out()) == list(cleaner.get_feature_names_out())
    data = skops.io.dumps(pipeline)
    untrusted = skops.io.get_untrusted_types(data=data)
    assert set(untrusted) <= set(SKOPS_TRUSTED_TYPES)
    loaded = skops.io.loads(data, trusted=untrusted)
    pd.testing.assert_frame_equal(loaded.transform(fresh), expected)
    # the export is a copy: changing it leaves the cleaner alone
    pipeline.steps.clear()
    pd.testing.assert_frame_equal(cleaner.transform(fresh), expected)


def test_to_sklearn_of_an_empty_spec_selects_the_fitted_columns() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    cleaner = Cleaner().fit(df)
    out = cleaner.to_sklearn().transform(df.assign(c=0)[["c", "b", "a"]])
    pd.testing.assert_frame_equal(out, df)
    pd.testing.assert_frame_equal(cleaner.transform(df), df)


# -- specs: YAML, dicts and their errors -------------------------------------------------


def test_the_yaml_of_the_brief_parses_and_round_trips(tmp_path: Path) -> None:
    spec = CleaningSpec.from_yaml(BRIEF_YAML)
    assert spec.steps == (
        Impute("numeric", strategy="median"),
        OneHotEncode(["region"], handle_unknown="ignore"),
        ClipOutliers(["income"], method="iqr", factor=1.5),
        DropColumns(["customer_id"]),
    )
    assert CleaningSpec.from_yaml(spec.to_yaml()) == spec
    assert CleaningSpec.from_dict(spec.to_dict()) == spec
    path = tmp_path / "clean.yaml"
    path.write_text(spec.to_yaml())
    assert CleaningSpec.from_yaml(path) == spec
    every = CleaningSpec(
        (
            OrdinalEncode(["a"], categories={"a": [3, 1, 2]}, unknown_value=-2),
            Deduplicate(subset=["a"], keep=False),
            Normalize("numeric", norm="max"),
            Scale("all", method="minmax"),
            Impute(["s"], strategy="constant", fill_value="?"),
        )
    )
    assert CleaningSpec.from_yaml(every.to_yaml()) == every
    assert CleaningSpec.from_dict({"steps": ["deduplicate"]}).steps == (Deduplicate(),)
    assert CleaningSpec.from_yaml("") == CleaningSpec()


@pytest.mark.parametrize(
    ("spec", "pattern", "details"),
    [
        (
            {"steps": [{"impute": {"columns": "numeric"}}, {"normalise": {"columns": ["x"]}}]},
            r"steps\[1\]: unknown step 'normalise' \(did you mean 'normalize'\?\); steps are",
            {"step": 1, "step_name": "normalise"},
        ),
        (
            {"steps": [{"impute": {"columns": ["x"], "stratgy": "mean"}}]},
            r"steps\[0\] \(impute\): unknown option 'stratgy' \(did you mean 'strategy'\?\)",
            {"step": 0, "option": "stratgy"},
        ),
        (
            {
                "steps": [
                    {"drop_columns": {"columns": ["id"]}},
                    {"scale": {"columns": ["x"], "method": "zscore"}},
                ]
            },
            r"steps\[1\] \(scale\): option 'method' must be one of "
            r"'standard', 'minmax', 'robust'; got 'zscore'",
            {"step": 1, "option": "method", "allowed": ["standard", "minmax", "robust"]},
        ),
        (
            {"steps": [{"clip_outliers": {"columns": ["x"], "lower_q": 0.9, "upper_q": 0.1}}]},
            r"steps\[0\] \(clip_outliers\): option 'lower_q' and 'upper_q' must satisfy",
            {"step": 0, "option": "lower_q"},
        ),
        (
            {"steps": [{"one_hot_encode": {"columns": "region"}}]},
            r"steps\[0\] \(one_hot_encode\): option 'columns' is the string 'region', "
            r"not a selector.*\['region'\]",
            {"step": 0, "option": "columns", "allowed": ["numeric", "categorical", "all"]},
        ),
        (
            {"steps": [{"scale": {"method": "robust"}}]},
            r"steps\[0\] \(scale\): option 'columns' is required",
            {"step": 0, "option": "columns"},
        ),
        (
            {"steps": [{"impute": {"columns": ["x"], "strategy": "constant"}}]},
            r"steps\[0\] \(impute\): option 'fill_value' is required with strategy 'constant'",
            {"step": 0, "option": "fill_value"},
        ),
        (
            {"steps": [{"deduplicate": {"keep": True}}]},
            r"steps\[0\] \(deduplicate\): option 'keep' must be one of 'first', 'last', False",
            {"step": 0, "option": "keep"},
        ),
        (
            {"steps": [{"one_hot_encode": {"columns": ["c"], "max_categories": 1}}]},
            r"option 'max_categories' must be >= 2",
            {"step": 0, "option": "max_categories"},
        ),
        (
            {"steps": [{"impute": {}, "scale": {}}]},
            r"steps\[0\] must be a mapping with one key",
            {"step": 0},
        ),
        ({"steps": "impute"}, r"'steps' must be a list", {}),
        ({"step": []}, r"one key, 'steps'; got \['step'\]", {}),
    ],
)
def test_bad_specs_name_the_step_the_option_and_the_allowed_values(
    spec: dict[str, object], pattern: str, details: dict[str, object]
) -> None:
    with pytest.raises(InvalidInputError, match=pattern) as info:
        CleaningSpec.from_dict(spec)
    assert {key: info.value.details.get(key) for key in details} == details


def test_bad_yaml_and_bad_python_steps() -> None:
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        CleaningSpec.from_yaml("steps: [impute: {")
    with pytest.raises(InvalidInputError, match="must be a step such as Impute"):
        CleaningSpec(("impute",))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"^impute: option 'fill_value' is only used"):
        Impute(["x"], fill_value=0)
    with pytest.raises(InvalidInputError, match="names columns twice"):
        Scale(["x", "x"])
    with pytest.raises(InvalidInputError, match=r"for YAML use CleaningSpec\.from_yaml"):
        Cleaner(spec="steps: []").fit(pd.DataFrame({"x": [1]}))  # type: ignore[arg-type]


def test_report_is_json_friendly(make_customers: Callable[..., pd.DataFrame]) -> None:
    df = make_customers()
    _, cleaner, report = clean_frame(df, CleaningSpec.from_yaml(BRIEF_YAML))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["rows_in"] == data["rows_out"] == len(df)
    assert data["steps"][0]["values_imputed"] == {"customer_id": 0, "age": 4, "income": 5}
    assert data["steps"][2]["values_clipped"]["income"] >= 3
    assert data["columns_out"] == list(cleaner.get_feature_names_out())
    assert "customer_id" not in data["columns_out"]
    assert json.loads(json.dumps(cleaner.resolved_spec_.to_dict()))["steps"][0]["impute"][
        "columns"
    ] == ["customer_id", "age", "income"]


def test_documented_examples_run() -> None:
    result = doctest.testmod(cleaning, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
