"""Data quality of live traffic, checked against what the reference data (or signature) expects.

:class:`Expectations` records, per input column, its kind, how often it was missing,
the numeric range and the categories seen in a reference frame
(:meth:`Expectations.from_frame`) or declared by a model's signature
(:meth:`Expectations.from_signature`). :func:`check_quality` then measures a window of
live traffic (for instance rows of the prediction log) against them: missing rate,
values out of range, unseen categories, values that cannot be read as the expected
kind, and columns that are gone.

Conventions:

* ``missing_rate`` is a share of all rows; ``out_of_range_share``,
  ``unseen_category_share`` and ``type_error_share`` are shares of the non-missing
  values (a column with every value missing has them at 0.0).
* Categories are compared as text; a whole float is written as an integer, so a
  category ``1`` matches a value ``1.0``.
* The prediction log's own ``sy_*`` columns are never expected nor reported as extra.
* Every check is vectorised per column: counting distinct values, then working on the
  (few) distinct values: a million rows by fifty columns take well under two seconds.

Example:
    >>> import pandas as pd
    >>> ref = pd.DataFrame({"age": [30, 41, 55], "plan": ["a", "b", "a"]})
    >>> exp = Expectations.from_frame(ref)
    >>> result = check_quality(pd.DataFrame({"age": [31, 90], "plan": ["a", "c"]}), exp)
    >>> result.issues
    ['age: 50.0% of values outside the reference range [30, 55]', \
"plan: 50.0% of values are unseen categories ('c')"]
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from shipyard.core.errors import InvalidInputError
from shipyard.core.plain import jsonable
from shipyard.monitoring.prediction_log import RESERVED

if TYPE_CHECKING:
    from shipyard.registry.signature import Signature

logger = logging.getLogger(__name__)

KINDS = ("numeric", "categorical", "boolean", "datetime")
"""The kinds of column an expectation can have."""

STATUSES = ("ok", "missing_column", "all_missing", "no_rows")
"""What :attr:`ColumnQuality.status` can be (``ok``: the column was checked)."""

MAX_CATEGORIES = 1_000
"""A reference column with more distinct values than this expects no fixed categories."""

MAX_LISTED = 10
"""Unseen categories listed per column at most (the most frequent first)."""

_BOOLEAN_TEXT = frozenset({"true", "false", "0", "1", "0.0", "1.0", "yes", "no", "t", "f"})
_SIGNATURE_KINDS = {
    "integer": "numeric",
    "float": "numeric",
    "boolean": "boolean",
    "datetime": "datetime",
    "string": "categorical",
    "category": "categorical",
}
_EXPECTATION_KEYS = ("name", "kind", "nullable", "missing_rate", "minimum", "maximum", "categories")


# --------------------------------------------------------------------------------------
# expectations


@dataclass(frozen=True)
class ColumnExpectation:
    """What one column of live traffic is expected to look like.

    Args:
        name: Column name.
        kind: One of :data:`KINDS`.
        nullable: Whether the column may have missing values.
        missing_rate: Share of missing values in the reference (0.0 to 1.0).
        minimum: Smallest value of a numeric column (reference or signature), or None.
        maximum: Largest value of a numeric column, or None.
        categories: The categories seen, as text, or None for "any value".

    Raises:
        InvalidInputError: A field has the wrong type or value; the message names it.
    """

    name: str
    kind: str
    nullable: bool
    missing_rate: float
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        where = f"expectation for column {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(f"column expectation name must be a non-empty string, got "
                                    f"{self.name!r}")  # fmt: skip
        if self.kind not in KINDS:
            raise InvalidInputError(
                f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}"
            )
        if not isinstance(self.nullable, bool):
            raise InvalidInputError(f"{where}: nullable must be true or false, got "
                                    f"{self.nullable!r}")  # fmt: skip
        rate = _number(self.missing_rate, f"{where}: missing_rate")
        if rate is None or not 0.0 <= rate <= 1.0:
            raise InvalidInputError(
                f"{where}: missing_rate must be a number from 0 to 1, got {self.missing_rate!r}"
            )
        lo = _number(self.minimum, f"{where}: minimum")
        hi = _number(self.maximum, f"{where}: maximum")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidInputError(f"{where}: minimum {lo!r} is greater than maximum {hi!r}")
        object.__setattr__(self, "missing_rate", rate)
        object.__setattr__(self, "minimum", lo)
        object.__setattr__(self, "maximum", hi)
        if self.categories is not None:
            if isinstance(self.categories, str) or not isinstance(self.categories, Sequence):
                raise InvalidInputError(
                    f"{where}: categories must be a list of strings or null, got "
                    f"{self.categories!r}"
                )
            object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (``categories`` as a list)."""
        out = dataclasses.asdict(self)
        out["categories"] = None if self.categories is None else list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: object) -> ColumnExpectation:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidInputError: Not a mapping, an unknown or missing key, or a bad value.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"a column expectation must be an object, got {type(data).__name__}"
            )
        unknown = sorted(map(str, set(data) - set(_EXPECTATION_KEYS)))
        if unknown:
            raise InvalidInputError(
                f"column expectation: unknown key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(_EXPECTATION_KEYS)}"
            )
        missing = [k for k in ("name", "kind", "nullable", "missing_rate") if k not in data]
        if missing:
            raise InvalidInputError(f"column expectation {data.get('name')!r}: missing key(s) "
                                    f"{', '.join(missing)}")  # fmt: skip
        categories = data.get("categories")
        return cls(
            name=data["name"],
            kind=data["kind"],
            nullable=data["nullable"],
            missing_rate=data["missing_rate"],
            minimum=data.get("minimum"),
            maximum=data.get("maximum"),
            categories=None if categories is None else tuple(categories),
        )


@dataclass(frozen=True)
class Expectations:
    """The column expectations :func:`check_quality` measures live traffic against.

    Args:
        columns: One :class:`ColumnExpectation` per column, names unique.

    Raises:
        InvalidInputError: An element is not a :class:`ColumnExpectation` or a name repeats.

    Example:
        >>> import pandas as pd
        >>> exp = Expectations.from_frame(pd.DataFrame({"x": [1.0, None]}))
        >>> exp.columns[0].kind, exp.columns[0].missing_rate
        ('numeric', 0.5)
        >>> Expectations.from_dict(exp.to_dict()) == exp
        True
    """

    columns: tuple[ColumnExpectation, ...]

    def __post_init__(self) -> None:
        columns = tuple(self.columns)
        seen: set[str] = set()
        for i, col in enumerate(columns):
            if not isinstance(col, ColumnExpectation):
                raise InvalidInputError(
                    f"expectations columns[{i}] must be a ColumnExpectation, got "
                    f"{type(col).__name__}"
                )
            if col.name in seen:
                raise InvalidInputError(f"expectations: column {col.name!r} appears twice")
            seen.add(col.name)
        object.__setattr__(self, "columns", columns)

    @property
    def names(self) -> list[str]:
        """Column names, in order."""
        return [c.name for c in self.columns]

    @classmethod
    def from_frame(
        cls,
        reference: pd.DataFrame,
        *,
        columns: Sequence[str] | None = None,
        max_categories: int = MAX_CATEGORIES,
    ) -> Expectations:
        """Expectations learned from a reference frame (e.g. the training data).

        A column's kind follows its dtype (booleans, numbers, datetimes; anything else,
        including numbers or dates stored as text, is categorical unless every value reads
        as a number or a boolean). Numeric columns get the finite range seen; categorical
        columns the distinct values seen, as text, unless there are more than
        ``max_categories`` of them (identifiers, free text: any value is then accepted).

        Args:
            reference: The reference frame.
            columns: Columns to expect (default: all but the prediction log's ``sy_*``).
            max_categories: Most categories a column may have to have them checked.

        Returns:
            The :class:`Expectations`.

        Raises:
            InvalidInputError: ``reference`` is not a DataFrame, or a column is absent.
        """
        if not isinstance(reference, pd.DataFrame):
            raise InvalidInputError(
                f"reference must be a pandas DataFrame, got {type(reference).__name__}"
            )
        by_name = _columns_by_name(reference)
        if columns is None:
            names = [n for n in by_name if not n.startswith(RESERVED)]
        else:
            names = [str(c) for c in columns]
            absent = [n for n in names if n not in by_name]
            if absent:
                raise InvalidInputError(
                    f"columns {absent!r} are not in the reference frame, which has "
                    f"{sorted(by_name)[:20]!r}; pass columns that exist"
                )
        out = [_learn(n, _column(reference, by_name[n]), max_categories) for n in names]
        return cls(columns=tuple(out))

    @classmethod
    def from_signature(
        cls, signature: Signature, reference: pd.DataFrame | None = None
    ) -> Expectations:
        """Expectations from a model's signature: its input columns, ranges and categories.

        The kinds, ``nullable``, ranges and categories come from the signature; the
        missing rates from ``reference`` when given (a column it lacks, or no reference:
        0.0).

        Args:
            signature: The model's :class:`~shipyard.registry.signature.Signature`.
            reference: The frame to read missing rates from (e.g. the training data).

        Returns:
            The :class:`Expectations`.

        Raises:
            InvalidInputError: ``reference`` is given but is not a DataFrame.
        """
        if reference is not None and not isinstance(reference, pd.DataFrame):
            raise InvalidInputError(
                f"reference must be a pandas DataFrame or None, got {type(reference).__name__}"
            )
        by_name = {} if reference is None else _columns_by_name(reference)
        out = []
        for spec in signature.inputs:
            rate = 0.0
            if reference is not None and spec.name in by_name and len(reference):
                rate = float(_column(reference, by_name[spec.name]).isna().mean())
            kind = _SIGNATURE_KINDS.get(spec.type, "categorical")
            numeric = kind == "numeric"
            categories = None
            if kind == "categorical" and spec.categories is not None:
                categories = tuple(_text(pd.Index(list(spec.categories), dtype=object)))
            out.append(
                ColumnExpectation(
                    name=spec.name,
                    kind=kind,
                    nullable=spec.nullable,
                    missing_rate=rate,
                    minimum=spec.minimum if numeric else None,
                    maximum=spec.maximum if numeric else None,
                    categories=categories,
                )
            )
        return cls(columns=tuple(out))

    def to_dict(self) -> dict[str, Any]:
        """``{"columns": [...]}``, JSON-safe (what a monitor stores)."""
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: object) -> Expectations:
        """Inverse of :meth:`to_dict` (``from_dict(e.to_dict()) == e``).

        Raises:
            InvalidInputError: The dict is malformed; the message says where.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("columns"), list):
            raise InvalidInputError(
                "expectations must be an object with a list under 'columns', got "
                f"{type(data).__name__}"
            )
        return cls(columns=tuple(ColumnExpectation.from_dict(c) for c in data["columns"]))


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{where} must be a number or null, got {value!r}")
    number = float(value)
    if math.isnan(number):
        raise InvalidInputError(f"{where} must be a number, got NaN")
    return number


def _columns_by_name(frame: pd.DataFrame) -> dict[str, Any]:
    """Column labels by their text (the first label wins when two read the same)."""
    out: dict[str, Any] = {}
    for label in frame.columns:
        out.setdefault(str(label), label)
    return out


def _column(frame: pd.DataFrame, label: Any) -> pd.Series:
    series = frame[label]
    if isinstance(series, pd.DataFrame):  # a repeated label: the first one
        series = series.iloc[:, 0]
    return series


def _kind(series: pd.Series) -> str:
    dtype = series.dtype
    if pdt.is_bool_dtype(dtype):
        return "boolean"
    if pdt.is_numeric_dtype(dtype) or pdt.is_timedelta64_dtype(dtype):
        return "numeric"
    if pdt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return "categorical"
    inferred = pdt.infer_dtype(series, skipna=True)
    if inferred == "boolean":
        return "boolean"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    if inferred in ("datetime", "datetime64", "date"):
        return "datetime"
    return "categorical"


def _learn(name: str, series: pd.Series, max_categories: int) -> ColumnExpectation:
    kind = _kind(series)
    n_missing = int(series.isna().sum())
    rate = n_missing / len(series) if len(series) else 0.0
    lo = hi = None
    categories = None
    if kind == "numeric":
        values = _numbers(series)
        finite = values[np.isfinite(values)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
    elif kind == "categorical":
        counts = _counts(series)
        if 0 < len(counts) <= max_categories:  # no value seen: nothing to compare with
            categories = tuple(sorted(set(_text(counts.index))))
    return ColumnExpectation(
        name=name,
        kind=kind,
        nullable=n_missing > 0,
        missing_rate=rate,
        minimum=lo,
        maximum=hi,
        categories=categories,
    )


# --------------------------------------------------------------------------------------
# value helpers (vectorised)


def _numbers(series: pd.Series) -> np.ndarray:
    """The values as float64 (unreadable or missing values are NaN)."""
    if pdt.is_timedelta64_dtype(series.dtype):
        seconds = series.dt.total_seconds()
        return np.asarray(seconds.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if pdt.is_numeric_dtype(series.dtype) or pdt.is_bool_dtype(series.dtype):
        return np.asarray(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    coerced = pd.to_numeric(series.astype(object), errors="coerce")
    return np.asarray(coerced.to_numpy(dtype=float, na_value=np.nan), dtype=float)


def _counts(series: pd.Series) -> pd.Series:
    """Count of each distinct non-missing value, most frequent first."""
    counts = series.value_counts(dropna=True, sort=True)
    return counts[counts > 0]


def _text(values: pd.Index) -> list[str]:
    """Distinct values as text; a whole float reads as an integer (``1.0`` -> ``"1"``)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Index(np.asarray(values), dtype=values.dtype.categories.dtype)
    if pdt.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float)
        whole = np.isfinite(numbers) & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**53)
        text = np.asarray(values.astype(str), dtype=object)
        text[whole] = numbers[whole].astype(np.int64).astype(str)
        return [str(t) for t in text]
    if pdt.is_object_dtype(values.dtype) and pdt.infer_dtype(values, skipna=True) != "string":
        out: list[str] = []
        for v in values:  # mixed distinct values (never rows): floats need care
            whole = isinstance(v, (float, np.floating)) and math.isfinite(v) and v.is_integer()
            out.append(str(int(v)) if whole else str(v))
        return out
    return [str(v) for v in values.astype(str)]


def _share(count: int | float, total: int) -> float:
    return float(count) / total if total else 0.0


def _percent(share: float) -> str:
    if 0 < share < 0.001:  # a handful of a million rows must not read as 0.0%
        return f"{100 * share:.2g}%"
    return f"{100 * share:.1f}%"


def _bound(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


# --------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ColumnQuality:
    """The quality of one expected column in the current data.

    ``status`` says whether it could be checked (``ok``), or why not: the column is
    absent (``missing_column``), every value is missing (``all_missing``), or there are no
    rows at all (``no_rows``). Shares that cannot be computed are NaN. ``issues`` has one
    human-readable line per problem.
    """

    column: str
    n: int
    missing_rate: float
    reference_missing_rate: float
    out_of_range_share: float
    unseen_category_share: float
    unseen_categories: tuple[str, ...]
    type_error_share: float
    status: str
    issues: tuple[str, ...]


@dataclass(frozen=True)
class QualityResult:
    """What :func:`check_quality` found, per expected column.

    Attributes:
        columns: One :class:`ColumnQuality` per expected column, in expectation order.
        n_rows: Rows in the current data.
        missing_columns: Expected columns the current data lacks.
        extra_columns: Columns of the current data nobody expected (``sy_*`` left out).
    """

    columns: tuple[ColumnQuality, ...]
    n_rows: int
    missing_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]

    @property
    def issues(self) -> list[str]:
        """Every problem found, as ``"<column>: <issue>"``."""
        return [f"{c.column}: {issue}" for c in self.columns for issue in c.issues]

    @property
    def ok(self) -> bool:
        """True when no issue was found."""
        return not any(c.issues for c in self.columns)

    def column(self, name: str) -> ColumnQuality:
        """The quality of column ``name``.

        Raises:
            InvalidInputError: No expected column has that name.
        """
        for col in self.columns:
            if col.column == name:
                return col
        raise InvalidInputError(
            f"no column {name!r} in the quality result; it has {[c.column for c in self.columns]}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column with the :class:`ColumnQuality` fields as columns.

        ``unseen_categories`` is joined with ``", "`` and ``issues`` with ``"; "``.
        """
        names = [f.name for f in dataclasses.fields(ColumnQuality)]
        rows = []
        for col in self.columns:
            row = {name: getattr(col, name) for name in names}
            row["unseen_categories"] = ", ".join(col.unseen_categories)
            row["issues"] = "; ".join(col.issues)
            rows.append(row)
        return pd.DataFrame(rows, columns=names)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes None)."""
        columns = []
        for col in self.columns:
            entry = dataclasses.asdict(col)
            entry["unseen_categories"] = list(col.unseen_categories)
            entry["issues"] = list(col.issues)
            columns.append(entry)
        out = {
            "n_rows": self.n_rows,
            "missing_columns": list(self.missing_columns),
            "extra_columns": list(self.extra_columns),
            "columns": columns,
        }
        return dict(jsonable(out))


# --------------------------------------------------------------------------------------
# the check


def check_quality(
    current: pd.DataFrame,
    expectations: Expectations,
    *,
    missing_tolerance: float = 0.05,
    range_tolerance: float = 0.0,
) -> QualityResult:
    """Measure ``current`` (a window of live traffic) against ``expectations``.

    An issue is raised for a column when it is missing; when its missing rate exceeds the
    reference's by more than ``missing_tolerance``; when more than ``range_tolerance``
    of its values (by default: any) lie outside the expected numeric range; when any
    value is an unseen category; or when any value cannot be read as the expected kind
    (``"abc"`` in a numeric column, ``"maybe"`` in a boolean one, a number or non-date
    text in a datetime one). An empty frame gives status ``no_rows`` for every column
    and no issues.

    Args:
        current: The live rows (the prediction log's ``sy_*`` columns are ignored).
        expectations: What the columns should look like.
        missing_tolerance: How far above the reference the missing rate may go (a share).
        range_tolerance: Share of values that may lie out of range without an issue (a
            larger window than the reference nearly always has a few values beyond its
            extremes; 0.001 ignores those).

    Returns:
        The :class:`QualityResult`.

    Raises:
        InvalidInputError: ``current`` is not a DataFrame, ``expectations`` is not an
            :class:`Expectations`, or a tolerance is not in [0, 1].

    Example:
        >>> import pandas as pd
        >>> exp = Expectations.from_frame(pd.DataFrame({"x": [1.0, 2.0]}))
        >>> check_quality(pd.DataFrame({"x": ["abc", 1.5]}), exp).issues
        ["x: 50.0% of values are not numeric (e.g. 'abc')"]
    """
    if not isinstance(current, pd.DataFrame):
        raise InvalidInputError(f"current must be a pandas DataFrame, got {type(current).__name__}")
    if not isinstance(expectations, Expectations):
        raise InvalidInputError(
            f"expectations must be an Expectations (see Expectations.from_frame), got "
            f"{type(expectations).__name__}"
        )
    tolerances = []
    for name, value in (
        ("missing_tolerance", missing_tolerance),
        ("range_tolerance", range_tolerance),
    ):
        number = _number(value, name)
        if number is None or not 0.0 <= number <= 1.0:
            raise InvalidInputError(f"{name} must be a share from 0 to 1, got {value!r}")
        tolerances.append(number)
    by_name = _columns_by_name(current)
    expected = set(expectations.names)
    extra = tuple(n for n in by_name if n not in expected and not n.startswith(RESERVED))
    n_rows = len(current)
    if n_rows == 0:
        columns = tuple(_empty(e, "no_rows", ()) for e in expectations.columns)
        return QualityResult(columns=columns, n_rows=0, missing_columns=(), extra_columns=extra)
    results = []
    missing_columns = []
    for exp in expectations.columns:
        if exp.name not in by_name:
            missing_columns.append(exp.name)
            results.append(_empty(exp, "missing_column", ("column is missing from the data",)))
            continue
        series = _column(current, by_name[exp.name])
        results.append(_check_column(series, exp, tolerances[0], tolerances[1]))
    return QualityResult(
        columns=tuple(results),
        n_rows=n_rows,
        missing_columns=tuple(missing_columns),
        extra_columns=extra,
    )


def _empty(exp: ColumnExpectation, status: str, issues: tuple[str, ...]) -> ColumnQuality:
    nan = float("nan")
    return ColumnQuality(
        column=exp.name,
        n=0,
        missing_rate=nan,
        reference_missing_rate=exp.missing_rate,
        out_of_range_share=nan,
        unseen_category_share=nan,
        unseen_categories=(),
        type_error_share=nan,
        status=status,
        issues=issues,
    )


@dataclass
class _Findings:
    out_of_range: int = 0
    type_errors: int = 0
    type_examples: tuple[str, ...] = ()
    unseen: int = 0
    unseen_values: tuple[str, ...] = ()
    unseen_distinct: int = 0


def _check_column(
    series: pd.Series, exp: ColumnExpectation, tolerance: float, range_tolerance: float
) -> ColumnQuality:
    n = len(series)
    missing = series.isna().to_numpy()
    n_missing = int(missing.sum())
    present = n - n_missing
    rate = n_missing / n
    issues: list[str] = []
    if rate > exp.missing_rate + tolerance:
        issues.append(f"missing rate {_percent(rate)} (reference {_percent(exp.missing_rate)})")
    if present == 0:
        return dataclasses.replace(
            _empty(exp, "all_missing", tuple(issues)),
            n=n,
            missing_rate=rate,
            out_of_range_share=0.0,
            unseen_category_share=0.0,
            type_error_share=0.0,
        )
    values = series[~missing]
    if exp.kind == "numeric":
        found = _check_numeric(values, exp)
    elif exp.kind == "boolean":
        found = _check_boolean(values)
    elif exp.kind == "datetime":
        found = _check_datetime(values)
    else:
        found = _check_categorical(values, exp)
    if found.type_errors:
        examples = ", ".join(repr(v) for v in found.type_examples)
        issues.append(
            f"{_percent(_share(found.type_errors, present))} of values are not {exp.kind} "
            f"(e.g. {examples})"
        )
    if found.out_of_range and _share(found.out_of_range, present) > range_tolerance:
        lo = "-inf" if exp.minimum is None else _bound(exp.minimum)
        hi = "inf" if exp.maximum is None else _bound(exp.maximum)
        issues.append(
            f"{_percent(_share(found.out_of_range, present))} of values outside the reference "
            f"range [{lo}, {hi}]"
        )
    if found.unseen:
        listed = ", ".join(repr(v) for v in found.unseen_values[:3])
        more = f" and {found.unseen_distinct - 3} more" if found.unseen_distinct > 3 else ""
        issues.append(
            f"{_percent(_share(found.unseen, present))} of values are unseen categories "
            f"({listed}{more})"
        )
    return ColumnQuality(
        column=exp.name,
        n=n,
        missing_rate=rate,
        reference_missing_rate=exp.missing_rate,
        out_of_range_share=_share(found.out_of_range, present),
        unseen_category_share=_share(found.unseen, present),
        unseen_categories=found.unseen_values,
        type_error_share=_share(found.type_errors, present),
        status="ok",
        issues=tuple(issues),
    )


def _examples(values: pd.Series, limit: int = 3) -> tuple[str, ...]:
    distinct = pd.unique(values.astype(object).to_numpy())[:limit]
    return tuple(str(v) for v in distinct)


def _check_numeric(values: pd.Series, exp: ColumnExpectation) -> _Findings:
    found = _Findings()
    numbers = _numbers(values)
    unreadable = np.isnan(numbers)
    if not (pdt.is_float_dtype(values.dtype) or pdt.is_integer_dtype(values.dtype)):
        found.type_errors = int(unreadable.sum())
        if found.type_errors:
            found.type_examples = _examples(values[unreadable])
    readable = numbers[~unreadable]
    out = np.zeros(readable.shape, dtype=bool)
    if exp.minimum is not None:
        out |= readable < exp.minimum
    if exp.maximum is not None:
        out |= readable > exp.maximum
    found.out_of_range = int(out.sum())
    return found


def _check_boolean(values: pd.Series) -> _Findings:
    found = _Findings()
    if pdt.is_bool_dtype(values.dtype):
        return found
    counts = _counts(values)
    text = pd.Index(_text(counts.index)).str.strip().str.lower()
    bad = ~np.asarray(text.isin(_BOOLEAN_TEXT), dtype=bool)
    found.type_errors = int(counts.to_numpy()[bad].sum())
    found.type_examples = tuple(_text(counts.index[bad][:3]))
    return found


def _check_datetime(values: pd.Series) -> _Findings:
    found = _Findings()
    if pdt.is_datetime64_any_dtype(values.dtype):
        return found
    if pdt.is_numeric_dtype(values.dtype) or pdt.is_bool_dtype(values.dtype):
        bad = np.ones(len(values), dtype=bool)  # numbers are not dates
    else:  # as text, so a number is not read as nanoseconds since 1970
        parsed = pd.to_datetime(values.astype(str), errors="coerce", utc=True, format="ISO8601")
        bad = parsed.isna().to_numpy()
    found.type_errors = int(bad.sum())
    if found.type_errors:
        found.type_examples = _examples(values[bad])
    return found


def _check_categorical(values: pd.Series, exp: ColumnExpectation) -> _Findings:
    found = _Findings()
    if exp.categories is None:
        return found
    counts = _counts(values)
    text = np.asarray(_text(counts.index), dtype=object)
    unseen = ~np.isin(text, np.asarray(exp.categories, dtype=object))
    if not unseen.any():
        return found
    unseen_counts = pd.Series(counts.to_numpy()[unseen], index=text[unseen])
    unseen_counts = unseen_counts.groupby(level=0, sort=False).sum().sort_values(
        ascending=False, kind="stable"
    )  # fmt: skip
    found.unseen = int(unseen_counts.sum())
    found.unseen_distinct = len(unseen_counts)
    found.unseen_values = tuple(str(v) for v in unseen_counts.index[:MAX_LISTED])
    return found
