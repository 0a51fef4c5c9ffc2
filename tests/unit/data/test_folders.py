"""Folder manifests, the file-hash cache, scans, stores and status checks."""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.validation import check_artifact_path, is_normal_artifact_path
from shipyard.data import folder_store, folders
from shipyard.data.folder_store import PACK_FILE_MAX, checkout_folder, store_folder
from shipyard.data.folders import (
    CacheEntry,
    FileEntry,
    FolderChanges,
    FolderManifest,
    HashCache,
    folder_status,
    scan_folder,
)
from shipyard.store import objects as objects_module
from shipyard.store.manifest import (
    LOOSE,
    StoredFile,
    decode_manifest,
    decode_stored_manifest,
    encode_manifest,
    encode_stored_manifest,
    manifest_entries,
)
from shipyard.store.objects import CHUNK, CorruptObjectError, LocalObjectStore, hash_bytes

DIGEST_A = hash_bytes(b"a")
DIGEST_B = hash_bytes(b"b")


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache files written moments ago too (real scans wait 2 s; see test_recent_files...)."""
    monkeypatch.setattr(folders, "RACY_WINDOW_NS", -3600 * 10**9)


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the scans open to hash (the files are still hashed)."""
    calls: list[str] = []
    original = folders._hash_file

    def spy(path: str, size: int, root: str) -> str:
        calls.append(path)
        return original(path, size, root)

    monkeypatch.setattr(folders, "_hash_file", spy)
    return calls


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[HashCache]:
    with HashCache(tmp_path / "cache" / "file-hashes.db") as c:
        yield c


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _tree(seed: int = 0, n: int = 30) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {
        f"d{i % 4}/sub{i % 3}/file-{i}.bin": rng.randbytes(rng.randint(0, 3000)) for i in range(n)
    }
    files["top.txt"] = b"top"
    return files


def _expected(files: dict[str, bytes]) -> FolderManifest:
    return FolderManifest(
        tuple(FileEntry(rel, len(d), blake3.blake3(d).hexdigest()) for rel, d in files.items())
    )


def _set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def _wait_for_new_timestamp(path: Path) -> None:
    """Sleep until the filesystem clock has moved past ``path``'s timestamps."""
    stamp = max(path.stat().st_mtime_ns, path.stat().st_ctime_ns)
    while time.time_ns() < stamp + 50_000_000:
        time.sleep(0.01)


# -- manifests ------------------------------------------------------------------------------


def test_manifest_encoding_is_canonical_and_pinned() -> None:
    manifest = FolderManifest((FileEntry("b/x.txt", 1, DIGEST_B), FileEntry("a.txt", 1, DIGEST_A)))

    assert manifest.to_bytes() == (
        b'{"format":"shipyard.folder-manifest","version":1,"files":'
        b'[["a.txt",1,"' + DIGEST_A.encode() + b'"],["b/x.txt",1,"' + DIGEST_B.encode() + b'"]]}'
    )
    assert manifest.digest == blake3.blake3(manifest.to_bytes()).hexdigest()
    assert FolderManifest.from_bytes(manifest.to_bytes()) == manifest
    assert manifest.total_size == 2
    assert len(manifest) == 2


def test_manifest_bytes_are_what_the_store_reads(tmp_path: Path) -> None:
    files = _tree(n=20)
    manifest = scan_folder(_write_tree(tmp_path / "data", files), cache=None)

    assert manifest.to_bytes() == encode_manifest(
        (rel, len(data), hash_bytes(data)) for rel, data in files.items()
    )
    assert decode_manifest(manifest.to_bytes()) == [
        (e.path, e.size, e.digest) for e in manifest.entries
    ]


def test_manifest_digest_does_not_depend_on_entry_order() -> None:
    entries = [FileEntry(f"dir{i % 5}/f{i}", i, hash_bytes(bytes([i]))) for i in range(50)]
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)

    a, b = FolderManifest(tuple(entries)), FolderManifest(tuple(shuffled))

    assert a == b
    assert a.digest == b.digest
    assert [e.path for e in a.entries] == sorted(e.path for e in entries)


def test_manifest_non_ascii_paths_round_trip() -> None:
    manifest = FolderManifest((FileEntry("données/été.csv", 1, DIGEST_A),))
    assert manifest.to_bytes().isascii()
    assert FolderManifest.from_bytes(manifest.to_bytes()) == manifest


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((FileEntry("../escape", 1, DIGEST_A),), "outside"),
        ((FileEntry("/abs", 1, DIGEST_A),), "absolute"),
        ((FileEntry("a//b", 1, DIGEST_A),), "not normalised; write it as 'a/b'"),
        ((FileEntry("./a", 1, DIGEST_A),), "not normalised"),
        ((FileEntry("a\\b", 1, DIGEST_A),), "backslash"),
        ((FileEntry("", 1, DIGEST_A),), "non-empty"),
        ((FileEntry("a", -1, DIGEST_A),), "size"),
        ((FileEntry("a", 1, "xyz"),), "64 lowercase hex"),
        ((FileEntry("a", 1, DIGEST_A), FileEntry("a", 1, DIGEST_B)), "twice"),
    ],
)
def test_manifest_refuses_bad_entries(entries: tuple[FileEntry, ...], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        FolderManifest(entries)


@pytest.mark.parametrize(
    "path",
    [
        "a", "a/b", "a b/c", "é/ü", "..a/b..", ".hidden/x", "a/.", "a/..", "./a", "../a", "a/./b",
        "a//b", "a/", "/a", "C:x", "c:/x", "1:x", " ", " /a", "a/ ", "a\\b", "a\x00b", "",
        "x" * 1024, "x" * 1025, "a/" * 400 + "b",
    ],
)  # fmt: skip
def test_manifest_paths_are_checked_exactly_as_the_store_checks_them(path: str) -> None:
    try:
        accepted = check_artifact_path(path) == path
    except InvalidInputError:
        accepted = False
    assert is_normal_artifact_path(path) <= accepted, "the fast path accepted a bad path"
    if accepted:
        assert FolderManifest((FileEntry(path, 1, DIGEST_A),)).entries[0].path == path
    else:
        with pytest.raises(InvalidInputError):
            FolderManifest((FileEntry(path, 1, DIGEST_A),))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "format"),
        (json.dumps({"format": "other"}).encode(), "format"),
        (
            json.dumps({"format": "shipyard.folder-manifest", "version": 99, "files": []}).encode(),
            "version 99",
        ),
        (json.dumps({"format": "shipyard.folder-manifest", "version": 1}).encode(), "'files'"),
        (
            json.dumps(
                {"format": "shipyard.folder-manifest", "version": 1, "files": [["a", 1]]}
            ).encode(),
            "path, size, digest",
        ),
        (
            json.dumps(
                {
                    "format": "shipyard.folder-manifest",
                    "version": 1,
                    "files": [["../a", 1, DIGEST_A]],
                }
            ).encode(),
            "'..'",
        ),
    ],
)
def test_manifest_from_bytes_refuses_what_is_not_a_manifest(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        FolderManifest.from_bytes(data)


def test_manifest_diff() -> None:
    old = FolderManifest(
        (
            FileEntry("same", 1, DIGEST_A),
            FileEntry("changed", 1, DIGEST_A),
            FileEntry("gone", 1, DIGEST_A),
        )
    )
    new = FolderManifest(
        (
            FileEntry("same", 1, DIGEST_A),
            FileEntry("changed", 1, DIGEST_B),
            FileEntry("new", 1, DIGEST_A),
        )
    )

    changes = old.diff(new)

    assert changes == FolderChanges(added=("new",), modified=("changed",), deleted=("gone",))
    assert changes
    assert not old.diff(old)
    assert new.diff(old) == FolderChanges(added=("gone",), modified=("changed",), deleted=("new",))


# -- scanning -------------------------------------------------------------------------------


def test_scan_matches_blake3_of_every_file_on_many_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders, "BIG_FILE", 2 * CHUNK)  # exercise blake3's own threads too
    files = _tree(n=600)
    rng = random.Random(7)
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17):
        files[f"sizes/{size}.bin"] = rng.randbytes(size)
    root = _write_tree(tmp_path / "data", files)

    manifest = scan_folder(root, cache=None, workers=4)

    assert manifest == _expected(files)
    assert scan_folder(root, cache=None, workers=1) == manifest


def test_scan_digest_is_the_same_whatever_the_creation_order(tmp_path: Path) -> None:
    files = _tree(seed=3)
    items = list(files.items())
    first = _write_tree(tmp_path / "one", dict(items))
    second = _write_tree(tmp_path / "two", dict(reversed(items)))

    a = scan_folder(first, cache=None)
    b = scan_folder(second, cache=None)

    assert a.digest == b.digest == _expected(files).digest
    assert scan_folder(first, cache=None).digest == a.digest  # and across runs


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_folder_is_scanned_again_without_reading_any_file(
    tmp_path: Path, cache: HashCache, hash_calls: list[str]
) -> None:
    files = _tree(n=200)
    root = _write_tree(tmp_path / "data", files)
    first = scan_folder(root, cache=cache)
    assert len(hash_calls) == len(files)
    hash_calls.clear()

    second = scan_folder(root, cache=cache)

    assert hash_calls == []
    assert second == first == _expected(files)


@pytest.mark.usefixtures("no_racy_window")
def test_cache_survives_a_new_instance(tmp_path: Path, hash_calls: list[str]) -> None:
    root = _write_tree(tmp_path / "data", _tree())
    db = tmp_path / "cache" / "file-hashes.db"
    with HashCache(db) as first_cache:
        first = scan_folder(root, cache=first_cache)
    hash_calls.clear()

    with HashCache(db) as second_cache:
        assert scan_folder(root, cache=second_cache) == first

    assert hash_calls == []


@pytest.mark.usefixtures("no_racy_window")
def test_changes_are_detected_through_the_cache(
    tmp_path: Path, cache: HashCache, hash_calls: list[str]
) -> None:
    files = _tree(n=40)
    root = _write_tree(tmp_path / "data", files)
    scan_folder(root, cache=cache)
    hash_calls.clear()
    same_size = "d1/sub1/file-1.bin"
    path = root / same_size
    old_mtime = path.stat().st_mtime_ns
    _wait_for_new_timestamp(path)

    files[same_size] = bytes(b ^ 0xFF for b in files[same_size])  # same size, new bytes
    path.write_bytes(files[same_size])
    _set_mtime(path, old_mtime + 1_000_000_000)
    files["new/added.bin"] = b"added"
    _write_tree(root, {"new/added.bin": b"added"})
    (root / "d0/sub0/file-0.bin").unlink()
    del files["d0/sub0/file-0.bin"]
    files["top.txt"] = b"longer than before"
    (root / "top.txt").write_bytes(files["top.txt"])

    manifest = scan_folder(root, cache=cache)

    assert manifest == _expected(files)
    assert sorted(Path(p).relative_to(root).as_posix() for p in hash_calls) == sorted(
        [same_size, "new/added.bin", "top.txt"]
    )


@pytest.mark.usefixtures("no_racy_window")
def test_new_bytes_behind_a_restored_mtime_are_caught_by_ctime(
    tmp_path: Path, cache: HashCache
) -> None:
    root = _write_tree(tmp_path / "data", {"a.bin": b"x" * 100})
    path = root / "a.bin"
    before = scan_folder(root, cache=cache)
    stat = path.stat()
    _wait_for_new_timestamp(path)

    path.write_bytes(b"y" * 100)  # same size; then the mtime is put back, as `touch -d` would
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns

    after = scan_folder(root, cache=cache)
    assert after.entries[0].digest == hash_bytes(b"y" * 100) != before.entries[0].digest


def test_recently_written_files_are_not_cached_yet(
    tmp_path: Path, cache: HashCache, hash_calls: list[str]
) -> None:
    root = _write_tree(tmp_path / "data", {"old.bin": b"old", "new.bin": b"new"})
    # An old mtime does not make a file safe to cache: utime itself set its ctime to now.
    _set_mtime(root / "old.bin", time.time_ns() - 60 * 10**9)

    scan_folder(root, cache=cache)
    hash_calls.clear()
    scan_folder(root, cache=cache)

    assert sorted(Path(p).name for p in hash_calls) == ["new.bin", "old.bin"]
    assert cache.lookup(root) == {}


@pytest.mark.usefixtures("no_racy_window")
def test_rows_of_deleted_files_are_dropped(tmp_path: Path, cache: HashCache) -> None:
    root = _write_tree(tmp_path / "data", {"keep.bin": b"k", "drop.bin": b"d"})
    scan_folder(root, cache=cache)
    assert set(cache.lookup(root)) == {str(root / "keep.bin"), str(root / "drop.bin")}

    (root / "drop.bin").unlink()
    scan_folder(root, cache=cache)

    assert set(cache.lookup(root)) == {str(root / "keep.bin")}


def test_cache_lookup_is_limited_to_the_folder(tmp_path: Path, cache: HashCache) -> None:
    row = CacheEntry(1, 2, 3, 4, DIGEST_A)
    cache.update(
        {
            "/data/x/a": row,
            "/data/x/sub/b": row,
            "/data/x0/c": row,  # "0" sorts right after "/"
            "/data/x.d": row,
            "/data/y": row,
        }
    )
    assert set(cache.lookup("/data/x")) == {"/data/x/a", "/data/x/sub/b"}
    assert set(cache.lookup("/")) == {
        "/data/x/a",
        "/data/x/sub/b",
        "/data/x0/c",
        "/data/x.d",
        "/data/y",
    }
    cache.update({}, remove=["/data/x/a"])
    assert set(cache.lookup("/data/x")) == {"/data/x/sub/b"}


def test_cache_keeps_inodes_beyond_the_signed_64_bit_range(cache: HashCache) -> None:
    row = CacheEntry(1, 2, 3, 2**64 - 5, DIGEST_A)
    cache.update({"/big/inode": row})
    assert cache.lookup("/big") == {"/big/inode": row}


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database" * 100), id="garbage"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[:100] + b"\x00" * (len(p.read_bytes()) - 100)),
            id="zeroed-pages",
        ),
    ],
)
def test_corrupt_cache_is_rebuilt_not_fatal(
    tmp_path: Path,
    hash_calls: list[str],
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], Any],
) -> None:
    files = _tree(n=50)
    root = _write_tree(tmp_path / "data", files)
    db = tmp_path / "cache" / "file-hashes.db"
    with HashCache(db) as c:
        scan_folder(root, cache=c)
        c._open().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage(db)
    hash_calls.clear()

    with caplog.at_level(logging.WARNING, logger="shipyard.data.folders"), HashCache(db) as c:
        assert scan_folder(root, cache=c) == _expected(files)
        assert len(hash_calls) == len(files)
        hash_calls.clear()
        assert scan_folder(root, cache=c) == _expected(files)

    assert hash_calls == [], "the rebuilt cache works"
    assert "file-hash cache" in caplog.text
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_cache_that_cannot_be_opened_only_costs_hashing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = _tree(n=10)
    root = _write_tree(tmp_path / "data", files)
    (tmp_path / "blocked").write_text("a file where the cache folder should be")

    with caplog.at_level(logging.WARNING, logger="shipyard.data.folders"):
        cache = HashCache(tmp_path / "blocked" / "file-hashes.db")
        assert scan_folder(root, cache=cache) == _expected(files)
        assert scan_folder(root, cache=cache) == _expected(files)

    assert caplog.text.count("file-hash cache") == 1, "warned once, not on every call"


def test_cache_is_shared_by_concurrent_writers(tmp_path: Path) -> None:
    db = tmp_path / "file-hashes.db"
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            with HashCache(db) as c:
                for batch in range(10):
                    c.update(
                        {
                            f"/w{worker}/f{batch}-{i}": CacheEntry(i, i, i, i, DIGEST_A)
                            for i in range(100)
                        }
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with HashCache(db) as c:
        assert len(c.lookup("/")) == 4 * 10 * 100


# -- what a scan includes ------------------------------------------------------------------


def test_symlinks_inside_are_followed_outside_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _write_tree(tmp_path / "data", {"real/a.bin": b"a", "b.bin": b"b"})
    outside = _write_tree(tmp_path / "outside", {"secret.bin": b"s"})
    (root / "link-to-file").symlink_to(root / "b.bin")
    (root / "link-to-dir").symlink_to(root / "real")
    (root / "real" / "loop").symlink_to(root)  # back to an ancestor: not entered again
    (root / "escape-file").symlink_to(outside / "secret.bin")
    (root / "escape-dir").symlink_to(outside)
    (root / "broken").symlink_to(root / "nowhere")
    os.mkfifo(root / "pipe")

    with caplog.at_level(logging.WARNING, logger="shipyard.data.folders"):
        manifest = scan_folder(root, cache=None)

    assert [e.path for e in manifest.entries] == [
        "b.bin",
        "link-to-dir/a.bin",
        "link-to-file",
        "real/a.bin",
    ]
    assert manifest.entries[2].digest == hash_bytes(b"b")
    for skipped in ("outside the folder", "broken symlinks", "loop", "special files"):
        assert skipped in caplog.text


def test_scan_errors_name_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as caught:
        scan_folder(tmp_path / "missing", cache=None)
    assert str(tmp_path / "missing") in str(caught.value)

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        scan_folder(tmp_path / "file.txt", cache=None)

    empty = tmp_path / "empty"
    (empty / "only" / "folders").mkdir(parents=True)
    (empty / "outside-link").symlink_to(tmp_path / "file.txt")
    with pytest.raises(InvalidInputError, match="holds no files") as caught:
        scan_folder(empty, cache=None)
    assert str(empty) in str(caught.value)

    with pytest.raises(InvalidInputError, match="workers"):
        scan_folder(tmp_path, cache=None, workers=0)


@pytest.mark.parametrize("name", ["back\\slash.bin", "C:drive.bin", " "])
def test_names_a_manifest_cannot_hold_are_refused(tmp_path: Path, name: str) -> None:
    root = _write_tree(tmp_path / "data", {"ok.bin": b"ok", name: b"x"})
    with pytest.raises(InvalidInputError, match="cannot be listed in a folder manifest") as caught:
        scan_folder(root, cache=None)
    assert repr(str(root / name)) in str(caught.value)


def test_unreadable_file_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _write_tree(tmp_path / "data", {"ok.bin": b"ok", "locked.bin": b"locked"})
    locked = str(root / "locked.bin")
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == locked:  # chmod 000 does not stop root, so deny it here
            raise PermissionError(13, "Permission denied", locked)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(folders.os, "open", deny)
    with pytest.raises(InvalidInputError, match="cannot read") as caught:
        scan_folder(root, cache=None)
    assert locked in str(caught.value)
    assert "chmod" in str(caught.value)


def test_file_that_changes_size_while_hashed_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _write_tree(tmp_path / "data", {"grows.bin": b"x" * 10})
    original = folders._hash_file

    def grow_then_hash(path: str, size: int, root_: str) -> str:
        Path(path).write_bytes(b"x" * 20)
        return original(path, size, root_)

    monkeypatch.setattr(folders, "_hash_file", grow_then_hash)
    with pytest.raises(InvalidInputError, match="changed while the folder was being scanned"):
        scan_folder(root, cache=None)


# -- status ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_racy_window")
def test_status_of_an_unchanged_folder_reads_nothing(
    tmp_path: Path, cache: HashCache, hash_calls: list[str]
) -> None:
    root = _write_tree(tmp_path / "data", _tree(n=100))
    manifest = scan_folder(root, cache=cache)
    hash_calls.clear()

    assert folder_status(manifest, root, cache=cache) == FolderChanges()
    assert hash_calls == []


def test_status_without_a_cache_hashes_only_same_size_files(
    tmp_path: Path, hash_calls: list[str]
) -> None:
    files = {"same.bin": b"aaaa", "resized.bin": b"bbbb", "kept.bin": b"cccc", "gone.bin": b"d"}
    root = _write_tree(tmp_path / "data", files)
    manifest = scan_folder(root, cache=None)
    hash_calls.clear()
    (root / "same.bin").write_bytes(b"AAAA")
    (root / "resized.bin").write_bytes(b"bigger now")
    (root / "gone.bin").unlink()
    (root / "added.bin").write_bytes(b"new")

    changes = folder_status(manifest, root, cache=None)

    assert changes == FolderChanges(
        added=("added.bin",), modified=("resized.bin", "same.bin"), deleted=("gone.bin",)
    )
    assert sorted(Path(p).name for p in hash_calls) == ["kept.bin", "same.bin"]


def test_status_of_an_emptied_folder_lists_every_file_deleted(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "data", {"a": b"a", "b/c": b"c"})
    manifest = scan_folder(root, cache=None)
    (root / "a").unlink()
    (root / "b" / "c").unlink()

    assert folder_status(manifest, root, cache=None) == FolderChanges(deleted=("a", "b/c"))
    with pytest.raises(InvalidInputError, match="does not exist"):
        folder_status(manifest, tmp_path / "missing", cache=None)


# -- storing --------------------------------------------------------------------------------


def _big(seed: int) -> bytes:
    return random.Random(seed).randbytes(PACK_FILE_MAX + 10)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file store_folder reads: small ones to pack, big ones to copy."""
    calls: list[str] = []
    read_file, copy_hashing = folder_store._read_file, objects_module._copy_hashing

    def spy_read(f: Any, root: str) -> bytes:
        calls.append(Path(f.abspath).name)
        return read_file(f, root)

    def spy_copy(src: str, tmp: str, *, fsync: bool) -> tuple[str, int]:
        calls.append(Path(src).name)
        return copy_hashing(src, tmp, fsync=fsync)

    monkeypatch.setattr(folder_store, "_read_file", spy_read)
    monkeypatch.setattr(objects_module, "_copy_hashing", spy_copy)
    return calls


@pytest.mark.usefixtures("no_racy_window")
def test_store_folder_packs_small_files_stores_big_ones_and_checks_out_the_same_bytes(
    tmp_path: Path, cache: HashCache, hash_calls: list[str], reads: list[str]
) -> None:
    files = _tree(n=120)
    files["dup-1.bin"] = files["dup-2.bin"] = b"duplicate"
    files["big/one.bin"], files["big/two.bin"] = _big(1), _big(2)
    root = _write_tree(tmp_path / "data", files)
    store = LocalObjectStore(tmp_path / "objects")

    stored = store_folder(root, store, cache=cache, workers=3)

    assert stored.manifest == _expected(files)
    assert hash_calls == [], "each file is read once, hashed on the way"
    assert stored.manifest.digest == scan_folder(root, cache=None).digest, "packing is not content"
    assert sorted(reads) == sorted(Path(rel).name for rel in files)
    assert (len(stored.packs), stored.packed) == (1, len(files) - 2)
    stored_files, packs = decode_stored_manifest(store.get_bytes(stored.object_digest))
    assert packs == list(stored.packs)
    assert {f.path for f in stored_files if f.pack == LOOSE} == {"big/one.bin", "big/two.bin"}
    objects_held = {d for d, _ in store.iter_objects()}
    assert objects_held == {
        stored.object_digest,
        *stored.packs,
        hash_bytes(_big(1)),
        hash_bytes(_big(2)),
    }
    assert len(store.get_bytes(stored.packs[0])) == sum(
        len(d) for rel, d in files.items() if not rel.startswith(("big/", "dup-2"))
    ), "identical files are packed once"

    out = tmp_path / "out"
    assert checkout_folder(store, stored.object_digest, out) == stored.manifest
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


@pytest.mark.usefixtures("no_racy_window")
def test_store_folder_reads_only_what_changed_since_the_previous_version(
    tmp_path: Path, cache: HashCache, reads: list[str]
) -> None:
    files = _tree(n=40)
    files["big.bin"] = _big(3)
    root = _write_tree(tmp_path / "data", files)
    store = LocalObjectStore(tmp_path / "objects")
    first = store_folder(root, store, cache=cache)
    reads.clear()

    again = store_folder(root, store, cache=cache, previous=first.object_digest)
    assert reads == [], "an unchanged folder is not read again"
    assert (again.object_digest, again.packs) == (first.object_digest, first.packs)

    (root / "top.txt").write_bytes(b"changed")
    (root / "new.txt").write_bytes(b"new file")
    os.utime(root / "top.txt", ns=(1, 1))  # a new mtime the cache cannot know
    second = store_folder(root, store, cache=cache, previous=first.object_digest)
    assert sorted(reads) == ["new.txt", "top.txt"]
    assert second.packs[0] == first.packs[0] and len(second.packs) == 2
    assert len(store.get_bytes(second.packs[1])) == len(b"changed") + len(b"new file")
    checkout_folder(store, second.object_digest, tmp_path / "out")
    assert (tmp_path / "out" / "top.txt").read_bytes() == b"changed"
    assert (tmp_path / "out" / "d0/sub0/file-0.bin").read_bytes() == files["d0/sub0/file-0.bin"]


@pytest.mark.usefixtures("no_racy_window")
def test_store_folder_stores_again_what_the_previous_version_lost(
    tmp_path: Path, cache: HashCache
) -> None:
    files = _tree(n=20)
    files["big.bin"] = _big(4)
    root = _write_tree(tmp_path / "data", files)
    store = LocalObjectStore(tmp_path / "objects")
    first = store_folder(root, store, cache=cache)
    for digest, _ in list(store.iter_objects()):
        if digest != first.object_digest:
            store.delete(digest)  # every pack and object gone, the old manifest still there

    second = store_folder(root, store, cache=cache, previous=first.object_digest)

    assert second.manifest == first.manifest
    checkout_folder(store, second.object_digest, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == files["big.bin"]


def test_store_folder_closes_a_pack_when_it_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folder_store, "PACK_TARGET", 10_000)
    files = {f"f{i:03}.bin": bytes([i]) * 1000 for i in range(35)}
    root = _write_tree(tmp_path / "data", files)
    store = LocalObjectStore(tmp_path / "objects")

    stored = store_folder(root, store, cache=None)

    assert [len(store.get_bytes(p)) for p in stored.packs] == [10_000, 10_000, 10_000, 5_000]
    assert store_folder(root, LocalObjectStore(tmp_path / "other"), cache=None).packs == (
        stored.packs
    ), "the same folder gives the same packs"
    checkout_folder(store, stored.object_digest, tmp_path / "out")
    assert (tmp_path / "out" / "f034.bin").read_bytes() == bytes([34]) * 1000


def test_store_folder_can_hard_link_big_files_instead_of_copying_them(
    tmp_path: Path, cache: HashCache, hash_calls: list[str]
) -> None:
    files = {"a.bin": _big(6), "sub/b.bin": _big(7), "small.txt": b"small"}
    root = _write_tree(tmp_path / "data", files)
    old = time.time_ns() - 3600 * 10**9
    for rel in files:
        os.utime(root / rel, ns=(old, old))  # written long ago; the link changes only ctime
    store = LocalObjectStore(tmp_path / "objects")

    stored = store_folder(root, store, cache=cache, link=True)

    for rel in ("a.bin", "sub/b.bin"):
        user, obj = (root / rel).stat(), store._path(hash_bytes(files[rel])).stat()
        assert user.st_ino == obj.st_ino, "stored without a second copy"
        assert user.st_mode & 0o222 == 0, "made read-only: it is the stored version now"
        assert user.st_mtime_ns == old
    assert (root / "small.txt").stat().st_nlink == 1, "small files are packed, not linked"
    checkout_folder(store, stored.object_digest, tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == files["sub/b.bin"]

    hash_calls.clear()
    store.put_files([root / "a.bin"], digests=[hash_bytes(files["a.bin"])])  # reused
    assert (root / "a.bin").stat().st_mtime_ns == old, "reusing a linked object leaves it"
    assert scan_folder(root, cache=cache) == stored.manifest
    assert "a.bin" not in " ".join(hash_calls), "the cache knows the linked files' new ctime"

    os.chmod(root / "a.bin", 0o644)  # a user who edits the file in place anyway...
    with open(root / "a.bin", "r+b") as fh:
        fh.write(b"X")
    with pytest.raises(CorruptObjectError):  # ...is caught on the next read
        store.get_bytes(hash_bytes(files["a.bin"]))


def test_store_folder_copies_when_the_filesystem_refuses_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _write_tree(tmp_path / "data", {"a.bin": _big(8), "b.bin": _big(9)})
    calls: list[str] = []

    def cross_device(src: Any, dst: Any) -> None:
        calls.append(str(src))
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))

    monkeypatch.setattr(objects_module.os, "link", cross_device)
    store = LocalObjectStore(tmp_path / "objects")
    stored = store_folder(root, store, cache=None, link=True, workers=1)

    assert len(calls) == 1, "one refusal, then the rest are copied without asking again"
    for name in ("a.bin", "b.bin"):
        assert (root / name).stat().st_nlink == 1 and (root / name).stat().st_mode & 0o200
    checkout_folder(store, stored.object_digest, tmp_path / "out")
    assert (tmp_path / "out" / "b.bin").read_bytes() == _big(9)


def test_checkout_refuses_a_damaged_pack_or_manifest(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "data", {"a.txt": b"aaaa", "b.txt": b"bbbb"})
    store = LocalObjectStore(tmp_path / "objects")
    stored = store_folder(root, store, cache=None)
    files, packs = decode_stored_manifest(store.get_bytes(stored.object_digest))

    shifted = encode_stored_manifest([f._replace(offset=f.offset + 1) for f in files], packs)
    with pytest.raises(CorruptObjectError, match=r"a\.txt does not match its digest"):
        checkout_folder(store, store.put_bytes(shifted).digest, tmp_path / "out1")

    pack = store._path(packs[0])
    pack.chmod(0o644)
    pack.write_bytes(b"bbbbaaaa")
    with pytest.raises(CorruptObjectError, match="corrupt"):
        checkout_folder(store, stored.object_digest, tmp_path / "out2")


def test_store_folder_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="holds no files"):
        store_folder(tmp_path / "empty", store, cache=None)

    root = _write_tree(tmp_path / "data", {"a.bin": b"a", "b.bin": b"b", "c.bin": _big(5)})
    real_open = os.open
    for locked in (str(root / "b.bin"), str(root / "c.bin")):

        def deny(path: Any, flags: int, *args: Any, _locked: str = locked, **kwargs: Any) -> int:
            if os.fspath(path) == _locked:
                raise PermissionError(13, "Permission denied", _locked)
            return real_open(path, flags, *args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(os, "open", deny)
            with pytest.raises(InvalidInputError, match="cannot read") as caught:
                store_folder(root, store, cache=None)
        assert locked in str(caught.value)
        # No manifest and no partial object: at most complete packs that gc will remove.
        held = [d for d, _ in store.iter_objects()]
        assert all(store.verify(d) for d in held)
        assert not any(b'"format":"shipyard.folder-manifest"' in store.get_bytes(d) for d in held)
        assert not list((store.root / ".tmp").glob("*"))


def test_store_folder_notices_a_file_that_changes_while_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _write_tree(tmp_path / "data", {"a.bin": b"short", "b.bin": b"b"})
    walk = folders._walk

    def then_grow(path: str) -> Any:
        found = walk(path)
        (root / "a.bin").write_bytes(b"much longer now")
        return found

    monkeypatch.setattr(folders, "_walk", then_grow)
    with pytest.raises(InvalidInputError, match="changed while the folder was being scanned"):
        store_folder(root, LocalObjectStore(tmp_path / "objects"), cache=None)


def test_stored_manifest_lists_packs_for_doctor_and_checks_every_field() -> None:
    digest, pack = hash_bytes(b"x"), hash_bytes(b"pack")
    data = encode_stored_manifest(
        [StoredFile("a", 1, digest, 0, 0), StoredFile("b", 9, DIGEST_B)],
        [pack],
    )
    assert manifest_entries(data) == [("b", DIGEST_B), ("(pack 0: 1 file)", pack)]
    assert decode_manifest(data) == [("a", 1, digest), ("b", 9, DIGEST_B)]
    assert (
        FolderManifest.from_bytes(data).digest
        == FolderManifest((FileEntry("a", 1, digest), FileEntry("b", 9, DIGEST_B))).digest
    )
    head = b'{"format":"shipyard.folder-manifest","version":2,'
    for bad, message in [
        (b'"packs":[],"files":[["a",1,"' + digest.encode() + b'",0,0]]}', "names pack 0"),
        (b'"packs":[],"files":[["a",true,"' + digest.encode() + b'"]]}', "whole number"),
        (b'"packs":[],"files":[["a/./b",1,"' + digest.encode() + b'"]]}', "normal form"),
        (b'"packs":[],"files":[["../a",1,"' + digest.encode() + b'"]]}', r"\.\."),
        (b'"packs":["nope"],"files":[]}', "64 lowercase hex"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            decode_stored_manifest(head + bad)
