"""What a run records about where it ran: git state, entry point, Python and installed packages.

The package list is cached on disk, keyed by the interpreter and the
modification times of its ``sys.path`` folders, so a run does not walk
``site-packages`` again until something is installed or removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GitState:
    commit: str | None
    dirty: bool | None
    diff_hash: str | None
    root: str | None


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(cwd: str | os.PathLike[str]) -> GitState:
    """Commit, dirty flag and a hash of ``git diff HEAD`` for the repository around ``cwd``."""
    where = str(cwd)
    head = _git(["rev-parse", "HEAD", "--show-toplevel"], where)
    if head is None or head.returncode != 0:
        return GitState(None, None, None, None)
    lines = head.stdout.decode().split()
    commit, root = ([*lines, None, None])[:2]
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    dirty = bool(status.stdout.strip()) if status is not None and status.returncode == 0 else None
    diff_hash = None
    if dirty:
        diff = _git(["diff", "HEAD", "--binary"], where)
        if diff is not None and diff.returncode == 0:
            diff_hash = hashlib.sha256(diff.stdout).hexdigest()
    return GitState(commit, dirty, diff_hash, root)


def entry_point(git_root: str | None = None) -> str:
    """The script that started the process, relative to the git root when inside it."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    if not path or path in ("-c", "-"):
        return "<interactive>"
    full = Path(path).absolute()
    if git_root:
        try:
            return str(full.relative_to(git_root))
        except ValueError:
            pass
    return str(full)


def python_version() -> str:
    return platform.python_version()


def _site_dirs() -> list[str]:
    """The ``sys.path`` folders packages are installed in (not the working directory)."""
    cwd = os.getcwd()
    return [p for p in sys.path if p and os.path.abspath(p) != cwd and os.path.isdir(p)]


def _cache_key(dirs: list[str]) -> str:
    parts = ["v2", sys.executable, sys.version]
    for entry in dirs:
        try:
            parts.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
        except OSError:
            continue
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _scan(dirs: list[str]) -> dict[str, str]:
    """Read names and versions from ``*.dist-info`` / ``*.egg-info`` folder names.

    Folder names are normalised by installers (``name-version.dist-info``), so this
    needs no METADATA parsing: about a millisecond for hundreds of packages.
    """
    found: dict[str, str] = {}
    for folder in dirs:
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                stem, dot, suffix = entry.name.rpartition(".")
                if not dot or suffix not in ("dist-info", "egg-info"):
                    continue
                name, sep, version = stem.partition("-")
                if sep and name:
                    found.setdefault(name.replace("_", "-").lower(), version.split("-")[0])
    return dict(sorted(found.items()))


def installed_packages(cache_dir: Path | None = None) -> dict[str, str]:
    """``{distribution name: version}`` for the running interpreter (cached by folder mtimes)."""
    dirs = _site_dirs()
    cache_file = cache_dir / f"packages-{_cache_key(dirs)}.json" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        try:
            cached: dict[str, str] = json.loads(cache_file.read_text())
            return cached
        except (OSError, ValueError):
            pass
    packages = _scan(dirs)
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(packages))
            os.replace(tmp, cache_file)
        except OSError as exc:
            logger.debug("cannot cache package list: %s", exc)
    return packages


def environment_document(packages: dict[str, str]) -> bytes:
    """The JSON stored (content-addressed, so shared across runs) as a run's environment."""
    doc = {
        "python": python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": packages,
    }
    return json.dumps(doc, sort_keys=True, indent=1).encode()
