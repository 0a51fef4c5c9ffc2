"""Folders of files as versioned data: manifests, a stat-keyed hash cache and fast scans.

A folder's content is its :class:`FolderManifest`: every file's relative POSIX
path, size and BLAKE3 digest, sorted by path. The manifest's own digest (BLAKE3 of
its canonical JSON encoding, :meth:`FolderManifest.to_bytes`) is the folder's
content hash: the same files give the same digest on every machine, whatever the
order the filesystem lists them in.

:func:`scan_folder` walks a folder with ``os.scandir``, stats every file and hashes
only the files the :class:`HashCache` does not know. The cache is a SQLite file
mapping (absolute path, size, mtime, ctime, inode) to a digest, so scanning an
unchanged folder again reads no file contents at all. :func:`store_folder` also
puts the files (and the manifest) into an object store, reading each new file
once. :func:`folder_status` says which files changed relative to a stored
manifest, with the same cache.

Hashing runs on a thread pool (blake3 releases the GIL; files of 64 MiB and more
also use blake3's own threads).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import logging
import os
import sqlite3
import stat
import string
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, ParamSpec, TypeVar

import blake3

from shipyard.core.errors import InvalidInputError
from shipyard.core.validation import (
    ARTIFACT_PATH_MAX,
    check_artifact_path,
    is_normal_artifact_path,
)
from shipyard.store.manifest import decode_stored_manifest, encode_manifest
from shipyard.store.objects import BIG_FILE, CHUNK, check_digest, check_workers

logger = logging.getLogger(__name__)

HASH_CACHE_FILENAME = "file-hashes.db"
# A file modified this recently (by its own mtime/ctime, against the clock at the start of
# the scan) is hashed but not cached: timestamps have a granularity (up to 2 s on FAT), and
# a second same-size write within one tick would otherwise keep the first digest forever.
RACY_WINDOW_NS = 2_000_000_000
_CACHE_SCHEMA = 1
# Work per hashing task: at most this many files, or about this many bytes.
_TASK_FILES = 256
_TASK_BYTES = 32 * CHUNK
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_INODE_WRAP = 1 << 64
_INODE_SIGNED_MAX = (1 << 63) - 1


_P = ParamSpec("_P")
_R = TypeVar("_R")


def gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with Python's cyclic garbage collector paused.

    A folder of 100,000 files makes about a million small containers (stat records,
    cache rows, manifest rows) that live until the call ends; the collector would
    walk all of them again and again while they are made (measured: 40% of the time
    spent building a manifest). Reference counting still frees everything at once.
    """

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused


def default_hash_workers() -> int:
    """Threads for hashing: two per CPU (at most 16), enough to overlap reads and hashing."""
    return min(16, 2 * (os.cpu_count() or 1))


# -- manifests ------------------------------------------------------------------------------


class FileEntry(NamedTuple):
    """One file of a folder: its path relative to the folder (POSIX, ``/``), size, digest.

    A named tuple: a manifest holds 100,000 of them, made 6x faster than dataclasses."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """How a folder differs from a manifest: relative paths, each tuple sorted.

    ``bool(changes)`` is False when nothing was added, modified or deleted.
    """

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted)


def _check_relative_path(path: object) -> str:
    """A manifest path: one ``check_artifact_path`` accepts (the store checks manifests with
    it), already in its normal form: relative, ``/`` separators, no ``.``/``..``/empty part."""
    if isinstance(path, str) and is_normal_artifact_path(path) and not _bad_top_name(path):
        return path
    try:
        norm = check_artifact_path(path)
    except InvalidInputError as exc:
        raise InvalidInputError(f"manifest path {path!r}: {exc.message}") from None
    if norm != path:
        raise InvalidInputError(f"manifest path {path!r} is not normalised; write it as {norm!r}")
    return norm


def _check_entry(entry: object) -> FileEntry:
    if not isinstance(entry, FileEntry):
        raise InvalidInputError(
            f"manifest entries must be FileEntry objects, got {type(entry).__name__}"
        )
    _check_relative_path(entry.path)
    if isinstance(entry.size, bool) or not isinstance(entry.size, int) or entry.size < 0:
        raise InvalidInputError(
            f"size of {entry.path!r} must be a whole number >= 0, got {entry.size!r}"
        )
    check_digest(entry.digest)
    return entry


@dataclass(frozen=True)
class FolderManifest:
    """The content of a folder: its files sorted by path.

    Entries are checked (relative POSIX paths, sizes >= 0, 64-hex digests, no
    duplicate path) and sorted on construction, so two manifests of the same files
    are equal and have the same :attr:`digest` whatever order they were built in.

    Args:
        entries: the files.

    Raises:
        InvalidInputError: a malformed entry or a duplicate path.

    Example::

        m = FolderManifest((FileEntry("a.txt", 3, hash_bytes(b"abc")),))
        m.digest, m.total_size, FolderManifest.from_bytes(m.to_bytes()) == m
    """

    entries: tuple[FileEntry, ...]

    def __post_init__(self) -> None:
        checked = sorted((_check_entry(e) for e in self.entries), key=lambda e: e.path)
        for before, after in itertools.pairwise(checked):
            if before.path == after.path:
                raise InvalidInputError(
                    f"manifest lists {before.path!r} twice; each path may appear once"
                )
        object.__setattr__(self, "entries", tuple(checked))

    @classmethod
    def _trusted(cls, entries: list[FileEntry], *, encoded: bytes | None = None) -> FolderManifest:
        """A manifest from entries a scan produced (valid, unique): sorted, not re-checked.

        ``encoded``: their content encoding, if the caller made it already.
        """
        entries.sort(key=lambda e: e.path)
        manifest = object.__new__(cls)
        object.__setattr__(manifest, "entries", tuple(entries))
        if encoded is not None:
            manifest.__dict__["_encoded"] = encoded  # the cached_property's slot
        return manifest

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def total_size(self) -> int:
        """Bytes in all files together."""
        return sum(e.size for e in self.entries)

    @cached_property
    def _encoded(self) -> bytes:
        return encode_manifest((e.path, e.size, e.digest) for e in self.entries)

    def to_bytes(self) -> bytes:
        """The canonical encoding (``store.manifest.encode_manifest``, which ``doctor`` and
        ``gc`` read): compact ASCII JSON, files sorted by path.

        Returns:
            ``{"format":"shipyard.folder-manifest","version":1,"files":[[path,size,digest],...]}``
        """
        return self._encoded

    @cached_property
    def digest(self) -> str:
        """The folder's content hash: BLAKE3 of :meth:`to_bytes` (the manifest object's name)."""
        return blake3.blake3(self._encoded).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes) -> FolderManifest:
        """Read a manifest written by :meth:`to_bytes` (or a stored manifest, which also
        says where each file's bytes are), checking every field.

        Args:
            data: the encoded manifest.

        Returns:
            The manifest.

        Raises:
            InvalidInputError: the bytes are not a folder manifest of a known version.
        """
        return _manifest_from_bytes(data)

    def diff(self, other: FolderManifest) -> FolderChanges:
        """What changed from this manifest to ``other``.

        Args:
            other: the newer manifest.

        Returns:
            Paths in ``other`` only (added), in both with other bytes (modified),
            and in this one only (deleted).
        """
        old = {e.path: e for e in self.entries}
        new = {e.path: e for e in other.entries}
        return FolderChanges(
            added=tuple(p for p in new if p not in old),
            modified=tuple(
                p
                for p, e in new.items()
                if p in old and (old[p].digest, old[p].size) != (e.digest, e.size)
            ),
            deleted=tuple(p for p in old if p not in new),
        )


@gc_paused
def _manifest_from_bytes(data: bytes) -> FolderManifest:
    files, _ = decode_stored_manifest(data)  # every path, size and digest checked there
    entries = [FileEntry(f.path, f.size, f.digest) for f in files]
    entries.sort(key=lambda e: e.path)
    for before, after in itertools.pairwise(entries):
        if before.path == after.path:
            raise InvalidInputError(
                f"manifest lists {before.path!r} twice; each path may appear once"
            )
    return FolderManifest._trusted(entries)


# -- the hash cache ------------------------------------------------------------------------


class CacheEntry(NamedTuple):
    """What the cache knows about one file: the stat fields it was hashed with, and its digest."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    digest: str


def _signed(inode: int) -> int:
    """SQLite integers are signed 64-bit; some filesystems use the full unsigned range."""
    return inode - _INODE_WRAP if inode > _INODE_SIGNED_MAX else inode


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


class HashCache:
    """Digests of files keyed by (absolute path, size, mtime_ns, ctime_ns, inode), in SQLite.

    A file whose stat fields all match a row is not read again. ctime is part of
    the key as well (as in git): a tool can set a file's mtime back, but not its
    ctime. The database runs in WAL mode with a busy timeout, so several processes
    can share it. A cache failure never breaks a scan: a corrupt file is deleted and
    rebuilt, any other database error is logged and the files are hashed instead.
    Rows of files that no longer exist are removed when their folder is scanned.

    Args:
        path: the database file (created with its folder on first use), usually
            ``<settings.cache_dir>/file-hashes.db``.
        timeout_s: how long to wait for another process's write lock.

    Example::

        cache = HashCache(Path(settings.cache_dir) / HASH_CACHE_FILENAME)
        manifest = scan_folder("data/images", cache=cache)
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 10.0) -> None:
        self.path = Path(path).expanduser().absolute()
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._warned = False

    def __enter__(self) -> HashCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (the next call opens it again)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._pid = os.getpid()

    def _open(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid != os.getpid():
            self._conn = None  # inherited through fork: never use a parent's connection
            self._pid = os.getpid()
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                if conn.execute("PRAGMA user_version").fetchone()[0] != _CACHE_SCHEMA:
                    self._create_schema(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != _CACHE_SCHEMA:
                conn.execute("DROP TABLE IF EXISTS file_hashes")
                conn.execute(
                    "CREATE TABLE file_hashes (path BLOB PRIMARY KEY, size INTEGER NOT NULL, "
                    "mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, "
                    "inode INTEGER NOT NULL, digest TEXT NOT NULL) WITHOUT ROWID"
                )
                conn.execute(f"PRAGMA user_version = {_CACHE_SCHEMA}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _rebuild(self) -> None:
        self._drop()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def _run(self, action: str, fn: Callable[[sqlite3.Connection], Any], default: Any) -> Any:
        """``fn(connection)``; on a cache failure, log it and return ``default``.

        A corrupt database is deleted and rebuilt (then ``fn`` runs once more).
        """
        with self._lock:
            for attempt in (1, 2):
                try:
                    return fn(self._open())
                except sqlite3.DatabaseError as exc:
                    if attempt == 1 and _is_corrupt(exc):
                        logger.warning(
                            "file-hash cache %s is corrupt (%s); rebuilding it", self.path, exc
                        )
                        try:
                            self._rebuild()
                        except OSError as rm_exc:
                            self._report(action, rm_exc)
                            return default
                        continue
                    self._report(action, exc)
                    self._drop()
                    return default
                except (OSError, sqlite3.Error) as exc:
                    self._report(action, exc)
                    self._drop()
                    return default
            return default

    def _report(self, action: str, exc: BaseException) -> None:
        log = logger.debug if self._warned else logger.warning
        self._warned = True
        log(
            "file-hash cache %s could not %s (%s: %s); files are hashed instead",
            self.path,
            action,
            type(exc).__name__,
            exc,
        )

    def lookup(self, folder: str | os.PathLike[str]) -> dict[str, CacheEntry]:
        """Every row for a file under ``folder``, in one query.

        Args:
            folder: an absolute folder path.

        Returns:
            Absolute file path -> :class:`CacheEntry`; empty if the cache is unavailable.
        """
        low = os.fsencode(os.path.join(os.fspath(folder), ""))
        high = low[:-1] + bytes([low[-1] + 1])  # just past every "<folder>/..." (a byte range)

        def query(conn: sqlite3.Connection) -> dict[str, CacheEntry]:
            rows = conn.execute(
                "SELECT path, size, mtime_ns, ctime_ns, inode, digest FROM file_hashes "
                "WHERE path >= ? AND path < ?",
                (low, high),
            ).fetchall()
            enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
            return {
                p.decode(enc, errors): CacheEntry(s, m, c, i % _INODE_WRAP, d)
                for p, s, m, c, i, d in rows
            }

        found: dict[str, CacheEntry] = self._run("be read", query, {})
        return found

    def update(
        self,
        rows: Mapping[str, CacheEntry] | Iterable[tuple[str, CacheEntry]],
        *,
        remove: Iterable[str] = (),
    ) -> None:
        """Insert or replace rows and delete others, in one transaction.

        Args:
            rows: absolute file path -> entry.
            remove: absolute paths whose rows to delete.
        """
        items = list(rows.items() if isinstance(rows, Mapping) else rows)
        self._write(
            [
                (os.fsencode(p), e.size, e.mtime_ns, e.ctime_ns, _signed(e.inode), e.digest)
                for p, e in items
            ],
            [(os.fsencode(p),) for p in remove],
        )

    def _write(
        self, values: list[tuple[bytes, int, int, int, int, str]], gone: list[tuple[bytes]]
    ) -> None:
        """Insert or replace encoded rows and delete others, in one transaction."""
        if not values and not gone:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM file_hashes WHERE path = ?", gone)
                conn.executemany(
                    "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?, ?)", values
                )
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

        self._run("be written", write, None)


# -- walking and hashing ---------------------------------------------------------------------


class _Found(NamedTuple):
    """A regular file found by the walk (``abspath`` may go through a symlink inside the root)."""

    rel: str
    abspath: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


def _check_root(root: str | os.PathLike[str]) -> str:
    path = os.path.abspath(os.fspath(root))
    if not os.path.exists(path):
        raise InvalidInputError(
            f"folder {path} does not exist; pass the path of an existing folder "
            f"(relative paths are resolved against {os.getcwd()})"
        )
    if not os.path.isdir(path):
        raise InvalidInputError(
            f"{path} is a file, not a folder; pass the folder that holds it "
            "(or version the file on its own)"
        )
    return path


def _unreadable(path: str, exc: OSError, root: str) -> InvalidInputError:
    if isinstance(exc, PermissionError):
        fix = f"make it readable (chmod u+r) or move it out of {root}"
    else:
        fix = f"check the disk, or move it out of {root}"
    return InvalidInputError(f"cannot read {path}: {exc.strerror or exc}; {fix}")


def _bad_top_name(name: str) -> bool:
    """A first path part ``check_artifact_path`` refuses: blank, or like a drive (``C:``)."""
    return not name.strip() or (name[:1] in string.ascii_letters and name[1:2] == ":")


def _unstorable_name(rel: str, root: str) -> InvalidInputError:
    return InvalidInputError(
        f"{os.path.join(root, rel)!r} cannot be listed in a folder manifest: manifest paths "
        "have no backslash, do not start with a drive such as 'C:' or a blank name, and "
        f"have at most {ARTIFACT_PATH_MAX} characters. Rename it, or move it out of {root}"
    )


def _changed(path: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path} changed while the folder was being scanned; run again when nothing is "
        "writing to the folder"
    )


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(root: str) -> tuple[list[_Found], dict[str, list[str]]]:
    """Every regular file under ``root``, and what was skipped (reason -> relative paths).

    Iterative (no recursion limit). Symlinks are followed only when their target
    is inside ``root``; a symlinked folder that leads back to one of its own
    ancestors is not entered twice, so cycles end.
    """
    real_root = os.path.realpath(root)
    found: list[_Found] = []
    skipped: dict[str, list[str]] = {}
    root_stat = os.stat(root)
    # (folder path, relative prefix, identities of the folders on the way down)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (root, "", frozenset({(root_stat.st_dev, root_stat.st_ino)}))
    ]
    while stack:
        folder, prefix, chain = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError as exc:
            raise _unreadable(folder, exc, root) from None
        with it:
            for entry in it:
                rel = prefix + entry.name
                if (
                    "\\" in entry.name
                    or len(rel) > ARTIFACT_PATH_MAX
                    or (not prefix and _bad_top_name(entry.name))
                ):
                    raise _unstorable_name(rel, root)
                try:
                    if entry.is_symlink():
                        if not _inside(os.path.realpath(entry.path), real_root):
                            skipped.setdefault("symlinks pointing outside the folder", []).append(
                                rel
                            )
                            continue
                        st = os.stat(entry.path)  # follows the link
                    elif entry.is_dir(follow_symlinks=False) or entry.is_file(
                        follow_symlinks=False
                    ):
                        st = entry.stat(follow_symlinks=False)
                    else:
                        skipped.setdefault("special files", []).append(rel)
                        continue
                except FileNotFoundError:
                    if entry.is_symlink():
                        skipped.setdefault("broken symlinks", []).append(rel)
                    continue  # deleted since it was listed: as if it was never there
                except OSError as exc:
                    raise _unreadable(entry.path, exc, root) from None
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    identity = (st.st_dev, st.st_ino)
                    if identity in chain:
                        skipped.setdefault("symlinked folders that loop", []).append(rel)
                        continue
                    stack.append((entry.path, rel + "/", chain | {identity}))
                elif stat.S_ISREG(mode):
                    found.append(
                        _Found(
                            rel,
                            entry.path,
                            st.st_size,
                            st.st_mtime_ns,
                            st.st_ctime_ns,
                            st.st_ino,
                        )
                    )
                else:
                    skipped.setdefault("special files", []).append(rel)
    return found, skipped


def _hash_file(path: str, size: int, root: str) -> str:
    """BLAKE3 of a file whose stat said ``size`` bytes; raises if it changed meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise _changed(path) from None
    except OSError as exc:
        raise _unreadable(path, exc, root) from None
    try:
        if size < CHUNK:
            data = os.read(fd, size + 1)  # one read: a short read is the end of the file
            if len(data) != size:
                raise _changed(path)
            return blake3.blake3(data).hexdigest()
        big = size >= BIG_FILE
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if big else 1)
        total = 0
        while block := os.read(fd, 8 * CHUNK if big else CHUNK):
            hasher.update(block)
            total += len(block)
        if total != size:
            raise _changed(path)
        return hasher.hexdigest()
    except OSError as exc:
        raise _unreadable(path, exc, root) from None
    finally:
        os.close(fd)


def _tasks(files: Sequence[_Found]) -> Iterator[list[_Found]]:
    """Groups of files of about equal work (by count and bytes) for the hashing pool."""
    group: list[_Found] = []
    size = 0
    for f in files:
        group.append(f)
        size += f.size
        if len(group) >= _TASK_FILES or size >= _TASK_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _hash_files(files: Sequence[_Found], root: str, workers: int) -> list[str]:
    """Digests of ``files``, in order, hashed on ``workers`` threads."""
    if not files:
        return []

    def run(group: list[_Found]) -> list[str]:
        return [_hash_file(f.abspath, f.size, root) for f in group]

    tasks = list(_tasks(files))
    if workers == 1 or len(tasks) == 1:
        return [d for task in tasks for d in run(task)]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(tasks)))
    try:
        futures = [pool.submit(run, task) for task in tasks]
        return [d for future in futures for d in future.result()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _log_skipped(root: str, skipped: Mapping[str, list[str]]) -> None:
    if skipped:
        logger.warning(
            "skipped in %s: %s; copy the files into the folder if they belong to the data",
            root,
            "; ".join(
                f"{len(paths)} {reason} (e.g. {paths[0]!r})" for reason, paths in skipped.items()
            ),
        )


class _Scan:
    """One walk of a folder matched against the cache.

    ``known`` holds the files whose cached digest still applies (with it),
    ``unknown`` the files to hash.
    """

    def __init__(self, root: str, cache: HashCache | None) -> None:
        self.root = root
        self.cache = cache
        self.started_ns = time.time_ns()
        self.files, skipped = _walk(root)
        _log_skipped(root, skipped)
        self.cached: dict[str, CacheEntry] = cache.lookup(root) if cache is not None else {}
        self.known: list[tuple[_Found, str]] = []
        self.unknown: list[_Found] = []
        get = self.cached.get
        for f in self.files:
            row = get(f.abspath)
            if (
                row is not None
                and row[0] == f.size
                and row[1] == f.mtime_ns
                and row[2] == f.ctime_ns
                and row[3] == f.inode
            ):
                self.known.append((f, row[4]))
            else:
                self.unknown.append(f)

    def record(
        self,
        hashed: Sequence[_Found],
        digests: Sequence[str],
        *,
        relinked: Collection[str] = frozenset(),
    ) -> None:
        """Cache the new digests (except racily recent files) and drop stale rows.

        ``relinked``: files whose ctime changed because they were just hard-linked into
        the store (their content did not): only their mtime must be old enough.
        """
        if self.cache is None:
            return
        cutoff = self.started_ns - RACY_WINDOW_NS
        enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
        fresh = [
            (
                f.abspath.encode(enc, errors),
                f.size,
                f.mtime_ns,
                f.ctime_ns,
                f.inode if f.inode <= _INODE_SIGNED_MAX else f.inode - _INODE_WRAP,
                d,
            )
            for f, d in zip(hashed, digests, strict=True)
            if f.mtime_ns < cutoff and (f.ctime_ns < cutoff or f.abspath in relinked)
        ]
        stale: list[tuple[bytes]] = []
        if len(self.known) != len(self.cached):  # some rows are outdated or gone
            hits = {f.abspath for f, _ in self.known}
            hits.update(f.abspath for f in hashed)
            stale = [(p.encode(enc, errors),) for p in self.cached if p not in hits]
        self.cache._write(fresh, stale)

    def manifest(self, digests: Sequence[str]) -> FolderManifest:
        """The manifest, given the digests of :attr:`unknown`."""
        entries = [FileEntry(f.rel, f.size, d) for f, d in self.known]
        entries.extend(
            FileEntry(f.rel, f.size, d) for f, d in zip(self.unknown, digests, strict=True)
        )
        return FolderManifest._trusted(entries)


def _check_not_empty(scan: _Scan) -> None:
    if not scan.files:
        raise InvalidInputError(
            f"folder {scan.root} holds no files to version (symlinks pointing outside it "
            "and special files are skipped); add files to it or pass another folder"
        )


@gc_paused
def scan_folder(
    root: str | os.PathLike[str], *, cache: HashCache | None, workers: int | None = None
) -> FolderManifest:
    """The manifest of every file under ``root``, reading only files the cache does not know.

    Walks the folder with ``os.scandir`` (iteratively) and stats every file. A file
    whose (path, size, mtime, ctime, inode) matches a cache row keeps its cached
    digest without being opened; the others are hashed on a thread pool and
    recorded in the cache (except files modified in the last 2 seconds, whose
    timestamps cannot yet prove a later change). So a second scan of an unchanged
    folder reads no file contents.

    What is included: regular files, and symlinks (to files or folders) whose
    target is inside ``root``, under the link's path. Skipped, with one warning
    in the log: symlinks pointing outside ``root``, broken symlinks, symlinked
    folders that loop back to their own ancestors, and special files (sockets,
    FIFOs, devices). Empty folders leave no trace: a manifest lists files.

    Args:
        root: the folder.
        cache: the hash cache, or None to hash every file.
        workers: hashing threads (default: two per CPU, at most 16).

    Returns:
        The folder's manifest.

    Raises:
        InvalidInputError: ``root`` is missing, not a folder, or holds no files; a
            file or folder cannot be read; a file changed while it was hashed.

    Example::

        manifest = scan_folder("data/images", cache=HashCache("~/.cache/shipyard/file-hashes.db"))
        manifest.digest, len(manifest), manifest.total_size
    """
    path = _check_root(root)
    n_workers = check_workers(workers, default=default_hash_workers())
    t0 = time.perf_counter()
    scan = _Scan(path, cache)
    _check_not_empty(scan)
    digests = _hash_files(scan.unknown, path, n_workers)
    scan.record(scan.unknown, digests)
    logger.debug(
        "scanned %s: %d files, %d hashed, %d from the cache, %.3f s",
        path,
        len(scan.files),
        len(scan.unknown),
        len(scan.known),
        time.perf_counter() - t0,
    )
    return scan.manifest(digests)


@gc_paused
def folder_status(
    manifest: FolderManifest,
    root: str | os.PathLike[str],
    *,
    cache: HashCache | None,
    workers: int | None = None,
) -> FolderChanges:
    """Which files under ``root`` differ from ``manifest``.

    Reads only what it must: a new path is added and a file of another size is
    modified without being opened; a file the cache knows is compared by its
    cached digest; only the remaining files are hashed (and cached). With a warm
    cache, an unchanged folder is checked by stat calls alone.

    Args:
        manifest: the stored manifest to compare with.
        root: the folder as it is now (it may be empty: then every file was deleted).
        cache: the hash cache, or None.
        workers: hashing threads (default: two per CPU, at most 16).

    Returns:
        The added, modified and deleted paths.

    Raises:
        InvalidInputError: ``root`` is missing or not a folder; a file or folder
            cannot be read; a file changed while it was hashed.

    Example::

        changes = folder_status(manifest, "data/images", cache=cache)
        if changes:
            print(changes.added, changes.modified, changes.deleted)
    """
    path = _check_root(root)
    n_workers = check_workers(workers, default=default_hash_workers())
    scan = _Scan(path, cache)
    stored = {e.path: e for e in manifest.entries}
    added: list[str] = []
    modified: list[str] = []
    for f, digest in scan.known:
        old = stored.get(f.rel)
        if old is None:
            added.append(f.rel)
        elif (old.size, old.digest) != (f.size, digest):
            modified.append(f.rel)
    to_hash: list[_Found] = []
    for f in scan.unknown:
        old = stored.get(f.rel)
        if old is None:
            added.append(f.rel)
        elif old.size != f.size:
            modified.append(f.rel)
        else:
            to_hash.append(f)
    digests = _hash_files(to_hash, path, n_workers)
    modified.extend(
        f.rel for f, d in zip(to_hash, digests, strict=True) if d != stored[f.rel].digest
    )
    scan.record(to_hash, digests)
    seen = {f.rel for f in scan.files}
    return FolderChanges(
        added=tuple(sorted(added)),
        modified=tuple(sorted(modified)),
        deleted=tuple(p for p in stored if p not in seen),
    )
