"""What changed between two versions of a table: schema, row count, per-column distributions."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.data.schema import ColumnSchema, Schema

logger = logging.getLogger(__name__)

ALPHA = 0.05
"""Default significance level: a distribution test must reach p < ALPHA."""
MIN_KS = 0.1
"""Default smallest Kolmogorov-Smirnov statistic that counts as a change."""
MIN_TVD = 0.1
"""Default smallest total variation distance that counts as a change."""
MAX_MISSING_CHANGE = 0.05
"""Default largest change of the missing rate (in [0, 1]) that does not count as a change."""
SAMPLE_SIZE = 100_000
"""Default most values per side the distribution tests look at (a fixed-seed sample)."""
MAX_LISTED_CATEGORIES = 10
"""Most new (and most vanished) categories listed per column; the counts are complete."""
_MIN_CATEGORY_COUNT = 10
"""Values seen fewer times than this in both versions together are pooled into one bin."""


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """One column present in both versions: its type change and how far its values moved.

    ``statistic`` is the two-sample Kolmogorov-Smirnov statistic for numeric and datetime
    columns (``method="ks"``) and the total variation distance of value frequencies
    otherwise (``method="tvd"``); both are 0 for identical distributions and 1 for disjoint
    ones. ``p_value`` comes from the matching test: ``scipy.stats.ks_2samp`` or a chi-square
    test on the value counts (``None`` when a side has no values to test).

    ``distribution_changed`` and ``missing_rate_changed`` are decided by
    :func:`diff_frames` with its thresholds. The schema fields compare the inferred (or
    stored) schemas of the two versions: the logical type, whether the column gained
    missing values (``became_nullable``) and, for categorical columns, the categories that
    appeared or vanished (at most 10 listed each; ``n_added_categories`` and
    ``n_removed_categories`` are the full counts).
    """

    column: str
    old_dtype: str
    new_dtype: str
    method: str
    statistic: float
    old_missing_rate: float
    new_missing_rate: float
    old_mean: float | None = None
    new_mean: float | None = None
    p_value: float | None = None
    distribution_changed: bool = False
    missing_rate_changed: bool = False
    old_logical_type: str | None = None
    new_logical_type: str | None = None
    became_nullable: bool = False
    added_categories: tuple[Any, ...] = ()
    removed_categories: tuple[Any, ...] = ()
    n_added_categories: int = 0
    n_removed_categories: int = 0

    @property
    def logical_type_changed(self) -> bool:
        """Whether both logical types are known and differ (e.g. integer -> text)."""
        return (
            self.old_logical_type is not None
            and self.new_logical_type is not None
            and self.old_logical_type != self.new_logical_type
        )

    @property
    def schema_changed(self) -> bool:
        """A change of dtype or logical type, new missing values, or new/vanished categories."""
        return (
            self.old_dtype != self.new_dtype
            or self.logical_type_changed
            or self.became_nullable
            or self.n_added_categories > 0
            or self.n_removed_categories > 0
        )

    @property
    def changed(self) -> bool:
        """Whether the schema, the missing rate or the distribution changed enough to matter."""
        return self.schema_changed or self.missing_rate_changed or self.distribution_changed

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the column counts as changed, one short phrase per reason (empty if it did not).

        Example:
            >>> ColumnChange(column="x", old_dtype="int64", new_dtype="int64", method="ks",
            ...              statistic=0.0, old_missing_rate=0.0, new_missing_rate=0.2,
            ...              missing_rate_changed=True, became_nullable=True).reasons
            ('now has missing values', 'missing rate 0.0% -> 20.0%')
        """
        out = []
        if self.old_dtype != self.new_dtype:
            out.append(f"dtype {self.old_dtype} -> {self.new_dtype}")
        if self.logical_type_changed:
            out.append(f"logical type {self.old_logical_type} -> {self.new_logical_type}")
        if self.became_nullable:
            out.append("now has missing values")
        if self.missing_rate_changed:
            out.append(f"missing rate {self.old_missing_rate:.1%} -> {self.new_missing_rate:.1%}")
        for what, listed, n in (
            ("new", self.added_categories, self.n_added_categories),
            ("vanished", self.removed_categories, self.n_removed_categories),
        ):
            if n:
                more = f" and {n - len(listed)} more" if n > len(listed) else ""
                out.append(f"{what} categories: {', '.join(map(repr, listed))}{more}")
        if self.distribution_changed:
            p = "n/a" if self.p_value is None else f"{self.p_value:.2g}"
            out.append(f"distribution shifted ({self.method} {self.statistic:.3f}, p={p})")
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``changed``, ``schema_changed`` and ``reasons`` (JSON friendly).

        Non-finite floats become ``None``; tuples become lists.
        """
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["schema_changed"] = self.schema_changed
        out["changed"] = self.changed
        out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """Two versions of a table compared: row counts, added/removed columns, per-column changes.

    Example:
        >>> d = DatasetDiff(old="a@1", new="a@2", old_rows=3, new_rows=5,
        ...                 added_columns=("z",), removed_columns=())
        >>> d.row_change, d.changed_columns
        (2, ())
    """

    old: str
    new: str
    old_rows: int
    new_rows: int
    added_columns: tuple[str, ...]
    removed_columns: tuple[str, ...]
    columns: tuple[ColumnChange, ...] = field(default_factory=tuple)

    @property
    def row_change(self) -> int:
        """``new_rows - old_rows``."""
        return self.new_rows - self.old_rows

    @property
    def changed_columns(self) -> tuple[str, ...]:
        """Names of the columns present in both versions that count as changed."""
        return tuple(c.column for c in self.columns if c.changed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: the fields, ``row_change``, ``changed_columns`` and columns.

        Each column is :meth:`ColumnChange.to_dict` output.
        """
        return {
            "old": self.old,
            "new": self.new,
            "old_rows": self.old_rows,
            "new_rows": self.new_rows,
            "row_change": self.row_change,
            "added_columns": list(self.added_columns),
            "removed_columns": list(self.removed_columns),
            "changed_columns": list(self.changed_columns),
            "columns": [c.to_dict() for c in self.columns],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def diff_frames(
    old: pd.DataFrame,
    new: pd.DataFrame,
    *,
    old_name: str = "old",
    new_name: str = "new",
    old_schema: Schema | Mapping[str, Any] | None = None,
    new_schema: Schema | Mapping[str, Any] | None = None,
    alpha: float = ALPHA,
    min_ks: float = MIN_KS,
    min_tvd: float = MIN_TVD,
    max_missing_change: float = MAX_MISSING_CHANGE,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
) -> DatasetDiff:
    """Compare two tables column by column (vectorised; no row alignment is assumed).

    A column present in both versions counts as changed (:attr:`ColumnChange.changed`)
    when any of these holds:

    - its distribution moved, significantly *and* by enough to matter. Numeric and
      datetime columns: the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``)
      with ``p < alpha`` and statistic ``>= min_ks``. Other columns: a chi-square test on
      the value counts with ``p < alpha`` and total variation distance ``>= min_tvd``;
      values seen fewer than 10 times in both versions together are pooled into one bin
      first, so free text and identifiers (nearly every value new) do not count as moved.
      Both tests look at a fixed-seed sample of at most ``sample_size`` rows per side.
    - its missing rate moved by more than ``max_missing_change`` (0.05: 5 points).
    - its schema changed: pandas dtype, logical type (``integer`` -> ``text``...), it had
      no missing values and now has some, or a categorical column gained or lost
      categories.

    Args:
        old, new: The two versions.
        old_name, new_name: Labels for the result (e.g. ``"customers@1"``).
        old_schema, new_schema: The stored schemas of the versions (a
            :class:`~shipyard.data.schema.Schema` or its ``to_dict()``); inferred with
            :func:`~shipyard.data.schema.infer_schema` when left out. A column the schema
            does not describe is compared without its logical type.
        alpha: Significance level of the distribution tests.
        min_ks: Smallest Kolmogorov-Smirnov statistic that counts as a change.
        min_tvd: Smallest total variation distance that counts as a change.
        max_missing_change: Largest missing-rate change that does not count.
        sample_size: Most rows per side the distribution tests use.
        seed: Seed of the sample.

    Returns:
        A :class:`DatasetDiff`.

    Raises:
        InvalidInputError: If a frame is not a DataFrame or has duplicate column names, or
            a threshold is out of range.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> a = pd.DataFrame({"x": rng.normal(0, 1, 2000), "y": rng.normal(0, 1, 2000)})
        >>> b = pd.DataFrame({"x": rng.normal(0, 1, 2000), "y": rng.normal(1, 1, 2000)})
        >>> diff_frames(a, b).changed_columns
        ('y',)
    """
    import numpy as np
    import pandas as pd

    from shipyard.data.schema import check_frame

    check_frame(old)
    check_frame(new)
    _check_thresholds(
        alpha=alpha,
        min_ks=min_ks,
        min_tvd=min_tvd,
        max_missing_change=max_missing_change,
        sample_size=sample_size,
    )
    old_types = _column_schemas(old, old_schema)
    new_types = _column_schemas(new, new_schema)
    rng = np.random.default_rng(seed)
    old_rows = _sample_rows(len(old), sample_size, rng)
    new_rows = _sample_rows(len(new), sample_size, rng)

    old_cols, new_cols = [str(c) for c in old.columns], [str(c) for c in new.columns]
    new_set, old_set = set(new_cols), set(old_cols)
    changes = []
    for i, col in enumerate(old_cols):
        if col not in new_set:
            continue
        a, b = old.iloc[:, i], new.iloc[:, new_cols.index(col)]
        numeric = _is_number(a) and _is_number(b)
        dates = pd.api.types.is_datetime64_any_dtype(a) and pd.api.types.is_datetime64_any_dtype(b)
        sa = a if old_rows is None else a.iloc[old_rows]
        sb = b if new_rows is None else b.iloc[new_rows]
        if numeric or dates:
            stat, p = _ks(_as_floats(sa, dates=dates), _as_floats(sb, dates=dates))
            method, moved = "ks", stat >= min_ks
        else:
            stat, p = _chi_square_tvd(sa, sb)
            method, moved = "tvd", stat >= min_tvd
        old_missing = float(a.isna().mean()) if len(a) else 0.0
        new_missing = float(b.isna().mean()) if len(b) else 0.0
        changes.append(
            ColumnChange(
                column=col,
                old_dtype=str(a.dtype),
                new_dtype=str(b.dtype),
                method=method,
                statistic=round(stat, 12),
                old_missing_rate=old_missing,
                new_missing_rate=new_missing,
                old_mean=float(a.mean()) if numeric and a.notna().any() else None,
                new_mean=float(b.mean()) if numeric and b.notna().any() else None,
                p_value=p,
                distribution_changed=bool(moved and p is not None and p < alpha),
                missing_rate_changed=abs(new_missing - old_missing) > max_missing_change,
                **_schema_change(old_types.get(col), new_types.get(col)),
            )
        )
    return DatasetDiff(
        old=old_name,
        new=new_name,
        old_rows=len(old),
        new_rows=len(new),
        added_columns=tuple(c for c in new_cols if c not in old_set),
        removed_columns=tuple(c for c in old_cols if c not in new_set),
        columns=tuple(changes),
    )


def _check_thresholds(
    *, alpha: float, min_ks: float, min_tvd: float, max_missing_change: float, sample_size: int
) -> None:
    if not 0.0 < float(alpha) <= 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1], e.g. 0.05; got {alpha!r}")
    for name, value in (
        ("min_ks", min_ks),
        ("min_tvd", min_tvd),
        ("max_missing_change", max_missing_change),
    ):
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidInputError(f"{name} must be in [0, 1], e.g. 0.1; got {value!r}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise InvalidInputError(f"sample_size must be a positive int, got {sample_size!r}")


def _is_number(s: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def _sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted positions of ``size`` rows drawn without replacement, or None to use them all."""
    import numpy as np

    if n <= size:
        return None
    return np.sort(rng.choice(n, size=size, replace=False))


def _as_floats(s: pd.Series, *, dates: bool) -> np.ndarray:
    """The non-missing values as float64 (datetimes as seconds since the epoch, in UTC)."""
    import numpy as np
    import pandas as pd

    if dates:
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        s = (s - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
    values: np.ndarray = s.to_numpy(dtype="float64", na_value=np.nan)
    return values.compress(~np.isnan(values))


def _ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float | None]:
    from scipy import stats

    if len(a) == 0 or len(b) == 0:
        return (1.0 if len(a) != len(b) else 0.0), None
    result = stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def _chi_square_tvd(a: pd.Series, b: pd.Series) -> tuple[float, float | None]:
    """Total variation distance of the value frequencies, and the chi-square test's p-value.

    Values seen fewer than ``_MIN_CATEGORY_COUNT`` times in both sides together are pooled
    into one bin (dropped if the bin itself is that small), so every cell of the
    contingency table has a usable expected count.
    """
    import numpy as np
    from scipy import stats

    counts = (
        a.astype("string")
        .value_counts(dropna=True)
        .to_frame("a")
        .join(b.astype("string").value_counts(dropna=True).to_frame("b"), how="outer")
        .fillna(0)
    )
    total = counts.sum(axis=1)
    rare = (total < _MIN_CATEGORY_COUNT).to_numpy()
    table = counts[~rare].to_numpy(dtype="float64").T
    pooled = counts[rare].sum().to_numpy(dtype="float64")
    if pooled.sum() >= _MIN_CATEGORY_COUNT:
        table = np.column_stack([table, pooled])
    n_a, n_b = a.notna().sum(), b.notna().sum()
    if n_a == 0 or n_b == 0:
        return (1.0 if n_a != n_b else 0.0), None
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    freq = table / table.sum(axis=1, keepdims=True)
    tvd = float(0.5 * np.abs(freq[0] - freq[1]).sum())
    p = float(stats.chi2_contingency(table).pvalue)
    return tvd, p


def _column_schemas(
    df: pd.DataFrame, given: Schema | Mapping[str, Any] | None
) -> dict[str, ColumnSchema]:
    """The schema of each column: from ``given`` when there is one, else inferred."""
    from shipyard.data.schema import Schema

    if given is not None:
        schema = given if isinstance(given, Schema) else Schema.from_dict(given)
        return {c.name: c for c in schema.columns}
    return _infer_columns(df)


def _infer_columns(df: pd.DataFrame) -> dict[str, ColumnSchema]:
    """:func:`infer_schema` column by column, skipping work the diff does not use.

    Float, boolean and datetime columns get their logical type from their dtype alone,
    so they are inferred from zero rows (no distinct count, no range) and given their
    nullability afterwards. A column :func:`infer_schema` refuses (mixed Python types...)
    is left out: it is compared without a logical type.
    """
    import pandas as pd

    from shipyard.core.errors import SchemaMismatchError
    from shipyard.data.schema import infer_schema

    out: dict[str, ColumnSchema] = {}
    for i, name in enumerate(df.columns):
        s = df.iloc[:, i]
        by_dtype = not isinstance(s.dtype, pd.CategoricalDtype) and (
            pd.api.types.is_float_dtype(s.dtype)
            or pd.api.types.is_bool_dtype(s.dtype)
            or pd.api.types.is_datetime64_any_dtype(s.dtype)
        )
        part = s.iloc[:0] if by_dtype else s
        try:
            col = infer_schema(part.to_frame(name=str(name))).columns[0]
        except SchemaMismatchError as exc:
            logger.debug("diff: no logical type for column %r: %s", str(name), exc)
            continue
        if by_dtype:
            n_missing = int(s.isna().sum())
            rate = round(n_missing / len(s), 6) if len(s) else 0.0
            col = dataclasses.replace(col, nullable=n_missing > 0, missing_rate=rate)
        out[str(name)] = col
    return out


def _schema_change(old: ColumnSchema | None, new: ColumnSchema | None) -> dict[str, Any]:
    """The schema fields of a :class:`ColumnChange` (empty when a side is not described)."""
    if old is None or new is None:
        return {}
    out: dict[str, Any] = {
        "old_logical_type": old.logical_type.value,
        "new_logical_type": new.logical_type.value,
        "became_nullable": not old.nullable and new.nullable,
    }
    if old.categories is not None and new.categories is not None:
        before, after = set(old.categories), set(new.categories)
        added = sorted(after - before, key=_sort_key)
        removed = sorted(before - after, key=_sort_key)
        out |= {
            "added_categories": tuple(added[:MAX_LISTED_CATEGORIES]),
            "removed_categories": tuple(removed[:MAX_LISTED_CATEGORIES]),
            "n_added_categories": len(added),
            "n_removed_categories": len(removed),
        }
    return out


def _sort_key(value: Any) -> tuple[str, str]:
    return type(value).__name__, str(value)
