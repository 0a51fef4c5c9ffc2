"""Column profiles of a table: missing values, distinct counts, quantiles, histograms, outliers.

:func:`profile` summarises a :class:`pandas.DataFrame` column by column into a
frozen :class:`Profile` that turns into JSON (``to_dict``/``to_json``) and back
(``Profile.from_dict``). Every statistic is computed with numpy on whole
columns: a numeric column is sorted once and quantiles, distinct count, IQR and
z-score outliers are read off the sorted values, so a million rows by twenty
columns profiles in a few seconds.

Conventions:

* ``missing`` counts nulls (``None``, ``NaN``, ``NaT``, ``pd.NA``); infinite
  numbers are not missing but are left out of mean, std, quantiles and
  histogram (they are counted in ``infinite``).
* ``std`` is the sample standard deviation (``ddof=1``, as pandas); a z-score
  outlier is a finite value with ``|x - mean| > 3 * std``; an IQR outlier lies
  below ``q25 - 1.5 * IQR`` or above ``q75 + 1.5 * IQR``.
* Quantiles use linear interpolation (numpy's and pandas' default).
* A statistic that does not apply (the mean of a text column) or is undefined
  (the std of one value) is ``None``, never ``NaN``, so the JSON is strict.

Example::

    >>> import pandas as pd
    >>> p = profile(pd.DataFrame({"x": [1.0, 2.0, None]}))
    >>> p.column("x").missing, p.column("x").mean
    (1, 1.5)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical", "datetime", "text", "boolean"]
"""The light logical type of a column, as :func:`detect_kind` sees it."""

KINDS: tuple[Kind, ...] = ("numeric", "categorical", "datetime", "text", "boolean")

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p1", 0.01),
    ("p5", 0.05),
    ("p25", 0.25),
    ("p50", 0.5),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)
"""Quantile names (keys of :attr:`ColumnProfile.quantiles`) and levels."""

TEXT_MIN_DISTINCT = 50
"""A string column with more distinct values than this ..."""
TEXT_DISTINCT_RATIO = 0.5
"""... and more than this share of its values distinct is text, not categorical."""
TEXT_MEAN_LENGTH = 64.0
"""A string column whose values average more characters than this is text."""
_KIND_SAMPLE = 10_000

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``len(counts)`` bins bounded by ``edges`` (one more than counts).

    For a datetime column ``edges`` are seconds since the Unix epoch and
    ``labels`` holds the same edges as ISO 8601 text; otherwise ``labels`` is
    ``None``.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TopValue:
    """One of the most frequent values of a column (as text) and how often it occurs."""

    value: str
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    """The summary of one column; fields that do not apply to its ``kind`` are ``None``.

    Every column has ``name`` .. ``distinct``. Numeric columns add ``mean`` ..
    ``infinite`` and ``histogram``; datetime columns add ``min_time``,
    ``max_time`` and ``histogram`` (over time); categorical, text and boolean
    columns add ``top`` (and text columns ``mean_length``).
    """

    name: str
    kind: Kind
    dtype: str
    count: int
    missing: int
    missing_rate: float
    distinct: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: Mapping[str, float] | None = None
    histogram: Histogram | None = None
    outliers_iqr: int | None = None
    outliers_z: int | None = None
    zeros: int | None = None
    infinite: int | None = None
    min_time: str | None = None
    max_time: str | None = None
    top: tuple[TopValue, ...] | None = None
    mean_length: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """This column's profile as JSON-ready builtins."""
        return cast(dict[str, Any], _jsonable(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        """Rebuild a column profile from :meth:`to_dict` output."""
        fields = dict(data)
        hist = fields.get("histogram")
        if hist is not None:
            labels = hist.get("labels")
            fields["histogram"] = Histogram(
                edges=tuple(float(e) for e in hist["edges"]),
                counts=tuple(int(c) for c in hist["counts"]),
                labels=None if labels is None else tuple(labels),
            )
        top = fields.get("top")
        if top is not None:
            fields["top"] = tuple(TopValue(value=t["value"], count=int(t["count"])) for t in top)
        if fields.get("quantiles") is not None:
            fields["quantiles"] = {k: float(v) for k, v in fields["quantiles"].items()}
        return cls(**fields)


@dataclass(frozen=True)
class Profile:
    """The profile of a whole table: its shape, memory, duplicate rows and one entry per column.

    ``rows_profiled`` is ``n_rows`` unless :func:`profile` was given
    ``sample_rows`` smaller than the table; every per-column count (and
    ``duplicate_rows``, ``missing_cells``) then refers to the sampled rows.
    """

    n_rows: int
    n_columns: int
    rows_profiled: int
    memory_bytes: int
    duplicate_rows: int | None
    missing_cells: int
    columns: tuple[ColumnProfile, ...]
    bins: int
    top_k: int

    @property
    def sampled(self) -> bool:
        """Whether the statistics come from a random sample of the rows."""
        return self.rows_profiled < self.n_rows

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``.

        Raises:
            InvalidInputError: no column has that name (the message lists them).
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidInputError(
            f"profile has no column {name!r}; known columns: {[c.name for c in self.columns]}",
            details={"column": name, "known_columns": [c.name for c in self.columns]},
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready builtins (``NaN`` and infinities become ``None``)."""
        out = cast(dict[str, Any], _jsonable(dataclasses.asdict(self)))
        out["sampled"] = self.sampled
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """The profile as strict JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Rebuild a profile from :meth:`to_dict` (or parsed :meth:`to_json`) output."""
        fields = {k: v for k, v in data.items() if k != "sampled"}
        fields["columns"] = tuple(ColumnProfile.from_dict(c) for c in data["columns"])
        return cls(**fields)


def profile(
    df: pd.DataFrame, *, bins: int = 20, top_k: int = 10, sample_rows: int | None = None
) -> Profile:
    """Profile every column of ``df``.

    Args:
        df: the table.
        bins: number of histogram bins for numeric and datetime columns.
        top_k: number of most frequent values kept for categorical, text and
            boolean columns.
        sample_rows: when set and ``df`` has more rows, profile a random sample
            of this many rows (seed 0, rows kept in order); ``rows_profiled``
            records it.

    Returns:
        The frozen :class:`Profile`.

    Raises:
        InvalidInputError: ``df`` is not a DataFrame, or ``bins``, ``top_k`` or
            ``sample_rows`` is not a positive integer.

    Example::

        >>> import pandas as pd
        >>> profile(pd.DataFrame({"c": ["a", "b", "a"]})).column("c").top[0]
        TopValue(value='a', count=2)
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"profile() expects a pandas DataFrame, got {type(df).__name__}",
            details={"parameter": "df", "received": type(df).__name__},
        )
    _check_positive("bins", bins)
    _check_positive("top_k", top_k)
    if sample_rows is not None:
        _check_positive("sample_rows", sample_rows)
    n_rows = len(df)
    memory = int(df.memory_usage(deep=True, index=True).sum())
    data = sample_frame(df, sample_rows, seed=0)
    columns = tuple(
        _profile_column(str(df.columns[i]), data.iloc[:, i], bins=bins, top_k=top_k)
        for i in range(df.shape[1])
    )
    return Profile(
        n_rows=n_rows,
        n_columns=int(df.shape[1]),
        rows_profiled=len(data),
        memory_bytes=memory,
        duplicate_rows=_duplicate_rows(data),
        missing_cells=sum(c.missing for c in columns),
        columns=columns,
        bins=bins,
        top_k=top_k,
    )


def detect_kind(series: pd.Series) -> Kind:
    """The light logical type of a column: numeric, categorical, datetime, text or boolean.

    Booleans (also object columns holding only ``True``/``False``) are
    ``boolean``; numbers and durations are ``numeric``; timestamps are
    ``datetime``; a pandas ``category`` is ``categorical``. Other (string or
    mixed) columns are ``text`` when they look free-form: more than
    :data:`TEXT_MIN_DISTINCT` distinct values making up more than
    :data:`TEXT_DISTINCT_RATIO` of the values, or values averaging more than
    :data:`TEXT_MEAN_LENGTH` characters (judged on up to 10,000 values);
    otherwise ``categorical``.
    """
    import pandas as pd
    from pandas.api import types as pdt

    dtype = series.dtype
    if pdt.is_bool_dtype(dtype):
        return "boolean"
    if pdt.is_numeric_dtype(dtype) or pdt.is_timedelta64_dtype(dtype):
        return "numeric"
    if pdt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    values = series.dropna()
    if len(values) > _KIND_SAMPLE:
        values = values.iloc[:: max(1, len(values) // _KIND_SAMPLE)]
    inferred = pdt.infer_dtype(values, skipna=True)
    if inferred == "boolean":
        return "boolean"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    if inferred in ("datetime", "datetime64", "date"):
        return "datetime"
    if len(values) == 0:
        return "categorical"
    text = _as_text(values)
    distinct = text.nunique()
    if distinct > TEXT_MIN_DISTINCT and distinct > TEXT_DISTINCT_RATIO * len(text):
        return "text"
    if float(text.str.len().mean()) > TEXT_MEAN_LENGTH:
        return "text"
    return "categorical"


def numeric_values(series: pd.Series) -> FloatArray:
    """A numeric, datetime or boolean column as float64 with ``NaN`` for missing values.

    Datetimes become seconds since the Unix epoch (UTC) and durations seconds.
    """
    import pandas as pd
    from pandas.api import types as pdt

    dtype = series.dtype
    if pdt.is_datetime64_any_dtype(dtype) or (
        not pdt.is_numeric_dtype(dtype)
        and not pdt.is_bool_dtype(dtype)
        and pdt.infer_dtype(series.dropna().iloc[:1000], skipna=True)
        in ("datetime", "datetime64", "date")
    ):
        stamps = pd.to_datetime(series, utc=True)
        ns = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
        out: FloatArray = np.asarray(ns, dtype=np.int64).astype(np.float64) / 1e9
        out[stamps.isna().to_numpy()] = np.nan
        return out
    if pdt.is_timedelta64_dtype(dtype):
        return np.asarray(series.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan))
    if pdt.is_numeric_dtype(dtype) or pdt.is_bool_dtype(dtype):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    coerced = pd.to_numeric(series.astype(object), errors="coerce")
    return np.asarray(coerced.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def sample_frame(df: pd.DataFrame, sample_rows: int | None, *, seed: int) -> pd.DataFrame:
    """``df`` itself, or ``sample_rows`` of its rows drawn at random (in their original order)."""
    if sample_rows is None or len(df) <= sample_rows:
        return df
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(df), size=sample_rows, replace=False))
    return df.iloc[rows]


def _profile_column(name: str, series: pd.Series, *, bins: int, top_k: int) -> ColumnProfile:
    kind = detect_kind(series)
    n = len(series)
    missing = int(series.isna().sum())
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": str(series.dtype),
        "count": n - missing,
        "missing": missing,
        "missing_rate": missing / n if n else 0.0,
    }
    if kind == "numeric":
        return ColumnProfile(**base, **_numeric_stats(numeric_values(series), bins=bins))
    if kind == "datetime":
        return ColumnProfile(**base, **_datetime_stats(series, bins=bins))
    text = _as_text(series.dropna())
    counts = text.value_counts(sort=True)
    counts = counts[counts > 0]  # a categorical dtype also lists unused categories
    top = tuple(TopValue(value=str(v), count=int(c)) for v, c in counts.iloc[:top_k].items())
    mean_length = None
    if kind == "text" and len(text):
        mean_length = _finite(text.str.len().mean())
    return ColumnProfile(**base, distinct=len(counts), top=top, mean_length=mean_length)


def _numeric_stats(values: FloatArray, *, bins: int) -> dict[str, Any]:
    present = np.sort(values[~np.isnan(values)])
    distinct = int(np.count_nonzero(present[1:] != present[:-1]) + 1) if len(present) else 0
    finite = present[np.isfinite(present)]
    stats: dict[str, Any] = {
        "distinct": distinct,
        "infinite": len(present) - len(finite),
        "zeros": int(np.count_nonzero(finite == 0)),
    }
    n = len(finite)
    if n == 0:
        return stats
    mean = float(finite.mean())
    std = float(finite.std(ddof=1)) if n > 1 else None
    qs = _sorted_quantiles(finite, [q for _, q in QUANTILES])
    quantiles = {key: q for (key, _), q in zip(QUANTILES, qs, strict=True)}
    q25, q75 = quantiles["p25"], quantiles["p75"]
    iqr = q75 - q25
    outliers_iqr = _count_outside(finite, q25 - 1.5 * iqr, q75 + 1.5 * iqr)
    outliers_z = 0
    if std is not None and std > 0:
        outliers_z = _count_outside(finite, mean - 3 * std, mean + 3 * std)
    counts, edges = np.histogram(finite, bins=bins)
    stats.update(
        mean=_finite(mean),
        std=_finite(std),
        min=float(finite[0]),
        max=float(finite[-1]),
        quantiles=quantiles,
        histogram=Histogram(
            edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts)
        ),
        outliers_iqr=outliers_iqr,
        outliers_z=outliers_z,
    )
    return stats


def _datetime_stats(series: pd.Series, *, bins: int) -> dict[str, Any]:
    import pandas as pd

    seconds = numeric_values(series)
    present = seconds[~np.isnan(seconds)]
    stats: dict[str, Any] = {"distinct": int(np.unique(present).size)}
    if len(present) == 0:
        return stats
    lo, hi = float(present.min()), float(present.max())
    counts, edges = np.histogram(present, bins=bins)
    stamps = pd.to_datetime(edges, unit="s", utc=True).round("s")
    labels = tuple(t.isoformat() for t in stamps)
    stats.update(
        min_time=pd.Timestamp(lo, unit="s", tz="UTC").isoformat(),
        max_time=pd.Timestamp(hi, unit="s", tz="UTC").isoformat(),
        histogram=Histogram(
            edges=tuple(float(e) for e in edges),
            counts=tuple(int(c) for c in counts),
            labels=labels,
        ),
    )
    return stats


def _sorted_quantiles(ordered: FloatArray, levels: list[float]) -> list[float]:
    """Linear-interpolation quantiles of an ascending array (numpy's default method)."""
    pos = (len(ordered) - 1) * np.asarray(levels)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(ordered) - 1)
    frac = pos - lo
    vals = ordered[lo] + (ordered[hi] - ordered[lo]) * frac
    return [float(v) for v in vals]


def _count_outside(ordered: FloatArray, low: float, high: float) -> int:
    below = int(np.searchsorted(ordered, low, side="left"))
    above = len(ordered) - int(np.searchsorted(ordered, high, side="right"))
    return below + above


def _as_text(values: pd.Series) -> pd.Series:
    """Non-null values as strings (unhashable values such as lists become their repr)."""
    from pandas.api import types as pdt

    if pdt.is_string_dtype(values.dtype) and not pdt.is_object_dtype(values.dtype):
        return values
    return values.astype(str)


def _duplicate_rows(df: pd.DataFrame) -> int | None:
    """Rows equal to an earlier row, counted through one 64-bit hash per row.

    Hashing is about three times faster than ``DataFrame.duplicated``; two
    different rows share a hash with probability about ``n**2 / 2**65``
    (3e-8 for a million rows), which a count can afford.
    """
    import pandas as pd

    if df.shape[1] == 0 or len(df) == 0:
        return 0
    try:
        hashes = np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())
    except TypeError:  # unhashable cells (lists, dicts)
        logger.debug("duplicate rows not counted: the frame holds unhashable values")
        return None
    return int(np.count_nonzero(hashes[1:] == hashes[:-1]))


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"{name} must be a positive integer, got {value!r}",
            details={"parameter": name, "received": repr(value)},
        )


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _jsonable(value: Any) -> Any:
    """Builtins only: tuples become lists, non-finite floats ``None``, numpy scalars Python."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
