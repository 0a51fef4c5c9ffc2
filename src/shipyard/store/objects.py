"""Content-addressed object store: blobs named by their BLAKE3 hash.

Writes go to a temporary file that is renamed into place, so a crash never
leaves a partial object under a real name; identical content is stored once;
every read checks the hash again and raises if the bytes changed.

Backends: :class:`LocalObjectStore` (a folder) and :class:`FsspecObjectStore`
(``s3://`` and any other fsspec URL). :func:`open_object_store` picks one by URI.

``put_files`` stores many files at once (a versioned folder): objects that exist
already are skipped, the rest are copied on a thread pool, and a local store makes
the whole batch durable with one filesystem sync before any of it becomes visible
under its name, instead of one ``fsync`` per object.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import blake3

from shipyard.core.errors import InvalidInputError, NotFoundError, StoreUnavailableError

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
# put_files: up to this many new objects are fsynced one by one (cheaper than flushing the
# whole filesystem, which may hold other programs' unwritten data); more share one sync.
_FSYNC_EACH_MAX = 64
# Files at least this big are hashed with blake3's own threads as well.
BIG_FILE = 64 * CHUNK
# Files per thread-pool task in put_files (one task per file costs more than a small copy).
_BATCH = 128
# Up to this many digests are checked one by one on an fsspec store; more: list prefixes.
_EXISTS_EACH_MAX = 64

_T = TypeVar("_T")
_R = TypeVar("_R")


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
    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        digests: Sequence[str] | None = None,
        workers: int | None = None,
        link: bool = False,
    ) -> list[ObjectInfo]: ...
    def get_bytes(self, digest: str) -> bytes: ...
    def get_to_path(self, digest: str, dest: str | os.PathLike[str]) -> None: ...
    def exists(self, digest: str) -> bool: ...
    def keep(self, digests: Sequence[str]) -> set[str]: ...
    def verify(self, digest: str) -> bool: ...
    def delete(self, digest: str) -> None: ...
    def iter_objects(self) -> Iterator[tuple[str, float]]: ...


def default_io_workers() -> int:
    """Threads for file copies and uploads: waiting on the disk or network, not the CPU."""
    return min(16, 4 * (os.cpu_count() or 1))


def check_workers(workers: int | None, *, default: int) -> int:
    """``workers`` if it is a whole number >= 1, ``default`` if it is None.

    Raises:
        InvalidInputError: anything else.
    """
    if workers is None:
        return default
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a whole number >= 1 (or None), got {workers!r}")
    return workers


def _batches(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _pool_map(
    fn: Callable[[Sequence[_T]], list[_R]],
    items: Sequence[_T],
    workers: int,
    *,
    batch: int = _BATCH,
) -> list[_R]:
    """``fn`` over batches of ``items`` on a thread pool; results in order.

    On the first failure the batches not started yet are cancelled, the running
    ones are waited for, and the exception is raised.
    """
    if not items:
        return []
    batches = _batches(items, batch)
    if workers == 1 or len(batches) == 1:
        return [r for part in batches for r in fn(part)]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(batches)))
    try:
        futures = [pool.submit(fn, part) for part in batches]
        return [r for future in futures for r in future.result()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_put_args(
    paths: Sequence[str | os.PathLike[str]], digests: Sequence[str] | None
) -> tuple[list[str], list[str] | None]:
    if isinstance(paths, str | bytes | os.PathLike):
        raise InvalidInputError(
            f"paths must be a sequence of file paths, got a single path {paths!r}; "
            "wrap it in a list or use put_file"
        )
    names = [os.fspath(p) for p in paths]
    if digests is None:
        return names, None
    if isinstance(digests, str):
        raise InvalidInputError("digests must be a sequence of digests, got a single string")
    checked = [check_digest(d) for d in digests]
    if len(checked) != len(names):
        raise InvalidInputError(
            f"digests must hold one digest per path: got {len(checked)} digests "
            f"for {len(names)} paths"
        )
    return names, checked


def _changed_error(path: str, expected: str, actual: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path} changed after it was hashed: its digest was given as {expected} but its "
        f"bytes now hash to {actual}. Nothing was stored for it; scan the folder again "
        "(and wait until nothing writes to it) before adding it."
    )


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` (Linux), or None where it is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def _sync_filesystem(path: Path) -> None:
    """Write every dirty page and inode of the filesystem holding ``path`` to disk.

    ``syncfs`` on Linux, else ``os.sync``. Both wait until the data is on disk on
    Linux; callers on other systems fsync file by file instead.
    """
    fn = _syncfs()
    if fn is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if fn(fd) == 0:
                return
            logger.debug("syncfs(%s) failed (errno %d); using sync()", path, ctypes.get_errno())
        finally:
            os.close(fd)
    os.sync()


def _fsync_path(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # rare: a partial write
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def _copy_hashing(src: str, tmp: str, *, fsync: bool) -> tuple[str, int]:
    """Copy ``src`` into the new file ``tmp`` (which must not exist), hashing on the way.

    A file that fits in one block is read with one ``read`` call: asking for one
    byte more than its size, a short answer at the known size is the end of file.

    Returns:
        The BLAKE3 hex digest and the size of the bytes copied.
    """
    sfd = os.open(src, os.O_RDONLY)
    try:
        expected = os.fstat(sfd).st_size
        big = expected >= BIG_FILE
        block_size = 8 * CHUNK if big else CHUNK
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if big else 1)
        dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            size = 0
            while True:
                want = min(block_size, expected - size + 1) if size <= expected else block_size
                block = os.read(sfd, want)
                if not block:
                    break
                hasher.update(block)
                _write_all(dfd, block)
                size += len(block)
                if len(block) < want and size >= expected:
                    break
            if fsync:
                os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
    return hasher.hexdigest(), size


_LINK_REFUSED = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


def _link_hashing(src: str, tmp: str, digest: str | None) -> tuple[str, int] | None:
    """Hard-link ``src`` as ``tmp``, made read-only; its digest (hashed unless given) and
    size. None when the filesystem refuses the link (then nothing was made).

    Raises:
        InvalidInputError: the file changed between its stat, its hashing and the link.
    """
    before = os.stat(src)
    if digest is None:
        info = hash_file(src)
        digest, size = info.digest, info.size
    else:
        size = before.st_size
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno in _LINK_REFUSED:
            logger.info("cannot hard-link %s into the store (%s); copying instead", src, exc)
            return None
        raise
    after = os.stat(tmp)
    if (after.st_ino, after.st_size, after.st_mtime_ns) != (
        before.st_ino,
        size,
        before.st_mtime_ns,
    ):
        os.unlink(tmp)
        raise InvalidInputError(
            f"{src} changed while it was being stored; nothing was stored for it. Add it "
            "again when nothing writes to it"
        )
    os.chmod(tmp, stat.S_IMODE(after.st_mode) & ~0o222)  # the user's file too: same inode
    return digest, size


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

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        digests: Sequence[str] | None = None,
        workers: int | None = None,
        link: bool = False,
    ) -> list[ObjectInfo]:
        """Store many files at once; the result is aligned with ``paths``.

        With ``digests`` (one per path, for example from ``scan_folder``), objects
        that exist already are not read again: their mtime is refreshed (so ``gc``
        counts its grace period from now) and they are skipped. The other files are
        copied into temporary files on a thread pool, hashed on the way (a file
        whose bytes no longer match its given digest fails the call), made durable
        with one filesystem sync (``fsync`` per file for up to 64 files, or off
        Linux), and only then renamed into place: no object is ever visible under
        its name before its bytes are on disk. On any error the temporary files are
        removed; objects already renamed are complete, and stay (``gc`` removes them
        if nothing references them). When this returns, the objects and their names
        are durable.

        Args:
            paths: files to store (duplicates are fine: identical content is stored once).
            digests: their BLAKE3 hex digests if already known; None to hash while copying.
            workers: threads for the copies (default: 4 per CPU, at most 16).
            link: hard-link each new file into the store instead of copying its bytes
                (no second copy on disk, and nothing to write but the names). The file
                and the object are then the same file, so it is made read-only: writing
                to it in place would change the stored version (every read checks the
                hash, and ``shipyard doctor`` lists such objects). A file on another
                filesystem, or where links are refused, is copied.

        Returns:
            One :class:`ObjectInfo` per path, in order.

        Raises:
            InvalidInputError: bad arguments, or a file that changed after it was hashed.
            OSError: a file cannot be read, or the store cannot be written.

        Example::

            infos = store.put_files(["a.csv", "b.csv"])
        """
        names, expected = _check_put_args(paths, digests)
        n_workers = check_workers(workers, default=default_io_workers())
        results: list[ObjectInfo | None] = [None] * len(names)
        if expected is None:
            to_copy = list(range(len(names)))
        else:
            first: dict[str, int] = {}
            for i, digest in enumerate(expected):
                first.setdefault(digest, i)
            found = dict(_pool_map(self._refresh_existing, list(first), n_workers))
            for i, digest in enumerate(expected):
                if digest in found:
                    results[i] = ObjectInfo(digest, found[digest])
            to_copy = [i for d, i in first.items() if d not in found]
        if to_copy:
            copied = self._copy_batch(names, to_copy, expected, n_workers, link=link)
            for i, info in copied.items():
                results[i] = info
            if expected is not None:
                by_digest = {info.digest: info for info in copied.values()}
                for i, digest in enumerate(expected):
                    if results[i] is None:
                        results[i] = by_digest[digest]
        logger.debug("put_files: %d files, %d copied into %s", len(names), len(to_copy), self.uri)
        return [r for r in results if r is not None]

    def _refresh_existing(self, digests: Sequence[str]) -> list[tuple[str, int]]:
        """``(digest, size)`` of the existing objects among ``digests``; refreshes their mtime."""
        found = []
        root = self.uri
        for digest in digests:  # checked digests: plain strings are much faster than Paths here
            path = f"{root}/{digest[:2]}/{digest[2:]}"
            try:
                st = os.stat(path)
                if st.st_nlink == 1:  # a hard-linked object is also a user's file: leave it
                    os.utime(path)
            except FileNotFoundError:
                continue
            size = st.st_size
            found.append((digest, size))
        return found

    def _copy_batch(
        self,
        names: list[str],
        indices: list[int],
        expected: list[str] | None,
        workers: int,
        *,
        link: bool = False,
    ) -> dict[int, ObjectInfo]:
        """Copy ``names[i]`` for ``i`` in ``indices`` into the store; see :meth:`put_files`."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        token = f"{self._tmp}/obj-{os.getpid()}-{os.urandom(4).hex()}-"
        fsync_each = len(indices) <= _FSYNC_EACH_MAX or not sys.platform.startswith("linux")
        pending: set[str] = set()  # temporary files that exist (or may): removed on error
        linking = [link]  # cleared at the first refusal: the rest are copied

        def copy(batch: Sequence[int]) -> list[tuple[int, str, int, str]]:
            done = []
            for i in batch:
                tmp = f"{token}{i}"
                pending.add(tmp)
                known = None if expected is None else expected[i]
                linked = _link_hashing(names[i], tmp, known) if linking[0] else None
                if linked is None:
                    linking[0] = False
                    digest, size = _copy_hashing(names[i], tmp, fsync=fsync_each)
                else:
                    digest, size = linked
                if expected is not None and digest != expected[i]:
                    raise _changed_error(names[i], expected[i], digest)
                done.append((i, digest, size, tmp))
            return done

        try:
            copied = _pool_map(copy, indices, workers)
            if not fsync_each:
                _sync_filesystem(self._tmp)  # every temporary file's bytes are on disk
            winners: dict[str, str] = {}
            for _, digest, _, tmp in copied:
                if digest in winners:
                    os.unlink(tmp)  # the same bytes twice in one batch
                    pending.discard(tmp)
                else:
                    winners[digest] = tmp
            made: set[str] = set()

            def commit(items: Sequence[tuple[str, str]]) -> list[None]:
                root = self.uri
                for digest, tmp in items:
                    if digest[:2] not in made:
                        os.makedirs(f"{root}/{digest[:2]}", exist_ok=True)
                        made.add(digest[:2])
                    os.replace(tmp, f"{root}/{digest[:2]}/{digest[2:]}")
                    pending.discard(tmp)
                return []

            _pool_map(commit, sorted(winners.items()), min(workers, 4))
            if fsync_each:
                for prefix in sorted(made):
                    _fsync_path(self.root / prefix)
            else:
                _sync_filesystem(self.root)  # the new names are on disk too
        except BaseException:
            for tmp in list(pending):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        return {i: ObjectInfo(digest, size) for i, digest, size, _ in copied}

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

    def keep(self, digests: Sequence[str]) -> set[str]:
        """The digests among ``digests`` the store holds, each marked as just used (its
        mtime refreshed) so ``gc``'s grace period protects it while a new reference to it
        is being recorded."""
        checked = [check_digest(d) for d in digests]
        return {d for d, _ in _pool_map(self._refresh_existing, checked, default_io_workers())}

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

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        digests: Sequence[str] | None = None,
        workers: int | None = None,
        link: bool = False,
    ) -> list[ObjectInfo]:
        """Upload many files at once, skipping objects the store holds already.

        Existence is checked once per digest (for more than 64 digests by listing
        each two-character prefix once instead of one request per object). Missing
        files are hashed before upload, so a file whose bytes no longer match its
        given digest fails the call instead of landing under the wrong name. Each
        upload is a whole-object put (atomic on S3), run on a thread pool.

        Args:
            paths: local files to upload.
            digests: their BLAKE3 hex digests if already known; None to hash them first.
            workers: threads for hashing and uploads (default: 4 per CPU, at most 16).
            link: ignored: an object store holds copies (accepted so callers need not
                know the backend).

        Returns:
            One :class:`ObjectInfo` per path, in order.

        Raises:
            InvalidInputError: bad arguments, or a file that changed after it was hashed.
            OSError: a file cannot be read.
        """
        names, expected = _check_put_args(paths, digests)
        n_workers = check_workers(workers, default=default_io_workers())
        if expected is None:
            infos = _pool_map(lambda part: [hash_file(p) for p in part], names, n_workers)
        else:
            infos = [
                ObjectInfo(d, os.stat(p).st_size) for p, d in zip(names, expected, strict=True)
            ]
        first: dict[str, int] = {}
        for i, info in enumerate(infos):
            first.setdefault(info.digest, i)
        existing = self._existing(list(first), n_workers)
        missing = [(d, i) for d, i in first.items() if d not in existing]

        def upload(batch: Sequence[tuple[str, int]]) -> list[None]:
            for digest, i in batch:
                if expected is not None:
                    actual = hash_file(names[i]).digest
                    if actual != digest:
                        raise _changed_error(names[i], digest, actual)
                self.fs.put_file(names[i], self._key(digest))
            return []

        _pool_map(upload, missing, n_workers, batch=1)
        logger.debug("put_files: %d files, %d uploaded to %s", len(names), len(missing), self.uri)
        return infos

    def _existing(self, digests: list[str], workers: int) -> set[str]:
        """The digests among ``digests`` that the store holds."""
        if len(digests) <= _EXISTS_EACH_MAX:
            return set(
                _pool_map(
                    lambda part: [d for d in part if self.fs.exists(self._key(d))],
                    digests,
                    workers,
                    batch=1,
                )
            )
        prefixes = sorted({d[:2] for d in digests})

        def listing(batch: Sequence[str]) -> list[str]:
            found: list[str] = []
            for prefix in batch:
                folder = f"{self.base}/{prefix}"
                self.fs.invalidate_cache(folder)  # a cached listing may miss deletions
                try:
                    entries = self.fs.ls(folder, detail=False)
                except FileNotFoundError:
                    continue
                found.extend(prefix + str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
            return found

        listed = set(_pool_map(listing, prefixes, workers, batch=4))
        return {d for d in digests if d in listed}

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

    def keep(self, digests: Sequence[str]) -> set[str]:
        """The digests among ``digests`` the store holds (object stores keep no access
        time to refresh: ``gc`` counts its grace period from the upload)."""
        checked = [check_digest(d) for d in digests]
        return self._existing(list(dict.fromkeys(checked)), default_io_workers())

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
