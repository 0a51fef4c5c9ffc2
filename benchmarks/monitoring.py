"""Drift detection: shipyard's drift report against Evidently's and NannyML's defaults and
plain scipy tests, on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/monitoring.py                       # full run, 3 rounds
    .venv/bin/python benchmarks/monitoring.py --rows 5000 --rounds 1  # quick check
    .venv/bin/python benchmarks/monitoring.py --write-docs          # also update docs/benchmarks.md

Data (seeded, made once per run in a temporary folder and saved as Parquet, which every
side reads): 100,000 reference and 100,000 current rows (``--rows``) of 20 numeric
columns (``num_0``..``num_19``: normal, log-normal, exponential, uniform and gamma) and 5
categorical ones (``cat_0``..``cat_4``: strings, 5, 6, 3, 12 and 40 categories), the two
frames drawn independently. Six columns drift in the current frame, each in a known way
(sigma: the column's standard deviation):

num_0  mean shift of +0.1 sigma
num_1  scale change: spread x1.15 around the mean
num_2  tail change: 3% of the values replaced by mean + 3 sigma * Student-t(2)
num_3  subtle mean shift of +0.05 sigma
cat_0  one category's share 20% -> 26% (the others scaled down to make room)
cat_1  a new category at 2% (the others scaled down to make room)

The other 19 columns are drawn from the same distribution in both frames: any of them
flagged is a false alarm. The whole comparison is repeated with only the first 1,000
current rows (``--small-rows``) against the same reference.

Sides, each a fresh process (``_monitoring_worker.py``) per round and size:

shipyard   ``DriftDetector().fit(reference).test(current).drifted_columns``
           (``shipyard.monitoring.drift``, its defaults)
evidently  ``Report([DataDriftPreset()]).run(current, reference)``, Evidently 0.7's
           default drift preset, in ``.bench-venv/evidently`` (it does not import with
           pandas 3); a column is drifted when its ``ValueDrift`` score crosses the
           threshold of the method the preset picked (checked against the preset's own
           ``DriftedColumnsCount``)
nannyml    ``UnivariateDriftCalculator(column_names=all).fit(reference).calculate(current)``
           with its defaults (Jensen-Shannon for both kinds of column, ~10 chunks, a
           3-sigma threshold from the reference chunks), in ``.bench-venv/nannyml``; a
           column is drifted when any analysis chunk alerts
scipy      the floor: ``ks_2samp`` per numeric column, ``chi2_contingency`` per
           categorical one, plus a PSI over 10 reference-quantile bins per column;
           flagged at p < 0.05 with no correction

Each worker imports pandas and its tool, reads the two Parquet files, then times only
the drift computation (from the two frames to the list of drifted columns). Also
reported: the whole process's wall time (spawn to exit, measured here) and its peak RSS
(``ru_maxrss``). ``--rounds`` rounds (3 by default), the side order reversed every other
round; figures are medians over the rounds.

Targets: shipyard's compute at least 10x faster than Evidently's default and within 1.2x
of the scipy floor; all 6 drifted columns found with no false alarm at 100,000 rows; no
false alarm at 1,000 rows.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import Target, parse_result, replace_section, verdict
from tracking import log, machine_info, package_version

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
WORKER = HERE / "_monitoring_worker.py"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- monitoring:begin -->"
END = "<!-- monitoring:end -->"

# Each anchor tool in its own venv: its pins clash with ours (Evidently 0.7 does not
# import with pandas 3; NannyML pulls LightGBM, FLAML, ... and imports statsmodels,
# which it does not declare).
VENVS: dict[str, tuple[str, list[str]]] = {
    "evidently": ("evidently", ["evidently==0.7.23", "pandas==2.3.3", "pyarrow"]),
    "nannyml": ("nannyml", ["nannyml==0.13.1", "statsmodels==0.15.0", "pyarrow"]),
}
SIDES = ("shipyard", "shipyard-bh", "evidently", "nannyml", "scipy")
LABELS = {
    "shipyard": "shipyard `DriftDetector().fit(ref).test(cur)`",
    "shipyard-bh": "shipyard `DriftDetector(correction=\"bh\")` (Benjamini-Hochberg)",
    "evidently": "Evidently `Report([DataDriftPreset()])`",
    "nannyml": "NannyML `UnivariateDriftCalculator` (defaults)",
    "scipy": "scipy floor: KS / chi-square + PSI, p < 0.05",
}
SHORT = {"shipyard": "shipyard", "shipyard-bh": "shipyard, BH", "evidently": "Evidently",
         "nannyml": "NannyML", "scipy": "scipy floor"}  # fmt: skip

SEED = 20260413
ROWS = 100_000
SMALL_ROWS = 1_000
NUMERIC = 20
CATEGORICAL = 5
WORKER_TIMEOUT = 1800
VS_EVIDENTLY = 10.0  # Evidently's compute / shipyard's, at least
VS_FLOOR = 1.2  # shipyard's compute / the floor's, at most

DRIFTED = ("num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1")
DRIFT_NOTES = {
    "num_0": "mean +0.1 sigma",
    "num_1": "spread x1.15",
    "num_2": "3% replaced by mean + 3 sigma * t(2)",
    "num_3": "mean +0.05 sigma",
    "cat_0": "one category 20% -> 26%",
    "cat_1": "new category at 2%",
}
# (kind, a, b) of num_i; the first four (the drifted ones) are normal.
NUMERIC_SPECS = [
    ("normal", 50.0, 10.0), ("normal", 0.0, 3.0), ("normal", 100.0, 15.0),
    ("normal", -5.0, 2.0), ("lognormal", 1.0, 0.5), ("exponential", 2.0, 0.0),
    ("uniform", 0.0, 10.0), ("gamma", 2.0, 3.0), ("normal", 10.0, 1.0),
    ("lognormal", 0.0, 1.0), ("exponential", 0.5, 0.0), ("uniform", -1.0, 1.0),
    ("gamma", 5.0, 1.0), ("normal", 1000.0, 250.0), ("lognormal", 3.0, 0.25),
    ("exponential", 10.0, 0.0), ("uniform", 100.0, 200.0), ("gamma", 0.8, 2.0),
    ("normal", 0.0, 0.01), ("lognormal", 2.0, 0.75),
]  # fmt: skip
CATEGORY_COUNTS = (5, 6, 3, 12, 40)
CAT_0_SHARES = (0.20, 0.30, 0.25, 0.15, 0.10)
CAT_0_NEW = 0.26
CAT_1_NEW = 0.02


# -- the data -------------------------------------------------------------------------------


def _numeric(rng: Any, spec: tuple[str, float, float], n: int) -> Any:
    kind, a, b = spec
    if kind == "normal":
        return rng.normal(a, b, n)
    if kind == "lognormal":
        return rng.lognormal(a, b, n)
    if kind == "exponential":
        return rng.exponential(a, n)
    if kind == "uniform":
        return rng.uniform(a, b, n)
    return rng.gamma(a, b, n)


def _shares(k: int) -> list[float]:
    """Zipf-like shares of ``k`` categories."""
    weights = [1.0 / (i + 1) ** 0.8 for i in range(k)]
    total = sum(weights)
    return [w / total for w in weights]


def category_shares(j: int, drifted: bool) -> tuple[list[str], list[float]]:
    """(labels, shares) of ``cat_j``, as in the reference or, drifted, the current frame."""
    k = CATEGORY_COUNTS[j]
    labels = [f"c{j}_{i:02d}" for i in range(k)]
    shares = list(CAT_0_SHARES) if j == 0 else _shares(k)
    if drifted and j == 0:
        rest = (1 - CAT_0_NEW) / (1 - shares[0])
        shares = [CAT_0_NEW] + [s * rest for s in shares[1:]]
    if drifted and j == 1:
        labels.append(f"c{j}_new")
        shares = [s * (1 - CAT_1_NEW) for s in shares] + [CAT_1_NEW]
    return labels, shares


def make_frame(rng: Any, n: int, drifted: bool) -> Any:
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for i, spec in enumerate(NUMERIC_SPECS[:NUMERIC]):
        values = _numeric(rng, spec, n)
        if drifted and i < 4:
            _, mean, sigma = spec  # the drifted columns are normal(mean, sigma)
            if i == 0:
                values = values + 0.1 * sigma
            elif i == 1:
                values = mean + 1.15 * (values - mean)
            elif i == 2:
                hit = rng.random(n) < 0.03
                values[hit] = mean + 3 * sigma * rng.standard_t(2, int(hit.sum()))
            else:
                values = values + 0.05 * sigma
        data[f"num_{i}"] = values
    for j in range(CATEGORICAL):
        labels, shares = category_shares(j, drifted)
        codes = rng.choice(len(labels), size=n, p=np.asarray(shares) / sum(shares))
        data[f"cat_{j}"] = np.asarray(labels, dtype=object)[codes]
    return pd.DataFrame(data)


def write_data(folder: Path, rows: int, small: int) -> dict[int, tuple[Path, Path]]:
    """{current rows: (reference file, current file)}: Parquet files every side reads."""
    import numpy as np

    ref_seq, cur_seq = np.random.SeedSequence(SEED).spawn(2)
    reference = make_frame(np.random.default_rng(ref_seq), rows, drifted=False)
    current = make_frame(np.random.default_rng(cur_seq), rows, drifted=True)
    ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
    reference.to_parquet(ref_path, index=False)
    current.to_parquet(cur_path, index=False)
    files = {rows: (ref_path, cur_path)}
    if 0 < small < rows:
        small_path = folder / f"current-{small}.parquet"
        current.head(small).to_parquet(small_path, index=False)
        files[small] = (ref_path, small_path)
    return files


# -- the venvs --------------------------------------------------------------------------------


def ensure_venv(name: str) -> tuple[Path | None, str]:
    """The python of ``.bench-venv/<name>`` with its pins (made or fixed on first use), or
    (None, why it cannot run)."""
    _, spec = VENVS[name]
    venv = ROOT / ".bench-venv" / name
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating {venv} ({' '.join(spec)}; first run only)...")
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
        if made.returncode != 0:
            return None, "could not create its virtualenv"
    wanted = {s.split("==")[0]: s.split("==")[1] for s in spec if "==" in s}
    have = {}
    for pkg in wanted:
        try:
            have[pkg] = package_version(python, pkg)
        except subprocess.CalledProcessError:
            have[pkg] = ""
    if have != wanted:
        log(f"installing {' '.join(spec)} into {venv}...")
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *spec],
            capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["?"]
            return None, f"pip could not install {' '.join(spec)} ({tail[0][:200]})"
    return python, ""


# -- running ------------------------------------------------------------------------------------


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHIPYARD_", "PYTHONPATH"))}  # fmt: skip
    env.update(DO_NOT_TRACK="1", NML_DISABLE_USAGE_LOGGING="1")  # no telemetry while timed
    return env


def run_side(python: Path, side: str, ref: Path, cur: Path, cwd: Path) -> dict[str, Any]:
    argv = [str(python), str(WORKER), side, "--reference", str(ref), "--current", str(cur)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=environ(), capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1][:300] if lines else f"exited with {proc.returncode}")
    result = parse_result(proc.stdout)
    result["wall_s"] = wall
    return result


def run(
    pythons: dict[str, Path], files: dict[int, tuple[Path, Path]], rounds: int, tmp: Path
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    sides = list(pythons)
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for rows, (ref, cur) in files.items():
        results[rows] = {s: [] for s in sides}
        for r in range(rounds):
            log(f"{rows:,} current rows, round {r + 1}/{rounds}")
            for side in sides if r % 2 == 0 else list(reversed(sides)):
                try:
                    result = run_side(pythons[side], side, ref, cur, tmp)
                except (subprocess.TimeoutExpired, RuntimeError) as exc:
                    result = {"error": str(exc)}
                    log(f"  {side:10s} FAILED: {result['error']}")
                else:
                    found, false = score(result["drifted"])
                    check = result.get("details", {}).get("preset_count")
                    if check is not None and int(check) != len(result["drifted"]):
                        log(
                            f"  {side}: its DriftedColumnsCount says {check:g}, the ValueDrift "
                            f"scores {len(result['drifted'])}"
                        )
                    log(f"  {side:10s} compute {result['compute_s']:8.3f} s, process "
                        f"{result['wall_s']:6.2f} s (imports {result['import_s']:.2f} s, "
                        f"read {result['load_s']:.2f} s), peak RSS "
                        f"{result['peak_rss_mb']:6.0f} MB, found {len(found)}/6, "
                        f"false alarms {len(false)}"
                        + (f" ({', '.join(false)})" if false else ""))  # fmt: skip
                results[rows][side].append(result)
    return results


# -- summary ------------------------------------------------------------------------------------


def score(drifted: list[str]) -> tuple[list[str], list[str]]:
    """(drifted columns found, false alarms) of a list of flagged columns."""
    found = [c for c in DRIFTED if c in drifted]
    false = [c for c in drifted if c not in DRIFTED]
    return found, false


@dataclass
class Row:
    side: str
    rows: int
    error: str
    compute_s: float = float("nan")
    wall_s: float = float("nan")
    import_s: float = float("nan")
    load_s: float = float("nan")
    rss_mb: float = float("nan")
    found: tuple[str, ...] = ()
    false: tuple[str, ...] = ()
    varied: bool = False  # the flagged columns differed between rounds
    details: dict[str, Any] | None = None
    samples: tuple[float, ...] = ()


def summarize(results: dict[int, dict[str, list[dict[str, Any]]]]) -> list[Row]:
    rows = []
    for n, by_side in results.items():
        for side, rounds in by_side.items():
            good = [r for r in rounds if "error" not in r]
            errors = [r["error"] for r in rounds if "error" in r]
            if not good:
                rows.append(Row(side, n, errors[0] if errors else "did not run"))
                continue
            found, false = score(good[0]["drifted"])
            rows.append(Row(
                side, n, "",
                compute_s=statistics.median(r["compute_s"] for r in good),
                wall_s=statistics.median(r["wall_s"] for r in good),
                import_s=statistics.median(r["import_s"] for r in good),
                load_s=statistics.median(r["load_s"] for r in good),
                rss_mb=statistics.median(r["peak_rss_mb"] for r in good),
                found=tuple(found), false=tuple(false),
                varied=any(sorted(r["drifted"]) != sorted(good[0]["drifted"]) for r in good),
                details=good[0].get("details"),
                samples=tuple(r["compute_s"] for r in good),
            ))  # fmt: skip
    return rows


def _row(rows: list[Row], side: str, n: int) -> Row | None:
    return next((r for r in rows if r.side == side and r.rows == n and not r.error), None)


def targets(rows: list[Row], sizes: list[int]) -> list[Target]:
    out = []
    for n in sizes:
        ours, theirs, base = (_row(rows, s, n) for s in ("shipyard", "evidently", "scipy"))
        label = f"{n:,} rows: Evidently's compute / shipyard's >= {VS_EVIDENTLY:g}x"
        if ours is None or theirs is None:
            out.append(Target(label, "n/a (a side did not run)", None))
        else:
            ratio = theirs.compute_s / ours.compute_s
            out.append(Target(label, f"**{ratio:.1f}x** ({secs(theirs.compute_s)} / "
                              f"{secs(ours.compute_s)})", ratio >= VS_EVIDENTLY))  # fmt: skip
        label = f"{n:,} rows: shipyard's compute / the scipy floor's <= {VS_FLOOR:g}x"
        if ours is None or base is None:
            out.append(Target(label, "n/a (a side did not run)", None))
        else:
            ratio = ours.compute_s / base.compute_s
            out.append(Target(label, f"**{ratio:.2f}x** ({secs(ours.compute_s)} / "
                              f"{secs(base.compute_s)})", ratio <= VS_FLOOR))  # fmt: skip
    big, small = sizes[0], sizes[-1]
    ours = _row(rows, "shipyard", big)
    label = f"{big:,} rows: shipyard finds all 6 drifted columns, no false alarm"
    if ours is None:
        out.append(Target(label, "n/a (shipyard did not run)", None))
    else:
        missed = [c for c in DRIFTED if c not in ours.found]
        shown = f"**{len(ours.found)}/6**, {len(ours.false)} false alarm(s)" + (
            f"; missed {', '.join(missed)}" if missed else "") + (
            f"; false: {', '.join(ours.false)}" if ours.false else "")  # fmt: skip
        out.append(Target(label, shown, not missed and not ours.false))
    if small != big:
        ours = _row(rows, "shipyard", small)
        label = f"{small:,} rows: shipyard raises no false alarm"
        if ours is None:
            out.append(Target(label, "n/a (shipyard did not run)", None))
        else:
            shown = f"**{len(ours.false)}** false alarm(s)" + (
                f" ({', '.join(ours.false)})" if ours.false else ""
            )
            out.append(Target(label, shown, not ours.false))
    return out


# -- output -------------------------------------------------------------------------------------


def secs(s: float) -> str:
    if math.isnan(s):
        return "n/a"
    return f"{s * 1000:,.1f} ms" if s < 1 else f"{s:,.2f} s"


def ratio_cell(rows: list[Row], row: Row) -> str:
    """Compute time against shipyard's: theirs / ours, and for the floor ours / floor."""
    ours = _row(rows, "shipyard", row.rows)
    if ours is None or row.error or row.side == "shipyard":
        return "1.00x" if row.side == "shipyard" and not row.error else "n/a"
    if row.side == "scipy":
        return f"shipyard / floor = {ours.compute_s / row.compute_s:.2f}x"
    return f"{row.compute_s / ours.compute_s:,.1f}x shipyard's"


def found_cell(row: Row) -> str:
    missed = [c for c in DRIFTED if c not in row.found]
    text = f"{len(row.found)}/6" + (f" (missed {', '.join(missed)})" if missed else "")
    return text + (" (varied between rounds)" if row.varied else "")


def false_cell(row: Row) -> str:
    return f"{len(row.false)}" + (f" ({', '.join(row.false)})" if row.false else "")


def table(rows: list[Row], n: int) -> list[str]:
    lines = [
        "| side | compute (median) | vs shipyard | whole process | of which imports | "
        "peak RSS | drifted found | false alarms |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in (r for r in rows if r.rows == n):
        if r.error:
            lines.append(f"| {LABELS[r.side]} | could not run: {r.error} | | | | | | |")
            continue
        lines.append(
            f"| {LABELS[r.side]} | {secs(r.compute_s)} | {ratio_cell(rows, r)} | "
            f"{secs(r.wall_s)} | {secs(r.import_s)} | {r.rss_mb:,.0f} MB | {found_cell(r)} | "
            f"{false_cell(r)} |"
        )
    return lines


def print_summary(rows: list[Row], tgts: list[Target], sizes: list[int]) -> None:
    for n in sizes:
        print(f"\n### {n:,} current rows vs {sizes[0]:,} reference rows\n")
        print("\n".join(table(rows, n)))
    print("\n| target | measured | met |\n|---|---|:-:|")
    for t in tgts:
        print(f"| {t.label} | {t.measured} | {verdict(t.met)} |")
    print()
    for t in tgts:
        status = {True: "met", False: "MISSED", None: "not judged"}[t.met]
        print(f"{t.label}: {t.measured.replace('**', '')}  {status}")
    floor = _row(rows, "scipy", sizes[0])
    if floor and floor.details:
        print("\n" + floor_note(floor))
    for side in ("shipyard", "evidently", "nannyml"):
        for n in sizes:
            if r := _row(rows, side, n):
                print(f"{SHORT[side]} at {n:,} rows: {side_note(side, r)}")


def floor_note(floor: Row) -> str:
    assert floor.details is not None
    cols = floor.details["columns"]
    parts = [f"{c} p={cols[c]['p']:.1e} PSI={cols[c]['psi']:.4f}" for c in DRIFTED]
    psi_hits = [c for c, v in cols.items() if v["psi"] >= 0.1]
    return (f"scipy floor at {floor.rows:,} rows, the drifted columns: " + "; ".join(parts)
            + f". Columns with PSI >= 0.1: {', '.join(psi_hits) or 'none'}.")  # fmt: skip


def render(
    rows: list[Row],
    tgts: list[Target],
    sizes: list[int],
    *,
    rounds: int,
    info: list[tuple[str, str]],
    command: str,
) -> str:
    lines = [
        BEGIN,
        "## Drift detection: shipyard vs Evidently, NannyML and plain scipy tests",
        "",
        f"Produced by `{command}`. {sizes[0]:,} reference and {sizes[0]:,} current rows "
        f"(seeded), {NUMERIC} numeric and {CATEGORICAL} categorical columns, 6 of them "
        "drifted in known ways; then the same with only the first "
        f"{sizes[-1]:,} current rows. Every side runs in a fresh process per round and "
        f"size; {rounds} round(s), the side order reversed every other round; figures are "
        "medians over the rounds. *Compute* is the drift computation alone (from the two "
        "frames in memory to the list of drifted columns); *whole process* is spawn to "
        "exit (interpreter start, imports, reading the Parquet files, compute).",
        "",
    ]
    for n in sizes:
        lines += [f"### {n:,} current rows", "", *table(rows, n), ""]
    lines += ["| target | measured | met |", "|---|---|:-:|"]
    lines += [f"| {t.label} | {t.measured} | {verdict(t.met)} |" for t in tgts]
    lines += ["", "The drifted columns (sigma: the column's standard deviation):", ""]
    lines += [f"- `{c}`: {DRIFT_NOTES[c]}" for c in DRIFTED]
    floor = _row(rows, "scipy", sizes[0])
    if floor and floor.details:
        lines += ["", floor_note(floor)]
    for side in ("shipyard", "evidently", "nannyml"):
        notes = {n: side_note(side, r) for n in sizes if (r := _row(rows, side, n))}
        if len(set(notes.values())) == 1:
            lines += ["", f"{SHORT[side]}, at every size: {next(iter(notes.values()))}"]
        else:
            lines += ["", *[f"{SHORT[side]} at {n:,} rows: {note}" for n, note in notes.items()]]
    lines += [
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How it is measured:",
        "",
        f"- Data: reference and current frames drawn independently (seed {SEED}); numeric "
        "columns normal, log-normal, exponential, uniform and gamma (the four drifted ones "
        "normal), categorical columns strings with 5, 6, 3, 12 and 40 categories; no "
        "missing values. Saved once as Parquet (pyarrow) in a temporary folder that every "
        "side reads with `pandas.read_parquet`.",
        "- shipyard: `DriftDetector().fit(reference).test(current).drifted_columns`, its "
        "defaults. Evidently: `Report([DataDriftPreset()]).run(current, reference)`, its "
        "defaults (the preset picks each column's method from its type and the reference "
        "size); a column counts as drifted when its `ValueDrift` score crosses the "
        "threshold of that method (a distance at or above it, a p-value below it), which "
        "must agree with the preset's `DriftedColumnsCount`. NannyML: "
        "`UnivariateDriftCalculator(column_names=<all 25>).fit(reference).calculate(current)`, "
        "its defaults (Jensen-Shannon distance for both kinds of column, the default "
        "chunker's ~10 chunks, thresholds from the reference chunks); a column counts as "
        "drifted when any analysis chunk alerts. scipy floor: `ks_2samp` per numeric "
        "column, `chi2_contingency` of the 2 x K table of category counts per categorical "
        "column, and a PSI over 10 reference-quantile bins (categories) per column, all "
        "computed; a column is flagged at p < 0.05 with no correction for 25 tests.",
        "- Evidently and NannyML run in their own virtualenvs (`.bench-venv/evidently`, "
        "`.bench-venv/nannyml`, made on first use): Evidently 0.7 does not import with "
        "pandas 3, and NannyML brings LightGBM, FLAML and friends. shipyard and the floor "
        "run in the project's venv. Telemetry is off on every side (`DO_NOT_TRACK`, "
        "`NML_DISABLE_USAGE_LOGGING`).",
        "- Peak RSS is the worker's `resource.getrusage(RUSAGE_SELF).ru_maxrss` at the end: "
        "the interpreter, the imports, both frames and the computation.",
        END,
    ]
    return "\n".join(lines) + "\n"


def side_note(side: str, row: Row) -> str:
    details = row.details or {}
    if side.startswith("shipyard"):
        methods = ", ".join(f"{m} x{k}" for m, k in details.get("methods", {}).items())
        cols = details.get("columns", {})
        shown = []
        for c in (*DRIFTED, *row.false):
            v = cols.get(c, {})
            if v.get("adjusted_p") is not None:
                shown.append(f"{c} {v['method']} adjusted p={v['adjusted_p']:.1e}")
            elif v.get("distance") is not None:
                shown.append(f"{c} {v['method']} distance={v['distance']:.3f}")
        return (
            f"methods {methods}; correction {details.get('correction')} at alpha "
            f"{details.get('alpha')}; " + "; ".join(shown) + "."
        )
    if side == "evidently":
        methods = ", ".join(f"{m} x{k}" for m, k in details.get("methods", {}).items())
        count = details.get("preset_count")
        agree = (
            "the preset's `DriftedColumnsCount` agrees with the columns read off its scores"
            if count is not None and int(count) == len(row.found) + len(row.false)
            else f"**the preset's `DriftedColumnsCount` says {count}**, the scores "
            f"{len(row.found) + len(row.false)}"
        )
        return f"methods the preset picked: {methods}; {agree}."
    return (
        f"{details.get('chunks')} analysis chunk(s), methods "
        f"{', '.join(details.get('methods', []))}; {len(details.get('continuous', []))} "
        f"continuous and {len(details.get('categorical', []))} categorical columns."
    )


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--rows", type=int, default=ROWS, help="reference and current rows")
    parser.add_argument("--small-rows", type=int, default=SMALL_ROWS,
                        help="current rows of the second comparison (0: none)")  # fmt: skip
    parser.add_argument("--sides", default=",".join(SIDES),
                        help=f"comma-separated subset of {','.join(SIDES)}")  # fmt: skip
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file --write-docs updates")
    parser.add_argument("--tmp", type=Path, help="where the temporary folder goes")
    args = parser.parse_args(argv)

    wanted = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SIDES]
    if unknown:
        parser.error(f"unknown side(s): {', '.join(unknown)}")
    pythons: dict[str, Path] = {}
    problems: dict[str, str] = {}
    for side in (s for s in SIDES if s in wanted):
        if side in VENVS:
            python, problem = ensure_venv(side)
            if python is None:
                problems[side] = problem
                log(f"{side} cannot run: {problem}")
                continue
            pythons[side] = python
        else:
            pythons[side] = Path(sys.executable)
    versions = {s: package_version(p, VENVS[s][0]) for s, p in pythons.items() if s in VENVS}
    log(
        f"shipyard and scipy with {sys.executable}; "
        + "; ".join(f"{s} {v} ({pythons[s]})" for s, v in versions.items())
        + f"; {args.rounds} round(s), {args.rows:,} rows"
        + (f" and {args.small_rows:,} current rows" if 0 < args.small_rows < args.rows else "")
    )

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-monitoring-", dir=args.tmp))
    try:
        files = write_data(tmp, args.rows, args.small_rows)
        log(
            f"data written in {time.perf_counter() - started:.1f} s "
            f"({sum(p.stat().st_size for p in tmp.iterdir()) / 1e6:.1f} MB of Parquet)"
        )
        results = run(pythons, files, args.rounds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")

    sizes = list(files)
    for side, problem in problems.items():
        for n in sizes:
            results[n][side] = [{"error": problem}]
    rows = summarize(results)
    rows.sort(key=lambda r: (sizes.index(r.rows), SIDES.index(r.side)))
    tgts = targets(rows, sizes)
    print_summary(rows, tgts, sizes)

    if args.write_docs:
        info = [(k, v) for k, v in machine_info("", load_before) if k != "mlflow"]
        ours = Path(sys.executable)
        libs = ", ".join(f"{p} {package_version(ours, p)}"
                         for p in ("pandas", "numpy", "scipy", "pyarrow"))  # fmt: skip
        info.insert(-1, ("libraries (ours)", libs))
        for side, python in pythons.items():
            if side in VENVS:
                pins = ", ".join(
                    f"{p} {package_version(python, p)}"
                    for p in (VENVS[side][0], "pandas", "numpy", "scipy")
                )
                info.insert(-1, (side, f"{pins} (its own venv)"))
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
            text=True, check=False,
        ).stdout.splitlines()  # fmt: skip
        changed = [line[3:] for line in changed if line.strip()]
        if changed:
            info.insert(-1, ("uncommitted in src/ at run time", ", ".join(changed)))
        command = "python benchmarks/monitoring.py" + "".join(
            f" {flag} {value}" for flag, value, default in (
                ("--rounds", args.rounds, 3), ("--rows", args.rows, ROWS),
                ("--small-rows", args.small_rows, SMALL_ROWS)) if value != default
        ) + " --write-docs"  # fmt: skip
        replace_section(
            args.doc,
            BEGIN,
            END,
            render(
                rows, tgts, sizes, rounds=args.rounds, info=info, command=".venv/bin/" + command
            ),
        )
        log(f"wrote {args.doc}")
    return 0 if all(t.met is not False for t in tgts) else 1


if __name__ == "__main__":
    sys.exit(main())
