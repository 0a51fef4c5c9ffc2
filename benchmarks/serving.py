"""Model serving: shipyard against ``mlflow models serve``, MLServer and a bare Starlette
app, on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/serving.py               # full run, ~12 minutes
    .venv/bin/python benchmarks/serving.py --quick       # smoke run, ~4-5 minutes
    .venv/bin/python benchmarks/serving.py --write-docs  # also update docs/benchmarks.md

Two models fitted once on scikit-learn's breast cancer data (569 x 30, binary, bundled):
``lr`` a ``StandardScaler`` + ``LogisticRegression`` pipeline and ``rf`` a
``RandomForestClassifier(n_estimators=100, random_state=0)``, dumped with joblib, then
saved for each side in its own way: a shipyard store (``sy.log_model(..., signature=X)``,
registered, promoted to ``production``), an MLflow model folder
(``mlflow.sklearn.save_model``, cloudpickle), an MLServer model folder (the joblib file
and a ``model-settings.json``), and the joblib file for the floor.

Servers, one at a time, each a subprocess on a free 127.0.0.1 port:

shipyard    ``shipyard serve NAME@production`` (default; ``--no-log-predictions``;
            ``--fast``: onnxruntime; for the forest also with micro-batching)
mlflow      ``mlflow models serve -m DIR --env-manager local`` from MLflow's venv
            (``.bench-venv/mlflow``)
mlserver    ``mlserver start DIR`` from MLServer's venv (``.bench-venv/mlserver``:
            mlserver 1.7.1, mlserver-sklearn 1.7.1, ``uvloop==0.21.0``, our scikit-learn);
            default and, for the forest, adaptive batching
starlette   the floor: a bare Starlette app under uvicorn that parses the body with
            orjson into a DataFrame and calls ``model.predict`` (``_serving_worker.py``)

Each is started, waited for, checked (its predictions on 20 rows must equal the
model's), warmed up (300 single-row requests at 8 connections and 3 batches), then
loaded by this process's asyncio client (raw HTTP/1.1 keep-alive streams on uvloop):
single-row requests at 1 and at 8 connections, and 1,000-row requests at 1 connection,
each for a fixed time; then stopped (SIGTERM to its process group, then SIGKILL). The
whole set runs ``--rounds`` times, the order reversed every other round; figures are
medians over rounds. The client's own ceiling is measured once against a server that
answers every request with a canned response. Last, ``_serving_worker.py profile`` times
one single-row ``/predict`` in process (the ASGI app called directly), step by step and
under cProfile, for shipyard (``lr`` native, ``rf`` with ``--fast``) and for the floor.

Targets: with ``lr``, shipyard's best configuration at least 2x the best MLflow or
MLServer configuration, and within 1.3x of the Starlette floor; with ``rf``, at least 3x
the best of them, and a p99 under 20 ms at 8 connections. Judged on each load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import Target, parse_result, replace_section, verdict
from tracking import ensure_mlflow, log, machine_info, package_version

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
WORKER = HERE / "_serving_worker.py"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- serving-benchmark:begin -->"
END = "<!-- serving-benchmark:end -->"
MLSERVER_VENV = ROOT / ".bench-venv" / "mlserver"
MLSERVER_SPEC = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]

TREES = 100
SEED = 0
BATCH_ROWS = 1000
CHECK_ROWS = 20
PROFILE_REPEAT = 500
WARMUP_REQUESTS = 300
WARMUP_BATCHES = 3
START_TIMEOUT = 180.0
LR_VS_OTHERS = 2.0  # shipyard best / best of MLflow and MLServer, at least
LR_FLOOR = 1.3  # Starlette floor / shipyard best, at most
RF_VS_OTHERS = 3.0
RF_P99_MS = 20.0  # at 8 connections, under
MLSERVER_BATCH = {"max_batch_size": 8, "max_batch_time": 0.002}
SHIPYARD_BATCH = ("--batch-max-size", "8", "--batch-timeout-ms", "2")  # the same batches

LOADS = ("c1", "c8", "batch")
LOAD_LABELS = {
    "c1": "1 row, 1 connection",
    "c8": "1 row, 8 connections",
    "batch": f"{BATCH_ROWS:,} rows, 1 connection",
}
MODEL_LABELS = {
    "lr": "`lr`: StandardScaler + LogisticRegression",
    "rf": f"`rf`: RandomForestClassifier, {TREES} trees",
}


@dataclass(frozen=True)
class Config:
    model: str  # lr or rf
    side: str  # shipyard, mlflow, mlserver, starlette
    name: str  # what the table shows
    options: tuple[str, ...] = ()
    batching: bool = False  # MLServer adaptive batching

    @property
    def key(self) -> str:
        return f"{self.model}:{self.name}"


CONFIGS = [
    Config("lr", "shipyard", "shipyard (default)"),
    Config("lr", "shipyard", "shipyard --no-log-predictions", ("--no-log-predictions",)),
    Config("lr", "shipyard", "shipyard --fast --no-log-predictions",
           ("--fast", "--no-log-predictions")),
    Config("lr", "mlflow", "mlflow models serve"),
    Config("lr", "mlserver", "MLServer (default)"),
    Config("lr", "starlette", "Starlette floor"),
    Config("rf", "shipyard", "shipyard (default)"),
    Config("rf", "shipyard", "shipyard --fast", ("--fast",)),
    Config("rf", "shipyard", "shipyard --fast --no-log-predictions",
           ("--fast", "--no-log-predictions")),
    Config("rf", "shipyard", "shipyard --fast --no-log-predictions + micro-batching",
           ("--fast", "--no-log-predictions", *SHIPYARD_BATCH)),
    Config("rf", "mlflow", "mlflow models serve"),
    Config("rf", "mlserver", "MLServer (default)"),
    Config("rf", "mlserver", "MLServer adaptive batching", batching=True),
    Config("rf", "starlette", "Starlette floor"),
]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    rounds: int
    seconds: float  # per load


FULL = Sizes(rounds=2, seconds=6.0)
QUICK = Sizes(rounds=1, seconds=3.0)


# -- the load generator ------------------------------------------------------------------


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif key == b"connection":
            close = b"close" in value.lower()
    if not chunked:
        return status, await reader.readexactly(length), close
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return status, bytes(body), close
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def http_request(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Load:
    requests: int = 0  # answered with 200
    errors: int = 0  # any other status, or a broken connection
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

        return {
            "rps": self.requests / self.seconds if self.seconds else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "requests": self.requests,
            "errors": self.errors,
            "first_error": self.first_error,
        }


async def _drive(
    port: int, requests: list[bytes], conns: int, seconds: float, limit: int | None
) -> Load:
    load = Load()
    counter = 0
    t_start = time.perf_counter()
    deadline = t_start + seconds

    async def one(k: int) -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.perf_counter() < deadline and (limit is None or counter < limit):
                counter += 1
                raw = requests[i % len(requests)]
                i += conns
                t0 = time.perf_counter()
                writer.write(raw)
                try:
                    status, body, close = await _response(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                    load.errors += 1
                    load.first_error = load.first_error or f"{type(exc).__name__}: {exc}"
                    close, status = True, 0
                else:
                    load.latencies.append(time.perf_counter() - t0)
                    if status == 200:
                        load.requests += 1
                    else:
                        load.errors += 1
                        load.first_error = load.first_error or f"{status}: {body[:300]!r}"
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(one(k) for k in range(conns))), timeout=seconds + 120)
    load.seconds = time.perf_counter() - t_start
    return load


def _loop_factory() -> Any:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return asyncio.new_event_loop


def drive(
    port: int, requests: list[bytes], conns: int, seconds: float, limit: int | None = None
) -> Load:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        try:
            return runner.run(_drive(port, requests, conns, seconds, limit))
        except (TimeoutError, OSError) as exc:
            return Load(errors=1, seconds=seconds, first_error=f"{type(exc).__name__}: {exc}")


def post_json(port: int, path: str, body: bytes, timeout: float = 30.0) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body,
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500]


def get_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the data and each side's request bodies ------------------------------------------------


@dataclass
class Data:
    columns: list[str]
    rows: list[list[float]]  # every row of the data set
    expected: dict[str, list[int]]  # model -> predictions on every row


def body_for(side: str, model: str, data: Data, rows: list[list[float]]) -> tuple[str, bytes]:
    """(path, JSON body) of a request for ``rows`` in ``side``'s own format."""
    import orjson

    if side in ("shipyard", "starlette"):
        records = [dict(zip(data.columns, r, strict=True)) for r in rows]
        return "/predict", orjson.dumps({"records": records})
    if side == "mlflow":
        return "/invocations", orjson.dumps(
            {"dataframe_split": {"columns": data.columns, "data": rows}}
        )
    flat = [v for r in rows for v in r]
    tensor = {"name": "input-0", "shape": [len(rows), len(data.columns)], "datatype": "FP64",
              "data": flat}  # fmt: skip
    return f"/v2/models/{model}/infer", orjson.dumps({"inputs": [tensor]})


def predictions_of(side: str, answer: Any) -> list[int]:
    if side == "mlserver":
        return [int(v) for v in answer["outputs"][0]["data"]]
    return [int(v) for v in answer["predictions"]]


def batch_rows(data: Data, start: int) -> list[list[float]]:
    n = len(data.rows)
    return [data.rows[(start + i) % n] for i in range(BATCH_ROWS)]


# -- the servers ------------------------------------------------------------------------------


@dataclass
class Env:
    tmp: Path
    models: Path  # lr.joblib, rf.joblib
    store: Path  # SHIPYARD_HOME
    mlflow_dir: Path
    mlflow_python: Path
    mlserver_python: Path | None
    mlserver_problem: str = ""

    def environ(self, extra_path: Path | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SHIPYARD_", "MLFLOW_", "MLSERVER_", "PYTHONPATH"))
        }
        env.update(DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true",
                   SHIPYARD_HOME=str(self.store))  # fmt: skip
        if extra_path is not None:
            env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
        return env


def command_of(config: Config, env: Env, port: int) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, readiness path) of ``config``'s server on ``port``."""
    model = config.model
    if config.side == "shipyard":
        exe = Path(sys.executable).parent / "shipyard"
        argv = [str(exe), "serve", f"{model}@production", "--host", "127.0.0.1",
                "--port", str(port), *config.options]  # fmt: skip
        return argv, env.environ(), "/v2/health/ready"
    if config.side == "mlflow":
        exe = env.mlflow_python.parent / "mlflow"
        argv = [str(exe), "models", "serve", "-m", str(env.mlflow_dir / model),
                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
        return argv, env.environ(env.mlflow_python.parent), "/health"
    if config.side == "mlserver":
        assert env.mlserver_python is not None
        folder = mlserver_folder(env, config, port)
        argv = [str(env.mlserver_python.parent / "mlserver"), "start", str(folder)]
        return argv, env.environ(env.mlserver_python.parent), f"/v2/models/{model}/ready"
    argv = [sys.executable, str(WORKER), "floor", "--model", str(env.models / f"{model}.joblib"),
            "--port", str(port)]  # fmt: skip
    return argv, env.environ(), "/ping"


def mlserver_folder(env: Env, config: Config, port: int) -> Path:
    """A fresh MLServer repository: settings.json (ports; ``debug`` off) and the model."""
    folder = Path(tempfile.mkdtemp(prefix=f"mlserver-{config.model}-", dir=env.tmp))
    settings = {"debug": False, "host": "127.0.0.1", "http_port": port,
                "grpc_port": free_port(), "metrics_port": free_port()}  # fmt: skip
    (folder / "settings.json").write_text(json.dumps(settings))
    model_dir = folder / config.model
    model_dir.mkdir()
    shutil.copy(env.models / f"{config.model}.joblib", model_dir / "model.joblib")
    model_settings: dict[str, Any] = {
        "name": config.model,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    if config.batching:
        model_settings.update(MLSERVER_BATCH)
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    return folder


def shown_command(config: Config) -> str:
    """The command as a reader would type it."""
    if config.side == "shipyard":
        return " ".join(["shipyard serve", f"{config.model}@production", *config.options])
    if config.side == "mlflow":
        return f"mlflow models serve -m <dir>/{config.model} --env-manager local"
    if config.side == "mlserver":
        extra = f" + `{json.dumps(MLSERVER_BATCH)}`" if config.batching else ""
        return f"mlserver start <repo> (settings.json `debug: false`{extra})"
    return f"python benchmarks/_serving_worker.py floor --model {config.model}.joblib --port P"


class Running:
    """A server subprocess in its own process group; its output goes to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_file: Path) -> None:
        self.log_file = log_file
        self._out = log_file.open("w")
        self.proc = subprocess.Popen(argv, env=env, cwd=log_file.parent, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def wait_ready(self, port: int, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if get_status(port, path) == 200:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"not ready after {START_TIMEOUT:.0f} s: {self.tail()}")

    def tail(self, chars: int = 600) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        pgid = self.proc.pid  # start_new_session: the group is ours alone
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        time.sleep(0.3)  # children of the group (uvicorn, MLServer's workers) finish exiting
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self._out.close()


def measure(config: Config, env: Env, data: Data, sizes: Sizes) -> dict[str, Any]:
    """Start, check, warm up, load and stop one server."""
    port = free_port()
    argv, environ, ready = command_of(config, env, port)
    log_file = env.tmp / f"{config.side}-{config.model}-{port}.log"
    t0 = time.perf_counter()
    server = Running(argv, environ, log_file)
    result: dict[str, Any] = {}
    try:
        server.wait_ready(port, ready)
        result["startup_s"] = time.perf_counter() - t0
        path, body = body_for(config.side, config.model, data, data.rows[:CHECK_ROWS])
        status, answer = post_json(port, path, body)
        if status != 200:
            raise RuntimeError(f"the check request got {status}: {answer!r}")
        got = predictions_of(config.side, answer)
        result["same_predictions"] = got == data.expected[config.model][:CHECK_ROWS]
        if config.side == "shipyard":
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{config.model}") as r:
                result["engine"] = json.loads(r.read()).get("platform", "")
        singles = [
            http_request(port, *body_for(config.side, config.model, data, [row]))
            for row in data.rows[:64]
        ]
        batches = [
            http_request(port, *body_for(config.side, config.model, data, batch_rows(data, s)))
            for s in (0, 211, 401)
        ]
        drive(port, singles, 8, 3.0, limit=WARMUP_REQUESTS)
        drive(port, batches, 1, 3.0, limit=WARMUP_BATCHES)
        result["c1"] = drive(port, singles, 1, sizes.seconds).summary()
        result["c8"] = drive(port, singles, 8, sizes.seconds).summary()
        result["batch"] = drive(port, batches, 1, sizes.seconds).summary()
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {str(exc)[:400]}"
    finally:
        server.stop()
    return result


def client_ceiling(env: Env, data: Data, seconds: float) -> dict[str, Any]:
    """The load generator against a server that does nothing but answer (canned)."""
    port = free_port()
    argv = [sys.executable, str(WORKER), "canned", "--port", str(port)]
    server = Running(argv, env.environ(), env.tmp / f"canned-{port}.log")
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        singles = [
            http_request(port, *body_for("shipyard", "lr", data, [row])) for row in data.rows[:64]
        ]
        drive(port, singles, 8, 60.0, limit=WARMUP_REQUESTS)
        out["c1"] = drive(port, singles, 1, seconds).summary()
        out["c8"] = drive(port, singles, 8, seconds).summary()
    finally:
        server.stop()
    return out


# -- setup ----------------------------------------------------------------------------------


def fit_models(folder: Path) -> Data:
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    models = {
        "lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "rf": RandomForestClassifier(n_estimators=TREES, random_state=SEED),
    }
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, model in models.items():
        model.fit(X, y)
        joblib.dump(model, folder / f"{name}.joblib")
        expected[name] = [int(v) for v in model.predict(X)]
    rows = [[float(v) for v in row] for row in X.to_numpy().tolist()]
    return Data([str(c) for c in X.columns], rows, expected)


def run_worker(python: Path, task: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run([str(python), str(WORKER), task, *args], env=env, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return parse_result(proc.stdout)


def ensure_mlserver() -> tuple[Path | None, str]:
    """MLServer's python (its venv made on first use) or (None, why it cannot run)."""
    python = MLSERVER_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {MLSERVER_VENV} ({' '.join(MLSERVER_SPEC)}; first run only)...")
        made = subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=False)
        if made.returncode != 0:
            return None, "could not create its virtualenv"
    ours = package_version(Path(sys.executable), "scikit-learn")
    try:
        have = package_version(python, "mlserver-sklearn")
        theirs = package_version(python, "scikit-learn")
    except subprocess.CalledProcessError:
        have, theirs = "", ""
    if have != "1.7.1" or theirs != ours:
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        done = subprocess.run([*pip, *MLSERVER_SPEC, f"scikit-learn=={ours}"], check=False)
        if done.returncode != 0:
            done = subprocess.run([*pip, *MLSERVER_SPEC], check=False)
        if done.returncode != 0:
            return None, "pip could not install " + " ".join(MLSERVER_SPEC)
    return python, ""


# -- the benchmark ----------------------------------------------------------------------------


def run(env: Env, data: Data, sizes: Sizes, configs: list[Config]) -> dict[str, list[dict]]:
    results: dict[str, list[dict[str, Any]]] = {c.key: [] for c in configs}
    for r in range(sizes.rounds):
        log(f"round {r + 1}/{sizes.rounds}")
        order = configs if r % 2 == 0 else list(reversed(configs))
        for config in order:
            if config.side == "mlserver" and env.mlserver_python is None:
                results[config.key].append({"error": env.mlserver_problem})
                continue
            result = measure(config, env, data, sizes)
            results[config.key].append(result)
            if "error" in result:
                log(f"  {config.model} {config.name:38s} FAILED: {result['error']}")
                continue
            parts = [
                f"{result[k]['rps']:8,.0f} rps p50 {result[k]['p50_ms']:6.2f} p99 "
                f"{result[k]['p99_ms']:6.2f} ms"
                + (f" ({result[k]['errors']} errors)" if result[k]["errors"] else "")
                for k in ("c1", "c8")
            ]
            b = result["batch"]
            log(
                f"  {config.model} {config.name:38s} 1 conn {parts[0]} | 8 conns {parts[1]} | "
                f"batch {b['rps']:6,.1f} rps p50 {b['p50_ms']:7.1f} ms"
                + (f" ({b['errors']} errors)" if b["errors"] else "")
                + ("" if result["same_predictions"] else " | PREDICTIONS DIFFER")
                + f" | up in {result['startup_s']:.1f} s"
            )
    return results


@dataclass
class Row:
    config: Config
    error: str  # "" when every round ran
    figures: dict[str, dict[str, float]]  # load -> rps, p50_ms, p99_ms, errors (medians/sums)
    same_predictions: bool
    engine: str
    startup_s: float


def summarize(configs: list[Config], results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    rows = []
    for c in configs:
        rounds = results[c.key]
        errors = [r["error"] for r in rounds if "error" in r]
        good = [r for r in rounds if "error" not in r]
        figures = {}
        if good:
            for load in LOADS:
                figures[load] = {
                    "rps": statistics.median(r[load]["rps"] for r in good),
                    "p50_ms": statistics.median(r[load]["p50_ms"] for r in good),
                    "p99_ms": statistics.median(r[load]["p99_ms"] for r in good),
                    "errors": sum(r[load]["errors"] for r in good),
                    "first_error": next(
                        (r[load]["first_error"] for r in good if r[load]["first_error"]), ""
                    ),
                }
        rows.append(Row(
            c, errors[0] if errors else "", figures,
            all(r["same_predictions"] for r in good) if good else False,
            next((r.get("engine", "") for r in good), ""),
            statistics.median(r["startup_s"] for r in good) if good else float("nan"),
        ))  # fmt: skip
    return rows


def _best(
    rows: list[Row], model: str, sides: tuple[str, ...], load: str, *, native: bool = False
) -> Row | None:
    """The configuration of ``sides`` with the most requests/s on ``load``. A shipyard
    configuration counts only with no errors and the right predictions; the others count
    as they ran (errors and all: the comparison never gains from dropping one)."""
    usable = [
        r for r in rows
        if r.config.model == model and r.config.side in sides and not r.error
        and (r.config.side != "shipyard"
             or (r.same_predictions and r.figures[load]["errors"] == 0))
        and not (native and "--fast" in r.config.options)
    ]  # fmt: skip
    return max(usable, key=lambda r: r.figures[load]["rps"], default=None)


def targets(rows: list[Row]) -> list[Target]:
    out = []
    for model, minimum in (("lr", LR_VS_OTHERS), ("rf", RF_VS_OTHERS)):
        for load in LOADS:
            ours = _best(rows, model, ("shipyard",), load)
            theirs = _best(rows, model, ("mlflow", "mlserver"), load)
            label = (f"`{model}` {LOAD_LABELS[load]}: shipyard's best / best of MLflow and "
                     f"MLServer >= {minimum:g}x")  # fmt: skip
            if ours is None or theirs is None:
                out.append(Target(label, "n/a (a side did not run)", None))
                continue
            ratio = ours.figures[load]["rps"] / theirs.figures[load]["rps"]
            out.append(Target(
                label, f"**{ratio:.2f}x** ({ours.config.name} {ours.figures[load]['rps']:,.0f} "
                f"/ {theirs.config.name} {theirs.figures[load]['rps']:,.0f} req/s)",
                ratio >= minimum,
            ))  # fmt: skip
        if model == "lr":
            for load in LOADS:
                ours = _best(rows, model, ("shipyard",), load, native=True)
                floor = _best(rows, model, ("starlette",), load)
                label = (f"`lr` {LOAD_LABELS[load]}: Starlette floor / shipyard's best with "
                         f"scikit-learn (as the floor) <= {LR_FLOOR:g}x")  # fmt: skip
                if ours is None or floor is None:
                    out.append(Target(label, "n/a (a side did not run)", None))
                    continue
                ratio = floor.figures[load]["rps"] / ours.figures[load]["rps"]
                out.append(Target(
                    label, f"**{ratio:.2f}x** ({floor.figures[load]['rps']:,.0f} / "
                    f"{ours.figures[load]['rps']:,.0f} req/s, {ours.config.name})",
                    ratio <= LR_FLOOR,
                ))  # fmt: skip
        else:
            ours = _best(rows, model, ("shipyard",), "c8")
            label = f"`rf` p99 at 8 connections, shipyard's best < {RF_P99_MS:g} ms"
            if ours is None:
                out.append(Target(label, "n/a (shipyard did not run)", None))
            else:
                p99 = ours.figures["c8"]["p99_ms"]
                out.append(Target(label, f"**{p99:.1f} ms** ({ours.config.name})",
                                  p99 < RF_P99_MS))  # fmt: skip
    wrong = [f"{r.config.model} {r.config.name}" for r in rows
             if not r.error and not r.same_predictions]  # fmt: skip
    shown = "yes" if not wrong else "differ: " + ", ".join(wrong)
    out.append(Target("every server's predictions on 20 rows equal the model's", shown, not wrong))
    return out


# -- output ---------------------------------------------------------------------------------


def cell(row: Row, load: str) -> str:
    f = row.figures[load]
    errs = f" ({f['errors']} errors)" if f["errors"] else ""
    return f"{f['rps']:,.0f} req/s, {f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms{errs}"


def print_table(rows: list[Row], tgts: list[Target], ceiling: dict[str, Any]) -> None:
    for r in rows:
        name = f"{r.config.model} {r.config.name}"
        if r.error:
            print(f"{name:44s} could not run: {r.error}")
            continue
        print(
            f"{name:44s} 1 conn {cell(r, 'c1'):34s} 8 conns {cell(r, 'c8'):34s} "
            f"batch {r.figures['batch']['rps']:6,.1f} req/s "
            f"({r.figures['batch']['rps'] * BATCH_ROWS:,.0f} rows/s)"
            + ("" if r.same_predictions else "  PREDICTIONS DIFFER")
        )
    if ceiling:
        print(
            f"client ceiling (canned server): 1 conn {ceiling['c1']['rps']:,.0f} req/s, "
            f"8 conns {ceiling['c8']['rps']:,.0f} req/s"
        )
    for t in tgts:
        verdict = {True: "met", False: "MISSED", None: "not judged"}[t.met]
        print(f"{t.label}: {t.measured.replace('**', '')}  {verdict}")


def render(
    rows: list[Row],
    tgts: list[Target],
    ceiling: dict[str, Any],
    profiles: list[dict[str, Any]],
    sizes: Sizes,
    *,
    info: list[tuple[str, str]],
    quick: bool,
) -> str:
    lines = [
        BEGIN,
        "## Model serving: shipyard vs MLflow, MLServer and a bare Starlette app",
        "",
        "Produced by `.venv/bin/python benchmarks/serving.py"
        + (" --quick" if quick else "")
        + " --write-docs`"
        + (" (a **quick** smoke run: one round, shorter loads)." if quick else ".")
        + f" Two models fitted once on the breast cancer data (569 x 30, binary), served by "
        f"each side from its own saved form, one server at a time on 127.0.0.1; "
        f"{sizes.rounds} round(s), the order reversed every other round; figures are medians "
        "over the rounds. Each cell: requests/s, then p50 / p99 latency; the batch column is "
        f"{BATCH_ROWS:,}-row requests per second at 1 connection (x{BATCH_ROWS:,} for rows/s).",
        "",
    ]
    for model in ("lr", "rf"):
        lines += [
            f"### {MODEL_LABELS[model]}",
            "",
            f"| side / configuration | {LOAD_LABELS['c1']} | {LOAD_LABELS['c8']} | "
            f"{LOAD_LABELS['batch']} | started in |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in (r for r in rows if r.config.model == model):
            name = r.config.name + (f" ({r.engine})" if r.engine else "")
            if r.error:
                lines.append(f"| {name} | could not run: {r.error} | | | |")
                continue
            b = r.figures["batch"]
            bad = "" if r.same_predictions else " **(predictions differ)**"
            lines.append(
                f"| {name}{bad} | {cell(r, 'c1')} | {cell(r, 'c8')} | "
                f"{b['rps']:,.1f} req/s ({b['p50_ms']:,.0f} ms p50)"
                + (f" ({b['errors']} errors)" if b["errors"] else "")
                + f" | {r.startup_s:.1f} s |"
            )
        lines.append("")
    lines += ["| target | measured | met |", "|---|---|:-:|"]
    lines += [f"| {t.label} | {t.measured} | {verdict(t.met)} |" for t in tgts]
    if ceiling:
        lines += [
            "",
            "The load generator's own ceiling (the same client against a server that answers "
            "every request with a canned response, no parsing): "
            f"{ceiling['c1']['rps']:,.0f} req/s at 1 connection "
            f"(p50 {ceiling['c1']['p50_ms']:.2f} ms), {ceiling['c8']['rps']:,.0f} req/s at 8 "
            f"(p50 {ceiling['c8']['p50_ms']:.2f} ms). On 2 cores the client shares the CPU with "
            "the server, so every figure above includes the client's share.",
        ]
    for prof in profiles:
        lines += render_profile(prof)
    lines += [
        "",
        "Commands (each on a free port):",
        "",
        *[f"- {r.config.model} {r.config.name}: `{shown_command(r.config)}`" for r in rows],
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How it is measured:",
        "",
        f"- Models: `lr` = `make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))`, "
        f"`rf` = `RandomForestClassifier(n_estimators={TREES}, random_state={SEED})`, fitted once "
        "on the whole data set and dumped with joblib; every side serves that one fitted "
        "object (same scikit-learn version in every venv): shipyard from its store "
        "(`sy.log_model(model, 'model', input_example=X.head(5), signature=X)`, registered, "
        "promoted to `production`), MLflow from `mlflow.sklearn.save_model(..., "
        "serialization_format='cloudpickle', input_example=X.head(5))`, MLServer from the "
        "joblib file with `mlserver_sklearn.SKLearnModel`, the floor from the joblib file.",
        "- Request bodies, each side's own format, the same rows: shipyard and the floor "
        '`POST /predict {"records": [{column: value, ...}]}`; MLflow `POST /invocations '
        '{"dataframe_split": {"columns": [...], "data": [[...]]}}`; MLServer '
        "`POST /v2/models/<name>/infer` with one `[n, 30]` FP64 tensor. Single-row requests "
        f"cycle through 64 rows; batches are {BATCH_ROWS:,} rows (3 bodies, cycling).",
        "- Each server: started, waited for (its readiness route), checked (its predictions on "
        f"the first {CHECK_ROWS} rows must equal the model's), warmed up ({WARMUP_REQUESTS} "
        f"single-row requests at 8 connections and {WARMUP_BATCHES} batches, 3 s at most "
        f"each), then {sizes.seconds:g} s at 1 connection, {sizes.seconds:g} s at 8 "
        f"connections and {sizes.seconds:g} s of batches at 1 connection, then SIGTERM to "
        "its process group.",
        "- The client: an asyncio HTTP/1.1 client on uvloop in the benchmark process, one "
        "keep-alive connection per concurrent request, each sending its next request when the "
        "answer arrives (closed loop). Requests/s counts 200 answers only; any other status or "
        "broken connection counts as an error (shown if any). Latency is from writing the "
        "request to reading the whole answer.",
        "- MLServer's `settings.json` sets `debug: false` (its default `true` logs every "
        "request); the rest are its defaults (one parallel inference worker process). "
        f"Adaptive batching: `max_batch_size` {MLSERVER_BATCH['max_batch_size']}, "
        f"`max_batch_time` {MLSERVER_BATCH['max_batch_time']} s. MLflow: its defaults "
        "(1 uvicorn worker). shipyard: 1 worker, auth off on loopback (its default), the "
        "prediction log on unless `--no-log-predictions`; `--fast` serves the ONNX conversion; "
        f"micro-batching `{' '.join(SHIPYARD_BATCH)}` (the same batch size and wait as "
        "MLServer's adaptive batching).",
        "- The targets are judged on each load separately, shipyard's best configuration "
        "for that load against the best of MLflow's and MLServer's for that load (a "
        "configuration of theirs counts even with errors; one of shipyard's only without). "
        "Against the floor, which runs the scikit-learn model, only shipyard's configurations "
        "that do too (not `--fast`) count.",
        END,
    ]
    return "\n".join(lines) + "\n"


def render_profile(prof: dict[str, Any]) -> list[str]:
    us = prof["request_us"]
    floor_us = prof["floor_request_us"]
    lines = [
        "",
        f"Where one single-row `/predict` of `{prof['model']}` ({prof['engine']}) goes, in "
        "process (the ASGI app called directly, no socket, no client, prediction log off; "
        f"medians of {PROFILE_REPEAT} calls): shipyard {us:,.0f} us "
        f"({prof['request_logged_us']:,.0f} us with the prediction log on), the Starlette "
        f"floor {floor_us:,.0f} us ({us / floor_us:.2f}x).",
        "",
        "| shipyard step (each timed alone) | us | floor step | us |",
        "|---|---:|---|---:|",
    ]
    ours = list(prof["steps"].items())
    theirs = list(prof["floor_steps"].items())
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else ("", None)
        b = theirs[i] if i < len(theirs) else ("", None)
        lines.append(
            f"| {a[0]} | {'' if a[1] is None else f'{a[1]:,.1f}'} | {b[0]} | "
            f"{'' if b[1] is None else f'{b[1]:,.1f}'} |"
        )
    rest = us - sum(prof["steps"].values())
    lines += [
        f"| the rest: FastAPI routing, middleware, metrics, access log | {rest:,.0f} | "
        f"the rest: Starlette routing | {floor_us - sum(prof['floor_steps'].values()):,.0f} |",
        "",
        f"cProfile of {PROFILE_REPEAT} of shipyard's `{prof['model']}` requests (by own time):",
        "",
        "```",
        *prof["profile"],
        "```",
        "",
        "shipyard's own functions in the same profile, by cumulative time:",
        "",
        "```",
        *prof["profile_cumulative"],
        "```",
    ]
    return lines


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, 3 s per load")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--seconds", type=float, help="override the seconds per load")
    parser.add_argument("--only", default="", help="comma-separated substrings of configs "
                        "to run (e.g. 'rf:shipyard'); default all")  # fmt: skip
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--mlflow-spec", default="mlflow", help="what to pip install for MLflow")
    parser.add_argument("--tmp", type=Path, help="where the temporary folders go")
    parser.add_argument("--doc", type=Path, default=DOC, help="the file --write-docs updates")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    sizes = Sizes(rounds=args.rounds or sizes.rounds, seconds=args.seconds or sizes.seconds)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    configs = [c for c in CONFIGS if not wanted or any(w in f"{c.key}:{c.side}" for w in wanted)]

    from training import ensure_packages

    mlflow_python = ensure_mlflow(args.mlflow_spec)
    ensure_packages(mlflow_python)
    mlflow_version = package_version(mlflow_python, "mlflow")
    mlserver_python, mlserver_problem = ensure_mlserver()
    mlserver_version = (
        package_version(mlserver_python, "mlserver") if mlserver_python else mlserver_problem
    )
    log(f"shipyard with {sys.executable}; MLflow {mlflow_version}; MLServer "
        f"{mlserver_version}; {sizes.rounds} round(s) of {len(configs)} servers, "
        f"{sizes.seconds:g} s per load")  # fmt: skip
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-", dir=args.tmp))
    try:
        env = Env(tmp, tmp / "models", tmp / "store", tmp / "mlflow", mlflow_python,
                  mlserver_python, mlserver_problem)  # fmt: skip
        data = fit_models(env.models)
        environ = env.environ()
        run_worker(Path(sys.executable), "setup-shipyard", environ, "--models", str(env.models))
        run_worker(mlflow_python, "setup-mlflow", environ, "--models", str(env.models),
                   "--dir", str(env.mlflow_dir))  # fmt: skip
        log(f"models fitted and saved for every side in {time.perf_counter() - started:.0f} s")
        ceiling = client_ceiling(env, data, sizes.seconds)
        log(f"client ceiling (canned server): {ceiling['c1']['rps']:,.0f} req/s at 1 connection, "
            f"{ceiling['c8']['rps']:,.0f} at 8")  # fmt: skip
        results = run(env, data, sizes, configs)
        profiles: list[dict[str, Any]] = []
        for name, fast in (("lr", False), ("rf", True)):
            try:
                prof = run_worker(Path(sys.executable), "profile", environ, "--models",
                                  str(env.models), "--model", name, "--repeat", str(PROFILE_REPEAT),
                                  *(["--fast"] if fast else []))  # fmt: skip
                profiles.append(prof)
            except Exception as exc:  # internals moved: the benchmark still stands
                log(f"no in-process profile of {name} ({type(exc).__name__}: {str(exc)[-500:]})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")

    rows = summarize(configs, results)
    tgts = targets(rows)
    print_table(rows, tgts, ceiling)
    for prof in profiles:
        print(f"in process, one-row /predict of {prof['model']} ({prof['engine']}): shipyard "
              f"{prof['request_us']:,.0f} us ({prof['request_logged_us']:,.0f} us with the "
              f"prediction log), floor {prof['floor_request_us']:,.0f} us")  # fmt: skip
        for label, value in prof["steps"].items():
            print(f"  shipyard {label:48s} {value:8,.1f} us")
        for label, value in prof["floor_steps"].items():
            print(f"  floor    {label:48s} {value:8,.1f} us")
        for line in [*prof["profile"], *prof["profile_cumulative"]]:
            print(f"    {line}")
    if args.write_docs:
        info = machine_info(mlflow_version, load_before)
        ours = Path(sys.executable)
        libs = ", ".join(f"{p} {package_version(ours, p)}" for p in
                         ("scikit-learn", "numpy", "pandas", "fastapi", "uvicorn", "uvloop",
                          "onnxruntime", "skl2onnx"))  # fmt: skip
        info = [
            (k, f"{mlflow_version} (`mlflow models serve --env-manager local`, its own venv)")
            if k == "mlflow"
            else (k, v)
            for k, v in info
        ]
        info.insert(-1, ("mlserver", f"{mlserver_version}" + (
            f" with mlserver-sklearn {package_version(mlserver_python, 'mlserver-sklearn')}, "
            f"uvloop {package_version(mlserver_python, 'uvloop')}, scikit-learn "
            f"{package_version(mlserver_python, 'scikit-learn')} (its own venv)"
            if mlserver_python else "")))  # fmt: skip
        info.insert(-1, ("libraries (ours)", libs))
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
            text=True, check=False,
        ).stdout.split("\n")  # fmt: skip
        changed = [line[3:] for line in changed if line.strip()]
        if changed:
            info.insert(-1, ("uncommitted in src/ at run time", ", ".join(changed)))
        info.insert(-1, ("OPENBLAS_CORETYPE", os.environ.get("OPENBLAS_CORETYPE", "unset")
                         + " (as the machine sets it, for every side)"))  # fmt: skip
        section = render(rows, tgts, ceiling, profiles, sizes, info=info, quick=args.quick)
        replace_section(args.doc, BEGIN, END, section)
        log(f"wrote {args.doc}")
    return 0 if all(t.met is not False for t in tgts) else 1


if __name__ == "__main__":
    sys.exit(main())
