"""One side of ``benchmarks/monitoring.py``: a drift report on two Parquet files.

Runs in whichever venv has the side's tool (the project's for ``shipyard`` and
``scipy``, ``.bench-venv/evidently`` and ``.bench-venv/nannyml`` for the others), so
only the standard library is imported at the top; pandas and the tool are imported
inside, on the clock that ``import_s`` reports::

    python benchmarks/_monitoring_worker.py SIDE --reference R.parquet --current C.parquet

Prints ``@@RESULT {json}`` last: the seconds spent importing, reading the two files
and computing the drift report (from the reference and current frames to the list of
drifted column names, nothing else on that clock), the columns flagged, per-side
details and the process's peak RSS (``getrusage``'s ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from _common import emit

SIDES = ("shipyard", "shipyard-bh", "evidently", "nannyml", "scipy")

# Evidently's drift scores: a distance drifts at or above its threshold, a p-value below.
EVIDENTLY_DISTANCES = {
    "Wasserstein distance (normed)",
    "Jensen-Shannon distance",
    "PSI",
    "Hellinger distance",
    "Kullback-Leibler divergence",
    "Energy-distance",
}
PSI_BINS = 10
PSI_EPS = 1e-4  # floor of an empty bin's share, so the log is finite
P_VALUE = 0.05


# -- the sides: each takes (reference, current) and returns (drifted columns, details) ----


def prepare(side: str) -> Any:
    """Import the side's tool; return what ``compute`` needs."""
    if side.startswith("shipyard"):
        from shipyard.monitoring.drift import DriftDetector

        return DriftDetector
    if side == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset

        return Report, DataDriftPreset
    if side == "nannyml":
        import nannyml

        return nannyml
    import numpy as np
    from scipy import stats

    return np, stats


def compute(side: str, tool: Any, ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
    if side.startswith("shipyard"):  # shipyard-bh: Benjamini-Hochberg instead of the default
        detector = tool(correction="bh") if side == "shipyard-bh" else tool()
        result = detector.fit(ref).test(cur)
        return [str(c) for c in result.drifted_columns], {"_result": result}
    if side == "evidently":
        report_cls, preset_cls = tool
        snapshot = report_cls([preset_cls()]).run(cur, ref)  # (current, reference)
        return evidently_drifted(snapshot.dict())
    if side == "nannyml":
        columns = [str(c) for c in ref.columns]
        calc = tool.UnivariateDriftCalculator(column_names=columns).fit(ref)
        table = calc.calculate(cur).filter(period="analysis").to_df()
        alerts = table.xs("alert", axis=1, level=2)
        drifted = [c for c in columns if bool(alerts[c].to_numpy().any())]
        details = {
            "chunks": len(table),
            "continuous": list(calc.continuous_column_names),
            "categorical": list(calc.categorical_column_names),
            "methods": sorted({m for _, m in alerts.columns}),
        }
        return drifted, details
    return floor(tool, ref, cur)


def shipyard_details(result: Any) -> dict[str, Any]:
    methods: dict[str, int] = {}
    columns: dict[str, dict[str, Any]] = {}
    for c in result.columns:
        methods[f"{c.kind} {c.method}"] = methods.get(f"{c.kind} {c.method}", 0) + 1
        columns[c.column] = {
            "method": c.method,
            "p": c.p_value if c.p_value == c.p_value else None,
            "adjusted_p": c.adjusted_p_value if c.adjusted_p_value == c.adjusted_p_value else None,
            "distance": c.distance if c.distance == c.distance else None,
            "drifted": bool(c.drifted),
        }
    return {"methods": methods, "correction": result.correction, "alpha": result.alpha,
            "columns": columns}  # fmt: skip


def evidently_drifted(report: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The columns the preset's ``ValueDrift`` metrics flag, by each one's own method and
    threshold; checked against the preset's own ``DriftedColumnsCount``."""
    drifted: list[str] = []
    methods: dict[str, int] = {}
    count = None
    for metric in report["metrics"]:
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith("DriftedColumnsCount"):
            count = metric["value"]["count"]
        elif kind.endswith("ValueDrift"):
            method, threshold, score = config["method"], config["threshold"], metric["value"]
            methods[f"{method} (threshold {threshold:g})"] = (
                methods.get(f"{method} (threshold {threshold:g})", 0) + 1
            )
            hit = score >= threshold if method in EVIDENTLY_DISTANCES else score < threshold
            if hit:
                drifted.append(str(config["column"]))
    return drifted, {"methods": methods, "preset_count": count}


def floor(tool: Any, ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
    """Plain scipy: two-sample KS per numeric column, a chi-square test of the 2 x K
    table of category counts per categorical one, and a PSI over 10 reference-quantile
    bins (categories for a categorical column) per column. Flagged: p < 0.05, no
    correction for the 25 tests."""
    np, stats = tool
    drifted: list[str] = []
    per_column: dict[str, dict[str, float]] = {}
    for column in ref.columns:
        r, c = ref[column], cur[column]
        if r.dtype.kind in "fiub":
            a, b = r.to_numpy(dtype=float), c.to_numpy(dtype=float)
            p = float(stats.ks_2samp(a, b).pvalue)
            edges = np.quantile(a, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
            ra = np.bincount(np.searchsorted(edges, a, side="right"), minlength=PSI_BINS)
            ca = np.bincount(np.searchsorted(edges, b, side="right"), minlength=PSI_BINS)
        else:
            rc, cc = r.value_counts(), c.value_counts()
            cats = rc.index.union(cc.index)
            ra = rc.reindex(cats, fill_value=0).to_numpy()
            ca = cc.reindex(cats, fill_value=0).to_numpy()
            p = float(stats.chi2_contingency(np.vstack([ra, ca])).pvalue)
        rs = np.maximum(ra / ra.sum(), PSI_EPS)
        cs = np.maximum(ca / ca.sum(), PSI_EPS)
        psi = float(np.sum((cs - rs) * np.log(cs / rs)))
        per_column[str(column)] = {"p": p, "psi": psi}
        if p < P_VALUE:
            drifted.append(str(column))
    return drifted, {"columns": per_column}


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--current", type=Path, required=True)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    import pandas as pd

    tool = prepare(args.side)
    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = pd.read_parquet(args.reference)
    cur = pd.read_parquet(args.current)
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    drifted, details = compute(args.side, tool, ref, cur)
    compute_s = time.perf_counter() - t0
    if "_result" in details:  # off the clock: what a reader of the table wants to know
        details = shipyard_details(details.pop("_result"))

    emit(
        "RESULT",
        {
            "side": args.side,
            "import_s": import_s,
            "load_s": load_s,
            "compute_s": compute_s,
            "drifted": drifted,
            "details": details,
            "reference_rows": len(ref),
            "current_rows": len(cur),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pandas": pd.__version__,
            "pid": os.getpid(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
