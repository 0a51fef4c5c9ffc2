"""Dataset records on SQLite and PostgreSQL: numbering, dedup, aliases, tags, lineage, inputs."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.store.dataset_store import SqlDatasetStore, parse_ref
from shipyard.store.db import Database
from shipyard.store.tracking_store import SqlTrackingStore


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[SqlDatasetStore, SqlTrackingStore]]:
    db = Database(db_url)
    yield SqlDatasetStore(db), SqlTrackingStore(db)
    db.dispose()


def _add(store: SqlDatasetStore, name: str, digest: str, **kw: object) -> tuple[object, bool]:
    return store.add_version(
        name, digest=digest * 64 if len(digest) == 1 else digest, kind="table",
        object_digest="f" * 64, source="test", size_bytes=10, num_rows=3, num_columns=2, **kw,
    )  # type: ignore[arg-type]  # fmt: skip


def test_versions_are_numbered_and_identical_content_is_deduplicated(
    stores: tuple[SqlDatasetStore, SqlTrackingStore],
) -> None:
    ds, _ = stores
    v1, created1 = _add(ds, "customers", "a")
    v2, created2 = _add(ds, "customers", "b")
    again, created3 = _add(ds, "customers", "a")
    assert (created1, created2, created3) == (True, True, False)
    assert (v1.version, v2.version, again.version) == (1, 2, 1)  # type: ignore[attr-defined]
    assert ds.resolve("customers").version == 2
    assert ds.resolve("customers@latest").aliases == ("latest",)
    assert ds.resolve("customers@1").ref == "customers@1"
    assert [v.version for v in ds.list_versions("customers")] == [2, 1]
    assert ds.list_datasets() == [("customers", 2, 2)]


def test_aliases_tags_and_lineage(stores: tuple[SqlDatasetStore, SqlTrackingStore]) -> None:
    ds, _ = stores
    parent, _ = _add(ds, "raw", "a")
    child, _ = _add(ds, "clean", "b", parents=[parent], step="clean", tags={"owner": "ana"})
    assert child.parents == ("raw@1",)  # type: ignore[attr-defined]
    assert child.tags == {"owner": "ana"}  # type: ignore[attr-defined]
    assert [c.ref for c in ds.children(parent)] == ["clean@1"]  # type: ignore[arg-type]
    ds.set_alias("raw@1", "train")
    _add(ds, "raw", "c")
    assert ds.resolve("raw@train").version == 1
    assert ds.resolve("raw@latest").version == 2
    ds.set_alias("raw@2", "train")  # moves
    assert ds.resolve("raw@train").version == 2
    assert set(ds.resolve("raw@2").aliases) == {"latest", "train"}
    assert ds.set_tags("raw@2", {"quality": "ok"}).tags == {"quality": "ok"}
    with pytest.raises(InvalidInputError, match="reserved"):
        ds.set_alias("raw@1", "latest")
    ds.remove_alias("raw", "train")
    with pytest.raises(NotFoundError, match="no version 'train'"):
        ds.resolve("raw@train")


def test_run_inputs_record_which_versions_a_run_read(
    stores: tuple[SqlDatasetStore, SqlTrackingStore],
) -> None:
    ds, tracking = stores
    version, _ = _add(ds, "customers", "a")
    exp = tracking.create_experiment("e")
    ref = tracking.create_run(experiment_id=exp.experiment_id, name="r")
    ds.log_input(ref.pk, version, context="training")  # type: ignore[arg-type]
    ds.log_input(ref.pk, version, context="training")  # type: ignore[arg-type]  # no-op
    inputs = ds.run_inputs(ref.pk)
    assert [(v.ref, c) for v, c in inputs] == [("customers@1", "training")]
    assert ds.runs_reading(version) == [ref.run_id]  # type: ignore[arg-type]


def test_unknown_names_and_bad_references_are_clear(
    stores: tuple[SqlDatasetStore, SqlTrackingStore],
) -> None:
    ds, _ = stores
    with pytest.raises(NotFoundError, match="shipyard data add"):
        ds.resolve("nope")
    _add(ds, "customers", "a")
    with pytest.raises(NotFoundError, match="customers@1"):
        ds.resolve("customers@7")
    for bad in ("", "@3", "customers@", "a b", "x/../y"):
        with pytest.raises(InvalidInputError):
            parse_ref(bad)


def test_concurrent_adds_never_share_a_number(
    stores: tuple[SqlDatasetStore, SqlTrackingStore],
) -> None:
    ds, _ = stores
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            _add(ds, "shared", f"{i:064x}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(v.version for v in ds.list_versions("shared")) == list(range(1, 9))
