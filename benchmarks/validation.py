"""Data validation benchmark: shipyard vs hand-written pandas vs pandera (vs Great Expectations).

One 1,000,000 x 20 DataFrame (fixed seed): an int64 ``id``, 8 float, 5 int, 2 string
(pandas 3 ``str``) and 2 ``category`` columns, a bool and a datetime. The same checks
on every side: dtype on all 20 columns, not-null on all 20, range on the 8 floats, 5
ints and the datetime, allowed-set on the 4 categorical columns, uniqueness on ``id``
(59 checks). Two frames: clean, and one where 0.1% of the rows of every checkable
column break that column's check (NaN in ``f0``, out-of-range floats, ints and
times, unknown categories, repeated ids; 19 columns x 1,000 bad rows; a bool column
cannot hold a bad value without changing its dtype).

Sides, each producing a failure report with counts per column and check:

- **shipyard**: ``validate(df, expectations)`` (report: column, check, count, 5 example
  rows and values).
- **pandas**: what a careful user writes by hand: per column ``isna``, ``(s < lo) | (s >
  hi)``, ``isin``, ``duplicated(keep=False)``, count and the first 5 index labels.
- **pandera**: ``DataFrameSchema(...).validate(df, lazy=True)``, catching ``SchemaErrors``
  and counting its ``failure_cases`` per column and check; once with the default
  ``inplace=False`` (pandera copies the frame) and once with ``inplace=True``.
- **Great Expectations** (optional): an ephemeral context, a pandas dataframe asset
  and one expectation per check, ``batch.validate(suite)``. It runs in its own virtualenv
  (``.bench-venv/gx``, created on first use) as a worker process that holds the data
  and validates when told, so its repetitions interleave with the others'.

The clock covers validation and the report only: building the data and the schema
objects is outside it. One untimed warm-up per side and frame, then ``--repeat``
repetitions, the side order rotating each repetition; figures are medians. Run::

    .venv/bin/python benchmarks/validation.py               # full (~3 min + GX install)
    .venv/bin/python benchmarks/validation.py --quick       # 100k rows, 3 repetitions
    .venv/bin/python benchmarks/validation.py --no-gx       # skip Great Expectations
    .venv/bin/python benchmarks/validation.py --write-docs  # rewrite the docs section

Exit status 0 when shipyard meets the targets: no slower than pandera and within 1.5x
of hand-written pandas, on both frames.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import replace_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- validation-benchmark:begin -->"
END = "<!-- validation-benchmark:end -->"
GX_VENV = ROOT / ".bench-venv" / "gx"
GX_SPEC = "great-expectations==1.24.1"
SEED = 20261123
BAD_FRACTION = 0.001
LOW, HIGH = -10.0, 10.0
INT_LOW, INT_HIGH = 0, 999
T_LOW, T_HIGH = "2024-01-01", "2025-01-01"
STR_VALUES = ["red", "green", "blue", "cyan", "magenta"]
CAT_VALUES = ["w", "x", "y", "z"]
CAT_DTYPE = pd.CategoricalDtype([*CAT_VALUES, "purple"])  # one category the checks refuse


def log(message: str) -> None:
    print(f"[validation-bench] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Col:
    """One column of the workload and its checks."""

    name: str
    kind: str  # id | float | int | str | cat | bool | time
    low: Any = None
    high: Any = None
    values: tuple[str, ...] | None = None

    @property
    def unique(self) -> bool:
        return self.kind == "id"


SPEC: tuple[Col, ...] = (
    Col("id", "id"),
    *(Col(f"f{i}", "float", LOW, HIGH) for i in range(8)),
    *(Col(f"i{i}", "int", INT_LOW, INT_HIGH) for i in range(5)),
    Col("s0", "str", values=tuple(STR_VALUES)),
    Col("s1", "str", values=tuple(STR_VALUES)),
    Col("k0", "cat", values=tuple(CAT_VALUES)),
    Col("k1", "cat", values=tuple(CAT_VALUES)),
    Col("flag", "bool"),
    Col("ts", "time", T_LOW, T_HIGH),
)
N_CHECKS = (
    2 * len(SPEC)
    + sum(c.low is not None for c in SPEC)
    + sum(c.values is not None for c in SPEC)
    + sum(c.unique for c in SPEC)
)


def make_frames(n: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The clean frame, the bad one, and the bad rows planted per checkable column."""
    rng = np.random.default_rng(SEED)
    data: dict[str, Any] = {"id": rng.permutation(n).astype(np.int64) + 1}
    for i in range(8):
        data[f"f{i}"] = rng.normal(0.0, 2.0, size=n).clip(LOW, HIGH)
    for i in range(5):
        data[f"i{i}"] = rng.integers(INT_LOW, INT_HIGH + 1, size=n)
    for name in ("s0", "s1"):
        data[name] = pd.Series(rng.choice(STR_VALUES, size=n), dtype="str")
    for name in ("k0", "k1"):
        data[name] = pd.Series(rng.choice(CAT_VALUES, size=n)).astype(CAT_DTYPE)
    data["flag"] = rng.random(n) < 0.5
    start = pd.Timestamp(T_LOW).value // 1000
    span = (pd.Timestamp(T_HIGH).value - pd.Timestamp(T_LOW).value) // 1000
    data["ts"] = pd.to_datetime(start + rng.integers(0, span, size=n), unit="us")
    clean = pd.DataFrame(data)

    k = max(2, int(n * BAD_FRACTION)) // 2 * 2
    bad = clean.copy()
    for col in SPEC:
        if col.kind == "bool":
            continue
        rows = rng.choice(n, size=k, replace=False)
        s = bad[col.name]
        if col.kind == "id":
            values = s.to_numpy().copy()
            values[rows[1::2]] = values[rows[0::2]]  # k/2 pairs: k rows share a value
            bad[col.name] = values
        elif col.name == "f0":
            bad.loc[rows, col.name] = np.nan
        elif col.kind == "float":
            bad.loc[rows, col.name] = HIGH * 100
        elif col.kind == "int":
            bad.loc[rows, col.name] = -1
        elif col.kind in ("str", "cat"):
            bad.loc[rows, col.name] = "purple"
        elif col.kind == "time":
            bad.loc[rows, col.name] = pd.Timestamp("2030-06-01")
    return clean, bad, k


# ------------------------------------------------------------------------------ sides

Report = dict[str, int]
"""Bad rows per ``column/check`` (failed checks only): what every side must agree on."""


def shipyard_side() -> Callable[[pd.DataFrame], Report]:
    from shipyard.data.validation import (
        AllowedValuesCheck,
        DtypeCheck,
        Expectations,
        NotNullCheck,
        RangeCheck,
        UniqueCheck,
        validate,
    )

    types = {
        "id": "identifier",
        "float": "float",
        "int": "integer",
        "str": "categorical",
        "cat": "categorical",
        "bool": "boolean",
        "time": "datetime",
    }
    checks: list[Any] = []
    for c in SPEC:
        checks += [
            DtypeCheck(column=c.name, logical_type=types[c.kind]),
            NotNullCheck(column=c.name),
        ]
        if c.low is not None:
            checks.append(RangeCheck(column=c.name, min=c.low, max=c.high))
        if c.values is not None:
            checks.append(AllowedValuesCheck(column=c.name, values=c.values))
        if c.unique:
            checks.append(UniqueCheck(column=c.name))
    expectations = Expectations(checks)
    assert len(expectations) == N_CHECKS

    def run(df: pd.DataFrame) -> Report:
        report = validate(df, expectations)
        return {f"{r.column}/{r.check}": r.bad_count for r in report.failures}

    return run


def pandas_side() -> Callable[[pd.DataFrame], Report]:
    """Hand-written vectorised pandas, with the same report: count + 5 example labels."""
    dtype_ok: dict[str, Callable[[Any], bool]] = {
        "id": pd.api.types.is_integer_dtype,
        "float": pd.api.types.is_float_dtype,
        "int": pd.api.types.is_integer_dtype,
        "str": lambda d: pd.api.types.is_string_dtype(d) or isinstance(d, pd.CategoricalDtype),
        "cat": lambda d: isinstance(d, pd.CategoricalDtype),
        "bool": pd.api.types.is_bool_dtype,
        "time": pd.api.types.is_datetime64_any_dtype,
    }

    def run(df: pd.DataFrame) -> Report:
        found: Report = {}
        examples: dict[str, list[Any]] = {}

        def note(key: str, mask: Any) -> None:
            count = int(mask.sum())
            if count:
                found[key] = count
                examples[key] = df.index[np.flatnonzero(mask)[:5]].tolist()

        for c in SPEC:
            s = df[c.name]
            if not dtype_ok[c.kind](s.dtype):
                found[f"{c.name}/dtype"] = len(s)
            na = s.isna().to_numpy()
            note(f"{c.name}/not_null", na)
            if c.low is not None:
                low, high = (
                    (pd.Timestamp(c.low), pd.Timestamp(c.high))
                    if c.kind == "time"
                    else (c.low, c.high)
                )
                note(f"{c.name}/range", ((s < low) | (s > high)).to_numpy())
            if c.values is not None:
                note(f"{c.name}/allowed_values", (~s.isin(c.values)).to_numpy() & ~na)
            if c.unique:
                note(f"{c.name}/unique", s.duplicated(keep=False).to_numpy() & ~na)
        return found

    return run


def pandera_side(*, inplace: bool) -> Callable[[pd.DataFrame], Report] | None:
    try:
        import pandera.pandas as pa
    except ImportError:
        log("pandera is not installed: `.venv/bin/pip install pandera` (the `bench` extra)")
        return None
    names = {"not_nullable": "not_null", "field_uniqueness": "unique"}

    def schema_for(df: pd.DataFrame) -> Any:
        columns = {}
        for c in SPEC:
            checks = []
            if c.low is not None:
                low, high = (
                    (pd.Timestamp(c.low), pd.Timestamp(c.high))
                    if c.kind == "time"
                    else (c.low, c.high)
                )
                checks.append(pa.Check.in_range(low, high))
            if c.values is not None:
                checks.append(pa.Check.isin(list(c.values)))
            dtype = df[c.name].dtype
            columns[c.name] = pa.Column(dtype, checks, nullable=False, unique=c.unique)
        return pa.DataFrameSchema(columns)

    cache: dict[str, Any] = {}

    def run(df: pd.DataFrame) -> Report:
        schema = cache.get("schema")
        if schema is None:
            schema = cache["schema"] = schema_for(df)
        try:
            schema.validate(df, lazy=True, inplace=inplace)
        except pa.errors.SchemaErrors as exc:
            fc = exc.failure_cases
            found: Report = {}
            for (column, raw), count in fc.groupby(["column", "check"]).size().items():
                check = str(raw)
                kind = (
                    "range"
                    if check.startswith("in_range")
                    else "allowed_values"
                    if check.startswith("isin")
                    else names.get(check, "dtype" if check.startswith("dtype") else check)
                )
                found[f"{column}/{kind}"] = int(count)
            return found
        return {}

    return run


# --------------------------------------------------------------- Great Expectations

GX_WORKER = r"""
import json, sys, time, os
t0 = time.perf_counter()
import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import_s = time.perf_counter() - t0
spec = json.loads(open(sys.argv[3]).read())
frames = {"clean": pd.read_parquet(sys.argv[1]), "bad": pd.read_parquet(sys.argv[2])}
t0 = time.perf_counter()
context = gx.get_context(mode="ephemeral")
asset = context.data_sources.add_pandas("bench").add_dataframe_asset(name="frame")
batch_def = asset.add_batch_definition_whole_dataframe("all")
suite = context.suites.add(gx.ExpectationSuite(name="bench"))
df = frames["clean"]
for c in spec:
    name = c["name"]
    dtype = df[name].dtype
    type_ = dtype.type.__name__ if isinstance(dtype, pd.CategoricalDtype) else str(dtype)
    suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=name, type_=type_))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
    if c["low"] is not None:
        low, high = c["low"], c["high"]
        if c["kind"] == "time":
            low, high = pd.Timestamp(low).to_pydatetime(), pd.Timestamp(high).to_pydatetime()
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high)
        )
    if c["values"] is not None:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=c["values"]))
    if c["kind"] == "id":
        suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=name))
names = {
    "expect_column_values_to_be_of_type": "dtype",
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_between": "range",
    "expect_column_values_to_be_in_set": "allowed_values",
    "expect_column_values_to_be_unique": "unique",
}
setup_s = time.perf_counter() - t0
print("@@READY " + json.dumps({"import_s": import_s, "setup_s": setup_s, "gx": gx.__version__,
                               "pandas": pd.__version__}), flush=True)
for line in sys.stdin:
    which = line.strip()
    if which not in frames:
        break
    t0 = time.perf_counter()
    batch = batch_def.get_batch(batch_parameters={"dataframe": frames[which]})
    result = batch.validate(suite)
    seconds = time.perf_counter() - t0
    found = {}
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            key = cfg.kwargs["column"] + "/" + names.get(cfg.type, cfg.type)
            found[key] = int(r.result.get("unexpected_count") or 0)
    print("@@RESULT " + json.dumps({"seconds": seconds, "found": found}), flush=True)
"""


class GxWorker:
    """Great Expectations in its own venv, holding both frames, validating on request."""

    def __init__(self, python: Path, clean: Path, bad: Path, spec: Path) -> None:
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONWARNINGS": "ignore"}
        self.errors = spec.with_name("gx-stderr.log")
        with self.errors.open("w") as err:  # its progress bars would flood the terminal
            self.proc = subprocess.Popen(
                [str(python), "-c", GX_WORKER, str(clean), str(bad), str(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        self.info = self._read("@@READY ")

    def _read(self, tag: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(tag):
                return dict(json.loads(line[len(tag) :]))
        tail = self.errors.read_text()[-2000:]
        raise RuntimeError(f"the Great Expectations worker exited (rc={self.proc.wait()}):\n{tail}")

    def run(self, which: str) -> tuple[float, Report]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(which + "\n")
        self.proc.stdin.flush()
        out = self._read("@@RESULT ")
        return float(out["seconds"]), dict(out["found"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def ensure_gx(spec: str) -> Path | None:
    python = GX_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {GX_VENV} and installing {spec} (first run only)")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(GX_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", spec, "pyarrow"],
                check=True,
                timeout=900,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            log(f"Great Expectations could not be installed ({exc}); skipping it")
            return None
    return python


# ------------------------------------------------------------------------------- run


@dataclass
class Side:
    label: str
    run: Callable[[str], tuple[float, Report]]
    note: str = ""


def in_process(
    label: str, fn: Callable[[pd.DataFrame], Report], frames: dict[str, pd.DataFrame]
) -> Side:
    def run(which: str) -> tuple[float, Report]:
        t0 = time.perf_counter()
        found = fn(frames[which])
        return time.perf_counter() - t0, found

    return Side(label, run)


def measure(
    sides: list[Side], repeat: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, Report]]]:
    times: dict[str, dict[str, list[float]]] = {s.label: {"clean": [], "bad": []} for s in sides}
    reports: dict[str, dict[str, Report]] = {s.label: {} for s in sides}
    for side in sides:  # warm-up (imports, caches), untimed
        for which in ("clean", "bad"):
            _, reports[side.label][which] = side.run(which)
    for rep in range(repeat):
        order = sides[rep % len(sides) :] + sides[: rep % len(sides)]
        for side in order:
            for which in ("clean", "bad") if rep % 2 == 0 else ("bad", "clean"):
                seconds, _ = side.run(which)
                times[side.label][which].append(seconds)
        log(
            f"repetition {rep + 1}/{repeat}: "
            + ", ".join(
                f"{s.label} {times[s.label]['clean'][-1]:.3f}/{times[s.label]['bad'][-1]:.3f} s"
                for s in sides
            )
        )
    return times, reports


def machine_info(load_before: float, versions: dict[str, str]) -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    info = [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpus (nproc)", str(len(os.sched_getaffinity(0)))),
        ("cpu", cpu),
        ("os", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("shipyard", f"0.1.0 ({commit or '?'}, with uncommitted changes if any)"),
    ]
    info += [(k, v) for k, v in versions.items()]
    info.append(
        (
            "load average (1 min)",
            f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after the run "
            "(other work on the machine adds noise)",
        )
    )
    return info


def render(
    *,
    rows: list[tuple[str, float, float, str]],
    ratios: list[tuple[str, float, float, str, bool]],
    info: list[tuple[str, str]],
    args: argparse.Namespace,
    n: int,
    k: int,
    notes: list[str],
    example: list[str],
) -> str:
    cmd = "`.venv/bin/python benchmarks/validation.py" + (" --quick" if args.quick else "")
    cmd += (" --no-gx" if args.no_gx else "") + " --write-docs`"
    lines = [
        BEGIN,
        "## Data validation: shipyard vs pandas, pandera and Great Expectations",
        "",
        f"Produced by {cmd}. A {n:,} x {len(SPEC)} DataFrame, {N_CHECKS} checks (dtype and "
        "not-null on every column, range on 14, allowed-set on 4, uniqueness on 1); the bad "
        f"frame has {k:,} bad rows ({k / n:.1%}) in each of 19 columns. Median of "
        f"{args.repeat} repetitions.",
        "",
        "| side | clean | 0.1% bad rows | report |",
        "|---|---:|---:|---|",
    ]
    for label, clean, bad, note in rows:
        lines.append(f"| {label} | {clean:.3f} s | {bad:.3f} s | {note} |")
    lines += [
        "",
        "| shipyard's time / other side's | clean | 0.1% bad rows | target | met |",
        "|---|---:|---:|---:|:-:|",
    ]
    for label, clean, bad, target, met in ratios:
        verdict = ("yes" if met else "**no**") if target != "-" else ""
        lines.append(f"| {label} | {clean:.2f}x | {bad:.2f}x | {target} | {verdict} |")
    lines += [
        "",
        "Below 1 means shipyard is faster. The start of shipyard's report on the bad frame "
        "(`report.summary()` of two of the checks):",
        "",
        "```",
        *example,
        "```",
        "",
    ]
    lines += ["Machine:", ""] + [f"- {k_}: {v}" for k_, v in info]
    lines += ["", "How it is measured:", ""]
    lines += [f"- {note}" for note in notes]
    lines.append(END)
    return "\n".join(lines) + "\n"


def example_report(bad: pd.DataFrame) -> list[str]:
    """The head of shipyard's summary for the bad frame (as the docs show it)."""
    from shipyard.data.validation import Expectations, RangeCheck, UniqueCheck, validate

    report = validate(
        bad,
        Expectations([RangeCheck(column="f1", min=LOW, max=HIGH), UniqueCheck(column="id")]),
    )
    return report.summary().splitlines()


def write_docs(section: str) -> None:
    replace_section(DOC, BEGIN, END, section)
    log(f"wrote {DOC}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions (>= 5)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 3 repetitions")
    parser.add_argument("--no-gx", action="store_true", help="skip Great Expectations")
    parser.add_argument("--gx-spec", default=GX_SPEC, help="what to pip install for GX")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeat = 100_000, 3
    load_before = os.getloadavg()[0]

    log(f"building {args.rows:,} x {len(SPEC)} frames (seed {SEED})")
    clean, bad, k = make_frames(args.rows)
    frames = {"clean": clean, "bad": bad}
    sides = [
        in_process("shipyard", shipyard_side(), frames),
        in_process("pandas (hand-written)", pandas_side(), frames),
    ]
    versions = {"pandas": pd.__version__, "numpy": np.__version__}
    notes = [
        "The clock covers one validation call and turning its result into a per-check "
        "count; building the frames and the schema objects is outside it. One untimed "
        "warm-up per side and frame; the side order rotates every repetition and the "
        "clean/bad order alternates.",
        "shipyard: `validate(df, Expectations([...]))` with DtypeCheck, NotNullCheck, "
        "RangeCheck, AllowedValuesCheck, UniqueCheck; the report holds column, check, "
        "count, 5 example row labels and values. Its uniqueness check counts a dense "
        "integer key like `id` with `np.bincount` (other columns: `duplicated`).",
        "pandas: per column `isna`, `(s < lo) | (s > hi)`, `~isin & notna`, "
        "`duplicated(keep=False)`, a dtype predicate, and the count plus the first 5 "
        "index labels of each failed check.",
    ]
    for inplace in (False, True):
        fn = pandera_side(inplace=inplace)
        if fn is not None:
            sides.append(in_process(f"pandera (inplace={inplace})", fn, frames))
    if len(sides) > 2:
        import pandera

        versions["pandera"] = pandera.__version__
        notes.append(
            "pandera: `DataFrameSchema({col: Column(dtype, [Check.in_range, Check.isin], "
            "nullable=False, unique=...)}).validate(df, lazy=True)`, the `SchemaErrors` "
            "caught and its `failure_cases` counted per column and check. The default "
            "`inplace=False` copies the frame first; `inplace=True` does not. Its error "
            "message lists the failure cases value by value."
        )
    gx: GxWorker | None = None
    with tempfile.TemporaryDirectory(prefix="shipyard-valbench-") as tmp:
        if not args.no_gx:
            python = ensure_gx(args.gx_spec)
            if python is not None:
                paths = [Path(tmp) / f"{w}.parquet" for w in ("clean", "bad")]
                clean.to_parquet(paths[0])
                bad.to_parquet(paths[1])
                spec_path = Path(tmp) / "spec.json"
                spec_path.write_text(json.dumps([c.__dict__ for c in SPEC]))
                log("starting the Great Expectations worker")
                try:
                    gx = GxWorker(python, paths[0], paths[1], spec_path)
                except RuntimeError as exc:
                    log(f"Great Expectations failed to start ({exc}); skipping it")
        if gx is not None:
            sides.append(Side("Great Expectations", gx.run))
            versions["great_expectations"] = (
                f"{gx.info['gx']} (own venv, pandas {gx.info['pandas']}; import "
                f"{gx.info['import_s']:.1f} s, context and suite {gx.info['setup_s']:.1f} s, "
                "not timed)"
            )
            notes.append(
                "Great Expectations: ephemeral context, pandas dataframe asset, one "
                "expectation per check (`ExpectColumnValuesToBeOfType`, `...NotBeNull`, "
                "`...BeBetween`, `...BeInSet`, `...BeUnique`), `batch.validate(suite)` "
                "with the default result format; the clock covers `get_batch` and "
                "`validate`. It reads the same frames from Parquet in its own venv."
            )
        elif not args.no_gx:
            notes.append("Great Expectations: skipped (it could not be installed or started).")
        try:
            times, reports = measure(sides, args.repeat)
        finally:
            if gx is not None:
                gx.close()

    reference = reports["shipyard"]
    rows = []
    for s in sides:
        agree = [w for w in ("clean", "bad") if reports[s.label][w] == reference[w]]
        same = "reference" if s.label == "shipyard" else "same failures as shipyard"
        note = (
            same
            if len(agree) == 2
            else "differs: "
            + json.dumps(
                {
                    w: {
                        key: v
                        for key, v in reports[s.label][w].items()
                        if reference[w].get(key) != v
                    }
                    for w in ("clean", "bad")
                    if w not in agree
                }
            )[:300]
        )
        med = {w: statistics.median(times[s.label][w]) for w in ("clean", "bad")}
        rows.append((s.label, med["clean"], med["bad"], note))
        log(f"{s.label:28s} clean {med['clean']:.3f} s   bad {med['bad']:.3f} s   {note}")
    med = {r[0]: (r[1], r[2]) for r in rows}
    ship = med["shipyard"]
    ratios = []
    ok = True

    def add(label: str, limit: float, target: str) -> None:
        nonlocal ok
        other = med[label]
        r = (ship[0] / other[0], ship[1] / other[1])
        met = r[0] <= limit and r[1] <= limit
        ok = ok and met
        ratios.append((label, r[0], r[1], target, met))

    add("pandas (hand-written)", 1.5, "<= 1.5x")
    pandera_labels = [label for label in med if label.startswith("pandera")]
    if pandera_labels:
        fastest = min(pandera_labels, key=lambda label: sum(med[label]))
        for label in pandera_labels:
            add(
                label,
                1.0 if label == fastest else float("inf"),
                "<= 1x" if label == fastest else "-",
            )
    if "Great Expectations" in med:
        add("Great Expectations", float("inf"), "-")
    for label, a, b, target, met in ratios:
        verdict = "met" if met else "MISSED"
        log(f"{label:40s} {a:.2f}x clean, {b:.2f}x bad  target {target}: {verdict}")
    if args.write_docs:
        info = machine_info(load_before, versions)
        write_docs(
            render(
                rows=rows,
                ratios=ratios,
                info=info,
                args=args,
                n=args.rows,
                k=k,
                notes=notes,
                example=example_report(bad),
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
