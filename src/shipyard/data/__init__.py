"""Data: versioned datasets, validation, profiles, relationship graphs, cleaning and splits.

``sy.data`` is this package. The functions below act on the store the settings
name (``SHIPYARD_*`` / ``shipyard.toml``, or ``sy.configure``), like ``sy.start_run``.

Example::

    import shipyard as sy
    v = sy.data.add("customers", "data/customers.csv")      # customers@1
    df = sy.data.get("customers@latest").to_pandas()
    report = sy.data.validate(df, expectations="customers")
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core import session
from shipyard.core.config import Settings
from shipyard.core.entities import DatasetVersion

if TYPE_CHECKING:
    from shipyard.data._catalog import DataCatalog, Dataset
    from shipyard.data.cleaning import CleaningReport
    from shipyard.data.compare import DatasetDiff
    from shipyard.data.folders import FolderChanges
    from shipyard.data.profiling import Profile
    from shipyard.data.relationships import RelationshipGraph
    from shipyard.data.splits import LeakageReport
    from shipyard.data.validation import ValidationReport

__all__ = [
    "DataCatalog",
    "Dataset",
    "DatasetVersion",
    "add",
    "catalog",
    "clean",
    "diff",
    "get",
    "graph",
    "list_datasets",
    "log",
    "profile",
    "set_alias",
    "set_tags",
    "split",
    "status",
    "validate",
]

_lock = threading.Lock()
_catalogs: dict[int, tuple[Settings, DataCatalog]] = {}


def catalog(settings: Settings | None = None) -> DataCatalog:
    """The catalog of the store ``settings`` names (default: the settings in effect)."""
    from shipyard.data._catalog import DataCatalog
    from shipyard.store.dataset_store import SqlDatasetStore
    from shipyard.store.db import shared_database
    from shipyard.store.objects import open_object_store

    s = settings or session.current_settings()
    with _lock:
        found = _catalogs.get(id(s))
        if found is not None and found[0] is s:
            return found[1]
        db = shared_database(s.db_url, busy_timeout=s.busy_timeout)
        made = DataCatalog(
            SqlDatasetStore(db, actor=s.actor),
            open_object_store(s.artifact_uri, s3_endpoint_url=s.s3_endpoint_url),
            cache_dir=Path(s.cache_dir),
            expectations_dir=Path(s.expectations_dir),
        )
        _catalogs.clear()  # one settings object is in effect at a time
        _catalogs[id(s)] = (s, made)
        return made


def add(
    name: str,
    source: Any,
    *,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    parents: Sequence[DatasetVersion] = (),
    link: bool = False,
) -> DatasetVersion:
    """Add a DataFrame, a CSV/TSV/Parquet file or a folder as a version of dataset ``name``.

    Identical content gives back the existing version. ``link=True`` hard-links a
    folder's big files into a local store instead of copying them (they become
    read-only). See :meth:`DataCatalog.add`.
    """
    return catalog().add(
        name,
        source,
        description=description,
        tags=tags,
        aliases=aliases,
        parents=parents,
        link=link,
    )


def get(ref: str) -> Dataset:
    """The version ``ref`` names (``name``, ``name@3``, ``name@latest``, ``name@train``)."""
    return catalog().get(ref)


def log(name: str) -> list[DatasetVersion]:
    """Every version of ``name``, newest first."""
    return catalog().store.list_versions(name)


def list_datasets() -> list[tuple[str, int, int]]:
    """``(name, versions, latest version)`` for every dataset."""
    return catalog().store.list_datasets()


def set_alias(ref: str, alias: str) -> DatasetVersion:
    """Point ``name@alias`` at the version ``ref`` names."""
    return catalog().store.set_alias(ref, alias)


def set_tags(ref: str, tags: Mapping[str, str]) -> DatasetVersion:
    return catalog().store.set_tags(ref, tags)


def validate(data: Any, expectations: Any = None) -> ValidationReport:
    """Check a DataFrame, file or version against expectations (a name, a path or an object)."""
    return catalog().validate(data, expectations)


def diff(old: str, new: str) -> DatasetDiff:
    """Schema, row-count and per-column distribution changes between two table versions."""
    return catalog().diff(old, new)


def status(name: str, path: str | os.PathLike[str]) -> FolderChanges:
    """Which files under ``path`` changed since the latest version of folder dataset ``name``."""
    return catalog().status(name, path)


def profile(data: Any) -> Profile:
    """Per-column statistics of a DataFrame, a table file or a version reference."""
    return catalog().profile(data)


def graph(data: Any, *, target: str | None = None) -> RelationshipGraph:
    """The variable-relationship graph (associations, target MI, redundancy, leakage)."""
    return catalog().graph(data, target=target)


def split(
    ref: str,
    *,
    method: str = "random",
    target: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    test: float = 0.2,
    valid: float = 0.0,
    seed: int = 0,
) -> tuple[dict[str, DatasetVersion], LeakageReport]:
    """Split a version into ``@train``/``@valid``/``@test`` versions with lineage."""
    return catalog().split(
        ref,
        method=method,
        target=target,
        time_column=time_column,
        group_column=group_column,
        test=test,
        valid=valid,
        seed=seed,
    )


def clean(ref: str, spec: Any, *, name: str | None = None) -> tuple[DatasetVersion, CleaningReport]:
    """Apply a cleaning spec and add the result as a new version with lineage."""
    return catalog().clean(ref, spec, name=name)


def __getattr__(name: str) -> Any:
    # the catalog (SQLAlchemy, the stores) loads on first use: `shipyard.data.folders`, which
    # a no-op pipeline run needs for its stat cache, does not pay for it
    if name in ("DataCatalog", "Dataset"):
        from shipyard.data import _catalog

        return getattr(_catalog, name)
    raise AttributeError(f"module 'shipyard.data' has no attribute {name!r}")
