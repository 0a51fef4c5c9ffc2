"""Per-column drift: the right columns flagged, none on null data, scipy's numbers, errors."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard.core.errors import (
    InvalidInputError,
    NotFittedError,
    NotFoundError,
    SchemaMismatchError,
)
from shipyard.monitoring import benjamini_hochberg, bonferroni, domain_classifier, holm
from shipyard.monitoring import drift as drift_module
from shipyard.monitoring.drift import (
    METHODS_CATEGORICAL,
    METHODS_NUMERIC,
    ColumnDrift,
    DriftDetector,
    DriftResult,
    drift_table,
    ks_p_value,
)

DRIFTED = ("mean_shift", "scale", "tail", "subtle_shift", "cat_frequency", "cat_new")


def make_tables(
    n_reference: int, n_current: int, *, seed: int, drift: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20 numeric + 5 categorical columns; with ``drift`` the 6 ``DRIFTED`` ones move.

    Drifts in the current table: ``mean_shift`` +0.2 std, ``scale`` std x1.1, ``tail`` 5%
    of the values drawn with 3x the std (same mean and median), ``subtle_shift`` +0.05 std,
    ``cat_frequency`` shares 40/30/20/10% -> 37/31/21/11%, ``cat_new`` 1% of a new category.
    The 19 others keep their distribution: normal, lognormal, uniform and integer columns,
    a flag, a 40-category Zipf-like city and a 1-5 rating.
    """
    rng = np.random.default_rng(seed)

    def table(n: int, moved: bool) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for i in range(16):
            kind = i % 4
            if kind == 0:
                cols[f"num{i}"] = rng.normal(10 * i, 1 + i, n)
            elif kind == 1:
                cols[f"num{i}"] = rng.lognormal(0, 0.7, n)
            elif kind == 2:
                cols[f"num{i}"] = rng.uniform(-5, 5, n)
            else:
                cols[f"num{i}"] = rng.integers(0, 1000, n)  # > 20 distinct: numeric
        cols["mean_shift"] = rng.normal(0.2 if moved else 0.0, 1.0, n)
        cols["scale"] = rng.normal(0.0, 1.1 if moved else 1.0, n)
        tail = rng.normal(0.0, 1.0, n)
        if moved:
            hit = rng.random(n) < 0.05
            tail[hit] = rng.normal(0.0, 3.0, int(hit.sum()))
        cols["tail"] = tail
        cols["subtle_shift"] = rng.normal(50.0 + (0.05 * 4.0 if moved else 0.0), 4.0, n)
        shares = [0.37, 0.31, 0.21, 0.11] if moved else [0.4, 0.3, 0.2, 0.1]
        cols["cat_frequency"] = rng.choice(np.array(list("abcd"), dtype=object), n, p=shares)
        colours = np.array(["red", "green", "blue"], dtype=object)
        new = rng.choice(colours, n, p=[0.5, 0.3, 0.2])
        if moved:
            new[rng.random(n) < 0.01] = "purple"
        cols["cat_new"] = new
        cols["flag"] = rng.random(n) < 0.3
        weights = 1.0 / np.arange(1, 41)
        cities = np.array([f"city{k}" for k in range(40)], dtype=object)
        cols["city"] = rng.choice(cities, n, p=weights / weights.sum())
        cols["rating"] = rng.integers(1, 6, n)
        return pd.DataFrame(cols)

    return table(n_reference, False), table(n_current, drift)


# --------------------------------------------------------------------------- the benchmark


def test_the_six_drifted_columns_are_found_and_nothing_else_at_100k_and_1k_rows() -> None:
    ref, cur = make_tables(100_000, 100_000, seed=0)
    detector = DriftDetector().fit(ref)

    result = detector.test(cur)
    assert sorted(result.drifted_columns) == sorted(DRIFTED)
    assert result.drift_share == pytest.approx(6 / 25)
    assert not result.dataset_drift  # 24% < 50%
    subtle = result.column("subtle_shift")
    assert subtle.method == "ks" and subtle.adjusted_p_value < 1e-6
    assert subtle.distance == pytest.approx(0.05, abs=0.015)  # W1 in reference stds
    new = result.column("cat_new")
    assert new.method == "chisquare" and "new categories: 'purple' (1.0% of current)" in new.detail

    small = detector.test(cur.head(1_000))
    assert set(small.drifted_columns) <= set(DRIFTED), "no false alarm on 1,000 rows"
    assert "mean_shift" in small.drifted_columns  # 0.2 std on 1,000 rows: still found
    assert all(c.n_current == 1_000 for c in small.columns)


def test_null_tables_rarely_raise_any_false_alarm() -> None:
    # Under the null, BH at 0.05 raises an alarm on a table with probability <= 5%:
    # about 1 of 20 tables. 4 or more would happen with probability ~1.6%.
    tables_with_alarms = 0
    for seed in range(20):
        ref, cur = make_tables(2_000, 2_000, seed=100 + seed, drift=False)
        result = DriftDetector().fit(ref).test(cur)
        tables_with_alarms += bool(result.drifted_columns)
        assert len(result.columns) == 25
    assert tables_with_alarms <= 3


def test_the_correction_removes_the_false_alarms_of_many_null_columns() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame(rng.normal(size=(1_000, 200)), columns=[f"x{i}" for i in range(200)])
    cur = pd.DataFrame(rng.normal(size=(1_000, 200)), columns=ref.columns)

    raw = drift_table(ref, cur, correction="none")
    bh = drift_table(ref, cur, correction="bh")
    bonf = drift_table(ref, cur, correction="bonferroni")
    default = drift_table(ref, cur)
    assert default.correction == "holm" and len(default.drifted_columns) <= 1

    assert 3 <= len(raw.drifted_columns) <= 20  # ~10 expected at alpha 0.05
    assert len(bh.drifted_columns) <= 1
    assert len(bonf.drifted_columns) <= 1
    ps = np.array([c.p_value for c in raw.columns])
    assert np.array_equal(ps, [c.p_value for c in bh.columns]), "raw p-values are unchanged"
    np.testing.assert_allclose([c.adjusted_p_value for c in bh.columns], benjamini_hochberg(ps))
    assert bh.correction == "bh" and "(BH-adjusted " in bh.columns[0].detail
    assert "adjusted" not in raw.columns[0].detail


# --------------------------------------------------------------------------- every method


def _shifted(kind: str, seed: int, *, moved: bool, n: int = 2_000) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        return (
            pd.DataFrame({"x": rng.normal(0, 1, n)}),
            pd.DataFrame({"x": rng.normal(1.0 if moved else 0.0, 1, n)}),
        )
    values = np.array(list("abcd"), dtype=object)
    after = [0.1, 0.2, 0.3, 0.4] if moved else [0.4, 0.3, 0.2, 0.1]
    return (
        pd.DataFrame({"x": rng.choice(values, n, p=[0.4, 0.3, 0.2, 0.1])}),
        pd.DataFrame({"x": rng.choice(values, n, p=after)}),
    )


@pytest.mark.parametrize(
    ("kind", "method"),
    [("numeric", m) for m in METHODS_NUMERIC] + [("categorical", m) for m in METHODS_CATEGORICAL],
)
def test_each_method_flags_a_big_shift_and_not_a_null(kind: str, method: str) -> None:
    for seed in range(3):
        ref, cur = _shifted(kind, seed, moved=True)
        moved = drift_table(ref, cur, method=method).column("x")
        assert moved.method == method and moved.kind == kind
        assert moved.drifted, moved.detail
        assert moved.status == "ok" and moved.distance > 0.2

    false_alarms = 0
    for seed in range(20):
        ref, cur = _shifted(kind, 100 + seed, moved=False)
        null = drift_table(ref, cur, method=method).column("x")
        false_alarms += null.drifted
        if method in ("ks", "anderson", "chisquare", "ztest"):
            assert 0 <= null.p_value <= 1 and null.threshold == 0.05
        else:
            assert math.isnan(null.p_value) and math.isnan(null.adjusted_p_value)
            assert null.threshold == {"wasserstein": 0.1, "psi": 0.2, "jensenshannon": 0.1}[method]
    # tests: ~1 in 20 at alpha 0.05 (4+ has probability 1.6%); distances: none at this size
    assert false_alarms <= (3 if method in ("ks", "anderson", "chisquare", "ztest") else 0)


def test_anderson_darling_p_values_stay_within_scipys_table() -> None:
    ref, cur = _shifted("numeric", 0, moved=True, n=20_000)
    moved = drift_table(ref, cur, method="anderson").column("x")
    assert moved.p_value == 0.001  # floored by scipy
    ref, cur = _shifted("numeric", 0, moved=False, n=20_000)
    assert 0.001 <= drift_table(ref, cur, method="anderson").column("x").p_value <= 0.25


def test_the_default_methods_follow_the_column_kind() -> None:
    rng = np.random.default_rng(2)
    n = 500
    ref = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "count": rng.integers(0, 500, n),  # many integers: numeric
            "stars": rng.integers(1, 6, n),  # few integers: categorical
            "plan": rng.choice(["free", "pro", "team"], n),
            "active": rng.random(n) < 0.5,
            "seen": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
            "code": rng.choice([1.5, 2.5], n),
        }
    )
    detector = DriftDetector(categorical=["code"]).fit(ref)
    assert detector.kinds_ == {
        "amount": "numeric",
        "count": "numeric",
        "stars": "categorical",
        "plan": "categorical",
        "active": "categorical",
        "seen": "numeric",
        "code": "categorical",
    }
    methods = {c.column: c.method for c in detector.test(ref).columns}
    assert methods == {
        "amount": "ks",
        "count": "ks",
        "stars": "chisquare",
        "plan": "chisquare",
        "active": "ztest",  # exactly two categories
        "seen": "ks",
        "code": "ztest",
    }
    assert not detector.test(ref).drifted_columns


def test_a_datetime_column_that_moves_a_week_drifts() -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    rng = np.random.default_rng(4)
    seconds = pd.to_timedelta(rng.integers(0, 30 * 86_400, 1_000), "s")
    ref = pd.DataFrame({"at": start + seconds})
    cur = pd.DataFrame({"at": start + pd.Timedelta(days=7) + seconds})
    at = drift_table(ref, cur).column("at")
    assert at.kind == "numeric" and at.drifted
    assert at.distance == pytest.approx(7 / (30 / math.sqrt(12)), rel=0.1)  # W1 / std


def test_a_method_mapping_overrides_single_columns() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"a": rng.normal(size=1_000), "b": rng.normal(size=1_000)})
    cur = pd.DataFrame({"a": rng.normal(0.5, size=1_000), "b": rng.normal(size=1_000)})
    result = drift_table(ref, cur, method={"a": "psi", "b": "auto"}, thresholds={"psi": 0.05})
    assert [(c.column, c.method) for c in result.columns] == [("a", "psi"), ("b", "ks")]
    assert result.column("a").threshold == 0.05 and result.column("a").drifted
    assert result.column("a").detail.startswith("PSI=")


def test_one_method_for_all_applies_where_it_fits() -> None:
    ref, cur = make_tables(1_000, 1_000, seed=3, drift=False)
    result = drift_table(ref, cur, method="wasserstein")
    methods = {c.kind: set() for c in result.columns}
    for c in result.columns:
        methods[c.kind].add(c.method)
    assert methods == {"numeric": {"wasserstein"}, "categorical": {"chisquare", "ztest"}}
    wide = drift_table(ref, cur, method="jensenshannon")
    assert {c.method for c in wide.columns} == {"jensenshannon"}


# --------------------------------------------------------------------------- agreement with scipy


def test_ks_statistic_is_scipys_exactly_and_p_values_agree() -> None:
    rng = np.random.default_rng(21)
    for trial in range(40):
        n, m = int(rng.integers(30, 5_000)), int(rng.integers(30, 5_000))
        a = rng.normal(size=n)
        b = rng.normal(rng.choice([0.0, 0.05, 0.2]), size=m)
        if trial % 4 == 0:  # ties
            a, b = a.round(1), b.round(1)
        x = drift_table(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), correction="none")
        ks = stats.ks_2samp(a, b, method="asymp")
        col = x.column("x")
        assert col.statistic == ks.statistic
        assert col.p_value == pytest.approx(ks.pvalue, rel=1e-6, abs=1e-300)
        assert col.distance == pytest.approx(stats.wasserstein_distance(a, b) / a.std(), rel=1e-9)


def test_ks_p_values_of_large_samples_match_scipys_series() -> None:
    # scipy sums Smirnov's series term by term there (slow); we sum it vectorised.
    for d, n, m in [(0.007, 100_000, 100_000), (0.02, 100_000, 100_000), (0.05, 1_000, 90_000)]:
        expected = stats.distributions.kstwo.sf(d, np.round(n * m / (n + m)))
        assert ks_p_value(d, n, m) == pytest.approx(expected, rel=1e-6)
    assert ks_p_value(0.0, 10, 10) == 1.0
    assert ks_p_value(0.9, 100_000, 100_000) == 0.0


def test_chi_square_is_scipys_without_pooling() -> None:
    rng = np.random.default_rng(5)
    values = np.array(list("abcde"), dtype=object)
    ref = pd.DataFrame({"c": rng.choice(values, 3_000, p=[0.3, 0.25, 0.2, 0.15, 0.1])})
    cur = pd.DataFrame({"c": rng.choice(values, 1_500, p=[0.26, 0.25, 0.22, 0.15, 0.12])})
    got = drift_table(ref, cur).column("c")

    table = np.array(
        [
            ref["c"].value_counts().reindex(values).to_numpy(),
            cur["c"].value_counts().reindex(values),
        ]
    )
    expected = stats.chi2_contingency(table, correction=False)
    assert got.method == "chisquare"
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    p_ref = table[0] / table[0].sum()
    p_cur = table[1] / table[1].sum()
    assert got.distance == pytest.approx(jensenshannon(p_ref, p_cur, base=2), rel=1e-9)


def test_z_test_of_a_binary_column_equals_the_2x2_chi_square() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"f": rng.random(2_000) < 0.3})
    cur = pd.DataFrame({"f": rng.random(1_000) < 0.34})
    got = drift_table(ref, cur).column("f")
    table = np.array(
        [
            ref["f"].value_counts().reindex([False, True]),
            cur["f"].value_counts().reindex([False, True]),
        ]
    )
    expected = stats.chi2_contingency(table, correction=False)
    assert got.method == "ztest"
    assert got.statistic**2 == pytest.approx(expected.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert "share of 'False'" in got.detail


def test_rare_and_new_categories_are_pooled_so_small_samples_stay_valid() -> None:
    rng = np.random.default_rng(8)
    common = rng.choice(["a", "b", "c"], 10_000)
    rare = np.array([f"r{i}" for i in range(30)] * 2, dtype=object)  # 60 rows, 30 categories
    ref = pd.DataFrame({"c": np.concatenate([common, rare])})
    cur = pd.DataFrame({"c": np.append(rng.choice(["a", "b", "c"], 200), ["new1", "new2"])})
    got = drift_table(ref, cur).column("c")
    assert not got.drifted, got.detail
    assert "rare categories pooled into 'other'" in got.detail
    assert "new categories: 'new1' (0.5% of current), 'new2' (0.5% of current)" in got.detail
    assert "vanished categories: 'r0'" in got.detail


def test_an_integer_category_that_turns_float_with_missing_values_still_matches() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"stars": rng.integers(1, 6, 2_000)})
    cur = pd.DataFrame({"stars": rng.integers(1, 6, 2_000).astype(float)})
    cur.loc[::10, "stars"] = np.nan
    stars = drift_table(ref, cur).column("stars")
    assert stars.kind == "categorical" and not stars.drifted
    assert stars.n_current == 1_800 and "new categories" not in stars.detail


def test_text_in_a_numeric_column_counts_as_missing() -> None:
    rng = np.random.default_rng(12)
    ref = pd.DataFrame({"x": rng.normal(size=500)})
    values: list[Any] = list(rng.normal(size=500))
    values[:50] = ["oops"] * 50
    got = drift_table(ref, pd.DataFrame({"x": pd.Series(values, dtype=object)})).column("x")
    assert got.status == "ok" and got.n_current == 450 and not got.drifted


# --------------------------------------------------------------------------- statuses, results


def test_all_missing_and_short_columns_are_reported_and_not_counted() -> None:
    rng = np.random.default_rng(13)
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=200),
            "empty": np.full(200, np.nan),
            "c": rng.choice(["a", "b", "c"], 200),
        }
    )
    cur = pd.DataFrame({"x": rng.normal(3.0, size=200), "empty": np.nan, "c": None})
    result = DriftDetector().fit(ref).test(cur)
    assert result.column("empty").status == "all_missing"
    assert result.column("c").status == "all_missing" and result.column("c").n_current == 0
    assert not result.column("empty").drifted and math.isnan(result.column("empty").statistic)
    assert result.drifted_columns == ["x"]
    assert result.drift_share == 1.0 and result.dataset_drift  # only "x" was tested

    short = DriftDetector().fit(ref).test(cur.head(10))
    x = short.column("x")
    assert x.status == "not_enough_data" and not x.drifted and x.n_current == 10
    assert "fewer than 30 values" in x.detail
    assert short.drift_share == 0.0 and not short.dataset_drift
    assert DriftDetector(min_rows=5).fit(ref).test(cur.head(10)).column("x").status == "ok"


def test_dataset_drift_needs_the_drift_share() -> None:
    rng = np.random.default_rng(14)
    ref = pd.DataFrame(rng.normal(size=(1_000, 4)), columns=list("abcd"))
    cur = ref.sample(frac=1.0, random_state=0).reset_index(drop=True)
    cur[["a", "b"]] += 2.0
    assert drift_table(ref, cur).dataset_drift  # 2 of 4 >= 0.5
    result = drift_table(ref, cur, drift_share=0.75)
    assert result.drift_share == 0.5 and not result.dataset_drift
    assert result.threshold_share == 0.75


def test_results_export_to_a_frame_and_to_json() -> None:
    ref, cur = make_tables(500, 400, seed=1)
    ref["empty"] = np.nan
    cur["empty"] = np.nan
    result = drift_table(ref, cur)
    frame = result.to_frame()
    assert list(frame.columns) == [f.name for f in dataclasses.fields(ColumnDrift)]
    assert len(frame) == 26 and frame["column"].tolist() == list(ref.columns)

    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["n_reference"] == 500 and data["n_current"] == 400
    assert data["drifted_columns"] == result.drifted_columns
    empty = next(c for c in data["columns"] if c["column"] == "empty")
    assert empty["p_value"] is None and empty["status"] == "all_missing"
    assert set(data) >= {f.name for f in dataclasses.fields(DriftResult)}


def test_looking_up_an_unknown_column_raises_not_found() -> None:
    result = drift_table(pd.DataFrame({"x": range(50)}), pd.DataFrame({"x": range(50)}))
    with pytest.raises(NotFoundError, match="no column 'y'"):
        result.column("y")


# --------------------------------------------------------------------------- errors


def test_testing_before_fitting_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        DriftDetector().test(pd.DataFrame({"x": [1.0]}))


def test_a_missing_current_column_is_a_schema_mismatch_and_extras_are_ignored() -> None:
    ref = pd.DataFrame({"a": range(100), "b": range(100), "c": range(100)})
    detector = DriftDetector().fit(ref)
    with pytest.raises(SchemaMismatchError, match="'a', 'c'") as info:
        detector.test(pd.DataFrame({"b": range(100)}))
    assert info.value.details["missing_columns"] == ["a", "c"]
    result = detector.test(ref.assign(extra=1.0))
    assert [c.column for c in result.columns] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "kolmogorov"}, "valid methods: 'auto', 'ks'"),
        ({"method": {"x": "chisquare"}}, "does not suit column 'x', which is numeric"),
        ({"method": {"c": "ks"}}, "does not suit column 'c', which is categorical"),
        ({"method": {"nope": "ks"}}, "method names column.*'nope'"),
        ({"columns": ["x", "nope"]}, "columns names column.*'nope'"),
        ({"categorical": ["nope"]}, "categorical names column.*'nope'"),
        ({"method": "ztest", "columns": ["x"]}, "applies to categorical columns"),
        ({"correction": "fdr"}, "correction must be one of"),
        ({"alpha": 1.5}, "alpha must be"),
        ({"thresholds": {"ks": 0.1}}, "thresholds must be keyed by distance methods"),
        ({"bins": 1}, "bins must be an integer >= 2"),
    ],
)
def test_invalid_parameters_are_refused_at_fit(params: dict[str, Any], message: str) -> None:
    ref = pd.DataFrame({"x": np.linspace(0, 1, 100), "c": ["a", "b"] * 50})
    with pytest.raises(InvalidInputError, match=message):
        DriftDetector(**params).fit(ref)


def test_an_empty_reference_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="reference table is empty"):
        DriftDetector().fit(pd.DataFrame({"x": []}))
    with pytest.raises(InvalidInputError, match="must be a pandas DataFrame"):
        DriftDetector().fit([1, 2, 3])  # type: ignore[arg-type]


def test_fit_learns_sorted_values_bins_and_counts() -> None:
    ref = pd.DataFrame({"x": [3.0, 1.0, np.nan, 2.0] * 25, "c": ["b", "a", "b", None] * 25})
    detector = DriftDetector(bins=4).fit(ref)
    assert detector is not None and detector.columns_ == ("x", "c")
    state = detector.reference_["x"].numeric
    assert state is not None and state.values.size == 75
    assert np.all(np.diff(state.values) >= 0) and state.bin_counts.sum() == 75
    counts = detector.reference_["c"].categorical
    assert counts is not None and counts.counts.to_dict() == {"b": 50, "a": 25}
    assert detector.methods_ == {"x": "ks", "c": "auto"}


# --------------------------------------------------------------------------- helpers


def test_benjamini_hochberg_and_bonferroni() -> None:
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    np.testing.assert_allclose(
        benjamini_hochberg(p), [0.04, 0.16 / 3, np.nan, 0.16 / 3, 0.2], equal_nan=True
    )
    np.testing.assert_allclose(bonferroni(p), [0.04, 0.16, np.nan, 0.12, 0.8], equal_nan=True)
    assert benjamini_hochberg([]).shape == (0,)
    rng = np.random.default_rng(0)
    many = rng.random(1_000)
    adjusted = benjamini_hochberg(many)
    assert np.all(adjusted >= many) and np.all(adjusted <= 1)
    order = np.argsort(many)
    assert np.all(np.diff(adjusted[order]) >= 0), "monotone in p"


# --------------------------------------------------------------------------- domain classifier


def test_domain_classifier_sees_a_shift_and_not_a_null() -> None:
    ref, _ = make_tables(2_000, 2_000, seed=20, drift=False)
    null, _ = make_tables(2_000, 2_000, seed=21, drift=False)
    columns = ["num0", "num1", "num2", "num3", "flag", "city", "rating", "cat_new"]
    same = domain_classifier(ref, null, columns=columns)
    assert 0.45 <= same.roc_auc <= 0.55 and not same.drifted
    assert same.n_reference == same.n_current == 2_000

    rng = np.random.default_rng(22)
    moved = null.assign(
        num2=null["num2"] * 3 + 2,
        city=null["city"].where(rng.random(2_000) < 0.5, "elsewhere"),
    )
    strong = domain_classifier(ref, moved, columns=columns, sample_size=1_500)
    assert strong.roc_auc > 0.7 and strong.drifted and strong.threshold == 0.55
    assert strong.n_reference == strong.n_current == 1_500
    assert {name for name, _ in strong.top_features[:2]} == {"num2", "city"}
    assert len(strong.top_features) == len(columns)
    assert [imp for _, imp in strong.top_features] == sorted(
        (imp for _, imp in strong.top_features), reverse=True
    )


def test_domain_classifier_needs_the_columns_on_both_sides() -> None:
    ref = pd.DataFrame({"x": range(10), "y": range(10)})
    with pytest.raises(SchemaMismatchError, match="'y'"):
        domain_classifier(ref, pd.DataFrame({"x": range(10)}))
    with pytest.raises(InvalidInputError, match="at least 3 rows"):
        domain_classifier(ref.head(2), ref)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(drift_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 5


def test_holm_bounds_the_family_wise_error_and_is_at_least_as_powerful_as_bonferroni() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(size=50) ** 3
    held, bonf = holm(p), bonferroni(p)
    assert np.all(held <= bonf + 1e-12)  # never less powerful
    order = np.argsort(p)
    assert np.all(np.diff(held[order]) >= -1e-12)  # monotone in the raw p-values
    m, expected, running = len(p), np.empty(len(p)), 0.0  # the textbook loop
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        expected[i] = running
    np.testing.assert_allclose(held, expected, rtol=1e-12)
