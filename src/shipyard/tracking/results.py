"""Runs as tables: search results as a DataFrame and the side-by-side comparison of runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import Run
from shipyard.store.tracking_store import RunTable

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "user",
    "parent_run_id",
    "git_commit",
)


def table_to_frame(table: RunTable) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*`` and ``tags.*`` columns."""
    import pandas as pd

    a = table.attributes
    cols: dict[str, Any] = {
        "run_id": a["run_id"],
        "experiment_id": a["experiment_id"],
        "run_name": a["name"],
        "status": a["status"],
        "start_time": pd.to_datetime(
            pd.Series(a["start_time"], dtype="Int64"), unit="ms", utc=True
        ),
        "end_time": pd.to_datetime(pd.Series(a["end_time"], dtype="Int64"), unit="ms", utc=True),
        "user": [u or "" for u in a["user"]],
        "parent_run_id": a["parent_run_id"],
        "git_commit": a["git_commit"],
    }
    for prefix, group in (
        ("metrics", table.metrics),
        ("params", table.params),
        ("tags", table.tags),
    ):
        for key, values in group.items():
            cols[f"{prefix}.{key}"] = values
    return pd.DataFrame(cols, index=pd.RangeIndex(len(a["run_id"])))


def compare_rows(runs: Sequence[Run]) -> list[tuple[str, list[Any], bool]]:
    """``(field, [value per run], differs)`` for attributes, params and latest metrics."""
    rows: list[tuple[str, list[Any], bool]] = []

    def add(name: str, values: list[Any]) -> None:
        def norm(v: Any) -> Any:
            return "nan" if isinstance(v, float) and math.isnan(v) else v

        differs = len({repr(norm(v)) for v in values}) > 1
        rows.append((name, values, differs))

    add("run_name", [r.name for r in runs])
    add("status", [str(r.status) for r in runs])
    add("duration_s", [r.duration_s for r in runs])
    add("git_commit", [r.git_commit for r in runs])
    for prefix, attr in (("params", "params"), ("metrics", "metrics"), ("tags", "tags")):
        keys = sorted({k for r in runs for k in getattr(r, attr)})
        for k in keys:
            add(f"{prefix}.{k}", [getattr(r, attr).get(k) for r in runs])
    return rows


def compare_frame(runs: Sequence[Run], *, only_differences: bool = False) -> pd.DataFrame:
    """A table with one row per field and one column per run, plus a ``differs`` column."""
    import pandas as pd

    rows = compare_rows(runs)
    if only_differences:
        rows = [r for r in rows if r[2]]
    columns = [f"{r.name} ({r.run_id[:8]})" for r in runs]
    frame = pd.DataFrame(
        [values for _, values, _ in rows],
        columns=columns,
        index=pd.Index([name for name, _, _ in rows], name="field"),
    )
    frame["differs"] = [d for _, _, d in rows]
    return frame
