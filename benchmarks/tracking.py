"""Experiment tracking, shipyard against MLflow, side by side on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/tracking.py               # full run, ~10 minutes
    .venv/bin/python benchmarks/tracking.py --quick       # smoke run, ~1-2 minutes
    .venv/bin/python benchmarks/tracking.py --write-docs  # also update docs/benchmarks.md

MLflow gets its own virtualenv (``.bench-venv/mlflow``, created with ``pip install
mlflow`` on first use) because its pins may clash with ours. Each workload runs
in a subprocess on each side (``_shipyard_worker.py`` with this python,
``_mlflow_worker.py`` with MLflow's), in a fresh temporary folder, alternating
which side goes first; the figures are medians over the rounds.

Workloads:

W1  per-call ``log_metric`` into one run, until the points are durable
W2  ``log_batch`` in chunks of 1000 (MLflow's maximum per call)
W3  4 processes logging per call at once, each into its own run; lost points counted
W4  ``search_runs`` over 5,000 runs: (a) filtered + ordered + limit 100, (b) all as pandas
W5  a whole ``python -c`` process: import, one run with one param and one metric
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import parse_result, replace_section

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
DOC = ROOT / "docs" / "benchmarks.md"
MLFLOW_VENV = ROOT / ".bench-venv" / "mlflow"
BEGIN = "<!-- tracking-benchmark:begin -->"
END = "<!-- tracking-benchmark:end -->"
WORKER_TIMEOUT = 1800

W5_SCRIPTS = {
    "shipyard": (
        "import shipyard as sy\n"
        "sy.set_experiment('w5')\n"
        "with sy.start_run(name='w5'):\n"
        "    sy.log_param('alpha', 0.5)\n"
        "    sy.log_metric('loss', 0.25)\n"
    ),
    "mlflow": (
        "import mlflow\n"
        "mlflow.set_experiment('w5')\n"
        "with mlflow.start_run(run_name='w5'):\n"
        "    mlflow.log_param('alpha', 0.5)\n"
        "    mlflow.log_metric('loss', 0.25)\n"
    ),
}


@dataclass(frozen=True)
class Sizes:
    """How much each side does per workload."""

    rounds: int
    w1: tuple[int, int]  # points (shipyard, mlflow)
    w2: tuple[int, int]
    w3: tuple[int, int]  # points per process
    w3_procs: int
    w4_runs: int
    w4_repeat: int
    w5_spawns: int  # per side per round


FULL = Sizes(
    rounds=3,
    w1=(20_000, 2_000),
    w2=(200_000, 200_000),
    w3=(5_000, 300),
    w3_procs=4,
    w4_runs=5_000,
    w4_repeat=7,
    w5_spawns=3,
)
QUICK = Sizes(
    rounds=1,
    w1=(20_000, 200),
    w2=(200_000, 20_000),
    w3=(5_000, 50),
    w3_procs=4,
    w4_runs=500,
    w4_repeat=3,
    w5_spawns=2,
)


@dataclass(frozen=True)
class Target:
    workload: str
    label: str
    unit: str  # "pts/s" (higher is better) or "ms" (lower is better)
    minimum: float  # required shipyard / MLflow speed ratio


TARGETS = [
    Target("w1", "W1 `log_metric` per call, 1 run", "pts/s", 1000),
    Target("w2", "W2 `log_batch`, chunks of 1000", "pts/s", 50),
    Target("w3", "W3 4 processes at once, per call", "pts/s", 100),
    Target("w4a", "W4a `search_runs` filter + order + limit 100", "ms", 10),
    Target("w4b", "W4b `search_runs` all runs to pandas", "ms", 20),
    Target("w5", "W5 `python -c` import + one tiny run", "ms", 10),
]


@dataclass
class Side:
    """One tool under test: its python, its worker and its environment."""

    name: str
    python: Path
    worker: Path
    samples: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, list[Any]] = field(default_factory=dict)

    def env(self, folder: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SHIPYARD_", "MLFLOW_", "PYTHONPATH"))
        }
        env["DO_NOT_TRACK"] = "true"  # no telemetry traffic during timing
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        if self.name == "shipyard":
            env["SHIPYARD_HOME"] = str(folder / "store")
        else:
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
        return env

    def run(self, workload: str, folder: Path, **options: int) -> dict[str, Any]:
        cmd = [str(self.python), str(self.worker), workload, "--dir", str(folder)]
        for key, value in options.items():
            cmd += [f"--{key}", str(value)]
        proc = subprocess.run(
            cmd,
            cwd=folder,
            env=self.env(folder),
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{self.name} {workload} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return parse_result(proc.stdout)

    def spawn(self, folder: Path) -> float:
        """Wall-clock seconds of one W5 process, from spawn to exit."""
        cmd = [str(self.python), "-c", W5_SCRIPTS[self.name]]
        env = self.env(folder)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} W5 failed:\n{proc.stderr[-3000:]}")
        return seconds

    def add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def note(self, key: str, value: Any) -> None:
        self.extra.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_mlflow(spec: str) -> Path:
    """The python of MLflow's venv, creating the venv on first use."""
    python = MLFLOW_VENV / "bin" / "python"
    if python.exists():
        return python
    log(f"creating {MLFLOW_VENV} and installing {spec} (first run only)...")
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", spec], check=True
    )
    return python


def package_version(python: Path, package: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"from importlib.metadata import version; print(version({package!r}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class Bench:
    def __init__(self, sides: list[Side], sizes: Sizes, workloads: list[str], tmp: Path) -> None:
        self.sides = sides
        self.sizes = sizes
        self.workloads = workloads
        self.tmp = tmp
        self.w4_dirs: dict[str, Path] = {}

    def fresh(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.tmp))

    def each_side(self, round_no: int, action: Callable[[Side], None]) -> None:
        order = self.sides if round_no % 2 == 0 else list(reversed(self.sides))
        for side in order:
            action(side)

    def points(self, workload: str, side: Side) -> int:
        pair: tuple[int, int] = getattr(self.sizes, workload)
        return pair[0] if side.name == "shipyard" else pair[1]

    def throughput(self, workload: str, side: Side, **options: int) -> None:
        folder = self.fresh(f"{side.name}-{workload}")
        result = side.run(workload, folder, points=self.points(workload, side), **options)
        shutil.rmtree(folder, ignore_errors=True)
        rate = result["points"] / result["seconds"]
        side.add(workload, rate)
        side.note(f"{workload}_stored", result["stored"])
        side.note(f"{workload}_points", result["points"])
        if "lost" in result:
            side.note("w3_lost", result["lost"])
            side.note("w3_errors", result["errors"])
        lost = result["points"] - result["stored"]
        log(
            f"  {workload} {side.name:8s} {result['points']:>7,} pts in "
            f"{result['seconds']:8.3f} s = {rate:12,.0f} pts/s, stored {result['stored']:,}"
            + (f" (LOST {lost:,})" if lost else "")
        )

    def w4_setup(self, side: Side) -> None:
        folder = self.fresh(f"{side.name}-w4")
        self.w4_dirs[side.name] = folder
        result = side.run("w4-setup", folder, runs=self.sizes.w4_runs)
        log(f"  w4 setup {side.name:8s} {result['runs']:,} runs in {result['seconds']:.1f} s")

    def w4_search(self, side: Side) -> None:
        result = side.run("w4-search", self.w4_dirs[side.name], repeat=self.sizes.w4_repeat)
        for key, samples in (("w4a", "filtered_samples"), ("w4b", "all_samples")):
            side.samples.setdefault(key, []).extend(result[samples])
        side.note("w4a_rows", result["filtered_rows"])
        side.note("w4b_rows", result["all_rows"])
        side.note("w4_top_f1", result["top_f1"])
        log(
            f"  w4 {side.name:8s} filtered {result['filtered_s'] * 1000:8.1f} ms "
            f"({result['filtered_rows']} rows), all {result['all_s'] * 1000:8.1f} ms "
            f"({result['all_rows']} rows)"
        )

    def w5(self, side: Side) -> None:
        times = []
        for _ in range(self.sizes.w5_spawns):
            folder = self.fresh(f"{side.name}-w5")
            times.append(side.spawn(folder))
            shutil.rmtree(folder, ignore_errors=True)
        side.samples.setdefault("w5", []).extend(times)
        log(f"  w5 {side.name:8s} " + ", ".join(f"{t * 1000:.0f} ms" for t in times))

    def run(self) -> None:
        s = self.sizes
        if "w4" in self.workloads:
            log("W4 setup (not timed in the table)")
            for side in self.sides:
                self.w4_setup(side)
        if "w5" in self.workloads:
            for side in self.sides:  # warm the bytecode caches; not counted
                folder = self.fresh(f"{side.name}-w5warm")
                side.spawn(folder)
                shutil.rmtree(folder, ignore_errors=True)
        for r in range(s.rounds):
            log(f"round {r + 1}/{s.rounds}")
            if "w1" in self.workloads:
                self.each_side(r, lambda side: self.throughput("w1", side))
            if "w2" in self.workloads:
                self.each_side(r, lambda side: self.throughput("w2", side, chunk=1000))
            if "w3" in self.workloads:
                self.each_side(r, lambda side: self.throughput("w3", side, procs=s.w3_procs))
            if "w4" in self.workloads:
                self.each_side(r, self.w4_search)
            if "w5" in self.workloads:
                self.each_side(r, self.w5)


@dataclass(frozen=True)
class Row:
    target: Target
    shipyard: float
    mlflow: float
    ratio: float
    met: bool
    note: str


def summarize(sides: dict[str, Side], workloads: list[str]) -> list[Row]:
    sy, ml = sides["shipyard"], sides["mlflow"]
    rows = []
    for target in TARGETS:
        if target.workload.rstrip("ab") not in workloads:
            continue
        a, b = sy.median(target.workload), ml.median(target.workload)
        ratio = a / b if target.unit == "pts/s" else b / a
        met = ratio >= target.minimum
        note = ""
        if target.workload == "w3":
            lost_sy, lost_ml = sum(sy.extra["w3_lost"]), sum(ml.extra["w3_lost"])
            met = met and lost_sy == 0
            note = f"lost points: shipyard {lost_sy}, MLflow {lost_ml}"
        if target.workload in ("w1", "w2"):
            lost_sy = sum(sy.extra[f"{target.workload}_points"]) - sum(
                sy.extra[f"{target.workload}_stored"]
            )
            met = met and lost_sy == 0
        rows.append(Row(target, a, b, ratio, met, note))
    return rows


def fmt(value: float, unit: str) -> str:
    if unit == "pts/s":
        return f"{value:,.0f} pts/s"
    return f"{value * 1000:,.1f} ms"


def print_rows(rows: list[Row]) -> None:
    for row in rows:
        t = row.target
        print(
            f"{t.workload.upper():4s} shipyard {fmt(row.shipyard, t.unit):>18s}  "
            f"mlflow {fmt(row.mlflow, t.unit):>16s}  ratio {row.ratio:10,.1f}x  "
            f"target >= {t.minimum:g}x  {'met' if row.met else 'MISSED'}"
            + (f"  ({row.note})" if row.note else "")
        )


def machine_info(mlflow_version: str, load_before: float) -> list[tuple[str, str]]:
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
    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpus (nproc)", str(len(os.sched_getaffinity(0)))),
        ("cpu", cpu),
        ("os", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("shipyard", f"{package_version(Path(sys.executable), 'shipyard')} ({commit or '?'})"),
        ("mlflow", f"{mlflow_version} (SQLite backend, local artifacts, default settings)"),
        (
            "load average (1 min)",
            f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after the run "
            "(other work on the machine adds noise)",
        ),
    ]


def render(rows: list[Row], sizes: Sizes, info: list[tuple[str, str]], quick: bool) -> str:
    lines = [
        BEGIN,
        "## Experiment tracking: shipyard vs MLflow",
        "",
        "Produced by `.venv/bin/python benchmarks/tracking.py"
        + (" --quick" if quick else "")
        + " --write-docs`"
        + (" (a **quick** smoke run: fewer points and rounds)." if quick else "."),
        "",
        "| workload | shipyard | MLflow | shipyard / MLflow | target | met |",
        "|---|---:|---:|---:|---:|:-:|",
    ]
    for row in rows:
        t = row.target
        label = t.label + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {label} | {fmt(row.shipyard, t.unit)} | {fmt(row.mlflow, t.unit)} | "
            f"**{row.ratio:,.1f}x** | >= {t.minimum:g}x | {'yes' if row.met else '**no**'} |"
        )
    w1, w2, w3 = sizes.w1, sizes.w2, sizes.w3
    lines += [
        "",
        "Ratios are speed ratios: points per second for W1-W3, the inverse of the median "
        "time for W4-W5, so higher is better for shipyard.",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How each figure is measured:",
        "",
        f"- Every workload runs in a fresh process and a fresh temporary store, {sizes.rounds} "
        "round(s), the two sides alternating which goes first; figures are medians. MLflow runs "
        "in its own venv (`.bench-venv/mlflow`) with a SQLite tracking URI; its telemetry is "
        "switched off (`MLFLOW_DISABLE_TELEMETRY`, `DO_NOT_TRACK`) so no network call is timed.",
        f"- W1: shipyard {w1[0]:,} points, MLflow {w1[1]:,} (at its pace a full 20,000 would take "
        "minutes). One `log_metric(key, value, step=i)` call per point; the clock runs from the "
        "first call until the points are durable (`sy.flush()` then run end; `mlflow.end_run()`). "
        "Every point is read back afterwards.",
        f"- W2: {w2[0]:,} points (shipyard) and {w2[1]:,} (MLflow) through the batch call in "
        "chunks of 1,000 (`sy.log_batch` with `(key, value, step, timestamp)` tuples; "
        "`MlflowClient().log_batch` with `Metric` objects, 1,000 being its maximum); the "
        "chunks are built before the clock starts; the clock stops after flush and run end.",
        f"- W3: {sizes.w3_procs} processes start together (a barrier on stdin) and each logs "
        f"{w3[0]:,} (shipyard) or {w3[1]:,} (MLflow) points per call into its own run of the "
        "same store, then ends its run. Aggregate rate = all points / (last child's end - "
        "first child's start). Lost points = logged - distinct steps read back with "
        "`get_metric_history`. shipyard's store does **not** exist when the processes start: "
        "they create it (schema migrations) concurrently. MLflow's store and experiment are "
        "created before its processes start, since its migrations are not meant to race.",
        f"- W4: {sizes.w4_runs:,} finished runs with 3 params, 3 metrics and 1-2 tags (the same "
        "deterministic values on both sides; creation is not timed). (a) "
        "`metrics.f1 > 0.5 and params.model = 'rf'`, order `metrics.f1 DESC`, `max_results=100`, "
        "as a DataFrame; (b) every run as a DataFrame. One untimed warm-up call each (it pays "
        f"for importing pandas), then {sizes.w4_repeat} timed calls per round; the two sides "
        "return the same rows (checked: same count, same top f1).",
        f"- W5: `python -c` importing the package and logging one run with one param and one "
        f"metric to a new store, wall clock from spawn to exit, {sizes.w5_spawns} spawns per "
        "side per round after one untimed warm-up spawn each (bytecode caches).",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    replace_section(DOC, BEGIN, END, section)
    log(f"wrote {DOC}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer points and rounds")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--only", default="w1,w2,w3,w4,w5", help="comma-separated workloads (default: all)"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--mlflow-spec", default="mlflow", help="what to pip install for MLflow")
    parser.add_argument("--tmp", type=Path, help="where the temporary stores go")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = Sizes(**{**sizes.__dict__, "rounds": args.rounds})
    workloads = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    unknown = set(workloads) - {"w1", "w2", "w3", "w4", "w5"}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from w1..w5")

    mlflow_python = ensure_mlflow(args.mlflow_spec)
    mlflow_version = package_version(mlflow_python, "mlflow")
    sides = [
        Side("shipyard", Path(sys.executable), HERE / "_shipyard_worker.py"),
        Side("mlflow", mlflow_python, HERE / "_mlflow_worker.py"),
    ]
    log(f"shipyard with {sys.executable}; mlflow {mlflow_version} with {mlflow_python}")
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-", dir=args.tmp))
    try:
        Bench(sides, sizes, workloads, tmp).run()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    by_name = {s.name: s for s in sides}
    if "w4" in workloads:
        sy_f1, ml_f1 = by_name["shipyard"].extra["w4_top_f1"], by_name["mlflow"].extra["w4_top_f1"]
        if (
            sy_f1 != ml_f1
            or by_name["shipyard"].extra["w4b_rows"] != by_name["mlflow"].extra["w4b_rows"]
        ):
            log(f"WARNING: W4 results differ: top f1 {sy_f1} vs {ml_f1}")
    rows = summarize(by_name, workloads)
    print_rows(rows)
    if args.write_docs:
        write_docs(render(rows, sizes, machine_info(mlflow_version, load_before), args.quick))
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
