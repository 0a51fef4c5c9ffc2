"""The prediction log: what a server predicted, for monitoring to read later.

A server hands each request's inputs, outputs, model version, latency and request id
to :meth:`PredictionLog.submit`, which only puts them on a bounded queue: it never
blocks and never raises; when the queue is full the record is dropped and counted. A
background thread takes records off in batches and appends them as Parquet files,
partitioned by model and day::

    <root>/predictions/model=churn/date=2026-11-24/part-<ms>-<id>.parquet
    <root>/feedback/model=churn/date=2026-11-24/part-<ms>-<id>.parquet

One row per predicted row: the input columns under their own names, then ``sy_*``
columns (request id, row in the request, time, model, version, latency, prediction,
one ``sy_proba_<class>`` per class, validation flags). Files are written to a temporary
name and renamed, so a reader never sees half a file. :meth:`PredictionLog.close`
(a server's shutdown) writes whatever is queued.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

RESERVED = "sy_"


@dataclass(frozen=True)
class PredictionRecord:
    """One request's predictions (``inputs`` has one row per prediction)."""

    model: str
    version: int
    request_id: str
    at_ms: int
    latency_ms: float
    inputs: pd.DataFrame
    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: Sequence[Any] | None = None
    flags: Sequence[str] = ()  # one text per row ("" when nothing was flagged)


@dataclass(frozen=True)
class FeedbackRecord:
    """Ground truth for an earlier request, by its id (``labels``: one per predicted row)."""

    model: str
    request_id: str
    at_ms: int
    labels: Sequence[Any]


@dataclass
class LogStats:
    """Counters a server exports as metrics."""

    submitted: int = 0
    written_rows: int = 0
    written_files: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str = ""
    extra: dict[str, int] = field(default_factory=dict)


class PredictionLog:
    """A bounded queue and a background writer of Parquet files under ``root``.

    Args:
        root: folder for ``predictions/`` and ``feedback/`` (the store's home).
        max_queue: records waiting at most; more are dropped (counted in ``stats``).
        flush_interval: seconds between writes when the queue is not empty.
        max_batch: records per write at most.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_queue: int = 10_000,
        flush_interval: float = 1.0,
        max_batch: int = 2_000,
    ) -> None:
        self.root = Path(root)
        self.stats = LogStats()
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self._queue: queue.Queue[PredictionRecord | FeedbackRecord | None] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._flush_now = threading.Event()
        self._reported_drops = 0
        self._models: set[str] = set()
        self._status_file = self.root / "predictions" / "_status" / (
            f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        )
        self._thread = threading.Thread(
            target=self._run, name="shipyard-prediction-log", daemon=True
        )
        self._thread.start()

    @property
    def depth(self) -> int:
        """Records waiting to be written."""
        return self._queue.qsize()

    def submit(self, record: PredictionRecord | FeedbackRecord) -> bool:
        """Queue a record; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1
            return False
        with self._lock:
            self.stats.submitted += 1
        self._idle.clear()
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far now; False on timeout."""
        deadline = time.monotonic() + timeout
        self._flush_now.set()
        try:
            while self._queue.qsize() or not self._idle.is_set():
                if time.monotonic() > deadline:
                    return False
                self._idle.wait(0.05)
            return True
        finally:
            self._flush_now.clear()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the writer."""
        if not self._thread.is_alive():
            return
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                self._idle.set()
                continue
            if first is None:
                self._idle.set()
                return
            batch: list[PredictionRecord | FeedbackRecord] = [first]
            stop = False
            # gather for up to flush_interval: one file a second under load, not one per
            # request (each write holds the GIL for a while, which the server feels)
            deadline = time.monotonic() + self.flush_interval
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0 or self._flush_now.is_set():
                        item = self._queue.get_nowait()
                    else:
                        item = self._queue.get(timeout=min(remaining, 0.05))
                except queue.Empty:
                    if remaining <= 0 or self._flush_now.is_set():
                        break
                    continue
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._write(batch)
            except Exception as exc:  # a writer thread must outlive a bad batch
                logger.exception("prediction log: could not write %d records", len(batch))
                with self._lock:
                    self.stats.errors += len(batch)
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self._report_drops()
            if self._queue.empty():
                self._idle.set()
            if stop:
                return

    def _report_drops(self) -> None:
        """Tell monitors about dropped records: a small status file per writer, rewritten
        when the count changes (monitors sum them: ``prediction_log_drops``)."""
        with self._lock:
            dropped = self.stats.dropped
        if dropped == self._reported_drops:
            return
        try:
            self._status_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._status_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({
                "pid": os.getpid(), "dropped": dropped, "models": sorted(self._models),
                "updated_ms": time.time_ns() // 1_000_000,
            }))  # fmt: skip
            os.replace(tmp, self._status_file)
            self._reported_drops = dropped
        except OSError:
            logger.exception("prediction log: could not write %s", self._status_file)

    def _write(self, batch: Sequence[PredictionRecord | FeedbackRecord]) -> None:
        groups: dict[tuple[str, str, str], list[Any]] = {}
        for record in batch:
            day = datetime.fromtimestamp(record.at_ms / 1000, UTC).strftime("%Y-%m-%d")
            kind = "feedback" if isinstance(record, FeedbackRecord) else "predictions"
            groups.setdefault((kind, record.model, day), []).append(record)
        self._models.update(model for _, model, _ in groups)
        for (kind, model, day), records in groups.items():
            table = _feedback_table(records) if kind == "feedback" else _prediction_table(records)
            folder = self.root / kind / f"model={model}" / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{time.time_ns() // 1_000_000}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = folder / f".{name}.tmp"
            table.to_parquet(tmp, index=False)
            os.replace(tmp, folder / name)
            with self._lock:
                self.stats.written_rows += len(table)
                self.stats.written_files += 1


def _feedback_table(records: Sequence[FeedbackRecord]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    sizes = [len(r.labels) for r in records]
    return pd.DataFrame({
        "sy_request_id": np.repeat([r.request_id for r in records], sizes),
        "sy_row": np.concatenate([np.arange(n) for n in sizes]),
        "sy_time": pd.to_datetime(np.repeat([r.at_ms for r in records], sizes), unit="ms",
                                  utc=True),
        "sy_label": [label for r in records for label in r.labels],
    })  # fmt: skip


def _prediction_table(records: Sequence[PredictionRecord]) -> pd.DataFrame:
    """One frame for a batch, built column-wise: a server logs hundreds of requests a
    second, and concatenating a small frame per request would cost the writer more than
    the server spends on them."""
    import numpy as np
    import pandas as pd

    sizes = np.array([len(r.inputs) for r in records])
    columns = [str(c) for c in records[0].inputs.columns]
    same = all([str(c) for c in r.inputs.columns] == columns for r in records)
    numeric = same and all(
        all(dtype.kind in "fiu" for dtype in r.inputs.dtypes) for r in records
    )  # fmt: skip
    if numeric:  # the usual case: stack the arrays, no per-request frames
        matrix = np.vstack([r.inputs.to_numpy(dtype=float) for r in records])
        inputs = pd.DataFrame(matrix, columns=columns)
    else:
        inputs = pd.concat([r.inputs.reset_index(drop=True) for r in records], ignore_index=True,
                           sort=False)  # fmt: skip
        inputs.columns = [str(c) for c in inputs.columns]
    extra: dict[str, Any] = {
        "sy_request_id": np.repeat([r.request_id for r in records], sizes),
        "sy_row": np.concatenate([np.arange(n) for n in sizes]),
        "sy_time": pd.to_datetime(np.repeat([r.at_ms for r in records], sizes), unit="ms",
                                  utc=True),
        "sy_model": np.repeat([r.model for r in records], sizes),
        "sy_version": np.repeat([r.version for r in records], sizes),
        "sy_latency_ms": np.repeat([r.latency_ms for r in records], sizes),
        "sy_prediction": np.concatenate(
            [np.asarray(r.predictions).reshape(len(r.inputs), -1)[:, 0] for r in records]
        ),
        "sy_flags": [f for r in records for f in (r.flags or [""] * len(r.inputs))],
    }  # fmt: skip
    labels = next((list(r.classes) for r in records
                   if r.probabilities is not None and r.classes is not None), None)  # fmt: skip
    if labels is not None:
        blocks = []
        for r in records:
            if r.probabilities is not None and r.classes is not None:
                blocks.append(np.asarray(r.probabilities, dtype=float).reshape(len(r.inputs), -1))
            else:
                blocks.append(np.full((len(r.inputs), len(labels)), np.nan))
        proba = np.vstack(blocks)
        for j, cls in enumerate(labels):
            extra[f"sy_proba_{cls}"] = proba[:, j]
    return pd.concat([inputs, pd.DataFrame(extra)], axis=1)


def read_predictions(
    root: str | os.PathLike[str],
    model: str,
    *,
    feedback: bool = False,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> pd.DataFrame:
    """Logged rows of ``model`` (or its feedback), oldest file first; with ``since_ms`` /
    ``until_ms`` only rows whose ``sy_time`` falls in ``[since, until)`` (and only the day
    folders that can hold them are read)."""
    import pandas as pd

    folder = Path(root) / ("feedback" if feedback else "predictions") / f"model={model}"
    first_day = (
        datetime.fromtimestamp(since_ms / 1000, UTC).strftime("date=%Y-%m-%d")
        if since_ms is not None else ""
    )  # fmt: skip
    files = sorted(
        (f for f in folder.glob("date=*/part-*.parquet") if f.parent.name >= first_day),
        key=lambda p: (p.parent.name, p.name),
    )
    if not files:
        return pd.DataFrame()
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True, sort=False)
    if since_ms is not None or until_ms is not None:
        ms = frame["sy_time"].astype("datetime64[ms, UTC]").astype("int64")
        keep = ms >= (since_ms if since_ms is not None else ms.min())
        if until_ms is not None:
            keep &= ms < until_ms
        frame = frame[keep].reset_index(drop=True)
    return frame


def log_drops(root: str | os.PathLike[str], model: str) -> int:
    """Records dropped by the servers that logged ``model`` (summed over their writers)."""
    total = 0
    for path in (Path(root) / "predictions" / "_status").glob("*.json"):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if model in status.get("models", ()):
            total += int(status.get("dropped", 0))
    return total


def counters(log: PredictionLog) -> Mapping[str, int]:
    """The log's counters as plain numbers (for metrics and tests)."""
    s = log.stats
    return {
        "submitted": s.submitted, "written_rows": s.written_rows,
        "written_files": s.written_files, "dropped": s.dropped, "errors": s.errors,
        "depth": log.depth,
    }  # fmt: skip
