"""The cron scheduler: schedules, due jobs, failures, overlaps, job-list refresh, run_forever."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

import shipyard.pipelines
from shipyard.core.errors import InvalidInputError
from shipyard.pipelines import Job, JobState, Scheduler, next_fire, validate_cron

# 2024-01-01 00:00:00 UTC: a whole hour, day and quarter hour.
T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()

MakeScheduler = Callable[..., Scheduler]


@pytest.fixture
def make_scheduler() -> Iterator[MakeScheduler]:
    """Build schedulers on a fake clock (``T0`` unless given); release their threads after."""
    made: list[Scheduler] = []

    def make(jobs: Any, **options: Any) -> Scheduler:
        options.setdefault("clock", lambda: T0)
        scheduler = Scheduler(jobs, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close(timeout=5.0)


def state(scheduler: Scheduler, name: str) -> JobState:
    (found,) = [s for s in scheduler.states() if s.name == name]
    return found


def noop() -> None:
    return None


# -- the public namespace -------------------------------------------------------------


def test_package_exports_exactly_the_intended_names() -> None:
    assert sorted(shipyard.pipelines.__all__) == [
        "Job",
        "JobState",
        "PipelineContext",
        "PipelineResult",
        "PipelineSpec",
        "Scheduler",
        "StepResult",
        "StepSpec",
        "load_spec",
        "next_fire",
        "parse_spec",
        "plan",
        "run_pipeline",
        "validate_cron",
    ]
    for name in shipyard.pipelines.__all__:
        assert getattr(shipyard.pipelines, name) is not None


# -- validate_cron ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("*/15 * * * *", "*/15 * * * *"),
        ("  0   3 * *  mon-fri ", "0 3 * * mon-fri"),
        ("0 0 1W * *", "0 0 1W * *"),
        ("@hourly", "@hourly"),
        ("@DAILY", "@daily"),
        ("@weekly", "@weekly"),
        ("@monthly", "@monthly"),
        ("@every 30s", "@every 30s"),
        ("@every   5m", "@every 5m"),
        ("@Every 1H", "@every 1h"),
        ("@every 05s", "@every 5s"),
    ],
)
def test_validate_cron_normalises(expr: str, expected: str) -> None:
    assert validate_cron(expr) == expected


def test_validate_cron_names_the_field_count_and_shows_an_example() -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_cron("*/15 * * *")
    assert str(caught.value) == (
        "schedule '*/15 * * *' is not a cron expression: expected 5 fields "
        "(minute hour day month weekday), got 4; example: '*/15 * * * *'"
    )
    assert caught.value.details == {"schedule": "*/15 * * *"}
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("* * * * * *", "expected 5 fields (minute hour day month weekday), got 6"),
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("61 * * * *", "out of range"),
        ("* 24 * * *", "hour 0-23"),
        ("0 0 31 2 *", "can never occur"),
        ("*/0 * * * *", "step '0'"),
        ("a b c d e", "not acceptable"),
        ("H * * * *", "hashed (H) and random (R) fields are not supported"),
        ("R * * * *", "hashed (H) and random (R) fields are not supported"),
        ("@often", "unknown alias '@often', use one of @hourly, @daily"),
        ("@every", "an interval is '@every <n>s'"),
        ("@every 5", "an interval is '@every <n>s'"),
        ("@every 1.5m", "an interval is '@every <n>s'"),
        ("@every 2d", "an interval is '@every <n>s'"),
        ("@every 0s", "the interval must be at least 1"),
    ],
)
def test_validate_cron_refuses_with_a_clear_message(expr: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_cron(expr)
    message = str(caught.value)
    assert message.startswith(f"schedule {expr!r} is not a cron expression: ")
    assert fragment in message
    assert message.endswith("example: '*/15 * * * *'")


def test_validate_cron_refuses_a_non_string() -> None:
    with pytest.raises(InvalidInputError, match="schedule must be a string"):
        validate_cron(15)  # type: ignore[arg-type]


def test_month_and_weekday_names_are_accepted() -> None:
    assert validate_cron("0 0 * jan,jul sun") == "0 0 * jan,jul sun"
    assert validate_cron("0 0 * * THU") == "0 0 * * THU"


# -- next_fire --------------------------------------------------------------------------


def test_quarter_hours_fire_on_the_quarter() -> None:
    assert next_fire("*/15 * * * *", T0 - 1) == T0
    assert next_fire("*/15 * * * *", T0) == T0 + 900  # strictly after
    assert next_fire("*/15 * * * *", T0 + 1) == T0 + 900
    assert next_fire("*/15 * * * *", T0 + 899.5) == T0 + 900
    assert next_fire("*/15 * * * *", T0 + 900) == T0 + 1800
    assert next_fire("*/15 * * * *", T0 + 0.25) == T0 + 900


def test_aliases_fire_in_utc() -> None:
    assert next_fire("@hourly", T0 + 1) == T0 + 3600
    assert next_fire("@daily", T0 + 1) == T0 + 86400
    assert next_fire("@monthly", T0 + 1) == datetime(2024, 2, 1, tzinfo=UTC).timestamp()
    assert next_fire("@weekly", T0) == datetime(2024, 1, 7, tzinfo=UTC).timestamp()  # Sunday
    assert next_fire("30 2 * * *", T0) == T0 + 2 * 3600 + 30 * 60


def test_intervals_fire_on_multiples_since_the_epoch() -> None:
    assert next_fire("@every 2s", 10.0) == 12.0
    assert next_fire("@every 2s", 11.0) == 12.0
    assert next_fire("@every 2s", 11.999) == 12.0
    assert next_fire("@every 5m", T0 + 1) == T0 + 300
    assert next_fire("@every 1h", T0) == T0 + 3600
    assert next_fire("@every 15m", T0 + 1) == next_fire("*/15 * * * *", T0 + 1)


def test_next_fire_refuses_a_bad_schedule() -> None:
    with pytest.raises(InvalidInputError, match="expected 5 fields"):
        next_fire("* *", T0)


# -- Job --------------------------------------------------------------------------------


def test_job_stores_its_schedule_normalised() -> None:
    assert Job("report", "  @DAILY ", noop).schedule == "@daily"


def test_job_names_itself_in_schedule_errors() -> None:
    with pytest.raises(InvalidInputError) as caught:
        Job("report", "*/15 * * *", noop)
    assert str(caught.value).startswith(
        "job 'report': schedule '*/15 * * *' is not a cron expression: expected 5 fields"
    )
    assert caught.value.details["job"] == "report"


@pytest.mark.parametrize("name", ["", "   "])
def test_job_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidInputError, match="job name must be a non-empty string"):
        Job(name, "@hourly", noop)


def test_job_needs_a_callable() -> None:
    with pytest.raises(InvalidInputError, match="run must be a callable"):
        Job("report", "@hourly", "not callable")  # type: ignore[arg-type]


# -- Scheduler: construction ------------------------------------------------------------


def test_scheduler_refuses_duplicate_names() -> None:
    with pytest.raises(InvalidInputError, match="two scheduled jobs are named 'a'"):
        Scheduler([Job("a", "@hourly", noop), Job("a", "@daily", noop)])


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"max_workers": 0}, "max_workers must be a whole number of at least 1"),
        ({"max_workers": 1.5}, "max_workers must be a whole number of at least 1"),
        ({"refresh_s": 0}, "refresh_s must be a positive number"),
        ({"refresh_s": float("inf")}, "refresh_s must be a positive number"),
    ],
)
def test_scheduler_refuses_bad_options(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        Scheduler([], **options)


def test_scheduler_refuses_things_that_are_not_jobs() -> None:
    with pytest.raises(InvalidInputError, match="must be Job objects, got tuple"):
        Scheduler([("a", "@hourly", noop)])  # type: ignore[list-item]


# -- Scheduler: ticking -----------------------------------------------------------------


def test_due_jobs_run_and_others_do_not(make_scheduler: MakeScheduler) -> None:
    ran: list[str] = []
    scheduler = make_scheduler(
        [
            Job("quarter", "*/15 * * * *", lambda: ran.append("quarter")),
            Job("hourly", "@hourly", lambda: ran.append("hourly")),
        ]
    )
    assert scheduler.tick(now=T0 + 60) == []  # first sight: scheduled from now
    assert [(s.name, s.next_at) for s in scheduler.states()] == [
        ("hourly", T0 + 3600),
        ("quarter", T0 + 900),
    ]
    assert scheduler.tick(now=T0 + 899) == []
    assert scheduler.tick(now=T0 + 900) == ["quarter"]
    assert scheduler.wait_idle(5.0)
    assert ran == ["quarter"]
    quarter = state(scheduler, "quarter")
    assert quarter.last_duration_s is not None and quarter.last_duration_s >= 0
    assert (quarter.runs, quarter.failures, quarter.running) == (1, 0, False)
    assert quarter.next_at == T0 + 1800
    assert quarter.last_started == T0  # the fake clock
    assert quarter.last_finished == pytest.approx(T0 + quarter.last_duration_s)
    assert quarter.last_error == ""
    hourly = state(scheduler, "hourly")
    assert (hourly.runs, hourly.last_started, hourly.last_duration_s) == (0, None, None)

    assert scheduler.tick(now=T0 + 3600) == ["quarter", "hourly"]  # by when they were due
    assert scheduler.wait_idle(5.0)
    assert sorted(ran) == ["hourly", "quarter", "quarter"]


def test_quarter_hour_job_fires_at_00_15_30_45(make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler([Job("quarter", "*/15 * * * *", noop)])
    fired: list[float] = []
    for minute in range(-1, 61):  # a tick every minute from 23:59 to 01:00
        now = T0 + 60 * minute
        if scheduler.tick(now=now):
            fired.append(now)
        assert scheduler.wait_idle(5.0)
    assert [datetime.fromtimestamp(t, tz=UTC).strftime("%H:%M") for t in fired] == [
        "00:00",
        "00:15",
        "00:30",
        "00:45",
        "01:00",
    ]
    assert state(scheduler, "quarter").runs == 5


def test_late_ticks_run_once_and_do_not_catch_up(make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler([Job("quarter", "*/15 * * * *", noop)])
    scheduler.tick(now=T0 + 1)
    assert scheduler.tick(now=T0 + 3 * 3600 + 5) == ["quarter"]  # missed 11 quarters
    assert scheduler.wait_idle(5.0)
    assert state(scheduler, "quarter").next_at == T0 + 3 * 3600 + 900
    assert scheduler.tick(now=T0 + 3 * 3600 + 10) == []


def test_every_two_seconds(make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler([Job("ping", "@every 2s", noop)])
    fired: list[float] = []
    for half in range(13):  # a tick every 0.5 s for 6 s
        now = T0 + 0.5 * half
        if scheduler.tick(now=now):
            fired.append(now - T0)
        assert scheduler.wait_idle(5.0)
    assert fired == [2.0, 4.0, 6.0]


def test_run_on_start_runs_new_jobs_at_once(make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler([Job("report", "@daily", noop)], run_on_start=True)
    assert scheduler.tick(now=T0 + 7) == ["report"]
    assert scheduler.wait_idle(5.0)
    assert state(scheduler, "report").next_at == T0 + 86400
    assert scheduler.tick(now=T0 + 8) == []


def test_tick_without_now_reads_the_clock(make_scheduler: MakeScheduler) -> None:
    now = [T0 + 1]
    scheduler = make_scheduler([Job("minute", "* * * * *", noop)], clock=lambda: now[0])
    assert scheduler.tick() == []
    now[0] = T0 + 60
    assert scheduler.tick() == ["minute"]
    assert scheduler.wait_idle(5.0)
    assert state(scheduler, "minute").last_started == T0 + 60


def test_a_failing_clock_is_a_failed_run_not_a_stuck_job(make_scheduler: MakeScheduler) -> None:
    ticks = iter([T0 + 1, T0 + 60])  # the worker's read of the clock finds it exhausted
    scheduler = make_scheduler([Job("minute", "* * * * *", noop)], clock=lambda: next(ticks))
    scheduler.tick()
    assert scheduler.tick() == ["minute"]
    assert scheduler.wait_idle(5.0)
    minute = state(scheduler, "minute")
    assert (minute.running, minute.failures, minute.last_error) == (False, 1, "StopIteration: ")


# -- failures ---------------------------------------------------------------------------


def test_a_failing_job_is_recorded_and_others_still_run(
    make_scheduler: MakeScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    fail = threading.Event()
    fail.set()

    def flaky() -> None:
        ran.append("flaky")
        if fail.is_set():
            raise ValueError("boom")

    scheduler = make_scheduler(
        [Job("flaky", "* * * * *", flaky), Job("steady", "* * * * *", lambda: ran.append("ok"))]
    )
    scheduler.tick(now=T0 + 1)
    with caplog.at_level(logging.ERROR, logger="shipyard.pipelines.scheduler"):
        assert scheduler.tick(now=T0 + 60) == ["flaky", "steady"]
        assert scheduler.wait_idle(5.0)
    assert sorted(ran) == ["flaky", "ok"]
    flaky_state = state(scheduler, "flaky")
    assert (flaky_state.runs, flaky_state.failures) == (1, 1)
    assert flaky_state.last_error == "ValueError: boom"
    assert flaky_state.running is False
    assert flaky_state.last_finished == pytest.approx(T0, abs=5.0)
    steady = state(scheduler, "steady")
    assert (steady.runs, steady.failures, steady.last_error) == (1, 0, "")
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "'flaky' failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError

    # it runs again at its next time, and fails again
    assert scheduler.tick(now=T0 + 120) == ["flaky", "steady"]
    assert scheduler.wait_idle(5.0)
    assert (state(scheduler, "flaky").runs, state(scheduler, "flaky").failures) == (2, 2)

    # a later success clears last_error but keeps the count
    fail.clear()
    assert scheduler.tick(now=T0 + 180) == ["flaky", "steady"]
    assert scheduler.wait_idle(5.0)
    flaky_state = state(scheduler, "flaky")
    assert (flaky_state.runs, flaky_state.failures, flaky_state.last_error) == (3, 2, "")
    assert state(scheduler, "steady").runs == 3


# -- overlaps ---------------------------------------------------------------------------


class Blocking:
    """A job that waits for ``release`` and records how many of it ran at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.calls = 0

    def __call__(self) -> None:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.max_active = max(self.max_active, self.active)
        self.entered.set()
        try:
            self.release.wait(10.0)
        finally:
            with self._lock:
                self.active -= 1


def test_a_job_still_running_is_skipped_not_run_twice(
    make_scheduler: MakeScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    job = Blocking()
    scheduler = make_scheduler([Job("slow", "* * * * *", job)], max_workers=4)
    scheduler.tick(now=T0 + 1)
    assert scheduler.tick(now=T0 + 60) == ["slow"]
    assert job.entered.wait(5.0)
    with caplog.at_level(logging.WARNING, logger="shipyard.pipelines.scheduler"):
        assert scheduler.tick(now=T0 + 120) == []  # due again while running
    slow = state(scheduler, "slow")
    assert (slow.running, slow.runs, slow.skipped_overlaps) == (True, 1, 1)
    assert slow.next_at == T0 + 180  # moved on all the same
    assert "still running" in caplog.text
    assert scheduler.wait_idle(0.05) is False

    job.release.set()
    assert scheduler.wait_idle(5.0)
    assert job.calls == 1 and job.max_active == 1
    assert scheduler.tick(now=T0 + 180) == ["slow"]  # free again
    assert scheduler.wait_idle(5.0)
    slow = state(scheduler, "slow")
    assert (slow.runs, slow.skipped_overlaps, slow.running) == (2, 1, False)
    assert job.calls == 2 and job.max_active == 1


def test_close_cancels_runs_that_never_started(make_scheduler: MakeScheduler) -> None:
    first, second = Blocking(), Blocking()
    scheduler = make_scheduler(
        [Job("a", "* * * * *", first), Job("b", "* * * * *", second)], max_workers=1
    )
    scheduler.tick(now=T0 + 1)
    assert scheduler.tick(now=T0 + 60) == ["a", "b"]  # b waits for the only worker
    assert first.entered.wait(5.0)
    assert scheduler.close(timeout=0.05) is False
    b = state(scheduler, "b")
    assert (b.running, b.runs) == (False, 0)
    first.release.set()
    assert scheduler.wait_idle(5.0)
    assert second.calls == 0
    # a closed scheduler can tick again
    assert scheduler.tick(now=T0 + 120) == ["a", "b"]
    second.release.set()
    assert scheduler.wait_idle(5.0)
    assert second.calls == 1


# -- refreshing the job list ------------------------------------------------------------


def test_refresh_adds_and_removes_jobs(make_scheduler: MakeScheduler) -> None:
    ran: list[str] = []
    current: list[Job] = [Job("a", "* * * * *", lambda: ran.append("a"))]
    reads: list[float] = []

    def source() -> Sequence[Job]:
        reads.append(1)
        return list(current)

    scheduler = make_scheduler(source, refresh_s=30.0)
    scheduler.tick(now=T0 + 1)
    assert [s.name for s in scheduler.states()] == ["a"]

    current[:] = [Job("b", "* * * * *", lambda: ran.append("b"))]
    assert scheduler.tick(now=T0 + 10) == []  # refresh_s not up: still the old list
    assert [s.name for s in scheduler.states()] == ["a"]
    assert len(reads) == 1

    assert scheduler.tick(now=T0 + 60) == []  # a dropped; b is new, scheduled from now
    assert [(s.name, s.next_at) for s in scheduler.states()] == [("b", T0 + 120)]
    assert scheduler.tick(now=T0 + 120) == ["b"]
    assert scheduler.wait_idle(5.0)
    assert ran == ["b"]
    assert len(reads) == 3


def test_a_failing_source_keeps_the_previous_list(
    make_scheduler: MakeScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    broken = threading.Event()

    def source() -> Sequence[Job]:
        if broken.is_set():
            raise ConnectionError("store down")
        return [Job("a", "* * * * *", noop)]

    scheduler = make_scheduler(source, refresh_s=1.0)
    scheduler.tick(now=T0 + 1)
    broken.set()
    with caplog.at_level(logging.ERROR, logger="shipyard.pipelines.scheduler"):
        assert scheduler.tick(now=T0 + 60) == ["a"]
    assert scheduler.wait_idle(5.0)
    assert "keeping the previous list" in caplog.text
    assert any(r.exc_info and r.exc_info[0] is ConnectionError for r in caplog.records)
    assert state(scheduler, "a").runs == 1


def test_a_source_returning_duplicates_keeps_the_previous_list(
    make_scheduler: MakeScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    current = [Job("a", "* * * * *", noop)]
    scheduler = make_scheduler(lambda: list(current), refresh_s=1.0)
    scheduler.tick(now=T0 + 1)
    current[:] = [Job("b", "@hourly", noop), Job("b", "@daily", noop)]
    with caplog.at_level(logging.ERROR, logger="shipyard.pipelines.scheduler"):
        scheduler.tick(now=T0 + 10)
    assert [s.name for s in scheduler.states()] == ["a"]
    assert "two scheduled jobs are named 'b'" in caplog.text


def test_a_changed_schedule_recomputes_next_at(make_scheduler: MakeScheduler) -> None:
    ran: list[str] = []
    current = [Job("a", "@hourly", lambda: ran.append("old"))]
    scheduler = make_scheduler(lambda: list(current), refresh_s=1.0)
    scheduler.tick(now=T0 + 1)
    assert state(scheduler, "a").next_at == T0 + 3600

    current[:] = [Job("a", "*/5 * * * *", lambda: ran.append("new"))]
    scheduler.tick(now=T0 + 10)
    assert state(scheduler, "a").next_at == T0 + 300
    assert scheduler.tick(now=T0 + 300) == ["a"]
    assert scheduler.wait_idle(5.0)
    assert ran == ["new"]  # the new callable too
    assert state(scheduler, "a").runs == 1  # the state is kept across the change


def test_a_job_removed_and_readded_while_running_does_not_overlap(
    make_scheduler: MakeScheduler,
) -> None:
    job = Blocking()
    current = [Job("slow", "* * * * *", job)]
    scheduler = make_scheduler(lambda: list(current), refresh_s=1.0)
    scheduler.tick(now=T0 + 1)
    assert scheduler.tick(now=T0 + 60) == ["slow"]
    assert job.entered.wait(5.0)

    removed = current[:]
    current[:] = []
    scheduler.tick(now=T0 + 70)
    assert scheduler.states() == []
    current[:] = removed
    scheduler.tick(now=T0 + 80)  # back, while its old run is still going
    assert scheduler.tick(now=T0 + 120) == []
    assert state(scheduler, "slow").skipped_overlaps == 1

    job.release.set()
    assert scheduler.wait_idle(5.0)
    assert job.max_active == 1
    current[:] = []
    scheduler.tick(now=T0 + 130)
    assert scheduler.states() == []


# -- run_forever --------------------------------------------------------------------------


def test_run_forever_runs_on_schedule_and_stops_promptly() -> None:
    calls: list[float] = []
    scheduler = Scheduler([Job("ping", "@every 1s", lambda: calls.append(time.time()))])
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 3.5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(calls) >= 2, calls
    finally:
        stop.set()
        began = time.monotonic()
        thread.join(5.0)
    assert not thread.is_alive()
    assert time.monotonic() - began < 1.0
    assert calls[1] - calls[0] == pytest.approx(1.0, abs=0.5)
    ping = state(scheduler, "ping")
    assert ping.runs >= 2 and ping.failures == 0 and not ping.running


def test_run_forever_waits_for_a_running_job_when_stopped() -> None:
    job = Blocking()
    scheduler = Scheduler([Job("slow", "@daily", job)], run_on_start=True)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(stop,), daemon=True)
    thread.start()
    assert job.entered.wait(5.0)
    stop.set()
    thread.join(0.2)
    assert thread.is_alive()  # waiting for the running job
    job.release.set()
    thread.join(5.0)
    assert not thread.is_alive()
    assert state(scheduler, "slow").runs == 1
