"""Checks: small composable objects that find the bad rows of a DataFrame, vectorised.

A check is a small frozen object (``RangeCheck(column="age", min=0, max=120)``) whose
``evaluate(df)`` finds the bad rows with numpy/pandas array operations, never a Python
loop over rows. :mod:`shipyard.data.validation` gathers checks into
:class:`~shipyard.data.validation.Expectations`, runs them (sharing each column's
missing-value mask and numeric view across its checks) and reports.

Built-in column checks: :class:`DtypeCheck`, :class:`NotNullCheck`,
:class:`MissingRateCheck`, :class:`RangeCheck`, :class:`AllowedValuesCheck`,
:class:`UniqueCheck`, :class:`RegexCheck`, :class:`FreshnessCheck`; table checks:
:class:`RowCountCheck`; and :class:`CustomCheck` for a Python function. Anything
with ``name``, ``column`` and ``evaluate(df)`` is a :class:`Check` too.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [31, 45, -2, 130]})
    >>> outcome = RangeCheck(column="age", min=0, max=120).evaluate(df)
    >>> outcome.passed, outcome.bad_count, outcome.bad_rows.nonzero()[0].tolist()
    (False, 2, [2, 3])
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import numbers
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.data.schema import Bound, FlowDict, FlowList, LogicalType, check_frame

logger = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------------------
# the check protocol and what a check returns


@dataclass(frozen=True, eq=False)
class CheckOutcome:
    """What one check found.

    Args:
        passed: Whether the check holds.
        bad_rows: Boolean mask (one entry per row, by position) of the offending rows,
            or ``None`` for table-level findings (row count, freshness).
        bad_count: Rows counted against the check; defaults to the mask's count.
        detail: What is wrong: a phrase about the bad rows ("are outside [0, 120]") when
            ``bad_rows`` is given, else a sentence ("the table has 3 rows, fewer than 10").
    """

    passed: bool
    bad_rows: Mask | None = None
    bad_count: int | None = None
    detail: str = ""

    @classmethod
    def from_mask(cls, bad: Mask, detail: str) -> CheckOutcome:
        """Passed when no row is flagged in ``bad``."""
        count = int(np.count_nonzero(bad))
        return cls(
            passed=count == 0, bad_rows=bad if count else None, bad_count=count, detail=detail
        )


CheckValue: TypeAlias = "CheckOutcome | Mask | pd.Series | bool | int"
"""What ``Check.evaluate`` may return: an outcome, a mask or Series of *bad* rows, a
bool (passed or not) or a count of bad rows (0 passes)."""


@runtime_checkable
class Check(Protocol):
    """Anything with a ``name``, a ``column`` (or ``None`` for the whole table) and
    a vectorised ``evaluate(df)``.

    ``evaluate`` returns a :class:`CheckOutcome`, a boolean mask (numpy array or Series)
    of the *bad* rows, a bool (passed or not), or an int count of bad rows.
    """

    @property
    def name(self) -> str:
        """Short name shown in reports (``range``, ``unique``, a custom check's name)."""
        ...

    @property
    def column(self) -> str | None:
        """The column checked, or ``None`` for a table-level check."""
        ...

    def evaluate(self, df: pd.DataFrame) -> CheckValue:
        """Find the bad rows of ``df``."""
        ...


class ColumnData:
    """One column and the arrays its checks share, each computed at most once.

    :func:`~shipyard.data.validation.validate` makes one per column and hands it to
    every :class:`ColumnCheck` on that column.
    """

    def __init__(self, series: pd.Series) -> None:
        self.series = series
        self.n = len(series)
        self._isna: Mask | None = None
        self._null_count: int | None = None
        self._numeric: npt.NDArray[Any] | None = None
        self._datetimes: npt.NDArray[np.datetime64] | None = None

    @property
    def isna(self) -> Mask:
        if self._isna is None:
            self._isna = np.asarray(self.series.isna().to_numpy(), dtype=bool)
        return self._isna

    @property
    def null_count(self) -> int:
        if self._null_count is None:
            self._null_count = int(np.count_nonzero(self.isna))
        return self._null_count

    @property
    def notna(self) -> Mask:
        return ~self.isna

    def numeric(self) -> npt.NDArray[Any]:
        """Numbers as a numpy array (NaN where missing or not a number)."""
        if self._numeric is None:
            s = self.series
            dtype = s.dtype
            if isinstance(dtype, pd.CategoricalDtype):
                cats = pd.to_numeric(pd.Series(dtype.categories), errors="coerce").to_numpy(float)
                codes = s.cat.codes.to_numpy()
                self._numeric = np.append(cats, np.nan)[codes]
            elif isinstance(dtype, np.dtype) and dtype.kind in "iuf":
                self._numeric = s.to_numpy()
            elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
                self._numeric = s.to_numpy(dtype="float64", na_value=np.nan)
            else:
                self._numeric = pd.to_numeric(s, errors="coerce").to_numpy(
                    dtype="float64", na_value=np.nan
                )
        return self._numeric

    def datetimes(self) -> npt.NDArray[np.datetime64]:
        """Times as naive UTC ``datetime64`` (NaT where missing or not a time)."""
        if self._datetimes is None:
            s = self.series
            if not pd.api.types.is_datetime64_any_dtype(s.dtype):
                s = pd.to_datetime(s, errors="coerce", utc=True)
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            self._datetimes = s.to_numpy()
        return self._datetimes

    @property
    def tz(self) -> Any:
        return getattr(self.series.dtype, "tz", None)


def _utc_naive(value: Bound | dt.datetime, tz: Any) -> Any:
    """A bound as naive UTC; a naive bound is read in the column's time zone (if any)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None and tz is not None:
        ts = ts.tz_localize(tz)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_datetime64()


# --------------------------------------------------------------------------------------
# built-in checks


@dataclass(frozen=True, kw_only=True)
class ColumnCheck:
    """Base of the built-in column checks.

    A subclass sets ``kind`` and implements ``run(data)`` on a :class:`ColumnData`
    (whose cached arrays it shares with the column's other checks); ``_spec`` gives
    the value written after ``kind:`` in YAML.
    """

    kind: ClassVar[str] = ""
    column: str

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise InvalidInputError(
                f"{type(self).__name__}: column must be a non-empty string, got {self.column!r}"
            )

    @property
    def name(self) -> str:
        """The check's kind, as written in YAML and reports."""
        return self.kind

    def evaluate(self, df: pd.DataFrame) -> CheckOutcome:
        """Run the check on ``df``.

        Raises:
            NotFoundError: If ``df`` has no such column (:func:`validate` reports it instead).
        """
        check_frame(df)
        return self.run(ColumnData(_lookup(df, self.column)))

    def run(self, data: ColumnData) -> CheckOutcome:
        """Find the bad rows of one column."""
        raise NotImplementedError

    def _spec(self) -> Any:
        """The value written after ``kind:`` in YAML (``None``: just the kind)."""
        return None


def _lookup(df: pd.DataFrame, column: str) -> pd.Series:
    for i, c in enumerate(df.columns):
        if str(c) == column:
            return df.iloc[:, i]
    raise NotFoundError(
        f"column {column!r} is not in the DataFrame; it has: "
        + (", ".join(repr(str(c)) for c in df.columns[:50]) or "no columns"),
        details={"column": column},
    )


_ACCEPTS: dict[LogicalType, frozenset[str]] = {
    LogicalType.INTEGER: frozenset({"int"}),
    LogicalType.FLOAT: frozenset({"int", "float"}),
    LogicalType.BOOLEAN: frozenset({"bool"}),
    LogicalType.CATEGORICAL: frozenset({"string", "int", "bool", "category"}),
    LogicalType.DATETIME: frozenset({"datetime"}),
    LogicalType.TEXT: frozenset({"string", "category"}),
    LogicalType.IDENTIFIER: frozenset({"string", "int", "category"}),
}
_INFERRED = {
    "string": "string",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "boolean": "bool",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


_ELEMENT_OK: dict[LogicalType, Callable[[object], bool]] = {
    LogicalType.INTEGER: lambda v: _is_int(v) or (isinstance(v, float) and v.is_integer()),
    LogicalType.FLOAT: lambda v: (
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
    ),
    LogicalType.BOOLEAN: lambda v: isinstance(v, (bool, np.bool_)),
    LogicalType.CATEGORICAL: lambda v: isinstance(v, (str, bool, np.bool_)) or _is_int(v),
    LogicalType.DATETIME: lambda v: isinstance(v, (dt.date, np.datetime64)),
    LogicalType.TEXT: lambda v: isinstance(v, str),
    LogicalType.IDENTIFIER: lambda v: isinstance(v, str) or _is_int(v),
}


def _storage(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return "object"
    return "other"


@dataclass(frozen=True, kw_only=True)
class DtypeCheck(ColumnCheck):
    """Values are of the column's logical type.

    Accepted storage per type: ``integer`` ints (and floats holding whole numbers, as
    pandas stores ints with missing values); ``float`` ints or floats; ``boolean``
    bools; ``categorical`` strings, ints, bools or a pandas category; ``datetime``
    datetime64 (any unit, any time zone); ``text`` strings; ``identifier`` strings
    or ints. An object column is judged by its values: only when it does not pass
    as a whole are its values looked at one by one to find the bad rows.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"n": [1.0, 2.5, None]})
        >>> DtypeCheck(column="n", logical_type="integer").evaluate(df).bad_count
        1
    """

    kind: ClassVar[str] = "dtype"
    logical_type: LogicalType

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            object.__setattr__(self, "logical_type", LogicalType(str(self.logical_type)))
        except ValueError:
            allowed = ", ".join(t.value for t in LogicalType)
            raise InvalidInputError(
                f"dtype check on {self.column!r}: unknown type {self.logical_type!r}; "
                f"use one of: {allowed}"
            ) from None

    def _spec(self) -> Any:
        return self.logical_type.value

    def run(self, data: ColumnData) -> CheckOutcome:
        want = self.logical_type
        s = data.series
        storage = _storage(s.dtype)
        if storage in _ACCEPTS[want]:
            return CheckOutcome(passed=True, bad_count=0)
        if storage == "category":
            cats = pd.Series(s.dtype.categories)
            inner = DtypeCheck(column=self.column, logical_type=want).run(ColumnData(cats))
            if inner.passed:
                return inner
            cat_bad = np.zeros(len(cats), dtype=bool) if inner.bad_rows is None else inner.bad_rows
            bad = np.append(cat_bad, False)[s.cat.codes.to_numpy()]
            return CheckOutcome.from_mask(bad, f"are not {want} values")
        if storage == "float" and want in (LogicalType.INTEGER, LogicalType.IDENTIFIER):
            v = data.numeric()
            with np.errstate(invalid="ignore"):
                bad = data.notna & ~(np.isfinite(v) & (v == np.floor(v)))
            return CheckOutcome.from_mask(bad, f"are not whole numbers (column dtype {s.dtype})")
        if storage == "object":
            inferred = pd.api.types.infer_dtype(s, skipna=True)
            if inferred == "empty" or _INFERRED.get(inferred) in _ACCEPTS[want]:
                return CheckOutcome(passed=True, bad_count=0)
            ok = _ELEMENT_OK[want]
            present = data.notna
            bad = np.zeros(data.n, dtype=bool)
            values = s.to_numpy()[present]
            bad[present] = ~np.fromiter((ok(v) for v in values), dtype=bool, count=len(values))
            return CheckOutcome.from_mask(
                bad, f"are not {want} values (object column of {inferred} values)"
            )
        return CheckOutcome.from_mask(
            data.notna.copy(), f"are not {want} values (column dtype is {s.dtype})"
        )


@dataclass(frozen=True, kw_only=True)
class NotNullCheck(ColumnCheck):
    """No value is missing (``None``, ``NaN``, ``NaT``, ``pd.NA``).

    Example:
        >>> import pandas as pd
        >>> NotNullCheck(column="x").evaluate(pd.DataFrame({"x": [1, None]})).bad_count
        1
    """

    kind: ClassVar[str] = "not_null"

    def run(self, data: ColumnData) -> CheckOutcome:
        if data.null_count == 0:
            return CheckOutcome(passed=True, bad_count=0)
        return CheckOutcome.from_mask(data.isna, "are missing")


@dataclass(frozen=True, kw_only=True)
class MissingRateCheck(ColumnCheck):
    """At most ``max_rate`` (a fraction in [0, 1]) of the values are missing.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"x": [1, None, None, 4]})
        >>> MissingRateCheck(column="x", max_rate=0.25).evaluate(df).passed
        False
    """

    kind: ClassVar[str] = "missing_rate"
    max_rate: float

    def __post_init__(self) -> None:
        super().__post_init__()
        rate = self.max_rate
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
            raise InvalidInputError(
                f"missing_rate check on {self.column!r}: max_rate must be a fraction between "
                f"0 and 1 (0.05 for 5%), got {rate!r}"
            )
        object.__setattr__(self, "max_rate", float(rate))

    def _spec(self) -> Any:
        return self.max_rate

    def run(self, data: ColumnData) -> CheckOutcome:
        rate = data.null_count / data.n if data.n else 0.0
        if rate <= self.max_rate:
            return CheckOutcome(passed=True, bad_count=0)
        return CheckOutcome(
            passed=False,
            bad_rows=data.isna,
            bad_count=data.null_count,
            detail=f"are missing: a rate of {rate:.2%}, above the maximum {self.max_rate:.2%}",
        )


def _bound(value: object, *, what: str, check: str) -> Bound | None:
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        try:
            pd.Timestamp(value)
        except ValueError:
            raise InvalidInputError(
                f"{check}: {what} {value!r} is neither a number nor an ISO date"
            ) from None
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise InvalidInputError(
        f"{check}: {what} must be a number or an ISO date, got {type(value).__name__} {value!r}"
    )


@dataclass(frozen=True, kw_only=True)
class RangeCheck(ColumnCheck):
    """Values lie in ``[min, max]`` (inclusive; ``None`` leaves a side open).

    Bounds are numbers, or ISO 8601 strings / datetimes for datetime columns (a naive
    bound is read in the column's time zone). Missing values and values that are not
    numbers (or times) are not counted here: ``NotNullCheck`` and ``DtypeCheck`` report
    those.

    Example:
        >>> import pandas as pd
        >>> RangeCheck(column="x", min=0).evaluate(pd.DataFrame({"x": [-1, 0, 5]})).bad_count
        1
    """

    kind: ClassVar[str] = "range"
    min: Bound | dt.datetime | None = None
    max: Bound | dt.datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"range check on {self.column!r}"
        lo = _bound(self.min, what="min", check=where)
        hi = _bound(self.max, what="max", check=where)
        if lo is None and hi is None:
            raise InvalidInputError(f"{where}: give min, max or both")
        if lo is not None and hi is not None:
            if isinstance(lo, str) != isinstance(hi, str):
                raise InvalidInputError(
                    f"{where}: min {lo!r} and max {hi!r} must both be numbers or both dates"
                )
            key = pd.Timestamp if isinstance(lo, str) else float
            if key(lo) > key(hi):
                raise InvalidInputError(f"{where}: min {lo!r} is greater than max {hi!r}")
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)

    @property
    def _temporal(self) -> bool:
        return isinstance(self.min, str) or isinstance(self.max, str)

    def _spec(self) -> Any:
        return FlowDict({k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None})

    def run(self, data: ColumnData) -> CheckOutcome:
        values: npt.NDArray[Any]
        lo: Any
        hi: Any
        if self._temporal:
            values = data.datetimes()
            lo = None if self.min is None else _utc_naive(self.min, data.tz)
            hi = None if self.max is None else _utc_naive(self.max, data.tz)
        else:
            values = data.numeric()
            lo, hi = self.min, self.max
        bad: Mask
        if lo is not None and hi is not None:
            bad = values < lo
            bad |= values > hi
        elif lo is not None:
            bad = values < lo
        else:
            bad = values > hi
        left = "(-inf" if self.min is None else f"[{self.min}"
        right = "inf)" if self.max is None else f"{self.max}]"
        return CheckOutcome.from_mask(bad, f"are outside {left}, {right}")


@dataclass(frozen=True, kw_only=True)
class AllowedValuesCheck(ColumnCheck):
    """Every present value is one of ``values``.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"c": ["a", "b", "x", None]})
        >>> AllowedValuesCheck(column="c", values=["a", "b"]).evaluate(df).bad_count
        1
    """

    kind: ClassVar[str] = "allowed_values"
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        values = self.values
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise InvalidInputError(
                f"allowed_values check on {self.column!r}: values must be a list, got {values!r}"
            )
        object.__setattr__(self, "values", tuple(values))

    def _spec(self) -> Any:
        return FlowList(self.values)

    def run(self, data: ColumnData) -> CheckOutcome:
        s = data.series
        allowed = list(self.values)
        if isinstance(s.dtype, pd.CategoricalDtype):
            ok = np.append(s.dtype.categories.isin(allowed), True)
            bad = ~ok[s.cat.codes.to_numpy()]
        else:
            bad = ~np.asarray(s.isin(allowed).to_numpy(), dtype=bool)
            if data.null_count:
                bad = bad & data.notna
        shown = ", ".join(map(repr, allowed[:10])) + (", ..." if len(allowed) > 10 else "")
        return CheckOutcome.from_mask(bad, f"are not among the allowed values ({shown})")


@dataclass(frozen=True, kw_only=True)
class UniqueCheck(ColumnCheck):
    """No present value appears on more than one row (every row of a repeat is bad).

    Dense integer keys (values spanning at most a few times the row count, as ids
    from a sequence do) are counted with ``np.bincount``; anything else goes through
    pandas' hash-based ``duplicated``.

    Example:
        >>> import pandas as pd
        >>> UniqueCheck(column="id").evaluate(pd.DataFrame({"id": [1, 2, 2, 3]})).bad_count
        2
    """

    kind: ClassVar[str] = "unique"

    def run(self, data: ColumnData) -> CheckOutcome:
        detail = "share their value with another row"
        dtype = data.series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iu" and data.n:
            values = data.series.to_numpy()
            lo, hi = int(values.min()), int(values.max())
            if hi - lo <= 4 * data.n + 1024:
                offsets = (values - lo).astype(np.intp, copy=False)
                counts = np.bincount(offsets, minlength=hi - lo + 1)
                if counts.max() <= 1:
                    return CheckOutcome(passed=True, bad_count=0)
                return CheckOutcome.from_mask(counts[offsets] > 1, detail)
        bad = np.asarray(data.series.duplicated(keep=False).to_numpy(), dtype=bool)
        if data.null_count:
            bad = bad & data.notna
        return CheckOutcome.from_mask(bad, detail)


@dataclass(frozen=True, kw_only=True)
class RegexCheck(ColumnCheck):
    """Every present value matches ``pattern`` in full (non-strings are matched as ``str(v)``).

    On pyarrow-backed strings pandas runs the pattern with RE2 where it can and falls
    back to Python's ``re`` for the rest (lookarounds, back-references).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"zip": ["75001", "7500", None]})
        >>> RegexCheck(column="zip", pattern=r"\\d{5}").evaluate(df).bad_count
        1
    """

    kind: ClassVar[str] = "regex"
    pattern: str

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            re.compile(self.pattern)
        except (re.error, TypeError) as exc:
            raise InvalidInputError(
                f"regex check on {self.column!r}: {self.pattern!r} is not a valid regular "
                f"expression: {exc}"
            ) from None

    def _spec(self) -> Any:
        return self.pattern

    def run(self, data: ColumnData) -> CheckOutcome:
        s = data.series
        storage = _storage(s.dtype)
        if storage not in ("string", "category"):
            s = s.astype(str) if storage == "object" else s.astype("str")
        matched = s.str.fullmatch(self.pattern).to_numpy(dtype=bool, na_value=False)
        bad = ~np.asarray(matched, dtype=bool)
        if data.null_count:
            bad = bad & data.notna
        return CheckOutcome.from_mask(bad, f"do not match {self.pattern!r}")


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h|d|w)\s*$", re.IGNORECASE)
_AGE_UNITS = {"s": "seconds", "sec": "seconds", "min": "minutes", "h": "hours", "d": "days"}


def _max_age(value: object, *, column: str) -> dt.timedelta:
    """``'36h'``, ``'1d'``, ``'2w'``, ``'90min'``, any ``pd.Timedelta`` input, or a timedelta."""
    age: Any = pd.NaT
    found = _AGE.match(value) if isinstance(value, str) else None
    if found:
        unit = found.group(2).lower()
        amount = float(found.group(1)) * (7 if unit == "w" else 1)
        age = pd.Timedelta(**{_AGE_UNITS.get(unit, "days"): amount})
    elif value is not None:
        with contextlib.suppress(ValueError, TypeError):
            age = pd.Timedelta(value)  # type: ignore[arg-type]
    if age is pd.NaT or age <= pd.Timedelta(0):
        raise InvalidInputError(
            f"freshness check on {column!r}: max_age must be a positive duration such as "
            f"'36h', '1d' or datetime.timedelta(days=1), got {value!r}"
        )
    return dt.timedelta(microseconds=age // pd.Timedelta(microseconds=1))


def _format_age(age: dt.timedelta) -> str:
    seconds = age.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, kw_only=True)
class FreshnessCheck(ColumnCheck):
    """The newest time in ``column`` is at most ``max_age`` old.

    Naive times are taken as UTC. ``now`` pins the clock (for reproducible runs);
    by default it is the time of the check.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01", "2024-01-03"])})
        >>> check = FreshnessCheck(column="ts", max_age="1d", now=pd.Timestamp("2024-01-05"))
        >>> check.evaluate(df).passed
        False
    """

    kind: ClassVar[str] = "freshness"
    max_age: dt.timedelta | str
    now: dt.datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "max_age", _max_age(self.max_age, column=self.column))

    def _spec(self) -> Any:
        return _format_age(_max_age(self.max_age, column=self.column))

    def run(self, data: ColumnData) -> CheckOutcome:
        times = data.datetimes()
        present = times[~np.isnat(times)]
        if len(present) == 0:
            return CheckOutcome(
                passed=False, bad_count=0, detail=f"column {self.column!r} has no times to judge"
            )
        newest = pd.Timestamp(present.max())
        now = pd.Timestamp(self.now) if self.now is not None else pd.Timestamp.now(tz="UTC")
        if now.tzinfo is not None:
            now = now.tz_convert("UTC").tz_localize(None)
        age = now - newest
        limit = pd.Timedelta(self.max_age)
        if age <= limit:
            return CheckOutcome(passed=True, bad_count=0)
        return CheckOutcome(
            passed=False,
            bad_count=0,
            detail=(
                f"the newest value of {self.column!r}, {newest.isoformat()} (UTC), is {age} "
                f"old, more than {limit}"
            ),
        )


@dataclass(frozen=True, kw_only=True)
class RowCountCheck:
    """The table has between ``min`` and ``max`` rows (inclusive; ``None`` is open).

    Example:
        >>> import pandas as pd
        >>> RowCountCheck(min=3).evaluate(pd.DataFrame({"x": [1, 2]})).passed
        False
    """

    kind: ClassVar[str] = "row_count"
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        for what in ("min", "max"):
            v = getattr(self, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise InvalidInputError(f"row_count check: {what} must be an int >= 0, got {v!r}")
        if self.min is None and self.max is None:
            raise InvalidInputError("row_count check: give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidInputError(
                f"row_count check: min {self.min} is greater than max {self.max}"
            )

    @property
    def name(self) -> str:
        """``row_count``."""
        return self.kind

    @property
    def column(self) -> None:
        """Always ``None``: a table-level check."""
        return None

    def _spec(self) -> Any:
        return FlowDict({k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None})

    def evaluate(self, df: pd.DataFrame) -> CheckOutcome:
        """Compare ``len(df)`` with the bounds."""
        n = len(df)
        if self.min is not None and n < self.min:
            return CheckOutcome(
                passed=False, detail=f"the table has {n:,} rows, fewer than {self.min:,}"
            )
        if self.max is not None and n > self.max:
            return CheckOutcome(
                passed=False, detail=f"the table has {n:,} rows, more than {self.max:,}"
            )
        return CheckOutcome(passed=True, bad_count=0)


_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True, kw_only=True)
class CustomCheck:
    """A check written in Python: ``function(df)`` returns a boolean Series (or array) of
    the *good* rows, or one bool for the whole table.

    ``function`` is a callable, or a ``"package.module:function"`` path that is imported
    only when the check runs. Paths are how custom checks are saved in YAML; **loading
    such a file and validating with it imports and runs that code**, so only validate with
    expectation files you trust. An exception raised by the function fails the check
    (its message is reported); a path that cannot be imported raises.

    Args:
        name: Short name shown in reports.
        function: The callable or its dotted path.
        column: The column the check is about (its values are shown as examples), or
            ``None`` for a table-level check.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"lo": [1, 5], "hi": [2, 3]})
        >>> check = CustomCheck(name="lo_le_hi", function=lambda d: d["lo"] <= d["hi"])
        >>> check.evaluate(df).bad_count
        1
    """

    kind: ClassVar[str] = "custom"
    name: str
    function: Callable[[pd.DataFrame], Any] | str
    column: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(
                f"custom check: name must be a non-empty string, got {self.name!r}"
            )
        fn = self.function
        if isinstance(fn, str):
            if not _DOTTED.match(fn):
                raise InvalidInputError(
                    f"custom check {self.name!r}: function {fn!r} is not a "
                    "'package.module:function' path"
                )
        elif not callable(fn):
            raise InvalidInputError(
                f"custom check {self.name!r}: function must be a callable or a "
                f"'package.module:function' path, got {type(fn).__name__}"
            )

    @property
    def path(self) -> str:
        """The ``module:qualname`` path of the function (how YAML names it).

        Raises:
            InvalidInputError: If the function is a lambda or a nested function.
        """
        fn = self.function
        if isinstance(fn, str):
            return fn
        module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        if not module or "<" in qualname or module == "__main__":
            raise InvalidInputError(
                f"custom check {self.name!r}: its function {qualname or fn!r} cannot be saved "
                "as a path; define it at module level in an importable module"
            )
        return f"{module}:{qualname}"

    def resolve(self) -> Callable[[pd.DataFrame], Any]:
        """The callable, importing it from its path if needed.

        Raises:
            InvalidInputError: If the module cannot be imported or has no such function.
        """
        fn = self.function
        if not isinstance(fn, str):
            return fn
        module_name, _, qualname = fn.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise InvalidInputError(
                f"custom check {self.name!r}: cannot import module {module_name!r} ({exc}); "
                "install it or put it on PYTHONPATH"
            ) from None
        for part in qualname.split("."):
            if not hasattr(target, part):
                raise InvalidInputError(
                    f"custom check {self.name!r}: {module_name!r} has no {qualname!r}"
                )
            target = getattr(target, part)
        if not callable(target):
            raise InvalidInputError(f"custom check {self.name!r}: {fn!r} is not callable")
        return target  # type: ignore[no-any-return]

    def _spec(self) -> Any:
        spec = {"name": self.name, "function": self.path}
        return FlowDict(spec)

    def evaluate(self, df: pd.DataFrame) -> CheckOutcome:
        """Run the function on ``df``; turn what it returns into an outcome."""
        fn = self.resolve()
        try:
            good = fn(df)
        except Exception as exc:  # user code: a crash is this check's finding
            logger.info("custom check %s raised %s", self.name, type(exc).__name__)
            return CheckOutcome(
                passed=False, detail=f"the function raised {type(exc).__name__}: {exc}"
            )
        if isinstance(good, (bool, np.bool_)):
            return CheckOutcome(
                passed=bool(good), bad_count=0, detail="the function returned False"
            )
        if isinstance(good, (pd.Series, np.ndarray)) and len(good) == len(df):
            arr = good.to_numpy(dtype=bool, na_value=False) if isinstance(good, pd.Series) else good
            if np.asarray(arr).dtype == bool:
                return CheckOutcome.from_mask(~np.asarray(arr, dtype=bool), "fail the check")
        return CheckOutcome(
            passed=False,
            detail=(
                f"the function returned {type(good).__name__}; a custom check must return a "
                f"boolean Series with one entry per row ({len(df):,}) marking the good rows, "
                "or one bool"
            ),
        )
