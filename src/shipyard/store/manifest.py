"""The manifest of a folder version: its files' relative paths, sizes and digests, and
where the store keeps each file's bytes.

Two encodings:

- the *content* encoding (version 1): ``{"format":"shipyard.folder-manifest",
  "version":1,"files":[[path,size,digest],...]}``, sorted compact JSON. The same
  files always give the same bytes, so its BLAKE3 digest is the folder's content
  hash, whatever the store holds.
- the *stored* encoding (version 2), what a folder version's object holds: the same
  files plus where their bytes are. Small files are packed together into *pack*
  objects (one object for many files: creating one file per 1 KB object costs far
  more than writing it); a packed file's row reads ``[path,size,digest,pack,offset]``,
  where ``pack`` indexes the ``"packs"`` list of pack digests and ``offset`` is the
  file's first byte in that pack. Other files are objects of their own (a 3-item row).

Version-1 documents are still read (all files loose). This module lives in the
store because ``doctor`` and ``gc`` must see which objects a folder version holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from shipyard.core.errors import InvalidInputError
from shipyard.core.validation import check_artifact_path, is_normal_artifact_path
from shipyard.store.objects import check_digest

MANIFEST_FORMAT = "shipyard.folder-manifest"
MANIFEST_VERSION = 1  # the content encoding
STORED_MANIFEST_VERSION = 2  # the stored encoding (with pack locations)
_DIGEST = re.compile(r"[0-9a-f]{64}")
LOOSE = -1  # StoredFile.pack of a file stored as an object of its own


class StoredFile(NamedTuple):
    """One file of a stored folder: its bytes are object ``digest`` (``pack == LOOSE``) or
    ``size`` bytes at ``offset`` in pack number ``pack``."""

    path: str
    size: int
    digest: str
    pack: int = LOOSE
    offset: int = 0


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def encode_manifest(entries: Iterable[tuple[str, int, str]]) -> bytes:
    """Canonical content bytes for ``(path, size, digest)`` entries (order does not matter)."""
    rows = sorted((str(p), int(s), str(d)) for p, s, d in entries)
    return encode_manifest_rows([list(r) for r in rows])


def encode_manifest_rows(rows: list[list[Any]]) -> bytes:
    """:func:`encode_manifest` of ``[path, size, digest]`` rows already sorted by path."""
    return _dump({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "files": rows})


def encode_stored_manifest(files: Iterable[StoredFile], packs: Sequence[str]) -> bytes:
    """The stored encoding: files sorted by path, packed ones with their pack and offset."""
    rows: list[list[Any]] = []
    for f in sorted(files):
        if f.pack == LOOSE:
            rows.append([f.path, f.size, f.digest])
        else:
            rows.append([f.path, f.size, f.digest, f.pack, f.offset])
    return encode_stored_rows(rows, packs)


def encode_stored_rows(rows: list[list[Any]], packs: Sequence[str]) -> bytes:
    """:func:`encode_stored_manifest` of rows already sorted by path: ``[path, size,
    digest]`` for a file of its own, ``[path, size, digest, pack, offset]`` for a packed one."""
    return _dump(
        {
            "format": MANIFEST_FORMAT,
            "version": STORED_MANIFEST_VERSION,
            "packs": list(packs),
            "files": rows,
        }
    )


def _whole(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def decode_stored_manifest(
    data: bytes, *, check_paths: bool = True
) -> tuple[list[StoredFile], list[str]]:
    """The files (with their locations) and the pack digests of a manifest of either version.

    Every path, size, digest, pack index and offset is checked, so a damaged or
    hand-edited manifest cannot name a path outside its folder or a byte outside a pack.
    ``check_paths=False`` skips the paths, for a reader that uses only the digests and
    locations (reusing a previous version's packs).

    Raises:
        InvalidInputError: the bytes are not a folder manifest of a known version.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"not a folder manifest: the bytes are not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise InvalidInputError(
            f"not a folder manifest: expected a JSON object with format {MANIFEST_FORMAT!r}"
        )
    version = doc.get("version")
    if version not in (MANIFEST_VERSION, STORED_MANIFEST_VERSION):
        raise InvalidInputError(
            f"folder manifest version {version!r} is not supported (this shipyard reads "
            f"versions {MANIFEST_VERSION} and {STORED_MANIFEST_VERSION}); upgrade shipyard"
        )
    try:
        packs = doc.get("packs", []) if version == STORED_MANIFEST_VERSION else []
        if not isinstance(packs, list):
            raise ValueError("'packs' must be a list of digests")
        for pack in packs:
            check_digest(pack)
        rows = doc.get("files")
        if not isinstance(rows, list):
            raise ValueError("'files' must be a list")
        lengths = (3,) if version == MANIFEST_VERSION else (3, 5)
        n_packs = len(packs)
        files: list[StoredFile] = []
        append = files.append
        for row in rows:
            if type(row) is not list or len(row) not in lengths:
                shape = "[path, size, digest]" + (
                    "" if version == MANIFEST_VERSION else " or [path, size, digest, pack, offset]"
                )
                raise ValueError(f"each file must be {shape}, got {row!r}")
            path, size, digest = row[0], row[1], row[2]
            if type(path) is not str or type(digest) is not str:
                raise ValueError(f"path and digest must be strings, got {row!r}")
            if type(size) is not int or size < 0:
                _whole(size, "a file size")
            if (
                check_paths
                and not is_normal_artifact_path(path)
                and check_artifact_path(path) != path
            ):
                raise ValueError(f"path {path!r} is not in normal form")
            if not _DIGEST.fullmatch(digest):
                check_digest(digest)
            if len(row) == 5:
                pack, offset = row[3], row[4]
                if type(pack) is not int or type(offset) is not int or offset < 0:
                    _whole(pack, "a pack index")
                    _whole(offset, "an offset")
                if not 0 <= pack < n_packs:
                    raise ValueError(f"{path!r} names pack {pack}, but there are {n_packs}")
                append(StoredFile(path, size, digest, pack, offset))
            else:
                append(StoredFile(path, size, digest))
    except InvalidInputError as exc:
        raise InvalidInputError(f"not a valid folder manifest: {exc}") from None
    except ValueError as exc:
        raise InvalidInputError(f"not a valid folder manifest: {exc}") from None
    return files, packs


def decode_manifest(data: bytes) -> list[tuple[str, int, str]]:
    """The ``(path, size, digest)`` entries of a manifest of either version.

    Raises:
        InvalidInputError: the bytes are not a folder manifest of a known version.
    """
    files, _ = decode_stored_manifest(data)
    return [(f.path, f.size, f.digest) for f in files]


def manifest_entries(data: bytes) -> list[tuple[str, str]]:
    """``(label, object digest)`` for every object a stored manifest holds: each loose
    file under its path, and each pack as ``(pack N: M files)``."""
    files, packs = decode_stored_manifest(data)
    members = [0] * len(packs)
    out: list[tuple[str, str]] = []
    for f in files:
        if f.pack == LOOSE:
            out.append((f.path, f.digest))
        else:
            members[f.pack] += 1
    out.extend(
        (f"(pack {i}: {n} file{'' if n == 1 else 's'})", digest)
        for i, (digest, n) in enumerate(zip(packs, members, strict=True))
    )
    return out
