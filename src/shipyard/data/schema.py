"""Schema inference: the logical type, nullability, range and categories of each column.

:func:`infer_schema` reads a DataFrame once, column by column, with vectorised pandas
operations (no Python loop over rows), and returns a :class:`Schema`: one
:class:`ColumnSchema` per column. A schema is saved as a human-editable YAML file
(:meth:`Schema.to_yaml`); after a person widens a range or adds a category,
:meth:`Schema.from_yaml` reads it back and
:meth:`shipyard.data.validation.Expectations.from_schema` turns it into checks.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 2, 3], "age": [31, None, 45]})
    >>> schema = infer_schema(df)
    >>> schema.column("age").logical_type, schema.column("age").nullable
    (<LogicalType.FLOAT: 'float'>, True)
    >>> schema.column("user_id").logical_type
    <LogicalType.IDENTIFIER: 'identifier'>
    >>> Schema.from_yaml(schema.to_yaml()) == schema
    True
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import yaml

from shipyard.core.errors import InvalidInputError, NotFoundError, SchemaMismatchError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_NEARLY_UNIQUE = 0.99
_WHITESPACE_SAMPLE = 1000
_ID_NAME = re.compile(r"(?:^|[_\-\s.])(?:id|uuid|guid|key|pk)$|^(?:id|uuid|guid|pk)$", re.I)
_CAMEL_ID = re.compile(r"[a-z0-9](?:Id|ID|Uuid|UUID|Key)$")

Bound = int | float | str
"""A range bound: a number, or an ISO 8601 string for datetime columns."""


class LogicalType(StrEnum):
    """What a column means, independent of how pandas stores it.

    ``integer`` and ``float`` are numbers with a range; ``boolean`` is true/false;
    ``categorical`` draws from a small set of values; ``datetime`` is a point in
    time; ``text`` is free text; ``identifier`` names an entity (a key, not a
    quantity: no range is checked on it).
    """

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"
    TEXT = "text"
    IDENTIFIER = "identifier"


def _logical_type(value: object, *, column: str) -> LogicalType:
    if isinstance(value, LogicalType):
        return value
    try:
        return LogicalType(str(value))
    except ValueError:
        allowed = ", ".join(t.value for t in LogicalType)
        raise InvalidInputError(
            f"column {column!r}: unknown type {value!r}; use one of: {allowed}"
        ) from None


def _plain_bound(value: object, *, column: str, what: str) -> Bound | None:
    """A YAML/Python bound as an int, a float or an ISO string (dates as YAML gives them)."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    raise InvalidInputError(
        f"column {column!r}: {what} must be a number or an ISO date string, "
        f"got {type(value).__name__} {value!r}"
    )


def _bound_key(value: Bound) -> float | pd.Timestamp:
    if isinstance(value, str):
        return pd.Timestamp(value)
    return float(value)


@dataclass(frozen=True, kw_only=True)
class ColumnSchema:
    """What one column holds.

    Args:
        name: Column name.
        logical_type: A :class:`LogicalType` (or its string value).
        nullable: Whether missing values are allowed.
        missing_rate: Share of missing values in the data the schema was inferred from
            (descriptive; checked only through an explicit ``MissingRateCheck``).
        min, max: Smallest and largest allowed value: numbers, or ISO 8601 strings for
            datetime columns. ``None`` means unbounded.
        categories: Allowed values of a categorical column, or ``None``.
        unique: Whether every non-missing value must be distinct.
        n_distinct: Distinct non-missing values seen at inference (descriptive).
        pattern: A regular expression every non-missing value must match in full.

    Raises:
        InvalidInputError: On an unknown type, ``min > max``, a missing rate outside
            [0, 1] or a pattern that does not compile.

    Example:
        >>> ColumnSchema(name="age", logical_type="integer", min=0, max=120).logical_type
        <LogicalType.INTEGER: 'integer'>
    """

    name: str
    logical_type: LogicalType
    nullable: bool = True
    missing_rate: float = 0.0
    min: Bound | None = None
    max: Bound | None = None
    categories: tuple[Any, ...] | None = None
    unique: bool = False
    n_distinct: int | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(f"a column name must be a non-empty string, got {self.name!r}")
        name = self.name
        object.__setattr__(self, "logical_type", _logical_type(self.logical_type, column=name))
        lo = _plain_bound(self.min, column=name, what="min")
        hi = _plain_bound(self.max, column=name, what="max")
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)
        if lo is not None and hi is not None:
            try:
                inverted = _bound_key(lo) > _bound_key(hi)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"column {name!r}: min {lo!r} and max {hi!r} cannot be compared ({exc}); "
                    "use two numbers or two ISO dates"
                ) from None
            if inverted:
                raise InvalidInputError(f"column {name!r}: min {lo!r} is greater than max {hi!r}")
        rate = float(self.missing_rate)
        if not 0.0 <= rate <= 1.0:
            raise InvalidInputError(
                f"column {name!r}: missing_rate must be between 0 and 1, got {self.missing_rate!r}"
            )
        object.__setattr__(self, "missing_rate", rate)
        if self.categories is not None:
            if isinstance(self.categories, (str, bytes)) or not isinstance(
                self.categories, Iterable
            ):
                raise InvalidInputError(
                    f"column {name!r}: categories must be a list of values, got {self.categories!r}"
                )
            object.__setattr__(self, "categories", tuple(self.categories))
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise InvalidInputError(
                    f"column {name!r}: pattern {self.pattern!r} is not a valid regular "
                    f"expression: {exc}"
                ) from None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (YAML/JSON friendly) keyed by field name; empty fields left out.

        Example:
            >>> ColumnSchema(name="ok", logical_type="boolean", nullable=False).to_dict()
            {'name': 'ok', 'logical_type': 'boolean', 'nullable': False, 'missing_rate': 0.0, \
'unique': False}
        """
        out: dict[str, Any] = {
            "name": self.name,
            "logical_type": self.logical_type.value,
            "nullable": self.nullable,
            "missing_rate": self.missing_rate,
        }
        for key in ("min", "max", "categories"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "categories" else value
        out["unique"] = self.unique
        if self.n_distinct is not None:
            out["n_distinct"] = self.n_distinct
        if self.pattern is not None:
            out["pattern"] = self.pattern
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSchema:
        """Build a column from :meth:`to_dict` output (unknown keys are refused).

        Raises:
            InvalidInputError: On an unknown key (a typo such as ``nulable``) or a bad value.
        """
        if not isinstance(data, Mapping) or "name" not in data:
            raise InvalidInputError(
                f"each schema column must be a mapping with a 'name', got {data!r:.200}"
            )
        name = str(data["name"])
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(data) - allowed))
        if unknown:
            raise InvalidInputError(
                f"column {name!r}: unknown setting(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        if "logical_type" not in data:
            raise InvalidInputError(f"column {name!r} has no 'logical_type'")
        n_distinct = data.get("n_distinct")
        return cls(
            name=name,
            logical_type=data["logical_type"],
            nullable=_flag(data.get("nullable", True), column=name, what="nullable"),
            missing_rate=data.get("missing_rate") or 0.0,
            min=data.get("min"),
            max=data.get("max"),
            categories=data.get("categories"),
            unique=_flag(data.get("unique", False), column=name, what="unique"),
            n_distinct=None if n_distinct is None else int(n_distinct),
            pattern=data.get("pattern"),
        )


def _flag(value: object, *, column: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"column {column!r}: {what} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class Schema:
    """The columns of a dataset and the row count it was inferred from.

    Example:
        >>> s = Schema(columns=(ColumnSchema(name="x", logical_type="float"),), n_rows=10)
        >>> s.names
        ('x',)
    """

    columns: tuple[ColumnSchema, ...]
    n_rows: int | None = None
    _by_name: dict[str, ColumnSchema] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        cols = tuple(self.columns)
        object.__setattr__(self, "columns", cols)
        by_name: dict[str, ColumnSchema] = {}
        for col in cols:
            if col.name in by_name:
                raise InvalidInputError(f"column {col.name!r} appears twice in the schema")
            by_name[col.name] = col
        object.__setattr__(self, "_by_name", by_name)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSchema:
        """The schema of column ``name``.

        Raises:
            NotFoundError: If there is no such column; the message lists the known ones.

        Example:
            >>> Schema(columns=(ColumnSchema(name="x", logical_type="float"),)).column("y")
            Traceback (most recent call last):
            ...
            shipyard.core.errors.NotFoundError: column 'y' is not in the schema; known columns: 'x'
        """
        try:
            return self._by_name[name]
        except KeyError:
            message = _unknown_column_message(name, self.names, where="the schema")
            raise NotFoundError(message, details={"column": name}) from None

    def with_column(self, column: ColumnSchema) -> Schema:
        """A copy with ``column`` replacing the column of the same name (or appended).

        Example:
            >>> s = Schema(columns=(ColumnSchema(name="x", logical_type="float", max=1.0),))
            >>> s.with_column(ColumnSchema(name="x", logical_type="float", max=2.0)).column("x").max
            2.0
        """
        if column.name in self._by_name:
            cols = tuple(column if c.name == column.name else c for c in self.columns)
        else:
            cols = (*self.columns, column)
        return Schema(columns=cols, n_rows=self.n_rows)

    def to_dict(self) -> dict[str, Any]:
        """``{"version", "n_rows", "columns": [column dict, ...]}`` (JSON/YAML friendly).

        Each column is :meth:`ColumnSchema.to_dict` output.
        """
        return {
            "version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidInputError: If the mapping is not a schema or a column is malformed.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("columns"), list):
            raise InvalidInputError(
                "a schema must be a mapping with a 'columns' list (one entry per column)"
            )
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                f"schema format version {version!r} is not supported (this shipyard reads "
                f"version {FORMAT_VERSION}); upgrade shipyard"
            )
        n_rows = data.get("n_rows")
        columns = tuple(ColumnSchema.from_dict(spec) for spec in data["columns"])
        return cls(columns=columns, n_rows=None if n_rows is None else int(n_rows))

    def to_yaml(self) -> str:
        """The schema as YAML, with a header saying how to edit it.

        Example:
            >>> print(Schema(columns=(ColumnSchema(name="x", logical_type="float"),)).to_yaml())
            ... # doctest: +ELLIPSIS
            # shipyard schema...
            columns:
            - name: x
              logical_type: float
            ...
        """
        rows = "an unknown number of" if self.n_rows is None else f"{self.n_rows:,}"
        header = _SCHEMA_HEADER.format(rows=rows)
        data = self.to_dict()
        for spec in data["columns"]:
            if "categories" in spec:
                spec["categories"] = FlowList(spec["categories"])
        return header + dump_yaml(data)

    @classmethod
    def from_yaml(cls, text: str) -> Schema:
        """Read a schema written by :meth:`to_yaml` (and perhaps edited by hand).

        Raises:
            InvalidInputError: If the text is not valid YAML or not a schema.
        """
        return cls.from_dict(load_yaml(text, what="schema"))


_SCHEMA_HEADER = """\
# shipyard schema (format 1), inferred from {rows} rows. Edit it by hand:
#   logical_type  integer | float | boolean | categorical | datetime | text | identifier
#   nullable      false forbids missing values
#   min / max     allowed range (numbers; ISO dates such as '2024-01-31' for datetime);
#                 delete a line to leave that side open
#   categories    the allowed values of a categorical column; add or remove entries
#   unique        true forbids repeated values
#   pattern       a regular expression every value must match in full (optional)
#   missing_rate, n_distinct and n_rows describe the data it was inferred from; they
#   are not checked.
"""


class FlowList(list[Any]):
    """A list :func:`dump_yaml` writes on one line (``[a, b, c]``)."""


class FlowDict(dict[str, Any]):
    """A mapping :func:`dump_yaml` writes on one line (``{min: 0, max: 1}``)."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_flow_list(dumper: yaml.SafeDumper, data: FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _represent_flow_dict(dumper: yaml.SafeDumper, data: FlowDict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(FlowList, _represent_flow_list)
_Dumper.add_representer(FlowDict, _represent_flow_dict)


def dump_yaml(data: Any) -> str:
    """Block-style YAML in insertion order; :class:`FlowList`/:class:`FlowDict` stay inline.

    Example:
        >>> print(dump_yaml({"a": FlowList([1, 2]), "b": {"c": FlowDict(d=1)}}), end="")
        a: [1, 2]
        b:
          c: {d: 1}
    """
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def load_yaml(text: str, *, what: str) -> Any:
    """``yaml.safe_load`` with errors as :class:`InvalidInputError` naming ``what``."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} YAML must be a string, got {type(text).__name__}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"the {what} is not valid YAML: {exc}") from None


def _unknown_column_message(name: str, known: Iterable[str], *, where: str) -> str:
    known = list(known)
    listed = ", ".join(map(repr, known[:50])) or "none"
    if len(known) > 50:
        listed += f" and {len(known) - 50:,} more"
    msg = f"column {name!r} is not in {where}; known columns: {listed}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg


# --------------------------------------------------------------------------------------
# inference


def infer_schema(
    df: pd.DataFrame, *, max_categories: int = 50, categorical_ratio: float = 0.05
) -> Schema:
    """Infer the schema of ``df``: one pass of vectorised pandas work per column.

    Rules, per column (missing values ignored):

    - bool dtype (or Python bools) -> ``boolean``; datetime dtype -> ``datetime``
      (strings that look like dates stay strings: parse them on load, e.g.
      ``pd.read_csv(..., parse_dates=[...])``).
    - integers -> ``identifier`` when the name looks like an id (``id``, ``user_id``,
      ``orderKey``, ``uuid``...) and at least 99% of values are distinct, else ``integer``.
    - floats -> ``float``; pandas ``category`` dtype -> ``categorical``.
    - strings -> ``categorical`` when there are at most ``max_categories`` distinct values
      and at most ``categorical_ratio`` distinct values per row; otherwise ``identifier``
      when all values are distinct and contain no whitespace (checked on a sample of
      1,000), or when the name looks like an id; otherwise ``text``.
    - ``unique`` is inferred for identifier columns only (a sample that happens to have
      no repeats says little about other columns); ``n_distinct`` is recorded for all.

    Args:
        df: The data. Column names are used as strings.
        max_categories: Most distinct values a categorical column may have.
        categorical_ratio: Most distinct values per non-missing row for a categorical
            string column (0.05: every value repeats 20 times on average).

    Returns:
        The inferred :class:`Schema`.

    Raises:
        InvalidInputError: If ``df`` is not a DataFrame, has duplicate column names or
            the parameters are out of range.
        SchemaMismatchError: If a column mixes Python types (e.g. ints and strings in an
            object column) or holds a type shipyard does not model (timedelta, complex...).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"color": ["red", "blue"] * 50, "n": range(100)})
        >>> s = infer_schema(df)
        >>> s.column("color").logical_type, s.column("color").categories
        (<LogicalType.CATEGORICAL: 'categorical'>, ('blue', 'red'))
        >>> s.column("n").min, s.column("n").max
        (0, 99)
    """
    check_frame(df)
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 0
    ):
        raise InvalidInputError(
            f"max_categories must be a non-negative int, got {max_categories!r}"
        )
    if not 0.0 <= float(categorical_ratio) <= 1.0:
        raise InvalidInputError(f"categorical_ratio must be in [0, 1], got {categorical_ratio!r}")
    columns = tuple(
        _infer_column(
            str(name),
            df.iloc[:, i],
            max_categories=max_categories,
            categorical_ratio=float(categorical_ratio),
        )
        for i, name in enumerate(df.columns)
    )
    return Schema(columns=columns, n_rows=len(df))


def check_frame(df: object) -> None:
    """Refuse anything but a DataFrame with distinct column names.

    Raises:
        InvalidInputError: Naming what was received, or the repeated column names.
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"expected a pandas DataFrame, got {type(df).__name__}; "
            "wrap it with pd.DataFrame(...) first"
        )
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)
        raise InvalidInputError(
            f"the DataFrame has duplicate column names {', '.join(map(repr, dupes))}; "
            "rename them so each column has one name"
        )


def looks_like_id(name: str) -> bool:
    """Whether a column name reads like a key: ``id``, ``user_id``, ``orderKey``, ``uuid``.

    Example:
        >>> looks_like_id("customer_id"), looks_like_id("idle_time")
        (True, False)
    """
    return bool(_ID_NAME.search(name) or _CAMEL_ID.search(name))


def _infer_column(
    name: str, s: pd.Series, *, max_categories: int, categorical_ratio: float
) -> ColumnSchema:
    n = len(s)
    isna = s.isna()
    n_missing = int(isna.sum())
    missing_rate = round(n_missing / n, 6) if n else 0.0
    base: dict[str, Any] = {
        "name": name,
        "nullable": n_missing > 0,
        "missing_rate": missing_rate,
    }
    values = s[~isna] if n_missing else s
    dtype = s.dtype
    kind = _storage_kind(name, s, values)

    if kind == "boolean":
        return ColumnSchema(logical_type=LogicalType.BOOLEAN, n_distinct=_nunique(values), **base)
    if kind == "datetime":
        datetimes = values if _is_datetime_dtype(dtype) else pd.to_datetime(values)
        lo, hi = _min_max(datetimes)
        return ColumnSchema(
            logical_type=LogicalType.DATETIME,
            min=lo,
            max=hi,
            n_distinct=_nunique(values),
            **base,
        )
    if kind == "category":
        cats = dtype.categories
        used = int(values.nunique())
        categories = tuple(plain_value(c) for c in cats) if len(cats) <= max_categories else None
        return ColumnSchema(
            logical_type=LogicalType.CATEGORICAL, categories=categories, n_distinct=used, **base
        )
    n_distinct = _nunique(values)
    n_present = len(values)
    if kind == "integer":
        lo, hi = _min_max(values)
        nearly_unique = n_present > 0 and n_distinct >= _NEARLY_UNIQUE * n_present
        if looks_like_id(name) and nearly_unique:
            return ColumnSchema(
                logical_type=LogicalType.IDENTIFIER,
                min=lo,
                max=hi,
                unique=n_distinct == n_present,
                n_distinct=n_distinct,
                **base,
            )
        return ColumnSchema(
            logical_type=LogicalType.INTEGER, min=lo, max=hi, n_distinct=n_distinct, **base
        )
    if kind == "float":
        lo, hi = _min_max(values)
        return ColumnSchema(
            logical_type=LogicalType.FLOAT, min=lo, max=hi, n_distinct=n_distinct, **base
        )
    # strings
    if n_present and n_distinct <= max_categories and n_distinct <= categorical_ratio * n_present:
        categories = tuple(sorted(str(v) for v in pd.unique(values)))
        return ColumnSchema(
            logical_type=LogicalType.CATEGORICAL,
            categories=categories,
            n_distinct=n_distinct,
            **base,
        )
    all_distinct = n_present > 0 and n_distinct == n_present
    if n_present and (
        (all_distinct and not _has_whitespace(values))
        or (looks_like_id(name) and n_distinct > max_categories)
    ):
        return ColumnSchema(
            logical_type=LogicalType.IDENTIFIER,
            unique=all_distinct,
            n_distinct=n_distinct,
            **base,
        )
    return ColumnSchema(logical_type=LogicalType.TEXT, n_distinct=n_distinct, **base)


def _is_datetime_dtype(dtype: Any) -> bool:
    return bool(pd.api.types.is_datetime64_any_dtype(dtype))


_OBJECT_KINDS = {
    "string": "string",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "empty": "string",
}


def _storage_kind(name: str, s: pd.Series, values: pd.Series) -> str:
    """One of boolean, integer, float, datetime, category, string (or raise)."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if _is_datetime_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if dtype == np.dtype(object):
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in _OBJECT_KINDS:
            return _OBJECT_KINDS[inferred]
        if inferred in ("mixed", "mixed-integer"):
            raise SchemaMismatchError(_mixed_types_message(name, values), details={"column": name})
        raise SchemaMismatchError(
            f"column {name!r} holds {inferred} values, which shipyard does not model; "
            f"convert it, e.g. df[{name!r}] = df[{name!r}].astype(str)",
            details={"column": name, "inferred": inferred},
        )
    raise SchemaMismatchError(
        f"column {name!r} has dtype {dtype}, which shipyard does not model; convert it "
        f"(a timedelta to seconds with df[{name!r}].dt.total_seconds(), anything else with "
        f".astype(str))",
        details={"column": name, "dtype": str(dtype)},
    )


def _mixed_types_message(name: str, values: pd.Series) -> str:
    vals = values.reset_index(drop=True)  # positions: the index may repeat labels
    types = vals.map(lambda v: type(v).__name__)
    parts = []
    for tname, idx in types.groupby(types, sort=False).groups.items():
        examples = ", ".join(repr(vals.iloc[i]) for i in list(idx[:3]))
        plural = "s" if len(idx) != 1 else ""
        parts.append(f"{tname} ({len(idx):,} value{plural}, e.g. {examples})")
    return (
        f"column {name!r} mixes Python types: {'; '.join(parts)}; a column must hold one "
        f"type. Cast it, e.g. df[{name!r}] = df[{name!r}].astype(str), or fix the odd values"
    )


def _nunique(values: pd.Series) -> int:
    return int(values.nunique(dropna=True))


def _min_max(values: pd.Series) -> tuple[Any, Any]:
    if len(values) == 0:
        return None, None
    lo, hi = values.min(), values.max()
    return plain_value(lo), plain_value(hi)


def _has_whitespace(values: pd.Series) -> bool:
    sample = (
        values
        if len(values) <= _WHITESPACE_SAMPLE
        else values.sample(_WHITESPACE_SAMPLE, random_state=0)
    )
    return bool(sample.astype(str).str.contains(r"\s", regex=True).any())


def plain_value(value: Any) -> Any:
    """numpy and pandas scalars as plain Python values; times as ISO strings, missing as None.

    Example:
        >>> import numpy as np
        >>> plain_value(np.int64(3)), plain_value(np.nan), plain_value(pd.Timestamp("2024-01-02"))
        (3, None, '2024-01-02T00:00:00')
    """
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value
