"""Run a pipeline: skip the steps whose key is unchanged, run the rest (in parallel where the
DAG allows, locally or on a Dask cluster), record every step as a run nested under the
pipeline's run.

A step's **key** hashes its code (the interpolated command, a function's source, or a
built-in's name and options), the digests of its inputs (declared deps, and for built-ins
the dataset version they read) and its params. A step whose key has a cache entry and
whose outputs are present is ``cached``; if its outputs are missing they are restored
from the object store (``restored``). Anything else ``ran`` (or ``failed``; its dependants
are ``skipped`` and independent steps still run). Every step's output goes to the
console with a ``[step]`` prefix and into a log kept as an artifact of its run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import RunStatus
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.pipelines.cache import InputHasher, OutputManifest, OutputStore
from shipyard.pipelines.lockfile import compute_key, write_lock
from shipyard.pipelines.spec import PipelineSpec, StepSpec, interpolate

if TYPE_CHECKING:
    from shipyard.core.config import Settings
    from shipyard.store.dataset_store import SqlDatasetStore
    from shipyard.store.objects import ObjectStore
    from shipyard.store.pipeline_store import SqlPipelineStore
    from shipyard.store.tracking_store import SqlTrackingStore

logger = logging.getLogger(__name__)

RESULT_MARK = "@@SHIPYARD_STEP_RESULT "
"""A built-in or function step prints its result as this prefix and one line of JSON."""
EXPERIMENT_PREFIX = "pipeline-"
STATUSES = ("ran", "cached", "restored", "failed", "skipped", "cancelled")


@dataclass(frozen=True)
class PipelineContext:
    """The stores a pipeline run reads and writes, and the settings its steps inherit."""

    settings: Settings
    runs: SqlTrackingStore
    objects: ObjectStore
    cache: SqlPipelineStore
    datasets: SqlDatasetStore


@dataclass(frozen=True)
class StepResult:
    """How one step ended."""

    name: str
    status: str
    key: str
    run_id: str | None  # the run downstream ``${steps.NAME.run_id}`` names
    step_run_id: str | None  # this step's record under the pipeline run
    duration_s: float
    attempts: int = 0
    message: str = ""
    log_path: str | None = None


@dataclass(frozen=True)
class PipelineResult:
    """A pipeline run: its record and every step's outcome, in DAG order."""

    pipeline: str
    run_id: str | None
    status: str  # finished | failed | cancelled
    steps: tuple[StepResult, ...]
    duration_s: float

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if s.status == "failed"), None)

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFoundError(f"no step {name!r} in this run of {self.pipeline}")


@dataclass(frozen=True)
class StepPlan:
    """What ``shipyard pipeline status`` says of a step: whether it would run, and why."""

    name: str
    will_run: bool
    reason: str
    key: str | None


@dataclass
class _Run:
    """Mutable state of one pipeline run."""

    spec: PipelineSpec
    ctx: PipelineContext
    hasher: InputHasher
    outputs: OutputStore
    say: Callable[[str], None]
    results: dict[str, StepResult] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)
    pipeline_run: Any = None
    experiment_id: str = ""
    experiment_name: str = ""
    env: dict[str, str] = field(default_factory=dict)
    locked: dict[str, dict[str, Any]] = field(default_factory=dict)  # for shipyard.lock
    cancel: threading.Event = field(default_factory=threading.Event)
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


# -- keys ---------------------------------------------------------------------------------


def _resolved_dataset(ctx: PipelineContext, ref: str) -> tuple[str, str]:
    """``(name@version, content digest)`` of a dataset reference, by the store alone."""
    version = ctx.datasets.resolve(ref)
    return version.ref, version.digest


def step_key(run: _Run, step: StepSpec) -> tuple[str, dict[str, str]]:
    """The step's key now, and the input digests it is made of."""
    dataset = None
    if step.kind == "uses" and step.dataset is not None:  # the version it reads now
        dataset = _resolved_dataset(run.ctx, step.dataset)
    return compute_key(run.spec, step, hasher=run.hasher, run_ids=run.run_ids, dataset=dataset)


def plan(spec: PipelineSpec, ctx: PipelineContext) -> list[StepPlan]:
    """What ``run`` would do now, step by step, without running anything.

    A step below one that would run is reported as running too (its inputs will change).
    """
    run = _new_run(spec, ctx, say=lambda _m: None)
    out: list[StepPlan] = []
    dirty: set[str] = set()
    for name in spec.order():
        step = spec.steps[name]
        upstream_dirty = [u for u in spec.upstream(name) if u in dirty]
        if upstream_dirty:
            dirty.add(name)
            out.append(StepPlan(name, True, f"upstream {', '.join(upstream_dirty)} will run", None))
            continue
        try:
            key, _inputs = step_key(run, step)
        except (InvalidInputError, NotFoundError) as exc:
            dirty.add(name)
            out.append(StepPlan(name, True, f"inputs not ready: {exc.message}", None))
            continue
        entry = ctx.cache.cache_get(key)
        if entry is None:
            dirty.add(name)
            reason = _why_changed(ctx, spec.name, name)
            out.append(StepPlan(name, True, reason, key))
            continue
        manifest = OutputManifest.from_dict(entry.manifest["outputs"])
        if entry.run_id:
            run.run_ids[name] = str(entry.manifest.get("run_id") or entry.run_id)
        if run.outputs.present(manifest):
            out.append(StepPlan(name, False, "unchanged (cached)", key))
        else:
            reason = "unchanged; outputs missing or changed: will restore"
            out.append(StepPlan(name, False, reason, key))
    return out


def _why_changed(ctx: PipelineContext, pipeline: str, step: str) -> str:
    from sqlalchemy import select

    from shipyard.store.schema import pipeline_cache

    with ctx.cache.db.read() as conn:
        seen = conn.execute(
            select(pipeline_cache.c.key)
            .where(pipeline_cache.c.pipeline == pipeline, pipeline_cache.c.step == step)
            .limit(1)
        ).first()
    return "never run" if seen is None else "changed: code, inputs or params differ"


# -- running ------------------------------------------------------------------------------


def _new_run(spec: PipelineSpec, ctx: PipelineContext, say: Callable[[str], None]) -> _Run:
    from shipyard.data.folders import HASH_CACHE_FILENAME, HashCache

    cache_dir = Path(ctx.settings.cache_dir) if ctx.settings.cache_dir else None
    # the stat cache the data catalog uses too: a file hashed by one is known to the other
    hash_cache = HashCache(cache_dir / HASH_CACHE_FILENAME) if cache_dir is not None else None
    hasher = InputHasher(spec.root, hash_cache=hash_cache)
    return _Run(spec, ctx, hasher, OutputStore(ctx.objects, spec.root, hasher=hasher), say)


def run_pipeline(
    spec: PipelineSpec,
    ctx: PipelineContext,
    *,
    force: Sequence[str] = (),
    force_downstream: bool = False,
    steps: Sequence[str] | None = None,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
    retries: bool = True,
    env: Mapping[str, str] | None = None,
) -> PipelineResult:
    """Run ``spec``: every step whose key changed, in DAG order, ``jobs`` at a time.

    Args:
        force: steps to rerun even if cached (``force_downstream``: and their dependants).
        steps: run only these steps (their upstream must be cached or present already),
            as an Airflow task does.
        retries: False runs each step once whatever its ``retries`` (an Airflow task,
            which Airflow retries).
        env: extra environment variables for every step (the retrain loop passes the
            dataset version to train on).
        executor: ``local`` (processes on this machine) or ``dask`` (a distributed
            cluster at ``scheduler``; steps run on its workers, which must see the
            project folder and the store).

    Raises:
        InvalidInputError: unknown step names, a bad executor, or a missing input.
    """
    say = progress or (lambda _m: None)
    names = set(spec.steps)
    unknown = sorted({*force, *(steps or ())} - names)
    if unknown:
        raise InvalidInputError(
            f"no step named {', '.join(map(repr, unknown))} in pipeline {spec.name!r}; its "
            f"steps: {', '.join(spec.order())}"
        )
    if executor not in ("local", "dask"):
        raise InvalidInputError(f"executor is local or dask, got {executor!r}")
    if executor == "dask" and not scheduler:
        raise InvalidInputError("--executor dask needs --scheduler tcp://HOST:PORT")
    if not retries:
        spec = dataclasses.replace(
            spec, steps={n: dataclasses.replace(s, retries=0) for n, s in spec.steps.items()}
        )
    forced = set(spec.downstream(force)) if force_downstream else set(force)
    selected = [n for n in spec.order() if steps is None or n in steps]
    run = _new_run(spec, ctx, say)
    run.env = dict(env or {})
    started = time.perf_counter()
    _start_records(run)
    status = "finished"
    client = _dask_client(scheduler) if executor == "dask" else None
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: _cancel(run))
    try:
        _schedule(run, selected, forced=forced, jobs=max(jobs, 1), client=client)
    except KeyboardInterrupt:
        _cancel(run)
        status = "cancelled"
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        if run.cancel.is_set():
            status = "cancelled"
        elif any(r.status == "failed" for r in run.results.values()):
            status = "failed"
        for name in selected:  # whatever never started
            if name not in run.results:
                run.results[name] = StepResult(name, "cancelled" if status == "cancelled"
                                               else "skipped", "", None, None, 0.0)  # fmt: skip
        _end_records(run, status)
        _update_lock(run)
        if client is not None:
            client.close()
    ordered = tuple(run.results[n] for n in selected)
    return PipelineResult(spec.name, run.pipeline_run.run_id if run.pipeline_run else None,
                          status, ordered, time.perf_counter() - started)  # fmt: skip


def _dask_client(scheduler: str | None) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - the dask extra is in dev
        raise InvalidInputError(
            "the dask executor needs the dask extra: pip install 'shipyard[dask]'"
        ) from exc
    return Client(scheduler, timeout="10s")  # type: ignore[no-untyped-call]


def _cancel(run: _Run) -> None:
    run.cancel.set()
    with run.lock:
        procs = list(run.procs.values())
    for proc in procs:  # each step runs in its own process group
        _kill(proc)


def _schedule(
    run: _Run, selected: Sequence[str], *, forced: set[str], jobs: int, client: Any
) -> None:
    """Start every step whose upstream is done, ``jobs`` at a time, until none is left."""
    waiting = list(selected)
    running: dict[Future[StepResult], str] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="shipyard-step") as pool:
        try:
            _loop(run, pool, waiting, running, selected=selected, forced=forced, jobs=jobs,
                  client=client)  # fmt: skip
        except BaseException:  # Ctrl-C: stop the running steps before waiting for them
            _cancel(run)
            raise


def _loop(
    run: _Run,
    pool: ThreadPoolExecutor,
    waiting: list[str],
    running: dict[Future[StepResult], str],
    *,
    selected: Sequence[str],
    forced: set[str],
    jobs: int,
    client: Any,
) -> None:
    """The scheduling loop of :func:`_schedule`."""
    spec = run.spec
    while waiting or running:
        if run.cancel.is_set():
            waiting.clear()
        for name in list(waiting):
            ups = [u for u in spec.upstream(name) if u in selected]
            states = [run.results[u].status if u in run.results else None for u in ups]
            if any(s in ("failed", "skipped", "cancelled") for s in states):
                waiting.remove(name)
                blocker = next(u for u, s in zip(ups, states, strict=True)
                               if s in ("failed", "skipped", "cancelled"))  # fmt: skip
                run.results[name] = StepResult(
                    name,
                    "skipped",
                    "",
                    None,
                    None,
                    0.0,
                    message=f"upstream {blocker} did not finish",
                )
                run.say(f"[{name}] skipped: upstream {blocker} did not finish")
                continue
            if any(s is None for s in states) or len(running) >= jobs:
                continue
            waiting.remove(name)
            resolved = _resolve_cached(run, spec.steps[name], forced=name in forced)
            if resolved is not None:
                run.results[name] = resolved
                continue
            running[pool.submit(_execute, run, spec.steps[name], client)] = name
        if not running:
            if waiting and not any(
                all(u in run.results for u in spec.upstream(n) if u in selected) for n in waiting
            ):
                break  # nothing can start (should not happen: the DAG is checked)
            continue
        done, _ = wait(list(running), return_when=FIRST_COMPLETED, timeout=0.5)
        for future in done:
            name = running.pop(future)
            run.results[name] = future.result()


def _resolve_cached(run: _Run, step: StepSpec, *, forced: bool) -> StepResult | None:
    """A cached (or restored) result for ``step``, or None when it has to run."""
    started = time.perf_counter()
    key, _inputs = step_key(run, step)
    if forced:
        return None
    entry = run.ctx.cache.cache_get(key)
    if entry is None:
        return None
    manifest = OutputManifest.from_dict(entry.manifest["outputs"])
    status = "cached"
    if not run.outputs.present(manifest):
        try:
            restored = run.outputs.restore(manifest)
        except NotFoundError:  # the objects were collected: run the step again
            run.say(f"[{step.name}] cached outputs are gone from the object store; rerunning")
            return None
        status = "restored"
        run.say(f"[{step.name}] restored {', '.join(restored)} from the cache")
    produced = str(entry.manifest.get("run_id") or entry.run_id or "")
    if produced:
        run.run_ids[step.name] = produced
    run.locked[step.name] = {"key": key, "run_id": produced, "outputs": entry.manifest["outputs"]}
    step_run = _record_step(run, step, key=key, status=status, source_run=produced,
                            duration=time.perf_counter() - started)  # fmt: skip
    run.say(f"[{step.name}] {status} (key {key[:12]})")
    return StepResult(step.name, status, key, produced or None, step_run,
                      time.perf_counter() - started)  # fmt: skip


def _execute(run: _Run, step: StepSpec, client: Any) -> StepResult:
    """Run a step (with its retries) and record it; never raises for a step's failure."""
    started = time.perf_counter()
    spec, ctx = run.spec, run.ctx
    key, inputs = step_key(run, step)
    step_run = _open_step_run(run, step, key=key, inputs=inputs)
    log_dir = Path(ctx.settings.home) / "pipelines" / "logs" / run.pipeline_run.run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{step.name}.log"
    attempts, code, message = 0, 1, ""
    result: dict[str, Any] = {}
    while attempts <= step.retries and not run.cancel.is_set():
        if attempts:
            delay = step.retry_backoff_s * 2 ** (attempts - 1)
            run.say(f"[{step.name}] retry {attempts} of {step.retries} in {delay:g} s")
            time.sleep(delay)
        attempts += 1
        command = _command(run, step, step_run.run_id)
        env = _step_env(run, step, step_run.run_id)
        if client is not None:
            code, result, message = _run_on_dask(client, step, command=command, env=env,
                                                 root=spec.root, log_path=log_path)  # fmt: skip
        else:
            code, result, message = _run_here(run, step, command=command, env=env,
                                              root=spec.root, log_path=log_path)  # fmt: skip
        if code == 0:
            break
    duration = time.perf_counter() - started
    status = "ran" if code == 0 else ("cancelled" if run.cancel.is_set() else "failed")
    produced = str(result.get("run_id") or step_run.run_id)
    if status == "ran":
        try:
            manifest = run.outputs.save(step.outs)
            extra = _register_output(run, step) if step.produces_dataset else {}
        except InvalidInputError as exc:
            status, message = "failed", exc.message
        else:
            body = {"outputs": manifest.to_dict(), "run_id": produced, **extra, **result}
            ctx.cache.cache_put(key, pipeline=spec.name, step=step.name, manifest=body,
                                run_id=step_run.run_id)  # fmt: skip
            run.run_ids[step.name] = produced
            run.locked[step.name] = {"key": key, "run_id": produced,
                                     "outputs": body["outputs"]}  # fmt: skip
    _close_step_run(run, step_run, status=status, attempts=attempts, duration=duration,
                    log_path=log_path, message=message)  # fmt: skip
    tail = f": {message}" if message and status != "ran" else ""
    run.say(f"[{step.name}] {status} in {duration:.1f} s"
            + (f" after {attempts} attempts" if attempts > 1 else "") + tail)  # fmt: skip
    return StepResult(step.name, status, key, produced if status == "ran" else None,
                      step_run.run_id, duration, attempts, message, str(log_path))  # fmt: skip


def _command(run: _Run, step: StepSpec, step_run_id: str) -> list[str]:
    """The process a step runs: the shell command, or our worker for functions and built-ins."""
    if step.kind == "run":
        text = interpolate(step.target, params=run.spec.params, run_ids=run.run_ids,
                           step=step.name)  # fmt: skip
        return ["/bin/sh", "-c", text]
    payload = {
        "kind": step.kind, "target": step.target, "name": step.name,
        "params": run.spec.step_params(step.name), "options": dict(step.options),
        "dataset": step.dataset, "register": step.register, "outs": list(step.outs),
        "root": str(run.spec.root), "run_id": step_run_id, "pipeline": run.spec.name,
        "upstream_runs": {u: run.run_ids.get(u) for u in run.spec.upstream(step.name)},
    }  # fmt: skip
    return [sys.executable, "-m", "shipyard.pipelines.worker", json.dumps(payload)]


def _step_env(run: _Run, step: StepSpec, step_run_id: str) -> dict[str, str]:
    s = run.ctx.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_RUN")}
    env.update({
        "SHIPYARD_HOME": s.home, "SHIPYARD_DB_URL": s.db_url,
        "SHIPYARD_ARTIFACT_URI": s.artifact_uri, "SHIPYARD_EXPERIMENT": run.experiment_name,
        "SHIPYARD_PIPELINE": run.spec.name, "SHIPYARD_PIPELINE_RUN_ID": run.pipeline_run.run_id,
        "SHIPYARD_STEP": step.name, "SHIPYARD_STEP_RUN_ID": step_run_id,
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    if s.user:
        env["SHIPYARD_USER"] = s.user
    # `python` in a step is the interpreter shipyard runs on (its virtualenv), as it would
    # be with the environment activated
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(run.env)
    env.update(step.env)
    return env


def _run_here(
    run: _Run, step: StepSpec, *, command: list[str], env: Mapping[str, str], root: Path,
    log_path: Path,
) -> tuple[int, dict[str, Any], str]:  # fmt: skip
    """Run the step's process here, streaming its output with a prefix into the log."""
    result: dict[str, Any] = {}
    last = ""
    with log_path.open("a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command, cwd=root, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,
        )  # fmt: skip
        with run.lock:
            run.procs[step.name] = proc
        deadline = time.monotonic() + step.timeout_s if step.timeout_s else None
        timer = None
        if deadline is not None:
            timer = threading.Timer(step.timeout_s or 0, _kill, args=(proc,))
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(RESULT_MARK):
                    result = json.loads(line[len(RESULT_MARK) :])
                    continue
                log.write(line)
                stripped = line.rstrip("\n")
                if stripped:
                    last = stripped
                run.say(f"[{step.name}] {stripped}")
            code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            with run.lock:
                run.procs.pop(step.name, None)
    if code != 0:
        if deadline is not None and time.monotonic() >= deadline:
            return code, result, f"timed out after {step.timeout_s:g} s"
        return code, result, f"exited with {code}" + (f": {last}" if last else "")
    return 0, result, ""


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)


def _remote_step(
    command: list[str], env: Mapping[str, str], root: str, timeout: float | None
) -> tuple[int, str]:
    """What a Dask worker runs: the step's process; its exit code and output."""
    try:
        done = subprocess.run(command, cwd=root, env=dict(env), capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        return 124, out + f"\ntimed out after {timeout:g} s\n"
    return done.returncode, done.stdout + done.stderr


def _run_on_dask(
    client: Any, step: StepSpec, *, command: list[str], env: Mapping[str, str], root: Path,
    log_path: Path,
) -> tuple[int, dict[str, Any], str]:  # fmt: skip
    key = f"shipyard-step-{step.name}-{time.time_ns()}"
    future = client.submit(_remote_step, command, dict(env), str(root), step.timeout_s,
                           pure=False, key=key)  # fmt: skip
    try:
        code, output = future.result()
    except Exception as exc:  # a worker that died mid-step: Dask raises its own errors
        return 1, {}, f"the Dask worker running it failed: {type(exc).__name__}: {exc}"
    result: dict[str, Any] = {}
    lines = []
    for line in output.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
        else:
            lines.append(line)
    log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    last = next((line for line in reversed(lines) if line.strip()), "")
    return code, result, "" if code == 0 else f"exited with {code}" + (f": {last}" if last else "")


def _register_output(run: _Run, step: StepSpec) -> dict[str, Any]:
    """A run/call step with ``dataset:``: its first output becomes a dataset version."""
    from shipyard import data

    catalog = data.catalog(run.ctx.settings)
    if not step.outs:
        raise InvalidInputError(
            f"step {step.name!r} names dataset {step.produces_dataset!r} but declares no "
            "output to register as it; add the file under outs:"
        )
    version = catalog.add(str(step.produces_dataset), run.spec.root / step.outs[0],
                          step=step.name, description=f"written by pipeline "
                          f"{run.spec.name} step {step.name}")  # fmt: skip
    run.say(f"[{step.name}] {step.outs[0]} is {version.ref}")
    return {"dataset_version": version.ref}


def _update_lock(run: _Run) -> None:
    """``shipyard.lock``: this run's finished steps over what the lock said before."""
    from shipyard.pipelines.lockfile import read_lock

    steps = dict(read_lock(run.spec) or {})
    for name, result in run.results.items():
        if name in run.locked:
            steps[name] = run.locked[name]
        elif result.status in ("failed", "cancelled"):
            steps.pop(name, None)
    try:
        write_lock(run.spec, steps)
    except OSError as exc:  # a read-only project folder: the store's cache still has it all
        logger.warning("could not write %s: %s", run.spec.root / "shipyard.lock", exc)


# -- records ------------------------------------------------------------------------------


def _start_records(run: _Run) -> None:
    from shipyard.tracking import environment as env

    ctx = run.ctx
    run.experiment_name = f"{EXPERIMENT_PREFIX}{run.spec.name}"
    run.experiment_id = ctx.runs.get_or_create_experiment(run.experiment_name).experiment_id
    run.pipeline_run = ctx.runs.create_run(
        experiment_id=run.experiment_id, name=f"{run.spec.name}",
        user=ctx.settings.actor, entry_point=env.entry_point(),
        python_version=env.python_version(), pid=os.getpid(),
        tags_={"sy.pipeline": run.spec.name, "sy.kind": "pipeline",
               "sy.spec": str(run.spec.path or "")},
    )  # fmt: skip
    params = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in run.spec.params.items()}
    if params:
        ctx.runs.log_params(run.pipeline_run.pk, params)


def _end_records(run: _Run, status: str) -> None:
    states = {"finished": RunStatus.FINISHED, "failed": RunStatus.FAILED,
              "cancelled": RunStatus.KILLED}  # fmt: skip
    counts: dict[str, int] = {}
    for r in run.results.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    tags = {f"sy.steps.{k}": str(v) for k, v in counts.items()}
    failed = next((r.name for r in run.results.values() if r.status == "failed"), None)
    tags["sy.status"] = status
    if failed:
        tags["sy.failed_step"] = failed
    run.ctx.runs.set_tags(run.pipeline_run.pk, tags)
    run.ctx.runs.end_run(run.pipeline_run.pk, states[status])


def _open_step_run(run: _Run, step: StepSpec, *, key: str, inputs: Mapping[str, str]) -> Any:
    ref = run.ctx.runs.create_run(
        experiment_id=run.experiment_id, name=step.name,
        parent_run_id=run.pipeline_run.run_id, user=run.ctx.settings.actor, pid=os.getpid(),
        tags_={"sy.pipeline": run.spec.name, "sy.step": step.name, "sy.key": key,
               "sy.cache_hit": "false", "sy.kind": "pipeline-step"},
    )  # fmt: skip
    params = {k: json.dumps(v) if not isinstance(v, str) else v
              for k, v in run.spec.step_params(step.name).items()}  # fmt: skip
    params.update({f"input:{k}"[:250]: v for k, v in inputs.items()})
    if params:
        run.ctx.runs.log_params(ref.pk, params)
    return ref


def _close_step_run(
    run: _Run, ref: Any, *, status: str, attempts: int, duration: float, log_path: Path,
    message: str,
) -> None:  # fmt: skip
    ctx = run.ctx
    if log_path.is_file():
        info = ctx.objects.put_file(log_path)
        ctx.runs.add_artifacts(ref.pk, [(f"logs/{log_path.name}", info.digest, info.size)])
    ctx.runs.set_tags(ref.pk, {"sy.status": status, "sy.attempts": str(attempts),
                               "sy.duration_s": f"{duration:.3f}",
                               **({"sy.message": message[:4000]} if message else {})})  # fmt: skip
    ctx.runs.end_run(ref.pk, RunStatus.FINISHED if status == "ran" else (
        RunStatus.KILLED if status == "cancelled" else RunStatus.FAILED))  # fmt: skip


def _record_step(
    run: _Run, step: StepSpec, *, key: str, status: str, source_run: str, duration: float
) -> str:
    """A cached step's record: a finished child run pointing at the run that produced it."""
    ref = run.ctx.runs.create_run(
        experiment_id=run.experiment_id, name=step.name,
        parent_run_id=run.pipeline_run.run_id, user=run.ctx.settings.actor, pid=os.getpid(),
        tags_={"sy.pipeline": run.spec.name, "sy.step": step.name, "sy.key": key,
               "sy.cache_hit": "true", "sy.status": status, "sy.kind": "pipeline-step",
               "sy.source_run": source_run, "sy.duration_s": f"{duration:.3f}"},
    )  # fmt: skip
    run.ctx.runs.end_run(ref.pk, RunStatus.FINISHED)
    return str(ref.run_id)


def format_plan(plans: Iterable[StepPlan]) -> list[str]:
    """One line per step: will it run, and why."""
    return [f"{'run ' if p.will_run else 'skip'}  {p.name}: {p.reason}" for p in plans]


def shell_join(command: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in command)
