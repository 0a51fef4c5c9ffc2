"""Pipelines: ``shipyard pipeline run`` against ``dvc repro`` and the same three scripts run
by hand, on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/pipelines.py               # full run, 3 rounds (~5 minutes)
    .venv/bin/python benchmarks/pipelines.py --quick       # 100 trees, one round (~1 minute)
    .venv/bin/python benchmarks/pipelines.py --write-docs  # also update docs/benchmarks.md
    .venv/bin/python benchmarks/pipelines.py --sides hand,dvc --rounds 5 --keep

The pipeline: three plain Python scripts in ``benchmarks/pipeline_steps/`` that read the
flat ``params.yaml`` beside them (test_size, seed, n_estimators, max_depth):

prepare   scikit-learn's bundled breast cancer data (569 x 30), a stratified train/test
          split, to ``data/prepared.csv``
train     a ``RandomForestClassifier(n_estimators, max_depth, n_jobs=1)`` on the train
          rows, to ``models/model.joblib`` (2,000 trees: some 8 s of real work for the
          whole pipeline on an idle machine, so a tool's overhead shows)
evaluate  accuracy, F1 and ROC AUC on the test rows, to ``metrics.json``

``dvc.yaml`` and ``shipyard.yaml`` beside them declare the same three steps (command,
deps: the script and its inputs, params, outs). Sides, each round in a fresh copy of
the project folder (the scripts, ``params.yaml`` and that side's spec, committed to a
fresh git repository) and a fresh store or cache, every command a subprocess timed from
spawn to exit, ``python`` on the PATH the project venv's for every side:

hand      the floor: ``python prepare.py && python train.py && python evaluate.py``
          (``sh -c``); after the param change ``python train.py && python evaluate.py``
dvc       ``dvc repro``, ``dvc repro`` again (no-op), ``dvc status``, then ``dvc repro``
          after the param change, in a repository made with ``git init`` + ``dvc init``;
          DVC from its own venv ``.bench-venv/dvc`` (``dvc==3.67.1``, made on first use):
          it pins ``antlr4-python3-runtime==4.9.*`` through hydra-core/omegaconf, which
          pip would downgrade under moto's server (4.13 here), so not the ``bench`` extra.
          ``DVC_NO_ANALYTICS=1`` and a fresh ``DVC_SITE_CACHE_DIR``
shipyard  ``shipyard pipeline run``, the same again (no-op), ``shipyard pipeline
          status``, then ``shipyard pipeline run`` after the param change, with
          ``SHIPYARD_HOME`` a fresh folder whose empty store is made beforehand,
          untimed, as ``dvc init`` is; "could not run" until the CLI exists

The param change sets ``max_depth`` (a train param) from 8 to 7 in ``params.yaml``: train
and evaluate must rerun, prepare must not. Every step appends its name and its process's
lifetime to ``$BENCH_STEP_LOG`` (a file outside the project folder), so each command's
steps are checked: a no-op that ran a step, or a rerun that ran the wrong ones, is shown
and misses its target. ``metrics.json`` must come out byte-identical on every side.

``--rounds`` rounds (3 by default), the side order reversed every other round; figures
are medians over the rounds. Targets (issue 8): shipyard's no-op rerun under 0.3 s as a
whole command and at least 5x faster than DVC's no-op ``dvc repro``; shipyard's first
run at most 5% over the scripts by hand. Exit status 1 when a target is missed.
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
from dataclasses import dataclass, field
from pathlib import Path

from _common import Target, replace_section, verdict
from tracking import log, machine_info, package_version

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
STEPS_DIR = HERE / "pipeline_steps"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- pipelines-benchmark:begin -->"
END = "<!-- pipelines-benchmark:end -->"
DVC_VENV = ROOT / ".bench-venv" / "dvc"
DVC_SPEC = "dvc==3.67.1"

SCRIPTS = ("_bench.py", "prepare.py", "train.py", "evaluate.py")
STEPS = ("prepare", "train", "evaluate")
SIDES = ("hand", "dvc", "shipyard")
LABELS = {
    "hand": "the scripts by hand (floor)",
    "dvc": "DVC `dvc repro`",
    "shipyard": "shipyard `shipyard pipeline run`",
}
SPEC_FILE = {"dvc": "dvc.yaml", "shipyard": "shipyard.yaml"}

# The timed commands, in order; None: the side has no such command.
PHASES = ("first", "noop", "status", "param")
PHASE_LABELS = {
    "first": "first run",
    "noop": "no-op rerun",
    "status": "status",
    "param": "rerun after a param change",
}
HAND_ALL = "python prepare.py && python train.py && python evaluate.py"
HAND_TRAIN = "python train.py && python evaluate.py"
COMMANDS: dict[str, dict[str, list[str] | None]] = {
    "hand": {"first": ["sh", "-c", HAND_ALL], "noop": None, "status": None,
             "param": ["sh", "-c", HAND_TRAIN]},
    "dvc": {"first": ["dvc", "repro"], "noop": ["dvc", "repro"], "status": ["dvc", "status"],
            "param": ["dvc", "repro"]},
    "shipyard": {"first": ["shipyard", "pipeline", "run"], "noop": ["shipyard", "pipeline", "run"],
                 "status": ["shipyard", "pipeline", "status"],
                 "param": ["shipyard", "pipeline", "run"]},
}  # fmt: skip
EXPECTED = {"first": STEPS, "noop": (), "status": (), "param": ("train", "evaluate")}

TREES = 2000
QUICK_TREES = 100
MAX_DEPTH = 8
NEW_MAX_DEPTH = 7
COMMAND_TIMEOUT = 900
NOOP_UNDER_S = 0.3  # shipyard's no-op rerun, whole command
VS_DVC_NOOP = 5.0  # DVC's no-op / shipyard's, at least
FIRST_OVERHEAD = 0.05  # shipyard's first run over the floor, at most


def params_yaml(trees: int, max_depth: int) -> str:
    return f"test_size: 0.25\nseed: 0\nn_estimators: {trees}\nmax_depth: {max_depth}\n"


# -- the tools ------------------------------------------------------------------------------


def ensure_dvc(spec: str) -> tuple[Path | None, str]:
    """The ``dvc`` of ``.bench-venv/dvc`` with ``spec`` installed (made or fixed on first
    use), or (None, why it cannot run)."""
    python = DVC_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {DVC_VENV} ({spec}; first run only)...")
        made = subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=False)
        if made.returncode != 0:
            return None, "could not create its virtualenv"
    wanted = spec.split("==", 1)[1] if "==" in spec else None
    try:
        have = package_version(python, "dvc")
    except subprocess.CalledProcessError:
        have = ""
    if not have or (wanted is not None and have != wanted):
        log(f"installing {spec} into {DVC_VENV}...")
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", spec],
            capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["?"]
            return None, f"pip could not install {spec} ({tail[0][:200]})"
    return DVC_VENV / "bin" / "dvc", ""


def shipyard_exe() -> Path:
    exe = Path(sys.executable).parent / "shipyard"
    return exe if exe.exists() else Path(sys.executable)


def shipyard_argv(args: list[str]) -> list[str]:
    exe = shipyard_exe()
    if exe.name == "shipyard":
        return [str(exe), *args]
    return [str(exe), "-m", "shipyard.cli.main", *args]


def check_shipyard(env: dict[str, str], tmp: Path) -> str:
    """'' when ``shipyard pipeline run`` and ``status`` exist, else why not."""
    for sub in ("run", "status"):
        done = subprocess.run(
            shipyard_argv(["pipeline", sub, "--help"]), cwd=tmp, env=env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            box = " │╭╮╰╯─"  # typer's error panel
            lines = [ln.strip(box) for ln in (done.stderr + done.stdout).splitlines()]
            lines = [ln for ln in lines if ln and not ln.startswith(("Error", "Usage:", "Try "))]
            why = lines[-1] if lines else f"exit status {done.returncode}"
            return f"`shipyard pipeline {sub}` is not there yet ({why.strip()[:160]})"
    return ""


# -- one side, one round ----------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float = math.nan
    steps: tuple[str, ...] = ()  # the steps the command ran, in the order they ended
    step_seconds: float = 0.0  # the lifetimes of those steps' processes, added up
    error: str = ""


@dataclass
class Round:
    side: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    metrics: str = ""  # metrics.json after the first run
    metrics_after: str = ""  # and after the param change
    error: str = ""


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
         "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=folder, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def environ(base: Path, steplog: Path) -> dict[str, str]:
    """The same environment for every side: the project venv first on the PATH (its
    ``python`` runs the steps), one BLAS/OpenMP thread, no telemetry, fresh tool homes."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHIPYARD_", "DVC_", "PYTHONPATH", "VIRTUAL_ENV"))}  # fmt: skip
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
        DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(base / "dvc-site-cache"),
        SHIPYARD_HOME=str(base / "shipyard-home"), BENCH_STEP_LOG=str(steplog),
        GIT_CONFIG_NOSYSTEM="1",
    )  # fmt: skip
    return env


def make_project(folder: Path, side: str, trees: int, dvc: Path | None,
                 env: dict[str, str]) -> None:  # fmt: skip
    """A fresh copy of the project: the scripts, params.yaml, the side's spec; committed."""
    folder.mkdir(parents=True)
    for name in SCRIPTS:
        shutil.copy2(STEPS_DIR / name, folder / name)
    (folder / "params.yaml").write_text(params_yaml(trees, MAX_DEPTH))
    if side in SPEC_FILE:
        shutil.copy2(STEPS_DIR / SPEC_FILE[side], folder / SPEC_FILE[side])
    git(folder, "init", "-q")
    if side == "dvc":
        assert dvc is not None
        subprocess.run([str(dvc), "init", "-q"], cwd=folder, env=env, check=True,
                       capture_output=True, timeout=COMMAND_TIMEOUT)  # fmt: skip
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "the project")
    if side == "shipyard":
        make_store(folder, env)


def make_store(folder: Path, env: dict[str, str]) -> None:
    """Create the (empty) store in ``$SHIPYARD_HOME``, untimed as ``dvc init`` is; if that
    fails the first run pays for it, as it would in a project without a store."""
    code = "from shipyard.cli._common import open_stores; open_stores(create=True)"
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["?"]
        log(f"  shipyard: could not make the store beforehand ({lines[-1][:200]})")


def argv_of(side: str, phase: str, dvc: Path | None) -> list[str] | None:
    argv = COMMANDS[side][phase]
    if argv is None:
        return None
    if side == "dvc":
        assert dvc is not None
        return [str(dvc), *argv[1:]]
    if side == "shipyard":
        return shipyard_argv(argv[1:])
    return list(argv)


def run_command(argv: list[str], folder: Path, env: dict[str, str], steplog: Path) -> Outcome:
    steplog.write_text("")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Outcome(error=f"timed out after {COMMAND_TIMEOUT} s")
    seconds = time.perf_counter() - t0
    ran = [line.split() for line in steplog.read_text().splitlines() if line.strip()]
    out = Outcome(seconds, tuple(r[0] for r in ran), sum(float(r[1]) for r in ran))
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        out.error = (lines[-1].strip()[:300] if lines else "") or f"exit {proc.returncode}"
    return out


def run_side(side: str, base: Path, trees: int, dvc: Path | None) -> Round:
    """Make the side's project in ``base`` and time its commands, in order."""
    base.mkdir(parents=True)
    folder, steplog = base / "project", base / "steps.log"
    env = environ(base, steplog)
    result = Round(side)
    try:
        make_project(folder, side, trees, dvc, env)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        result.error = f"could not set up the project: {exc}"
        return result
    for phase in PHASES:
        if phase == "param":
            (folder / "params.yaml").write_text(params_yaml(trees, NEW_MAX_DEPTH))
        argv = argv_of(side, phase, dvc)
        if argv is None:
            continue
        out = run_command(argv, folder, env, steplog)
        result.outcomes[phase] = out
        metrics = folder / "metrics.json"
        if phase == "first" and metrics.exists():
            result.metrics = metrics.read_text()
        if phase == "param" and metrics.exists():
            result.metrics_after = metrics.read_text()
        note = "" if out.steps == EXPECTED[phase] else f" (ran: {', '.join(out.steps) or 'none'})"
        if out.error:
            log(f"  {side:8s} {PHASE_LABELS[phase]:27s} FAILED: {out.error}")
            result.error = out.error
            break
        log(f"  {side:8s} {PHASE_LABELS[phase]:27s} {out.seconds:7.3f} s "
            f"(steps' processes {out.step_seconds:6.2f} s){note}")  # fmt: skip
    return result


def warm_up(dvc: Path | None, shipyard_ok: bool, tmp: Path) -> None:
    """Read every side's files once, so no side pays for a cold page cache."""
    env = environ(tmp, tmp / "warm.log")
    cmds = [[sys.executable, "-c", "import joblib, pandas, sklearn.ensemble, sklearn.metrics, "
             "sklearn.model_selection, yaml"]]  # fmt: skip
    if dvc is not None:
        cmds.append([str(dvc), "--version"])
    if shipyard_ok:
        cmds.append(shipyard_argv(["pipeline", "status", "--help"]))
    for argv in cmds:
        subprocess.run(argv, cwd=tmp, env=env, capture_output=True, timeout=300, check=False)


def run(sides: list[str], rounds: int, trees: int, dvc: Path | None, tmp: Path, *,
        keep: bool) -> dict[str, list[Round]]:  # fmt: skip
    results: dict[str, list[Round]] = {s: [] for s in sides}
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for side in sides if r % 2 == 0 else list(reversed(sides)):
            base = tmp / f"round-{r + 1}" / side
            results[side].append(run_side(side, base, trees, dvc))
            if not keep:
                shutil.rmtree(base, ignore_errors=True)
    return results


# -- summary ----------------------------------------------------------------------------------


@dataclass
class Row:
    side: str
    error: str = ""
    medians: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)  # median, per phase
    wrong: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # unexpected steps
    metrics: str = ""
    metrics_after: str = ""


def summarize(results: dict[str, list[Round]], problems: dict[str, str]) -> list[Row]:
    rows = []
    for side in SIDES:
        if side in problems:
            rows.append(Row(side, error=problems[side]))
            continue
        if side not in results:
            continue
        good = [r for r in results[side] if not r.error]
        if not good:
            errors = [r.error for r in results[side]]
            rows.append(Row(side, error=errors[0] if errors else "did not run"))
            continue
        row = Row(side, metrics=good[0].metrics, metrics_after=good[0].metrics_after)
        for phase in PHASES:
            outs = [r.outcomes[phase] for r in good if phase in r.outcomes]
            if not outs:
                continue
            row.samples[phase] = [o.seconds for o in outs]
            row.medians[phase] = statistics.median(row.samples[phase])
            row.step_seconds[phase] = statistics.median(o.step_seconds for o in outs)
            wrong = [o.steps for o in outs if o.steps != EXPECTED[phase]]
            if wrong:
                row.wrong[phase] = wrong
        if len(good) < len(results[side]):
            row.error = f"{len(results[side]) - len(good)} round(s) failed: " + next(
                r.error for r in results[side] if r.error
            )
        rows.append(row)
    return rows


def _row(rows: list[Row], side: str) -> Row | None:
    return next((r for r in rows if r.side == side and r.medians), None)


def ran_note(row: Row, phase: str) -> str:
    wrong = row.wrong.get(phase)
    if not wrong:
        return ""
    shown = "; ".join(", ".join(w) or "none" for w in wrong)
    expected = ", ".join(EXPECTED[phase]) or "none"
    return f" (ran {shown} where {expected} was due)"


def targets(rows: list[Row]) -> list[Target]:
    ours, dvc, hand = (_row(rows, s) for s in ("shipyard", "dvc", "hand"))
    out = []
    label = f"shipyard's no-op rerun < {NOOP_UNDER_S * 1000:.0f} ms (whole command)"
    if ours is None or "noop" not in ours.medians:
        out.append(Target(label, "n/a (shipyard did not run)", None))
    else:
        s = ours.medians["noop"]
        out.append(Target(label, f"**{secs(s)}**{ran_note(ours, 'noop')}",
                          s < NOOP_UNDER_S and "noop" not in ours.wrong))  # fmt: skip
    label = f"DVC's no-op `dvc repro` / shipyard's >= {VS_DVC_NOOP:g}x"
    if ours is None or dvc is None or "noop" not in ours.medians or "noop" not in dvc.medians:
        out.append(Target(label, "n/a (a side did not run)", None))
    else:
        ratio = dvc.medians["noop"] / ours.medians["noop"]
        out.append(Target(label, f"**{ratio:.1f}x** ({secs(dvc.medians['noop'])} / "
                          f"{secs(ours.medians['noop'])}){ran_note(ours, 'noop')}",
                          ratio >= VS_DVC_NOOP and "noop" not in ours.wrong))  # fmt: skip
    label = f"shipyard's first run over the scripts by hand < {FIRST_OVERHEAD:.0%}"
    if ours is None or hand is None or "first" not in ours.medians:
        out.append(Target(label, "n/a (a side did not run)", None))
    else:
        over = ours.medians["first"] / hand.medians["first"] - 1
        out.append(Target(label, f"**{over:+.1%}** ({secs(ours.medians['first'])} / "
                          f"{secs(hand.medians['first'])}){ran_note(ours, 'first')}",
                          over < FIRST_OVERHEAD and "first" not in ours.wrong))  # fmt: skip
    return out


def checks(rows: list[Row]) -> list[str]:
    """What went other than planned: wrong steps run, metrics that differ from the floor's."""
    notes = []
    hand = _row(rows, "hand")
    for row in rows:
        if not row.medians:
            continue
        for phase in PHASES:
            if note := ran_note(row, phase):
                notes.append(f"{row.side} {PHASE_LABELS[phase]}:{note}")
        if hand is not None and row is not hand:
            for what, mine, theirs in (
                ("first run", row.metrics, hand.metrics),
                ("param change", row.metrics_after, hand.metrics_after),
            ):
                if mine != theirs:
                    notes.append(f"{row.side}: metrics.json after the {what} differs from the "
                                 f"floor's")  # fmt: skip
    return notes


# -- output -----------------------------------------------------------------------------------


def secs(s: float) -> str:
    if math.isnan(s):
        return "n/a"
    return f"{s * 1000:,.0f} ms" if s < 1 else f"{s:,.2f} s"


def cell(row: Row, phase: str) -> str:
    if phase not in row.medians:
        return "—"
    return secs(row.medians[phase]) + ("*" if phase in row.wrong else "")


def overhead_cell(rows: list[Row], row: Row, phase: str) -> str:
    hand = _row(rows, "hand")
    if hand is None or phase not in row.medians or phase not in hand.medians:
        return "—"
    if row is hand:
        return "floor"
    return f"{row.medians[phase] / hand.medians[phase] - 1:+.1%}"


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| side | first run | over the floor | no-op rerun | status | "
        "rerun after a param change | over the floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r.medians:
            lines.append(f"| {LABELS[r.side]} | could not run: {r.error} | | | | | |")
            continue
        lines.append(
            f"| {LABELS[r.side]} | {cell(r, 'first')} | {overhead_cell(rows, r, 'first')} | "
            f"{cell(r, 'noop')} | {cell(r, 'status')} | {cell(r, 'param')} | "
            f"{overhead_cell(rows, r, 'param')} |"
        )
    return lines


def sample_lines(rows: list[Row]) -> list[str]:
    lines = []
    for r in rows:
        if not r.medians:
            continue
        parts = []
        for phase in PHASES:
            if phase in r.samples:
                shown = ", ".join(f"{s:.3f}" for s in r.samples[phase])
                steps = r.step_seconds[phase]
                parts.append(f"{PHASE_LABELS[phase]} {shown}" + (
                    f" (steps' processes {steps:.2f} s)" if steps else ""))  # fmt: skip
        lines.append(f"{r.side}: " + "; ".join(parts))
    return lines


def print_summary(rows: list[Row], tgts: list[Target], notes: list[str]) -> None:
    print()
    print("\n".join(table(rows)))
    print("\n| target | measured | met |\n|---|---|:-:|")
    for t in tgts:
        print(f"| {t.label} | {t.measured} | {verdict(t.met)} |")
    print("\nPer round, in seconds:")
    for line in sample_lines(rows):
        print(f"  {line}")
    for note in notes:
        print(f"note: {note}")
    for r in rows:
        if r.error and r.medians:
            print(f"note: {r.side}: {r.error}")
    print()
    for t in tgts:
        status = {True: "met", False: "MISSED", None: "not judged"}[t.met]
        print(f"{t.label}: {t.measured.replace('**', '')}  {status}")


def render(rows: list[Row], tgts: list[Target], notes: list[str], *, rounds: int, trees: int,
           info: list[tuple[str, str]], command: str) -> str:  # fmt: skip
    lines = [
        BEGIN,
        "## Pipelines: shipyard vs DVC and the scripts by hand",
        "",
        f"Produced by `{command}`. A three-step pipeline (prepare: breast cancer data split "
        f"to CSV; train: a random forest of {trees:,} trees; evaluate: metrics to JSON), "
        "three plain Python scripts reading `params.yaml`, run by hand, by `dvc repro` and "
        "by `shipyard pipeline run`, each round in a fresh git repository holding a copy "
        "of the project and a fresh store. Every figure is a whole command, process start "
        f"to exit, median over {rounds} round(s), the side order reversed every other "
        "round. *No-op rerun*: the same command again with nothing changed; *status*: "
        "`dvc status` / `shipyard pipeline status` right after; *rerun after a param "
        f"change*: `max_depth` {MAX_DEPTH} -> {NEW_MAX_DEPTH} in `params.yaml`, so train "
        "and evaluate rerun and prepare does not (by hand: `python train.py && python "
        "evaluate.py`).",
        "",
        *table(rows),
        "",
        "| target | measured | met |",
        "|---|---|:-:|",
        *[f"| {t.label} | {t.measured} | {verdict(t.met)} |" for t in tgts],
        "",
        "Per round, in seconds (and the lifetimes of the step processes each command ran, "
        "added up):",
        "",
        *[f"- {line}" for line in sample_lines(rows)],
    ]
    if notes or any(r.error and r.medians for r in rows):
        lines += [
            "",
            *[f"Note: {n}." for n in notes],
            *[f"Note: {r.side}: {r.error}." for r in rows if r.error and r.medians],
        ]
    lines += [
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How it is measured:",
        "",
        "- The steps are `benchmarks/pipeline_steps/{prepare,train,evaluate}.py`; "
        "`dvc.yaml` and `shipyard.yaml` beside them declare the same deps (each script and "
        "its inputs), params and outs. Each step appends its name to a log outside the "
        "project folder, so every command's steps are checked (a figure marked * ran other "
        "steps than were due), and `metrics.json` is compared with the floor's.",
        "- The same environment for every side: the project venv's `python` first on the "
        "PATH (it runs the steps under every tool), `OMP_NUM_THREADS=1` (the forest uses "
        "`n_jobs=1`), `DVC_NO_ANALYTICS=1`, a fresh `DVC_SITE_CACHE_DIR` and `SHIPYARD_HOME` "
        "per round. Before the rounds each side's imports are run once, so no side pays for "
        "a cold page cache.",
        f"- DVC runs from its own venv (`.bench-venv/dvc`, `{DVC_SPEC}`, made on first use): "
        "through hydra-core and omegaconf it pins `antlr4-python3-runtime==4.9.*`, which "
        "would downgrade the 4.13 that moto's server uses in our dev venv. The repository "
        "is made with `git init`, `dvc init` and a commit of the project, untimed; "
        "shipyard's empty store in `SHIPYARD_HOME` is made beforehand, untimed too.",
        END,
    ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TREES} trees, one round (unless --rounds)")  # fmt: skip
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--trees", type=int, help=f"n_estimators (default {TREES:,})")
    parser.add_argument("--sides", default=",".join(SIDES),
                        help=f"comma-separated subset of {','.join(SIDES)}")  # fmt: skip
    parser.add_argument("--dvc-spec", default=DVC_SPEC, help="what to pip install for DVC")
    parser.add_argument("--keep", action="store_true", help="keep the project folders")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file --write-docs updates")
    parser.add_argument("--tmp", type=Path, help="where the temporary folder goes")
    args = parser.parse_args(argv)

    rounds = args.rounds or (1 if args.quick else 3)
    trees = args.trees or (QUICK_TREES if args.quick else TREES)
    wanted = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SIDES]
    if unknown:
        parser.error(f"unknown side(s): {', '.join(unknown)}")
    sides = [s for s in SIDES if s in wanted]

    problems: dict[str, str] = {}
    dvc: Path | None = None
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-pipelines-", dir=args.tmp))
    if "dvc" in sides:
        dvc, problem = ensure_dvc(args.dvc_spec)
        if dvc is None:
            problems["dvc"] = problem
    if "shipyard" in sides:
        check_dir = tmp / "check"
        check_dir.mkdir()
        if problem := check_shipyard(environ(check_dir, check_dir / "steps.log"), check_dir):
            problems["shipyard"] = problem
    for side, problem in problems.items():
        log(f"{side} cannot run: {problem}")
    running = [s for s in sides if s not in problems]
    dvc_version = package_version(DVC_VENV / "bin" / "python", "dvc") if dvc else ""
    log(f"steps and shipyard with {sys.executable}"
        + (f"; DVC {dvc_version} ({dvc})" if dvc else "")
        + f"; {rounds} round(s) of {', '.join(running) or 'nothing'}, {trees:,} trees"
        + (f"; keeping {tmp}" if args.keep else ""))  # fmt: skip

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        warm_up(dvc, "shipyard" in running, tmp)
        results = run(running, rounds, trees, dvc, tmp, keep=args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")

    rows = summarize(results, {s: p for s, p in problems.items() if s in sides})
    rows = [r for r in rows if r.side in sides]
    tgts = targets(rows)
    notes = checks(rows)
    print_summary(rows, tgts, notes)

    if args.write_docs:
        info = [(k, v) for k, v in machine_info("", load_before) if k != "mlflow"]
        ours = Path(sys.executable)
        libs = ", ".join(f"{p} {package_version(ours, p)}"
                         for p in ("scikit-learn", "pandas", "numpy", "joblib"))  # fmt: skip
        info.insert(-1, ("steps run with", f"the project venv's python: {libs}"))
        if dvc:
            info.insert(-1, ("dvc", f"{dvc_version} (its own venv), with git "
                             + subprocess.run(["git", "--version"], capture_output=True,
                                              text=True).stdout.split()[-1]))  # fmt: skip
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
            text=True, check=False,
        ).stdout.splitlines()  # fmt: skip
        changed = [line[3:] for line in changed if line.strip()]
        if changed:
            info.insert(-1, ("uncommitted in src/ at run time", ", ".join(changed)))
        command = ".venv/bin/python benchmarks/pipelines.py" + "".join(
            f" {flag} {value}" for flag, value, default in (
                ("--rounds", rounds, 3), ("--trees", trees, TREES)) if value != default
        ) + " --write-docs"  # fmt: skip
        section = render(rows, tgts, notes, rounds=rounds, trees=trees, info=info,
                         command=command)  # fmt: skip
        replace_section(args.doc, BEGIN, END, section)
        log(f"wrote {args.doc}")
    return 0 if all(t.met is not False for t in tgts) else 1


if __name__ == "__main__":
    sys.exit(main())
