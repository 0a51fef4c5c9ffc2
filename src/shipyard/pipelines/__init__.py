"""Pipelines: for now the cron scheduler that runs jobs (and later pipelines) on schedules."""

from shipyard.pipelines.scheduler import Job, JobState, Scheduler, next_fire, validate_cron

__all__ = ["Job", "JobState", "Scheduler", "next_fire", "validate_cron"]
