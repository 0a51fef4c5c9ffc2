"""Data quality of live traffic against expectations from a reference frame or a signature."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring import quality as quality_module
from shipyard.monitoring.prediction_log import PredictionLog, PredictionRecord, read_predictions
from shipyard.monitoring.quality import (
    ColumnExpectation,
    ColumnQuality,
    Expectations,
    QualityResult,
    check_quality,
)
from shipyard.registry.signature import infer_signature


def make_reference(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A reference frame with every kind of column (income 0.5% missing)."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50.0, 10.0, n)
    income[rng.choice(n, size=n // 200, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": income,
            "plan": rng.choice(["basic", "plus", "pro"], size=n),
            "active": rng.random(n) > 0.5,
            "signup": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "grade": pd.Categorical(rng.choice(["a", "b"], size=n), categories=["a", "b", "c"]),
        }
    )


def make_current(n: int = 300, seed: int = 1) -> pd.DataFrame:
    """Live rows like the reference, with prediction-log columns beside them."""
    frame = make_reference(n, seed).assign(income=lambda d: d["income"].clip(25, 75).fillna(50.0))
    frame["age"] = frame["age"].clip(18, 89)
    frame["sy_request_id"] = [f"r{i}" for i in range(n)]
    frame["sy_prediction"] = 1
    frame["sy_proba_1"] = 0.5
    return frame


def _col(result: QualityResult, name: str) -> ColumnQuality:
    return result.column(name)


# --------------------------------------------------------------------------------------
# expectations


def test_from_frame_learns_kinds_missing_rates_ranges_and_categories() -> None:
    ref = make_reference().assign(sy_time=pd.Timestamp("2026-01-01", tz="UTC"))
    exp = Expectations.from_frame(ref)
    by = {c.name: c for c in exp.columns}
    assert exp.names == ["age", "income", "plan", "active", "signup", "grade"]  # no sy_*
    assert {n: c.kind for n, c in by.items()} == {
        "age": "numeric",
        "income": "numeric",
        "plan": "categorical",
        "active": "boolean",
        "signup": "datetime",
        "grade": "categorical",
    }
    assert (by["age"].minimum, by["age"].maximum) == (ref["age"].min(), ref["age"].max())
    assert by["income"].missing_rate == pytest.approx(0.005)
    assert by["income"].nullable and not by["age"].nullable
    assert by["plan"].categories == ("basic", "plus", "pro")
    assert by["grade"].categories == ("a", "b")  # seen values, not declared ones
    assert by["active"].categories is None and by["age"].categories is None


def test_from_frame_columns_and_category_limit() -> None:
    ref = make_reference().assign(user=lambda d: [f"u{i}" for i in range(len(d))], note=None)
    exp = Expectations.from_frame(ref, columns=["plan", "user", "note"], max_categories=50)
    assert exp.names == ["plan", "user", "note"]
    assert exp.columns[1].categories is None  # an identifier: any value goes
    assert (exp.columns[2].categories, exp.columns[2].missing_rate) == (None, 1.0)
    with pytest.raises(InvalidInputError, match="not in the reference"):
        Expectations.from_frame(ref, columns=["nope"])
    with pytest.raises(InvalidInputError, match="DataFrame"):
        Expectations.from_frame([1, 2])  # type: ignore[arg-type]


def test_from_signature_uses_signature_ranges_and_reference_missing_rates() -> None:
    ref = make_reference()
    sig = infer_signature(ref.drop(columns=["signup"]))
    exp = Expectations.from_signature(sig, ref)
    by = {c.name: c for c in exp.columns}
    assert by["age"].kind == "numeric" and by["age"].minimum == float(ref["age"].min())
    assert by["plan"].categories == ("basic", "plus", "pro")
    assert by["grade"].categories == ("a", "b", "c")  # the declared categories
    assert by["active"].kind == "boolean"
    assert by["income"].missing_rate == pytest.approx(0.005) and by["income"].nullable
    no_ref = Expectations.from_signature(sig)
    assert all(c.missing_rate == 0.0 for c in no_ref.columns)


def test_expectations_round_trip_through_json() -> None:
    exp = Expectations.from_frame(make_reference())
    data = json.loads(json.dumps(exp.to_dict(), allow_nan=False))
    assert Expectations.from_dict(data) == exp


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"cols": []}, "list under 'columns'"),
        ({"columns": [{"name": "x", "kind": "text", "nullable": False, "missing_rate": 0}]},
         "kind must be one of"),
        ({"columns": [{"name": "x", "kind": "numeric", "nullable": False}]}, "missing key"),
        ({"columns": [{"name": "x", "kind": "numeric", "nullable": False, "missing_rate": 2}]},
         "missing_rate"),
        ({"columns": [{"name": "x", "kind": "numeric", "nullable": False, "missing_rate": 0,
                       "minimum": 3, "maximum": 1}]}, "greater than maximum"),
        ({"columns": [{"name": "x", "kind": "numeric", "nullable": False, "missing_rate": 0,
                       "color": 1}]}, "unknown key"),
    ],
)  # fmt: skip
def test_malformed_expectations_are_refused(data: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Expectations.from_dict(data)


def test_repeated_column_names_are_refused() -> None:
    col = ColumnExpectation(name="x", kind="numeric", nullable=False, missing_rate=0.0)
    with pytest.raises(InvalidInputError, match="appears twice"):
        Expectations(columns=(col, col))


# --------------------------------------------------------------------------------------
# checks


def test_clean_traffic_has_no_issues_and_sy_columns_are_not_extra() -> None:
    exp = Expectations.from_frame(make_reference())
    result = check_quality(make_current(), exp)
    assert result.issues == [] and result.ok
    assert result.n_rows == 300
    assert result.extra_columns == () and result.missing_columns == ()
    assert {c.status for c in result.columns} == {"ok"}
    assert all(c.n == 300 for c in result.columns)


def test_missing_rate_above_reference_plus_tolerance_is_an_issue() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current()
    current.loc[:68, "income"] = np.nan  # 69 of 300 = 23.0%
    income = _col(check_quality(current, exp), "income")
    assert income.missing_rate == pytest.approx(0.23)
    assert income.reference_missing_rate == pytest.approx(0.005)
    assert income.issues == ("missing rate 23.0% (reference 0.5%)",)
    current = make_current()
    current.loc[:9, "income"] = np.nan  # 3.3%: within 0.5% + 5%
    assert _col(check_quality(current, exp), "income").issues == ()
    assert _col(check_quality(current, exp, missing_tolerance=0.01), "income").issues


def test_values_out_of_the_reference_range_are_counted() -> None:
    ref = make_reference()
    exp = Expectations.from_frame(ref)
    current = make_current()
    current.loc[:29, "age"] = 150  # 30 of 300
    current.loc[30:32, "age"] = -1
    age = _col(check_quality(current, exp), "age")
    assert age.out_of_range_share == pytest.approx(33 / 300)
    lo, hi = int(ref["age"].min()), int(ref["age"].max())
    assert age.issues == (f"11.0% of values outside the reference range [{lo}, {hi}]",)


def test_unseen_categories_are_listed_most_frequent_first_at_most_ten() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current()
    new = [f"new{i}" for i in range(12) for _ in range(i + 1)]  # new11 most frequent
    current.loc[: len(new) - 1, "plan"] = new
    plan = _col(check_quality(current, exp), "plan")
    assert plan.unseen_category_share == pytest.approx(len(new) / 300)
    assert plan.unseen_categories == tuple(f"new{i}" for i in range(11, 1, -1))
    assert "unseen categories ('new11', 'new10', 'new9' and 9 more)" in plan.issues[0]


def test_categories_compare_as_text_with_whole_floats_as_integers() -> None:
    ref = pd.DataFrame({"code": pd.Categorical([1, 2, 3] * 30)})
    exp = Expectations.from_signature(infer_signature(ref))
    assert exp.columns[0].categories == ("1", "2", "3")
    current = pd.DataFrame({"code": [1.0, 2.0, np.nan, 4.0]})
    code = _col(check_quality(current, exp), "code")
    assert code.unseen_categories == ("4",)
    assert code.unseen_category_share == pytest.approx(1 / 3)


def test_values_that_cannot_be_read_as_the_kind_are_type_errors() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current().astype({"income": object, "active": object, "signup": object})
    current.loc[:2, "income"] = "abc"
    current.loc[:3, "active"] = "maybe"
    current.loc[4:5, "active"] = "yes"  # readable as a boolean
    current["signup"] = current["signup"].astype(str).astype(object)
    current.loc[:4, "signup"] = "not a date"
    current.loc[5, "signup"] = 12
    result = check_quality(current, exp)
    income, active, signup = (_col(result, n) for n in ("income", "active", "signup"))
    assert income.type_error_share == pytest.approx(3 / 300)
    assert income.issues == ("1.0% of values are not numeric (e.g. 'abc')",)
    assert active.type_error_share == pytest.approx(4 / 300)
    assert signup.type_error_share == pytest.approx(6 / 300)
    assert _col(result, "age").type_error_share == 0.0


def test_numeric_text_is_readable_and_range_checked() -> None:
    exp = Expectations(
        columns=(
            ColumnExpectation(
                name="x", kind="numeric", nullable=False, missing_rate=0.0, minimum=0, maximum=10
            ),
        )
    )
    x = _col(check_quality(pd.DataFrame({"x": ["1", "2.5", "11", "abc"]}), exp), "x")
    assert (x.type_error_share, x.out_of_range_share) == (0.25, 0.25)


def test_missing_and_extra_columns() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current().drop(columns=["plan"]).assign(surprise=1)
    result = check_quality(current, exp)
    plan = _col(result, "plan")
    assert (plan.status, plan.n) == ("missing_column", 0)
    assert np.isnan(plan.missing_rate)
    assert result.missing_columns == ("plan",) and result.extra_columns == ("surprise",)
    assert result.issues == ["plan: column is missing from the data"]


def test_a_column_with_every_value_missing() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current().assign(age=np.nan)
    age = _col(check_quality(current, exp), "age")
    assert (age.status, age.missing_rate, age.out_of_range_share) == ("all_missing", 1.0, 0.0)
    assert age.issues == ("missing rate 100.0% (reference 0.0%)",)


@pytest.mark.parametrize(
    "current", [pd.DataFrame(), make_current().iloc[:0]], ids=["no-columns", "no-rows"]
)
def test_an_empty_frame_gives_no_rows_and_no_issues(current: pd.DataFrame) -> None:
    exp = Expectations.from_frame(make_reference())
    result = check_quality(current, exp)
    assert result.n_rows == 0 and result.issues == []
    assert {c.status for c in result.columns} == {"no_rows"}
    assert result.missing_columns == ()
    json.dumps(result.to_dict(), allow_nan=False)


def test_to_frame_and_to_dict() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current().drop(columns=["age"])
    current.loc[:1, "plan"] = ["zeta", "omega"]
    result = check_quality(current, exp)
    frame = result.to_frame()
    assert list(frame["column"]) == exp.names
    assert list(frame.columns) == [
        "column", "n", "missing_rate", "reference_missing_rate", "out_of_range_share",
        "unseen_category_share", "unseen_categories", "type_error_share", "status", "issues",
    ]  # fmt: skip
    plan = frame.set_index("column").loc["plan"]
    assert plan["unseen_categories"] in ("zeta, omega", "omega, zeta")
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["missing_columns"] == ["age"]
    assert data["columns"][0]["missing_rate"] is None  # NaN -> None
    assert data["n_rows"] == 300


def test_bad_arguments_are_refused() -> None:
    exp = Expectations.from_frame(make_reference())
    with pytest.raises(InvalidInputError, match="missing_tolerance"):
        check_quality(make_current(), exp, missing_tolerance=1.5)
    with pytest.raises(InvalidInputError, match="DataFrame"):
        check_quality({"a": [1]}, exp)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="Expectations"):
        check_quality(make_current(), {"columns": []})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="no column"):
        check_quality(make_current(), exp).column("nope")


def test_rows_of_a_real_prediction_log(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True)
    X, y = data.data.iloc[:, :8], data.target
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:300], y[:300])
    live = X[300:].reset_index(drop=True).copy()
    live.loc[:9, "mean radius"] = 1_000.0  # a unit error upstream
    log = PredictionLog(tmp_path, flush_interval=0.05)
    for i, start in enumerate(range(0, len(live), 50)):
        rows = live.iloc[start : start + 50]
        log.submit(
            PredictionRecord(
                model="cancer", version=1, request_id=f"r{i}", at_ms=1_767_225_600_000 + i,
                latency_ms=1.0, inputs=rows, predictions=model.predict(rows),
                probabilities=model.predict_proba(rows), classes=[0, 1],
            )
        )  # fmt: skip
    log.close()
    logged = read_predictions(tmp_path, "cancer")
    result = check_quality(logged, Expectations.from_frame(X[:300]))
    assert result.n_rows == len(live) and result.extra_columns == ()
    radius = result.column("mean radius")
    assert radius.out_of_range_share >= 10 / len(live)
    assert any(i.startswith("mean radius: ") for i in result.issues)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(quality_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_a_range_tolerance_ignores_a_few_values_beyond_the_extremes() -> None:
    exp = Expectations.from_frame(make_reference())
    current = make_current(n=2_000)
    current.loc[0, "age"] = 1_000  # 0.05% of the rows
    age = check_quality(current, exp).column("age")
    assert age.issues == (
        f"0.05% of values outside the reference range [18, {exp.columns[0].maximum:.0f}]",
    )
    assert check_quality(current, exp, range_tolerance=0.001).column("age").issues == ()
    with pytest.raises(InvalidInputError, match="range_tolerance"):
        check_quality(current, exp, range_tolerance=-0.1)
