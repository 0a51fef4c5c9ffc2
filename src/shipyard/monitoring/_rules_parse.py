"""Parsing and checking of alert rules: the metric vocabulary, field checks, YAML lines.

Private to :mod:`shipyard.monitoring.rules`, which re-exports the public
vocabulary (:data:`DATASET_METRICS`, :data:`COLUMN_METRICS`, :data:`OPERATORS`...)
and builds rules and notifiers with these checks. A check raises :class:`_Problem`
naming the YAML key at fault; the caller turns it into an
:class:`~shipyard.core.errors.InvalidInputError` that says where (rule, line via
:class:`_Locator`) and how to fix it (:func:`_fail`).
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import yaml

from shipyard.core.errors import InvalidInputError
from shipyard.core.yamltext import line_of

OPERATORS = (">", ">=", "<", "<=", "==", "!=")

PERFORMANCE_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "rmse",
    "mae",
    "r2",
    "mape",
)
_WINDOW_METRICS = (
    "drift_share",
    "drifted_columns",
    "dataset_drift",
    "prediction_drift",
    "prediction_drift_distance",
    "target_drift",
    "domain_auc",
    "n_rows",
    "prediction_log_drops",
    "label_coverage",
)
DATASET_METRICS: tuple[str, ...] = (
    *_WINDOW_METRICS,
    *PERFORMANCE_METRICS,
    *(f"{name}_change" for name in PERFORMANCE_METRICS),
)
COLUMN_METRICS = (
    "drifted",
    "drift_distance",
    "p_value",
    "missing_rate",
    "out_of_range_share",
    "unseen_category_share",
    "type_error_share",
)
BOOLEAN_METRICS = frozenset({"dataset_drift", "prediction_drift", "target_drift", "drifted"})

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_WHEN_RE = re.compile(r"([A-Za-z_]\w*)\s*(.*)", re.DOTALL)
_OP_RE = re.compile(r"([<>=!]+|[A-Za-z]+)\s*(.*)", re.DOTALL)
_WHEN_HELP = "write '<metric> <op> <number>', e.g. 'drift_share > 0.3'"


class _Problem(Exception):
    """One field of a rule or notifier is wrong (``key``: the YAML key to point at)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


# --------------------------------------------------------------------------- checks


def _metric_list() -> str:
    return (
        f"dataset metrics: {', '.join((*_WINDOW_METRICS, *PERFORMANCE_METRICS))}, "
        "and <performance metric>_change (live minus validation, e.g. accuracy_change); "
        f"column metrics (need `column:`): {', '.join(COLUMN_METRICS)}"
    )


def _check_metric(metric: str) -> None:
    if metric in DATASET_METRICS or metric in COLUMN_METRICS:
        return
    close = difflib.get_close_matches(metric, (*DATASET_METRICS, *COLUMN_METRICS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise _Problem("when", f"unknown metric {metric!r}; {hint}known {_metric_list()}")


def _format_number(number: float) -> str:
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _parse_when(when: object) -> tuple[str, str, float]:
    """``"drift_share > 0.3"`` -> ``("drift_share", ">", 0.3)``; ``"drifted"`` -> ``== 1``."""
    if not isinstance(when, str) or not when.strip():
        raise _Problem("when", f"`when` must be text, got {when!r}; {_WHEN_HELP}")
    text = when.strip()
    match = _WHEN_RE.fullmatch(text)
    if match is None:
        raise _Problem("when", f"`when: {text}` does not start with a metric name; {_WHEN_HELP}")
    metric, rest = match.groups()
    _check_metric(metric)
    if not rest:
        if metric in BOOLEAN_METRICS:
            return metric, "==", 1.0
        raise _Problem(
            "when",
            f"`when: {text}` has no comparison and {metric} is not a yes/no metric "
            f"(only {', '.join(sorted(BOOLEAN_METRICS))} may stand alone); "
            f"write e.g. '{metric} > 0.5'",
        )
    op_match = _OP_RE.fullmatch(rest)
    op = op_match.group(1) if op_match else rest.split()[0]
    if op_match is None or op not in _COMPARE:
        raise _Problem(
            "when",
            f"unknown comparison {op!r} in `when: {text}`; use one of {' '.join(OPERATORS)} "
            "(== for equality)",
        )
    number = op_match.group(2).strip()
    if not number:
        raise _Problem("when", f"`when: {text}` has no number after {op!r}; {_WHEN_HELP}")
    try:
        threshold = float(number)
    except ValueError:
        raise _Problem(
            "when",
            f"threshold {number!r} in `when: {text}` is not a number; "
            f"write a plain number, e.g. '{metric} {op} 0.3'",
        ) from None
    if not math.isfinite(threshold):
        raise _Problem("when", f"threshold in `when: {text}` must be a finite number")
    return metric, op, threshold


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _Problem(
            "name", f"`name` must be non-empty text, got {name!r}; give every rule a name"
        )
    if "|" in name:
        raise _Problem(
            "name",
            f"name {name!r} contains '|', which separates rule and column in alert "
            "fingerprints; choose a name without it",
        )
    return name.strip()


def _check_choice(key: str, value: object, choices: Sequence[str]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise _Problem(key, f"unknown {key} {value!r}; use one of {', '.join(choices)}")


def _check_column(metric: str, column: object) -> str | None:
    if metric in COLUMN_METRICS:
        if column is None:
            raise _Problem(
                "column",
                f"{metric} is a column metric: add `column: <column name>`, or "
                f'`column: "*"` for every column',
            )
        if isinstance(column, int) and not isinstance(column, bool):
            column = str(column)
        if not isinstance(column, str) or not column.strip():
            raise _Problem(
                "column",
                f'`column` must be a column name or "*", got {column!r}',
            )
        return column
    if column is not None:
        raise _Problem(
            "column",
            f"{metric} is a dataset metric, measured on the whole window, so it takes no "
            f"`column`; remove `column: {column}`, or use a column metric "
            f"({', '.join(COLUMN_METRICS)})",
        )
    return None


def _check_for(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise _Problem(
            "for",
            f"`for` must be a whole number of evaluations, 1 or more, got {value!r} "
            "(for: 3 fires when the condition held in the last 3 evaluations)",
        )
    return int(value)


def _check_threshold(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise _Problem("when", f"threshold must be a finite number, got {value!r}")
    return float(value)


def _check_webhook_url(url: object) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Problem(
            "webhook",
            f"webhook URL {url!r} is not an http(s) URL; write e.g. "
            "https://hooks.example.com/alerts",
        )
    return str(url)


def _check_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise _Problem(
            "headers",
            f"`headers` must be a mapping of name to value, got {type(headers).__name__}; "
            'write e.g. headers: {Authorization: "Bearer <token>"}',
        )
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise _Problem(
                "headers",
                f"header {name!r} must have a text name and a text value "
                f"(got a {type(value).__name__}); quote the value",
            )
        if any(c in name + value for c in "\r\n") or ":" in name:
            raise _Problem(
                "headers",
                f"header {name!r} has a line break (or a ':' in its name); remove it",
            )
        checked[name] = value
    return checked


def _check_timeout(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise _Problem("timeout_s", f"`timeout_s` must be a positive number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- YAML


class _Locator:
    """Line numbers of YAML nodes by path, e.g. ``("rules", 2, "when")``."""

    def __init__(self, root: yaml.Node | None = None, *, rules_at_root: bool = False) -> None:
        self.root = root
        self.rules_at_root = rules_at_root

    def line(self, *path: str | int) -> int | None:
        if self.rules_at_root and path[:1] == ("rules",):
            path = path[1:]
        return line_of(self.root, path)


def _fail(
    origin: str,
    label: str,
    line: int | None,
    message: str,
    details: dict[str, Any],
) -> InvalidInputError:
    where = f" (line {line})" if line is not None else ""
    return InvalidInputError(
        f"{origin}: {label}{where}: {message}",
        details={"origin": origin, "line": line, **details},
    )


def _unknown_keys(raw: Mapping[Any, Any], allowed: Sequence[str]) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise _Problem(str(key), f"unknown key {key!r}; {hint}allowed keys: {', '.join(allowed)}")


def _as_list(value: object, what: str, origin: str, line: int | None) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return value
    where = f" (line {line})" if line is not None else ""
    raise InvalidInputError(
        f"{origin}{where}: `{what}` must be a list (one '- ' item each), "
        f"got {type(value).__name__} {value!r}",
        details={"origin": origin, "line": line},
    )
