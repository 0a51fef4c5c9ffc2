"""A small cron scheduler: runs jobs on their schedules, one run per job at a time.

A :class:`Job` pairs a name with a schedule and a callable. A :class:`Scheduler`
takes a fixed list of jobs, or a callable that returns the current list (read
again every ``refresh_s`` seconds, so schedules kept in a store are picked up
without a restart), and runs every job that is due on a thread pool::

    stop = threading.Event()
    scheduler = Scheduler([Job("drift-check", "*/15 * * * *", check_drift)])
    scheduler.run_forever(stop)   # until another thread sets ``stop``

Schedules are 5-field cron expressions (``minute hour day month weekday``, UTC),
the aliases ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and ``@yearly``,
or intervals such as ``@every 30s``, ``@every 5m`` and ``@every 1h``. An interval
fires at every multiple of it since the Unix epoch, so ``@every 15m`` fires at
:00, :15, :30 and :45 like ``*/15 * * * *`` and a schedule is a pure function of
time.

Guarantees:

- A job that raises is logged with its traceback, counted in
  :attr:`JobState.failures` and :attr:`JobState.last_error`, and runs again at its
  next time; the other jobs are not affected.
- Two runs of the same job never overlap: a job still running when it is due
  again is skipped for that time and counted in :attr:`JobState.skipped_overlaps`.
- Fire times missed while the scheduler was not running (or while the process was
  busy) are not caught up: a late job runs once and is scheduled after "now".
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

from croniter import CroniterError, croniter

from shipyard.core.errors import InvalidInputError

logger = logging.getLogger(__name__)

__all__ = ["Job", "JobState", "Scheduler", "next_fire", "validate_cron"]

_FIELDS = "minute hour day month weekday"
_FIELD_RANGES = (
    "minute 0-59, hour 0-23, day 1-31, month 1-12 or jan-dec, weekday 0-6 or sun-sat (0=Sunday)"
)
_EXAMPLE = "example: '*/15 * * * *'"
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}
_EVERY = re.compile(r"@every\s+(\d+)\s*([smh])")
_EVERY_UNITS = {"s": 1, "m": 60, "h": 3600}
# croniter's hashed (H) and random (R) fields: not a pure function of time, so refused.
_HASHED_OR_RANDOM = re.compile(r"(?<![a-z])[hr](?![a-z])")
# How long run_forever waits for running jobs once it is told to stop.
_STOP_TIMEOUT_S = 30.0


def _not_cron(expr: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"schedule {expr!r} is not a cron expression: {why}; {_EXAMPLE}",
        details={"schedule": expr},
    )


def validate_cron(expr: str) -> str:
    """Check a schedule and return it normalised (single spaces, aliases in lower case).

    Args:
        expr: a 5-field cron expression (``minute hour day month weekday``, UTC),
            one of ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``,
            or an interval ``@every <n>s``, ``@every <n>m`` or ``@every <n>h``.

    Returns:
        The normalised schedule, e.g. ``"*/15 * * * *"`` or ``"@every 30s"``.

    Raises:
        InvalidInputError: the schedule does not parse; the message says which
            part is wrong and shows a valid example.

    Example:
        >>> validate_cron("  */15  * * * * ")
        '*/15 * * * *'
        >>> validate_cron("@EVERY 5m")
        '@every 5m'
    """
    if not isinstance(expr, str):
        raise InvalidInputError(
            f"schedule must be a string such as '*/15 * * * *', got {type(expr).__name__}",
            details={"schedule": repr(expr)},
        )
    normalised = " ".join(expr.split())
    if not normalised:
        raise _not_cron(expr, f"it is empty, expected 5 fields ({_FIELDS})")
    if normalised.startswith("@"):
        return _validate_alias(expr, normalised.lower())
    fields = normalised.split(" ")
    if len(fields) != 5:
        raise _not_cron(expr, f"expected 5 fields ({_FIELDS}), got {len(fields)}")
    if _HASHED_OR_RANDOM.search(normalised.lower()):
        raise _not_cron(
            expr, "hashed (H) and random (R) fields are not supported, use numbers or ranges"
        )
    try:
        croniter.expand(normalised, strict=True)
    except (CroniterError, TypeError) as exc:
        # croniter's own text (e.g. "[61 * * * *] is not acceptable, out of range").
        raise _not_cron(expr, f"{exc}; fields are {_FIELD_RANGES}") from exc
    return normalised


def _validate_alias(expr: str, lowered: str) -> str:
    if lowered in _ALIASES:
        return lowered
    if lowered.startswith("@every"):
        match = _EVERY.fullmatch(lowered)
        if match is None:
            raise _not_cron(
                expr,
                "an interval is '@every <n>s', '@every <n>m' or '@every <n>h' "
                "with a whole number n, e.g. '@every 30s'",
            )
        if int(match.group(1)) == 0:
            raise _not_cron(expr, "the interval must be at least 1, e.g. '@every 30s'")
        return f"@every {int(match.group(1))}{match.group(2)}"
    raise _not_cron(
        expr,
        f"unknown alias {expr.strip()!r}, use one of {', '.join(_ALIASES)} "
        "or an interval such as '@every 5m'",
    )


def _interval_s(schedule: str) -> int | None:
    match = _EVERY.fullmatch(schedule)
    if match is None:
        return None
    return int(match.group(1)) * _EVERY_UNITS[match.group(2)]


def next_fire(expr: str, after: float) -> float:
    """The first time the schedule fires strictly after ``after``.

    Args:
        expr: a schedule :func:`validate_cron` accepts.
        after: epoch seconds (UTC).

    Returns:
        Epoch seconds (UTC) of the next fire time, always greater than ``after``.

    Raises:
        InvalidInputError: ``expr`` is not a valid schedule.

    Example:
        >>> next_fire("*/15 * * * *", 1_700_000_000.0)  # 2023-11-14 22:13:20 UTC
        1700000100.0
        >>> next_fire("@every 2s", 10.0)
        12.0
    """
    schedule = validate_cron(expr)
    interval = _interval_s(schedule)
    if interval is not None:
        return float((math.floor(after / interval) + 1) * interval)
    cron = _ALIASES.get(schedule, schedule)
    start = datetime.fromtimestamp(after, tz=UTC)
    fire = float(croniter(cron, start).get_next(float))
    # croniter works in whole seconds; make "strictly after" hold for fractional input too.
    while fire <= after:
        fire = float(croniter(cron, datetime.fromtimestamp(fire, tz=UTC)).get_next(float))
    return fire


@dataclass(frozen=True)
class Job:
    """A named callable and the schedule it runs on.

    Args:
        name: unique within one scheduler; a job keeps its state across job-list
            refreshes by its name.
        schedule: a schedule :func:`validate_cron` accepts; stored normalised.
        run: called with no arguments on a worker thread; its return value is ignored.

    Raises:
        InvalidInputError: an empty name, a schedule that does not parse, or a
            ``run`` that is not callable.

    Example:
        >>> Job("cleanup", "@DAILY", lambda: None).schedule
        '@daily'
    """

    name: str
    schedule: str
    run: Callable[[], object]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError(
                f"job name must be a non-empty string, got {self.name!r}; "
                "name the job after what it does, e.g. 'drift-check'",
                details={"name": repr(self.name)},
            )
        try:
            schedule = validate_cron(self.schedule)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"job {self.name!r}: {exc.message}", details={"job": self.name, **exc.details}
            ) from exc
        if not callable(self.run):
            raise InvalidInputError(
                f"job {self.name!r}: run must be a callable taking no arguments, "
                f"got {type(self.run).__name__}",
                details={"job": self.name},
            )
        object.__setattr__(self, "schedule", schedule)


@dataclass
class JobState:
    """What a scheduler knows about one job (a snapshot, from :meth:`Scheduler.states`).

    Attributes:
        name: the job's name.
        next_at: epoch seconds of the next time it is due.
        running: a run is queued or executing now.
        runs: runs started.
        failures: runs that raised.
        skipped_overlaps: times it was due while the previous run was still going.
        last_started: epoch seconds the latest run started, ``None`` before the first.
        last_finished: epoch seconds the latest run finished, ``None`` before the first.
        last_error: ``"<ExceptionType>: <message>"`` of the latest finished run,
            ``""`` when it succeeded.
        last_duration_s: how long the latest finished run took, in seconds.
    """

    name: str
    next_at: float
    running: bool = False
    runs: int = 0
    failures: int = 0
    skipped_overlaps: int = 0
    last_started: float | None = None
    last_finished: float | None = None
    last_error: str = ""
    last_duration_s: float | None = None


@dataclass
class _Entry:
    """A job, its state, and whether it is still in the job list."""

    job: Job
    state: JobState
    active: bool = True


class Scheduler:
    """Runs jobs on their schedules on a thread pool, never two runs of one job at once.

    Args:
        jobs: the jobs, or a callable returning them. A callable is called again
            every ``refresh_s`` seconds: new jobs are added, vanished ones dropped,
            and a job whose schedule changed gets a new next time. When it raises,
            the error is logged and the previous list kept.
        max_workers: threads running jobs; due jobs beyond that wait in a queue.
        refresh_s: seconds between reads of a callable job source, and the longest
            :meth:`run_forever` sleeps.
        clock: returns epoch seconds; replace it in tests.
        run_on_start: run every new job at once instead of at its first fire time.

    Raises:
        InvalidInputError: ``max_workers`` below 1, ``refresh_s`` not positive, or a
            fixed job list with two jobs of the same name.

    Example:
        >>> ran = []
        >>> scheduler = Scheduler([Job("hello", "@every 1m", lambda: ran.append(1))])
        >>> scheduler.tick(now=0.0)
        []
        >>> scheduler.tick(now=60.0)
        ['hello']
        >>> scheduler.wait_idle(5.0), ran
        (True, [1])
        >>> scheduler.close()
        True
    """

    def __init__(
        self,
        jobs: Callable[[], Sequence[Job]] | Sequence[Job],
        *,
        max_workers: int = 4,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        run_on_start: bool = False,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidInputError(
                f"max_workers must be a whole number of at least 1, got {max_workers!r}",
                details={"max_workers": repr(max_workers)},
            )
        if (
            isinstance(refresh_s, bool)
            or not isinstance(refresh_s, int | float)
            or not (0 < refresh_s < math.inf)
        ):
            raise InvalidInputError(
                f"refresh_s must be a positive number of seconds, got {refresh_s!r}; "
                "30.0 is a sensible default",
                details={"refresh_s": repr(refresh_s)},
            )
        self._source: Callable[[], Sequence[Job]] | None
        self._fixed: list[Job]
        if callable(jobs):
            self._source = jobs
            self._fixed = []
        else:
            self._source = None
            self._fixed = _check_jobs(jobs)
        self._max_workers = max_workers
        self._refresh_s = float(refresh_s)
        self._clock = clock
        self._run_on_start = run_on_start
        self._entries: dict[str, _Entry] = {}
        self._last_refresh: float | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    # -- the job list -------------------------------------------------------------

    def _read_jobs(self) -> list[Job] | None:
        """The current job list, or ``None`` when the source failed (already logged)."""
        if self._source is None:
            return self._fixed
        try:
            return _check_jobs(self._source())
        except Exception:  # the job source is user code: keep the previous list
            logger.exception("reading the scheduler's job list failed; keeping the previous list")
            return None

    def _refresh(self, now: float) -> None:
        """Bring the entries in line with the job source (call without the lock held)."""
        jobs = self._read_jobs()
        self._last_refresh = now
        if jobs is None:
            return
        with self._lock:
            wanted = {job.name for job in jobs}
            for name, entry in list(self._entries.items()):
                if name in wanted or not entry.active:
                    continue
                logger.info("scheduled job %r removed", name)
                if entry.state.running:
                    entry.active = False  # dropped when its run finishes
                else:
                    del self._entries[name]
            for job in jobs:
                entry_or_none = self._entries.get(job.name)
                if entry_or_none is None or not entry_or_none.active:
                    next_at = now if self._run_on_start else next_fire(job.schedule, now)
                    if entry_or_none is None:
                        self._entries[job.name] = _Entry(job, JobState(job.name, next_at))
                    else:  # came back while its previous run is still going
                        entry_or_none.job, entry_or_none.active = job, True
                        entry_or_none.state.next_at = next_at
                    logger.info("scheduled job %r added (%s)", job.name, job.schedule)
                    continue
                if entry_or_none.job.schedule != job.schedule:
                    entry_or_none.state.next_at = next_fire(job.schedule, now)
                    logger.info("scheduled job %r now runs on %s", job.name, job.schedule)
                entry_or_none.job = job

    # -- running ------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[str]:
        """Start every job that is due, without waiting for them to finish.

        The job source is read again first when ``refresh_s`` has passed since the
        last read (always on the first tick). A due job that is still running is
        skipped and counted in ``skipped_overlaps``. Every due job's next time is
        moved past ``now``.

        Args:
            now: epoch seconds; the scheduler's clock when ``None``.

        Returns:
            The names of the jobs started, in the order they were due.
        """
        if now is None:
            now = self._clock()
        if (
            self._last_refresh is None
            or now - self._last_refresh >= self._refresh_s
            or now < self._last_refresh
        ):
            self._refresh(now)
        started: list[str] = []
        with self._lock:
            due = sorted(
                (e for e in self._entries.values() if e.active and e.state.next_at <= now),
                key=lambda e: (e.state.next_at, e.job.name),
            )
            for entry in due:
                state = entry.state
                state.next_at = next_fire(entry.job.schedule, now)
                if state.running:
                    state.skipped_overlaps += 1
                    logger.warning(
                        "scheduled job %r is still running; skipping this run", state.name
                    )
                    continue
                state.running = True
                state.runs += 1
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._max_workers, thread_name_prefix="shipyard-scheduler"
                    )
                future = self._executor.submit(self._execute, entry)
                future.add_done_callback(partial(self._on_cancelled, entry))
                started.append(state.name)
        return started

    def _execute(self, entry: _Entry) -> None:
        job, state = entry.job, entry.state
        began = time.perf_counter()
        started_at: float | None = None
        error = ""
        try:
            started_at = self._clock()
            with self._lock:
                state.last_started = started_at
            logger.debug("scheduled job %r started", job.name)
            job.run()
        except Exception as exc:  # a job is user code: log it, count it, keep going
            logger.exception("scheduled job %r failed", job.name)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            duration = time.perf_counter() - began
            with self._lock:
                state.running = False
                state.last_finished = None if started_at is None else started_at + duration
                state.last_duration_s = duration
                state.last_error = error
                if error:
                    state.failures += 1
                if not entry.active and self._entries.get(job.name) is entry:
                    del self._entries[job.name]
                self._changed.notify_all()

    def _on_cancelled(self, entry: _Entry, future: Future[None]) -> None:
        """Undo the bookkeeping of a run cancelled before it started (by :meth:`close`)."""
        if not future.cancelled():
            return
        with self._lock:
            entry.state.running = False
            entry.state.runs -= 1
            if not entry.active and self._entries.get(entry.job.name) is entry:
                del self._entries[entry.job.name]
            self._changed.notify_all()

    def run_forever(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, sleeping until the next job is due.

        The job source is read again every ``refresh_s`` seconds. Once ``stop`` is
        set, waits up to 30 seconds for running jobs, then returns (runs still
        going carry on in their threads).

        Args:
            stop: set it (from another thread or a signal handler) to return.
        """
        logger.info("scheduler started")
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(self._sleep_s())
        finally:
            if not self.close(timeout=_STOP_TIMEOUT_S):
                logger.warning(
                    "scheduler stopped with jobs still running after %.0f s: %s",
                    _STOP_TIMEOUT_S,
                    ", ".join(s.name for s in self.states() if s.running),
                )
            logger.info("scheduler stopped")

    def _sleep_s(self) -> float:
        """Seconds until the next job is due or the job list is to be read again."""
        now = self._clock()
        wake = (self._last_refresh if self._last_refresh is not None else now) + self._refresh_s
        with self._lock:
            for entry in self._entries.values():
                if entry.active:
                    wake = min(wake, entry.state.next_at)
        return min(max(wake - now, 0.0), self._refresh_s)

    # -- looking on ---------------------------------------------------------------

    def states(self) -> list[JobState]:
        """A snapshot of every scheduled job's state, sorted by name."""
        with self._lock:
            return [
                replace(entry.state)
                for name, entry in sorted(self._entries.items())
                if entry.active
            ]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is running.

        Args:
            timeout: the longest wait, in seconds.

        Returns:
            ``True`` when every run has finished, ``False`` when ``timeout`` passed first.
        """
        with self._changed:
            return self._changed.wait_for(
                lambda: not any(e.state.running for e in self._entries.values()), timeout
            )

    def close(self, *, timeout: float = _STOP_TIMEOUT_S) -> bool:
        """Wait up to ``timeout`` seconds for running jobs, then release the worker threads.

        Jobs queued but not yet started are cancelled. The scheduler can tick again
        afterwards (a new thread pool is made when needed).

        Returns:
            ``True`` when no job was left running.
        """
        idle = self.wait_idle(timeout)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        return idle


def _check_jobs(jobs: object) -> list[Job]:
    """The jobs as a list, refusing things that are not jobs and repeated names."""
    if isinstance(jobs, str | bytes) or not isinstance(jobs, Sequence):
        raise InvalidInputError(
            f"the scheduler's jobs must be a list of Job, got {type(jobs).__name__}",
        )
    seen: set[str] = set()
    for job in jobs:
        if not isinstance(job, Job):
            raise InvalidInputError(
                f"the scheduler's jobs must be Job objects, got {type(job).__name__}; "
                "build each with Job(name, schedule, run)",
            )
        if job.name in seen:
            raise InvalidInputError(
                f"two scheduled jobs are named {job.name!r}; give each job a unique name",
                details={"job": job.name},
            )
        seen.add(job.name)
    return list(jobs)
