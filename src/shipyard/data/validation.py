"""Validation: run expectations (a list of checks) over a DataFrame and report the failures.

:class:`Expectations` holds the checks of a dataset; it comes from an inferred schema
(:meth:`Expectations.from_schema`) or from the YAML file a person edits
(:meth:`Expectations.from_yaml`). :func:`validate` runs every check with vectorised
numpy/pandas work, sharing per column the lookup, the missing-value mask and the
numeric view, and returns a :class:`ValidationReport`: for each check the column, the
check, how many rows are bad and up to five example rows (index and value).

A column the data lacks is one failed ``column_exists`` result, not an exception.
The check classes live in :mod:`shipyard.data.checks` and are re-exported here.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [31, 45, -2, 130], "city": ["a", "b", "a", "z"]})
    >>> report = validate(df, Expectations([
    ...     RangeCheck(column="age", min=0, max=120),
    ...     AllowedValuesCheck(column="city", values=["a", "b"]),
    ... ]))
    >>> report.passed
    False
    >>> [(r.check, r.column, r.bad_count, r.example_indices) for r in report.failures]
    [('range', 'age', 2, (2, 3)), ('allowed_values', 'city', 1, (3,))]
    >>> print(report.summary())  # doctest: +ELLIPSIS
    validation FAILED: 2 of 2 checks failed (4 rows x 2 columns, ... s)
      range on 'age': 2 of 4 rows (50.00%) are outside [0, 120]; e.g. rows 2, 3 = -2, 130
      allowed_values on 'city': 1 of 4 rows (25.00%) are not among ...; e.g. row 3 = 'z'
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError, SchemaMismatchError
from shipyard.data.checks import (
    AllowedValuesCheck,
    Check,
    CheckOutcome,
    ColumnCheck,
    ColumnData,
    CustomCheck,
    DtypeCheck,
    FreshnessCheck,
    MissingRateCheck,
    NotNullCheck,
    RangeCheck,
    RegexCheck,
    RowCountCheck,
    UniqueCheck,
)
from shipyard.data.schema import LogicalType, Schema, check_frame, dump_yaml, load_yaml, plain_value

__all__ = [
    "AllowedValuesCheck",
    "Check",
    "CheckOutcome",
    "CheckResult",
    "ColumnCheck",
    "CustomCheck",
    "DtypeCheck",
    "Expectations",
    "FreshnessCheck",
    "MissingRateCheck",
    "NotNullCheck",
    "RangeCheck",
    "RegexCheck",
    "RowCountCheck",
    "UniqueCheck",
    "ValidationReport",
    "validate",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_EXAMPLES = 5
_RANGED = (LogicalType.INTEGER, LogicalType.FLOAT)

_HEADER = """\
# shipyard expectations (format 1): the checks `shipyard data validate` runs. Edit freely.
# Under `columns`, each column lists its checks:
#   - dtype: integer      integer | float | boolean | categorical | datetime | text | identifier
#   - not_null            no missing values
#   - missing_rate: 0.05  at most 5% missing
#   - range: {min: 0, max: 120}       inclusive; leave a side out to leave it open;
#                                     ISO dates ('2024-01-31') for datetime columns
#   - allowed_values: [a, b, c]
#   - unique              no value appears on two rows
#   - regex: '[A-Z]{2}[0-9]+'         every value matches in full
#   - freshness: 1d       the newest value is at most this old (s, min, h, d)
#   - custom: {name: my_check, function: 'my_package.checks:my_check'}
# Under `table`: row_count: {min: 1, max: 1000000}, and custom checks on whole rows.
# A custom function gets the DataFrame and returns a boolean Series of the good rows (or
# one bool). WARNING: validating imports and runs the Python function a custom check
# names, so validate only with expectation files you trust.
"""


@dataclass(frozen=True)
class Expectations:
    """The checks a dataset must pass, in order.

    Args:
        checks: Any iterable of :class:`~shipyard.data.checks.Check` objects.

    Raises:
        InvalidInputError: If an item is not a check.

    Example:
        >>> e = Expectations([NotNullCheck(column="id"), UniqueCheck(column="id")])
        >>> len(e), Expectations.from_yaml(e.to_yaml()) == e
        (2, True)
    """

    checks: tuple[Check, ...] = ()

    def __post_init__(self) -> None:
        checks = tuple(self.checks)
        for c in checks:
            if not isinstance(c, Check):
                raise InvalidInputError(
                    f"expected checks (objects with name, column and evaluate(df)), got "
                    f"{type(c).__name__} {c!r:.80}"
                )
        object.__setattr__(self, "checks", checks)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def with_checks(self, *checks: Check) -> Expectations:
        """A copy with ``checks`` appended.

        Example:
            >>> len(Expectations().with_checks(RowCountCheck(min=1)))
            1
        """
        return Expectations((*self.checks, *checks))

    def for_column(self, column: str) -> tuple[Check, ...]:
        """The checks on ``column``."""
        return tuple(c for c in self.checks if c.column == column)

    @classmethod
    def from_schema(cls, schema: Schema) -> Expectations:
        """Default checks for a schema.

        The table must have at least one row; every column gets a ``dtype`` check, plus
        ``not_null`` when it is not nullable, ``range`` on its min/max for integer and
        float columns, ``allowed_values`` when it has categories, ``unique`` when it is
        unique and ``regex`` when it has a pattern. Datetime ranges stay in the schema
        but are not checked by default (new data is newer): add a ``range`` or
        ``freshness`` check by hand. Identifier ranges are not checked either.

        Example:
            >>> import pandas as pd
            >>> from shipyard.data.schema import infer_schema
            >>> e = Expectations.from_schema(infer_schema(pd.DataFrame({"x": [1, 2, 3]})))
            >>> [c.name for c in e]
            ['row_count', 'dtype', 'not_null', 'range']
        """
        checks: list[Check] = [RowCountCheck(min=1)]
        for col in schema.columns:
            name = col.name
            checks.append(DtypeCheck(column=name, logical_type=col.logical_type))
            if not col.nullable:
                checks.append(NotNullCheck(column=name))
            if col.logical_type in _RANGED and (col.min is not None or col.max is not None):
                checks.append(RangeCheck(column=name, min=col.min, max=col.max))
            if col.categories is not None:
                checks.append(AllowedValuesCheck(column=name, values=col.categories))
            if col.unique:
                checks.append(UniqueCheck(column=name))
            if col.pattern is not None:
                checks.append(RegexCheck(column=name, pattern=col.pattern))
        return cls(tuple(checks))

    def to_dict(self) -> dict[str, Any]:
        """``{"version", "table": [...], "columns": {name: [...]}}``; each item is a kind
        (``not_null``) or ``{kind: value}`` (``{range: {min: 0}}``).

        Raises:
            InvalidInputError: For a check that is not built in, or a custom check whose
                function has no importable path (a lambda).
        """
        table: list[Any] = []
        columns: dict[str, list[Any]] = {}
        for check in self.checks:
            kind, value = check_spec(check)
            item = kind if value is None else {kind: value}
            if check.column is None:
                table.append(item)
            else:
                columns.setdefault(check.column, []).append(item)
        return {"version": FORMAT_VERSION, "table": table, "columns": columns}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expectations:
        """Inverse of :meth:`to_dict`. Custom check functions are not imported here.

        Raises:
            InvalidInputError: Naming the section, column and check that is malformed.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                "expectations must be a mapping with 'table' and/or 'columns' sections"
            )
        unknown = sorted(map(str, set(data) - {"version", "table", "columns"}))
        if unknown:
            raise InvalidInputError(
                f"expectations: unknown section(s) {', '.join(map(repr, unknown))}; "
                "allowed: version, table, columns"
            )
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                f"expectations format version {version!r} is not supported (this shipyard "
                f"reads version {FORMAT_VERSION}); upgrade shipyard"
            )
        checks = [_parse_item(item, column=None) for item in _items(data.get("table"), "table")]
        columns = data.get("columns") or {}
        if not isinstance(columns, Mapping):
            raise InvalidInputError("expectations: 'columns' must map column names to lists")
        for name, items in columns.items():
            checks += [
                _parse_item(item, column=str(name)) for item in _items(items, f"column {name!r}")
            ]
        return cls(tuple(checks))

    def to_yaml(self) -> str:
        """The expectations as YAML with a header explaining every check (see :meth:`to_dict`).

        Example:
            >>> print(Expectations([RangeCheck(column="age", min=0)]).to_yaml())
            ... # doctest: +ELLIPSIS
            # shipyard expectations...
            version: 1
            table: []
            columns:
              age:
              - range: {min: 0}
            <BLANKLINE>
        """
        return _HEADER + dump_yaml(self.to_dict())

    @classmethod
    def from_yaml(cls, text: str) -> Expectations:
        """Read expectations written by :meth:`to_yaml` (and perhaps edited by hand).

        Custom checks are imported only when validating; see the warning in the header.

        Raises:
            InvalidInputError: If the YAML does not parse or a check is malformed.
        """
        return cls.from_dict(load_yaml(text, what="expectations file") or {})


_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        DtypeCheck,
        NotNullCheck,
        MissingRateCheck,
        RangeCheck,
        AllowedValuesCheck,
        UniqueCheck,
        RegexCheck,
        FreshnessCheck,
        RowCountCheck,
        CustomCheck,
    )
}
_MAIN_PARAM = {
    "dtype": "logical_type",
    "missing_rate": "max_rate",
    "allowed_values": "values",
    "regex": "pattern",
    "freshness": "max_age",
}
TABLE_KINDS = ("row_count", "custom")
COLUMN_KINDS = tuple(k for k in _KINDS if k != "row_count")


def check_spec(check: Check) -> tuple[str, Any]:
    """``(kind, value)`` of a built-in check as YAML writes it (``("range", {min: 0})``).

    Raises:
        InvalidInputError: For a check that is not built in (it cannot be written as YAML;
            wrap the logic in a :class:`CustomCheck`).
    """
    if not isinstance(check, (ColumnCheck, RowCountCheck, CustomCheck)):
        raise InvalidInputError(
            f"check {getattr(check, 'name', check)!r} ({type(check).__name__}) cannot be "
            "written as YAML; wrap it in a CustomCheck with a 'module:function' path"
        )
    return check.kind, check._spec()


def check_from_spec(kind: str, value: Any, *, column: str | None) -> Check:
    """Build a check from its YAML form: ``kind`` and the value written after it.

    Example:
        >>> check_from_spec("range", {"min": 0}, column="age")
        RangeCheck(column='age', min=0, max=None)

    Raises:
        InvalidInputError: On an unknown kind, a kind in the wrong section or bad values.
    """
    cls = _KINDS.get(kind)
    where = f"column {column!r}" if column is not None else "the table section"
    allowed = COLUMN_KINDS if column is not None else TABLE_KINDS
    if cls is None or kind not in allowed:
        raise InvalidInputError(
            f"{where}: unknown check {kind!r}; checks allowed here: {', '.join(allowed)}"
        )
    if isinstance(value, Mapping):
        params = {str(k): v for k, v in value.items()}
    elif value is None:
        params = {}
    elif kind in _MAIN_PARAM:
        params = {_MAIN_PARAM[kind]: value}
    else:
        raise InvalidInputError(f"{where}: check {kind!r} takes a mapping, got {value!r}")
    names = {f.name for f in fields(cls) if f.init} - {"column", "now"}
    unknown = sorted(set(params) - names)
    if unknown:
        raise InvalidInputError(
            f"{where}: check {kind!r} has unknown setting(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(names)) or 'none'}"
        )
    if kind == "custom":
        params.setdefault("column", column)
    elif column is not None:
        params["column"] = column
    try:
        built: Check = cls(**params)
    except TypeError as exc:
        raise InvalidInputError(f"{where}: check {kind!r}: {exc}") from None
    return built


def _items(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(f"expectations: {where} must be a list of checks, got {value!r}")
    return value


def _parse_item(item: Any, *, column: str | None) -> Check:
    if isinstance(item, str):
        return check_from_spec(item, None, column=column)
    if isinstance(item, Mapping) and len(item) == 1:
        ((kind, value),) = item.items()
        return check_from_spec(str(kind), value, column=column)
    where = f"column {column!r}" if column is not None else "the table section"
    raise InvalidInputError(
        f"{where}: each check is a name (`- not_null`) or one `name: value` pair "
        f"(`- range: {{min: 0}}`), got {item!r}"
    )


@dataclass(frozen=True)
class CheckResult:
    """The finding of one check.

    Attributes:
        check: The check's name (``range``, ``unique``, ``column_exists``, a custom name).
        column: The column, or ``None`` for a table-level check.
        passed: Whether the check held.
        bad_count: Rows that break it (0 for table-level findings such as row count).
        example_indices: Index labels of up to five bad rows.
        example_values: Their values in ``column`` (whole rows, as dicts, for table checks).
        message: One readable line.
    """

    check: str
    column: str | None
    passed: bool
    bad_count: int = 0
    example_indices: tuple[Any, ...] = ()
    example_values: tuple[Any, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "check": self.check,
            "column": self.column,
            "passed": self.passed,
            "bad_count": self.bad_count,
            "example_indices": list(self.example_indices),
            "example_values": list(self.example_values),
            "message": self.message,
        }


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate` found: one :class:`CheckResult` per check, in order.

    Example:
        >>> import pandas as pd
        >>> validate(pd.DataFrame({"x": [1]}), Expectations([NotNullCheck(column="x")])).passed
        True
    """

    results: tuple[CheckResult, ...]
    n_rows: int
    n_columns: int
    seconds: float = field(default=0.0, compare=False)

    @property
    def passed(self) -> bool:
        """Whether every check held."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results of the checks that failed."""
        return tuple(r for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly report (what ``shipyard data validate --json`` prints)."""
        return {
            "passed": self.passed,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "n_checks": len(self.results),
            "n_failed": len(self.failures),
            "seconds": round(self.seconds, 6),
            "results": [r.to_dict() for r in self.results],
        }

    def summary(self, *, verbose: bool = False) -> str:
        """A few readable lines: the verdict, then one line per failed check (per check
        when ``verbose``) with its bad-row count and example rows."""
        shape = f"{self.n_rows:,} rows x {self.n_columns:,} columns, {self.seconds:.3f} s"
        failed = self.failures
        if failed:
            head = (
                f"validation FAILED: {len(failed)} of {len(self.results)} checks failed ({shape})"
            )
        else:
            head = f"validation passed: {len(self.results)} checks ({shape})"
        lines = [head]
        for r in self.results if verbose else failed:
            where = f"{r.check} on {r.column!r}" if r.column is not None else r.check
            line = f"  {where}: {r.message}"
            if r.example_indices:
                rows = ", ".join(map(str, r.example_indices))
                line += f"; e.g. row{'s' if len(r.example_indices) > 1 else ''} {rows}"
                if r.example_values and r.column is not None:
                    line += " = " + ", ".join(_short(v) for v in r.example_values)
            lines.append(line)
        return "\n".join(lines)

    def raise_for_failures(self) -> ValidationReport:
        """Return the report if every check held, else raise.

        Raises:
            SchemaMismatchError: Its message is :meth:`summary`; ``details`` is :meth:`to_dict`.
        """
        if self.failures:
            raise SchemaMismatchError(self.summary(), details=self.to_dict())
        return self


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate(
    df: pd.DataFrame,
    expectations: Expectations | Schema | Iterable[Check],
    *,
    max_examples: int = MAX_EXAMPLES,
) -> ValidationReport:
    """Run every check of ``expectations`` on ``df`` and report, without raising on failures.

    Each column is looked up once; its built-in checks share one :class:`ColumnData`
    (missing mask, numeric view). Use :meth:`ValidationReport.raise_for_failures` to
    turn failures into an exception.

    Args:
        df: The data.
        expectations: :class:`Expectations`, a :class:`~shipyard.data.schema.Schema`
            (its :meth:`Expectations.from_schema` checks), or any iterable of checks.
        max_examples: Example rows kept per failed check (0 to 5).

    Returns:
        The :class:`ValidationReport`.

    Raises:
        InvalidInputError: If ``df`` is not a DataFrame, a check returns something that is
            not a finding, or a custom check's function cannot be imported.

    Example:
        >>> import pandas as pd
        >>> r = validate(pd.DataFrame({"x": [1, None]}), [NotNullCheck(column="x")])
        >>> r.results[0].message, r.results[0].example_indices
        ('1 of 2 rows (50.00%) are missing', (1,))
    """
    check_frame(df)
    if isinstance(expectations, Schema):
        expectations = Expectations.from_schema(expectations)
    elif not isinstance(expectations, Expectations):
        expectations = Expectations(tuple(expectations))
    if isinstance(max_examples, bool) or not isinstance(max_examples, int):
        raise InvalidInputError(f"max_examples must be an int, got {max_examples!r}")
    keep = min(max(max_examples, 0), MAX_EXAMPLES)
    started = time.perf_counter()
    positions = {str(c): i for i, c in enumerate(df.columns)}
    cache: dict[str, ColumnData] = {}
    missing: set[str] = set()
    results: list[CheckResult] = []
    for check in expectations:
        column = check.column
        if column is not None and column not in positions:
            if column not in missing:
                missing.add(column)
                results.append(_missing_column(column, list(positions), len(df)))
            continue
        if isinstance(check, ColumnCheck):
            data = cache.get(check.column)
            if data is None:
                data = cache[check.column] = ColumnData(df.iloc[:, positions[check.column]])
            outcome = check.run(data)
        else:
            outcome = _as_outcome(check, check.evaluate(df), len(df))
        series = None if column is None else df.iloc[:, positions[column]]
        results.append(_result(check, outcome, df, series, keep))
    seconds = time.perf_counter() - started
    report = ValidationReport(tuple(results), len(df), df.shape[1], seconds)
    logger.debug(
        "validated %d rows x %d columns: %d checks, %d failed in %.3f s",
        len(df), df.shape[1], len(results), len(report.failures), seconds,
    )  # fmt: skip
    return report


def _missing_column(column: str, present: list[str], n: int) -> CheckResult:
    message = f"column {column!r} is missing from the data"
    close = difflib.get_close_matches(column, present, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return CheckResult("column_exists", column, False, bad_count=n, message=message)


def _as_outcome(check: Check, value: Any, n: int) -> CheckOutcome:
    """What a third-party check returned, as an outcome (a mask or Series marks bad rows)."""
    if isinstance(value, CheckOutcome):
        return value
    if isinstance(value, (bool, np.bool_)):
        return CheckOutcome(passed=bool(value), bad_count=0, detail="the check returned False")
    if isinstance(value, (int, np.integer)):
        count = int(value)
        return CheckOutcome(passed=count == 0, bad_count=count, detail="rows are bad")
    if isinstance(value, (pd.Series, np.ndarray)) and len(value) == n:
        mask = value.to_numpy(dtype=bool, na_value=True) if isinstance(value, pd.Series) else value
        if np.asarray(mask).dtype == bool:
            return CheckOutcome.from_mask(np.asarray(mask, dtype=bool), "fail the check")
    raise InvalidInputError(
        f"check {check.name!r} returned {type(value).__name__}; evaluate(df) must return a "
        f"CheckOutcome, a boolean mask of the bad rows ({n:,} entries), a bool or a count"
    )


def _result(
    check: Check, outcome: CheckOutcome, df: pd.DataFrame, series: pd.Series | None, keep: int
) -> CheckResult:
    if outcome.passed:
        return CheckResult(check.name, check.column, True, message="ok")
    n = len(df)
    bad = outcome.bad_rows
    count = outcome.bad_count if outcome.bad_count is not None else 0
    if bad is None:
        return CheckResult(check.name, check.column, False, count, message=outcome.detail)
    if outcome.bad_count is None:
        count = int(np.count_nonzero(bad))
    at = np.flatnonzero(bad)[:keep]
    indices = tuple(_json_value(v) for v in df.index[at])
    if series is not None:
        values = tuple(_json_value(v) for v in series.iloc[at])
    else:
        rows = df.iloc[at].to_dict("records")
        values = tuple({str(k): _json_value(v) for k, v in row.items()} for row in rows)
    share = count / n if n else 0.0
    message = f"{count:,} of {n:,} rows ({share:.2%}) {outcome.detail}"
    return CheckResult(check.name, check.column, False, count, indices, values, message)


def _json_value(value: Any) -> Any:
    value = plain_value(value)
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
