"""Runs as tables: search results as a DataFrame and the side-by-side comparison of runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import Run

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


def runs_to_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*`` and ``tags.*`` columns."""
    import pandas as pd

    n = len(runs)
    cols: dict[str, list[Any]] = {
        "run_id": [r.run_id for r in runs],
        "experiment_id": [r.experiment_id for r in runs],
        "run_name": [r.name for r in runs],
        "status": [str(r.status) for r in runs],
        "start_time": [r.start_time for r in runs],
        "end_time": [r.end_time for r in runs],
        "user": [r.user for r in runs],
        "parent_run_id": [r.parent_run_id for r in runs],
        "git_commit": [r.git_commit for r in runs],
    }
    extra: dict[str, list[Any]] = {}
    for prefix, attr, missing in (
        ("metrics", "metrics", math.nan),
        ("params", "params", None),
        ("tags", "tags", None),
    ):
        keys: dict[str, None] = {}
        for r in runs:
            for k in getattr(r, attr):
                keys[k] = None
        for k in sorted(keys):
            extra[f"{prefix}.{k}"] = [getattr(r, attr).get(k, missing) for r in runs]
    cols.update(extra)
    frame = pd.DataFrame(cols, index=pd.RangeIndex(n))
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="ms", utc=True)
    frame["end_time"] = pd.to_datetime(frame["end_time"], unit="ms", utc=True)
    return frame


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
