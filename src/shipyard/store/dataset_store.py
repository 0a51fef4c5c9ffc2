"""The SQL dataset store: datasets, their immutable versions, tags, aliases, lineage, run inputs.

A version is numbered per dataset (1, 2, ...) and carries the content hash of its
data; adding content whose hash a version already has returns that version. The
alias ``latest`` means the highest number that is not a part of a split (the parts
``train``/``valid``/``test`` of ``customers@2`` are versions of ``customers`` too,
but ``customers@latest`` stays the data that was split); other aliases (``train``,
``production``...) point wherever they were last set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from shipyard.core.entities import DatasetVersion
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.validation import check_key, check_name
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.schema import (
    dataset_aliases,
    dataset_lineage,
    dataset_tags,
    dataset_versions,
    datasets,
    run_inputs,
    runs,
)

LATEST = "latest"
SPLIT_STEP = "split:"  # lineage step of a split part: ``split:train``...
_NAME_RE = re.compile(r"^[A-Za-z0-9][\w\-.]*$")
_ATTEMPTS = 8


def check_dataset_name(name: object) -> str:
    """Dataset names: letters, digits, ``_ - .``; no ``@`` (it separates the version)."""
    name = check_name(name, what="dataset name")
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            f"dataset name {name!r} may hold only letters, digits, '_', '-' and '.', and must "
            "start with a letter or digit"
        )
    return name


def parse_ref(ref: str) -> tuple[str, str]:
    """``"customers@3"`` -> ("customers", "3"); ``"customers"`` -> ("customers", "latest")."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInputError(f"a dataset reference is NAME or NAME@VERSION, got {ref!r}")
    name, sep, selector = ref.partition("@")
    if sep and not selector:
        raise InvalidInputError(
            f"dataset reference {ref!r} has nothing after '@'; use a number, 'latest' or an alias"
        )
    return check_dataset_name(name), (selector or LATEST)


def _latest_numbers(conn: Connection, dataset_ids: Sequence[int]) -> dict[int, int]:
    """dataset id -> the number ``@latest`` names: the highest version that is not a split
    part, or the highest of all if every version is one."""
    if not dataset_ids:
        return {}
    dv = dataset_versions.c
    parts = select(dataset_lineage.c.child_pk).where(dataset_lineage.c.step.startswith(SPLIT_STEP))
    mine = dv.dataset_id.in_(list(dataset_ids))
    found = {
        int(ds): int(n)
        for ds, n in conn.execute(
            select(dv.dataset_id, func.max(dv.version))
            .where(mine & dv.pk.not_in(parts))
            .group_by(dv.dataset_id)
        )
    }
    if len(found) < len(dataset_ids):
        for ds, n in conn.execute(
            select(dv.dataset_id, func.max(dv.version)).where(mine).group_by(dv.dataset_id)
        ):
            found.setdefault(int(ds), int(n))
    return found


class SqlDatasetStore:
    """Dataset records in the metadata database (bytes live in the object store)."""

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    def _audit(
        self,
        conn: Connection,
        action: str,
        entity: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        append_event(
            conn, actor=self.actor, action=action, entity_type="dataset", entity=entity,
            before=before, after=after,
        )  # fmt: skip

    # -- writing -----------------------------------------------------------------------

    def add_version(
        self,
        name: str,
        *,
        digest: str,
        kind: str,
        object_digest: str,
        source: str,
        size_bytes: int,
        num_rows: int | None = None,
        num_columns: int | None = None,
        num_files: int | None = None,
        schema: Mapping[str, Any] | None = None,
        profile_digest: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        parents: Sequence[DatasetVersion] = (),
        step: str = "",
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Record a version, or return the one that has this content already.

        Returns:
            ``(version, created)``; ``created`` is False when identical content existed.
        """
        check_dataset_name(name)
        if kind not in ("table", "files"):
            raise InvalidInputError(f"dataset kind must be 'table' or 'files', got {kind!r}")
        tag_rows = {check_key(k, what="tag key"): str(v) for k, v in (tags or {}).items()}
        parent_pks = [self._pk_of(p) for p in parents]

        def tx(conn: Connection) -> tuple[int, bool]:
            # FOR UPDATE serialises version numbering per dataset on PostgreSQL (SQLite's
            # BEGIN IMMEDIATE already does); a new dataset's name races on its unique key.
            ds_id = conn.execute(
                select(datasets.c.dataset_id).where(datasets.c.name == name).with_for_update()
            ).scalar()
            ts = now_ms()
            if ds_id is None:
                ds_id = conn.execute(
                    insert(datasets).values(name=name, description="", created_at=ts)
                ).inserted_primary_key[0]  # type: ignore[index]
            found = conn.execute(
                select(dataset_versions.c.pk).where(
                    (dataset_versions.c.dataset_id == ds_id) & (dataset_versions.c.digest == digest)
                )
            ).scalar()
            if found is not None:
                return int(found), False
            number = (
                conn.execute(
                    select(func.coalesce(func.max(dataset_versions.c.version), 0)).where(
                        dataset_versions.c.dataset_id == ds_id
                    )
                ).scalar_one()
                + 1
            )
            pk = conn.execute(
                insert(dataset_versions).values(
                    dataset_id=ds_id,
                    version=number,
                    digest=digest,
                    kind=kind,
                    object_digest=object_digest,
                    source=source,
                    num_rows=num_rows,
                    num_columns=num_columns,
                    num_files=num_files,
                    size_bytes=size_bytes,
                    schema_json=json.dumps(schema, default=str) if schema is not None else None,
                    profile_digest=profile_digest,
                    description=description,
                    created_at=ts,
                    created_by_run_id=run_id,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(dataset_tags),
                    [{"version_pk": pk, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            if parent_pks:
                conn.execute(
                    insert(dataset_lineage),
                    [{"child_pk": pk, "parent_pk": p, "step": step} for p in parent_pks],
                )
            self._audit(
                conn, "dataset.add_version", f"{name}@{number}",
                after={"digest": digest, "kind": kind, "source": source,
                       "parents": [p.ref for p in parents], "step": step, "run": run_id},
            )  # fmt: skip
            return int(pk), True

        for attempt in range(_ATTEMPTS):
            try:
                pk, created = self.db.write(tx)
                break
            except IntegrityError:  # another process added a version at the same moment
                if attempt == _ATTEMPTS - 1:
                    raise
        return self._load([pk])[0], created

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        """Point ``alias`` (e.g. ``train``) of the dataset at the version ``ref`` names."""
        check_key(alias, what="alias")
        if alias == LATEST or alias.isdigit() or "@" in alias:
            raise InvalidInputError(
                f"alias {alias!r} is reserved or ambiguous; 'latest' and numbers are built in"
            )
        version = self.resolve(ref)
        pk = self._pk_of(version)

        def tx(conn: Connection) -> None:
            ds_id = self._dataset_id(conn, version.name)
            previous = conn.execute(
                select(dataset_versions.c.version)
                .select_from(dataset_aliases.join(
                    dataset_versions, dataset_versions.c.pk == dataset_aliases.c.version_pk
                ))
                .where((dataset_aliases.c.dataset_id == ds_id) & (dataset_aliases.c.alias == alias))
            ).scalar()  # fmt: skip
            conn.execute(
                delete(dataset_aliases).where(
                    (dataset_aliases.c.dataset_id == ds_id) & (dataset_aliases.c.alias == alias)
                )
            )
            conn.execute(
                insert(dataset_aliases).values(dataset_id=ds_id, alias=alias, version_pk=pk)
            )
            self._audit(
                conn, "dataset.set_alias", f"{version.name}@{alias}",
                before={"version": previous}, after={"version": version.version},
            )  # fmt: skip

        self.db.write(tx)
        return self.resolve(f"{version.name}@{alias}")

    def remove_alias(self, name: str, alias: str) -> None:
        def tx(conn: Connection) -> int:
            ds_id = self._dataset_id(conn, name)
            removed = conn.execute(
                delete(dataset_aliases).where(
                    (dataset_aliases.c.dataset_id == ds_id) & (dataset_aliases.c.alias == alias)
                )
            ).rowcount
            if removed:
                self._audit(conn, "dataset.remove_alias", f"{name}@{alias}")
            return removed

        if not self.db.write(tx):
            raise NotFoundError(f"dataset {name!r} has no alias {alias!r}")

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> DatasetVersion:
        version = self.resolve(ref)
        pk = self._pk_of(version)
        rows = {check_key(k, what="tag key"): str(v) for k, v in tags.items()}

        def tx(conn: Connection) -> None:
            conn.execute(
                delete(dataset_tags).where(
                    (dataset_tags.c.version_pk == pk) & dataset_tags.c.key.in_(list(rows))
                )
            )
            if rows:
                conn.execute(
                    insert(dataset_tags),
                    [{"version_pk": pk, "key": k, "value": v} for k, v in rows.items()],
                )
            self._audit(
                conn, "dataset.set_tags", version.ref,
                before={k: version.tags.get(k) for k in rows}, after=rows,
            )  # fmt: skip

        self.db.write(tx)
        return self.resolve(version.ref)

    def log_input(self, run_pk: int, version: DatasetVersion, *, context: str = "") -> None:
        """Record that a run read ``version`` (logging the same pair again is a no-op)."""
        pk = self._pk_of(version)

        def tx(conn: Connection) -> None:
            exists_ = conn.execute(
                select(run_inputs.c.run_pk).where(
                    (run_inputs.c.run_pk == run_pk) & (run_inputs.c.version_pk == pk)
                )
            ).first()
            if exists_ is None:
                conn.execute(
                    insert(run_inputs).values(run_pk=run_pk, version_pk=pk, context=context)
                )

        self.db.write(tx)

    # -- reading -----------------------------------------------------------------------

    def resolve(self, ref: str) -> DatasetVersion:
        """The version ``NAME@N``, ``NAME@latest``, ``NAME@ALIAS`` or ``NAME`` names."""
        name, selector = parse_ref(ref)
        dv = dataset_versions.c
        with self.db.read() as conn:
            ds_id = self._dataset_id(conn, name)
            if selector.isdigit():
                pk = conn.execute(
                    select(dv.pk).where((dv.dataset_id == ds_id) & (dv.version == int(selector)))
                ).scalar()
            elif selector == LATEST:
                number = _latest_numbers(conn, [ds_id]).get(ds_id)
                pk = conn.execute(
                    select(dv.pk).where((dv.dataset_id == ds_id) & (dv.version == number))
                ).scalar()
            else:
                pk = conn.execute(
                    select(dataset_aliases.c.version_pk).where(
                        (dataset_aliases.c.dataset_id == ds_id)
                        & (dataset_aliases.c.alias == selector)
                    )
                ).scalar()
        if pk is None:
            known = ", ".join(v.ref for v in self.list_versions(name)[:10]) or "none"
            raise NotFoundError(
                f"dataset {name!r} has no version {selector!r} (versions: {known}); "
                f"`shipyard data log {name}` lists them"
            )
        return self._load([int(pk)])[0]

    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        with self.db.read() as conn:
            ds_id = self._dataset_id(conn, name)
            pks = [
                r[0]
                for r in conn.execute(
                    select(dataset_versions.c.pk)
                    .where(dataset_versions.c.dataset_id == ds_id)
                    .order_by(dataset_versions.c.version.desc())
                )
            ]
        return self._load(pks)

    def list_datasets(self) -> list[tuple[str, int, int]]:
        """``(name, number of versions, latest version number)`` for every dataset."""
        dv = dataset_versions.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(datasets.c.name, datasets.c.dataset_id, func.count(dv.pk))
                .join(dataset_versions, dv.dataset_id == datasets.c.dataset_id)
                .group_by(datasets.c.name, datasets.c.dataset_id)
                .order_by(datasets.c.name)
            ).all()
            latest = _latest_numbers(conn, [r[1] for r in rows])
        return [(r[0], int(r[2]), latest[r[1]]) for r in rows]

    def children(self, version: DatasetVersion) -> list[DatasetVersion]:
        """Versions made from ``version`` (by cleaning, splitting...)."""
        pk = self._pk_of(version)
        with self.db.read() as conn:
            pks = [
                r[0]
                for r in conn.execute(
                    select(dataset_lineage.c.child_pk).where(dataset_lineage.c.parent_pk == pk)
                )
            ]
        return self._load(pks)

    def run_inputs(self, run_pk: int) -> list[tuple[DatasetVersion, str]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(run_inputs.c.version_pk, run_inputs.c.context).where(
                    run_inputs.c.run_pk == run_pk
                )
            ).all()
        loaded = self._load([r[0] for r in rows])
        return [(v, r[1]) for v, r in zip(loaded, rows, strict=True)]

    def runs_reading(self, version: DatasetVersion) -> list[str]:
        """Run ids that logged ``version`` as an input."""
        pk = self._pk_of(version)
        with self.db.read() as conn:
            return [
                r[0]
                for r in conn.execute(
                    select(runs.c.run_id)
                    .join(run_inputs, run_inputs.c.run_pk == runs.c.pk)
                    .where(run_inputs.c.version_pk == pk)
                )
            ]

    def referenced_objects(self) -> set[str]:
        """Object digests the dataset tables point at (Parquet files, manifests, profiles)."""
        dv = dataset_versions.c
        with self.db.read() as conn:
            rows = conn.execute(select(dv.object_digest, dv.profile_digest)).all()
        return {d for row in rows for d in row if d}

    # -- internals -----------------------------------------------------------------------

    def _dataset_id(self, conn: Connection, name: str) -> int:
        ds_id = conn.execute(select(datasets.c.dataset_id).where(datasets.c.name == name)).scalar()
        if ds_id is None:
            raise NotFoundError(
                f"dataset {name!r} does not exist; `shipyard data add {name} PATH` creates it "
                "and `shipyard data list` shows the datasets there are"
            )
        return int(ds_id)

    def _pk_of(self, version: DatasetVersion) -> int:
        dv = dataset_versions.c
        with self.db.read() as conn:
            pk = conn.execute(
                select(dv.pk)
                .join(datasets, datasets.c.dataset_id == dv.dataset_id)
                .where((datasets.c.name == version.name) & (dv.version == version.version))
            ).scalar()
        if pk is None:
            raise NotFoundError(f"dataset version {version.ref} does not exist")
        return int(pk)

    def _load(self, pks: Sequence[int]) -> list[DatasetVersion]:
        if not pks:
            return []
        dv = dataset_versions.c
        with self.db.read() as conn:
            rows = {
                r.pk: r
                for r in conn.execute(
                    select(dataset_versions, datasets.c.name)
                    .join(datasets, datasets.c.dataset_id == dv.dataset_id)
                    .where(dv.pk.in_(list(pks)))
                )
            }
            tags: dict[int, dict[str, str]] = {}
            for pk, k, v in conn.execute(
                select(dataset_tags.c.version_pk, dataset_tags.c.key, dataset_tags.c.value).where(
                    dataset_tags.c.version_pk.in_(list(pks))
                )
            ):
                tags.setdefault(pk, {})[k] = v
            aliases: dict[int, list[str]] = {}
            for pk, alias in conn.execute(
                select(dataset_aliases.c.version_pk, dataset_aliases.c.alias).where(
                    dataset_aliases.c.version_pk.in_(list(pks))
                )
            ):
                aliases.setdefault(pk, []).append(alias)
            parent = dataset_versions.alias("parent")
            parent_ds = datasets.alias("parent_ds")
            parents: dict[int, list[str]] = {}
            for child, pname, pversion in conn.execute(
                select(dataset_lineage.c.child_pk, parent_ds.c.name, parent.c.version)
                .join(parent, parent.c.pk == dataset_lineage.c.parent_pk)
                .join(parent_ds, parent_ds.c.dataset_id == parent.c.dataset_id)
                .where(dataset_lineage.c.child_pk.in_(list(pks)))
            ):
                parents.setdefault(child, []).append(f"{pname}@{pversion}")
            latest = _latest_numbers(conn, list({r.dataset_id for r in rows.values()}))
        out = []
        for pk in pks:
            r = rows[pk]
            names = sorted(aliases.get(pk, []))
            if latest.get(r.dataset_id) == r.version:
                names.insert(0, LATEST)
            out.append(
                DatasetVersion(
                    name=r.name, version=r.version, digest=r.digest, kind=r.kind,
                    object_digest=r.object_digest, source=r.source, num_rows=r.num_rows,
                    num_columns=r.num_columns, num_files=r.num_files, size_bytes=r.size_bytes,
                    created_at=r.created_at, description=r.description or "",
                    schema=json.loads(r.schema_json) if r.schema_json else None,
                    profile_digest=r.profile_digest, created_by_run_id=r.created_by_run_id,
                    tags=dict(sorted(tags.get(pk, {}).items())), aliases=tuple(names),
                    parents=tuple(sorted(parents.get(pk, []))),
                )
            )  # fmt: skip
        return out
