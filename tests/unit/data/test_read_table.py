"""Reading CSV, TSV and Parquet files for ``shipyard data add``: what is refused, and why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, NotFoundError, SchemaMismatchError
from shipyard.data._catalog import read_table


@pytest.fixture
def data(sy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``sy.data`` on a fresh store under tmp_path."""
    monkeypatch.chdir(tmp_path)
    yield sy.data


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def customers_csv(path: Path, *, tenure: list[str]) -> Path:
    rows = "".join(f"c{i},{t}\n" for i, t in enumerate(tenure))
    return write(path, "customer,tenure\n" + rows)


# -- a column of numbers with a few words in it --------------------------------------------


def test_a_number_column_with_one_word_in_it_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = customers_csv(tmp_path / "customers.csv", tenure=["3", "14", "twelve", "7"])
    with pytest.raises(SchemaMismatchError) as caught:
        read_table(path)
    message = str(caught.value)
    assert str(path) in message
    assert "'tenure'" in message
    assert "1 of 4 values is not a number" in message
    assert "line 4: 'twelve'" in message  # the header is line 1
    assert "dtype={'tenure': str}" in message
    assert caught.value.details == {
        "file": str(path),
        "column": "tenure",
        "not_numbers": 1,
        "examples": [{"line": 4, "value": "twelve"}],
    }


def test_at_most_three_odd_values_are_shown_with_their_real_line_numbers(
    tmp_path: Path,
) -> None:
    # A blank line (pandas skips it) and a quoted line break both shift the lines.
    path = write(
        tmp_path / "customers.csv",
        'customer,tenure\nann,1\n\nbob,n/a?\n"carl\nsmith",2\ndora,?\neve,-\nfred,3\ngus,4\n'
        "hal,5\nivy,6\n",
    )
    with pytest.raises(SchemaMismatchError) as caught:
        read_table(path)
    assert "3 of 9 values are not numbers" in str(caught.value)
    assert "e.g. line 4: 'n/a?', line 7: '?', line 8: '-'" in str(caught.value)
    assert caught.value.details["not_numbers"] == 3


def test_a_big_number_column_with_one_word_in_it_is_refused(tmp_path: Path) -> None:
    tenure = [str(i % 120) for i in range(50_000)]
    tenure[31_337] = "twelve"
    path = customers_csv(tmp_path / "customers.csv", tenure=tenure)
    with pytest.raises(SchemaMismatchError, match=r"1 of 50,000 values .*\(line 31339: 'twelve'\)"):
        read_table(path)


def test_a_tsv_number_column_with_a_word_in_it_is_refused_with_the_tsv_fix(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "customers.tsv", "customer\ttenure\nann\t3\nbob\tthree\ncy\t5\n")
    with pytest.raises(SchemaMismatchError, match=r"line 3: 'three'") as caught:
        read_table(path)
    assert "sep='\\t', dtype={'tenure': str}" in str(caught.value)


@pytest.mark.parametrize(
    "values",
    [
        ["ann", "bob", "carl", "dora", "17"],  # names, with one number among them
        ["A12", "B7", "12", "C3", "D44", "7"],  # codes: letters and digits
        [f"customer {i}" if i % 5 else str(i) for i in range(6_000)],  # big and mostly text
    ],
    ids=["names", "codes", "big-text"],
)
def test_text_columns_with_some_numbers_in_them_are_still_text(
    tmp_path: Path, values: list[str]
) -> None:
    path = write(tmp_path / "t.csv", "value\n" + "".join(f"{v}\n" for v in values))
    df = read_table(path)
    assert pd.api.types.is_string_dtype(df["value"])
    assert df["value"].tolist() == values


# -- a header and no rows ----------------------------------------------------------------


def test_a_header_without_rows_is_refused_naming_its_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", "customer_id,signup_date\n")
    with pytest.raises(InvalidInputError, match="no rows") as caught:
        read_table(path)
    assert "header (customer_id, signup_date)" in str(caught.value)
    assert "add rows" in str(caught.value)


def test_an_empty_file_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is empty"):
        read_table(write(tmp_path / "customers.csv", ""))


# -- dates -------------------------------------------------------------------------------


def test_iso_dates_and_times_become_datetimes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "customers.csv",
        "customer,signup_date,last_seen\n"
        "ann,2024-01-31,2024-02-01T10:30:00\n"
        "bob,,2024-02-02 08:00:00.250\n"
        "cy,2024-02-29,2024-03-01T00:00:00\n",
    )
    df = read_table(path)
    assert pd.api.types.is_datetime64_dtype(df["signup_date"])
    assert pd.api.types.is_datetime64_dtype(df["last_seen"])
    assert df["signup_date"].tolist()[0] == pd.Timestamp("2024-01-31")
    assert pd.isna(df["signup_date"].iloc[1])
    assert df["last_seen"].iloc[1] == pd.Timestamp("2024-02-02 08:00:00.250")
    assert pd.api.types.is_string_dtype(df["customer"])


def test_times_whose_utc_offset_changes_with_daylight_saving_are_read_in_utc(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "t.csv", "ts\n2024-03-30T10:00:00+01:00\n2024-04-01T10:00:00+02:00\n")
    ts = read_table(path)["ts"]
    assert str(ts.dt.tz) == "UTC"
    assert ts.tolist() == [pd.Timestamp("2024-03-30 09:00Z"), pd.Timestamp("2024-04-01 08:00Z")]


@pytest.mark.parametrize(
    "values",
    [
        ["2024-01-31", "soon", "2024-02-01"],  # one value is not a date
        ["2024-01-31", "2024-02-30"],  # no such day
        ["2024-01-31 10:00", "2024-02-01T10:00+02:00"],  # with and without a UTC offset
        ["31/01/2024", "01/02/2024"],  # not ISO 8601
    ],
    ids=["garbage", "impossible-day", "naive-and-aware", "not-iso"],
)
def test_columns_that_are_not_all_iso_dates_stay_text(tmp_path: Path, values: list[str]) -> None:
    path = write(tmp_path / "t.csv", "when\n" + "".join(f"{v}\n" for v in values))
    when = read_table(path)["when"]
    assert pd.api.types.is_string_dtype(when)
    assert when.tolist() == values


def test_numbers_are_never_taken_for_dates(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "day,year\n20240131,2024\n20240201,2025\n")
    df = read_table(path)
    assert df["day"].tolist() == [20240131, 20240201]
    assert pd.api.types.is_integer_dtype(df["day"]) and pd.api.types.is_integer_dtype(df["year"])


def test_a_date_column_is_stored_with_the_datetime_logical_type(data: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "customers.csv",
        "customer_id,signup_date\n1,2024-01-31\n2,2024-02-15\n3,\n",
    )
    version = data.add("customers", path)
    columns = {c["name"]: c for c in version.schema["columns"]}
    assert columns["signup_date"]["logical_type"] == "datetime"
    assert columns["signup_date"]["min"].startswith("2024-01-31")
    assert columns["signup_date"]["max"].startswith("2024-02-15")
    back = data.get("customers@1").to_pandas()
    assert pd.api.types.is_datetime64_dtype(back["signup_date"])


# -- bytes that are not UTF-8 ------------------------------------------------------------


def test_a_latin1_file_is_refused_naming_the_bad_byte_where_it_is(tmp_path: Path) -> None:
    raw = "name,city\nann,Paris\nbob,Montr\xe9al\n".encode("latin-1")
    path = tmp_path / "customers.csv"
    path.write_bytes(raw)
    with pytest.raises(InvalidInputError, match="not UTF-8") as caught:
        read_table(path)
    offset = raw.index(b"\xe9")
    assert offset == 29
    assert f"byte {offset} (line 3, 0xe9)" in str(caught.value)
    assert caught.value.details == {"file": str(path), "byte_offset": offset, "line": 3}


def test_the_bad_byte_offset_is_right_far_into_a_file(tmp_path: Path) -> None:
    # More than the 1 MiB read at a time, with a UTF-8 "é" cut in two by that boundary.
    head = "name\n" + "ann\n" * 262_142 + "ab"  # 1,048,575 bytes: "é" spans 1 MiB
    raw = (head + "\xe9\n").encode() + "bob\ncaf\xe9\n".encode("latin-1")
    path = tmp_path / "customers.csv"
    path.write_bytes(raw)
    with pytest.raises(InvalidInputError) as caught:
        read_table(path)
    offset = raw.index(b"caf\xe9") + 3
    assert caught.value.details["byte_offset"] == offset
    assert caught.value.details["line"] == 262_146
    assert f"byte {offset:,} (line 262146, 0xe9)" in str(caught.value)


# -- nothing half-made -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("customer,tenure\nann,3\nbob,twelve\ncy,5\n", SchemaMismatchError),
        ("customer,tenure\n", InvalidInputError),
    ],
    ids=["mixed-column", "header-only"],
)
def test_a_refused_file_adds_no_dataset(
    data: Any, tmp_path: Path, text: str, error: type[Exception]
) -> None:
    path = write(tmp_path / "customers.csv", text)
    with pytest.raises(error):
        data.add("customers", path)
    with pytest.raises(NotFoundError):
        data.log("customers")
    assert not (tmp_path / "expectations" / "customers.yaml").exists()


# -- TSV and Parquet as before -----------------------------------------------------------


def test_tsv_files_read_as_before(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", "id\tname\tscore\n1\tann lee\t0.5\n2\tbob, jr\t1.5\n")
    df = read_table(path)
    expected = pd.DataFrame({"id": [1, 2], "name": ["ann lee", "bob, jr"], "score": [0.5, 1.5]})
    pd.testing.assert_frame_equal(df, expected, check_dtype=False)


def test_parquet_files_read_as_they_were_written(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "id": np.arange(3),
            "tenure": pd.Series(["3", "twelve", "5"], dtype=object),  # as written: not checked
            "day": ["2024-01-31", "2024-02-01", "2024-02-02"],  # strings stay strings
        }
    )
    df.to_parquet(tmp_path / "t.parquet")
    back = read_table(tmp_path / "t.parquet")
    assert back["tenure"].tolist() == ["3", "twelve", "5"]
    assert back["day"].tolist() == ["2024-01-31", "2024-02-01", "2024-02-02"]
    empty = df.iloc[:0]
    empty.to_parquet(tmp_path / "empty.parquet")
    assert read_table(tmp_path / "empty.parquet").columns.tolist() == ["id", "tenure", "day"]
