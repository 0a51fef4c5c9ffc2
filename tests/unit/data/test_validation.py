"""Validation: each check finds planted bad rows, reports name them, YAML round-trips."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, NotFoundError, SchemaMismatchError
from shipyard.data.schema import infer_schema
from shipyard.data.validation import (
    AllowedValuesCheck,
    Check,
    CheckOutcome,
    CustomCheck,
    DtypeCheck,
    Expectations,
    FreshnessCheck,
    MissingRateCheck,
    NotNullCheck,
    RangeCheck,
    RegexCheck,
    RowCountCheck,
    UniqueCheck,
    ValidationReport,
    validate,
)

N = 200


def clean_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.integers(18, 90, size=n),
            "score": rng.uniform(0, 1, size=n),
            "city": rng.choice(["paris", "lyon", "nice"], size=n),
            "plan": pd.Categorical(rng.choice(["free", "pro"], size=n)),
            "code": [f"AB{i:04d}" for i in range(n)],
            "active": rng.random(n) < 0.5,
            "ts": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )


def run_one(check: Check, df: pd.DataFrame) -> Any:
    report = validate(df, Expectations([check]))
    assert len(report.results) == 1
    return report.results[0]


BAD_ROWS = [3, 17, 150]


def _plant(df: pd.DataFrame, column: str, value: Any) -> pd.DataFrame:
    bad = df.copy()
    if isinstance(bad[column].dtype, pd.CategoricalDtype) and value is not None:
        bad[column] = bad[column].cat.add_categories([value])
    elif isinstance(value, str) and pd.api.types.is_numeric_dtype(bad[column].dtype):
        bad[column] = bad[column].astype(object)  # pandas refuses to upcast on assignment
    bad.loc[BAD_ROWS, column] = value
    return bad


@pytest.mark.parametrize(
    ("check", "column", "value", "shown"),
    [
        (NotNullCheck(column="age"), "age", None, None),
        (RangeCheck(column="age", min=18, max=89), "age", 200, 200),
        (RangeCheck(column="score", max=1.0), "score", 1.5, 1.5),
        (
            AllowedValuesCheck(column="city", values=["paris", "lyon", "nice"]),
            "city",
            "oslo",
            "oslo",
        ),
        (AllowedValuesCheck(column="plan", values=["free", "pro"]), "plan", "gold", "gold"),
        (RegexCheck(column="code", pattern=r"AB\d{4}"), "code", "XX", "XX"),
        (DtypeCheck(column="score", logical_type="float"), "score", "n/a", "n/a"),
        (MissingRateCheck(column="score", max_rate=0.01), "score", None, None),
    ],
    ids=lambda x: getattr(x, "name", None) if isinstance(x, Check) else None,
)
def test_each_check_finds_planted_rows_and_passes_clean_data(
    check: Check, column: str, value: Any, shown: Any
) -> None:
    df = clean_frame()
    ok = run_one(check, df)
    assert ok.passed and ok.bad_count == 0 and ok.message == "ok"

    result = run_one(check, _plant(df, column, value))
    assert not result.passed
    assert (result.check, result.column) == (check.name, column)
    assert result.bad_count == len(BAD_ROWS)
    assert result.example_indices == tuple(BAD_ROWS)
    assert result.example_values == (shown,) * len(BAD_ROWS)
    assert result.message.startswith(f"3 of {N} rows (1.50%) ")


def test_unique_flags_every_row_of_a_repeat_and_ignores_missing() -> None:
    df = clean_frame()
    assert run_one(UniqueCheck(column="id"), df).passed
    df.loc[[10, 20], "id"] = 5
    result = run_one(UniqueCheck(column="id"), df)
    assert (result.bad_count, result.example_indices) == (3, (5, 10, 20))
    with_nans = pd.DataFrame({"k": ["a", None, "b", None]})
    assert run_one(UniqueCheck(column="k"), with_nans).passed
    sparse = pd.DataFrame({"k": [10**12, 5, -(10**12), 10**12]})  # hashed, not bincount
    assert run_one(UniqueCheck(column="k"), sparse).example_indices == (0, 3)
    floats = pd.DataFrame({"k": [0.5, np.nan, 0.5, np.nan]})
    assert run_one(UniqueCheck(column="k"), floats).example_indices == (0, 2)


def test_checks_ignore_missing_values_other_checks_report() -> None:
    df = pd.DataFrame({"x": [1.0, None, 3.0], "c": ["a", None, "b"], "s": ["AB1", None, "AB2"]})
    for check in (
        RangeCheck(column="x", min=0, max=5),
        AllowedValuesCheck(column="c", values=["a", "b"]),
        RegexCheck(column="s", pattern=r"AB\d"),
        DtypeCheck(column="x", logical_type="integer"),
    ):
        assert run_one(check, df).passed, check


@pytest.mark.parametrize(
    ("series", "logical_type", "bad"),
    [
        (pd.Series([1.0, 2.5, None, 4.0]), "integer", [1]),  # ints with NaN are floats
        (pd.Series([1, "two", 3, None], dtype=object), "integer", [1]),
        (pd.Series([1, "two", 3.5, True], dtype=object), "float", [1, 3]),
        (pd.Series(["1", "2"]), "float", [0, 1]),
        (pd.Series([0.5, 1.5]), "boolean", [0, 1]),
        (pd.Series(pd.Categorical([1, 2, 1])), "integer", []),
        (pd.Series(pd.Categorical(["a", "b", "a"])), "integer", [0, 1, 2]),
        (pd.Series(["2024-01-01"]), "datetime", [0]),
        (pd.Series(pd.date_range("2024", periods=2, tz="Europe/Paris")), "datetime", []),
        (pd.Series([True, None], dtype=object), "boolean", []),
        (pd.Series([None, None], dtype=object), "text", []),
        (pd.Series([10, 11]), "identifier", []),
        (pd.Series(pd.array([1, None], dtype="Int64")), "integer", []),
    ],
)
def test_dtype_check_accepts_compatible_storage_and_finds_odd_values(
    series: pd.Series, logical_type: str, bad: list[int]
) -> None:
    result = run_one(DtypeCheck(column="v", logical_type=logical_type), pd.DataFrame({"v": series}))
    assert result.passed == (not bad)
    assert list(result.example_indices) == bad
    if bad:
        assert f"are not {logical_type if logical_type != 'integer' else ''}" in result.message


def test_range_on_datetimes_with_time_zones() -> None:
    df = pd.DataFrame(
        {
            "naive": pd.date_range("2024-01-01", periods=5, freq="D"),
            "paris": pd.date_range("2024-01-01", periods=5, freq="D", tz="Europe/Paris"),
            "text": ["2024-01-01", "2024-01-02", "bad", None, "2030-01-01"],
        }
    )
    naive = run_one(RangeCheck(column="naive", min="2024-01-02", max=dt.date(2024, 1, 4)), df)
    assert (naive.bad_count, naive.example_indices) == (2, (0, 4))
    assert naive.example_values == ("2024-01-01T00:00:00", "2024-01-05T00:00:00")
    # a naive bound is read in the column's zone; an aware bound is compared in UTC
    assert run_one(RangeCheck(column="paris", min="2024-01-01"), df).passed
    early = run_one(RangeCheck(column="paris", min="2024-01-01T00:00:00+00:00"), df)
    assert early.example_indices == (0,)  # midnight in Paris is 23:00 UTC the day before
    # strings are parsed; what does not parse is the dtype check's business
    assert run_one(RangeCheck(column="text", max="2025-01-01"), df).example_indices == (4,)


def test_freshness_uses_the_newest_time() -> None:
    df = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01", "2024-01-03", None])})
    now = dt.datetime(2024, 1, 4, 12)
    assert run_one(FreshnessCheck(column="ts", max_age="2d", now=now), df).passed
    stale = run_one(FreshnessCheck(column="ts", max_age=dt.timedelta(hours=12), now=now), df)
    assert not stale.passed and stale.bad_count == 0
    assert "newest value of 'ts', 2024-01-03T00:00:00 (UTC), is 1 days 12:00:00 old" in (
        stale.message
    )
    aware_now = dt.datetime(2024, 1, 3, 6, tzinfo=dt.UTC)
    assert run_one(FreshnessCheck(column="ts", max_age="6h", now=aware_now), df).passed
    empty = pd.DataFrame({"ts": pd.Series([None, None], dtype="datetime64[ns]")})
    assert "no times" in run_one(FreshnessCheck(column="ts", max_age="1d"), empty).message


def test_row_count() -> None:
    df = clean_frame(10)
    assert run_one(RowCountCheck(min=1, max=10), df).passed
    few = run_one(RowCountCheck(min=11), df)
    assert (few.passed, few.column, few.message) == (
        False,
        None,
        "the table has 10 rows, fewer than 11",
    )
    assert "more than 5" in run_one(RowCountCheck(max=5), df).message


def lo_le_hi(df: pd.DataFrame) -> pd.Series:
    """A module-level custom check (so it has a dotted path)."""
    return df["lo"] <= df["hi"]


def test_custom_check_from_a_callable() -> None:
    df = pd.DataFrame({"lo": [1, 5, 2, 9], "hi": [2, 3, 2, 1]}, index=list("abcd"))
    result = run_one(CustomCheck(name="lo_le_hi", function=lo_le_hi), df)
    assert (result.check, result.column, result.bad_count) == ("lo_le_hi", None, 2)
    assert result.example_indices == ("b", "d")
    assert result.example_values == ({"lo": 5, "hi": 3}, {"lo": 9, "hi": 1})
    on_column = run_one(CustomCheck(name="small", function=lambda d: d["hi"] < 3, column="hi"), df)
    assert on_column.example_values == (3,) and on_column.column == "hi"
    assert run_one(CustomCheck(name="whole", function=lambda d: len(d) == 4), df).passed
    assert not run_one(CustomCheck(name="whole", function=lambda d: False), df).passed


def test_custom_check_that_crashes_or_returns_junk_fails_with_a_reason() -> None:
    df = pd.DataFrame({"x": [1, 2]})
    crash = run_one(CustomCheck(name="boom", function=lambda d: d["nope"]), df)
    assert not crash.passed and "raised KeyError" in crash.message
    junk = run_one(CustomCheck(name="junk", function=lambda d: "yes"), df)
    assert not junk.passed and "must return a boolean Series" in junk.message


@pytest.fixture
def checks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module with a custom check, on sys.path for this test only."""
    name = f"shipyard_test_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import pandas as pd

            def positive_total(df: pd.DataFrame) -> pd.Series:
                return df["total"] > 0
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_custom_check_from_a_dotted_path_in_yaml(checks_module: str) -> None:
    text = textwrap.dedent(
        f"""
        table:
        - row_count: {{min: 1}}
        - custom: {{name: positive_total, function: '{checks_module}:positive_total'}}
        columns:
          total:
          - not_null
        """
    )
    expectations = Expectations.from_yaml(text)
    assert checks_module not in sys.modules  # imported only when validating
    df = pd.DataFrame({"total": [3.0, -1.0, 2.0, 0.0]})
    report = validate(df, expectations)
    assert checks_module in sys.modules
    failed = report.failures
    assert [(r.check, r.bad_count, r.example_indices) for r in failed] == [
        ("positive_total", 2, (1, 3))
    ]
    assert Expectations.from_yaml(expectations.to_yaml()) == expectations


def test_custom_check_paths_are_checked() -> None:
    with pytest.raises(InvalidInputError, match=r"not a 'package\.module:function' path"):
        CustomCheck(name="x", function="not a path")
    missing = CustomCheck(name="x", function="no_such_module_zz:f")
    with pytest.raises(InvalidInputError, match="cannot import module 'no_such_module_zz'"):
        validate(pd.DataFrame({"a": [1]}), [missing])
    no_attr = CustomCheck(name="x", function="json:no_such_function")
    with pytest.raises(InvalidInputError, match="'json' has no 'no_such_function'"):
        validate(pd.DataFrame({"a": [1]}), [no_attr])
    lam = Expectations([CustomCheck(name="lam", function=lambda d: True)])
    with pytest.raises(InvalidInputError, match="cannot be saved as a path"):
        lam.to_yaml()
    named = CustomCheck(name="ok", function=lo_le_hi)
    assert named.path.endswith(":lo_le_hi")


def test_third_party_checks_follow_the_protocol() -> None:
    class EvenCheck:
        name = "even"
        column = "n"

        def evaluate(self, df: pd.DataFrame) -> Any:
            return (df["n"] % 2 != 0).to_numpy()

    class CountCheck:
        name = "count"
        column = None

        def evaluate(self, df: pd.DataFrame) -> Any:
            return 2

    df = pd.DataFrame({"n": [2, 3, 4, 5]})
    report = validate(df, [EvenCheck(), CountCheck()])
    even, count = report.results
    assert (even.bad_count, even.example_indices, even.example_values) == (2, (1, 3), (3, 5))
    assert (count.passed, count.bad_count) == (False, 2)
    with pytest.raises(InvalidInputError, match="must be a non-empty string"):
        NotNullCheck(column="")
    with pytest.raises(InvalidInputError, match="expected checks"):
        Expectations(["not a check"])  # type: ignore[list-item]


def test_missing_column_is_one_failed_result_not_an_exception() -> None:
    df = clean_frame(20).drop(columns=["age"])
    report = validate(
        df, [DtypeCheck(column="agee", logical_type="integer"), NotNullCheck(column="agee")]
    )
    assert not report.passed
    (result,) = report.results
    assert (result.check, result.column, result.bad_count) == ("column_exists", "agee", 20)
    assert result.message == "column 'agee' is missing from the data"
    report = validate(clean_frame(20).drop(columns=["city"]), [NotNullCheck(column="cty")])
    assert "did you mean" not in report.results[0].message
    report = validate(clean_frame(20), [NotNullCheck(column="cityy")])
    assert "(did you mean 'city'?)" in report.results[0].message
    with pytest.raises(NotFoundError, match="column 'agee' is not in the DataFrame"):
        NotNullCheck(column="agee").evaluate(df)


def test_report_names_column_check_count_and_examples() -> None:
    df = clean_frame()
    expectations = Expectations.from_schema(infer_schema(df))
    assert validate(df, expectations).passed

    bad = df.copy()
    bad.loc[[4, 8], "age"] = 500
    bad.loc[[1], "city"] = "oslo"
    bad.loc[9, "id"] = 0
    report = validate(bad, expectations)
    failed = {(r.check, r.column): r for r in report.failures}
    assert set(failed) == {("range", "age"), ("allowed_values", "city"), ("unique", "id")}
    assert failed["range", "age"].example_indices == (4, 8)
    assert failed["unique", "id"].example_indices == (0, 9)

    summary = report.summary()
    assert summary.startswith(f"validation FAILED: 3 of {len(expectations)} checks failed")
    assert (
        "range on 'age': 2 of 200 rows (1.00%) are outside [18, 89]; e.g. rows 4, 8 = 500, 500"
        in (summary)
    )
    assert "allowed_values on 'city'" in summary and "unique on 'id'" in summary
    assert validate(df, expectations).summary().startswith("validation passed")
    assert "ok" in validate(df, expectations).summary(verbose=True)

    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["passed"] is False and as_json["n_failed"] == 3 and as_json["n_rows"] == N
    with pytest.raises(SchemaMismatchError) as info:
        report.raise_for_failures()
    assert "range on 'age'" in str(info.value) and info.value.details["n_failed"] == 3
    clean_report = validate(df, expectations)
    assert clean_report.raise_for_failures() is clean_report


def test_example_values_are_json_friendly_and_capped_at_five() -> None:
    df = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=10, freq="D")})
    result = run_one(RangeCheck(column="ts", max="2024-01-02"), df)
    assert result.bad_count == 8 and len(result.example_indices) == 5
    assert result.example_values[0] == "2024-01-03T00:00:00"
    few = validate(df, [RangeCheck(column="ts", max="2024-01-02")], max_examples=2)
    assert len(few.results[0].example_indices) == 2


def test_from_schema_defaults() -> None:
    df = clean_frame()
    df.loc[0, "score"] = np.nan
    schema = infer_schema(df)
    expectations = Expectations.from_schema(schema)
    by_column = {c: [k.name for k in expectations.for_column(c)] for c in schema.names}
    assert by_column == {
        "id": ["dtype", "not_null", "unique"],
        "age": ["dtype", "not_null", "range"],
        "score": ["dtype", "range"],  # nullable: no not_null
        "city": ["dtype", "not_null", "allowed_values"],
        "plan": ["dtype", "not_null", "allowed_values"],
        "code": ["dtype", "not_null", "unique"],
        "active": ["dtype", "not_null"],
        "ts": ["dtype", "not_null"],  # datetime ranges are not checked by default
    }
    assert expectations.checks[0] == RowCountCheck(min=1)
    assert validate(df, schema).passed  # a Schema is accepted directly


def test_yaml_round_trip_and_user_edits_are_honoured() -> None:
    df = clean_frame()
    expectations = Expectations.from_schema(infer_schema(df)).with_checks(
        MissingRateCheck(column="score", max_rate=0.1),
        RegexCheck(column="code", pattern=r"AB\d{4}"),
        FreshnessCheck(column="ts", max_age="36h"),
    )
    text = expectations.to_yaml()
    assert text.startswith("# shipyard expectations") and "WARNING" in text
    assert "  - range: {min: 18, max: 89}\n" in text and "  - freshness: 36h\n" in text
    again = Expectations.from_yaml(text)
    # freshness is written next to its column; otherwise order and values survive
    assert set(again.checks) == set(expectations.checks)
    assert Expectations.from_yaml(again.to_yaml()) == again

    edited = Expectations.from_yaml(text.replace("range: {min: 18, max: 89}", "range: {max: 60}"))
    assert RangeCheck(column="age", max=60) in edited.checks
    report = validate(df, edited)
    age = next(r for r in report.failures if r.column == "age")
    assert age.bad_count == int((df["age"] > 60).sum())


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("columns: {a: [frobnicate]}", "column 'a': unknown check 'frobnicate'"),
        ("table: [not_null]", "the table section: unknown check 'not_null'"),
        ("columns: {a: [{range: {low: 1}}]}", "unknown setting.*'low'"),
        ("columns: {a: [{range: {min: 5, max: 1}}]}", "min 5 is greater than max 1"),
        ("columns: {a: [{missing_rate: 5}]}", "fraction between 0 and 1"),
        ("columns: {a: [{dtype: number}]}", "unknown type 'number'"),
        ("columns: {a: [{regex: '('}]}", "not a valid regular expression"),
        ("columns: {a: [{freshness: soon}]}", "positive duration"),
        ("columns: {a: [{range: 3}]}", "takes a mapping"),
        ("columns: {a: [{not_null: 1, unique: 2}]}", "one `name: value` pair"),
        ("checks: []", "unknown section"),
        ("columns: [", "not valid YAML"),
        ("table: [{row_count: {min: -1}}]", "int >= 0"),
    ],
)
def test_bad_expectations_yaml_is_refused(text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Expectations.from_yaml(text)


def test_check_outcome_helpers() -> None:
    outcome = CheckOutcome.from_mask(np.array([False, True, True]), "are odd")
    assert (outcome.passed, outcome.bad_count) == (False, 2)
    assert CheckOutcome.from_mask(np.zeros(3, dtype=bool), "x").passed


def test_validate_refuses_non_frames() -> None:
    with pytest.raises(InvalidInputError, match="expected a pandas DataFrame"):
        validate({"a": [1]}, Expectations())  # type: ignore[arg-type]


def test_two_hundred_thousand_rows_validate() -> None:
    """Performance sanity, not a timing assertion: a vectorised run over 200k rows."""
    df = clean_frame(200_000, seed=3)
    df["code"] = "AB0000"
    schema = infer_schema(df)
    report = validate(df, schema)
    assert report.passed, report.summary()
    assert isinstance(report, ValidationReport) and report.n_rows == 200_000
