"""The tracking session behind ``import shipyard as sy``: the active run stack and logging calls.

A :class:`Tracker` owns a metadata store, an object store and a background
metric writer. Runs form a process-wide stack (threads share the active run,
so worker threads can log to it); ``with tracker.start_run():`` ends the run
FINISHED, or FAILED when an exception escapes (KILLED for KeyboardInterrupt).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from shipyard.core.config import Settings
from shipyard.core.entities import (
    Artifact,
    DatasetVersion,
    Experiment,
    Metric,
    Run,
    RunStatus,
)
from shipyard.core.errors import (
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    ShipyardError,
)
from shipyard.core.validation import (
    check_artifact_path,
    check_key,
    check_metric_value,
    check_param_value,
    check_step,
    check_tag_value,
    check_timestamp,
)
from shipyard.store.dataset_store import SqlDatasetStore
from shipyard.store.db import shared_database
from shipyard.store.metrics import Point
from shipyard.store.objects import ObjectStore, open_object_store
from shipyard.store.tracking_store import RunRef, SqlTrackingStore
from shipyard.tracking import artifacts as art
from shipyard.tracking import environment as env
from shipyard.tracking.writer import MetricWriter

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


_uncaught_exception = [False]


def _install_excepthook() -> None:
    """Remember an uncaught exception so runs still open at exit end FAILED, not FINISHED."""
    previous = sys.excepthook
    if getattr(previous, "_shipyard", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _uncaught_exception[0] = True
        previous(exc_type, exc, tb)

    hook._shipyard = True  # type: ignore[attr-defined]
    sys.excepthook = hook


@dataclass
class _RunState:
    """Per-process knowledge of a run being logged to."""

    ref: RunRef
    experiment_id: str
    name: str
    owner_pid: int
    ended: bool = False
    keys: set[str] = field(default_factory=set)
    next_step: dict[str, int] = field(default_factory=dict)
    env_thread: threading.Thread | None = None
    # (git state, environment digest) once captured: nested runs started in this process
    # record their parent's instead of capturing again (a tuning job starts hundreds)
    environment: tuple[Any, str] | None = None


class ActiveRun:
    """Handle on a started run; a context manager that ends it.

    Example::

        with sy.start_run(name="rf") as run:
            run.log_metric("loss", 0.3)
        run.run_id
    """

    def __init__(self, tracker: Tracker, state: _RunState) -> None:
        self._tracker = tracker
        self._state = state

    @property
    def run_id(self) -> str:
        return self._state.ref.run_id

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def experiment_id(self) -> str:
        return self._state.experiment_id

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name} {self.run_id}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self._tracker.end_run(status, run_id=self.run_id)

    def info(self) -> Run:
        """The run as stored now (flushes queued metrics first)."""
        self._tracker.flush()
        return self._tracker.get_run(self.run_id)

    def log_metric(
        self, key: str, value: float, step: int | None = None, *, timestamp: int | None = None
    ) -> None:
        self._tracker.log_metric(key, value, step, timestamp=timestamp, run_id=self.run_id)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._tracker.log_metrics(metrics, step, run_id=self.run_id)

    def log_param(self, key: str, value: Any) -> None:
        self._tracker.log_params({key: value}, run_id=self.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._tracker.log_params(params, run_id=self.run_id)

    def set_tag(self, key: str, value: Any) -> None:
        self._tracker.set_tags({key: value}, run_id=self.run_id)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._tracker.log_artifact(local_path, artifact_path, run_id=self.run_id)

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self._tracker.log_dict(data, artifact_file, run_id=self.run_id)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        self._tracker.end_run(status, run_id=self.run_id)


class Tracker:
    """Tracking against one store, as configured by ``settings``.

    Args:
        settings: where the store is and how the writer batches.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.uri:
            raise InvalidInputError(
                f"SHIPYARD_URI is set ({settings.uri!r}), but this version of shipyard has no "
                "tracking server to talk to; unset it to use the embedded store "
                "(SHIPYARD_DB_URL and SHIPYARD_ARTIFACT_URI point it at PostgreSQL and S3)"
            )
        self.settings = settings
        self.db = shared_database(settings.db_url, busy_timeout=settings.busy_timeout)
        self.store = SqlTrackingStore(self.db, actor=settings.actor)
        self.datasets = SqlDatasetStore(self.db, actor=settings.actor)
        self._objects: ObjectStore | None = None
        self.writer = MetricWriter(
            self.store.write_points,
            interval=settings.flush_interval,
            max_points=settings.flush_max_points,
        )
        self._lock = threading.RLock()
        self._stack: list[_RunState] = []
        self._states: dict[str, _RunState] = {}
        self._experiment_name = settings.experiment
        self._experiment_id: str | None = None
        self._closed = False
        atexit.register(self._at_exit)
        _install_excepthook()

    @property
    def objects(self) -> ObjectStore:
        if self._objects is None:
            self._objects = open_object_store(
                self.settings.artifact_uri, s3_endpoint_url=self.settings.s3_endpoint_url
            )
        return self._objects

    # -- experiments --------------------------------------------------------------

    def set_experiment(self, name: str) -> Experiment:
        """Make ``name`` the experiment new runs go to, creating it if needed."""
        exp = self.store.get_or_create_experiment(name)
        with self._lock:
            self._experiment_name = exp.name
            self._experiment_id = exp.experiment_id
        return exp

    def _current_experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self.store.get_or_create_experiment(
                self._experiment_name
            ).experiment_id
        return self._experiment_id

    # -- runs ---------------------------------------------------------------------

    def start_run(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        nested: bool = False,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str = "",
        run_id: str | None = None,
    ) -> ActiveRun:
        """Start a run (or resume ``run_id``) and make it the active run.

        Raises:
            InvalidStateError: a run is active and ``nested`` is False.
        """
        with self._lock:
            if self._stack and not nested and parent_run_id is None:
                active = self._stack[-1]
                raise InvalidStateError(
                    f"run {active.name} ({active.ref.run_id}) is still active; end it first, "
                    "or pass nested=True to start a child run"
                )
            if run_id is not None:
                return self._resume(run_id)
            exp_id = (
                self.store.get_or_create_experiment(experiment).experiment_id
                if experiment
                else self._current_experiment_id()
            )
            parent = parent_run_id or (self._stack[-1].ref.run_id if self._stack else None)
            tag_values = {
                check_key(k, what="tag key"): check_tag_value(k, v) for k, v in (tags or {}).items()
            }
            user = self.settings.actor
            ref = self.store.create_run(
                experiment_id=exp_id,
                name=name,
                parent_run_id=parent,
                description=description,
                user=user,
                entry_point=env.entry_point(),
                python_version=env.python_version(),
                pid=os.getpid(),
                host=socket.gethostname(),
                tags_=tag_values,
            )
            state = _RunState(ref, exp_id, name or f"run-{ref.run_id[:8]}", os.getpid())
            if self.settings.capture_environment:
                source = self._states.get(parent) if parent else None
                if source is not None and source.owner_pid != os.getpid():
                    source = None  # a parent's capture from before a fork is not ours
                state.env_thread = threading.Thread(
                    target=self._capture_environment,
                    args=(state, source),
                    daemon=True,
                    name="shipyard-environment",
                )
                state.env_thread.start()
            self._stack.append(state)
            self._states[ref.run_id] = state
            return ActiveRun(self, state)

    def _resume(self, run_id: str) -> ActiveRun:
        ref = self.store.get_run_ref(run_id)
        run = self.store.get_run(run_id)
        self.store.reopen_run(ref.pk)
        state = _RunState(
            RunRef(run_id, ref.pk, RunStatus.RUNNING, ref.lifecycle_stage),
            run.experiment_id,
            run.name,
            os.getpid(),
        )
        self._stack.append(state)
        self._states[run_id] = state
        return ActiveRun(self, state)

    def _capture_environment(self, state: _RunState, parent: _RunState | None = None) -> None:
        """Record git state and packages; a nested run takes its parent's capture."""
        try:
            if parent is not None and parent.env_thread is not None:
                parent.env_thread.join()
            if parent is not None and parent.environment is not None:
                git, digest = parent.environment
            else:
                git = env.git_state(Path.cwd())
                packages = env.installed_packages(Path(self.settings.cache_dir))
                digest = self.objects.put_bytes(env.environment_document(packages)).digest
            state.environment = (git, digest)
            self.store.set_run_environment(
                state.ref.pk,
                git_commit=git.commit,
                git_dirty=git.dirty,
                git_diff_hash=git.diff_hash,
                environment_digest=digest,
            )
        except (ShipyardError, OSError) as exc:
            logger.warning("could not record the run environment: %s", exc)

    def active_run(self) -> ActiveRun | None:
        with self._lock:
            return ActiveRun(self, self._stack[-1]) if self._stack else None

    def end_run(
        self, status: RunStatus | str = RunStatus.FINISHED, *, run_id: str | None = None
    ) -> None:
        """End ``run_id`` (default: the active run) with ``status`` after flushing its points."""
        try:
            final = RunStatus(status)
        except ValueError:
            raise InvalidInputError(
                f"status must be FINISHED, FAILED or KILLED, got {status!r}"
            ) from None
        with self._lock:
            if run_id is None:
                if not self._stack:
                    return
                state = self._stack[-1]
            else:
                found = self._states.get(run_id)
                if found is None:
                    ref = self.store.get_run_ref(run_id)
                    self.writer.flush()
                    self.store.end_run(ref.pk, final)
                    return
                state = found
            if state.ended:
                return
            if state.env_thread is not None:
                state.env_thread.join()
            self.writer.flush()
            self.store.end_run(state.ref.pk, final)
            state.ended = True
            if state in self._stack:
                self._stack.remove(state)

    def _at_exit(self) -> None:
        if self._closed:
            return
        self._closed = True
        failed = _uncaught_exception[0] or getattr(sys, "last_value", None) is not None
        try:
            self.writer.flush()
            for state in reversed(list(self._stack)):
                if state.owner_pid == os.getpid():
                    self.end_run(
                        RunStatus.FAILED if failed else RunStatus.FINISHED, run_id=state.ref.run_id
                    )
        except ShipyardError as exc:
            logger.error("shipyard could not finish writing at exit: %s", exc)

    def _state_for(self, run_id: str | None, *, allow_ended: bool = False) -> _RunState:
        if run_id is None:
            stack = self._stack
            if stack:
                return stack[-1]
            with self._lock:  # like MLflow, logging with no active run starts one
                if not self._stack:
                    self.start_run()
                return self._stack[-1]
        state = self._states.get(run_id)
        if state is None:
            ref = self.store.get_run_ref(run_id)
            run = self.store.get_run(run_id)
            state = _RunState(
                ref, run.experiment_id, run.name, os.getpid(), ended=ref.status.is_terminal
            )
            self._states[run_id] = state
        if state.ended and not allow_ended:
            raise InvalidStateError(
                f"run {state.name} ({state.ref.run_id}) has ended; start a new run, or resume "
                f"it with sy.start_run(run_id={state.ref.run_id!r})"
            )
        return state

    # -- logging -------------------------------------------------------------------

    def log_metric(
        self,
        key: str,
        value: float,
        step: int | None = None,
        *,
        timestamp: int | None = None,
        run_id: str | None = None,
    ) -> None:
        """Queue one metric point; returns at once (see :meth:`flush`)."""
        self._queue_point(self._state_for(run_id), key, value, step, timestamp)

    def log_evaluation_metric(
        self, key: str, value: float, *, run_id: str, step: int | None = None
    ) -> None:
        """Add a metric to ``run_id`` even if it has ended.

        For scores computed after training, such as autolog's held-out metrics, which
        belong to the run that trained the model (as in MLflow).
        """
        self._queue_point(self._state_for(run_id, allow_ended=True), key, value, step, None)

    def _queue_point(
        self,
        state: _RunState,
        key: str,
        value: float,
        step: int | None,
        timestamp: int | None,
    ) -> None:
        if key not in state.keys:
            check_key(key, what="metric key")
            state.keys.add(key)
        if type(value) is not float:
            value = check_metric_value(key, value)
        if step is None:
            step = state.next_step.get(key, 0)
        elif type(step) is not int:
            step = check_step(key, step)
        if timestamp is None:
            timestamp = time.time_ns() // 1_000_000
        elif type(timestamp) is not int:
            timestamp = check_timestamp(key, timestamp)
        state.next_step[key] = step + 1
        self.writer.put((state.ref.pk, key, value, step, timestamp))

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        *,
        timestamp: int | None = None,
        run_id: str | None = None,
    ) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp=timestamp, run_id=run_id)

    def log_batch(
        self,
        metrics: Iterable[Metric | tuple[Any, ...]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> None:
        """Log many metric points (``Metric`` or ``(key, value, step[, timestamp])``) at once.

        Every point is checked before any is queued: a bad one rejects the whole batch.
        """
        state = self._state_for(run_id)
        now = time.time_ns() // 1_000_000
        pk = state.ref.pk
        keys = state.keys
        points: list[Point] = []
        append = points.append
        for item in metrics:
            if type(item) is tuple:
                n = len(item)
                if n == 3:
                    key, value, step = item
                    ts = now
                elif n == 4:
                    key, value, step, ts = item
                else:
                    raise InvalidInputError(
                        f"metric tuples are (key, value, step) or (key, value, step, "
                        f"timestamp); got {item!r}"
                    )
            elif isinstance(item, Metric):
                key, value, step, ts = item.key, item.value, item.step, item.timestamp
            else:
                raise InvalidInputError(
                    f"log_batch takes Metric objects or tuples, got {type(item).__name__}"
                )
            if key not in keys:
                check_key(key, what="metric key")
                keys.add(key)
            if type(value) is not float:
                value = check_metric_value(key, value)
            if type(step) is not int:
                step = check_step(key, step)
            if type(ts) is not int:
                ts = check_timestamp(key, ts)
            append((pk, key, value, step, ts))
        if params:
            self.log_params(params, run_id=state.ref.run_id)
        if tags:
            self.set_tags(tags, run_id=state.ref.run_id)
        if points:
            self.writer.put_many(points)

    def log_params(self, params: Mapping[str, Any], *, run_id: str | None = None) -> None:
        """Record params now. Raises InvalidInputError if a key was logged with another value."""
        if not isinstance(params, Mapping):
            raise InvalidInputError(f"log_params takes a dict, got {type(params).__name__}")
        values = {
            check_key(k, what="param key"): check_param_value(k, v) for k, v in params.items()
        }
        state = self._state_for(run_id)
        self.store.log_params(state.ref.pk, values)

    def set_tags(self, tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
        values = {check_key(k, what="tag key"): check_tag_value(k, v) for k, v in tags.items()}
        state = self._state_for(run_id)
        self.store.set_tags(state.ref.pk, values)

    def log_input(
        self, version: DatasetVersion, *, context: str = "", run_id: str | None = None
    ) -> None:
        """Record that the run read dataset ``version`` (its lineage names the version)."""
        if not isinstance(version, DatasetVersion):
            raise InvalidInputError(
                f"log_input takes a DatasetVersion (from sy.data.add or sy.data.get(...).version)"
                f", got {type(version).__name__}"
            )
        state = self._state_for(run_id)
        self.datasets.log_input(state.ref.pk, version, context=context)

    def run_inputs(self, run_id: str) -> list[tuple[DatasetVersion, str]]:
        """The dataset versions a run logged as inputs, with their context."""
        return self.datasets.run_inputs(self.store.get_run_ref(run_id).pk)

    def set_description(self, description: str, *, run_id: str | None = None) -> None:
        state = self._state_for(run_id)
        self.store.update_run(state.ref.run_id, description=description)

    def flush(self) -> None:
        """Make every point logged so far durable."""
        self.writer.flush()

    # -- artifacts -----------------------------------------------------------------

    def _artifact_target(self, artifact_path: str | None, name: str) -> str:
        return check_artifact_path(f"{artifact_path.rstrip('/')}/{name}" if artifact_path else name)

    def log_artifact(
        self,
        local_path: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        run_id: str | None = None,
    ) -> None:
        """Store a file (or a whole folder) with the run, under ``artifact_path``."""
        path = Path(local_path)
        if path.is_dir():
            self.log_artifacts(path, artifact_path, run_id=run_id)
            return
        if not path.is_file():
            raise InvalidInputError(f"cannot log artifact {str(path)!r}: no such file")
        state = self._state_for(run_id)
        target = self._artifact_target(artifact_path, path.name)
        info = self.objects.put_file(path)
        self.store.add_artifacts(state.ref.pk, [(target, info.digest, info.size)])

    def log_artifacts(
        self,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        run_id: str | None = None,
    ) -> None:
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInputError(f"cannot log artifacts from {str(root)!r}: not a folder")
        state = self._state_for(run_id)
        items = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            target = self._artifact_target(artifact_path, rel)
            info = self.objects.put_file(file)
            items.append((target, info.digest, info.size))
        self.store.add_artifacts(state.ref.pk, items)

    def log_bytes(self, data: bytes, artifact_file: str, *, run_id: str | None = None) -> None:
        target = check_artifact_path(artifact_file)
        state = self._state_for(run_id)
        info = self.objects.put_bytes(data)
        self.store.add_artifacts(state.ref.pk, [(target, info.digest, info.size)])

    def log_dict(self, data: Any, artifact_file: str, *, run_id: str | None = None) -> None:
        self.log_bytes(art.dict_bytes(data, artifact_file), artifact_file, run_id=run_id)

    def log_text(self, text: str, artifact_file: str, *, run_id: str | None = None) -> None:
        if not isinstance(text, str):
            raise InvalidInputError(f"log_text takes a str, got {type(text).__name__}")
        self.log_bytes(text.encode(), artifact_file, run_id=run_id)

    def log_figure(self, figure: Any, artifact_file: str, *, run_id: str | None = None) -> None:
        self.log_bytes(art.figure_bytes(figure, artifact_file), artifact_file, run_id=run_id)

    def log_table(self, table: Any, artifact_file: str, *, run_id: str | None = None) -> None:
        self.log_bytes(art.table_bytes(table, artifact_file), artifact_file, run_id=run_id)

    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]:
        return self.store.list_artifacts(run_id, check_artifact_path(path) if path else "")

    def load_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact, hash-checked."""
        norm = check_artifact_path(path)
        found = [a for a in self.store.list_artifacts(run_id, norm) if a.path == norm]
        if not found:
            raise _no_artifact(run_id, norm)
        return self.objects.get_bytes(found[0].digest)

    def download_artifacts(
        self, run_id: str, path: str = "", dst: str | os.PathLike[str] | None = None
    ) -> Path:
        """Copy artifacts (all, one file, or a folder) to ``dst``; every file is hash-checked."""
        items = self.list_artifacts(run_id, path)
        if not items:
            raise _no_artifact(run_id, path or "(any)")
        root = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="shipyard-"))
        root.mkdir(parents=True, exist_ok=True)
        for item in items:
            self.objects.get_to_path(item.digest, art.safe_destination(root, item.path))
        if path and len(items) == 1 and items[0].path == check_artifact_path(path):
            return art.safe_destination(root, items[0].path)
        return root

    # -- reading -------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        if run_id in self._states:
            self.writer.flush()
        return self.store.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        if run_id in self._states:
            self.writer.flush()
        return self.store.get_metric_history(run_id, key)

    def search_runs(
        self,
        filter_string: str | None = None,
        *,
        experiment_names: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
        view: str = "active",
        output_format: Literal["pandas", "list"] = "pandas",
    ) -> pd.DataFrame | list[Run]:
        """Search runs with a filter (see :mod:`shipyard.store.search`) in SQL."""
        from shipyard.tracking.results import table_to_frame

        if output_format not in ("pandas", "list"):
            raise InvalidInputError(
                f"output_format must be 'pandas' or 'list', got {output_format!r}"
            )
        self.writer.flush()
        query: dict[str, Any] = {
            "experiment_ids": self.store.experiment_ids(experiment_names),
            "filter_string": filter_string,
            "order_by": order_by,
            "max_results": max_results,
            "page_token": page_token,
            "view": view,
        }
        if output_format == "list":
            page = self.store.search_runs(**query)
            self.last_page_token = page.next_page_token
            return page.runs
        table, token = self.store.search_run_table(**query)
        self.last_page_token = token
        frame = table_to_frame(table)
        frame.attrs["next_page_token"] = token
        return frame


def _no_artifact(run_id: str, path: str) -> NotFoundError:
    return NotFoundError(
        f"run {run_id} has no artifact {path!r}; `shipyard artifacts list {run_id}` shows "
        "what it has"
    )
