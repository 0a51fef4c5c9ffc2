"""The manifest of a folder version: its files' relative paths, sizes and object digests.

One canonical encoding (sorted, compact JSON) so that the same files always give the
same bytes and so the same digest. It lives in the store because ``doctor`` and ``gc``
must see which objects a folder version holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from shipyard.core.errors import InvalidInputError
from shipyard.core.validation import check_artifact_path
from shipyard.store.objects import check_digest

MANIFEST_FORMAT = "shipyard.folder-manifest"
MANIFEST_VERSION = 1


def encode_manifest(entries: Iterable[tuple[str, int, str]]) -> bytes:
    """Canonical bytes for ``(path, size, digest)`` entries (order does not matter)."""
    rows = sorted((str(p), int(s), str(d)) for p, s, d in entries)
    doc = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "files": [list(r) for r in rows]}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def decode_manifest(data: bytes) -> list[tuple[str, int, str]]:
    """The ``(path, size, digest)`` entries, each path and digest checked.

    Raises:
        InvalidInputError: the bytes are not a manifest of this format.
    """
    try:
        doc = json.loads(data)
        if doc.get("format") != MANIFEST_FORMAT or doc.get("version") != MANIFEST_VERSION:
            raise ValueError(
                f"format {doc.get('format')!r} version {doc.get('version')!r}, expected "
                f"{MANIFEST_FORMAT!r} version {MANIFEST_VERSION}"
            )
        rows = [(str(p), int(s), str(d)) for p, s, d in doc["files"]]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInputError(f"not a shipyard folder manifest: {exc}") from exc
    for path, _, digest in rows:
        check_artifact_path(path)
        check_digest(digest)
    return rows


def manifest_entries(data: bytes) -> list[tuple[str, str]]:
    """``(path, digest)`` for every file of a manifest."""
    return [(p, d) for p, _, d in decode_manifest(data)]
