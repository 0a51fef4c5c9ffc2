"""The audit chain: changes append events in their own transaction; any edit shows."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text

from shipyard.core.entities import RunStatus
from shipyard.store import audit
from shipyard.store.db import Database
from shipyard.store.tracking_store import SqlTrackingStore


@pytest.fixture
def store(db_url: str) -> SqlTrackingStore:
    db = Database(db_url)
    db.ensure_schema()
    made = SqlTrackingStore(db, actor="alice")
    exp = made.create_experiment("churn")
    for _ in range(3):
        ref = made.create_run(experiment_id=exp.experiment_id, name="fit")
        made.end_run(ref.pk, RunStatus.FINISHED)
    yield made
    db.dispose()


def test_changes_append_chained_events_with_actor_and_before_after(store: SqlTrackingStore) -> None:
    events = audit.list_events(store.db, newest_first=False)
    assert [e.action for e in events] == ["experiment.create"] + ["run.create", "run.end"] * 3
    assert {e.actor for e in events} == {"alice"}
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    end = events[2]
    assert end.before == {"status": "RUNNING"} and end.after == {"status": "FINISHED"}
    check = audit.verify_chain(store.db)
    assert (
        check.ok and check.events == 7 and (check.head_seq, check.head_hash) == audit.head(store.db)
    )


def test_entity_filter_matches_the_name_and_its_versions(store: SqlTrackingStore) -> None:
    [created] = audit.list_events(store.db, entity="churn")
    assert created.action == "experiment.create"
    assert audit.list_events(store.db, entity="chur") == []


def _exec(db: Database, sql: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql))


def test_an_edited_field_is_found_at_its_event(store: SqlTrackingStore) -> None:
    _exec(store.db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")
    check = audit.verify_chain(store.db)
    assert not check.ok and check.first_bad_seq == 4
    assert "event 4" in check.problems[0] and "edited" in check.problems[0]


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(store: SqlTrackingStore) -> None:
    [event] = [e for e in audit.list_events(store.db) if e.seq == 3]
    forged = audit.event_hash(
        event.prev_hash,
        (3, event.at, "mallory", event.action, event.entity_type, event.entity,
         audit.canonical_json(dict(event.before)), audit.canonical_json(dict(event.after))),
    )  # fmt: skip
    _exec(store.db, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 3")
    check = audit.verify_chain(store.db)
    assert not check.ok and check.first_bad_seq == 4
    assert "does not follow event 3" in check.problems[0]


def test_a_removed_event_is_named(store: SqlTrackingStore) -> None:
    _exec(store.db, "DELETE FROM audit_events WHERE seq = 5")
    check = audit.verify_chain(store.db)
    assert not check.ok and check.first_bad_seq == 6
    assert "event 5 is missing" in check.problems[0]


def test_reordered_events_are_found(store: SqlTrackingStore) -> None:
    # swap the contents of events 2 and 3 (keeping their sequence numbers)
    _exec(store.db, "UPDATE audit_events SET seq = -2 WHERE seq = 2")
    _exec(store.db, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
    _exec(store.db, "UPDATE audit_events SET seq = 3 WHERE seq = -2")
    check = audit.verify_chain(store.db)
    assert not check.ok and check.first_bad_seq == 2


def test_events_cut_from_the_end_are_caught_by_an_anchor(store: SqlTrackingStore) -> None:
    anchor = audit.head(store.db)
    _exec(store.db, f"DELETE FROM audit_events WHERE seq = {anchor[0]}")
    assert audit.verify_chain(store.db).ok  # a shorter chain is still a chain
    check = audit.verify_chain(store.db, anchor=anchor)
    assert not check.ok and "removed from the end" in check.problems[0]


def test_a_failed_change_appends_no_event(store: SqlTrackingStore) -> None:
    from shipyard.core.errors import AlreadyExistsError

    before = audit.head(store.db)
    with pytest.raises(AlreadyExistsError):
        store.create_experiment("churn")
    assert audit.head(store.db) == before
