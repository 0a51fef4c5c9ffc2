"""The jobs a scheduler runs: every monitor that has a cron schedule (pipelines come later)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shipyard.core.errors import InvalidStateError
from shipyard.monitoring.monitor import MonitorContext
from shipyard.pipelines.loop import LoopResult, run_monitor
from shipyard.pipelines.scheduler import Job

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
