"""Storing folders in the object store and writing them back out.

:func:`store_folder` puts a folder's files into an object store with as few new
objects as it can: files under :data:`PACK_FILE_MAX` bytes are concatenated into
*pack* objects of about :data:`PACK_TARGET` bytes (one durable object for
thousands of small files: on a local disk creating a file costs far more than
writing 1 KB into one, and on S3 a request costs far more than its bytes); bigger
files become objects of their own, hashed while they are copied. Whatever the
previous version of the dataset already holds (same digest) is reused without
reading the file, and the hash cache spares reading unchanged files at all.

The folder's content hash does not depend on any of this: it is the digest of the
content manifest (paths, sizes, digests). What is stored is the *stored manifest*,
which adds where each file's bytes are (see :mod:`shipyard.store.manifest`).

:func:`checkout_folder` writes a stored folder's files under a destination,
every file checked against its own digest, each written atomically.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from shipyard.core.errors import InvalidInputError, ShipyardError
from shipyard.data.folders import (
    FileEntry,
    FolderManifest,
    HashCache,
    _changed,
    _check_not_empty,
    _check_root,
    _Found,
    _Scan,
    _unreadable,
    gc_paused,
)
from shipyard.store.manifest import (
    LOOSE,
    decode_stored_manifest,
    encode_manifest_rows,
    encode_stored_rows,
)
from shipyard.store.objects import CHUNK, CorruptObjectError, ObjectStore, check_workers

logger = logging.getLogger(__name__)

PACK_FILE_MAX = 256 * 1024
"""Files smaller than this many bytes are packed with others; bigger ones are objects."""
PACK_TARGET = 64 * CHUNK
"""A pack is closed (stored) once it holds at least this many bytes."""
_READ_TASK_FILES = 256  # small files read per thread-pool task

Location = tuple[str | None, int]  # (pack digest, offset), or (None, 0) for an object of its own
_LOOSE_LOCATION: Location = (None, 0)


@dataclass(frozen=True)
class StoredFolder:
    """What :func:`store_folder` stored.

    Attributes:
        manifest: the folder's content (its ``digest`` is the folder's content hash).
        object_digest: the stored manifest object (content plus where each file is).
        packs: the pack objects the folder's small files are in.
        read: files whose bytes were read (the others came from the hash cache and
            the previous version, or their object existed already).
        packed: files kept in packs.
    """

    manifest: FolderManifest
    object_digest: str
    packs: tuple[str, ...]
    read: int
    packed: int


def previous_locations(objects: ObjectStore, stored_manifest: str | None) -> dict[str, Location]:
    """digest -> where the version stored as ``stored_manifest`` keeps those bytes.

    Only the packs and objects that still exist are returned (and they are marked
    as just used, so ``gc`` keeps them while the new version is recorded). An
    unreadable old manifest gives nothing to reuse, not an error.
    """
    if stored_manifest is None:
        return {}
    try:
        files, packs = decode_stored_manifest(objects.get_bytes(stored_manifest), check_paths=False)
    except ShipyardError as exc:  # reuse is an optimisation: the files are read instead
        logger.warning("cannot reuse %s (%s); reading every file", stored_manifest, exc)
        return {}
    alive = objects.keep(packs) if packs else set()
    found: dict[str, Location] = {}
    for f in files:
        if f.pack == LOOSE:
            found[f.digest] = (None, 0)
        elif packs[f.pack] in alive:
            found[f.digest] = (packs[f.pack], f.offset)
    return found


def _read_file(f: _Found, root: str) -> bytes:
    """A small file's bytes, checked against the size its stat gave."""
    try:
        fd = os.open(f.abspath, os.O_RDONLY)
    except FileNotFoundError:
        raise _changed(f.abspath) from None
    except OSError as exc:
        raise _unreadable(f.abspath, exc, root) from None
    try:
        data = os.read(fd, f.size + 1)  # one read: a short read is the end of the file
        while len(data) <= f.size and (more := os.read(fd, f.size + 1 - len(data))):
            data += more
    except OSError as exc:
        raise _unreadable(f.abspath, exc, root) from None
    finally:
        os.close(fd)
    if len(data) != f.size:
        raise _changed(f.abspath)
    return data


class _PackWriter:
    """Concatenates small files into packs; each full pack is stored on a background
    thread (hashing, writing and fsyncing it need no GIL) while the next one fills.
    At most one pack is being stored at a time, so memory stays at about two packs."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.parts: list[bytes] = []
        self.size = 0
        self.members: list[tuple[str, int]] = []  # (digest, offset) in the pack being filled
        self.queued: set[str] = set()  # every digest given to add()
        self.placed: dict[str, Location] = {}
        self.packs: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-pack")
        self._storing: Future[None] | None = None

    def pack_all(
        self, files: Sequence[_Found], root: str, reuse: Mapping[str, Location]
    ) -> list[str]:
        """Read and hash ``files`` in order and pack them; return their digests.

        A file whose digest is in ``reuse`` (stored already) or packed already is not
        packed again. Reading runs in the calling thread: for small files the work is a
        few system calls and a little Python each, and threads contending for the GIL
        made it 1.5 to 2.5x slower than one thread (measured on 100,000 files of 1 KB).
        """
        digests: list[str] = []
        queued, hasher = self.queued, blake3.blake3
        for f in files:
            data = _read_file(f, root)
            digest = hasher(data).hexdigest()
            digests.append(digest)
            if digest in queued or digest in reuse:
                continue
            queued.add(digest)
            self.members.append((digest, self.size))
            self.parts.append(data)
            self.size += len(data)
            if self.size >= PACK_TARGET:
                self._close()
        return digests

    def _close(self) -> None:
        if not self.members:
            return
        self._wait()
        parts, members = self.parts, self.members
        self.parts, self.members, self.size = [], [], 0
        self._storing = self._pool.submit(self._store, parts, members)

    def _store(self, parts: list[bytes], members: list[tuple[str, int]]) -> None:
        info = self.objects.put_bytes(b"".join(parts))
        self.packs.append(info.digest)
        for digest, offset in members:
            self.placed[digest] = (info.digest, offset)

    def _wait(self) -> None:
        if self._storing is not None:
            storing, self._storing = self._storing, None
            storing.result()

    def finish(self) -> None:
        """Store the last pack and wait until every pack is durable."""
        try:
            self._close()
            self._wait()
        finally:
            self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        """Stop after an error: wait for the pack being stored, keep nothing else."""
        with contextlib.suppress(Exception):
            self._wait()
        self._pool.shutdown(wait=True)


@contextlib.contextmanager
def _os_errors(root: str) -> Iterator[None]:
    """Turn an OSError about one of the folder's files into a clear InvalidInputError."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and str(exc.filename).startswith(root):
            if isinstance(exc, FileNotFoundError):
                raise _changed(str(exc.filename)) from None
            raise _unreadable(str(exc.filename), exc, root) from None
        raise


@gc_paused
def store_folder(
    root: str | os.PathLike[str],
    objects: ObjectStore,
    *,
    cache: HashCache | None,
    previous: str | None = None,
    workers: int | None = None,
    link: bool = False,
) -> StoredFolder:
    """Store every file under ``root`` and the stored manifest; return what was stored.

    The same walk and cache as :func:`~shipyard.data.folders.scan_folder`. Then, by file:

    - its digest is known (from the cache) and the previous version holds those
      bytes: reused, not read;
    - smaller than :data:`PACK_FILE_MAX`: read once (hashed on the way) and packed;
    - bigger: copied into an object of its own, hashed while copied (an object that
      exists already is not copied again).

    Packs and objects are durable before the stored manifest is written, and the
    stored manifest before this returns: a caller records the version only then.

    Args:
        root: the folder.
        objects: the object store.
        cache: the hash cache, or None.
        previous: the stored-manifest digest of the dataset's previous version,
            whose objects and packs may be reused.
        workers: threads for copying big files (default: the store's).
        link: hard-link big files into a local store instead of copying them (see
            ``LocalObjectStore.put_files``: they become read-only, and must not be
            edited in place afterwards). Small files are packed either way.

    Returns:
        The :class:`StoredFolder`.

    Raises:
        InvalidInputError: as :func:`~shipyard.data.folders.scan_folder`.
        OSError: the store cannot be written.

    Example::

        stored = store_folder("data/images", LocalObjectStore(".shipyard/objects"), cache=cache)
        stored.manifest.digest, stored.object_digest
    """
    path = _check_root(root)
    if workers is not None:
        check_workers(workers, default=1)
    t0 = time.perf_counter()
    scan = _Scan(path, cache)
    _check_not_empty(scan)
    t_scan = time.perf_counter()
    before = previous_locations(objects, previous)
    digest_of: dict[str, str] = {f.abspath: d for f, d in scan.known}
    placed: dict[str, Location] = {}
    big_known: list[tuple[_Found, str]] = []
    to_pack: list[_Found] = []
    to_copy: list[_Found] = []
    loose_reused: set[str] = set()
    for f, d in scan.known:
        where = before.get(d)
        if where is not None:
            placed[d] = where
            if where[0] is None:
                loose_reused.add(d)
        elif f.size >= PACK_FILE_MAX:
            big_known.append((f, d))
        else:
            to_pack.append(f)
    for f in scan.unknown:
        (to_pack if f.size < PACK_FILE_MAX else to_copy).append(f)
    if loose_reused:  # the previous version's own objects: check they are still there
        missing = loose_reused - objects.keep(sorted(loose_reused))
        for f, d in scan.known:
            if d in missing and placed.pop(d, None) is not None:
                (big_known.append((f, d)) if f.size >= PACK_FILE_MAX else to_pack.append(f))

    t_plan = time.perf_counter()
    hashed: list[_Found] = []
    hashed_digests: list[str] = []
    packer = _PackWriter(objects)
    with _os_errors(path):
        to_pack.sort(key=lambda f: f.rel)  # the same folder gives the same packs
        reuse = {d: w for d, w in before.items() if w[0] is not None}
        reuse.update(placed)
        try:
            digests = packer.pack_all(to_pack, path, reuse)
        except BaseException:
            packer.abandon()
            raise
        packer.finish()
        placed.update(packer.placed)
        for f, digest in zip(to_pack, digests, strict=True):
            if f.abspath not in digest_of:
                digest_of[f.abspath] = digest
                hashed.append(f)
                hashed_digests.append(digest)
            if digest not in placed:
                placed[digest] = reuse[digest]
        t_pack = time.perf_counter()
        if big_known:
            paths, digests = [f.abspath for f, _ in big_known], [d for _, d in big_known]
            objects.put_files(paths, digests=digests, workers=workers, link=link)
        infos = objects.put_files([f.abspath for f in to_copy], workers=workers, link=link)
    for f, info in zip(to_copy, infos, strict=True):
        if info.size != f.size:
            raise _changed(f.abspath)
        digest_of[f.abspath] = info.digest
        hashed.append(f)
        hashed_digests.append(info.digest)
    relinked: set[str] = set()
    if link:  # a link changes the file's ctime (and its mode): the cache keeps the new stat
        for f, d in big_known:
            hashed.append(f)
            hashed_digests.append(d)
        for i, f in enumerate(hashed):
            if f.size >= PACK_FILE_MAX:
                st = os.stat(f.abspath)
                if (st.st_ino, st.st_size, st.st_mtime_ns) == (f.inode, f.size, f.mtime_ns):
                    hashed[i] = f._replace(ctime_ns=st.st_ctime_ns)
                    relinked.add(f.abspath)
    t_copy = time.perf_counter()
    scan.record(hashed, hashed_digests, relinked=relinked)  # (on a thread: slower, the GIL)
    manifest, stored_bytes, packs, packed = _manifests(scan.files, digest_of, placed)
    info = objects.put_bytes(stored_bytes)
    t_record = time.perf_counter()
    logger.debug(
        "stored %s: %d files (%d packed in %d packs, %d of them new), %d read, %.3f s "
        "(walk %.3f, plan %.3f, pack %.3f, copy %.3f, manifest and cache %.3f)",
        path,
        len(scan.files),
        packed,
        len(packs),
        len(packer.packs),
        len(to_pack) + len(to_copy),
        t_record - t0,
        t_scan - t0,
        t_plan - t_scan,
        t_pack - t_plan,
        t_copy - t_pack,
        t_record - t_copy,
    )
    return StoredFolder(
        manifest=manifest,
        object_digest=info.digest,
        packs=tuple(packs),
        read=len(to_pack) + len(to_copy),
        packed=packed,
    )


def _manifests(
    files: Sequence[_Found], digest_of: Mapping[str, str], placed: Mapping[str, Location]
) -> tuple[FolderManifest, bytes, list[str], int]:
    """The content manifest, the stored manifest's bytes, the packs it names (numbered in
    path order) and the number of files in them."""
    entries: list[FileEntry] = []
    content: list[list[Any]] = []
    stored: list[list[Any]] = []
    pack_index: dict[str, int] = {}
    packed = 0
    for f in sorted(files):  # by relative path (unique), the first field
        rel, size, digest = f.rel, f.size, digest_of[f.abspath]
        entries.append(FileEntry(rel, size, digest))
        row = [rel, size, digest]
        content.append(row)
        pack, offset = placed.get(digest, _LOOSE_LOCATION)
        if pack is None:
            stored.append(row)
        else:
            packed += 1
            number = pack_index.get(pack)
            if number is None:
                number = pack_index[pack] = len(pack_index)
            stored.append([rel, size, digest, number, offset])
    manifest = FolderManifest._trusted(entries, encoded=encode_manifest_rows(content))
    packs = list(pack_index)
    return manifest, encode_stored_rows(stored, packs), packs, packed


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@gc_paused
def checkout_folder(
    objects: ObjectStore, stored_manifest: str, dest: str | os.PathLike[str]
) -> FolderManifest:
    """Write the files of a stored folder under ``dest``; return its content manifest.

    Every path is checked to stay inside ``dest`` before anything is written; each
    file's bytes are checked against its own digest (packs are read once each) and
    written to a temporary file that is renamed into place.

    Raises:
        InvalidInputError: the manifest is malformed or names a path outside ``dest``.
        NotFoundError: an object or pack is missing from the store.
        CorruptObjectError: an object, pack or file does not match its digest.
    """
    files, packs = decode_stored_manifest(objects.get_bytes(stored_manifest))
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    resolved = root.resolve()
    targets: list[Path] = []
    for f in files:
        target = (root / f.path).resolve()
        if os.path.commonpath([target, resolved]) != str(resolved):
            raise InvalidInputError(f"manifest path {f.path!r} leaves {root}")
        targets.append(target)
    by_pack: dict[int, list[int]] = {}
    for i, f in enumerate(files):
        if f.pack == LOOSE:
            objects.get_to_path(f.digest, targets[i])
        else:
            by_pack.setdefault(f.pack, []).append(i)
    for pack, members in sorted(by_pack.items()):
        data = objects.get_bytes(packs[pack])  # checked against the pack's digest
        for i in members:
            f = files[i]
            blob = data[f.offset : f.offset + f.size]
            if len(blob) != f.size or blake3.blake3(blob).hexdigest() != f.digest:
                raise CorruptObjectError(
                    f"{f.path} does not match its digest in pack {packs[pack]}: the stored "
                    "manifest is damaged; run `shipyard doctor`"
                )
            _write_atomic(targets[i], blob)
    return FolderManifest(tuple(FileEntry(f.path, f.size, f.digest) for f in files))
