"""Model registry and audit log: loading a registered model, shipyard against MLflow, and
``audit verify`` over 100,000 events, on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/registry.py               # full run, ~3-4 minutes
    .venv/bin/python benchmarks/registry.py --quick       # smoke run, ~1 minute
    .venv/bin/python benchmarks/registry.py --write-docs  # also update docs/benchmarks.md

Load: scikit-learn's breast cancer data (569 x 30, binary), a
``RandomForestClassifier(n_estimators=100, random_state=0)`` fitted on it, logged and
registered once per side in a fresh temporary store (not timed), then loaded by name in
a fresh process per side and round, the side order rotating every round:

shipyard      ``sy.load_model("rf@1")``: the version looked up, every file's BLAKE3
              checked against the metadata before anything is deserialised, skops.
mlflow        ``mlflow.sklearn.load_model("models:/rf/1")`` of a model logged with
              ``serialization_format="cloudpickle"`` (a pickle file, MLflow's default
              before 3.0), SQLite tracking and registry store, local artifacts.
mlflow-skops  the same with MLflow 3's default skops format (not a target: the same
              file format as shipyard's, to show what the format costs).

Each load process imports the tool (``shipyard``, or ``mlflow`` + ``mlflow.sklearn``)
and loads the data before its clock starts; the first load is timed alone ("first
load in a new process": whatever the tool sets up lazily and the model's classes'
imports are inside), then 20 more are timed one by one ("warm", median). Every
loaded model's predictions on all 569 rows must equal the fitted model's.

Audit: 100,000 events appended with ``shipyard.store.audit.append_event`` in
transactions of 10,000 (not timed), then ``shipyard.governance.verify_audit_log`` timed
5 times per round in a fresh process, on SQLite and, when reachable, on PostgreSQL (a
throwaway database on ``--pg-url``, dropped afterwards). Also timed once per round: the
whole ``shipyard audit verify --json`` command.

Targets: shipyard's warm load within 1.5x of MLflow's (pickle) despite the verification;
verifying 100,000 events in under 1 s.

MLflow runs in its own virtualenv (``.bench-venv/mlflow``, see ``tracking.py``) with
the scikit-learn and NumPy versions of ours (``training.py``'s ``ensure_packages``).
This file is also the worker: ``registry.py load-shipyard --dir D`` etc. run one side in
the calling interpreter; it imports nothing beyond the standard library at the top, so
MLflow's venv can run it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import emit, replace_section
from tracking import Side, ensure_mlflow, log, machine_info, package_version
from training import ensure_packages

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- registry-benchmark:begin -->"
END = "<!-- registry-benchmark:end -->"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

MODEL_NAME = "rf"
TREES = 100
SEED = 0
APPEND_BATCH = 10_000  # audit events per write transaction while filling the log
MAX_LOAD_RATIO = 1.5  # shipyard warm load / MLflow (pickle) warm load
MAX_VERIFY_S = 1.0  # for TARGET_EVENTS events
TARGET_EVENTS = 100_000

LOAD_SIDES = ("shipyard", "mlflow", "mlflow-skops")
LABELS = {
    "shipyard": "shipyard `sy.load_model('rf@1')`",
    "mlflow": "MLflow `mlflow.sklearn.load_model('models:/rf/1')`",
    "mlflow-skops": "MLflow, same call, skops format (not a target)",
}
FORMATS = {
    "shipyard": "skops, every file's BLAKE3 checked, types audited",
    "mlflow": "cloudpickle (pickle)",
    "mlflow-skops": "skops (MLflow 3's default)",
}
WORKLOADS = (
    *(f"setup-{s}" for s in LOAD_SIDES),
    *(f"load-{s}" for s in LOAD_SIDES),
    "audit-setup",
    "audit-verify",
)


@dataclass(frozen=True)
class Sizes:
    rounds: int
    loads: int  # warm loads per process, after the first
    events: int  # audit events
    verifies: int  # timed verifies per process


FULL = Sizes(rounds=3, loads=20, events=TARGET_EVENTS, verifies=5)
QUICK = Sizes(rounds=1, loads=5, events=20_000, verifies=3)


# -- the workers (run in either venv: imports inside) ------------------------------------


def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def _fit(X: Any, y: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=TREES, random_state=SEED).fit(X, y)


def _fingerprint(model: Any, X: Any) -> str:
    """A digest of the model's class probabilities and labels on every row."""
    import numpy as np

    proba = np.ascontiguousarray(model.predict_proba(X), dtype=np.float64)
    labels = np.ascontiguousarray(model.predict(X), dtype=np.int64)
    return hashlib.sha256(proba.tobytes() + labels.tobytes()).hexdigest()[:16]


def _save_expected(folder: Path, fingerprint: str) -> None:
    (folder / "expected.json").write_text(json.dumps({"fingerprint": fingerprint}))


def _expected(folder: Path) -> str:
    return str(json.loads((folder / "expected.json").read_text())["fingerprint"])


def setup_shipyard(folder: Path) -> dict[str, Any]:
    import shipyard as sy

    X, y = _data()
    model = _fit(X, y)
    t0 = time.perf_counter()
    with sy.start_run(name="rf"):
        logged = sy.log_model(model, "model", input_example=X[:5])
    version = sy.register_model(logged.run_id, MODEL_NAME)
    seconds = time.perf_counter() - t0
    if version.version != 1:
        raise RuntimeError(f"expected version 1 in a fresh store, got {version.version}")
    meta = sy.model_registry().model_meta(version)
    _save_expected(folder, _fingerprint(model, X))
    return {
        "seconds": seconds,
        "files": {name: entry["size"] for name, entry in meta.files.items()},
        "model_bytes": meta.files["model.skops"]["size"],
    }


def setup_mlflow(folder: Path, serialization: str) -> dict[str, Any]:
    import mlflow
    import mlflow.sklearn

    X, y = _data()
    model = _fit(X, y)
    options: dict[str, Any] = {"serialization_format": serialization}
    if serialization == "skops":
        import skops.io

        # what MLflow asks a user to trust for this model (it refuses to log it otherwise)
        options["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    t0 = time.perf_counter()
    client = mlflow.MlflowClient()
    experiment = client.create_experiment(
        "registry", artifact_location=(folder / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)
    with mlflow.start_run(run_name="rf"):
        mlflow.sklearn.log_model(
            model, name="model", input_example=X.head(5), registered_model_name=MODEL_NAME,
            **options,
        )  # fmt: skip
    seconds = time.perf_counter() - t0
    client.get_model_version(MODEL_NAME, "1")  # raises if the registration is missing
    model_file = "model.pkl" if serialization != "skops" else "model.skops"
    [path] = list((folder / "artifacts").rglob(model_file))
    _save_expected(folder, _fingerprint(model, X))
    return {"seconds": seconds, "model_bytes": path.stat().st_size}


def _shipyard_breakdown(repeat: int) -> dict[str, float]:
    """Median seconds of each step of ``sy.load_model`` (shipyard internals: best effort)."""
    import copy

    import skops.io

    from shipyard import client
    from shipyard.registry.flavors.sklearn import check_trusted
    from shipyard.store.objects import hash_bytes

    registry = client.model_registry()
    objects = registry.tracker.objects
    version = registry.store.get_version(f"{MODEL_NAME}@1")
    meta = registry.model_meta(version)
    digests = [version.meta_digest, *(entry["digest"] for entry in meta.files.values())]
    files = [objects.get_bytes(d) for d in digests[1:]]
    data = objects.get_bytes(meta.files["model.skops"]["digest"])
    recorded = list(meta.options["trusted_types"])
    kept = skops.io.loads(data, trusted=recorded)
    steps: dict[str, Callable[[], Any]] = {
        "registry lookup (the version's row)": lambda: registry.store.get_version(
            f"{MODEL_NAME}@1"
        ),
        "read metadata + files (the object store hashes each)": lambda: [
            objects.get_bytes(d) for d in digests
        ],
        "BLAKE3 of the files again (checked against the metadata)": lambda: [
            hash_bytes(b) for b in files
        ],
        "trust rules on the type list recorded at save": lambda: check_trusted(recorded),
        "`skops.io.loads` (first load of the model in a process)": lambda: skops.io.loads(
            data, trusted=recorded
        ),
        "deep copy of the model kept in memory (every later load)": lambda: copy.deepcopy(kept),
    }
    out = {}
    for name, step in steps.items():
        step()
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            samples.append(time.perf_counter() - t0)
        out[name] = statistics.median(samples)
    return out


def load_side(side: str, folder: Path, repeat: int) -> dict[str, Any]:
    """First load in this (new) process, then ``repeat`` warm loads, each timed alone."""
    if side == "shipyard":
        import shipyard as sy

        def load() -> Any:
            return sy.load_model(f"{MODEL_NAME}@1")
    else:
        import mlflow
        import mlflow.sklearn

        def load() -> Any:
            return mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/1")

    X, _ = _data()
    expected = _expected(folder)
    t0 = time.perf_counter()
    model = load()
    first_s = time.perf_counter() - t0
    fingerprints = {_fingerprint(model, X)}
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model = load()
        samples.append(time.perf_counter() - t0)
        fingerprints.add(_fingerprint(model, X))
    result: dict[str, Any] = {
        "first_s": first_s,
        "samples": samples,
        "fingerprint": expected,
        "same_predictions": fingerprints == {expected},
        "loaded_type": type(getattr(model, "native", model)).__name__,
    }
    if side == "shipyard":
        try:
            result["breakdown"] = _shipyard_breakdown(repeat)
        except Exception as exc:  # internals moved: the benchmark still stands
            log(f"no breakdown of shipyard's load ({type(exc).__name__}: {exc})")
            result["breakdown"] = {}
    return result


def _audit_event(i: int) -> dict[str, Any]:
    """Event ``i`` of the filled log: the shapes the stores append, cycling."""
    run = hashlib.blake2b(b"%d" % (i // 4), digest_size=16).hexdigest()
    n = i // 4 + 1
    shapes: list[dict[str, Any]] = [
        {
            "action": "run.create",
            "entity_type": "run",
            "entity": run,
            "after": {"experiment": "1", "name": f"trial {n}"},
        },
        {
            "action": "run.end",
            "entity_type": "run",
            "entity": run,
            "before": {"status": "RUNNING"},
            "after": {"status": "FINISHED"},
        },
        {
            "action": "model.register",
            "entity_type": "model",
            "entity": f"churn@{n}",
            "after": {
                "run": run,
                "path": "model",
                "flavor": "sklearn",
                "meta_digest": hashlib.blake2b(run.encode(), digest_size=32).hexdigest(),
            },
        },
        {
            "action": "alias.set",
            "entity_type": "alias",
            "entity": "churn@production",
            "before": {"version": n - 1},
            "after": {"version": n},
        },
    ]
    return shapes[i % 4]


def _audit_db() -> Any:
    from shipyard.core.config import load_settings
    from shipyard.store.db import Database

    settings = load_settings(os.environ, cwd=Path.cwd())
    return Database(settings.db_url, busy_timeout=settings.busy_timeout)


def audit_setup(events: int) -> dict[str, Any]:
    from shipyard.store.audit import append_event, head

    db = _audit_db()
    db.ensure_schema()

    def batch(start: int, stop: int) -> Callable[[Any], None]:
        def fn(conn: Any) -> None:
            for i in range(start, stop):
                append_event(conn, actor="bench", **_audit_event(i))

        return fn

    t0 = time.perf_counter()
    for start in range(0, events, APPEND_BATCH):
        db.write(batch(start, min(events, start + APPEND_BATCH)))
    seconds = time.perf_counter() - t0
    seq, _ = head(db)
    if seq != events:
        raise RuntimeError(f"appended {events} events, the head is {seq}")
    db.dispose()
    return {"events": events, "seconds": seconds, "dialect": db.dialect}


def audit_verify(events: int, repeat: int) -> dict[str, Any]:
    from shipyard.governance import verify_audit_log

    db = _audit_db()
    t0 = time.perf_counter()
    check = verify_audit_log(db)
    first_s = time.perf_counter() - t0
    checks = [check]
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        checks.append(verify_audit_log(db))
        samples.append(time.perf_counter() - t0)
    result: dict[str, Any] = {
        "first_s": first_s,
        "samples": samples,
        "ok": all(c.ok and c.events == events and c.head_seq == events for c in checks),
        "events": check.events,
        "problems": list(check.problems)[:3],
        "profile": [],
    }
    if statistics.median(samples) > MAX_VERIFY_S * events / TARGET_EVENTS:
        result["profile"] = _profile(lambda: verify_audit_log(db))
    db.dispose()
    return result


def _profile(fn: Callable[[], Any], top: int = 12) -> list[str]:
    """The ``top`` functions of one profiled call by own time, as printable lines."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fn)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return [line for line in out.getvalue().splitlines() if line.strip()][-top - 1 :]


def worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="one side of benchmarks/registry.py")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--dir", type=Path, required=True, help="the side's folder")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls after the first")
    parser.add_argument("--events", type=int, default=TARGET_EVENTS, help="audit events")
    args = parser.parse_args(argv)
    kind, _, side = args.workload.partition("-")
    if kind == "setup":
        result = (
            setup_shipyard(args.dir)
            if side == "shipyard"
            else setup_mlflow(args.dir, "skops" if side == "mlflow-skops" else "cloudpickle")
        )
    elif kind == "load":
        result = load_side(side, args.dir, args.repeat)
    elif args.workload == "audit-setup":
        result = audit_setup(args.events)
    else:
        result = audit_verify(args.events, args.repeat)
    emit("RESULT", result)
    return 0


# -- the benchmark (project venv) ---------------------------------------------------------


@dataclass
class DbSide(Side):
    """shipyard on a given metadata database (``SHIPYARD_DB_URL``; empty: SQLite in the
    folder's store)."""

    db_url: str = ""
    backend: str = "SQLite"
    folder: Path | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    cli: list[float] = field(default_factory=list)

    def env(self, folder: Path) -> dict[str, str]:
        env = super().env(folder)
        if self.db_url:
            env["SHIPYARD_DB_URL"] = self.db_url
        return env


@contextlib.contextmanager
def pg_database(base_url: str) -> Iterator[tuple[str | None, str]]:
    """``(url, what it is)`` of a new database on ``base_url``'s server, dropped after;
    ``(None, why not)`` when there is no server to use."""
    if not base_url:
        yield None, "skipped (--pg-url '')"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"shipyard_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(
            base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        with admin.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar())
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200]
        log(f"PostgreSQL at {base_url} not usable ({type(exc).__name__}: {reason}); skipped")
        yield None, f"not reachable at {make_url(base_url).render_as_string()}, skipped"
        return
    try:
        url = make_url(base_url).set(database=name)
        note = (
            f"{version.split(maxsplit=1)[0]} on {url.host}:{url.port or 5432}, a throwaway database"
        )
        yield url.render_as_string(hide_password=False), note
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


class Bench:
    def __init__(self, sizes: Sizes, tmp: Path, mlflow_python: Path) -> None:
        self.sizes = sizes
        self.tmp = tmp
        python = Path(sys.executable)
        self.loaders = [
            Side(name, python if name == "shipyard" else mlflow_python, HERE) for name in LOAD_SIDES
        ]
        self.folders: dict[str, Path] = {}
        self.setup: dict[str, dict[str, Any]] = {}
        self.loads: dict[str, list[dict[str, Any]]] = {name: [] for name in LOAD_SIDES}
        self.audits: list[DbSide] = []

    def fresh(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.tmp))

    def rotate(self, items: list[Any], round_no: int) -> list[Any]:
        k = round_no % len(items)
        return items[k:] + items[:k]

    def run_loads(self) -> None:
        log("load: log and register the model once per side (not timed)")
        for side in self.loaders:
            folder = self.folders[side.name] = self.fresh(side.name)
            result = side.run(f"setup-{side.name}", folder)
            self.setup[side.name] = result
            log(f"  {side.name:12s} logged + registered in {result['seconds']:.2f} s, "
                f"model file {result['model_bytes'] / 1e6:.2f} MB")  # fmt: skip
        for r in range(self.sizes.rounds):
            log(f"load round {r + 1}/{self.sizes.rounds}")
            for side in self.rotate(self.loaders, r):
                result = side.run(
                    f"load-{side.name}", self.folders[side.name], repeat=self.sizes.loads
                )
                self.loads[side.name].append(result)
                log(
                    f"  {side.name:12s} first {result['first_s'] * 1000:7.1f} ms, warm median "
                    f"{statistics.median(result['samples']) * 1000:7.1f} ms "
                    f"(min {min(result['samples']) * 1000:.1f}), same predictions: "
                    f"{'yes' if result['same_predictions'] else 'NO'}"
                )

    def run_audit(self, pg_url: str | None) -> None:
        python = Path(sys.executable)
        self.audits = [DbSide("shipyard", python, HERE, backend="SQLite")]
        if pg_url:
            self.audits.append(
                DbSide("shipyard", python, HERE, db_url=pg_url, backend="PostgreSQL")
            )
        n = self.sizes.events
        log(f"audit: append {n:,} events per backend (not timed in the table)")
        for side in self.audits:
            side.folder = self.fresh(f"audit-{side.backend.lower()}")
            result = side.run("audit-setup", side.folder, events=n)
            side.note("append_s", result["seconds"])
            log(f"  {side.backend:10s} {n:,} events appended in {result['seconds']:.1f} s "
                f"({n / result['seconds']:,.0f}/s)")  # fmt: skip
        for r in range(self.sizes.rounds):
            log(f"audit round {r + 1}/{self.sizes.rounds}")
            for side in self.rotate(self.audits, r):
                assert side.folder is not None
                result = side.run("audit-verify", side.folder, events=n, repeat=self.sizes.verifies)
                side.results.append(result)
                cli = self.cli_verify(side)
                log(
                    f"  {side.backend:10s} verify median "
                    f"{statistics.median(result['samples']) * 1000:7.1f} ms, first "
                    f"{result['first_s'] * 1000:7.1f} ms, ok: {result['ok']}, "
                    f"events {result['events']:,}"
                    + (f"; `shipyard audit verify` process {cli * 1000:.0f} ms" if cli else "")
                )
                for line in result["profile"]:
                    log(f"    {line}")

    def cli_verify(self, side: DbSide) -> float | None:
        """Wall seconds of ``shipyard audit verify --json`` in a new process (None: failed)."""
        assert side.folder is not None
        exe = Path(sys.executable).parent / "shipyard"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(exe), "audit", "verify", "--json"],
            cwd=side.folder,
            env=side.env(side.folder),
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - t0
        try:
            report = json.loads(proc.stdout)
            good = proc.returncode == 0 and report["ok"] and report["events"] == self.sizes.events
        except (ValueError, KeyError, TypeError):
            good = False
        if not good:
            log(f"  `shipyard audit verify` failed (rc={proc.returncode}): "
                f"{(proc.stderr or proc.stdout)[-500:]}")  # fmt: skip
            return None
        side.cli.append(seconds)
        return seconds


# -- summary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    first_s: dict[str, float]  # side -> median over rounds of the first load
    warm_s: dict[str, float]  # side -> median of every warm load
    warm_min_s: dict[str, float]
    model_bytes: dict[str, int]
    same_predictions: bool  # every load of every side equals the fitted model, on every side
    breakdown: dict[str, float]  # shipyard's load steps, medians over rounds
    verify: list[dict[str, Any]]  # per backend

    @property
    def load_ratio(self) -> float:
        return self.warm_s["shipyard"] / self.warm_s["mlflow"]

    @property
    def first_ratio(self) -> float:
        return self.first_s["shipyard"] / self.first_s["mlflow"]

    def met(self, sizes: Sizes) -> dict[str, bool | None]:
        out: dict[str, bool | None] = {
            "load": self.load_ratio <= MAX_LOAD_RATIO and self.same_predictions
        }
        for v in self.verify:
            judged = sizes.events >= TARGET_EVENTS
            out[f"verify {v['backend']}"] = (
                (v["median_s"] < MAX_VERIFY_S and v["ok"]) if judged else None
            )
        return out


def summarize(bench: Bench) -> Summary:
    loads = bench.loads
    fingerprints = {r["fingerprint"] for results in loads.values() for r in results}
    same = len(fingerprints) == 1 and all(
        r["same_predictions"] for results in loads.values() for r in results
    )
    steps: dict[str, list[float]] = {}
    for r in loads["shipyard"]:
        for step, seconds in r.get("breakdown", {}).items():
            steps.setdefault(step, []).append(seconds)
    verify = []
    for side in bench.audits:
        samples = [s for r in side.results for s in r["samples"]]
        verify.append(
            {
                "backend": side.backend,
                "median_s": statistics.median(samples),
                "min_s": min(samples),
                "first_s": statistics.median(r["first_s"] for r in side.results),
                "ok": all(r["ok"] for r in side.results),
                "events": side.results[0]["events"],
                "append_s": side.extra["append_s"][0],
                "cli_s": statistics.median(side.cli) if side.cli else None,
                "profile": side.results[-1]["profile"],
                "problems": side.results[0]["problems"],
            }
        )
    warm = {name: [s for r in results for s in r["samples"]] for name, results in loads.items()}
    return Summary(
        first_s={n: statistics.median(r["first_s"] for r in rs) for n, rs in loads.items()},
        warm_s={name: statistics.median(samples) for name, samples in warm.items()},
        warm_min_s={name: min(samples) for name, samples in warm.items()},
        model_bytes={n: bench.setup[n]["model_bytes"] for n in loads},
        same_predictions=same,
        breakdown={k: statistics.median(v) for k, v in steps.items()},
        verify=verify,
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "- (quick run)"}[met]


def print_summary(summary: Summary, sizes: Sizes) -> None:
    met = summary.met(sizes)
    for name in LOAD_SIDES:
        print(
            f"{name:12s} first load {ms(summary.first_s[name]):>10s}  warm "
            f"{ms(summary.warm_s[name]):>9s} (min {ms(summary.warm_min_s[name])})  "
            f"x{summary.warm_s[name] / summary.warm_s['mlflow']:.2f} of MLflow pickle  "
            f"model file {summary.model_bytes[name] / 1e6:.2f} MB"
        )
    print(
        f"warm load shipyard / MLflow {summary.load_ratio:.2f}x (target <= {MAX_LOAD_RATIO:g}x): "
        f"{'met' if met['load'] else 'MISSED'}; first load {summary.first_ratio:.2f}x; "
        f"same predictions everywhere: {'yes' if summary.same_predictions else 'NO'}"
    )
    if summary.breakdown:
        print("shipyard load, step by step (medians):")
        for step, seconds in summary.breakdown.items():
            print(f"  {step:58s} {ms(seconds):>10s}")
    for v in summary.verify:
        m = met[f"verify {v['backend']}"]
        print(
            f"audit verify {v['events']:,} events on {v['backend']:10s} {ms(v['median_s']):>10s} "
            f"(first in process {ms(v['first_s'])}, CLI process "
            f"{ms(v['cli_s']) if v['cli_s'] else 'n/a'}), ok: {v['ok']} "
            f"(target < {MAX_VERIFY_S:g} s for {TARGET_EVENTS:,}): "
            + {True: "met", False: "MISSED", None: "not judged (quick)"}[m]
        )
        for line in v["profile"]:
            print(f"    {line}")


def render(
    summary: Summary,
    sizes: Sizes,
    *,
    info: list[tuple[str, str]],
    quick: bool,
    pg_note: str,
) -> str:
    met = summary.met(sizes)
    mlflow_warm = summary.warm_s["mlflow"]
    mlflow_first = summary.first_s["mlflow"]
    loads_total = sizes.rounds * sizes.loads
    lines = [
        BEGIN,
        "## Model registry and audit log: shipyard vs MLflow",
        "",
        "Produced by `.venv/bin/python benchmarks/registry.py"
        + (" --quick" if quick else "")
        + " --write-docs`"
        + (" (a **quick** smoke run: fewer loads and events, one round)." if quick else ".")
        + f" A `RandomForestClassifier(n_estimators={TREES}, random_state={SEED})` fitted on "
        "the breast cancer data (569 x 30, binary), registered as `rf` version 1 and loaded "
        f"by name; {sizes.rounds} round(s), each side loading in a new process per round: "
        f"the first load timed alone, then {sizes.loads} warm loads (median of all "
        f"{loads_total}).",
        "",
        "| side | format | model file | first load in a new process | / MLflow | "
        "warm load | / MLflow |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in LOAD_SIDES:
        first, warm = summary.first_s[name], summary.warm_s[name]
        lines.append(
            f"| {LABELS[name]} | {FORMATS[name]} | {summary.model_bytes[name] / 1e6:.2f} MB | "
            f"{ms(first)} | {first / mlflow_first:.2f}x | {ms(warm)} | "
            f"{warm / mlflow_warm:.2f}x |"
        )
    lines += [
        "",
        "| target | measured | met |",
        "|---|---:|:-:|",
        f"| warm load, shipyard / MLflow (pickle) <= {MAX_LOAD_RATIO:g}x | "
        f"**{summary.load_ratio:.2f}x** | {verdict(met['load'])} |",
        f"| (not a target) first load in a new process, shipyard / MLflow (pickle) | "
        f"{summary.first_ratio:.2f}x | |",
        f"| (not a target) warm load, shipyard / MLflow with skops | "
        f"{summary.warm_s['shipyard'] / summary.warm_s['mlflow-skops']:.2f}x | |",
        "| same predictions as the fitted model, every load of every side | "
        f"{'same' if summary.same_predictions else '**differ**'} | "
        f"{verdict(summary.same_predictions)} |",
    ]
    for v in summary.verify:
        lines.append(
            f"| `audit verify` {v['events']:,} events, {v['backend']} < {MAX_VERIFY_S:g} s | "
            f"**{v['median_s']:.3f} s** | {verdict(met['verify ' + v['backend']])} |"
        )
    if summary.breakdown:
        lines += [
            "",
            "Where shipyard's warm load goes (each step timed alone in the load process, medians):",
            "",
            "| step | time |",
            "|---|---:|",
            *[f"| {step} | {ms(s)} |" for step, s in summary.breakdown.items()],
        ]
        skops_s = sum(s for step, s in summary.breakdown.items() if "skops" in step)
        copy_s = sum(s for step, s in summary.breakdown.items() if "copy" in step)
        check_s = sum(
            s for step, s in summary.breakdown.items() if "skops" not in step and "copy" not in step
        )
        lines += [
            "",
            f"Every load reads and hashes every file and checks the recorded types "
            f"({ms(check_s)}). The first load of a model in a process then runs skops "
            f"({ms(skops_s)}: {TREES} trees, each a few arrays stored as `.npy` members of a "
            "zip); shipyard keeps what it loaded from those checked bytes, and every later "
            f"load of the same model (after the same reads and hash checks) gets a deep copy "
            f"of it ({ms(copy_s)}), so callers never share a model and a file changed on disk "
            f"is still refused. MLflow's whole pickle load takes {ms(mlflow_warm)}.",
        ]
    lines += [
        "",
        f"Audit log ({sizes.events:,} events; PostgreSQL: {pg_note}):",
        "",
        "| backend | verify (median) | fastest | first in a new process | "
        "`shipyard audit verify --json` process | filling the log (not timed above) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for v in summary.verify:
        cli = ms(v["cli_s"]) if v["cli_s"] else "failed"
        lines.append(
            f"| {v['backend']} | {v['median_s']:.3f} s | {v['min_s']:.3f} s | "
            f"{v['first_s']:.3f} s | {cli} | {v['append_s']:.1f} s "
            f"({v['events'] / v['append_s']:,.0f} events/s) |"
        )
    for v in summary.verify:
        if v["profile"]:
            lines += [
                "",
                f"Profile of one verify on {v['backend']} (slower than the target):",
                "",
                "```",
                *v["profile"],
                "```",
            ]
    lines += [
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How it is measured:",
        "",
        "- The model is fitted, logged and registered once per side in a fresh temporary "
        "store (not timed): shipyard `with sy.start_run(): sy.log_model(model, 'model', "
        "input_example=X[:5])` then `sy.register_model(run_id, 'rf')`; MLflow "
        "`mlflow.sklearn.log_model(model, name='model', input_example=X.head(5), "
        "registered_model_name='rf', serialization_format=...)` with a SQLite tracking and "
        "registry URI and local artifacts (the skops side also passes the "
        "`skops_trusted_types` MLflow asks for). Every side fits the same model with the "
        "same scikit-learn version.",
        "- Each round runs every side's load in a new process, the order rotating. The "
        "process imports the tool (`import shipyard`, or `import mlflow, mlflow.sklearn`) and "
        "loads the data before its clock starts; the first load is timed alone (the store "
        "connection, the registry lookup and the imports of the model's classes, skops "
        "included, are inside it), then each warm load is timed alone. After every load "
        "the model's `predict_proba` and `predict` on all 569 rows are compared with the "
        "fitted model's (a digest, outside the clock).",
        "- shipyard's load: the version's row, the metadata object and each file read from "
        "the object store (which re-hashes what it reads), each file's BLAKE3 and size "
        "checked against the metadata, the type list recorded at save checked against "
        "shipyard's trust rules, then `skops.io.loads` with that list (first load in the "
        "process) or a deep copy of the model loaded then (later loads). MLflow's: the "
        "registry row, the artifacts copied to a temporary folder, the pickle loaded.",
        f"- Audit: {sizes.events:,} events (run, model and alias events with small JSON "
        "before/after, cycling) appended with `shipyard.store.audit.append_event` in "
        f"transactions of {APPEND_BATCH:,} (the filling is not timed in the table above). "
        f"Each round a new process opens the store and calls "
        f"`shipyard.governance.verify_audit_log(db)` once (first) and {sizes.verifies} times "
        "more (the median is over these); every call must report the chain intact and "
        f"{sizes.events:,} events. PostgreSQL runs on a throwaway database created for the "
        "run and dropped after it. The CLI column is the wall time of the whole "
        "`shipyard audit verify --json` process (spawn, imports, verify), once per round.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in WORKLOADS:
        return worker(argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, fewer loads and events")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--loads", type=int, help="override the warm loads per process")
    parser.add_argument("--events", type=int, help="override the number of audit events")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--mlflow-spec", default="mlflow", help="what to pip install for MLflow")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SHIPYARD_TEST_PG_URL") or DEFAULT_PG_URL,
        help="PostgreSQL server for the audit log ('' to skip; a throwaway database is made)",
    )
    parser.add_argument("--tmp", type=Path, help="where the temporary folders go")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    sizes = Sizes(
        rounds=args.rounds or sizes.rounds,
        loads=args.loads or sizes.loads,
        events=args.events or sizes.events,
        verifies=sizes.verifies,
    )
    mlflow_python = ensure_mlflow(args.mlflow_spec)
    matched = ensure_packages(mlflow_python)
    mlflow_version = package_version(mlflow_python, "mlflow")
    log(
        f"shipyard with {sys.executable}; MLflow {mlflow_version} with {mlflow_python}; "
        f"{sizes.rounds} round(s), {sizes.loads} warm loads, {sizes.events:,} audit events"
    )
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-registry-", dir=args.tmp))
    try:
        bench = Bench(sizes, tmp, mlflow_python)
        bench.run_loads()
        with pg_database(args.pg_url) as (pg_url, pg_note):
            bench.run_audit(pg_url)
            pg_used = pg_url is not None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")

    summary = summarize(bench)
    print_summary(summary, sizes)
    if args.write_docs:
        info = machine_info(mlflow_version, load_before)
        info = [
            (k, f"{mlflow_version} (SQLite tracking and registry store, local artifacts)")
            if k == "mlflow"
            else (k, v)
            for k, v in info
        ]
        ours = Path(sys.executable)
        libraries = ", ".join(f"{p} {a}" for p, (a, _) in matched.items() if p != "optuna")
        theirs = ", ".join(f"{p} {b}" for p, (_, b) in matched.items() if p != "optuna")
        info.insert(
            -1,
            (
                "libraries",
                f"{libraries}, skops {package_version(ours, 'skops')}; MLflow's venv: "
                f"{theirs}, skops {package_version(mlflow_python, 'skops')}",
            ),
        )
        if pg_used:
            info.insert(-1, ("postgresql", f"{pg_note} (default server settings)"))
        replace_section(
            DOC,
            BEGIN,
            END,
            render(summary, sizes, info=info, quick=args.quick, pg_note=pg_note),
        )
        log(f"wrote {DOC}")
    met = summary.met(sizes).values()
    return 0 if all(m is not False for m in met) else 1


if __name__ == "__main__":
    sys.exit(main())
