"""Column profiles checked against numbers computed by hand with numpy and pandas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.data.profiling import QUANTILES, Profile, detect_kind, profile


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.normal(10.0, 2.0, size=200)
    x[[3, 50]] = [60.0, -40.0]  # planted outliers, far out on both sides
    x[[10, 20, 30]] = np.nan
    x[[11, 12]] = 0.0
    return pd.DataFrame(
        {
            "x": x,
            "n": pd.array(rng.integers(0, 5, size=200), dtype="Int64"),
            "c": rng.choice(["red", "green", "blue"], size=200, p=[0.5, 0.3, 0.2]),
            "b": rng.random(200) > 0.3,
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(200), unit="D"),
            "s": [f"free text number {i} with some words" for i in range(200)],
        }
    )


def test_numeric_statistics_match_numpy_and_pandas(frame: pd.DataFrame) -> None:
    col = profile(frame).column("x")
    values = frame["x"].dropna().to_numpy()
    assert col.kind == "numeric"
    assert (col.count, col.missing, col.missing_rate) == (197, 3, 3 / 200)
    assert col.distinct == frame["x"].nunique()
    assert col.mean == pytest.approx(values.mean())
    assert col.std == pytest.approx(frame["x"].std())  # ddof=1, as pandas
    assert (col.min, col.max) == (-40.0, 60.0)
    assert col.zeros == 2
    assert col.quantiles is not None
    for key, level in QUANTILES:
        assert col.quantiles[key] == pytest.approx(frame["x"].quantile(level))
    q25, q75 = np.percentile(values, [25, 75])
    iqr = q75 - q25
    expected_iqr = int(((values < q25 - 1.5 * iqr) | (values > q75 + 1.5 * iqr)).sum())
    z = np.abs(values - values.mean()) / values.std(ddof=1)
    assert col.outliers_iqr == expected_iqr
    assert col.outliers_z == int((z > 3).sum())
    assert col.outliers_z >= 2 and col.outliers_iqr >= 2  # the planted ones count
    assert col.histogram is not None
    counts, edges = np.histogram(values, bins=20)
    assert col.histogram.counts == tuple(counts.tolist())
    assert col.histogram.edges == pytest.approx(edges.tolist())


def test_planted_outliers_are_counted_exactly() -> None:
    values = np.concatenate([np.linspace(0.0, 1.0, 101), [50.0, -50.0, 49.0]])
    col = profile(pd.DataFrame({"v": values})).column("v")
    # IQR fences lie just outside [0, 1]: only the three planted values are beyond them.
    assert col.outliers_iqr == 3
    z = np.abs(values - values.mean()) / values.std(ddof=1)
    assert col.outliers_z == int((z > 3).sum())


def test_categorical_boolean_text_and_datetime_columns(frame: pd.DataFrame) -> None:
    p = profile(frame, top_k=2)
    cat = p.column("c")
    counts = frame["c"].value_counts()
    assert cat.kind == "categorical"
    assert cat.distinct == 3
    assert [(t.value, t.count) for t in cat.top or ()] == list(counts.items())[:2]
    assert cat.mean is None and cat.histogram is None
    flag = p.column("b")
    assert flag.kind == "boolean"
    assert {t.value: t.count for t in flag.top or ()} == {
        "True": int(frame["b"].sum()),
        "False": int((~frame["b"]).sum()),
    }
    text = p.column("s")
    assert text.kind == "text"
    assert text.mean_length == pytest.approx(frame["s"].str.len().mean())
    when = p.column("t")
    assert when.kind == "datetime"
    assert when.min_time == "2024-01-01T00:00:00+00:00"
    last = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=199)
    assert when.max_time == last.isoformat()
    assert when.histogram is not None and when.histogram.labels is not None
    assert sum(when.histogram.counts) == 200
    assert when.histogram.labels[0] == "2024-01-01T00:00:00+00:00"
    nullable = p.column("n")
    assert nullable.kind == "numeric" and nullable.distinct == frame["n"].nunique()


def test_table_level_numbers() -> None:
    df = pd.DataFrame({"a": [1, 1, 2, None], "b": ["x", "x", "y", None]})
    p = profile(df)
    assert (p.n_rows, p.n_columns, p.rows_profiled) == (4, 2, 4)
    assert p.duplicate_rows == 1
    assert p.missing_cells == 2
    assert p.memory_bytes == int(df.memory_usage(deep=True).sum())
    assert not p.sampled


def test_detect_kind() -> None:
    assert detect_kind(pd.Series([1.5, 2.0])) == "numeric"
    assert detect_kind(pd.Series([True, None, False], dtype=object)) == "boolean"
    assert detect_kind(pd.Series(["a", "b", "a"])) == "categorical"
    assert detect_kind(pd.Series(["a", "b"], dtype="category")) == "categorical"
    assert detect_kind(pd.Series(pd.to_datetime(["2020-01-01", None]))) == "datetime"
    assert detect_kind(pd.Series(pd.to_timedelta([1, 2], unit="s"))) == "numeric"
    assert detect_kind(pd.Series([f"user-{i}" for i in range(500)])) == "text"
    assert detect_kind(pd.Series([1, 2.5, None], dtype=object)) == "numeric"


def test_infinite_and_empty_and_odd_values() -> None:
    p = profile(
        pd.DataFrame(
            {
                "inf": [1.0, np.inf, -np.inf, 3.0, np.nan],
                "empty": [np.nan] * 5,
                "lists": [[1], [1], [2], None, [3]],
                3: [1, 2, 3, 4, 5],  # a non-string column name
            }
        )
    )
    inf = p.column("inf")
    assert (inf.infinite, inf.missing, inf.max, inf.mean) == (2, 1, 3.0, 2.0)
    empty = p.column("empty")
    assert empty.count == 0 and empty.mean is None and empty.quantiles is None
    lists = p.column("lists")
    assert lists.distinct == 3 and p.duplicate_rows is None  # unhashable cells
    assert p.column("3").mean == 3.0
    json.loads(p.to_json())  # strict JSON: no NaN or Infinity


def test_zero_rows() -> None:
    p = profile(pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=str)}))
    assert p.n_rows == 0 and p.column("a").count == 0 and p.column("b").top == ()
    assert p.column("a").missing_rate == 0.0


def test_sampling_is_recorded_and_deterministic() -> None:
    df = pd.DataFrame({"x": np.arange(10_000, dtype=float)})
    p = profile(df, sample_rows=1000)
    assert p.sampled and p.n_rows == 10_000 and p.rows_profiled == 1000
    assert p.column("x").count == 1000
    assert profile(df, sample_rows=1000) == p
    assert p.to_dict()["sampled"] is True


def test_json_round_trip(frame: pd.DataFrame) -> None:
    p = profile(frame)
    text = p.to_json()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data == p.to_dict()
    assert Profile.from_dict(data) == p
    assert data["columns"][0]["quantiles"]["p50"] == pytest.approx(frame["x"].median())


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="DataFrame"):
        profile([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="bins"):
        profile(pd.DataFrame({"a": [1]}), bins=0)
    with pytest.raises(InvalidInputError) as err:
        profile(pd.DataFrame({"a": [1], "b": [2]})).column("zzz")
    assert "'a'" in err.value.message and "'b'" in err.value.message
    assert err.value.details["known_columns"] == ["a", "b"]
