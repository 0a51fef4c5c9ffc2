"""Dataset diffs: which columns really changed (tests plus thresholds), schema changes, JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.data.compare import ColumnChange, diff_frames
from shipyard.data.schema import infer_schema


def make_table(n: int = 5000, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Numbers, a category, a flag, times and ids; ``shift`` moves ``income`` only."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i}" for i in range(n)],
            "age": rng.integers(18, 90, size=n),
            "income": rng.normal(50_000 + shift, 12_000, size=n),
            "score": rng.random(n),
            "region": rng.choice(["north", "south", "east", "west"], size=n),
            "active": rng.random(n) < 0.4,
            "signup": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 86_400 * 365, size=n), unit="s"),
        }
    )


def by_column(old: pd.DataFrame, new: pd.DataFrame, **options: Any) -> dict[str, ColumnChange]:
    return {c.column: c for c in diff_frames(old, new, **options).columns}


def test_only_the_shifted_column_is_changed_among_noisy_ones() -> None:
    d = diff_frames(make_table(seed=0), make_table(seed=1, shift=15_000))

    assert d.changed_columns == ("income",)
    cols = {c.column: c for c in d.columns}
    income = cols["income"]
    assert income.method == "ks" and income.statistic > 0.3
    assert income.p_value is not None and income.p_value < 1e-6
    assert len(income.reasons) == 1
    assert income.reasons[0].startswith(f"distribution shifted (ks {income.statistic:.3f}, p=")
    noisy = [c for name, c in cols.items() if name != "income"]
    assert all(c.statistic > 0.0 for c in noisy if c.column != "customer_id"), "noise is measured"
    assert not any(c.changed for c in noisy)
    assert cols["region"].method == "tvd" and cols["region"].p_value is not None
    assert cols["active"].method == "tvd"
    assert cols["signup"].method == "ks"


def test_a_significant_but_small_shift_is_not_a_change_unless_thresholds_say_so() -> None:
    rng = np.random.default_rng(3)
    old = pd.DataFrame({"x": rng.normal(0.0, 1.0, 200_000)})
    new = pd.DataFrame({"x": rng.normal(0.08, 1.0, 200_000)})

    x = by_column(old, new)["x"]
    assert x.p_value is not None and x.p_value < 0.05, "significant..."
    assert x.statistic < 0.1, "...but small"
    assert not x.changed

    assert by_column(old, new, min_ks=0.01)["x"].changed
    assert not by_column(old, new, min_ks=0.01, alpha=1e-300)["x"].changed


def test_a_large_shift_on_few_rows_is_not_significant() -> None:
    old = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    new = pd.DataFrame({"x": [1.5, 2.5, 3.5, 4.5]})

    x = by_column(old, new)["x"]
    assert x.statistic >= 0.1 and x.p_value is not None and x.p_value >= 0.05
    assert not x.changed


def test_categorical_proportions_are_tested_with_chi_square_and_tvd() -> None:
    rng = np.random.default_rng(5)
    old = pd.DataFrame({"plan": rng.choice(["free", "pro"], size=4000, p=[0.5, 0.5])})
    same = pd.DataFrame({"plan": rng.choice(["free", "pro"], size=4000, p=[0.5, 0.5])})
    moved = pd.DataFrame({"plan": rng.choice(["free", "pro"], size=4000, p=[0.8, 0.2])})

    assert not by_column(old, same)["plan"].changed
    plan = by_column(old, moved)["plan"]
    assert plan.method == "tvd" and plan.statistic == pytest.approx(0.3, abs=0.03)
    assert plan.p_value is not None and plan.p_value < 1e-6
    assert plan.distribution_changed and plan.changed
    assert not by_column(old, moved, min_tvd=0.5)["plan"].changed


def test_new_identifiers_and_free_text_are_not_distribution_changes() -> None:
    old = pd.DataFrame(
        {"order_id": [f"a{i}" for i in range(3000)], "note": [f"note {i}" for i in range(3000)]}
    )
    new = pd.DataFrame(
        {"order_id": [f"b{i}" for i in range(3000)], "note": [f"memo {i}" for i in range(3000)]}
    )

    d = diff_frames(old, new)
    assert d.changed_columns == ()
    assert {c.new_logical_type for c in d.columns} == {"identifier", "text"}


def test_a_column_whose_type_changes_from_integer_to_text_is_reported() -> None:
    rng = np.random.default_rng(7)
    old = pd.DataFrame({"zip": rng.integers(10_000, 99_999, size=2000)})
    new = pd.DataFrame({"zip": [f"zip code {z}" for z in rng.integers(10_000, 99_999, size=2000)]})

    zip_ = by_column(old, new)["zip"]
    assert (zip_.old_logical_type, zip_.new_logical_type) == ("integer", "text")
    assert zip_.logical_type_changed and zip_.schema_changed and zip_.changed
    assert "logical type integer -> text" in zip_.reasons


def test_a_column_that_gains_missing_values_is_reported() -> None:
    rng = np.random.default_rng(8)
    old = pd.DataFrame({"age": rng.normal(40, 10, 5000), "ok": rng.normal(0, 1, 5000)})
    new = old.copy()
    new.loc[new.index[:100], "age"] = np.nan  # 2%: below the missing-rate threshold

    age = by_column(old, new)["age"]
    assert age.became_nullable and not age.missing_rate_changed and not age.distribution_changed
    assert age.changed and "now has missing values" in age.reasons
    assert not by_column(old, new)["ok"].changed

    new.loc[new.index[:1000], "age"] = np.nan  # 20%
    age = by_column(old, new)["age"]
    assert age.missing_rate_changed
    assert "missing rate 0.0% -> 20.0%" in age.reasons


def test_a_missing_rate_shift_counts_even_if_the_column_was_nullable() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(0, 1, 4000)
    old = pd.DataFrame({"x": np.where(rng.random(4000) < 0.10, np.nan, values)})
    a_bit = pd.DataFrame({"x": np.where(rng.random(4000) < 0.12, np.nan, values)})
    a_lot = pd.DataFrame({"x": np.where(rng.random(4000) < 0.30, np.nan, values)})

    assert not by_column(old, a_bit)["x"].changed
    x = by_column(old, a_lot)["x"]
    assert x.missing_rate_changed and not x.became_nullable and x.changed


def test_a_categorical_column_that_gains_a_category_lists_it() -> None:
    rng = np.random.default_rng(10)
    old = pd.DataFrame({"city": rng.choice(["lyon", "paris", "nice"], size=3000)})
    cities = rng.choice(["lyon", "paris", "brest"], size=3000, p=[0.49, 0.49, 0.02])
    new = pd.DataFrame({"city": cities})

    city = by_column(old, new)["city"]
    assert city.added_categories == ("brest",) and city.n_added_categories == 1
    assert city.removed_categories == ("nice",) and city.n_removed_categories == 1
    assert city.changed
    assert "new categories: 'brest'" in city.reasons
    assert "vanished categories: 'nice'" in city.reasons


def test_at_most_ten_new_categories_are_listed_but_all_are_counted() -> None:
    old = pd.DataFrame({"code": ["a", "b"] * 1000})
    new = pd.DataFrame({"code": ["a", "b", *[f"k{i:02d}" for i in range(12)]] * 100})

    code = by_column(old, new)["code"]
    assert code.added_categories == tuple(f"k{i:02d}" for i in range(10))
    assert code.n_added_categories == 12
    assert "and 2 more" in " ".join(code.reasons)


def test_pandas_category_dtype_gains_a_category() -> None:
    old = pd.DataFrame({"plan": pd.Categorical(["free", "pro"] * 50, categories=["free", "pro"])})
    new = pd.DataFrame(
        {"plan": pd.Categorical(["free", "pro"] * 50, categories=["free", "pro", "team"])}
    )

    plan = by_column(old, new)["plan"]
    assert plan.added_categories == ("team",) and not plan.distribution_changed


def test_stored_schemas_are_used_when_given() -> None:
    old, new = make_table(seed=0), make_table(seed=1)
    stored = infer_schema(old).to_dict()
    stored["columns"] = [
        c | {"logical_type": "text"} if c["name"] == "region" else c for c in stored["columns"]
    ]

    region = by_column(old, new, old_schema=stored, new_schema=infer_schema(new))["region"]
    assert (region.old_logical_type, region.new_logical_type) == ("text", "categorical")
    assert region.changed

    partial = {"columns": [{"name": "age", "logical_type": "integer"}]}
    cols = by_column(old, new, old_schema=partial)
    assert cols["region"].old_logical_type is None and not cols["region"].changed


def test_inferred_schemas_match_infer_schema() -> None:
    df = make_table(n=3000)
    df.loc[df.index[:10], "income"] = np.nan
    expected = {c.name: c.logical_type.value for c in infer_schema(df).columns}

    cols = by_column(df, df)
    assert {name: c.old_logical_type for name, c in cols.items()} == expected
    assert not any(c.changed for c in cols.values())
    assert all(c.statistic == 0.0 for c in cols.values())


def test_sampling_is_seeded_and_datetimes_of_other_units_compare_by_value() -> None:
    rng = np.random.default_rng(11)
    seconds = pd.to_timedelta(rng.integers(0, 10**7, 5000), unit="s")
    times = pd.Series(pd.Timestamp("2024-01-01") + seconds)
    old = pd.DataFrame({"t": times.astype("datetime64[ns]"), "x": rng.normal(0, 1, 5000)})
    new = pd.DataFrame({"t": times.astype("datetime64[s]").dt.tz_localize("UTC"), "x": old["x"]})

    first = diff_frames(old, new, sample_size=1000, seed=4)
    assert first == diff_frames(old, new, sample_size=1000, seed=4)
    t = {c.column: c for c in first.columns}["t"]
    assert t.method == "ks" and t.statistic < 0.1 and not t.distribution_changed


def test_empty_and_mixed_type_columns_do_not_break_the_diff() -> None:
    old = pd.DataFrame({"x": pd.Series([], dtype="float64"), "odd": pd.Series([], dtype=object)})
    assert diff_frames(old, old).changed_columns == ()

    mixed = pd.DataFrame({"odd": [1, "a", 2.5] * 10})
    odd = by_column(mixed, mixed)["odd"]
    assert odd.old_logical_type is None and not odd.changed

    gone = pd.DataFrame({"x": [np.nan] * 20})
    x = by_column(pd.DataFrame({"x": np.arange(20.0)}), gone)["x"]
    assert x.p_value is None and x.changed and x.became_nullable


def test_to_dict_carries_the_new_information_as_strict_json() -> None:
    old, new = make_table(seed=0), make_table(seed=1, shift=15_000)
    new["region"] = new["region"].replace("west", "centre")
    new["extra"] = 1

    out = json.loads(json.dumps(diff_frames(old, new, old_name="c@1").to_dict(), allow_nan=False))
    assert out["old"] == "c@1" and out["added_columns"] == ["extra"]
    assert out["changed_columns"] == ["income", "region"]
    region = next(c for c in out["columns"] if c["column"] == "region")
    assert region["added_categories"] == ["centre"] and region["removed_categories"] == ["west"]
    assert region["changed"] is True and region["schema_changed"] is True
    assert region["old_logical_type"] == "categorical" and "p_value" in region
    assert any("new categories" in r for r in region["reasons"])
    age = next(c for c in out["columns"] if c["column"] == "age")
    assert age["changed"] is False and age["reasons"] == [] and age["became_nullable"] is False


@pytest.mark.parametrize(
    ("option", "value"),
    [("alpha", 0.0), ("min_ks", 1.5), ("min_tvd", -0.1), ("max_missing_change", 2.0),
     ("sample_size", 0)],
)  # fmt: skip
def test_out_of_range_thresholds_are_refused(option: str, value: Any) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InvalidInputError, match=option):
        diff_frames(df, df, **{option: value})


def test_non_frames_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="DataFrame"):
        diff_frames([1, 2], pd.DataFrame())  # type: ignore[arg-type]
