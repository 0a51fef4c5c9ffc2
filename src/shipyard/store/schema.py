"""The metadata schema (SQLAlchemy Core tables). Alembic migrations in ``migrations/`` create it.

Metric points are stored as packed chunks (one row per flushed batch and key,
three little-endian arrays: int64 steps, int64 millisecond timestamps, float64
values) rather than one row per point: a flush of 200,000 points writes a
handful of rows. ``latest_metrics`` keeps the newest point per run and key,
which is what search, ordering and comparison read.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shipyard.core.validation import KEY_MAX, NAME_MAX

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(NAME_MAX), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("deleted_time", BigInteger, nullable=True),
    Column("parent_run_id", String(32), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("user", String(NAME_MAX), nullable=False, default=""),
    Column("entry_point", Text, nullable=False, default=""),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("git_diff_hash", String(64), nullable=True),
    Column("python_version", String(32), nullable=False, default=""),
    Column("environment_digest", String(64), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(NAME_MAX), nullable=False, default=""),
    Column("heartbeat", BigInteger, nullable=True),
    Index("ix_runs_experiment_start", "experiment_id", "lifecycle_stage", "start_time"),
    Index("ix_runs_status", "status"),
)

params = Table(
    "params",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("value", Text, nullable=False),
    Column("num_value", Float, nullable=True),
    Index("ix_params_key_value", "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("value", Text, nullable=False),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    # NaN is kept as value NULL with is_nan true: SQLite cannot store a NaN REAL.
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("chunk_id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False),
    Column("key", String(KEY_MAX), nullable=False),
    Column("count", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("metric_values", LargeBinary, nullable=False),
    Index("ix_metric_chunks_run_key", "run_pk", "key"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)

# -- datasets (revision 0002) ------------------------------------------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column(
        "dataset_id",
        Integer,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    # content hash of the data itself (rows for tables, the manifest for folders)
    Column("digest", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # table | files
    # object holding the bytes: a Parquet file, or a folder's JSON manifest
    Column("object_digest", String(64), nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("num_rows", BigInteger, nullable=True),
    Column("num_columns", Integer, nullable=True),
    Column("num_files", Integer, nullable=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("schema_json", Text, nullable=True),
    Column("profile_digest", String(64), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by_run_id", String(32), nullable=True),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),
    UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_digest"),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column(
        "version_pk",
        Integer,
        ForeignKey("dataset_versions.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("value", Text, nullable=False),
)

dataset_aliases = Table(
    "dataset_aliases",
    metadata,
    Column(
        "dataset_id",
        Integer,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(KEY_MAX), primary_key=True),
    Column(
        "version_pk", Integer, ForeignKey("dataset_versions.pk", ondelete="CASCADE"), nullable=False
    ),
)

dataset_lineage = Table(
    "dataset_lineage",
    metadata,
    Column(
        "child_pk", Integer, ForeignKey("dataset_versions.pk", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "parent_pk",
        Integer,
        ForeignKey("dataset_versions.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", String(NAME_MAX), nullable=False, default=""),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column(
        "version_pk",
        Integer,
        ForeignKey("dataset_versions.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("context", String(NAME_MAX), nullable=False, default=""),
    Index("ix_run_inputs_version", "version_pk"),
)

# -- model registry ------------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_MAX), nullable=False, default=""),
    # the promotion policy (YAML text as given, and its parsed JSON form)
    Column("policy_yaml", Text, nullable=True),
    Column("policy_json", Text, nullable=True),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("artifact_path", String(NAME_MAX), nullable=False),  # the model folder in the run
    Column("flavor", String(64), nullable=False),
    # digest of the folder's metadata file, which lists every file's digest
    Column("meta_digest", String(64), nullable=False),
    Column("signature_json", Text, nullable=True),
    Column("metrics_json", Text, nullable=False, default="{}"),
    Column("status", String(16), nullable=False, default="active"),  # active | archived
    Column("description", Text, nullable=False, default=""),
    Column("intended_use", Text, nullable=False, default=""),
    Column("limitations", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_MAX), nullable=False, default=""),
    UniqueConstraint("model_id", "version", name="uq_model_versions_number"),
    Index("ix_model_versions_run", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column(
        "version_pk", Integer, ForeignKey("model_versions.pk", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(KEY_MAX), primary_key=True),
    Column("version_pk", Integer, ForeignKey("model_versions.pk"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(NAME_MAX), nullable=False, default=""),
)

# every move of an alias, in order: promote pushes a holder, rollback pops back
alias_moves = Table(
    "alias_moves",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alias", String(KEY_MAX), nullable=False),
    Column("action", String(16), nullable=False),  # promote | rollback | remove
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(NAME_MAX), nullable=False, default=""),
    Column("forced", Boolean, nullable=False, default=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_alias_moves_model_alias", "model_id", "alias", "pk"),
)

# gate checks (passed or not) with their details, including champion/challenger scores
gate_checks = Table(
    "gate_checks",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column(
        "version_pk", Integer, ForeignKey("model_versions.pk", ondelete="CASCADE"), nullable=False
    ),
    Column("alias", String(KEY_MAX), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(NAME_MAX), nullable=False, default=""),
    Column("passed", Boolean, nullable=False),
    Column("results_json", Text, nullable=False),
    Index("ix_gate_checks_version", "version_pk", "alias"),
)

approvals = Table(
    "approvals",
    metadata,
    Column(
        "version_pk", Integer, ForeignKey("model_versions.pk", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(KEY_MAX), primary_key=True),
    Column("approver", String(NAME_MAX), primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("comment", Text, nullable=False, default=""),
)

citations = Table(
    "citations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column(
        "version_pk", Integer, ForeignKey("model_versions.pk", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(16), nullable=False),  # bibtex | doi | arxiv | url
    Column("key", String(NAME_MAX), nullable=False),  # the DOI, arXiv id, BibTeX key or URL
    Column("text", Text, nullable=False, default=""),  # the BibTeX entry or a note
    Column("added_at", BigInteger, nullable=False),
    Column("added_by", String(NAME_MAX), nullable=False, default=""),
    UniqueConstraint("version_pk", "kind", "key", name="uq_citations_key"),
)

# -- governance ----------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    Column("role", String(16), nullable=False),  # viewer | editor | approver | admin
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_MAX), nullable=False, default=""),
)

# the hash-chained audit log: each event's hash covers its fields and the previous hash
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(NAME_MAX), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity", String(NAME_MAX), nullable=False),
    Column("before_json", Text, nullable=False),
    Column("after_json", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_entity", "entity_type", "entity"),
)

# API tokens: only a hash of the secret is stored; the token is shown once, at creation
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False),
    Column("role", String(16), nullable=False),  # predict | viewer | editor | approver | admin
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_MAX), nullable=False, default=""),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

# -- monitoring ------------------------------------------------------------------------

# a monitor watches one model alias against a reference dataset version
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    Column("model", String(NAME_MAX), nullable=False),
    Column("alias", String(KEY_MAX), nullable=False),
    Column("reference", String(NAME_MAX), nullable=False),  # "dataset@version" as resolved
    Column("window_s", BigInteger, nullable=False),
    Column("schedule", String(64), nullable=True),  # cron, or None: run by hand only
    Column("spec_json", Text, nullable=False),  # target, columns, methods, rules, retrain...
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_MAX), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),  # who evaluates it now
    Column("lease_until", BigInteger, nullable=True),
    Column("last_run_at", BigInteger, nullable=True),
    Column("last_status", String(24), nullable=False, default=""),
    Column("last_error", Text, nullable=False, default=""),
)

# one evaluated time window of a monitor (recomputed in place when late labels arrive)
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column(
        "monitor",
        String(NAME_MAX),
        ForeignKey("monitors.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("computed_at", BigInteger, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("n_labelled", Integer, nullable=False, default=0),
    Column("status", String(24), nullable=False),  # ok | not_enough_data | no_rows
    Column("summary_json", Text, nullable=False),
    UniqueConstraint("monitor", "start_ms", name="uq_monitor_windows_start"),
)

# the numbers of a window, one row each, for history charts and rules over time
monitor_values = Table(
    "monitor_values",
    metadata,
    Column(
        "window_pk",
        Integer,
        ForeignKey("monitor_windows.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("column", String(NAME_MAX), primary_key=True),  # "" for dataset-level values
    Column("name", String(KEY_MAX), primary_key=True),
    Column("value", Float, nullable=True),
)

# alerts: opened by a rule, de-duplicated by fingerprint while open, resolved when it clears
alerts = Table(
    "alerts",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(NAME_MAX), nullable=False),
    Column("model", String(NAME_MAX), nullable=False),
    Column("rule", String(NAME_MAX), nullable=False),
    Column("column", String(NAME_MAX), nullable=False, default=""),
    Column("fingerprint", String(2 * NAME_MAX + 1), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open | acknowledged | resolved
    Column("message", Text, nullable=False, default=""),
    Column("value", Float, nullable=True),
    Column("opened_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("count", Integer, nullable=False, default=1),
    Column("window_start_ms", BigInteger, nullable=True),
    Column("action", String(16), nullable=False, default="none"),  # none | retrain
    Column("action_status", String(24), nullable=False, default=""),
    Column("action_json", Text, nullable=False, default="{}"),
    Index("ix_alerts_monitor_status", "monitor", "status", "fingerprint"),
)

# -- pipelines -------------------------------------------------------------------------

# a step's cache entry: its key (code, input digests, params) -> the outputs it wrote
pipeline_cache = Table(
    "pipeline_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("pipeline", String(NAME_MAX), nullable=False),
    Column("step", String(NAME_MAX), nullable=False),
    Column("manifest_json", Text, nullable=False),  # the outputs' digests (restorable)
    Column("run_id", String(32), nullable=True),  # the step run that produced them
    Column("created_at", BigInteger, nullable=False),
    Index("ix_pipeline_cache_step", "pipeline", "step"),
)

# pipelines run by the scheduler: on a cron schedule and/or when a dataset gets a version
pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    Column("spec_path", Text, nullable=False),
    Column("cron", String(64), nullable=True),
    Column("datasets_json", Text, nullable=False, default="[]"),  # trigger dataset names
    Column("seen_json", Text, nullable=False, default="{}"),  # dataset -> newest version seen
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_MAX), nullable=False, default=""),
    Column("last_run_at", BigInteger, nullable=True),
    Column("last_status", String(24), nullable=False, default=""),
)
