"""The jobs a scheduler runs: every monitor with a cron schedule, and every scheduled
pipeline (on its cron, and when a dataset it is triggered by gets a new version)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from shipyard.core.errors import InvalidInputError, InvalidStateError, NotFoundError
from shipyard.monitoring.monitor import MonitorContext
from shipyard.pipelines.loop import LoopResult, run_monitor
from shipyard.pipelines.runner import PipelineContext, PipelineResult, run_pipeline
from shipyard.pipelines.scheduler import Job, validate_cron
from shipyard.pipelines.spec import PipelineSpec, load_spec
from shipyard.store.pipeline_store import PipelineSchedule

logger = logging.getLogger(__name__)


def monitor_jobs(ctx: MonitorContext) -> list[Job]:
    """One job per scheduled monitor, named ``monitor:<name>``, re-read on every refresh."""
    return [
        Job(name=f"monitor:{m.name}", schedule=str(m.schedule), run=_runner(ctx, m.name))
        for m in ctx.store.list_monitors()
        if m.schedule
    ]


def _runner(ctx: MonitorContext, name: str) -> Callable[[], LoopResult | None]:
    def run() -> LoopResult | None:
        try:
            result = run_monitor(ctx, name)
        except InvalidStateError as exc:  # another scheduler holds the lease: not a failure
            logger.info("monitor %s skipped: %s", name, exc.message)
            return None
        window = result.run.evaluated_window
        logger.info(
            "monitor %s: %d window(s), %s, %d alert(s) opened, %d resolved, %d action(s)",
            name, len(result.run.windows), window.window.status if window else "no data",
            len(result.run.alerts.opened), len(result.run.alerts.resolved), len(result.actions),
        )  # fmt: skip
        return result

    return run


# -- pipelines ------------------------------------------------------------------------------

DATASET_POLL = "@every 30s"
"""How often a pipeline triggered by datasets looks for their new versions."""


def _newest_versions(ctx: PipelineContext, datasets: Sequence[str]) -> dict[str, int]:
    newest: dict[str, int] = {}
    for name in datasets:
        try:
            newest[name] = ctx.datasets.resolve(f"{name}@latest").version
        except NotFoundError:
            newest[name] = 0
    return newest


def add_pipeline_schedule(
    ctx: PipelineContext,
    spec: PipelineSpec,
    *,
    name: str,
    cron: str | None,
    datasets: Sequence[str] = (),
    replace: bool = False,
) -> PipelineSchedule:
    """Schedule ``spec`` (its file) on ``cron`` and/or on new versions of ``datasets``
    (default: the spec's ``on: dataset`` triggers)."""
    if name != spec.name:
        raise InvalidInputError(
            f"the spec at {spec.path} is pipeline {spec.name!r}, not {name!r}; pass --file"
        )
    triggers = tuple(datasets) or spec.triggers
    if cron is None and not triggers:
        raise InvalidInputError(
            "say when to run: --cron '0 3 * * *' and/or --on-dataset NAME (or `on: dataset:` "
            "in the spec)"
        )
    if cron is not None:
        cron = validate_cron(cron)
    return ctx.cache.add_schedule(
        name, spec_path=str(Path(spec.path or "shipyard.yaml").resolve()), cron=cron,
        datasets=triggers, seen=_newest_versions(ctx, triggers), replace=replace,
    )  # fmt: skip


def pipeline_jobs(ctx: PipelineContext) -> list[Job]:
    """One job per scheduled pipeline: on its cron, and a dataset poll for its triggers."""
    jobs = []
    for s in ctx.cache.list_schedules():
        if s.cron:
            jobs.append(Job(name=f"pipeline:{s.name}", schedule=s.cron,
                            run=_pipeline_runner(ctx, s.name, check_datasets=False)))  # fmt: skip
        if s.datasets:
            jobs.append(Job(name=f"pipeline:{s.name}:datasets", schedule=DATASET_POLL,
                            run=_pipeline_runner(ctx, s.name, check_datasets=True)))  # fmt: skip
    return jobs


def _pipeline_runner(
    ctx: PipelineContext, name: str, *, check_datasets: bool
) -> Callable[[], PipelineResult | None]:
    def run() -> PipelineResult | None:
        schedule = ctx.cache.get_schedule(name)
        newest = _newest_versions(ctx, schedule.datasets)
        if check_datasets:
            changed = [d for d, v in newest.items() if v > schedule.seen.get(d, 0)]
            if not changed:
                return None
            logger.info("pipeline %s: new version(s) of %s", name, ", ".join(changed))
        spec = load_spec(schedule.spec_path)
        result = run_pipeline(spec, ctx, progress=lambda m: logger.info("%s", m))
        ctx.cache.mark_run(name, status=result.status, seen=newest)
        logger.info("pipeline %s %s: %s", name, result.status,
                    ", ".join(f"{s.name} {s.status}" for s in result.steps))  # fmt: skip
        return result

    return run
