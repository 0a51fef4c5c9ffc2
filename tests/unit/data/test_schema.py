"""Schema inference: logical types, nullability, ranges, categories, uniqueness, YAML."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, NotFoundError, SchemaMismatchError
from shipyard.data.schema import ColumnSchema, LogicalType, Schema, infer_schema, looks_like_id


def make_people(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """A realistic mixed table: ids, ints, floats with NaN, bools, categories, times, text."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 12_000, size=n).round(2)
    income[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "age": rng.integers(18, 90, size=n),
            "income": income,
            "active": rng.random(n) < 0.5,
            "city": rng.choice(["paris", "lyon", "nice"], size=n),
            "plan": pd.Categorical(rng.choice(["free", "pro"], size=n), categories=["free", "pro"]),
            "signup": pd.date_range("2024-01-01", periods=n, freq="h"),
            "comment": [f"said thing number {i % 300} today" for i in range(n)],
            "email": [f"user{i}@example.com" for i in range(n)],
        }
    )


def test_infers_logical_types_nullability_ranges_and_categories() -> None:
    df = make_people()
    schema = infer_schema(df)

    assert schema.n_rows == 1000
    assert schema.names == tuple(df.columns)
    types = {c.name: c.logical_type for c in schema.columns}
    assert types == {
        "user_id": LogicalType.IDENTIFIER,
        "age": LogicalType.INTEGER,
        "income": LogicalType.FLOAT,
        "active": LogicalType.BOOLEAN,
        "city": LogicalType.CATEGORICAL,
        "plan": LogicalType.CATEGORICAL,
        "signup": LogicalType.DATETIME,
        "comment": LogicalType.TEXT,
        "email": LogicalType.IDENTIFIER,
    }
    income = schema.column("income")
    assert income.nullable and 0.05 < income.missing_rate < 0.15
    assert income.min == pytest.approx(df["income"].min())
    assert income.max == pytest.approx(df["income"].max())
    age = schema.column("age")
    assert (age.nullable, age.missing_rate, age.min, age.max) == (
        False,
        0.0,
        int(df["age"].min()),
        int(df["age"].max()),
    )
    assert isinstance(age.min, int) and not age.unique
    assert schema.column("city").categories == ("lyon", "nice", "paris")
    assert schema.column("plan").categories == ("free", "pro")
    assert schema.column("user_id").unique and schema.column("email").unique
    assert schema.column("user_id").min == 1
    signup = schema.column("signup")
    assert (signup.min, signup.max) == ("2024-01-01T00:00:00", "2024-02-11T15:00:00")
    assert schema.column("comment").n_distinct == 300
    assert schema.column("active").categories is None


def test_identifier_heuristic_names_and_cardinality() -> None:
    n = 1000
    ids = np.arange(n)
    ids[:3] = 0  # 99.7% distinct: still an identifier, but not unique
    df = pd.DataFrame(
        {
            "orderId": ids,
            "count": np.arange(n),  # unique ints without an id-like name: a quantity
            "sku": [f"SKU-{i:05d}" for i in range(n)],  # all distinct, no spaces
            "note": [f"note {i}" for i in range(n)],  # all distinct, with spaces: text
            "customer_id": [f"c{i % 400}" for i in range(n)],  # id name, repeats
        }
    )
    schema = infer_schema(df)
    order = schema.column("orderId")
    assert order.logical_type is LogicalType.IDENTIFIER and not order.unique
    assert schema.column("count").logical_type is LogicalType.INTEGER
    assert schema.column("sku").logical_type is LogicalType.IDENTIFIER
    assert schema.column("note").logical_type is LogicalType.TEXT
    customer = schema.column("customer_id")
    assert customer.logical_type is LogicalType.IDENTIFIER and not customer.unique
    assert [looks_like_id(x) for x in ("id", "user_id", "userId", "uuid", "idle", "paid")] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]


def test_object_columns_are_typed_by_their_values() -> None:
    df = pd.DataFrame(
        {
            "n": pd.Series([1, None, 3, 4], dtype=object),
            "flag": pd.Series([True, False, None, True], dtype=object),
            "x": pd.Series([1, 2.5, None, 4], dtype=object),
            "nothing": pd.Series([None] * 4, dtype=object),
            "when": pd.Series([pd.Timestamp("2024-01-01"), None, pd.Timestamp("2024-03-01"), None]),
            "nullable_int": pd.array([1, None, 3, 4], dtype="Int64"),
            "utc": pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC"),
        }
    )
    schema = infer_schema(df)
    got = {c.name: (c.logical_type.value, c.nullable) for c in schema.columns}
    assert got == {
        "n": ("integer", True),
        "flag": ("boolean", True),
        "x": ("float", True),
        "nothing": ("text", True),
        "when": ("datetime", True),
        "nullable_int": ("integer", True),
        "utc": ("datetime", False),
    }
    assert schema.column("n").max == 4
    assert schema.column("utc").max == "2024-01-04T00:00:00+00:00"
    assert schema.column("nothing").missing_rate == 1.0


def test_categorical_limits() -> None:
    n = 1000
    df = pd.DataFrame(
        {
            "few": [f"v{i % 10}" for i in range(n)],
            "many": [f"v {i % 80}" for i in range(n)],  # over max_categories: text
            "wide_cat": pd.Categorical([f"v{i % 80}" for i in range(n)]),
        }
    )
    schema = infer_schema(df)
    assert schema.column("few").logical_type is LogicalType.CATEGORICAL
    assert schema.column("many").logical_type is LogicalType.TEXT
    wide = schema.column("wide_cat")
    assert wide.logical_type is LogicalType.CATEGORICAL and wide.categories is None
    assert infer_schema(df, max_categories=100, categorical_ratio=0.1).column(
        "many"
    ).categories == tuple(sorted(f"v {i}" for i in range(80)))


def test_yaml_and_dict_round_trip_exactly() -> None:
    schema = infer_schema(make_people())
    text = schema.to_yaml()
    assert text.startswith("# shipyard schema")
    assert "Edit it by hand" in text
    assert Schema.from_yaml(text) == schema
    assert Schema.from_dict(schema.to_dict()) == schema
    assert [c["name"] for c in schema.to_dict()["columns"]] == list(schema.names)
    assert "categories: [lyon, nice, paris]" in text  # lists stay on one line


def test_user_edits_to_the_yaml_are_honoured() -> None:
    schema = infer_schema(make_people())
    text = schema.to_yaml()
    old = schema.column("age")
    edited = text.replace(f"max: {old.max}\n", "max: 65\n", 1).replace(
        "categories: [lyon, nice, paris]", "categories: [lyon, nice, paris, lille]"
    )
    edited = edited.replace("  min: '2024-01-01T00:00:00'", "  min: 2023-12-01")
    again = Schema.from_yaml(edited)
    assert again.column("age").max == 65
    assert again.column("city").categories == ("lyon", "nice", "paris", "lille")
    assert again.column("signup").min == "2023-12-01"  # an unquoted YAML date
    assert again.column("income") == schema.column("income")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("nullable: false", "nulable: false"), "unknown setting.*'nulable'"),
        (("logical_type: integer", "logical_type: number"), "unknown type 'number'"),
        (("  min: 1\n", "  min: 100\n"), "greater than max"),
        (("nullable: false", "nullable: 'no'"), "nullable must be true or false"),
        (("version: 1", "version: 9"), "version 9 is not supported"),
        (("columns:", "columns: ["), "not valid YAML"),
    ],
)
def test_bad_yaml_is_refused_with_a_clear_message(edit: tuple[str, str], match: str) -> None:
    text = infer_schema(make_people(50)).to_yaml()
    assert edit[0] in text
    with pytest.raises(InvalidInputError, match=match):
        Schema.from_yaml(text.replace(edit[0], edit[1], 1))


def test_mixed_python_types_name_the_column_types_examples_and_the_fix() -> None:
    df = pd.DataFrame({"ok": [1, 2, 3, 4], "zip": pd.Series([75001, "75002", 13001, None])})
    with pytest.raises(SchemaMismatchError) as info:
        infer_schema(df)
    msg = str(info.value)
    assert "column 'zip' mixes Python types" in msg
    assert "int (2 values, e.g. 75001, 13001)" in msg
    assert "str (1 value, e.g. '75002')" in msg
    assert "df['zip'].astype(str)" in msg
    assert info.value.details == {"column": "zip"}


def test_unsupported_dtypes_are_refused() -> None:
    df = pd.DataFrame({"wait": pd.to_timedelta([1, 2], unit="s")})
    with pytest.raises(SchemaMismatchError, match=r"'wait'.*total_seconds"):
        infer_schema(df)


def test_unknown_column_names_the_known_ones() -> None:
    schema = infer_schema(make_people(50))
    with pytest.raises(NotFoundError) as info:
        schema.column("agee")
    assert "column 'agee' is not in the schema" in str(info.value)
    assert "'user_id', 'age'" in str(info.value)
    assert "did you mean 'age'?" in str(info.value)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="expected a pandas DataFrame"):
        infer_schema([1, 2, 3])  # type: ignore[arg-type]
    dupes = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInputError, match="duplicate column names 'a'"):
        infer_schema(dupes)
    with pytest.raises(InvalidInputError, match="max_categories"):
        infer_schema(pd.DataFrame({"a": [1]}), max_categories=-1)
    with pytest.raises(InvalidInputError, match="'columns' list"):
        Schema.from_yaml("columns: 3")
    with pytest.raises(InvalidInputError, match="appears twice"):
        Schema(columns=(ColumnSchema(name="a", logical_type="float"),) * 2)


def test_empty_and_non_string_column_names() -> None:
    schema = infer_schema(
        pd.DataFrame({0: pd.Series([], dtype=float), 1: pd.Series([], dtype=str)})
    )
    assert schema.names == ("0", "1") and schema.n_rows == 0
    assert schema.column("0").min is None and not schema.column("1").nullable


def test_with_column_replaces_by_name() -> None:
    schema = infer_schema(make_people(50))
    wider = schema.with_column(ColumnSchema(name="age", logical_type="integer", min=0, max=130))
    assert wider.column("age").max == 130 and wider.names == schema.names


def test_infers_a_million_rows_quickly_enough() -> None:
    """Not a timing assertion: the vectorised path simply completes on a large frame."""
    n = 1_000_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "c": pd.Series(rng.choice(["a", "b", "c"], size=n), dtype="str"),
        }
    )
    schema = infer_schema(df)
    assert [c.logical_type.value for c in schema.columns] == ["identifier", "float", "categorical"]
