"""``put_files``: many objects at once, deduplicated, durable before visible, atomic on error."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.store import objects as objects_module
from shipyard.store.objects import (
    _FSYNC_EACH_MAX,
    CHUNK,
    FsspecObjectStore,
    LocalObjectStore,
    ObjectInfo,
    hash_bytes,
)


def _make_files(root: Path, sizes: list[int], *, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = root / f"f{i:04d}.bin"
        path.write_bytes(rng.randbytes(size))
        paths.append(path)
    return paths


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _temp_files(store: LocalObjectStore) -> list[Path]:
    tmp = store.root / ".tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def _count_copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every source file ``put_files`` copies (still copying it)."""
    copied: list[str] = []
    original = objects_module._copy_hashing

    def spy(src: str, tmp: str, *, fsync: bool) -> tuple[str, int]:
        copied.append(src)
        return original(src, tmp, fsync=fsync)

    monkeypatch.setattr(objects_module, "_copy_hashing", spy)
    return copied


# -- local folder -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, _FSYNC_EACH_MAX + 40])
@pytest.mark.parametrize("with_digests", [False, True])
def test_stores_every_file_and_returns_infos_in_order(
    tmp_path: Path, n: int, with_digests: bool
) -> None:
    sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17][:n] + [100 + i for i in range(n)]
    paths = _make_files(tmp_path / "src", sizes[:n])
    expected = [ObjectInfo(hash_bytes(p.read_bytes()), p.stat().st_size) for p in paths]
    store = LocalObjectStore(tmp_path / "objects")

    digests = [e.digest for e in expected] if with_digests else None
    infos = store.put_files(paths, digests=digests, workers=3)

    assert infos == expected
    for path, info in zip(paths, infos, strict=True):
        assert store.get_bytes(info.digest) == path.read_bytes()
    assert sorted(d for d, _ in store.iter_objects()) == sorted({e.digest for e in expected})
    assert _temp_files(store) == []


def test_identical_files_are_stored_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"same bytes")
    (tmp_path / "b").write_bytes(b"same bytes")
    (tmp_path / "c").write_bytes(b"other bytes")
    store = LocalObjectStore(tmp_path / "objects")

    infos = store.put_files([tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "a"])

    assert infos[0] == infos[1] == infos[3] != infos[2]
    assert len(list(store.iter_objects())) == 2
    assert _temp_files(store) == []


def test_existing_objects_are_not_read_again_and_their_mtime_is_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _make_files(tmp_path / "src", [10, 20, 30])
    store = LocalObjectStore(tmp_path / "objects")
    first = store.put_files(paths[:2])
    old = time.time() - 7200
    for info in first:
        os.utime(store.root / info.digest[:2] / info.digest[2:], (old, old))
    digests = [hash_bytes(p.read_bytes()) for p in paths]
    copied = _count_copies(monkeypatch)

    infos = store.put_files(paths, digests=digests)

    assert copied == [str(paths[2])], "only the missing object is read"
    assert [i.digest for i in infos] == digests
    assert [i.size for i in infos] == [10, 20, 30]
    for info in first:
        mtime = (store.root / info.digest[:2] / info.digest[2:]).stat().st_mtime
        assert mtime > old + 3600, "a reused object's mtime is refreshed for gc"


def test_duplicate_digests_are_copied_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").write_bytes(b"twice")
    (tmp_path / "b").write_bytes(b"twice")
    store = LocalObjectStore(tmp_path / "objects")
    digest = hash_bytes(b"twice")
    copied = _count_copies(monkeypatch)

    infos = store.put_files([tmp_path / "a", tmp_path / "b"], digests=[digest, digest])

    assert infos == [ObjectInfo(digest, 5), ObjectInfo(digest, 5)]
    assert len(copied) == 1


def test_a_file_that_no_longer_matches_its_digest_is_refused(tmp_path: Path) -> None:
    paths = _make_files(tmp_path / "src", [100, 200])
    digests = [hash_bytes(p.read_bytes()) for p in paths]
    paths[1].write_bytes(b"changed after it was hashed")
    store = LocalObjectStore(tmp_path / "objects")

    with pytest.raises(InvalidInputError, match="changed after it was hashed") as caught:
        store.put_files(paths, digests=digests)

    assert str(paths[1]) in str(caught.value)
    assert not store.exists(digests[1])
    assert not store.exists(hash_bytes(b"changed after it was hashed"))
    assert _temp_files(store) == []


@pytest.mark.parametrize("n", [5, _FSYNC_EACH_MAX + 40])
def test_a_rename_that_fails_midway_leaves_only_complete_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    paths = _make_files(tmp_path / "src", [1000 + i for i in range(n)])
    store = LocalObjectStore(tmp_path / "objects")
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("simulated crash while renaming")
        real_replace(src, dst)

    with monkeypatch.context() as mp:
        mp.setattr(objects_module.os, "replace", flaky_replace)
        with pytest.raises(OSError, match="simulated crash"):
            store.put_files(paths, workers=1)

    assert _temp_files(store) == [], "a temporary file was left behind"
    present = [d for d, _ in store.iter_objects()]
    assert len(present) == 2, "objects renamed before the failure stay, nothing else appears"
    for digest in present:
        assert store.verify(digest), "an object visible under its name is complete"
    # Objects left behind are complete, so the next attempt finishes the job.
    infos = store.put_files(paths)
    assert sorted(d for d, _ in store.iter_objects()) == sorted(i.digest for i in infos)
    assert _temp_files(store) == []


@pytest.mark.parametrize(
    ("failing", "n"),
    [("_sync_filesystem", _FSYNC_EACH_MAX + 1), ("fsync", 3)],
)
def test_nothing_is_visible_before_the_bytes_are_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, n: int
) -> None:
    paths = _make_files(tmp_path / "src", [50] * n, seed=1)
    store = LocalObjectStore(tmp_path / "objects")

    def crash(*_args: Any) -> None:
        raise OSError("simulated failure to make the bytes durable")

    target = objects_module if failing == "_sync_filesystem" else objects_module.os
    with monkeypatch.context() as mp:
        mp.setattr(target, failing, crash)
        with pytest.raises(OSError, match="simulated failure"):
            store.put_files(paths)

    assert list(store.iter_objects()) == []
    assert _temp_files(store) == []


def test_a_source_that_cannot_be_read_stores_nothing(tmp_path: Path) -> None:
    paths = _make_files(tmp_path / "src", [10, 20])
    store = LocalObjectStore(tmp_path / "objects")

    with pytest.raises(FileNotFoundError):
        store.put_files([*paths, tmp_path / "missing.bin"], workers=1)

    assert list(store.iter_objects()) == []
    assert _temp_files(store) == []


def test_many_objects_share_one_sync_few_are_fsynced_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {"sync": 0, "fsync": 0}
    real_fsync = os.fsync

    def count_sync(_path: Path) -> None:
        counts["sync"] += 1

    def count_fsync(fd: int) -> None:
        counts["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(objects_module, "_sync_filesystem", count_sync)
    monkeypatch.setattr(objects_module.os, "fsync", count_fsync)
    store = LocalObjectStore(tmp_path / "objects")

    store.put_files(_make_files(tmp_path / "many", [64] * (_FSYNC_EACH_MAX + 1), seed=2))
    assert counts == {"sync": 2, "fsync": 0}, "one sync for the bytes, one for the names"

    counts.update(sync=0, fsync=0)
    store.put_files(_make_files(tmp_path / "few", [64] * 3, seed=3))
    assert counts["sync"] == 0
    assert counts["fsync"] >= 3, "each file, then the folders holding the new names"


def test_nothing_to_store(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    assert store.put_files([]) == []
    assert store.put_files([], digests=[]) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digests": ["a" * 64, "b" * 64]}, "one digest per path"),
        ({"digests": ["not-a-digest"]}, "64 lowercase hex"),
        ({"digests": "a" * 64}, "sequence of digests"),
        ({"workers": 0}, "workers must be"),
        ({"workers": True}, "workers must be"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    (tmp_path / "a").write_bytes(b"a")
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(InvalidInputError, match=message):
        store.put_files([tmp_path / "a"], **kwargs)


def test_a_single_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    with pytest.raises(InvalidInputError, match="single path"):
        LocalObjectStore(tmp_path / "objects").put_files(str(tmp_path / "a"))  # type: ignore[arg-type]


# -- fsspec (the in-memory filesystem stands in for S3) ------------------------------------


@pytest.fixture
def memory_store() -> FsspecObjectStore:
    return FsspecObjectStore(f"memory://put-files-{uuid.uuid4().hex}")


def _count_uploads(store: FsspecObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    uploaded: list[str] = []
    original: Callable[..., Any] = store.fs.put_file

    def spy(lpath: str, rpath: str, **kwargs: Any) -> Any:
        uploaded.append(lpath)
        return original(lpath, rpath, **kwargs)

    monkeypatch.setattr(store.fs, "put_file", spy)
    return uploaded


@pytest.mark.parametrize("n", [4, 100])  # one exists() per digest, or one listing per prefix
def test_fsspec_uploads_only_missing_objects(
    tmp_path: Path, memory_store: FsspecObjectStore, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    paths = _make_files(tmp_path / "src", [30 + i for i in range(n)], seed=4)
    half = n // 2
    memory_store.put_files(paths[:half])
    uploaded = _count_uploads(memory_store, monkeypatch)

    infos = memory_store.put_files(paths, digests=[hash_bytes(p.read_bytes()) for p in paths])

    assert sorted(uploaded) == sorted(str(p) for p in paths[half:])
    for path, info in zip(paths, infos, strict=True):
        data = path.read_bytes()
        assert info == ObjectInfo(blake3.blake3(data).hexdigest(), len(data))
        assert memory_store.get_bytes(info.digest) == data


def test_fsspec_refuses_a_file_that_no_longer_matches_its_digest(
    tmp_path: Path, memory_store: FsspecObjectStore
) -> None:
    (tmp_path / "a").write_bytes(b"before")
    digest = hash_bytes(b"before")
    (tmp_path / "a").write_bytes(b"after!")
    with pytest.raises(InvalidInputError, match="changed after it was hashed"):
        memory_store.put_files([tmp_path / "a"], digests=[digest])
    assert not memory_store.exists(digest)
    assert list(memory_store.iter_objects()) == []
