"""Tuning, shipyard against plain Optuna and Optuna + MLflow, side by side on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/training.py               # full run, ~15-20 minutes on 2 cores
    .venv/bin/python benchmarks/training.py --quick       # smoke run, ~1-2 minutes
    .venv/bin/python benchmarks/training.py --write-docs  # also update docs/benchmarks.md

The job: scikit-learn's breast cancer data (569 rows, 30 numeric features, binary
``target``), a random forest and a histogram gradient boosting model, 20 Optuna
trials each (40 in all), 5-fold stratified CV, ROC AUC, one seed. Three sides run
it, each in a subprocess (``_training_worker.py``) and a fresh temporary folder,
the order rotating every round; figures are medians over the rounds:

shipyard       ``sy.train(frame, "target", models=[...], tune=20, cv=5, seed=S)``: every
               trial a nested run, the study in SQLite, the best refitted and logged.
optuna         the same studies written by hand, in memory, no logging at all.
optuna-mlflow  the ``optuna`` script plus MLflow logging (a nested run per trial, the
               best model through ``mlflow.sklearn.log_model``), in MLflow's venv.

The hand-written sides import no shipyard: this script writes a recipe JSON taken
from shipyard itself (the exact ``trial.suggest_*`` calls of each family, the
estimator and imputer parameters of the pipeline ``build_pipeline`` makes) and
checks that the pipeline the worker builds from it equals shipyard's, so the same
seed draws the same trials on every side. Every worker runs with
``OMP_NUM_THREADS=1``.

Targets: shipyard's wall time at most 5% above plain Optuna's; the Optuna + MLflow
script at least 2x shipyard's; the same best CV ROC AUC on every side and round.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import parse_result, replace_section
from tracking import ensure_mlflow, log, machine_info, package_version

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
WORKER = HERE / "_training_worker.py"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- training-benchmark:begin -->"
END = "<!-- training-benchmark:end -->"
WORKER_TIMEOUT = 3600

TARGET = "target"
TASK = "binary"
METRIC = "roc_auc"
FOLDS = 5
MODELS = ("random_forest", "hist_gradient_boosting")
MAX_OVERHEAD = 0.05  # shipyard on one core / plain Optuna - 1
MIN_SPEEDUP = 2.0  # Optuna + MLflow / shipyard (its defaults)
SAME_SCORE = 1e-12  # scores computed two ways (shipyard's kernel, roc_auc_score) may differ in ulps
MATCHED_PACKAGES = ("optuna", "scikit-learn", "numpy", "scipy", "pandas")

SIDES = ("shipyard", "shipyard-1core", "optuna", "optuna-mlflow")
LABELS = {
    "shipyard": "shipyard `sy.train` (full tracking; defaults: folds on every core)",
    "shipyard-1core": "shipyard `sy.train(..., fold_jobs=1)` (full tracking, one core)",
    "optuna": "plain Optuna, no logging",
    "optuna-mlflow": "Optuna + MLflow logging",
}


@dataclass(frozen=True)
class Sizes:
    """How much each round does."""

    rounds: int
    trials: int  # per family


FULL = Sizes(rounds=3, trials=20)
QUICK = Sizes(rounds=1, trials=4)


# -- the recipe ----------------------------------------------------------------------------


class SuggestRecorder:
    """Stands in for an ``optuna.Trial``: records each ``suggest_*`` call shipyard makes."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _record(self, method: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.calls.append({"method": method, "name": name, "args": list(args), "kwargs": kwargs})
        return args[0][0] if method == "suggest_categorical" else args[0]

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._record("suggest_categorical", name, args, kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._record("suggest_int", name, args, kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._record("suggest_float", name, args, kwargs)


def _flat_params(estimator: Any) -> dict[str, Any]:
    """Every parameter of a fitted-or-not estimator, nested estimators by class name."""
    out: dict[str, Any] = {}
    for key, value in estimator.get_params(deep=True).items():
        if hasattr(value, "get_params"):
            out[key] = type(value).__qualname__
        elif key.endswith(("steps", "transformers")):
            out[key] = repr([(s[0], type(s[1]).__qualname__, *s[2:]) for s in value])
        else:
            out[key] = repr(value)
    return out


def _roundtrip(value: Any) -> Any:
    copy = json.loads(json.dumps(value))
    if repr(copy) != repr(value):
        raise RuntimeError(f"{value!r} does not survive JSON ({copy!r}); the recipe needs work")
    return copy


def make_recipe(seed: int, trials: int) -> dict[str, Any]:
    """The job and, per family, what the hand-written sides need to match shipyard exactly.

    Raises:
        RuntimeError: the pipeline built from the recipe differs from shipyard's (its
            preprocessing for this data changed), or a value would not survive JSON.
    """
    import _training_worker as worker
    from shipyard.training.models import build_pipeline, get_family

    _, X, _ = worker.load_data(TARGET)
    columns = [str(c) for c in X.columns]
    families = []
    for name in MODELS:
        family = get_family(name)
        recorder = SuggestRecorder()
        params = family.suggest(recorder, TASK)
        if len(params) != len(recorder.calls):
            raise RuntimeError(f"{name}: suggest made {len(recorder.calls)} calls for {params}")
        for param, call in zip(params, recorder.calls, strict=True):
            call["param"] = param
        pipe = build_pipeline(family, TASK, X, {}, seed)
        preprocess, estimator = pipe.named_steps["preprocess"], pipe.named_steps["model"]
        [(_, numeric, _)] = preprocess.transformers
        cls = type(estimator)
        entry = {
            "name": name,
            "suggest": _roundtrip(recorder.calls),
            "estimator": f"{cls.__module__}.{cls.__qualname__}",
            "estimator_params": _roundtrip(estimator.get_params(deep=False)),
            "imputer_params": _roundtrip(numeric.named_steps["impute"].get_params(deep=False)),
            "column_transformer": _roundtrip(
                {k: preprocess.get_params(deep=False)[k] for k in ("remainder", "sparse_threshold")}
            ),
        }
        # The worker's pipeline must equal shipyard's, with defaults and with sampled params.
        sample = {call["param"]: _sample(call) for call in entry["suggest"]}
        for trial_params in ({}, sample):
            ours = worker.build_pipeline(entry, columns, dict(trial_params))
            theirs = build_pipeline(family, TASK, X, dict(trial_params), seed)
            if _flat_params(ours) != _flat_params(theirs):
                diff = {
                    k: (v, _flat_params(theirs).get(k))
                    for k, v in _flat_params(ours).items()
                    if v != _flat_params(theirs).get(k)
                }
                raise RuntimeError(
                    f"{name}: the recipe's pipeline differs from shipyard's build_pipeline "
                    f"({diff}); update make_recipe and _training_worker.build_pipeline"
                )
        families.append(entry)
    return {
        "target": TARGET,
        "metric": METRIC,
        "folds": FOLDS,
        "seed": seed,
        "trials": trials,
        "families": families,
    }


def _sample(call: dict[str, Any]) -> Any:
    """A value other than the default for one parameter (the last choice, or the top)."""
    if call["method"] == "suggest_categorical":
        return call["args"][0][-1]
    return call["args"][1]


# -- running -------------------------------------------------------------------------------


@dataclass
class Side:
    """One way of doing the job: its python and what it returned per round."""

    name: str
    python: Path
    results: list[dict[str, Any]] = field(default_factory=list)

    def env(self, folder: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SHIPYARD_", "MLFLOW_", "PYTHONPATH"))
        }
        env.update(DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")
        if self.name.startswith("shipyard"):
            env["SHIPYARD_HOME"] = str(folder / "store")
        return env

    def run(self, recipe: Path, folder: Path) -> dict[str, Any]:
        cmd = [str(self.python), str(WORKER), self.name, "--recipe", str(recipe)]
        proc = subprocess.run(
            [*cmd, "--dir", str(folder)],
            cwd=folder,
            env=self.env(folder),
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
        result = parse_result(proc.stdout)
        self.results.append(result)
        return result

    def median(self) -> float:
        return statistics.median(r["seconds"] for r in self.results)


def ensure_packages(python: Path) -> dict[str, tuple[str, str]]:
    """Install into ``python``'s venv the versions of :data:`MATCHED_PACKAGES` we have.

    Optuna and scikit-learn must match (they decide the trials and the scores); numpy,
    scipy and pandas are matched when pip can, else left as MLflow wants them.

    Returns:
        ``{package: (our version, its version)}`` after installing.
    """

    def versions() -> dict[str, tuple[str, str]]:
        out = {}
        for package in MATCHED_PACKAGES:
            try:
                theirs = package_version(python, package)
            except subprocess.CalledProcessError:
                theirs = "missing"
            out[package] = (package_version(Path(sys.executable), package), theirs)
        return out

    found = versions()
    differ = [f"{p}=={ours}" for p, (ours, theirs) in found.items() if ours != theirs]
    if not differ:
        return found
    log(f"installing {' '.join(differ)} into {python.parent.parent}...")
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    if subprocess.run([*pip, *differ], check=False).returncode != 0:
        needed = [s for s in differ if s.startswith(("optuna==", "scikit-learn=="))]
        log(f"that failed; installing only {' '.join(needed)}")
        subprocess.run([*pip, *needed], check=True)
    return versions()


def run_rounds(sides: list[Side], recipe: Path, rounds: int, tmp: Path) -> None:
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            folder = Path(tempfile.mkdtemp(prefix=f"{side.name}-", dir=tmp))
            result = side.run(recipe, folder)
            shutil.rmtree(folder, ignore_errors=True)
            pruned = sum(state == "PRUNED" for h in result["histories"].values() for state, _ in h)
            log(
                f"  {side.name:14s} {result['seconds']:8.2f} s  best {result['best_family']} "
                f"{METRIC} {result['best_score']:.15f}  pruned {pruned}  runs {result['runs']}"
            )


# -- summary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    seconds: dict[str, float]
    overhead: float  # shipyard on one core / plain - 1
    speedup: float  # Optuna + MLflow / shipyard
    tracking_s: dict[str, float]  # median seconds above plain Optuna
    best: dict[str, tuple[str, float]]  # side -> (family, score) of its first round
    same_score: bool
    same_trials: bool
    max_difference: float  # largest |score - shipyard round 1's| of any best or trial score
    differences: list[str]

    @property
    def tracking_ratio(self) -> float:
        """What tracking costs with MLflow over what it costs with shipyard (time above plain)."""
        spent = self.tracking_s["shipyard-1core"]
        return self.tracking_s["optuna-mlflow"] / spent if spent > 0 else math.inf

    @property
    def met(self) -> dict[str, bool]:
        return {
            "overhead": self.overhead < MAX_OVERHEAD,
            "speedup": self.speedup >= MIN_SPEEDUP,
            "same_score": self.same_score,
        }


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0.0, abs_tol=SAME_SCORE)


def _compare(
    result: dict[str, Any], reference: dict[str, Any], where: str
) -> tuple[bool, bool, list[float], list[str]]:
    """Same best score and family?, same trials?, score gaps, what differs."""
    gaps = [abs(result["best_score"] - reference["best_score"])]
    differences = []
    same_best = result["best_family"] == reference["best_family"] and _same(
        result["best_score"], reference["best_score"]
    )
    if not same_best:
        differences.append(
            f"{where}: best {result['best_family']} {result['best_score']!r}, shipyard "
            f"round 1: {reference['best_family']} {reference['best_score']!r}"
        )
    if result["best_params"] != reference["best_params"]:
        differences.append(f"{where}: best params {result['best_params']}")
    same_trials = True
    for family, history in result["histories"].items():
        theirs = reference["histories"][family]
        pairs = list(zip(history, theirs, strict=False))
        gaps += [abs(a[1] - b[1]) for a, b in pairs if a[1] is not None and b[1] is not None]
        if len(history) != len(theirs) or not all(
            a[0] == b[0] and _same(a[1], b[1]) for a, b in pairs
        ):
            same_trials = False
            differences.append(f"{where}: {family} trials {history}, shipyard round 1: {theirs}")
    return same_best, same_trials, gaps, differences


def summarize(sides: list[Side]) -> Summary:
    seconds = {s.name: s.median() for s in sides}
    plain = seconds["optuna"]
    reference = next(s for s in sides if s.name == "shipyard").results[0]
    same_score = same_trials = True
    gaps: list[float] = []
    differences: list[str] = []
    for side in sides:
        for i, result in enumerate(side.results):
            best, trials, gap, diff = _compare(result, reference, f"{side.name} round {i + 1}")
            same_score, same_trials = same_score and best, same_trials and trials
            gaps += gap
            differences += diff
    return Summary(
        seconds=seconds,
        overhead=seconds["shipyard-1core"] / plain - 1,
        speedup=seconds["optuna-mlflow"] / seconds["shipyard"],
        tracking_s={name: s - plain for name, s in seconds.items() if name != "optuna"},
        best={s.name: (s.results[0]["best_family"], s.results[0]["best_score"]) for s in sides},
        same_score=same_score,
        same_trials=same_trials,
        max_difference=max(gaps),
        differences=differences,
    )


def print_summary(summary: Summary, sides: list[Side]) -> None:
    for side in sides:
        family, score = summary.best[side.name]
        print(
            f"{side.name:14s} {summary.seconds[side.name]:8.2f} s  "
            f"x{summary.seconds[side.name] / summary.seconds['optuna']:.3f} of plain Optuna  "
            f"best {family} {METRIC} {score:.12f}  runs {side.results[0]['runs']}"
        )
    met = summary.met
    print(
        f"shipyard (one core) overhead over plain Optuna {summary.overhead:+.1%} "
        f"(target < {MAX_OVERHEAD:.0%}): {'met' if met['overhead'] else 'MISSED'}"
    )
    print(
        f"Optuna + MLflow / shipyard {summary.speedup:.2f}x (target >= {MIN_SPEEDUP:g}x): "
        f"{'met' if met['speedup'] else 'MISSED'}; time above plain Optuna: shipyard "
        f"{summary.tracking_s['shipyard-1core']:+.2f} s on one core, Optuna + MLflow "
        f"{summary.tracking_s['optuna-mlflow']:+.2f} s ({summary.tracking_ratio:.2f}x)"
    )
    print(
        "same best score on every side and round: "
        f"{'yes' if summary.same_score else 'NO'}; same trials (states and values): "
        f"{'yes' if summary.same_trials else 'NO'}; largest difference "
        f"{summary.max_difference:.3g}"
    )
    for line in summary.differences:
        print(f"  {line}")


def render(
    summary: Summary,
    sides: list[Side],
    sizes: Sizes,
    *,
    seed: int,
    info: list[tuple[str, str]],
    quick: bool,
) -> str:
    met = summary.met
    yes = {True: "yes", False: "**no**"}
    n = sizes.trials
    lines = [
        BEGIN,
        "## Tuning: shipyard vs plain Optuna and Optuna + MLflow",
        "",
        "Produced by `.venv/bin/python benchmarks/training.py"
        + (" --quick" if quick else "")
        + " --write-docs`"
        + (" (a **quick** smoke run: fewer trials, one round)." if quick else ".")
        + f" The job: breast cancer data (569 x 30, binary), random forest and histogram "
        f"gradient boosting, {n} Optuna trials each ({n * len(MODELS)} in all), "
        f"{FOLDS}-fold stratified CV, ROC AUC, seed {seed}. "
        f"Median wall time of the whole job over {sizes.rounds} round(s).",
        "",
        "| side | wall time | / plain Optuna | above plain Optuna | best CV ROC AUC | runs |",
        "|---|---:|---:|---:|---|---:|",
    ]
    plain = summary.seconds["optuna"]
    for side in sides:
        s = summary.seconds[side.name]
        family, score = summary.best[side.name]
        lines.append(
            f"| {LABELS[side.name]} | {s:.1f} s | {s / plain:.3f}x | {s - plain:+.1f} s | "
            f"{score:.12f} ({family}) | {side.results[0]['runs']} |"
        )
    lines += [
        "",
        "| target | measured | met |",
        "|---|---:|:-:|",
        f"| shipyard's overhead over plain Optuna (both on one core) < {MAX_OVERHEAD:.0%} | "
        f"{summary.overhead:+.1%} | {yes[met['overhead']]} |",
        f"| Optuna + MLflow / shipyard (defaults) >= {MIN_SPEEDUP:g}x | "
        f"**{summary.speedup:.2f}x** | "
        f"{yes[met['speedup']]} |",
        f"| (not a target) time above plain Optuna, Optuna + MLflow / shipyard on one core | "
        f"{summary.tracking_ratio:.2f}x | |",
        f"| same best CV ROC AUC, every side and round | "
        f"{'same' if summary.same_score else 'differs'} | {yes[met['same_score']]} |",
        "",
        "Same trials on every side (each trial's state and score): "
        + ("yes" if summary.same_trials else "**no**: " + "; ".join(summary.differences))
        + f"; the largest difference between two sides' scores: {summary.max_difference:.3g}.",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How it is measured:",
        "",
        "- Each side runs the whole job in a fresh process and a fresh temporary folder, the "
        "order rotating every round, with `OMP_NUM_THREADS=1` (histogram gradient boosting "
        "would otherwise use every core and the sides would fight over them; the random "
        "forest has `n_jobs=1`). The clock starts after the script's top-level imports "
        "(pandas, scikit-learn, Optuna, and `shipyard` or `mlflow` + `mlflow.sklearn`) and "
        "loading the data, and stops when the best model is refitted on all rows and, where "
        "tracked, logged; whatever a tool imports lazily or sets up (store, schema) is inside.",
        "- shipyard (defaults): a trial's first fold runs in the process; when the folds left "
        "would take a second or more, they run in a pool of one process per core (joblib), "
        "their results taken in fold order, so the pruner sees the same values at the same "
        "steps and every score is identical to a sequential run (the table checks it). "
        "`shipyard-1core` passes `fold_jobs=1`: everything in one process, like the "
        "hand-written scripts, which is the like-for-like row for the overhead target.",
        "- shipyard: `sy.train(frame, 'target', models=['random_forest', "
        f"'hist_gradient_boosting'], tune={n}, cv={FOLDS}, seed=S)` then `sy.flush()`, into a "
        "new SQLite store: a training run, a nested run per trial (params, every binary "
        "metric's CV mean and std, fit time; pruned trials too), the Optuna study in "
        "`optuna-journal.log` (Optuna's journal file beside the SQLite database), a "
        "leaderboard, the refit logged as a model folder (skops, signature from the "
        "training data, input example).",
        "- plain Optuna: per family `optuna.create_study` in memory, `TPESampler(seed=S)`, "
        "`MedianPruner(n_startup_trials=5, n_warmup_steps=1)`, the trial reporting the "
        "running mean of the fold scores after each fold; `StratifiedKFold(5, shuffle=True, "
        "random_state=S)`; the pipeline shipyard builds (median `SimpleImputer` in a "
        "`ColumnTransformer`, then the estimator with `random_state=S`, `n_jobs=1` for the "
        "forest) and the same `trial.suggest_*` calls in the same order, read from a recipe "
        "`benchmarks/training.py` takes from shipyard and checks against `build_pipeline`; "
        "`roc_auc_score` on `predict_proba`. The best trial of the best family is refitted "
        "on all rows. Nothing is logged.",
        "- Optuna + MLflow: the plain script in MLflow's venv (`.bench-venv/mlflow`, the "
        "same Optuna and scikit-learn versions), with a SQLite tracking URI and local "
        "artifacts: a parent run with the job's params, a nested run per trial "
        "(`log_params`, `log_metrics` of the CV mean and std and fit time, `set_tags`; "
        "pruned trials with their running mean), then a nested run for the best with "
        "`mlflow.sklearn.log_model(model, name='model', input_example=X.head(5), "
        "skops_trusted_types=[...])` (MLflow's defaults otherwise: it infers the signature "
        "and the pip requirements; its default skops format refuses to log the fitted trees "
        "unless their types are listed as trusted).",
        "- shipyard scores each fold with its own metrics kernel, the hand-written sides "
        f"with `roc_auc_score`; scores count as the same within {SAME_SCORE:g}.",
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
    parser.add_argument("--quick", action="store_true", help="4 trials per family, one round")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--trials", type=int, help="override the trials per family")
    parser.add_argument("--seed", type=int, default=0, help="the job's seed (default 0)")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--mlflow-spec", default="mlflow", help="what to pip install for MLflow")
    parser.add_argument("--tmp", type=Path, help="where the temporary folders go")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    sizes = Sizes(rounds=args.rounds or sizes.rounds, trials=args.trials or sizes.trials)
    mlflow_python = ensure_mlflow(args.mlflow_spec)
    matched = ensure_packages(mlflow_python)
    mlflow_version = package_version(mlflow_python, "mlflow")
    sides = [
        Side("shipyard", Path(sys.executable)),
        Side("shipyard-1core", Path(sys.executable)),
        Side("optuna", Path(sys.executable)),
        Side("optuna-mlflow", mlflow_python),
    ]
    log(f"shipyard and plain Optuna with {sys.executable}; MLflow {mlflow_version} with "
        f"{mlflow_python}; {sizes.trials} trials per family, {sizes.rounds} round(s)")  # fmt: skip
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-training-", dir=args.tmp))
    try:
        recipe = tmp / "job.json"
        recipe.write_text(json.dumps(make_recipe(args.seed, sizes.trials), indent=1))
        run_rounds(sides, recipe, sizes.rounds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(sides)
    print_summary(summary, sides)
    if args.write_docs:
        info = machine_info(mlflow_version, load_before)
        info.insert(
            -1,
            (
                "libraries",
                ", ".join(f"{p} {ours}" for p, (ours, _) in matched.items())
                + "; MLflow's venv: "
                + ", ".join(f"{p} {theirs}" for p, (_, theirs) in matched.items()),
            ),
        )
        write_docs(render(summary, sides, sizes, seed=args.seed, info=info, quick=args.quick))
    return 0 if all(summary.met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
