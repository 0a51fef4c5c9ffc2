"""Content-addressed object store: blobs named by their BLAKE3 hash.

Writes go to a temporary file that is renamed into place, so a crash never
leaves a partial object under a real name; identical content is stored once;
every read checks the hash again and raises if the bytes changed.

Backends: :class:`LocalObjectStore` (a folder) and :class:`FsspecObjectStore`
(``s3://`` and any other fsspec URL). :func:`open_object_store` picks one by URI.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import blake3

from shipyard.core.errors import InvalidInputError, NotFoundError, StoreUnavailableError

CHUNK = 1 << 20
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


class CorruptObjectError(StoreUnavailableError):
    """An object's bytes no longer match its name (changed on disk or in the bucket)."""

    code = "CORRUPT_OBJECT"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    digest: str
    size: int


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise InvalidInputError."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidInputError(f"object digest {digest!r} is not 64 lowercase hex characters")
    return digest


def hash_bytes(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> ObjectInfo:
    """Hash a file in chunks (multi-threaded for large files)."""
    size = os.path.getsize(path)
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if size > 8 * CHUNK else 1)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            hasher.update(block)
    return ObjectInfo(hasher.hexdigest(), size)


class ObjectStore(Protocol):
    """What every object backend provides."""

    uri: str

    def put_bytes(self, data: bytes) -> ObjectInfo: ...
    def put_file(self, path: str | os.PathLike[str]) -> ObjectInfo: ...
    def get_bytes(self, digest: str) -> bytes: ...
    def get_to_path(self, digest: str, dest: str | os.PathLike[str]) -> None: ...
    def exists(self, digest: str) -> bool: ...
    def verify(self, digest: str) -> bool: ...
    def delete(self, digest: str) -> None: ...
    def iter_objects(self) -> Iterator[tuple[str, float]]: ...


def _atomic_copy_verified(src: BinaryIO, dest: Path, digest: str) -> None:
    """Copy ``src`` to ``dest`` through a temporary sibling, checking the hash before rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    hasher = blake3.blake3()
    try:
        with os.fdopen(fd, "wb") as out:
            while block := src.read(CHUNK):
                hasher.update(block)
                out.write(block)
        if hasher.hexdigest() != digest:
            raise CorruptObjectError(
                f"object {digest} is corrupt: its bytes hash to {hasher.hexdigest()}. "
                "Run `shipyard doctor` to list damaged objects."
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _touch(path: Path) -> None:
    """Refresh a reused object's mtime, so ``gc``'s grace period counts from its last use."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)


class LocalObjectStore:
    """Objects in a local folder: ``ROOT/ab/cdef...``; temporary files in ``ROOT/.tmp``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        self._tmp = self.root / ".tmp"

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def _commit(self, tmp: str, digest: str) -> None:
        final = self._path(digest)
        if final.exists():
            os.unlink(tmp)  # deduplicated
            _touch(final)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    def _new_tmp(self) -> tuple[int, str]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix="obj-", dir=self._tmp)

    def put_bytes(self, data: bytes) -> ObjectInfo:
        digest = hash_bytes(data)
        if self._path(digest).exists():
            _touch(self._path(digest))
            return ObjectInfo(digest, len(data))
        fd, tmp = self._new_tmp()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return ObjectInfo(digest, len(data))

    def put_file(self, path: str | os.PathLike[str]) -> ObjectInfo:
        fd, tmp = self._new_tmp()
        hasher = blake3.blake3()
        size = 0
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as out:
                while block := src.read(CHUNK):
                    hasher.update(block)
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return ObjectInfo(digest, size)

    def _open(self, digest: str) -> BinaryIO:
        try:
            return open(self._path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(
                f"object {digest} is missing from {self.uri}; run `shipyard doctor` to see "
                "which runs reference it"
            ) from None

    def get_bytes(self, digest: str) -> bytes:
        with self._open(digest) as fh:
            data = fh.read()
        if hash_bytes(data) != digest:
            raise CorruptObjectError(
                f"object {digest} in {self.uri} is corrupt (its bytes changed after it was "
                "written); run `shipyard doctor` to list damaged objects"
            )
        return data

    def get_to_path(self, digest: str, dest: str | os.PathLike[str]) -> None:
        with self._open(digest) as fh:
            _atomic_copy_verified(fh, Path(dest), digest)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def verify(self, digest: str) -> bool:
        path = self._path(digest)
        return path.is_file() and hash_file(path).digest == digest

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(digest).unlink()

    def iter_objects(self) -> Iterator[tuple[str, float]]:
        """``(digest, mtime)`` for every object; skips temporary files."""
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                digest = sub.name + entry.name
                if _DIGEST_RE.match(digest):
                    yield digest, entry.stat().st_mtime


class FsspecObjectStore:
    """Objects behind any fsspec URL (``s3://bucket/prefix``). Uploads are whole-object puts."""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        self.uri = uri.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.uri, **dict(storage_options or {}))
        except ImportError as exc:
            raise StoreUnavailableError(
                f"no filesystem driver for {uri}: {exc}. For s3:// run pip install 'shipyard[s3]'."
            ) from exc

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.base}/{digest[:2]}/{digest[2:]}"

    def put_bytes(self, data: bytes) -> ObjectInfo:
        digest = hash_bytes(data)
        key = self._key(digest)
        if not self.fs.exists(key):
            self.fs.pipe_file(key, data)
        return ObjectInfo(digest, len(data))

    def put_file(self, path: str | os.PathLike[str]) -> ObjectInfo:
        info = hash_file(path)
        key = self._key(info.digest)
        if not self.fs.exists(key):
            self.fs.put_file(str(path), key)
        return info

    def get_bytes(self, digest: str) -> bytes:
        key = self._key(digest)
        try:
            data: bytes = self.fs.cat_file(key)
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is missing from {self.uri}") from None
        if hash_bytes(data) != digest:
            raise CorruptObjectError(f"object {digest} in {self.uri} is corrupt")
        return data

    def get_to_path(self, digest: str, dest: str | os.PathLike[str]) -> None:
        key = self._key(digest)
        try:
            with self.fs.open(key, "rb") as fh:
                _atomic_copy_verified(fh, Path(dest), digest)
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is missing from {self.uri}") from None

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._key(digest)))

    def verify(self, digest: str) -> bool:
        try:
            self.get_bytes(digest)
        except (NotFoundError, CorruptObjectError):
            return False
        return True

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._key(digest))

    def iter_objects(self) -> Iterator[tuple[str, float]]:
        try:
            found = self.fs.find(self.base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            parts = path.rstrip("/").split("/")
            digest = parts[-2] + parts[-1] if len(parts) >= 2 else ""
            if _DIGEST_RE.match(digest):
                modified = info.get("LastModified") or info.get("mtime") or 0
                stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
                yield digest, stamp


def open_object_store(uri: str, *, s3_endpoint_url: str = "") -> ObjectStore:
    """The backend for ``uri``: a local folder, or fsspec for ``scheme://`` URIs."""
    if "://" not in uri or uri.startswith("file://"):
        return LocalObjectStore(uri.removeprefix("file://"))
    options: dict[str, Any] = {}
    if uri.startswith("s3://") and s3_endpoint_url:
        options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
    return FsspecObjectStore(uri, storage_options=options)
