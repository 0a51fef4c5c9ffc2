import math

import numpy as np
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.validation import (
    KEY_MAX,
    PARAM_VALUE_MAX,
    check_artifact_path,
    check_key,
    check_metric_value,
    check_param_value,
)


@pytest.mark.parametrize("key", ["loss", "val/loss", "f1 score", "a.b-c_d:e"])
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * (KEY_MAX + 1), "a\nb", "../up", "/abs", 3])
def test_bad_keys(key: object) -> None:
    with pytest.raises(InvalidInputError):
        check_key(key)


def test_over_long_key_says_the_limit() -> None:
    with pytest.raises(InvalidInputError, match=str(KEY_MAX)):
        check_key("k" * (KEY_MAX + 5))


@pytest.mark.parametrize("value", [1, 1.5, np.float32(2.5), np.int64(3), math.nan, math.inf])
def test_metric_values_accept_real_numbers_including_nan_and_inf(value: object) -> None:
    out = check_metric_value("m", value)
    assert isinstance(out, float)


@pytest.mark.parametrize("value", ["0.5", None, True, [1.0], 1 + 2j])
def test_metric_values_reject_non_numbers_without_coercion(value: object) -> None:
    with pytest.raises(InvalidInputError, match="real number"):
        check_metric_value("m", value)


def test_param_value_limit_is_named() -> None:
    assert check_param_value("p", 3) == "3"
    with pytest.raises(InvalidInputError, match=str(PARAM_VALUE_MAX)):
        check_param_value("p", "x" * (PARAM_VALUE_MAX + 1))


@pytest.mark.parametrize(
    ("path", "norm"),
    [("a/b.txt", "a/b.txt"), ("a//b/./c", "a/b/c"), ("plots/roc.png", "plots/roc.png")],
)
def test_artifact_paths_are_normalised(path: str, norm: str) -> None:
    assert check_artifact_path(path) == norm


@pytest.mark.parametrize(
    "path", ["../secret", "a/../../b", "/etc/passwd", "C:/x", "a\\b", "", ".", "a/\x00"]
)
def test_artifact_paths_cannot_escape_the_run(path: str) -> None:
    with pytest.raises(InvalidInputError):
        check_artifact_path(path)
