"""The background metric writer: logging calls append to a queue; a thread writes batches.

``log_metric`` costs a tuple and a deque append. A daemon thread wakes every
``flush_interval`` seconds (or early, when ``flush_max_points`` are waiting)
and writes everything queued in one transaction. :meth:`MetricWriter.flush`
writes synchronously in the caller, so when it returns every point logged
before it is durable. After ``fork`` the child starts with an empty queue
(its parent's points are the parent's to write) and flushes when it exits,
including through ``multiprocessing``'s ``os._exit``.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence

from shipyard.core.errors import ShipyardError, StoreUnavailableError
from shipyard.store.metrics import Point

logger = logging.getLogger(__name__)

_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


class _ForkToken:
    """A weak-referenceable key for ``multiprocessing.util.register_after_fork``."""


_FORK_TOKEN = _ForkToken()
_mp_hook_installed = [False]


def _register_exit_flush(_token: object) -> None:
    import multiprocessing.util as mp_util

    mp_util.Finalize(None, flush_all_writers, exitpriority=100)


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._reset_after_fork()


def _install_multiprocessing_hook() -> None:
    """Flush in ``multiprocessing`` fork children, which leave through ``os._exit``.

    A Finalize registered from ``os.register_at_fork`` would be wiped by
    multiprocessing's own after-fork clean-up, so it is registered from
    multiprocessing's after-fork callbacks, which run after that clean-up.
    """
    if _mp_hook_installed[0]:
        return
    import multiprocessing.util as mp_util

    mp_util.register_after_fork(_FORK_TOKEN, _register_exit_flush)
    _mp_hook_installed[0] = True


def flush_all_writers() -> None:
    for writer in list(_writers):
        try:
            writer.flush()
        except ShipyardError as exc:  # at exit there is nobody left to raise to
            logger.error("could not write queued metric points: %s", exc)


os.register_at_fork(after_in_child=_after_fork_in_child)


class MetricWriter:
    """Queue of metric points written in batches by a daemon thread.

    Args:
        write: writes a batch durably (one transaction); may raise.
        interval: seconds between background writes.
        max_points: queued points that wake the thread early.
    """

    def __init__(
        self, write: Callable[[Sequence[Point]], int], *, interval: float, max_points: int
    ) -> None:
        self._write = write
        self._interval = interval
        self._max_points = max_points
        self._reset_after_fork()
        _writers.add(self)
        _install_multiprocessing_hook()

    def _reset_after_fork(self) -> None:
        self._queue: deque[Point | list[Point]] = deque()
        self._io_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry: list[Point] = []
        self._error: BaseException | None = None
        self._pid = os.getpid()

    # hot path ------------------------------------------------------------------

    def put(self, point: Point) -> None:
        q = self._queue
        q.append(point)
        if self._thread is None:
            self._start()
        elif len(q) >= self._max_points:
            self._wake.set()

    def put_many(self, points: list[Point]) -> None:
        self._queue.append(points)
        if self._thread is None:
            self._start()
        if len(points) >= self._max_points:
            self._wake.set()

    # background ----------------------------------------------------------------

    def _start(self) -> None:
        with self._io_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-metric-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain_and_write()
            except ShipyardError as exc:
                logger.warning("metric write failed, will retry: %s", exc)
                self._stop.wait(min(self._interval * 5, 2.0))
            except Exception as exc:  # process boundary of a thread: never die silently
                logger.exception("metric writer error")
                self._error = exc
                self._stop.wait(min(self._interval * 5, 2.0))

    def _drain(self) -> list[Point]:
        batch = self._retry
        self._retry = []
        q = self._queue
        for _ in range(len(q)):
            item = q.popleft()
            if type(item) is list:
                batch.extend(item)
            else:
                batch.append(item)  # type: ignore[arg-type]
        return batch

    def _drain_and_write(self) -> int:
        with self._io_lock:
            batch = self._drain()
            if not batch:
                return 0
            try:
                written = self._write(batch)
            except BaseException:
                self._retry = batch  # keep every point for the next attempt
                raise
            self._error = None
            return written

    # control -------------------------------------------------------------------

    def pending(self) -> int:
        return sum(len(i) if type(i) is list else 1 for i in list(self._queue)) + len(self._retry)

    def flush(self) -> None:
        """Write everything queued so far, in this thread; raise if it cannot be written."""
        try:
            self._drain_and_write()
        except StoreUnavailableError:
            raise
        except ShipyardError:
            raise
        except Exception as exc:
            raise StoreUnavailableError(
                f"could not write {len(self._retry)} queued metric points: {exc}. They are "
                "kept in memory; call flush() again once the store is reachable."
            ) from exc

    def close(self) -> None:
        self.flush()
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
