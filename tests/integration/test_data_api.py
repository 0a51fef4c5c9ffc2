"""``sy.data`` end to end against a real store (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import (
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    SchemaMismatchError,
)
from shipyard.store.schema import dataset_versions


@pytest.fixture
def data(sy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)
    import shipyard.data as data_api

    yield data_api


def _customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], size=n)
    income = rng.normal(50_000, 12_000, size=n).round(2)
    churn = (rng.random(n) < 0.3).astype(int)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "region": region,
            "income": income,
            "tenure": rng.integers(0, 120, size=n),
            "churn": churn,
        }
    )


def test_add_get_and_deduplicate_a_table(data: Any) -> None:
    df = _customers()
    v1 = data.add("customers", df, description="first pull")
    assert v1.ref == "customers@1"
    assert (v1.num_rows, v1.num_columns) == (400, 5)
    assert v1.schema is not None and {c["name"] for c in v1.schema["columns"]} == set(df.columns)
    assert v1.profile_digest
    assert data.add("customers", df.copy()).ref == "customers@1"  # same content
    changed = df.copy()
    changed.loc[0, "income"] = 1.0
    v2 = data.add("customers", changed)
    assert v2.ref == "customers@2"
    back = data.get("customers@latest").to_pandas()
    pd.testing.assert_frame_equal(back, changed)
    assert [v.version for v in data.log("customers")] == [2, 1]
    assert Path("expectations/customers.yaml").is_file()


def test_files_that_cannot_be_read_give_clear_errors_and_add_nothing(
    data: Any, tmp_path: Path
) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad.csv").write_text('a,b\n1,2\n3,"4\n5,6,7,8\n')
    (tmp_path / "latin.csv").write_bytes("name\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "mixed.csv").write_text("a\n1\n2\n")
    with pytest.raises(InvalidInputError, match="no such file"):
        data.add("x", tmp_path / "missing.csv")
    with pytest.raises(InvalidInputError, match="empty"):
        data.add("x", tmp_path / "empty.csv")
    with pytest.raises(InvalidInputError, match=r"well-formed|no columns"):
        data.add("x", tmp_path / "bad.csv")
    with pytest.raises(InvalidInputError, match="UTF-8"):
        data.add("x", tmp_path / "latin.csv")
    mixed = pd.DataFrame({"a": [1, "two", 3.0]}, dtype=object)
    with pytest.raises(SchemaMismatchError, match="a"):
        data.add("x", mixed)
    with pytest.raises(NotFoundError):
        data.log("x")  # nothing was recorded


def test_validate_against_the_saved_expectations(data: Any) -> None:
    df = _customers()
    data.add("customers", df)
    assert data.validate(df, expectations="customers").passed
    bad = df.copy()
    bad.loc[[3, 7], "region"] = "atlantis"
    bad.loc[5, "customer_id"] = bad.loc[6, "customer_id"]  # duplicate id
    report = data.validate(bad, expectations="customers")
    assert not report.passed
    failed = {(r.column, r.bad_count) for r in report.results if not r.passed}
    assert ("region", 2) in failed
    assert any(col == "customer_id" for col, _ in failed)


def test_runs_record_the_versions_they_read(sy: Any, data: Any) -> None:
    v = data.add("customers", _customers())
    with sy.start_run() as run:
        sy.log_input(v, context="training")
    assert [(x.ref, ctx) for x, ctx in sy.get_run_inputs(run.run_id)] == [
        ("customers@1", "training")
    ]


def test_folders_are_versioned_file_by_file(data: Any, tmp_path: Path) -> None:
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    for i in range(20):
        (root / "cats" / f"{i}.bin").write_bytes(bytes([i]) * (100 + i))
    v1 = data.add("images", root)
    assert (v1.kind, v1.num_files) == ("files", 20)
    assert data.add("images", root).ref == "images@1"
    status = data.status("images", root)
    assert not (status.added or status.modified or status.deleted)
    (root / "cats" / "0.bin").write_bytes(b"changed")
    (root / "cats" / "new.bin").write_bytes(b"new")
    (root / "cats" / "1.bin").unlink()
    status = data.status("images", root)
    assert list(status.modified) == ["cats/0.bin"]
    assert list(status.added) == ["cats/new.bin"]
    assert list(status.deleted) == ["cats/1.bin"]
    out = data.get("images@1").checkout(tmp_path / "out")
    assert (out / "cats" / "0.bin").read_bytes() == bytes([0]) * 100


def test_split_makes_aliased_versions_with_lineage_and_no_leakage(data: Any) -> None:
    data.add("customers", _customers())
    made, leakage = data.split(
        "customers@1", method="stratified", target="churn", test=0.2, valid=0.1, seed=1
    )
    assert set(made) == {"train", "valid", "test"}
    assert leakage.ok
    assert sum(v.num_rows for v in made.values()) == 400
    for part, version in made.items():
        assert version.parents == ("customers@1",)
        assert part in data.get(f"customers@{part}").version.aliases
    rates = [data.get(f"customers@{p}").to_pandas()["churn"].mean() for p in made]
    assert max(rates) - min(rates) < 0.05
    # The parts are versions of customers too, but @latest stays the data that was split.
    assert data.get("customers@latest").ref == "customers@1"
    assert data.get("customers").to_pandas().shape[0] == 400
    latest = [v.ref for v in data.log("customers") if "latest" in v.aliases]
    assert latest == ["customers@1"]
    assert [row for row in data.list_datasets() if row[0] == "customers"] == [("customers", 4, 1)]
    newer = data.add("customers", _customers().head(300))
    assert data.get("customers@latest").ref == newer.ref == "customers@5"


def test_clean_adds_a_version_and_a_reusable_sklearn_cleaner(sy: Any, data: Any) -> None:
    df = _customers()
    df.loc[::10, "income"] = np.nan
    data.add("customers", df)
    spec = {
        "steps": [
            {"impute": {"columns": ["income"], "strategy": "median"}},
            {"drop_columns": {"columns": ["customer_id"]}},
        ]
    }
    version, _report = data.clean("customers@1", spec)
    assert version.parents == ("customers@1",)
    cleaned = data.get(version.ref).to_pandas()
    assert "customer_id" not in cleaned.columns and cleaned["income"].notna().all()
    assert "cleaner" in version.tags
    import skops.io

    blob = sy.tracker().objects.get_bytes(version.tags["cleaner"])
    cleaner = skops.io.loads(blob, trusted=skops.io.get_untrusted_types(data=blob))
    out = pd.DataFrame(cleaner.transform(df.head(20)), columns=cleaner.get_feature_names_out())
    assert "customer_id" not in out.columns
    assert out["income"].astype(float).notna().all()


def test_diff_reports_schema_rows_and_distribution_changes(data: Any) -> None:
    df = _customers()
    data.add("customers", df)
    newer = df.copy().iloc[:300]
    newer["income"] = newer["income"] * 2
    newer["score"] = 1.0
    data.add("customers", newer)
    d = data.diff("customers@1", "customers@2")
    assert (d.old_rows, d.new_rows) == (400, 300)
    assert d.added_columns == ("score",)
    by_column = {c.column: c for c in d.columns}
    assert by_column["income"].statistic > 0.5
    assert by_column["region"].statistic < 0.1


def test_profile_and_graph_of_a_version(data: Any) -> None:
    df = _customers()
    df["leak"] = df["churn"]
    data.add("customers", df)
    prof = data.profile("customers@1")
    assert {c.name for c in prof.columns} == set(df.columns)
    g = data.graph("customers@1", target="churn")
    suspects = " ".join(str(s) for s in g.leakage_suspects)
    assert "leak" in suspects and "customer_id" in suspects


def test_doctor_and_gc_keep_dataset_objects(sy: Any, data: Any, tmp_path: Path) -> None:
    from shipyard.store.maintenance import doctor, gc

    data.add("customers", _customers())
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.txt").write_text("a")
    data.add("files", root)
    tracker = sy.tracker()
    assert doctor(tracker.store, tracker.objects).consistent
    assert gc(tracker.store, tracker.objects, older_than_s=0).objects_deleted == ()
    assert data.get("files@1").checkout(tmp_path / "back").joinpath("a.txt").read_text() == "a"
    pd.testing.assert_frame_equal(data.get("customers").to_pandas(), _customers())

    # The small file lives in a pack: losing the pack is reported against the version.
    from shipyard.store.manifest import decode_stored_manifest

    stored = data.get("files@1").version.object_digest
    _, packs = decode_stored_manifest(tracker.objects.get_bytes(stored))
    tracker.objects.delete(packs[0])
    report = doctor(tracker.store, tracker.objects)
    assert [(m.run_id, m.path) for m in report.missing] == [("files@1", "(pack 0: 1 file)")]


def test_gc_stops_at_a_manifest_it_cannot_read(sy: Any, data: Any, tmp_path: Path) -> None:
    from shipyard.store.maintenance import doctor, gc
    from shipyard.store.manifest import decode_stored_manifest

    root = tmp_path / "files"
    root.mkdir()
    (root / "a.txt").write_text("a")
    version = data.add("files", root)
    tracker = sy.tracker()
    _, packs = decode_stored_manifest(tracker.objects.get_bytes(version.object_digest))
    future = b'{"format":"shipyard.folder-manifest","version":99,"files":[]}'
    newer = tracker.objects.put_bytes(future).digest
    tracker.store.db.write(  # as if a newer shipyard had written this version
        lambda conn: conn.execute(dataset_versions.update().values(object_digest=newer))
    )
    for check in (doctor, lambda s, o: gc(s, o, older_than_s=0)):
        with pytest.raises(InvalidStateError, match=r"files@1 .*cannot be read.*upgrade"):
            check(tracker.store, tracker.objects)
    assert tracker.objects.exists(packs[0]), "gc deleted nothing"


def test_table_and_folder_commands_say_which_is_which(data: Any, tmp_path: Path) -> None:
    data.add("customers", _customers())
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.bin").write_bytes(b"a")
    data.add("images", tmp_path / "imgs")
    with pytest.raises(InvalidStateError, match=r"customers@1 is a table.*shipyard data diff"):
        data.status("customers", tmp_path / "imgs")
    with pytest.raises(InvalidStateError, match=r"images@1 is a folder.*shipyard data status"):
        data.diff("customers@1", "images@1")
    with pytest.raises(InvalidStateError, match=r"images@1 is a folder.*shipyard data checkout"):
        data.get("images@1").to_pandas()
