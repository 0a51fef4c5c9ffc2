"""Registry records: registered models, versions, aliases and their moves, gate checks,
approvals, citations and policies.

Every change appends an audit event in its own transaction (``store.audit``). An alias
move is one transaction: the alias row, the move (``alias_moves``, which remembers the
previous holder) and the audit event commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.core.entities import ModelVersion, RegisteredModel
from shipyard.core.errors import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
)
from shipyard.core.plain import jsonable
from shipyard.core.validation import check_key, check_name
from shipyard.store.audit import append_event
from shipyard.store.db import Database, now_ms
from shipyard.store.schema import (
    alias_moves,
    approvals,
    citations,
    gate_checks,
    model_aliases,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)

LATEST = "latest"
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One move of an alias: who moved it from which version to which, and why."""

    alias: str
    action: str  # promote | rollback | remove
    from_version: int | None
    to_version: int | None
    at: int
    actor: str
    forced: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GateCheck:
    """A stored run of the promotion gates for one version and alias."""

    version: int
    alias: str
    at: int
    actor: str
    passed: bool
    results: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Citation:
    kind: str  # bibtex | doi | arxiv | url
    key: str
    text: str
    added_at: int
    added_by: str


def parse_model_ref(ref: str) -> tuple[str, str]:
    """``"churn@3"`` -> ``("churn", "3")``; ``"churn@production"``; ``"churn"`` -> latest."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInputError(
            f"a model reference looks like 'churn@3' or 'churn@production', got {ref!r}"
        )
    name, _, selector = ref.partition("@")
    check_name(name, what="model name")
    return name, selector or LATEST


def _replace_tags(conn: Connection, owner: Any, owner_id: int, rows: Mapping[str, str]) -> None:
    """Set ``rows`` on the tag table of ``owner`` (its owner-id column), keeping other keys."""
    table = owner.table
    conn.execute(delete(table).where((owner == owner_id) & table.c.key.in_(list(rows))))
    if rows:
        conn.execute(
            insert(table), [{owner.key: owner_id, "key": k, "value": v} for k, v in rows.items()]
        )


class SqlRegistryStore:
    """The model registry in the metadata database.

    Args:
        db: the database.
        actor: the name every audit event records.
    """

    def __init__(self, db: Database, *, actor: str = "") -> None:
        self.db = db
        self.actor = actor or "unknown"

    def _audit(
        self,
        conn: Connection,
        action: str,
        *,
        entity_type: str = "model",
        entity: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        append_event(
            conn, actor=self.actor, action=action, entity_type=entity_type, entity=entity,
            before=before, after=after,
        )  # fmt: skip

    # -- registered models -------------------------------------------------------------

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        check_name(name, what="model name")
        tag_rows = {check_key(k, what="tag key"): str(v) for k, v in (tags or {}).items()}

        def tx(conn: Connection) -> None:
            ts = now_ms()
            model_id = conn.execute(
                insert(registered_models).values(
                    name=name,
                    description=description,
                    created_at=ts,
                    updated_at=ts,
                    created_by=self.actor,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(registered_model_tags),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            self._audit(
                conn, "model.create", entity=name,
                after={"description": description, "tags": tag_rows},
            )  # fmt: skip

        try:
            self.db.write(tx)
        except IntegrityError:
            raise AlreadyExistsError(f"model {name!r} exists already") from None
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            row = conn.execute(
                select(registered_models).where(registered_models.c.name == name)
            ).first()
            if row is None:
                raise NotFoundError(self._unknown_model(conn, name))
            return self._model(conn, row)

    def find_model(self, name: str) -> RegisteredModel | None:
        try:
            return self.get_model(name)
        except NotFoundError:
            return None

    def list_models(self) -> list[RegisteredModel]:
        with self.db.read() as conn:
            rows = conn.execute(select(registered_models).order_by(registered_models.c.name)).all()
            return [self._model(conn, r) for r in rows]

    def update_model(self, name: str, *, description: str) -> RegisteredModel:
        model = self.get_model(name)

        def tx(conn: Connection) -> None:
            conn.execute(
                update(registered_models)
                .where(registered_models.c.name == name)
                .values(description=description, updated_at=now_ms())
            )
            self._audit(
                conn, "model.update", entity=name,
                before={"description": model.description}, after={"description": description},
            )  # fmt: skip

        self.db.write(tx)
        return self.get_model(name)

    def set_model_tags(self, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        model = self.get_model(name)
        rows = {check_key(k, what="tag key"): str(v) for k, v in tags.items()}

        def tx(conn: Connection) -> None:
            _replace_tags(conn, registered_model_tags.c.model_id, self._model_id(conn, name), rows)
            self._audit(
                conn, "model.set_tags", entity=name,
                before={k: model.tags.get(k) for k in rows}, after=rows,
            )  # fmt: skip

        self.db.write(tx)
        return self.get_model(name)

    def delete_model(self, name: str) -> None:
        """Delete a model and all its versions; refused while any alias points into it."""
        model = self.get_model(name)
        if model.aliases:
            raise InvalidStateError(
                f"model {name!r} cannot be deleted: aliases "
                f"{', '.join(f'{a} -> {v}' for a, v in sorted(model.aliases.items()))} point "
                f"to its versions; remove them first (`shipyard models alias {name} ALIAS "
                "--remove`)"
            )

        def tx(conn: Connection) -> None:
            conn.execute(delete(registered_models).where(registered_models.c.name == name))
            self._audit(
                conn, "model.delete", entity=name,
                before={"latest_version": model.latest_version},
            )  # fmt: skip

        self.db.write(tx)

    # -- policies ----------------------------------------------------------------------

    def set_policy(
        self, name: str, policy_yaml: str | None, policy: Mapping[str, Any] | None
    ) -> None:
        """Store (or with None, clear) the promotion policy of model ``name``."""
        self.get_model(name)

        def tx(conn: Connection) -> None:
            old = conn.execute(
                select(registered_models.c.policy_json).where(registered_models.c.name == name)
            ).scalar()
            new = json.dumps(policy) if policy is not None else None  # keeps the gate order
            conn.execute(
                update(registered_models)
                .where(registered_models.c.name == name)
                .values(policy_yaml=policy_yaml, policy_json=new, updated_at=now_ms())
            )
            self._audit(
                conn, "policy.set" if policy is not None else "policy.clear",
                entity_type="policy", entity=name,
                before={"policy": json.loads(old) if old else None},
                after={"policy": policy},
            )  # fmt: skip

        self.db.write(tx)

    def get_policy(self, name: str) -> tuple[str | None, dict[str, Any] | None]:
        """``(yaml text, parsed policy)`` of model ``name``; ``(None, None)`` if it has none."""
        self.get_model(name)
        with self.db.read() as conn:
            row = conn.execute(
                select(registered_models.c.policy_yaml, registered_models.c.policy_json).where(
                    registered_models.c.name == name
                )
            ).one()
        return row.policy_yaml, (json.loads(row.policy_json) if row.policy_json else None)

    # -- versions ----------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        run_id: str | None,
        artifact_path: str,
        flavor: str,
        meta_digest: str,
        signature: Mapping[str, Any] | None,
        metrics: Mapping[str, float],
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Add the next version of ``name`` (the model is created if it is new)."""
        check_name(name, what="model name")
        tag_rows = {check_key(k, what="tag key"): str(v) for k, v in (tags or {}).items()}
        metric_values = {str(k): float(v) for k, v in metrics.items()}

        def tx(conn: Connection) -> int:
            ts = now_ms()
            model_id = conn.execute(
                select(registered_models.c.model_id)
                .where(registered_models.c.name == name)
                .with_for_update()
            ).scalar()
            if model_id is None:
                model_id = conn.execute(
                    insert(registered_models).values(
                        name=name,
                        description="",
                        created_at=ts,
                        updated_at=ts,
                        created_by=self.actor,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                self._audit(conn, "model.create", entity=name)
            number = (
                conn.execute(
                    select(func.coalesce(func.max(model_versions.c.version), 0)).where(
                        model_versions.c.model_id == model_id
                    )
                ).scalar_one()
                + 1
            )
            pk = conn.execute(
                insert(model_versions).values(
                    model_id=model_id,
                    version=number,
                    run_id=run_id,
                    artifact_path=artifact_path,
                    flavor=flavor,
                    meta_digest=meta_digest,
                    signature_json=json.dumps(signature) if signature is not None else None,
                    metrics_json=json.dumps(metric_values),
                    status="active",
                    description=description,
                    created_at=ts,
                    created_by=self.actor,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    insert(model_version_tags),
                    [{"version_pk": pk, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            conn.execute(
                update(registered_models)
                .where(registered_models.c.model_id == model_id)
                .values(updated_at=ts)
            )
            self._audit(
                conn, "model.register", entity=f"{name}@{number}",
                after={"run": run_id, "path": artifact_path, "flavor": flavor,
                       "meta_digest": meta_digest},
            )  # fmt: skip
            return int(pk)

        for attempt in range(_ATTEMPTS):
            try:
                pk = self.db.write(tx)
                break
            except IntegrityError:  # two registrations of a new model at the same moment
                if attempt == _ATTEMPTS - 1:
                    raise
        with self.db.read() as conn:
            return self._versions(conn, model_versions.c.pk == pk)[0]

    def get_version(self, ref: str) -> ModelVersion:
        """The version ``"churn@3"``, ``"churn@production"`` or ``"churn"``/``"churn@latest"``
        names.

        Raises:
            NotFoundError: no such model, version or alias (the message lists what exists).
        """
        name, selector = parse_model_ref(ref)
        with self.db.read() as conn:
            model_id = self._model_id(conn, name)
            if selector.isdigit():
                where = (model_versions.c.model_id == model_id) & (
                    model_versions.c.version == int(selector)
                )
                found = self._versions(conn, where)
                if not found:
                    raise NotFoundError(
                        f"model {name!r} has no version {selector}; "
                        f"{self._version_hint(conn, model_id, name)}"
                    )
                return found[0]
            if selector == LATEST:
                latest = conn.execute(
                    select(func.max(model_versions.c.version)).where(
                        model_versions.c.model_id == model_id
                    )
                ).scalar()
                if latest is None:
                    raise NotFoundError(
                        f"model {name!r} has no versions yet; register one with "
                        f"`shipyard models register RUN_ID {name}`"
                    )
                where = (model_versions.c.model_id == model_id) & (
                    model_versions.c.version == latest
                )
                return self._versions(conn, where)[0]
            pk = conn.execute(
                select(model_aliases.c.version_pk).where(
                    (model_aliases.c.model_id == model_id) & (model_aliases.c.alias == selector)
                )
            ).scalar()
            if pk is None:
                aliases = [
                    r[0]
                    for r in conn.execute(
                        select(model_aliases.c.alias).where(model_aliases.c.model_id == model_id)
                    )
                ]
                known = ", ".join(sorted(aliases)) or "none yet"
                raise NotFoundError(
                    f"model {name!r} has no alias {selector!r} (its aliases: {known}); "
                    f"`shipyard models promote {name} VERSION --alias {selector}` sets it"
                )
            return self._versions(conn, model_versions.c.pk == pk)[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            model_id = self._model_id(conn, name)
            return self._versions(conn, model_versions.c.model_id == model_id)

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            return self._versions(conn, model_versions.c.run_id == run_id)

    def update_version(
        self,
        ref: str,
        *,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        status: str | None = None,
    ) -> ModelVersion:
        """Edit a version's texts, or archive (``status="archived"``) / restore it."""
        version = self.get_version(ref)
        values: dict[str, Any] = {}
        for key, value in (
            ("description", description), ("intended_use", intended_use),
            ("limitations", limitations), ("status", status),
        ):  # fmt: skip
            if value is not None:
                values[key] = value
        if status is not None and status not in ("active", "archived"):
            raise InvalidInputError(f"a version's status is 'active' or 'archived', not {status!r}")
        if status == "archived" and version.aliases:
            raise InvalidStateError(
                f"{version.ref} cannot be archived: alias(es) {', '.join(version.aliases)} "
                "point to it; move them to another version first"
            )
        if not values:
            return version

        def tx(conn: Connection) -> None:
            pk = self._version_pk(conn, version)
            conn.execute(update(model_versions).where(model_versions.c.pk == pk).values(**values))
            action = {"archived": "model.archive", "active": "model.unarchive"}.get(
                status or "", "model.update_version"
            )
            self._audit(
                conn, action, entity=version.ref,
                before={k: getattr(version, k) for k in values}, after=values,
            )  # fmt: skip

        self.db.write(tx)
        return self.get_version(version.ref)

    def set_version_tags(self, ref: str, tags: Mapping[str, str]) -> ModelVersion:
        version = self.get_version(ref)
        rows = {check_key(k, what="tag key"): str(v) for k, v in tags.items()}

        def tx(conn: Connection) -> None:
            _replace_tags(
                conn, model_version_tags.c.version_pk, self._version_pk(conn, version), rows
            )
            self._audit(
                conn, "model.set_tags", entity=version.ref,
                before={k: version.tags.get(k) for k in rows}, after=rows,
            )  # fmt: skip

        self.db.write(tx)
        return self.get_version(version.ref)

    def delete_version(self, ref: str) -> None:
        """Delete a version; refused while an alias points to it."""
        version = self.get_version(ref)
        if version.aliases:
            raise InvalidStateError(
                f"{version.ref} cannot be deleted: alias(es) {', '.join(version.aliases)} "
                f"point to it; promote another version or remove the alias first"
            )

        def tx(conn: Connection) -> None:
            pk = self._version_pk(conn, version)
            held = conn.execute(
                select(model_aliases.c.alias).where(model_aliases.c.version_pk == pk)
            ).first()
            if held is not None:  # moved here since the check above
                raise InvalidStateError(f"{version.ref} is behind alias {held[0]!r} now")
            conn.execute(delete(model_versions).where(model_versions.c.pk == pk))
            self._audit(
                conn, "model.delete_version", entity=version.ref,
                before={"run": version.run_id, "meta_digest": version.meta_digest},
            )  # fmt: skip

        self.db.write(tx)

    # -- aliases -----------------------------------------------------------------------

    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        action: str,
        check_from: bool = False,
        expected_from: int | None = None,
        forced: bool = False,
        reason: str = "",
    ) -> AliasMove:
        """Point ``alias`` at ``version`` (None: remove it), recording the move.

        Args:
            check_from: refuse the move unless the alias is held by ``expected_from``.
            expected_from: the holder the caller decided against (gates compared against
                it); if another process moved the alias since, the move is refused.
        """
        check_key(alias, what="alias")
        if alias == LATEST or alias.isdigit():
            raise InvalidInputError(
                f"alias {alias!r} is reserved: 'latest' and version numbers are built in"
            )

        def tx(conn: Connection) -> AliasMove:
            model_id = self._model_id(conn, name)
            current = conn.execute(
                select(model_versions.c.version)
                .select_from(
                    model_aliases.join(
                        model_versions, model_versions.c.pk == model_aliases.c.version_pk
                    )
                )
                .where((model_aliases.c.model_id == model_id) & (model_aliases.c.alias == alias))
                .with_for_update()
            ).scalar()
            if check_from and current != expected_from:
                raise InvalidStateError(
                    f"alias {alias!r} of {name!r} moved to version {current} while this "
                    "promotion was being checked; check again"
                )
            ts = now_ms()
            conn.execute(
                delete(model_aliases).where(
                    (model_aliases.c.model_id == model_id) & (model_aliases.c.alias == alias)
                )
            )
            if version is not None:
                pk = conn.execute(
                    select(model_versions.c.pk).where(
                        (model_versions.c.model_id == model_id)
                        & (model_versions.c.version == version)
                    )
                ).scalar()
                if pk is None:
                    raise NotFoundError(f"model {name!r} has no version {version}")
                conn.execute(
                    insert(model_aliases).values(
                        model_id=model_id,
                        alias=alias,
                        version_pk=pk,
                        updated_at=ts,
                        updated_by=self.actor,
                    )
                )
            move = AliasMove(alias, action, current, version, ts, self.actor, forced, reason)
            conn.execute(
                insert(alias_moves).values(
                    model_id=model_id,
                    alias=alias,
                    action=action,
                    from_version=current,
                    to_version=version,
                    at=ts,
                    actor=self.actor,
                    forced=forced,
                    reason=reason,
                )
            )
            after: dict[str, Any] = {"version": version}
            if forced:
                after.update(forced=True, reason=reason)
            self._audit(
                conn, f"alias.{action}", entity_type="alias", entity=f"{name}@{alias}",
                before={"version": current}, after=after,
            )  # fmt: skip
            return move

        return self.db.write(tx)

    def alias_moves(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """The moves of ``alias`` (or of every alias of the model), oldest first."""
        with self.db.read() as conn:
            model_id = self._model_id(conn, name)
            where = alias_moves.c.model_id == model_id
            if alias is not None:
                where = where & (alias_moves.c.alias == alias)
            rows = conn.execute(select(alias_moves).where(where).order_by(alias_moves.c.pk))
            return [
                AliasMove(
                    r.alias,
                    r.action,
                    r.from_version,
                    r.to_version,
                    r.at,
                    r.actor,
                    bool(r.forced),
                    r.reason,
                )
                for r in rows
            ]

    def alias_stack(self, name: str, alias: str) -> list[int]:
        """The holders of ``alias`` that a rollback returns to, oldest first: each promote
        pushes its version, each rollback pops one, a removal clears the stack."""
        stack: list[int] = []
        for move in self.alias_moves(name, alias):
            if move.action == "rollback":
                if stack:
                    stack.pop()
            elif move.action == "remove" or move.to_version is None:
                stack.clear()
            else:
                stack.append(move.to_version)
        return stack

    # -- gates, approvals, citations ---------------------------------------------------

    def record_gate_check(
        self,
        version: ModelVersion,
        alias: str,
        *,
        passed: bool,
        results: Sequence[Mapping[str, Any]],
    ) -> None:
        def tx(conn: Connection) -> None:
            pk = self._version_pk(conn, version)
            conn.execute(
                insert(gate_checks).values(
                    version_pk=pk,
                    alias=alias,
                    at=now_ms(),
                    actor=self.actor,
                    passed=passed,
                    results_json=json.dumps(jsonable(list(results)), default=str),
                )
            )
            self._audit(
                conn, "gates.check", entity_type="gate", entity=f"{version.ref}",
                after={"alias": alias, "passed": passed,
                       "failed": [r["gate"] for r in results if not r.get("passed")]},
            )  # fmt: skip

        self.db.write(tx)

    def gate_checks(self, version: ModelVersion) -> list[GateCheck]:
        with self.db.read() as conn:
            pk = self._version_pk(conn, version)
            rows = conn.execute(
                select(gate_checks).where(gate_checks.c.version_pk == pk).order_by(gate_checks.c.pk)
            )
            return [
                GateCheck(version.version, r.alias, r.at, r.actor, bool(r.passed),
                          json.loads(r.results_json))
                for r in rows
            ]  # fmt: skip

    def add_approval(self, version: ModelVersion, alias: str, *, comment: str = "") -> None:
        def tx(conn: Connection) -> None:
            pk = self._version_pk(conn, version)
            conn.execute(
                delete(approvals).where(
                    (approvals.c.version_pk == pk) & (approvals.c.alias == alias)
                    & (approvals.c.approver == self.actor)
                )
            )  # fmt: skip
            conn.execute(
                insert(approvals).values(
                    version_pk=pk, alias=alias, approver=self.actor, at=now_ms(), comment=comment
                )
            )
            self._audit(
                conn, "model.approve", entity=version.ref,
                after={"alias": alias, "comment": comment},
            )  # fmt: skip

        self.db.write(tx)

    def approvals(self, version: ModelVersion, alias: str) -> list[tuple[str, int, str]]:
        """``(approver, at, comment)`` of each approval of ``version`` for ``alias``."""
        with self.db.read() as conn:
            pk = self._version_pk(conn, version)
            rows = conn.execute(
                select(approvals.c.approver, approvals.c.at, approvals.c.comment)
                .where((approvals.c.version_pk == pk) & (approvals.c.alias == alias))
                .order_by(approvals.c.at)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    def add_citation(self, version: ModelVersion, *, kind: str, key: str, text: str = "") -> None:
        def tx(conn: Connection) -> None:
            pk = self._version_pk(conn, version)
            conn.execute(
                delete(citations).where(
                    (citations.c.version_pk == pk) & (citations.c.kind == kind)
                    & (citations.c.key == key)
                )
            )  # fmt: skip
            conn.execute(
                insert(citations).values(
                    version_pk=pk,
                    kind=kind,
                    key=key,
                    text=text,
                    added_at=now_ms(),
                    added_by=self.actor,
                )
            )
            self._audit(conn, "model.cite", entity=version.ref, after={"kind": kind, "key": key})

        self.db.write(tx)

    def citations(self, version: ModelVersion) -> list[Citation]:
        with self.db.read() as conn:
            pk = self._version_pk(conn, version)
            rows = conn.execute(
                select(citations).where(citations.c.version_pk == pk).order_by(citations.c.pk)
            )
            return [Citation(r.kind, r.key, r.text, r.added_at, r.added_by) for r in rows]

    # -- helpers -----------------------------------------------------------------------

    def _model_id(self, conn: Connection, name: str) -> int:
        model_id = conn.execute(
            select(registered_models.c.model_id).where(registered_models.c.name == name)
        ).scalar()
        if model_id is None:
            raise NotFoundError(self._unknown_model(conn, name))
        return int(model_id)

    def _unknown_model(self, conn: Connection, name: str) -> str:
        import difflib

        names = [r[0] for r in conn.execute(select(registered_models.c.name))]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (
            f"; registered models: {', '.join(sorted(names)[:10])}" if names
            else "; none is registered yet (`shipyard models register RUN_ID NAME`)"
        )  # fmt: skip
        return f"model {name!r} is not registered{hint}"

    def _version_hint(self, conn: Connection, model_id: int, name: str) -> str:
        numbers = [
            r[0]
            for r in conn.execute(
                select(model_versions.c.version)
                .where(model_versions.c.model_id == model_id)
                .order_by(model_versions.c.version)
            )
        ]
        if not numbers:
            return "it has no versions yet"
        return f"its versions are {numbers[0]}-{numbers[-1]} (`shipyard models show {name}`)"

    def _version_pk(self, conn: Connection, version: ModelVersion) -> int:
        model_id = self._model_id(conn, version.name)
        pk = conn.execute(
            select(model_versions.c.pk).where(
                (model_versions.c.model_id == model_id)
                & (model_versions.c.version == version.version)
            )
        ).scalar()
        if pk is None:
            raise NotFoundError(f"{version.ref} does not exist (deleted?)")
        return int(pk)

    def _model(self, conn: Connection, row: Any) -> RegisteredModel:
        tags = {
            r.key: r.value
            for r in conn.execute(
                select(registered_model_tags).where(
                    registered_model_tags.c.model_id == row.model_id
                )
            )
        }
        aliases = {
            r.alias: r.version
            for r in conn.execute(
                select(model_aliases.c.alias, model_versions.c.version)
                .select_from(
                    model_aliases.join(
                        model_versions, model_versions.c.pk == model_aliases.c.version_pk
                    )
                )
                .where(model_aliases.c.model_id == row.model_id)
            )
        }
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(
                model_versions.c.model_id == row.model_id
            )
        ).scalar()
        return RegisteredModel(
            name=row.name, description=row.description, created_at=row.created_at,
            updated_at=row.updated_at, created_by=row.created_by, tags=tags, aliases=aliases,
            latest_version=latest, has_policy=row.policy_json is not None,
        )  # fmt: skip

    def _versions(self, conn: Connection, where: Any) -> list[ModelVersion]:
        rows = conn.execute(
            select(model_versions, registered_models.c.name)
            .select_from(
                model_versions.join(
                    registered_models,
                    registered_models.c.model_id == model_versions.c.model_id,
                )
            )
            .where(where)
            .order_by(registered_models.c.name, model_versions.c.version)
        ).all()
        if not rows:
            return []
        pks = [r.pk for r in rows]
        tags: dict[int, dict[str, str]] = {}
        for r in conn.execute(
            select(model_version_tags).where(model_version_tags.c.version_pk.in_(pks))
        ):
            tags.setdefault(r.version_pk, {})[r.key] = r.value
        aliases: dict[int, list[str]] = {}
        for r in conn.execute(
            select(model_aliases.c.version_pk, model_aliases.c.alias)
            .where(model_aliases.c.version_pk.in_(pks))
            .order_by(model_aliases.c.alias)
        ):
            aliases.setdefault(r.version_pk, []).append(r.alias)
        return [
            ModelVersion(
                name=r.name,
                version=r.version,
                run_id=r.run_id,
                artifact_path=r.artifact_path,
                flavor=r.flavor,
                meta_digest=r.meta_digest,
                created_at=r.created_at,
                created_by=r.created_by,
                status=r.status,
                description=r.description,
                intended_use=r.intended_use,
                limitations=r.limitations,
                signature=json.loads(r.signature_json) if r.signature_json else None,
                metrics=json.loads(r.metrics_json or "{}"),
                tags=tags.get(r.pk, {}),
                aliases=tuple(aliases.get(r.pk, ())),
            )
            for r in rows
        ]
