"""Signatures: inference from examples, input checks and version compatibility."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.registry import signature as signature_module
from shipyard.registry.signature import (
    ColumnSpec,
    Signature,
    check_input,
    compatibility_problems,
    infer_signature,
)


def _frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": np.where(np.arange(n) % 10 == 0, np.nan, rng.normal(50.0, 10.0, n)),
            "active": rng.random(n) > 0.5,
            "color": pd.Series(["red", "green", "blue"] * (n // 3) + ["red"] * (n % 3)),
            "grade": pd.Categorical(["a", "b"] * (n // 2), categories=["a", "b", "c"]),
            "seen": pd.date_range("2024-01-01", periods=n, freq="h"),
            "note": [f"free text {i}" for i in range(n)],
        }
    )


def _spec(sig: Signature, name: str) -> ColumnSpec:
    return next(c for c in sig.inputs if c.name == name)


def test_inference_gives_types_categories_ranges_and_nullability() -> None:
    df = _frame()
    sig = infer_signature(df)
    assert sig.input_names == list(df.columns)
    age = _spec(sig, "age")
    assert (age.type, age.nullable) == ("integer", False)
    assert age.minimum == float(df["age"].min()) and age.maximum == float(df["age"].max())
    income = _spec(sig, "income")
    assert (income.type, income.nullable) == ("float", True)
    assert income.minimum == pytest.approx(df["income"].min())
    assert _spec(sig, "active").type == "boolean"
    color = _spec(sig, "color")
    assert (color.type, color.categories) == ("string", ("blue", "green", "red"))
    grade = _spec(sig, "grade")
    assert (grade.type, grade.categories) == ("category", ("a", "b", "c"))
    assert _spec(sig, "seen").type == "datetime"
    note = _spec(sig, "note")
    assert (note.type, note.categories) == ("string", None)
    assert sig.outputs == ()


def test_a_few_rows_do_not_pin_string_categories() -> None:
    sig = infer_signature(pd.DataFrame({"color": ["red", "blue", "red"]}))
    assert _spec(sig, "color").categories is None


def test_numpy_input_names_columns_by_position() -> None:
    sig = infer_signature(np.array([[1.0, 2.0], [3.0, 4.5]]))
    assert sig.input_names == ["0", "1"]
    assert {c.type for c in sig.inputs} == {"float"}


def test_outputs_from_labels_and_from_probabilities() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    labels = infer_signature(X, np.array(["no", "yes", "no"])).outputs
    assert [(c.name, c.type) for c in labels] == [("prediction", "string")]
    numbers = infer_signature(X, np.array([[0.5], [1.5], [2.5]])).outputs
    assert [(c.name, c.type) for c in numbers] == [("prediction", "float")]
    proba = infer_signature(X, np.full((3, 2), 0.5), classes=["no", "yes"]).outputs
    assert [(c.name, c.type) for c in proba] == [("proba_no", "float"), ("proba_yes", "float")]
    with pytest.raises(InvalidInputError, match="2 columns"):
        infer_signature(X, np.full((3, 2), 0.5), classes=["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="one row per input row"):
        infer_signature(X, np.zeros(4))


def test_to_dict_round_trips_exactly_through_json() -> None:
    sig = infer_signature(_frame(), np.arange(100) % 2)
    again = Signature.from_dict(json.loads(json.dumps(sig.to_dict(), allow_nan=False)))
    assert again == sig
    assert again.to_dict() == sig.to_dict()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"inputs": [{"name": "a", "type": "int", "nullable": False}]}, "inputs[0].type"),
        ({"inputs": [{"name": "a", "type": "float"}]}, "inputs[0].nullable"),
        (
            {"inputs": [{"name": "a", "type": "float", "nullable": True, "minimum": "low"}]},
            "inputs[0].minimum",
        ),
        (
            {"outputs": [{"name": "p", "type": "float", "nullable": False, "extra": 1}]},
            "outputs[0].extra",
        ),
        ({"inputs": {"a": 1}}, "inputs"),
        ({"inputs": [], "shape": []}, "shape"),
    ],
)
def test_from_dict_names_the_bad_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        Signature.from_dict(data)


def test_column_names_must_be_unique() -> None:
    col = ColumnSpec(name="x", type="float", nullable=False)
    with pytest.raises(InvalidInputError, match="appears twice"):
        Signature(inputs=(col, col))


SIG = Signature(
    inputs=(
        ColumnSpec(name="n", type="integer", nullable=False, minimum=0.0, maximum=10.0),
        ColumnSpec(name="x", type="float", nullable=True),
        ColumnSpec(name="color", type="string", nullable=False, categories=("red", "blue")),
        ColumnSpec(name="grade", type="category", nullable=True, categories=("a", "b")),
        ColumnSpec(name="when", type="datetime", nullable=True),
    )
)


def _good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, None, 2.0],
            "color": ["red", "blue", "red"],
            "grade": ["a", "b", None],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        }
    )


def test_a_matching_frame_has_no_problems_even_with_extras_and_out_of_range_values() -> None:
    df = _good().assign(extra=["q", "r", "s"], n=[1, 2, 500])  # 500 > maximum: drift, not error
    assert check_input(SIG, df) == []


def test_compatible_types_pass() -> None:
    df = _good().assign(
        n=[1.0, 2.0, 3.0],  # whole floats for an integer column
        x=[1, 2, 3],  # integers for a float column
        grade=pd.Categorical(["a", "b", "a"]),
        when=["2024-01-01", "2024-01-02T10:00:00", None],  # ISO strings for datetime
        color=pd.Categorical(["red", "blue", "red"]),  # category dtype for a string column
    )
    assert check_input(SIG, df) == []


def test_each_problem_is_reported() -> None:
    df = (
        _good()
        .drop(columns=["x"])
        .assign(
            n=[1.5, 2.0, None],
            color=["red", "purple", None],
            grade=["a", "z", "z"],
            when=["yesterday", "2024-01-01", None],
        )
    )
    problems = check_input(SIG, df)
    text = "\n".join(problems)
    assert "missing column 'x' (float)" in text
    assert "'n' expects integer values but got float values that are not whole numbers" in text
    assert "1.5" in text
    assert "'n' has 1 missing value(s)" in text
    assert "'color' has 1 missing value(s)" in text
    assert "'color' has 1 value(s) outside its 2 known categories: 'purple'" in text
    assert "'grade' has 2 value(s) outside its 2 known categories: 'z'" in text
    assert "'when' expects datetime values" in text and "'yesterday'" in text
    assert len(problems) == 7


def test_wrong_kinds_are_named() -> None:
    df = _good().assign(x=["a", "b", "c"], n=[True, False, True])
    problems = check_input(SIG, df)
    assert "column 'x' expects float values but got string values" in problems
    assert "column 'n' expects integer values but got boolean values" in problems


def _sig(*cols: ColumnSpec, outputs: tuple[ColumnSpec, ...] = ()) -> Signature:
    return Signature(inputs=cols, outputs=outputs)


def test_compatibility() -> None:
    n_int = ColumnSpec(name="n", type="integer", nullable=False)
    n_float = ColumnSpec(name="n", type="float", nullable=False)
    n_nullable = ColumnSpec(name="n", type="integer", nullable=True)
    extra = ColumnSpec(name="new", type="float", nullable=True)
    label = ColumnSpec(name="prediction", type="integer", nullable=False)
    label_str = ColumnSpec(name="prediction", type="string", nullable=False)

    assert compatibility_problems(_sig(n_int), _sig(n_int)) == []
    assert compatibility_problems(_sig(n_int), _sig(n_float)) == []  # widening
    assert compatibility_problems(_sig(n_int, extra), _sig(n_int)) == []  # dropped input
    assert compatibility_problems(_sig(n_float), _sig(n_int)) == [
        "input column 'n' changes type from float to integer"
    ]
    (added,) = compatibility_problems(_sig(n_int), _sig(n_int, extra))
    assert "new input column 'new'" in added
    assert compatibility_problems(_sig(n_nullable), _sig(n_int)) == [
        "input column 'n' accepted missing values and no longer does"
    ]
    assert compatibility_problems(_sig(n_int), _sig(n_nullable)) == []
    assert compatibility_problems(
        _sig(n_int, outputs=(label,)), _sig(n_int, outputs=(label_str,))
    ) == ["output column 'prediction' changes type from integer to string"]
    renamed = ColumnSpec(name="proba_1", type="float", nullable=False)
    assert compatibility_problems(
        _sig(n_int, outputs=(label,)), _sig(n_int, outputs=(renamed,))
    ) == [
        "output column 'prediction' is gone",
        "new output column 'proba_1' that the current model does not give",
    ]


def test_narrowed_categories_are_incompatible() -> None:
    wide = ColumnSpec(name="c", type="string", nullable=False, categories=("a", "b"))
    narrow = ColumnSpec(name="c", type="string", nullable=False, categories=("a",))
    anything = ColumnSpec(name="c", type="string", nullable=False)
    assert compatibility_problems(_sig(narrow), _sig(wide)) == []
    assert compatibility_problems(_sig(wide), _sig(narrow)) == [
        "input column 'c' no longer accepts categories 'b'"
    ]
    (problem,) = compatibility_problems(_sig(anything), _sig(wide))
    assert "accepts only 2 categories" in problem


def test_docstring_examples_run() -> None:
    result = doctest.testmod(signature_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
