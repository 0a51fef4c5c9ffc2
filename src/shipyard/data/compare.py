"""What changed between two versions of a table: schema, row count, per-column distributions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """One column present in both versions: its dtype change and how far its values moved.

    ``statistic`` is the two-sample Kolmogorov-Smirnov statistic for numeric and datetime
    columns and the total variation distance of value frequencies otherwise (both 0 for
    identical distributions, 1 for disjoint ones).
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

    @property
    def changed(self) -> bool:
        return self.old_dtype != self.new_dtype or self.statistic > 0.0


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    old: str
    new: str
    old_rows: int
    new_rows: int
    added_columns: tuple[str, ...]
    removed_columns: tuple[str, ...]
    columns: tuple[ColumnChange, ...] = field(default_factory=tuple)

    @property
    def row_change(self) -> int:
        return self.new_rows - self.old_rows

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "old": self.old,
            "new": self.new,
            "old_rows": self.old_rows,
            "new_rows": self.new_rows,
            "row_change": self.row_change,
            "added_columns": list(self.added_columns),
            "removed_columns": list(self.removed_columns),
            "columns": [
                {k: clean(getattr(c, k)) for k in c.__slots__} | {"changed": c.changed}
                for c in self.columns
            ],
        }


def _ks(a: Any, b: Any) -> float:
    import numpy as np

    a = np.sort(a)
    b = np.sort(b)
    if len(a) == 0 or len(b) == 0:
        return 1.0 if len(a) != len(b) else 0.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _tvd(a: pd.Series, b: pd.Series) -> float:
    fa = a.astype("string").value_counts(normalize=True, dropna=True)
    fb = b.astype("string").value_counts(normalize=True, dropna=True)
    joined = fa.to_frame("a").join(fb.to_frame("b"), how="outer").fillna(0.0)
    return float(0.5 * (joined["a"] - joined["b"]).abs().sum())


def diff_frames(
    old: pd.DataFrame, new: pd.DataFrame, *, old_name: str = "old", new_name: str = "new"
) -> DatasetDiff:
    """Compare two tables column by column (vectorised; no row alignment is assumed).

    Example::

        d = diff_frames(v1_df, v2_df)
        [c.column for c in d.columns if c.changed]
    """
    import pandas as pd

    old_cols, new_cols = list(old.columns), list(new.columns)
    changes = []
    for col in [c for c in old_cols if c in set(new_cols)]:
        a, b = old[col], new[col]
        numeric = pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b)
        numeric = numeric and not (pd.api.types.is_bool_dtype(a) or pd.api.types.is_bool_dtype(b))
        dates = pd.api.types.is_datetime64_any_dtype(a) and pd.api.types.is_datetime64_any_dtype(b)
        if numeric or dates:
            av = a.dropna().to_numpy(dtype="int64" if dates else "float64")
            bv = b.dropna().to_numpy(dtype="int64" if dates else "float64")
            stat, method = _ks(av, bv), "ks"
        else:
            stat, method = _tvd(a, b), "tvd"
        changes.append(ColumnChange(
            column=str(col), old_dtype=str(a.dtype), new_dtype=str(b.dtype), method=method,
            statistic=round(stat, 12),
            old_missing_rate=float(a.isna().mean()) if len(a) else 0.0,
            new_missing_rate=float(b.isna().mean()) if len(b) else 0.0,
            old_mean=float(a.mean()) if numeric and a.notna().any() else None,
            new_mean=float(b.mean()) if numeric and b.notna().any() else None,
        ))  # fmt: skip
    return DatasetDiff(
        old=old_name, new=new_name, old_rows=len(old), new_rows=len(new),
        added_columns=tuple(str(c) for c in new_cols if c not in set(old_cols)),
        removed_columns=tuple(str(c) for c in old_cols if c not in set(new_cols)),
        columns=tuple(changes),
    )  # fmt: skip
