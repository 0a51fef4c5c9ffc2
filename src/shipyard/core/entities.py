"""Frozen dataclasses that cross package boundaries: experiments, runs, metrics, artifacts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RunStatus(enum.StrEnum):
    """Lifecycle of a run. ``RUNNING`` is the only non-terminal state."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class LifecycleStage(enum.StrEnum):
    """Soft deletion: ``deleted`` things can be restored until ``shipyard gc`` purges them."""

    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    lifecycle_stage: LifecycleStage
    created_at: int
    updated_at: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric series. ``timestamp`` is milliseconds since the epoch."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file stored for a run: its path inside the run and the object holding its bytes."""

    path: str
    digest: str
    size: int
    created_at: int


@dataclass(frozen=True, slots=True)
class Run:
    """A run as read back from the store: its attributes plus params, latest metrics and tags."""

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    lifecycle_stage: LifecycleStage
    parent_run_id: str | None = None
    description: str = ""
    user: str = ""
    entry_point: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_diff_hash: str | None = None
    python_version: str = ""
    environment_digest: str | None = None
    pid: int | None = None
    host: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by ``--json`` output and the REST API)."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": str(self.status),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "lifecycle_stage": str(self.lifecycle_stage),
            "parent_run_id": self.parent_run_id,
            "description": self.description,
            "user": self.user,
            "entry_point": self.entry_point,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "git_diff_hash": self.git_diff_hash,
            "python_version": self.python_version,
            "environment_digest": self.environment_digest,
            "pid": self.pid,
            "host": self.host,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a named dataset.

    ``digest`` is the content hash of the data (rows for a table, the file manifest for a
    folder): adding identical content again gives back this version. ``object_digest``
    names the stored bytes (a Parquet file or a JSON manifest) in the object store.
    """

    name: str
    version: int
    digest: str
    kind: str  # "table" | "files"
    object_digest: str
    source: str
    num_rows: int | None
    num_columns: int | None
    num_files: int | None
    size_bytes: int
    created_at: int
    description: str = ""
    schema: Mapping[str, Any] | None = None
    profile_digest: str | None = None
    created_by_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()  # "name@version" of the versions it was made from

    @property
    def ref(self) -> str:
        """``name@version``, the way every command and function names this version."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "kind": self.kind,
            "object_digest": self.object_digest,
            "source": self.source,
            "num_rows": self.num_rows,
            "num_columns": self.num_columns,
            "num_files": self.num_files,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "description": self.description,
            "profile_digest": self.profile_digest,
            "created_by_run_id": self.created_by_run_id,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
            "parents": list(self.parents),
        }


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model in the registry: its versions, aliases and promotion policy."""

    name: str
    description: str
    created_at: int
    updated_at: int
    created_by: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)  # alias -> version
    latest_version: int | None = None
    has_policy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "tags": dict(self.tags),
            "aliases": dict(self.aliases),
            "latest_version": self.latest_version,
            "has_policy": self.has_policy,
        }


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version of a registered model: a model folder logged by a run.

    ``meta_digest`` is the hash of the folder's metadata file, which lists the hash of
    every other file: loading checks all of them before deserialising anything.
    """

    name: str
    version: int
    run_id: str | None
    artifact_path: str
    flavor: str
    meta_digest: str
    created_at: int
    created_by: str = ""
    status: str = "active"  # active | archived
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    signature: Mapping[str, Any] | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "flavor": self.flavor,
            "meta_digest": self.meta_digest,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "status": self.status,
            "description": self.description,
            "intended_use": self.intended_use,
            "limitations": self.limitations,
            "signature": dict(self.signature) if self.signature is not None else None,
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the hash-chained audit log."""

    seq: int
    at: int
    actor: str
    action: str
    entity_type: str
    entity: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity": self.entity,
            "before": dict(self.before),
            "after": dict(self.after),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor: one model alias watched against a reference dataset version.

    ``spec`` holds what :func:`shipyard.monitoring.MonitorSpec` parses: the target and
    prediction columns, per-column methods, alert rules and the retrain action.
    """

    name: str
    model: str
    alias: str
    reference: str  # "dataset@version"
    window_s: int
    schedule: str | None
    spec: Mapping[str, Any]
    created_at: int
    created_by: str
    updated_at: int
    last_run_at: int | None = None
    last_status: str = ""
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class MonitorWindow:
    """One evaluated time window of a monitor (``summary``: the full results as JSON)."""

    monitor: str
    start_ms: int
    end_ms: int
    computed_at: int
    n_rows: int
    n_labelled: int
    status: str  # ok | not_enough_data | no_rows
    summary: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert a monitor's rule opened; open until its condition clears."""

    alert_id: int
    monitor: str
    model: str
    rule: str
    column: str
    fingerprint: str
    severity: str
    status: str  # open | acknowledged | resolved
    message: str
    value: float | None
    opened_at: int
    last_seen_at: int
    resolved_at: int | None
    count: int
    window_start_ms: int | None
    action: str
    action_status: str  # "" | pending | dry_run | promoted | refused | failed
    action_details: Mapping[str, Any] = field(default_factory=dict)
