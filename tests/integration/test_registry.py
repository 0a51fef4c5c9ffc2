"""The registry on a real store (SQLite and PostgreSQL): register, load with every hash
checked, move aliases through the gates, roll back, roles, and the audit trail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.errors import (
    GateFailedError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
)
from shipyard.store.objects import CorruptObjectError


def _frame() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def _log(sy: Any, model: Any, frame: pd.DataFrame, *, auc: float, name: str = "fit") -> str:
    X, y = frame.drop(columns="target"), frame["target"]
    with sy.start_run(name=name) as run:
        model.fit(X, y)
        sy.log_param("target", "target")
        sy.log_metric("valid_roc_auc", auc)
        sy.log_model(model, "model", input_example=X.head(5))
    return str(run.run_id)


@pytest.fixture
def two_versions(sy: Any) -> tuple[Any, pd.DataFrame]:
    """cancer@1 a weak model, cancer@2 a good one, and cancer@... data to judge them on."""
    frame = _frame()
    sy.data.add("cancer", frame)
    weak = _log(sy, DummyClassifier(strategy="prior"), frame, auc=0.5, name="weak")
    good = _log(sy, RandomForestClassifier(20, random_state=0), frame, auc=0.99, name="good")
    sy.register_model(weak, "cancer")
    sy.register_model(good, "cancer")
    return sy, frame


def test_a_registered_model_loads_and_predicts_like_the_original(sy: Any) -> None:
    frame = _frame()
    X = frame.drop(columns="target")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    run_id = _log(sy, model, frame, auc=0.99)
    version = sy.register_model(run_id, "cancer", description="baseline")
    assert (version.ref, version.flavor, version.run_id) == ("cancer@1", "sklearn", run_id)
    assert version.metrics == {"valid_roc_auc": 0.99}
    assert [c["name"] for c in version.signature["inputs"]] == list(X.columns)

    loaded = sy.load_model("cancer@1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert list(loaded.classes_) == [0, 1]
    assert sy.load_model("cancer").predict(X.head(3)).shape == (3,)  # latest


def test_the_best_model_of_sy_train_registers_and_loads(sy: Any) -> None:
    frame = _frame()
    result = sy.train(frame, "target", models=["linear"], cv=3)
    version = sy.register_model(result.best_run_id, "trained")
    X = frame.drop(columns="target")
    np.testing.assert_array_equal(sy.load_model(version.ref).predict(X), result.model.predict(X))
    assert sy.get_run(version.run_id).params["target"] == "target"


def test_a_changed_byte_in_a_model_file_is_refused_before_loading(sy: Any, tmp_path: Path) -> None:
    run_id = _log(sy, RandomForestClassifier(5, random_state=0), _frame(), auc=0.9)
    version = sy.register_model(run_id, "cancer")
    meta = sy.model_registry().model_meta(version)
    digest = meta.files["model.skops"]["digest"]
    [path] = [p for p in (tmp_path / "store").rglob(digest[2:]) if p.parent.name == digest[:2]]
    first = sy.load_model("cancer@1")  # kept in memory: a later change must still be seen
    again = sy.load_model("cancer@1")
    assert again.native is not first.native  # each load is its own copy
    again.native.set_params(n_estimators=1)
    assert sy.load_model("cancer@1").native.n_estimators == 5
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError, match=digest[:12]):
        sy.load_model("cancer@1")


def test_promote_and_rollback_move_the_alias_and_remember_the_previous_holder(
    two_versions: tuple[Any, pd.DataFrame],
) -> None:
    sy, _ = two_versions
    assert sy.promote_model("cancer", 1, "production").previous is None
    assert sy.promote_model("cancer", 2, "production").previous == 1
    assert sy.get_model_version("cancer@production").version == 2
    assert sy.get_model_version("cancer@2").aliases == ("production",)

    back = sy.rollback_model("cancer", "production")
    assert (back.from_version, back.to_version) == (2, 1)
    assert sy.get_model_version("cancer@production").version == 1
    with pytest.raises(InvalidStateError, match="no previous holder"):
        sy.rollback_model("cancer", "production")
    registry = sy.model_registry()
    assert [m.action for m in registry.store.alias_moves("cancer", "production")] == [
        "promote", "promote", "rollback",
    ]  # fmt: skip
    with pytest.raises(InvalidStateError, match="production"):
        registry.delete_version("cancer@1")  # behind an alias
    with pytest.raises(InvalidStateError, match="production"):
        registry.update_version("cancer@1", status="archived")


def test_failing_gates_refuse_the_promotion_list_each_failure_and_move_nothing(
    two_versions: tuple[Any, pd.DataFrame],
) -> None:
    sy, _ = two_versions
    registry = sy.model_registry()
    registry.set_policy(
        "cancer",
        "production:\n  min_metrics: {valid_roc_auc: 0.9}\n"
        "  beat_champion: {data: cancer@1, metric: roc_auc, target: target}\n",
    )
    with pytest.raises(GateFailedError) as failed:
        sy.promote_model("cancer", 1, "production")
    assert "min_metrics: valid_roc_auc = 0.5, needs >= 0.9" in str(failed.value)
    with pytest.raises(NotFoundError):
        sy.get_model_version("cancer@production")

    done = sy.promote_model("cancer", 2, "production")
    assert all(g["passed"] for g in done.gates)
    # a later challenger is judged against the champion on the same data
    registry.set_policy(
        "cancer", "production:\n  beat_champion: {data: cancer@1, metric: roc_auc, margin: 0.01}\n"
    )
    with pytest.raises(GateFailedError, match="does not beat cancer@2"):
        sy.promote_model("cancer", 1, "production")
    [*_, check] = registry.store.gate_checks(sy.get_model_version("cancer@1"))
    gate = check.results[0]
    assert not check.passed and gate["champion"] > gate["challenger"]
    assert gate["champion"] == pytest.approx(1.0, abs=0.01) and gate["challenger"] == 0.5

    forced = sy.promote_model("cancer", 1, "production", force=True, reason="incident 42")
    assert forced.forced and sy.get_model_version("cancer@production").version == 1
    with pytest.raises(InvalidInputError, match="reason"):
        sy.promote_model("cancer", 2, "production", force=True)


def test_signature_and_approval_gates(two_versions: tuple[Any, pd.DataFrame]) -> None:
    sy, frame = two_versions
    wider = frame.assign(region=np.arange(len(frame)) % 3)  # a column cancer@2 never needed
    sy.register_model(
        _log(sy, RandomForestClassifier(5, random_state=0), wider, auc=0.99), "cancer"
    )
    registry = sy.model_registry()
    registry.set_policy(
        "cancer",
        {"production": {"signature_compatible": True}, "staging": {"approval": {"approvers": 1}}},
    )
    sy.promote_model("cancer", 2, "production")
    with pytest.raises(GateFailedError, match="signature_compatible"):
        sy.promote_model("cancer", 3, "production")
    sy.promote_model("cancer", 1, "production")  # same columns: compatible

    with pytest.raises(GateFailedError, match="0 of 1 approval"):
        sy.promote_model("cancer", 2, "staging")
    registry.set_role("carol", "approver")
    sy.configure(replace(sy.settings(), user="carol"))
    sy.model_registry().approve("cancer", 2, "staging", comment="reviewed")
    assert sy.promote_model("cancer", 2, "staging").gates[0]["approvers"] == ["carol"]


def test_roles_are_checked_in_the_domain_code(two_versions: tuple[Any, pd.DataFrame]) -> None:
    from shipyard.store import audit

    sy, _ = two_versions
    registry = sy.model_registry()
    assert registry.identity.role == "admin" and not registry.identity.assigned
    registry.set_role("bob", "viewer")
    registry.set_role("erin", "editor")
    base = sy.settings()

    sy.configure(replace(base, user="bob"))
    head = audit.head(sy.tracker().db)
    with pytest.raises(PermissionDeniedError, match="viewer"):
        sy.promote_model("cancer", 2, "production")
    assert audit.head(sy.tracker().db) == head  # nothing recorded, nothing moved
    assert sy.load_model("cancer@2") is not None  # viewers read

    sy.configure(replace(base, user="erin"))
    sy.promote_model("cancer", 2, "production")
    with pytest.raises(PermissionDeniedError, match="admin"):
        sy.promote_model("cancer", 1, "production", force=True, reason="x")
    with pytest.raises(PermissionDeniedError):
        sy.model_registry().set_policy("cancer", "production: {min_metrics: {a: 1}}")
    with pytest.raises(PermissionDeniedError, match="approver"):
        sy.model_registry().approve("cancer", 2, "production")

    events = audit.list_events(
        sy.tracker().db, entity="cancer", entity_type="model", newest_first=False
    )
    moved = audit.list_events(sy.tracker().db, entity="cancer", action="alias.promote")
    assert [(e.actor, e.after["version"]) for e in moved] == [("erin", 2)]
    assert [e.action for e in events][:3] == ["model.create", "model.register", "model.register"]
    assert audit.verify_chain(sy.tracker().db).ok


def test_bad_references_and_policies_say_what_exists(
    two_versions: tuple[Any, pd.DataFrame],
) -> None:
    sy, _ = two_versions
    with pytest.raises(NotFoundError, match="did you mean 'cancer'"):
        sy.get_model_version("cancr@1")
    with pytest.raises(NotFoundError, match="versions are 1-2"):
        sy.get_model_version("cancer@7")
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        sy.load_model("cancer@production")
    registry = sy.model_registry()
    with pytest.raises(InvalidInputError, match=r"unknown gate 'min_metricz'.*min_metrics"):
        registry.set_policy("cancer", "production: {min_metricz: {valid_roc_auc: 0.9}}")
    assert registry.store.get_policy("cancer") == (None, None)  # nothing stored
    with pytest.raises(InvalidInputError, match="DOI"):
        registry.cite("cancer@1", kind="doi", key="not-a-doi")
    with pytest.raises(NotFoundError, match="no model folder"):
        sy.register_model(sy.get_model_version("cancer@1").run_id, "cancer", path="nope")


def test_gc_keeps_the_files_of_a_registered_model_whose_run_was_deleted(
    two_versions: tuple[Any, pd.DataFrame],
) -> None:
    from shipyard.store.maintenance import gc

    sy, frame = two_versions
    run_id = sy.get_model_version("cancer@2").run_id
    sy.delete_run(run_id)
    tracker = sy.tracker()
    gc(tracker.store, tracker.objects, older_than_s=0)
    X = frame.drop(columns="target")
    assert sy.load_model("cancer@2").predict(X.head(2)).shape == (2,)


def test_lineage_runs_from_the_version_to_its_data(sy: Any) -> None:
    frame = _frame()
    sy.data.add("cancer", frame)
    sy.data.split("cancer@1", method="stratified", target="target", seed=0)
    result = sy.train("cancer@train", "target", models=["linear"], cv=3)
    sy.register_model(result.best_run_id, "cancer")
    graph = sy.model_registry().lineage("cancer@1")
    assert graph["run"]["run_id"] == result.best_run_id
    [data] = graph["datasets"]
    assert data["context"] == "training" and data["parents"][0]["ref"] == "cancer@1"


def test_tags_on_models_and_versions_are_set_kept_and_audited(
    two_versions: tuple[Any, pd.DataFrame],
) -> None:
    from shipyard.store import audit

    sy, _ = two_versions
    store = sy.model_registry().store
    store.set_model_tags("cancer", {"team": "risk", "tier": "1"})
    store.set_model_tags("cancer", {"tier": "2"})
    assert dict(store.get_model("cancer").tags) == {"team": "risk", "tier": "2"}
    store.set_version_tags("cancer@2", {"reviewed": "yes"})
    assert dict(sy.get_model_version("cancer@2").tags) == {"reviewed": "yes"}
    assert sy.get_model_version("cancer@1").tags == {}
    [event] = audit.list_events(sy.tracker().db, entity="cancer@2", action="model.set_tags")
    assert event.after == {"reviewed": "yes"} and event.before == {"reviewed": None}
