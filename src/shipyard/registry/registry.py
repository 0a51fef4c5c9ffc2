"""The model registry: log model folders, register versions, load them safely, move aliases
through the promotion gates, roll back, approve, cite, and trace lineage.

Trust runs from the database down: a version records the hash of its folder's metadata
file, which records the hash of every other file. Loading reads each object *by those
hashes* (the object store re-hashes what it reads), checks them again against the
metadata, and only then hands bytes to the flavor; nothing is unpickled.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.entities import ModelVersion
from shipyard.core.errors import (
    GateFailedError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
)
from shipyard.core.validation import check_artifact_path
from shipyard.governance.identity import Identity, current_identity, require_role
from shipyard.registry.gates import GateContext, check_gates, gates_for, parse_policy
from shipyard.store.objects import hash_bytes
from shipyard.store.registry_store import AliasMove, SqlRegistryStore
from shipyard.store.users_store import SqlUserStore

if TYPE_CHECKING:
    from shipyard.registry.model_folder import LoadedModel
    from shipyard.tracking.tracker import Tracker

logger = logging.getLogger(__name__)

Scorer = Callable[["LoadedModel", Any, str, str | None], float]
"""``scorer(model, data_ref, metric, target) -> value``: evaluates a loaded model on a
dataset version with a scikit-learn scorer name (greater is better)."""

CITATION_KINDS = ("bibtex", "doi", "arxiv", "url")


@dataclass(frozen=True)
class LoggedModel:
    """A model folder a run logged: where it is and what its metadata says."""

    run_id: str
    path: str
    flavor: str
    meta_digest: str
    signature: Mapping[str, Any] | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class Promotion:
    """The outcome of :meth:`ModelRegistry.promote`."""

    version: ModelVersion
    alias: str
    previous: int | None
    gates: list[dict[str, Any]] = field(default_factory=list)
    forced: bool = False


class ModelRegistry:
    """Models logged by runs, registered as versions, moved between aliases behind gates.

    Args:
        tracker: the tracker whose store holds the runs and objects.
        scorer: evaluates a version on a dataset for the ``beat_champion`` gate.
        validator: ``validator(data_ref, expectations) -> (passed, summary)`` for the
            ``validate_data`` gate.
        embedded: True when there is no server: an actor without a stored role is admin.
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        scorer: Scorer | None = None,
        validator: Callable[[str, str | None], tuple[bool, str]] | None = None,
        embedded: bool = True,
    ) -> None:
        self.tracker = tracker
        self.store = SqlRegistryStore(tracker.db, actor=tracker.settings.actor)
        self.users = SqlUserStore(tracker.db, actor=tracker.settings.actor)
        self.scorer = scorer
        self.validator = validator
        self.embedded = embedded

    @property
    def identity(self) -> Identity:
        return current_identity(self.users, embedded=self.embedded)

    def _require(self, role: str, to: str) -> Identity:
        who = self.identity
        require_role(who, role, to=to)
        return who

    # -- logging and registering -------------------------------------------------------

    def log_model(
        self,
        model: Any,
        path: str = "model",
        *,
        flavor: str | None = None,
        input_example: Any = None,
        signature: Any = None,
        task: str | None = None,
        run_id: str | None = None,
    ) -> LoggedModel:
        """Write ``model`` as a model folder under ``path`` in the active run (or ``run_id``)."""
        from shipyard.registry.model_folder import META_FILE, package_model

        path = check_artifact_path(path)
        if run_id is None and self.tracker.active_run() is None:
            raise InvalidStateError(
                "log_model writes into a run: call it inside `with sy.start_run():` or pass run_id="
            )
        files = package_model(
            model, flavor=flavor, input_example=input_example, signature=signature, task=task
        )
        for name, data in sorted(files.items()):
            if name != META_FILE:
                self.tracker.log_bytes(data, f"{path}/{name}", run_id=run_id)
        # the metadata file last: a folder without it is not a model folder
        self.tracker.log_bytes(files[META_FILE], f"{path}/{META_FILE}", run_id=run_id)
        meta = _parse_meta(files[META_FILE])
        target_run = run_id or self.tracker.active_run().run_id  # type: ignore[union-attr]
        return LoggedModel(
            target_run, path, meta.flavor, hash_bytes(files[META_FILE]),
            meta.signature.to_dict() if meta.signature is not None else None,
            tuple(sorted(files)),
        )  # fmt: skip

    def register(
        self,
        run_id: str,
        name: str,
        *,
        path: str = "model",
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register the model folder ``path`` of run ``run_id`` as the next version of ``name``."""
        self._require("editor", "register a model")
        self.tracker.flush()
        run = self.tracker.get_run(run_id)
        path = check_artifact_path(path)
        meta_digest = self._meta_digest(run.run_id, path)
        meta = _parse_meta(self.tracker.objects.get_bytes(meta_digest))
        metrics = {k: v for k, v in run.metrics.items() if math.isfinite(v)}  # no evidence
        return self.store.create_version(
            name, run_id=run.run_id, artifact_path=path, flavor=meta.flavor,
            meta_digest=meta_digest,
            signature=meta.signature.to_dict() if meta.signature is not None else None,
            metrics=metrics, description=description, tags=tags,
        )  # fmt: skip

    # -- reading -----------------------------------------------------------------------

    def get_version(self, ref: str) -> ModelVersion:
        return self.store.get_version(ref)

    def load(self, ref: str | ModelVersion) -> LoadedModel:
        """The model ``ref`` names (``churn@3``, ``churn@production``), every hash checked first.

        Raises:
            NotFoundError: no such model, version or alias.
            CorruptObjectError: a file does not match its recorded hash (nothing is loaded).
        """
        from shipyard.registry.model_folder import load_model_files

        version = ref if isinstance(ref, ModelVersion) else self.store.get_version(ref)
        objects = self.tracker.objects
        meta_bytes = objects.get_bytes(version.meta_digest)  # re-hashed by the store
        meta = _parse_meta(meta_bytes)

        def read(name: str) -> bytes:
            return objects.get_bytes(meta.files[name]["digest"])

        return load_model_files(read, meta_bytes)

    def load_from_run(self, run_id: str, path: str = "model") -> LoadedModel:
        """The model folder ``path`` a run logged (registered or not), every hash checked."""
        from shipyard.registry.model_folder import load_model_files

        meta_bytes = self.tracker.objects.get_bytes(self._meta_digest(run_id, path))
        meta = _parse_meta(meta_bytes)
        objects = self.tracker.objects
        return load_model_files(lambda name: objects.get_bytes(meta.files[name]["digest"]),
                                meta_bytes)  # fmt: skip

    def _meta_digest(self, run_id: str, path: str) -> str:
        from shipyard.registry.model_folder import META_FILE

        path = check_artifact_path(path)
        meta_path = f"{path}/{META_FILE}"
        found = [a for a in self.tracker.list_artifacts(run_id, path) if a.path == meta_path]
        if found:
            return found[0].digest
        logged = sorted(
            {a.path.rsplit("/", 1)[0] for a in self.tracker.list_artifacts(run_id)
             if a.path.endswith("/" + META_FILE)}
        )  # fmt: skip
        hint = (
            f"it has model folders at: {', '.join(logged)} (pass path= or --path)"
            if logged
            else "log one with sy.log_model(model, 'model') inside the run"
        )
        raise NotFoundError(f"run {run_id} has no model folder at {path!r}; {hint}")

    def verify_files(self, version: ModelVersion) -> None:
        """Read every file of the version's folder and check its hash (nothing is loaded).

        Raises:
            CorruptObjectError: a file does not match its recorded hash.
            StoreUnavailableError: a file is missing from the object store.
        """
        from shipyard.store.objects import CorruptObjectError

        objects = self.tracker.objects
        meta = _parse_meta(objects.get_bytes(version.meta_digest))
        for name, entry in meta.files.items():
            data = objects.get_bytes(entry["digest"])  # the store re-hashes what it reads
            if len(data) != entry["size"]:
                raise CorruptObjectError(
                    f"{version.ref}: model file {name!r} has {len(data):,} bytes, its metadata "
                    f"lists {entry['size']:,}"
                )

    def model_meta(self, version: ModelVersion) -> Any:
        return _parse_meta(self.tracker.objects.get_bytes(version.meta_digest))

    # -- aliases and gates -------------------------------------------------------------

    def check_gates(self, name: str, version: int, alias: str) -> list[dict[str, Any]]:
        """Run the gates of ``alias`` for ``name@version`` without moving anything."""
        candidate = self.store.get_version(f"{name}@{version}")
        return self._run_gates(candidate, alias, self._holder(name, alias))

    def _holder(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return self.store.get_version(f"{name}@{alias}")
        except NotFoundError:
            self.store.get_model(name)  # an unknown model is still an error
            return None

    def _run_gates(
        self, candidate: ModelVersion, alias: str, holder: ModelVersion | None
    ) -> list[dict[str, Any]]:
        from shipyard.registry.signature import Signature, compatibility_problems

        _, policy = self.store.get_policy(candidate.name)
        gates = gates_for(policy, alias)
        if not gates:
            return []

        def score(version: ModelVersion, data: str, metric: str, target: str | None) -> float:
            if self.scorer is None:
                raise InvalidStateError("this registry was made without a scorer")
            if target is None and version.run_id is not None:
                target = self.tracker.get_run(version.run_id).params.get("target")
            return self.scorer(self.load(version), data, metric, target)

        def validate(data: str, expectations: str | None) -> tuple[bool, str]:
            if self.validator is None:
                raise InvalidStateError("this registry was made without a data validator")
            return self.validator(data, expectations)

        def approvals() -> list[tuple[str, str]]:
            return [
                (who, self.users.role_of(who) or ("admin" if self.embedded else "viewer"))
                for who, _, _ in self.store.approvals(candidate, alias)
            ]

        def compatibility(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
            return compatibility_problems(Signature.from_dict(old), Signature.from_dict(new))

        context = GateContext(holder, score, validate, approvals, compatibility)
        return check_gates(candidate, gates, context)

    def promote(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        force: bool = False,
        reason: str = "",
    ) -> Promotion:
        """Point ``alias`` at ``name@version`` if every gate of the policy passes.

        Args:
            force: move it even though gates fail (admin only, needs ``reason``; logged).

        Raises:
            GateFailedError: a gate failed; its message lists each failing gate. Nothing moved.
            PermissionDeniedError: the actor's role does not allow it.
        """
        self._require("admin" if force else "editor", "force a promotion" if force
                      else "promote a model")  # fmt: skip
        if force and not reason.strip():
            raise InvalidInputError(
                "a forced promotion needs a reason (--reason '...'); it goes into the audit log"
            )
        candidate = self.store.get_version(f"{name}@{version}")
        if candidate.status == "archived":
            raise InvalidStateError(
                f"{candidate.ref} is archived; unarchive it before promoting it"
            )
        self.verify_files(candidate)  # never point an alias at a damaged model
        holder = self._holder(name, alias)
        results = self._run_gates(candidate, alias, holder)
        passed = all(r["passed"] for r in results)
        if results:
            self.store.record_gate_check(candidate, alias, passed=passed, results=results)
        if not passed and not force:
            failing = [r for r in results if not r["passed"]]
            lines = "\n".join(f"  - {r['gate']}: {r['detail']}" for r in failing)
            raise GateFailedError(
                f"{candidate.ref} cannot take alias {alias!r}: {len(failing)} gate(s) failed\n"
                f"{lines}\nfix them, or an admin can use --force with --reason",
                details={"gates": results},
            )
        previous = holder.version if holder is not None else None
        self.store.move_alias(
            name, alias, version, action="promote", check_from=True, expected_from=previous,
            forced=force and not passed, reason=reason,
        )  # fmt: skip
        return Promotion(
            self.store.get_version(candidate.ref), alias, previous, results, force and not passed
        )

    def rollback(self, name: str, alias: str) -> AliasMove:
        """Move ``alias`` back to the version that held it before the last promotion."""
        self._require("editor", "roll back an alias")
        stack = self.store.alias_stack(name, alias)
        current = self._holder(name, alias)
        if current is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r} to roll back")
        if len(stack) < 2:
            raise InvalidStateError(
                f"{name}@{alias} has no previous holder to roll back to (its history: "
                f"{' -> '.join(map(str, stack)) or 'none'})"
            )
        target = stack[-2]
        self.verify_files(self.store.get_version(f"{name}@{target}"))  # still there, intact?
        return self.store.move_alias(
            name, alias, target, action="rollback", check_from=True,
            expected_from=current.version,
        )  # fmt: skip

    def remove_alias(self, name: str, alias: str) -> AliasMove:
        self._require("editor", "remove an alias")
        current = self._holder(name, alias)
        if current is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        return self.store.move_alias(name, alias, None, action="remove")

    def approve(self, name: str, version: int, alias: str, *, comment: str = "") -> None:
        self._require("approver", "approve a model version")
        self.store.add_approval(self.store.get_version(f"{name}@{version}"), alias, comment=comment)

    def set_policy(self, name: str, policy: str | Path | Mapping[str, Any] | None) -> None:
        """Store the promotion policy of ``name`` (YAML text, a YAML file, or a mapping);
        None removes it."""
        self._require("admin", "set a promotion policy")
        if policy is None:
            self.store.set_policy(name, None, None)
            return
        text: str | None = None
        if isinstance(policy, Path) or (
            isinstance(policy, str) and policy.endswith((".yaml", ".yml")) and "\n" not in policy
        ):
            file = Path(policy)
            if not file.is_file():
                raise NotFoundError(f"no policy file at {file}")
            text = file.read_text()
            parsed = parse_policy(text)
        elif isinstance(policy, str):
            text = policy
            parsed = parse_policy(policy)
        else:
            parsed = parse_policy(policy)
        self.store.set_policy(name, text, parsed)

    # -- editing -----------------------------------------------------------------------

    def update_version(
        self,
        ref: str,
        *,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        status: str | None = None,
    ) -> ModelVersion:
        """Edit a version's texts (shown on its card), or archive/unarchive it."""
        self._require("editor", "edit a model version")
        return self.store.update_version(
            ref, description=description, intended_use=intended_use, limitations=limitations,
            status=status,
        )  # fmt: skip

    def delete_version(self, ref: str) -> None:
        self._require("admin", "delete a model version")
        self.store.delete_version(ref)

    def delete_model(self, name: str) -> None:
        self._require("admin", "delete a model")
        self.store.delete_model(name)

    def cite(self, ref: str, *, kind: str, key: str, text: str = "") -> None:
        """Attach a reference that guided the method: a BibTeX entry, a DOI, an arXiv id, a URL."""
        self._require("editor", "cite a reference")
        kind, key, text = check_citation(kind, key, text)
        self.store.add_citation(self.store.get_version(ref), kind=kind, key=key, text=text)

    def set_role(self, user: str, role: str | None) -> None:
        self._require("admin", "manage users")
        self.users.set_role(user, role)

    # -- lineage -----------------------------------------------------------------------

    def lineage(self, ref: str) -> dict[str, Any]:
        """The chain ``model version -> run -> dataset versions -> their parents``."""
        version = self.store.get_version(ref)
        node: dict[str, Any] = {"model": version.to_dict(), "run": None, "datasets": []}
        if version.run_id is None:
            return node
        try:
            run = self.tracker.get_run(version.run_id)
        except NotFoundError:
            node["run"] = {"run_id": version.run_id, "missing": True}
            return node
        node["run"] = {
            "run_id": run.run_id, "name": run.name, "experiment_id": run.experiment_id,
            "git_commit": run.git_commit, "git_dirty": run.git_dirty, "user": run.user,
            "parent_run_id": run.parent_run_id, "start_time": run.start_time,
        }  # fmt: skip
        inputs = self.tracker.run_inputs(run.run_id)
        if not inputs and run.parent_run_id:  # the training run logged them
            inputs = self.tracker.run_inputs(run.parent_run_id)
        seen: set[str] = set()
        node["datasets"] = [self._dataset_node(v, context, seen) for v, context in inputs]
        return node

    def _dataset_node(self, version: Any, context: str, seen: set[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ref": version.ref, "digest": version.digest, "context": context,
            "created_by_run_id": version.created_by_run_id, "parents": [],
        }  # fmt: skip
        if version.ref in seen:  # listed above with its parents
            entry["repeated"] = True
            return entry
        seen.add(version.ref)
        for parent in version.parents:
            try:
                parent_version = self.tracker.datasets.resolve(parent)
            except NotFoundError:
                entry["parents"].append({"ref": parent, "missing": True, "parents": []})
                continue
            entry["parents"].append(self._dataset_node(parent_version, "", seen))
        return entry


def check_citation(kind: str, key: str, text: str = "") -> tuple[str, str, str]:
    """Normalise and check a reference; a BibTeX entry's key is its citation key."""
    import re

    kind = kind.lower()
    if kind not in CITATION_KINDS:
        raise InvalidInputError(f"a citation is one of {', '.join(CITATION_KINDS)}, got {kind!r}")
    key = key.strip()
    if kind == "bibtex":
        entry = (text or key).strip()
        match = re.match(r"@\w+\s*\{\s*([^,\s]+)\s*,", entry)
        if match is None:
            raise InvalidInputError(
                "a BibTeX entry starts like '@article{key, ...'; pass the whole entry"
            )
        return kind, match.group(1), entry
    if kind == "doi":
        key = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", key, flags=re.I)
        if not re.fullmatch(r"10\.\d{4,9}/\S+", key):
            raise InvalidInputError(f"a DOI looks like 10.1000/xyz123, got {key!r}")
    elif kind == "arxiv":
        key = re.sub(r"^(https?://arxiv\.org/abs/|arxiv:)", "", key, flags=re.I)
        if not re.fullmatch(r"(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?", key):
            raise InvalidInputError(f"an arXiv id looks like 2101.00001, got {key!r}")
    elif not re.match(r"https?://\S+$", key):
        raise InvalidInputError(f"a URL starts with http:// or https://, got {key!r}")
    return kind, key, text


def _parse_meta(data: bytes) -> Any:
    from shipyard.registry.model_folder import ModelMeta

    return ModelMeta.from_json(data)
