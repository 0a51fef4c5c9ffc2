"""Step caching: a step's key from its code, inputs and params; its outputs kept in the store.

A pipeline step is skipped, as a DVC stage is, when nothing it depends on changed. Its
*key* is the BLAKE3 hash of a canonical JSON document holding

- its code (:func:`code_fingerprint`): the command text of a ``run`` step after
  interpolation, the source of the function of a ``call`` step (``module:function``),
  or the name of a ``uses`` built-in with the shipyard version;
- the content digests of its inputs (:class:`InputHasher`: files, folders; the runner
  adds dataset versions' digests);
- its params, and anything else the caller passes as ``extra`` (declared outputs,
  built-in options).

After a step ran, :meth:`OutputStore.save` puts every output file into the
content-addressed object store and returns an :class:`OutputManifest`; the runner
records it under the key. When the key comes round again, :meth:`OutputStore.present`
says whether the outputs are still there as they were written, and
:meth:`OutputStore.restore` rewrites the ones that are missing or changed.

Hashing goes through the stat-keyed :class:`~shipyard.data.folders.HashCache`, so an
unchanged input costs a ``stat`` and a cache lookup: no file is read again.

Example::

    hasher = InputHasher(root, hash_cache=HashCache(cache_dir / HASH_CACHE_FILENAME))
    inputs = {dep: hasher.digest(dep).digest for dep in ["data/raw.csv", "steps/prep.py"]}
    key = step_key(code=code_fingerprint("run", "python steps/prep.py", root=root),
                   inputs=inputs, params={"test_size": 0.2})
    outputs = OutputStore(objects, root, hasher=hasher)
    manifest = outputs.save(["data/prepared"])          # after the step ran
    if not outputs.present(manifest):                   # on a later, cached run
        outputs.restore(manifest)
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import importlib.util
import json
import logging
import math
import os
import posixpath
import shutil
import sqlite3
import stat
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any, Literal, NamedTuple

import blake3

from shipyard import __version__
from shipyard.core.errors import InvalidInputError
from shipyard.data import folders
from shipyard.data.folders import CacheEntry, FileEntry, FolderManifest, HashCache, scan_folder
from shipyard.store.objects import ObjectStore, check_digest, hash_file

logger = logging.getLogger(__name__)

__all__ = [
    "InputHasher",
    "OutputEntry",
    "OutputFile",
    "OutputManifest",
    "OutputStore",
    "PathDigest",
    "code_fingerprint",
    "step_key",
]

PathKind = Literal["file", "dir", "missing"]
STEP_KEY_VERSION = 1
MANIFEST_FORMAT = "shipyard.step-outputs"
MANIFEST_VERSION = 1
_INODE_WRAP = 1 << 64
_STEP_KINDS = ("run", "call", "uses")


# -- paths --------------------------------------------------------------------------------


def _normal_path(path: object, *, what: str, root: str, inside: bool) -> str:
    """``path`` relative to ``root`` in its normal POSIX form (``a//b/./c`` -> ``a/b/c``).

    ``inside``: refuse paths that leave ``root`` (``../x``): outputs are written there.
    """
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise InvalidInputError(f"{what} path must be a non-empty string, got {path!r}")
    if posixpath.isabs(path) or os.path.isabs(path):
        raise InvalidInputError(
            f"{what} {path!r} is an absolute path; name it relative to the pipeline's folder {root}"
        )
    norm = posixpath.normpath(path)
    if norm == ".":
        raise InvalidInputError(
            f"{what} {path!r} names the pipeline's folder itself; name a file or a folder in it"
        )
    if inside and (norm == ".." or norm.startswith("../")):
        raise InvalidInputError(
            f"{what} {path!r} is outside the pipeline's folder {root}; steps write their "
            "outputs inside it"
        )
    return norm


def _is_racy(st: os.stat_result, started_ns: int) -> bool:
    """True when ``st`` is too recent for its timestamps to prove a later change (see
    ``folders.RACY_WINDOW_NS``): such a digest is used but not cached."""
    cutoff = started_ns - folders.RACY_WINDOW_NS
    return not (st.st_mtime_ns < cutoff and st.st_ctime_ns < cutoff)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _cached_row(cache: HashCache, path: str) -> CacheEntry | None:
    """The cache's row for one file, by one primary-key query.

    ``HashCache.lookup`` answers for a whole folder tree, which for a file at the top of
    a project means every cached file below it. Goes through ``HashCache._run`` so a
    cache failure is logged and ignored like everywhere else (a ``get`` on HashCache
    would be the better home for this query).
    """

    def query(conn: sqlite3.Connection) -> CacheEntry | None:
        row = conn.execute(
            "SELECT size, mtime_ns, ctime_ns, inode, digest FROM file_hashes WHERE path = ?",
            (os.fsencode(path),),
        ).fetchone()
        if row is None:
            return None
        size, mtime_ns, ctime_ns, inode, digest = row
        return CacheEntry(size, mtime_ns, ctime_ns, inode % _INODE_WRAP, digest)

    found: CacheEntry | None = cache._run("be read", query, None)
    return found


def _holds_no_files(path: str) -> bool:
    return not any(files for _, _, files in os.walk(path))


# -- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathDigest:
    """The content of one path of a step, relative to the pipeline's folder.

    Attributes:
        path: relative POSIX path.
        kind: ``"file"``, ``"dir"`` or ``"missing"``.
        digest: BLAKE3 of a file's bytes; of a folder's manifest (its files' sorted
            relative paths, sizes and digests, :attr:`FolderManifest.digest`); ``""``
            for a missing path.
        size: bytes (all files of a folder together).
        files: 1 for a file, the number of files of a folder, 0 when missing.
    """

    path: str
    kind: PathKind
    digest: str
    size: int
    files: int


class InputHasher:
    """Content digests of files and folders under a root, read through the stat cache.

    A file whose (path, size, mtime, ctime, inode) the cache knows is not read; others
    are hashed once and cached (except files changed in the last 2 seconds, whose
    timestamps cannot yet prove a later change). Digests are also remembered for the
    life of the hasher, so a path several steps read is looked up once.

    Args:
        root: the pipeline's folder; paths are relative to it.
        hash_cache: the shared file-hash cache (usually
            ``<settings.cache_dir>/file-hashes.db``); None hashes every file each time.

    Example::

        hasher = InputHasher(Path("."), hash_cache=HashCache(cache_dir / "file-hashes.db"))
        hasher.digest("data/raw.csv").digest
    """

    def __init__(self, root: Path, *, hash_cache: HashCache | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self.hash_cache = hash_cache
        self._root = str(self.root)
        # absolute path -> (size, mtime_ns, ctime_ns, inode, digest)
        self._known: dict[str, tuple[int, int, int, int, str]] = {}

    def digest(self, rel_path: str) -> PathDigest:
        """The content digest of a file or folder (or ``kind="missing"``).

        Args:
            rel_path: a path relative to the root (``../`` may leave it).

        Returns:
            The :class:`PathDigest`.

        Raises:
            InvalidInputError: an absolute or empty path; a path that is neither a file
                nor a folder (a socket, a device); an unreadable file; a file that
                changed while it was hashed.
        """
        rel = _normal_path(rel_path, what="input", root=self._root, inside=False)
        path = os.path.normpath(os.path.join(self._root, rel))
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return PathDigest(rel, "missing", "", 0, 0)
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            manifest = self.folder_manifest(path)
            return PathDigest(rel, "dir", manifest.digest, manifest.total_size, len(manifest))
        if stat.S_ISREG(st.st_mode):
            return PathDigest(rel, "file", self.file_digest(path, st), st.st_size, 1)
        raise InvalidInputError(
            f"{path} is neither a file nor a folder (a socket, pipe or device); a step can "
            "only depend on files and folders"
        )

    def file_digest(self, path: str, st: os.stat_result) -> str:
        """BLAKE3 of the regular file at absolute ``path`` whose ``os.stat`` is ``st``."""
        key = _stat_key(st)
        known = self._known.get(path)
        if known is not None and known[:4] == key:
            return known[4]
        cache = self.hash_cache
        if cache is not None:
            row = _cached_row(cache, path)
            if row is not None and (row.size, row.mtime_ns, row.ctime_ns, row.inode) == key:
                self._known[path] = (*key, row.digest)
                return row.digest
        started_ns = time.time_ns()
        try:
            digest = hash_file(path).digest
            after = os.stat(path)
        except FileNotFoundError:
            raise InvalidInputError(
                f"{path} was deleted while it was being hashed; run again when nothing is "
                "writing to it"
            ) from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if _stat_key(after) != key:
            raise InvalidInputError(
                f"{path} changed while it was being hashed; run again when nothing is writing to it"
            )
        if not _is_racy(st, started_ns):
            self._known[path] = (*key, digest)
            if cache is not None:
                cache.update({path: CacheEntry(*key, digest)})
        return digest

    def folder_manifest(self, path: str) -> FolderManifest:
        """The manifest of the folder at absolute ``path`` (empty for a folder without
        files), scanned with the stat cache."""
        try:
            return scan_folder(path, cache=self.hash_cache)
        except InvalidInputError:
            if os.path.isdir(path) and _holds_no_files(path):
                return FolderManifest(())
            raise


# -- code and keys --------------------------------------------------------------------------


def code_fingerprint(kind: str, target: str, *, root: Path) -> str:
    """The text standing for a step's code in its key.

    - ``run``: the command text (after interpolation: pass the command as it will run).
    - ``call``: the source of the function ``module:function``, looked up with ``root``
      first on the import path, as the step's process imports it. A plain top-level
      ``def`` is read from the module's file without running the module (fast, and
      always the file as it is now); anything else (a re-exported or wrapped function)
      is imported (``sys.path`` is restored after) and read with ``inspect.getsource``.
      Only the function's own source counts: list helper modules in ``deps`` when
      their changes must rerun the step.
    - ``uses``: the built-in's name and the shipyard version (a new release may change
      what a built-in does); pass its options as ``extra`` to :func:`step_key`.

    Args:
        kind: ``"run"``, ``"call"`` or ``"uses"``.
        target: the command, ``module:function`` or built-in name.
        root: the pipeline's folder.

    Returns:
        The fingerprint text.

    Raises:
        InvalidInputError: an unknown kind; a ``call`` target that is not
            ``module:function`` or whose module or function cannot be imported.

    Example::

        code_fingerprint("call", "steps.train:main", root=Path("."))
    """
    if kind == "run":
        return target
    if kind == "uses":
        return f"{target} (shipyard {__version__})"
    if kind == "call":
        return _function_source(target, Path(os.path.abspath(root)))
    raise InvalidInputError(
        f"step kind {kind!r} is not one of {', '.join(_STEP_KINDS)}; a step has run: "
        "COMMAND, call: MODULE:FUNCTION or uses: BUILTIN"
    )


def _split_target(target: str) -> tuple[str, str]:
    module, sep, function = target.partition(":")
    if (
        not sep
        or not all(part.isidentifier() for part in module.split("."))
        or not all(part.isidentifier() for part in function.split("."))
    ):
        raise InvalidInputError(
            f"call step target {target!r} must be MODULE:FUNCTION with dotted Python names, "
            "for example 'steps.train:main'"
        )
    return module, function


def _function_source(target: str, root: Path) -> str:
    module, function = _split_target(target)
    importlib.invalidate_caches()  # a module written moments ago must be found
    if "." not in function:
        source = _static_source(target, module, function, root)
        if source is not None:
            return source
    return _imported_source(target, module, function, root)


def _module_file(module: str, root: Path) -> str | None:
    """The ``.py`` file ``import module`` would load with ``root`` first on ``sys.path``,
    found without running any module (packages' ``__init__`` included); None if it is
    not a plain source file (a builtin, an extension, a module not found)."""
    search: list[str] = [str(root), *sys.path]
    parts = module.split(".")
    spec = None
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            return None
        if i < len(parts) - 1:
            if spec.submodule_search_locations is None:
                return None
            search = list(spec.submodule_search_locations)
    if spec is None or not spec.has_location or not (spec.origin or "").endswith(".py"):
        return None
    return spec.origin


def _static_source(target: str, module: str, function: str, root: Path) -> str | None:
    """The source of ``function`` when the module's last top-level binding of that name
    is a ``def`` (with its decorators); None when it must be imported to be found."""
    path = _module_file(module, root)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            text = importlib.util.decode_source(fh.read())
        tree = ast.parse(text, filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(
            f"call step {target!r}: cannot read module {module} ({path}): {exc}; fix the "
            "module so that it imports"
        ) from None
    last: ast.stmt | None = None
    for node in tree.body:
        if function in _bound_names(node):
            last = node
    if not isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef) or last.end_lineno is None:
        return None
    start = min([last.lineno, *(d.lineno for d in last.decorator_list)])
    lines = text.splitlines(keepends=True)
    return "".join(lines[start - 1 : last.end_lineno])


def _bound_names(node: ast.stmt) -> set[str]:
    """Names a top-level statement binds: a def's or class's name; for anything else every
    name assigned, imported or defined anywhere inside it (an ``if`` or ``try`` may
    rebind the function, so a name found there sends the lookup to the import)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    names: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(n.name)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
    return names


def _imported_source(target: str, module: str, function: str, root: Path) -> str:
    saved = list(sys.path)
    sys.path.insert(0, str(root))
    try:
        obj: Any = importlib.import_module(module)
    except Exception as exc:  # user code: any failure while importing it means "cannot import"
        raise InvalidInputError(
            f"call step {target!r}: cannot import module {module} from {root} or the "
            f"Python path: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.path[:] = saved
    for part in function.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidInputError(
                f"call step {target!r}: module {module} has no {function!r}; check the "
                "function's name"
            ) from None
    try:
        import inspect  # only for functions that are not plain top-level defs

        return inspect.getsource(obj)
    except (OSError, TypeError) as exc:
        raise InvalidInputError(
            f"call step {target!r}: cannot read the source of {function} ({exc}); call a "
            "function defined in a .py file"
        ) from None


def _check_jsonable(value: object, where: str) -> None:
    """Raise InvalidInputError unless ``value`` has one canonical JSON form."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"{where} is {value!r}; step params must be finite numbers (a NaN or "
                "infinity has no stable key)"
            )
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_jsonable(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise InvalidInputError(
                    f"{where} has the key {k!r} ({type(k).__name__}); mapping keys in step "
                    "params must be strings"
                )
            _check_jsonable(item, f"{where}[{k!r}]")
        return
    raise InvalidInputError(
        f"{where} is a {type(value).__name__} ({str(value)[:60]!r}), which has no canonical "
        "JSON form; use strings, numbers, booleans, null, lists and mappings with string "
        "keys (convert it, for example with str() or float())"
    )


def step_key(
    *,
    code: str,
    inputs: Mapping[str, str],
    params: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A step's cache key: BLAKE3 hex of the canonical JSON of everything it depends on.

    The JSON has sorted keys and no whitespace, so the key is the same on every machine
    and in every process; lists and tuples count the same.

    Args:
        code: :func:`code_fingerprint`.
        inputs: input name (a path, ``dataset:NAME@VERSION``) -> content digest.
        params: the step's params (JSON values: str, int, float, bool, None, lists,
            mappings with string keys).
        extra: anything else that changes what the step writes: its declared outputs,
            a built-in's options, environment variables it is given.

    Returns:
        64 lowercase hex characters.

    Raises:
        InvalidInputError: a param (or an ``extra`` value) that is not JSON (a set, a
            NumPy integer, a NaN), or an input digest that is not a string.

    Example::

        step_key(code="python prep.py", inputs={"data/raw.csv": digest},
                 params={"test_size": 0.2}, extra={"outs": ["data/prepared"]})
    """
    if not isinstance(code, str):
        raise InvalidInputError(f"code must be a string (code_fingerprint), got {code!r}")
    for name, digest in inputs.items():
        if not isinstance(name, str) or not isinstance(digest, str):
            raise InvalidInputError(
                f"inputs must map names to digest strings, got {name!r}: {digest!r}"
            )
    for name, value in params.items():
        _check_jsonable({name: value}, "params")
    _check_jsonable(dict(extra or {}), "extra")
    body = {
        "format": "shipyard.step-key",
        "version": STEP_KEY_VERSION,
        "code": code,
        "inputs": dict(inputs),
        "params": dict(params),
        "extra": dict(extra or {}),
    }
    data = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return blake3.blake3(data.encode("ascii")).hexdigest()


# -- outputs --------------------------------------------------------------------------------


class OutputFile(NamedTuple):
    """One file of an output folder: path relative to the folder, digest, size, exec bit."""

    path: str
    digest: str
    size: int
    executable: bool


@dataclass(frozen=True, slots=True)
class OutputEntry:
    """One declared output as it was written (a :class:`PathDigest` with the file list).

    Attributes:
        path: relative POSIX path under the pipeline's folder.
        kind: ``"file"`` or ``"dir"``.
        digest: the file's BLAKE3, or the folder's manifest digest (equal to the
            :class:`InputHasher` digest of the same path, so a downstream step's input
            digest matches).
        size: bytes.
        files: 1, or the number of files in the folder.
        executable: the owner's exec bit, for a file.
        contents: a folder's files, sorted by path.
    """

    path: str
    kind: Literal["file", "dir"]
    digest: str
    size: int
    files: int
    executable: bool = False
    contents: tuple[OutputFile, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "digest": self.digest,
            "size": self.size,
            "files": self.files,
        }
        if self.kind == "file":
            out["executable"] = self.executable
        else:
            out["contents"] = [[f.path, f.digest, f.size, f.executable] for f in self.contents]
        return out


def _bad_manifest(detail: str) -> InvalidInputError:
    return InvalidInputError(
        f"step output manifest is malformed: {detail}. It was not written by this version "
        "of shipyard, or the cache entry is damaged; rerun the step with --force"
    )


def _entry_from_dict(item: object, root: str) -> OutputEntry:
    if not isinstance(item, Mapping):
        raise _bad_manifest(f"an output is a {type(item).__name__}, not a mapping")
    try:
        path = _normal_path(item["path"], what="output", root=root, inside=True)
        kind, digest = item["kind"], check_digest(item["digest"])
        if kind == "file":
            size, executable = item["size"], item["executable"]
            bad_size = isinstance(size, bool) or not isinstance(size, int) or size < 0
            if bad_size or not isinstance(executable, bool):
                raise _bad_manifest(f"output {path!r} has a bad size or executable flag")
            return OutputEntry(path, "file", digest, size, 1, executable)
        if kind != "dir":
            raise _bad_manifest(f"output {path!r} has kind {kind!r}, not 'file' or 'dir'")
        rows = item["contents"]
        if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == 4 and isinstance(r[3], bool) for r in rows
        ):
            raise _bad_manifest(f"output {path!r} has a bad file list")
        listed = FolderManifest(tuple(FileEntry(p, s, d) for p, d, s, _ in rows))
    except KeyError as exc:
        raise _bad_manifest(f"an output has no {exc.args[0]!r}") from None
    except InvalidInputError as exc:
        if exc.message.startswith("step output manifest is malformed"):
            raise
        raise _bad_manifest(exc.message) from None
    if listed.digest != digest:
        raise _bad_manifest(f"the files listed for {path!r} do not match its digest")
    modes = {p: x for p, _, _, x in rows}
    contents = tuple(OutputFile(e.path, e.digest, e.size, modes[e.path]) for e in listed.entries)
    return OutputEntry(path, "dir", digest, listed.total_size, len(listed), False, contents)


@dataclass(frozen=True, slots=True)
class OutputManifest:
    """What a step wrote: one :class:`OutputEntry` per declared output, in order.

    Example::

        body = manifest.to_dict()                 # JSON, stored with the cache entry
        OutputManifest.from_dict(body) == manifest
    """

    outputs: tuple[OutputEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{"format": "shipyard.step-outputs", "version": 1, "outputs": [...]}``; JSON."""
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "outputs": [entry.to_dict() for entry in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputManifest:
        """Read :meth:`to_dict`'s form back, checking every field.

        Raises:
            InvalidInputError: not an output manifest of a known version, or a field is
                malformed (bad path, digest, size; a folder whose files do not match its
                digest).
        """
        if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
            raise _bad_manifest(f"expected a mapping with format {MANIFEST_FORMAT!r}")
        if data.get("version") != MANIFEST_VERSION:
            raise _bad_manifest(
                f"version {data.get('version')!r} is not {MANIFEST_VERSION} (upgrade shipyard)"
            )
        items = data.get("outputs")
        if not isinstance(items, list):
            raise _bad_manifest("'outputs' is not a list")
        return cls(tuple(_entry_from_dict(item, "the pipeline's folder") for item in items))

    @property
    def digests(self) -> set[str]:
        """Every object the outputs need in the store."""
        found: set[str] = set()
        for entry in self.outputs:
            if entry.kind == "file":
                found.add(entry.digest)
            else:
                found.update(f.digest for f in entry.contents)
        return found


def _is_exec(mode: int) -> bool:
    return bool(mode & stat.S_IXUSR)


@functools.cache
def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` is not thread-safe)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _new_mode(old: os.stat_result | None, executable: bool) -> int:
    """Permission bits for a restored file: the old file's, or the default for new files,
    with the exec bits set where the file is readable (as ``chmod +x``) or cleared."""
    if old is not None and stat.S_ISREG(old.st_mode):
        mode = stat.S_IMODE(old.st_mode)
    else:
        mode = 0o666 & ~_umask()
    if executable:
        return mode | ((mode & 0o444) >> 2)
    return mode & ~0o111


def _remove(path: str) -> None:
    """Remove whatever is at ``path`` (a file, a symlink, a folder tree)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class OutputStore:
    """Saves a step's outputs into the object store and puts them back.

    Args:
        objects: the content-addressed object store.
        root: the pipeline's folder; outputs are relative to it.
        hasher: the :class:`InputHasher` of the same root (its stat cache makes
            :meth:`present` cheap).

    Raises:
        InvalidInputError: ``hasher`` hashes another folder.

    Example::

        outputs = OutputStore(objects, root, hasher=hasher)
        manifest = outputs.save(["models/model.pkl", "data/features"])
        outputs.present(manifest) or outputs.restore(manifest)
    """

    def __init__(self, objects: ObjectStore, root: Path, *, hasher: InputHasher) -> None:
        self.objects = objects
        self.root = Path(os.path.abspath(root))
        self.hasher = hasher
        self._root = str(self.root)
        if hasher.root != self.root:
            raise InvalidInputError(
                f"the hasher hashes {hasher.root} but the outputs are under {self.root}; "
                "give both the pipeline's folder"
            )

    def _path(self, rel: str) -> str:
        return os.path.join(self._root, rel)

    def save(self, outs: Sequence[str]) -> OutputManifest:
        """Put every file of the declared outputs into the object store.

        Objects the store holds already are not copied again (``put_files`` with the
        digests from the stat cache).

        Args:
            outs: the step's declared outputs (files or folders), relative to the root.

        Returns:
            The :class:`OutputManifest`, outputs in the order given (duplicates once).

        Raises:
            InvalidInputError: a declared output that does not exist, is outside the
                root, or is neither a file nor a folder; a file that changed while it
                was stored.
        """
        if isinstance(outs, str):
            raise InvalidInputError(f"outs must be a list of paths, got the string {outs!r}")
        entries: list[OutputEntry] = []
        files: list[str] = []
        digests: list[str] = []
        names = dict.fromkeys(
            _normal_path(out, what="output", root=self._root, inside=True) for out in outs
        )
        for rel in names:
            path = self._path(rel)
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                raise InvalidInputError(
                    f"step declared output {rel} but did not write it (there is no {path}); "
                    "make the step write it, or remove it from the step's outs"
                ) from None
            if stat.S_ISREG(st.st_mode):
                digest = self.hasher.file_digest(path, st)
                entries.append(
                    OutputEntry(rel, "file", digest, st.st_size, 1, _is_exec(st.st_mode))
                )
                files.append(path)
                digests.append(digest)
            elif stat.S_ISDIR(st.st_mode):
                manifest = self.hasher.folder_manifest(path)
                contents = []
                for e in manifest.entries:
                    file_path = os.path.join(path, e.path)
                    contents.append(
                        OutputFile(e.path, e.digest, e.size, _is_exec(os.stat(file_path).st_mode))
                    )
                    files.append(file_path)
                    digests.append(e.digest)
                entries.append(
                    OutputEntry(
                        rel,
                        "dir",
                        manifest.digest,
                        manifest.total_size,
                        len(manifest),
                        contents=tuple(contents),
                    )
                )
            else:
                raise InvalidInputError(
                    f"step output {rel} is neither a file nor a folder; outputs must be "
                    "files or folders"
                )
        if files:
            self.objects.put_files(files, digests=digests)
        logger.debug("saved %d outputs (%d files) under %s", len(entries), len(files), self._root)
        return OutputManifest(tuple(entries))

    def present(self, manifest: OutputManifest) -> bool:
        """True when every output exists with the content it was saved with.

        Checks content (through the stat cache: an unchanged output costs stat calls),
        not permission bits.

        Args:
            manifest: what :meth:`save` returned.

        Returns:
            Whether :meth:`restore` would have content to rewrite.
        """
        for entry in manifest.outputs:
            now = self.hasher.digest(entry.path)
            if now.kind != entry.kind or now.digest != entry.digest:
                return False
        return True

    def restore(self, manifest: OutputManifest) -> list[str]:
        """Rewrite every output file that is missing or changed, from the object store.

        Each file is written to a temporary file beside it and renamed into place, so a
        reader never sees half a file. In an output folder, files the manifest does not
        list are removed (and the folders they leave empty). Something of the wrong kind
        at an output's path (a folder where a file belongs) is removed first.

        Args:
            manifest: what :meth:`save` returned.

        Returns:
            The relative paths of the files rewritten (``dir/sub/file`` for folders).

        Raises:
            NotFoundError: an object is missing from the store (rerun the step).
            CorruptObjectError: an object's bytes no longer match its digest.
        """
        restored: list[str] = []
        for entry in manifest.outputs:
            if entry.kind == "file":
                if self._restore_file(self._path(entry.path), entry.digest, entry.executable):
                    restored.append(entry.path)
            else:
                restored.extend(self._restore_folder(entry))
        if restored:
            logger.info("restored %d output files under %s", len(restored), self._root)
        return restored

    def _restore_file(self, path: str, digest: str, executable: bool) -> bool:
        """Make ``path`` hold the object ``digest``; False if it held it already."""
        try:
            st: os.stat_result | None = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            if self.hasher.file_digest(path, st) == digest:
                return False
        elif st is not None:
            _remove(path)
            st = None
        self._write(path, digest, _new_mode(st, executable))
        return True

    def _write(self, path: str, digest: str, mode: int) -> None:
        parent = os.path.dirname(path)
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidInputError(
                f"cannot restore {path}: a file stands where the folder {parent} (or one "
                "above it) belongs; move it away and run again"
            ) from None
        fd, tmp = tempfile.mkstemp(prefix=".shipyard-restore-", dir=parent)
        os.close(fd)
        try:
            self.objects.get_to_path(digest, tmp)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _restore_folder(self, entry: OutputEntry) -> list[str]:
        folder = self._path(entry.path)
        if os.path.lexists(folder) and not os.path.isdir(folder):  # a file, a broken link
            _remove(folder)
        os.makedirs(folder, exist_ok=True)
        current = self.hasher.folder_manifest(folder)
        if current.digest == entry.digest:
            return []
        wanted = {f.path: f for f in entry.contents}
        have = {e.path: e for e in current.entries}
        emptied: set[str] = set()
        for rel in have:
            if rel not in wanted:
                os.unlink(os.path.join(folder, rel))
                emptied.add(posixpath.dirname(rel))
                logger.debug("removed %s/%s: not among the step's outputs", entry.path, rel)
        for emptied_dir in sorted(emptied, key=lambda p: -p.count("/")):
            sub = emptied_dir
            while sub:
                try:
                    os.rmdir(os.path.join(folder, sub))
                except OSError:  # not empty (or gone): the folders above are not empty either
                    break
                sub = posixpath.dirname(sub)
        restored = []
        for f in entry.contents:
            now = have.get(f.path)
            if now is not None and (now.digest, now.size) == (f.digest, f.size):
                continue
            path = os.path.join(folder, f.path)
            try:
                st: os.stat_result | None = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                _remove(path)
                st = None
            self._write(path, f.digest, _new_mode(st, f.executable))
            restored.append(f"{entry.path}/{f.path}")
        return restored
