"""The content-addressed object store: a local folder, and S3 through fsspec (moto on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.core.config import Settings
from shipyard.core.errors import InvalidInputError, NotFoundError, StoreUnavailableError
from shipyard.store import objects as objects_module
from shipyard.store.objects import (
    CHUNK,
    CorruptObjectError,
    FsspecObjectStore,
    LocalObjectStore,
    hash_bytes,
    hash_file,
    open_object_store,
)
from shipyard.tracking.tracker import Tracker

BAD_DIGESTS = [
    "../../etc/passwd",
    "../" + "a" * 61,
    "ab/../../" + "c" * 55,
    "/" + "a" * 63,
    "A" * 64,  # upper case
    "a" * 63,
    "a" * 65,
    "",
]


def _payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- local folder -----------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["replace", "fsync"])
@pytest.mark.parametrize("how", ["put_bytes", "put_file"])
def test_local_write_that_fails_before_the_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, how: str
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    data = _payload(3 * CHUNK + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    digest = hash_bytes(data)

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("simulated crash before the object is in place")

    with monkeypatch.context() as mp:
        mp.setattr(objects_module.os, failing, crash)
        with pytest.raises(OSError, match="simulated crash"):
            if how == "put_bytes":
                store.put_bytes(data)
            else:
                store.put_file(src)

    assert not store.exists(digest)
    assert list(store.iter_objects()) == []
    assert _files(store.root) == [], "a temporary file was left behind"
    with pytest.raises(NotFoundError):
        store.get_bytes(digest)

    # The next attempt stores it normally.
    info = store.put_bytes(data) if how == "put_bytes" else store.put_file(src)
    assert (info.digest, info.size) == (digest, len(data))
    assert store.get_bytes(digest) == data
    assert _files(store.root) == [store.root / digest[:2] / digest[2:]]


def test_local_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    data = _payload(1000)
    src = tmp_path / "same.bin"
    src.write_bytes(data)

    first = store.put_bytes(data)
    second = store.put_bytes(data)
    third = store.put_file(src)

    assert first == second == third
    assert first.digest == hash_bytes(data) == hash_file(src).digest
    assert _files(store.root) == [store.root / first.digest[:2] / first.digest[2:]]
    assert [d for d, _ in store.iter_objects()] == [first.digest]
    other = store.put_bytes(data + b"!")
    assert other.digest != first.digest
    assert sorted(d for d, _ in store.iter_objects()) == sorted([first.digest, other.digest])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="flipped-last-byte"),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b + b"x", id="extended"),
    ],
)
def test_local_read_detects_changed_bytes(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    data = _payload(2 * CHUNK + CHUNK // 2)  # several chunks: the copy is partial when it fails
    digest = store.put_bytes(data).digest
    path = store.root / digest[:2] / digest[2:]
    path.chmod(0o644)
    path.write_bytes(damage(data))

    with pytest.raises(CorruptObjectError) as caught:
        store.get_bytes(digest)
    assert isinstance(caught.value, StoreUnavailableError)
    assert digest in str(caught.value)
    assert store.verify(digest) is False

    dest_dir = tmp_path / "download"
    dest = dest_dir / "model.bin"
    with pytest.raises(CorruptObjectError):
        store.get_to_path(digest, dest)
    assert not dest.exists()
    assert list(dest_dir.iterdir()) == [], "a partial download was left behind"

    existing = dest_dir / "kept.bin"
    existing.write_bytes(b"previous content")
    with pytest.raises(CorruptObjectError):
        store.get_to_path(digest, existing)
    assert existing.read_bytes() == b"previous content"


def test_local_get_to_path_writes_verified_copy(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    data = _payload(CHUNK + 5)
    digest = store.put_bytes(data).digest
    dest = tmp_path / "out" / "nested" / "copy.bin"
    store.get_to_path(digest, dest)
    assert dest.read_bytes() == data
    assert store.verify(digest) is True
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_local_rejects_names_that_are_not_digests(tmp_path: Path, bad: str) -> None:
    store = LocalObjectStore(tmp_path / "area" / "objects")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    calls: list[Callable[[], object]] = [
        lambda: store.get_bytes(bad),
        lambda: store.exists(bad),
        lambda: store.verify(bad),
        lambda: store.delete(bad),
        lambda: store.get_to_path(bad, tmp_path / "dest"),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "dest").exists()


def test_local_missing_object_is_not_found(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    digest = hash_bytes(b"never stored")
    assert not store.exists(digest)
    with pytest.raises(NotFoundError):
        store.get_bytes(digest)
    with pytest.raises(NotFoundError):
        store.get_to_path(digest, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    store.delete(digest)  # deleting what is not there is not an error
    assert list(store.iter_objects()) == []


def test_open_object_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_object_store(str(tmp_path / "o")), LocalObjectStore)
    local = open_object_store(f"file://{tmp_path / 'o'}")
    assert isinstance(local, LocalObjectStore)
    assert local.uri == str(tmp_path / "o")


# -- S3 (moto) --------------------------------------------------------------------------


def _s3_store(bucket: Any, prefix: str = "objects") -> FsspecObjectStore:
    store = open_object_store(bucket.uri(prefix), s3_endpoint_url=bucket.endpoint)
    assert isinstance(store, FsspecObjectStore)
    return store


def _key(prefix: str, digest: str) -> str:
    return f"{prefix}/{digest[:2]}/{digest[2:]}"


def test_s3_round_trip(s3_bucket: Any, bucket_keys: Any, tmp_path: Path) -> None:
    store = _s3_store(s3_bucket)
    data = _payload(CHUNK + 123, seed=1)
    info = store.put_bytes(data)
    assert (info.digest, info.size) == (hash_bytes(data), len(data))
    assert store.exists(info.digest)
    assert store.get_bytes(info.digest) == data
    assert store.verify(info.digest) is True
    dest = tmp_path / "dl" / "data.bin"
    store.get_to_path(info.digest, dest)
    assert dest.read_bytes() == data

    src = tmp_path / "file.bin"
    src.write_bytes(_payload(4096, seed=2))
    file_info = store.put_file(src)
    assert file_info == hash_file(src)
    assert store.get_bytes(file_info.digest) == src.read_bytes()
    assert bucket_keys(s3_bucket, "") == sorted(
        [_key("objects", info.digest), _key("objects", file_info.digest)]
    )


def test_s3_same_bytes_are_stored_once(s3_bucket: Any, bucket_keys: Any, tmp_path: Path) -> None:
    store = _s3_store(s3_bucket)
    data = b"the same model, twice"
    src = tmp_path / "same.bin"
    src.write_bytes(data)
    first = store.put_bytes(data)
    assert store.put_bytes(data) == first
    assert store.put_file(src) == first
    assert bucket_keys(s3_bucket, "") == [_key("objects", first.digest)]


def test_s3_read_detects_changed_bytes(s3_bucket: Any, tmp_path: Path) -> None:
    store = _s3_store(s3_bucket)
    data = _payload(2 * CHUNK + 1, seed=3)
    digest = store.put_bytes(data).digest
    s3_bucket.client.put_object(
        Bucket=s3_bucket.name, Key=_key("objects", digest), Body=data[:-1] + b"\x00"
    )

    with pytest.raises(CorruptObjectError) as caught:
        store.get_bytes(digest)
    assert isinstance(caught.value, StoreUnavailableError)
    assert store.verify(digest) is False
    dest = tmp_path / "dl" / "data.bin"
    with pytest.raises(CorruptObjectError):
        store.get_to_path(digest, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_s3_lists_and_deletes_objects(s3_bucket: Any, bucket_keys: Any) -> None:
    store = _s3_store(s3_bucket)
    assert list(store.iter_objects()) == []  # nothing under the prefix yet
    digests = sorted(store.put_bytes(f"object {i}".encode()).digest for i in range(3))
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="objects/README", Body=b"not one")
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="elsewhere/x", Body=b"not ours")

    listed = list(store.iter_objects())
    assert sorted(d for d, _ in listed) == digests
    assert all(isinstance(t, float) and t > 0 for _, t in listed)

    store.delete(digests[0])
    assert not store.exists(digests[0])
    with pytest.raises(NotFoundError):
        store.get_bytes(digests[0])
    assert sorted(d for d, _ in store.iter_objects()) == digests[1:]
    assert _key("objects", digests[0]) not in bucket_keys(s3_bucket, "")
    store.delete(digests[0])  # again: not an error

    for bad in BAD_DIGESTS:
        with pytest.raises(InvalidInputError):
            store.get_bytes(bad)
    assert bucket_keys(s3_bucket, "elsewhere/") == ["elsewhere/x"]


def test_tracker_artifacts_round_trip_through_s3(
    s3_bucket: Any,
    bucket_keys: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    settings = make_settings(
        SHIPYARD_ARTIFACT_URI=s3_bucket.uri("art"),
        SHIPYARD_S3_ENDPOINT_URL=s3_bucket.endpoint,
    )
    tracker = Tracker(settings)
    try:
        model = tmp_path / "model.bin"
        model.write_bytes(_payload(CHUNK + 999, seed=4))
        with tracker.start_run(name="s3") as run:
            tracker.log_artifact(model, "models")
            tracker.log_dict({"classes": ["no", "yes"]}, "meta.json")

        out = tracker.download_artifacts(run.run_id, "models/model.bin", tmp_path / "dl")
        assert out == tmp_path / "dl" / "models" / "model.bin"
        assert out.read_bytes() == model.read_bytes()
        assert tracker.load_artifact(run.run_id, "meta.json").startswith(b"{")
        digest = hash_file(model).digest
        assert _key("art", digest) in bucket_keys(s3_bucket, "art/")
        assert not (Path(settings.home) / "objects").exists(), "artifacts went to the local folder"

        from shipyard.store.maintenance import doctor

        report = doctor(tracker.store, tracker.objects)
        assert report.consistent, report.to_dict()
        assert digest not in report.orphans
    finally:
        tracker.flush()
        tracker.db.dispose()
