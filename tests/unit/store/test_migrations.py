"""A new store gets the same schema whether it is created directly or by replaying migrations."""

from __future__ import annotations

from sqlalchemy import text

from shipyard.store.db import HEAD_REVISION, Database
from shipyard.store.schema import metadata


def _diff(db: Database) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_created_and_migrated_schemas_match_the_models(db_url: str) -> None:
    created = Database(db_url)
    created.ensure_schema()
    assert created.current_revision() == HEAD_REVISION
    assert _diff(created) == []
    with created.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DROP TABLE "{table.name}"'))
        conn.execute(text("DROP TABLE alembic_version"))
    created.dispose()

    migrated = Database(db_url)
    migrated.upgrade_with_alembic()
    assert migrated.current_revision() == HEAD_REVISION
    assert _diff(migrated) == []
    migrated.dispose()


def test_opening_twice_is_a_no_op(db_url: str) -> None:
    first = Database(db_url)
    first.ensure_schema()
    first.dispose()
    second = Database(db_url)
    second.ensure_schema()
    assert second.current_revision() == HEAD_REVISION
    second.dispose()


def test_an_older_store_is_upgraded_on_open_without_losing_runs(db_url: str) -> None:
    old = Database(db_url)
    old.upgrade_with_alembic("0001")
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (name, lifecycle_stage, description, created_at,"
                " updated_at) VALUES ('kept', 'active', '', 1, 1)"
            )
        )
    old.dispose()

    db = Database(db_url)
    db.ensure_schema()  # what every open does
    assert db.current_revision() == HEAD_REVISION
    with db.engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM experiments"))]
        conn.execute(text("SELECT count(*) FROM dataset_versions")).scalar_one()
    assert names == ["kept"]
    assert _diff(db) == []
    db.dispose()
