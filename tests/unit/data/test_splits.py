"""Splits (random, stratified, time, group) and the leakage check."""

from __future__ import annotations

import doctest
import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, SchemaMismatchError
from shipyard.data import splits
from shipyard.data.splits import SplitResult, leakage_check, split_frame


@pytest.fixture
def make_events() -> Callable[..., pd.DataFrame]:
    """Factory: unique rows with an imbalanced label, a time, a user id (seeded)."""

    def make(n: int = 500, seed: int = 0, users: int = 40) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame(
            {
                "row": np.arange(n),
                "label": rng.choice(["a", "b", "c", "d"], p=[0.6, 0.25, 0.1, 0.05], size=n),
                "at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
                "user": rng.integers(0, users, n),
                "x": rng.normal(size=n),
            },
            index=pd.Index(rng.permutation(n) * 10 + 7, name="event_id"),
        )

    return make


def _assert_partition(df: pd.DataFrame, result: SplitResult) -> None:
    parts = list(result.frames.values())
    labels = [label for part in parts for label in part.index]
    assert sorted(labels) == sorted(df.index), "every row is in exactly one part"
    for part in parts:
        assert len(part) > 0
        positions = df.index.get_indexer(part.index)
        assert (np.diff(positions) > 0).all(), "parts keep the original row order"
        pd.testing.assert_frame_equal(part, df.loc[part.index])


# -- random ----------------------------------------------------------------------------------


def test_random_split_sizes_partition_and_index(make_events: Callable[..., pd.DataFrame]) -> None:
    df = make_events(n=100)
    result = split_frame(df, test=0.2, valid=0.1, seed=3)
    assert result.valid is not None
    assert (len(result.train), len(result.valid), len(result.test)) == (70, 10, 20)
    _assert_partition(df, result)
    assert result.summary["rows"] == {"train": 70, "valid": 10, "test": 20}
    assert result.summary["method"] == "random" and result.summary["seed"] == 3
    no_valid = split_frame(df, test=0.25)
    assert no_valid.valid is None and set(no_valid.frames) == {"train", "test"}
    assert len(no_valid.test) == 25


@pytest.mark.parametrize("method", ["random", "stratified", "time", "group"])
def test_same_seed_same_split_other_seed_other_split(
    make_events: Callable[..., pd.DataFrame], method: str
) -> None:
    df = make_events()
    options = {"target": "label", "time_column": "at", "group_column": "user"}

    def test_index(seed: int) -> list[int]:
        result = split_frame(df, method=method, test=0.2, valid=0.1, seed=seed, **options)
        _assert_partition(df, result)
        return list(result.test.index)

    assert test_index(5) == test_index(5)
    if method != "time":  # a time split does not depend on the seed
        assert test_index(5) != test_index(6)


# -- stratified --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("test", "valid"), [(0.2, 0.0), (0.25, 0.15), (0.1, 0.3), (0.33, 0.33)])
def test_stratified_keeps_class_ratios_within_one_row(
    make_events: Callable[..., pd.DataFrame], seed: int, test: float, valid: float
) -> None:
    df = make_events(n=137 + 11 * seed, seed=seed)
    result = split_frame(df, method="stratified", target="label", test=test, valid=valid, seed=seed)
    _assert_partition(df, result)
    fractions = {"train": 1 - test - valid, "valid": valid, "test": test}
    sizes = df["label"].value_counts()
    for name, part in result.frames.items():
        counts = part["label"].value_counts()
        for label, size in sizes.items():
            assert abs(counts.get(label, 0) - size * fractions[name]) < 1, (name, label)
        expected_rows = len(df) * fractions[name]
        assert math.floor(expected_rows) <= len(part) <= math.ceil(expected_rows)
    assert result.summary["class_counts"]["test"] == {
        str(k): int(v) for k, v in sorted(result.test["label"].value_counts().items())
    }


def test_stratified_needs_a_target_and_enough_rows_per_class() -> None:
    df = pd.DataFrame({"y": ["a"] * 10 + ["rare"] * 2, "x": range(12)})
    with pytest.raises(
        InvalidInputError, match="needs target=<column>; columns are \\['y', 'x'\\]"
    ):
        split_frame(df, method="stratified")
    with pytest.raises(InvalidInputError, match=r"target 'label' is not a column.*\['y', 'x'\]"):
        split_frame(df, method="stratified", target="label")
    with pytest.raises(InvalidInputError, match="class 'rare' of target 'y' has 2 row") as info:
        split_frame(df, method="stratified", target="y", valid=0.2)
    assert info.value.details == {"class": "rare", "rows": 2}
    two_parts = split_frame(df, method="stratified", target="y", test=0.5, seed=1)
    assert two_parts.test["y"].tolist().count("rare") == 1


def test_stratified_missing_target_values_form_a_class() -> None:
    df = pd.DataFrame({"y": [1.0, np.nan] * 10})
    result = split_frame(df, method="stratified", target="y", test=0.5)
    assert result.test["y"].isna().sum() == 5
    assert result.summary["class_counts"]["test"] == {"1.0": 5, "nan": 5}


# -- time ----------------------------------------------------------------------------------


def test_time_split_puts_later_times_in_later_parts(
    make_events: Callable[..., pd.DataFrame],
) -> None:
    df = make_events(n=400)  # 90 distinct days: many rows share a time
    result = split_frame(df, method="time", time_column="at", test=0.2, valid=0.1)
    _assert_partition(df, result)
    assert result.valid is not None
    assert result.train["at"].max() < result.valid["at"].min()
    assert result.valid["at"].max() < result.test["at"].min()
    assert abs(len(result.test) - 80) <= df["at"].value_counts().max()
    ranges = result.summary["time_range"]
    assert ranges["test"]["max"] == df["at"].max().isoformat()
    assert ranges["train"]["min"] == df["at"].min().isoformat()


def test_time_split_on_numbers_with_exact_sizes() -> None:
    df = pd.DataFrame({"t": np.arange(10)[::-1], "v": range(10)})
    result = split_frame(df, method="time", time_column="t", test=0.3)
    assert sorted(result.test["t"]) == [7, 8, 9]
    assert list(result.test.index) == [0, 1, 2]  # original order kept


def test_time_split_errors() -> None:
    df = pd.DataFrame({"t": [1, 1, 1, 2], "v": range(4)})
    with pytest.raises(InvalidInputError, match="too few distinct times"):
        split_frame(df, method="time", time_column="t", test=0.25, valid=0.25)
    with pytest.raises(InvalidInputError, match="'t' has 1 missing value"):
        split_frame(df.assign(t=[1, None, 3, 4]), method="time", time_column="t")
    with pytest.raises(InvalidInputError, match="needs time_column"):
        split_frame(df, method="time")


# -- group ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_group_split_keeps_each_group_in_one_part(
    make_events: Callable[..., pd.DataFrame], seed: int
) -> None:
    df = make_events(n=600, seed=seed, users=60)
    result = split_frame(df, method="group", group_column="user", test=0.2, valid=0.1, seed=seed)
    _assert_partition(df, result)
    users = {name: set(part["user"]) for name, part in result.frames.items()}
    assert not users["train"] & users["valid"]
    assert not users["train"] & users["test"]
    assert not users["valid"] & users["test"]
    assert abs(len(result.test) - 120) <= df["user"].value_counts().max()
    assert result.summary["groups"] == {name: len(u) for name, u in users.items()}
    assert leakage_check(result.frames, group_column="user").ok


def test_group_split_errors() -> None:
    df = pd.DataFrame({"g": [1, 1, 2, 2], "v": range(4)})
    with pytest.raises(InvalidInputError, match=r"2 distinct group.*at least 3"):
        split_frame(df, method="group", group_column="g", valid=0.2)
    with pytest.raises(InvalidInputError, match="'g' has 1 missing value"):
        split_frame(df.assign(g=[1, None, 2, 3]), method="group", group_column="g")
    one_big = pd.DataFrame({"g": [0] * 50 + [1, 2, 3], "v": range(53)})
    result = split_frame(one_big, method="group", group_column="g", test=0.2, seed=0)
    assert 0 in set(result.train["g"]) and len(result.test) >= 1


# -- validation of the options -------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"test": 0}, "test must be a fraction between 0 and 1"),
        ({"test": 1.0}, "test must be a fraction between 0 and 1"),
        ({"test": True}, "test must be a fraction such as 0.2"),
        ({"valid": -0.1}, r"valid must be a fraction in \[0, 1\)"),
        ({"test": 0.5, "valid": 0.5}, "test \\+ valid must be below 1"),
        ({"method": "kfold"}, "method must be one of random, stratified, time, group"),
        ({"group_column": "nope"}, "group_column 'nope' is not a column"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=pattern):
        split_frame(pd.DataFrame({"x": range(10)}), **options)  # type: ignore[arg-type]


def test_too_few_rows_for_the_parts() -> None:
    with pytest.raises(InvalidInputError, match="2 rows, too few for a train/valid/test split"):
        split_frame(pd.DataFrame({"x": [1, 2]}), valid=0.2)


def test_summary_is_json_friendly(make_events: Callable[..., pd.DataFrame]) -> None:
    result = split_frame(
        make_events(), method="stratified", target="label", time_column="at",
        group_column="user", valid=0.1,
    )  # fmt: skip
    summary = json.loads(json.dumps(result.summary))
    assert set(summary) >= {"rows", "fractions", "class_counts", "class_fractions"}
    assert set(summary) >= {"time_range", "groups"}
    assert sum(summary["rows"].values()) == 500


# -- leakage check -------------------------------------------------------------------------


def test_leakage_check_passes_a_clean_split(make_events: Callable[..., pd.DataFrame]) -> None:
    result = split_frame(make_events(), test=0.2, valid=0.2, seed=1)
    report = leakage_check(result.frames)
    assert report.ok and report.describe() == []
    assert report.rows == result.summary["rows"]
    assert report.columns == ("row", "label", "at", "user", "x")


def test_leakage_check_finds_planted_duplicates(make_events: Callable[..., pd.DataFrame]) -> None:
    df = make_events(n=300)
    result = split_frame(df, test=0.3, seed=2)
    planted = result.train.iloc[[3, 10, 20]]
    test = pd.concat([result.test, planted.set_axis([-1, -2, -3])])
    test.loc[-3, "x"] = 99.0  # no longer a duplicate
    report = leakage_check({"train": result.train, "valid": None, "test": test})
    assert not report.ok
    (leak,) = report.duplicates
    assert (leak.first, leak.second, leak.rows_first, leak.rows_second) == ("train", "test", 2, 2)
    assert set(leak.examples) == {(planted.index[0], -1), (planted.index[1], -2)}
    assert "2 row(s) of 'test' repeat 2 row(s) of 'train'" in report.describe()[0]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["duplicates"][0]["rows_second"] == 2


def test_leakage_check_compares_values_not_dtypes_and_honours_exclusions() -> None:
    train = pd.DataFrame({"id": [1, 2, 3], "a": [1, 2, 3], "b": ["x", "y", "z"]})
    test = pd.DataFrame({"id": [4, 5], "a": [2.0, 9.0], "b": ["y", "q"]})
    assert leakage_check({"train": train, "test": test}).ok  # the id differs
    report = leakage_check({"train": train, "test": test}, exclude_columns=["id"])
    assert [(d.rows_first, d.rows_second, d.examples) for d in report.duplicates] == [
        (1, 1, ((1, 0),))
    ]
    assert report.columns == ("a", "b")
    with pytest.raises(InvalidInputError, match="exclude_columns \\['idd'\\] are in no part"):
        leakage_check({"train": train, "test": test}, exclude_columns=["idd"])


def test_leakage_check_finds_shared_groups() -> None:
    parts = {
        "train": pd.DataFrame({"user": ["u1", "u2", "u3", None], "v": [1, 2, 3, 4]}),
        "valid": pd.DataFrame({"user": ["u4", "u5"], "v": [5, 6]}),
        "test": pd.DataFrame({"user": ["u3", "u2", "u9", None], "v": [7, 8, 9, 10]}),
    }
    report = leakage_check(parts, group_column="user")
    assert report.duplicates == ()
    (shared,) = report.shared_groups
    assert (shared.first, shared.second, shared.count, shared.examples) == (
        "train", "test", 2, ("u3", "u2"),
    )  # fmt: skip
    assert report.to_dict()["shared_groups"] == [
        {"first": "train", "second": "test", "count": 2, "examples": ["u3", "u2"]}
    ]
    assert "2 user id(s) are in both 'train' and 'test'" in report.describe()[0]
    with pytest.raises(
        SchemaMismatchError, match="'user' is missing from part\\(s\\) \\['valid'\\]"
    ):
        leakage_check({**parts, "valid": parts["valid"].drop(columns="user")}, group_column="user")


def test_leakage_check_hashes_large_frames_quickly() -> None:
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"a": rng.integers(0, 10**9, 200_000), "b": rng.normal(size=200_000)})
    report = leakage_check({"train": big.iloc[:150_000], "test": big.iloc[149_990:]})
    assert report.duplicates[0].rows_second == 10


def test_documented_examples_run() -> None:
    result = doctest.testmod(splits, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0
