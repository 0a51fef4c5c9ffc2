"""Versioning folders of files, shipyard against DVC, side by side on this machine.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/data_folders.py               # full run, ~10 minutes
    .venv/bin/python benchmarks/data_folders.py --quick       # smaller folders, ~1 minute
    .venv/bin/python benchmarks/data_folders.py --write-docs  # also update docs/benchmarks.md

Two folders are generated once in a temporary directory (random bytes, fixed seed):
"big", 2,000 files of 512 KB (1 GB), and "small", 100,000 files of 1 KB. They sit
inside the DVC repository (DVC only tracks data inside its repository); shipyard
reads the same files.

Each round, for each folder, the two sides run one after the other (alternating
which goes first):

shipyard (in this process, library calls, fresh object store and cache file):
    add         ``store_folder`` into a new ``LocalObjectStore``, cold hash cache (what
                ``shipyard data add`` does: small files packed, big ones one object each)
    re-add      ``store_folder`` again with ``previous=`` the first, unchanged folder, warm
                cache
    re-scan     ``scan_folder`` again, warm cache
    status      ``FolderManifest.from_bytes(store.get_bytes(stored))`` + ``folder_status``

DVC (its own venv ``.bench-venv/dvc``, the ``dvc`` command as a subprocess, a fresh
``dvc init --no-scm`` and a fresh site cache directory, so its state database is cold):
    add         ``dvc add <folder>``
    re-add      ``dvc add <folder>`` again
    status      ``dvc status <folder>.dvc``

References, each round: one BLAKE3 pass over every file (read + hash, one thread,
the reference of the "within 2x" target) and ``cp -r`` + ``sync`` (what a plain
copy into a store costs on this disk).

Both sides run with a warm page cache (the folders were just written; dropping
the OS caches needs root tricks), and the disk is shared with other work, so
the medians over several rounds are what to read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

from _common import replace_section
from shipyard.data.folder_store import PACK_FILE_MAX, store_folder
from shipyard.data.folders import FolderManifest, HashCache, folder_status, scan_folder
from shipyard.store.objects import LocalObjectStore

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
DVC_VENV = ROOT / ".bench-venv" / "dvc"
BEGIN = "<!-- data-folders-benchmark:begin -->"
END = "<!-- data-folders-benchmark:end -->"
SUBPROCESS_TIMEOUT = 3600


@dataclass(frozen=True)
class Folder:
    """One generated folder: ``count`` files of ``size`` bytes, ``per_dir`` per subfolder."""

    name: str
    count: int
    size: int
    per_dir: int
    seed: int

    @property
    def label(self) -> str:
        size = f"{self.size // 1024} KB"
        total = self.count * self.size
        human = f"{total / 2**30:.1f} GB" if total >= 2**30 else f"{total / 2**20:.0f} MB"
        return f"{self.count:,} x {size} ({human})"


@dataclass(frozen=True)
class Sizes:
    rounds: int
    folders: tuple[Folder, ...]


FULL = Sizes(
    rounds=3,
    folders=(
        Folder("big", 2000, 512 * 1024, 250, seed=1),
        Folder("small", 100_000, 1024, 1000, seed=2),
    ),
)
QUICK = Sizes(
    rounds=1,
    folders=(
        Folder("big", 200, 512 * 1024, 50, seed=1),
        Folder("small", 10_000, 1024, 1000, seed=2),
    ),
)


@dataclass
class Samples:
    """Timings in seconds by (side, folder, step)."""

    values: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def add(self, side: str, folder: str, step: str, seconds: float) -> None:
        self.values.setdefault((side, folder, step), []).append(seconds)

    def median(self, side: str, folder: str, step: str) -> float:
        return statistics.median(self.values[(side, folder, step)])

    def spread(self, side: str, folder: str, step: str) -> str:
        v = self.values[(side, folder, step)]
        return f"{min(v):.2f}-{max(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def settle(seconds: float) -> None:
    """Let the disk finish earlier work (deletes, writeback) before the next clock starts."""
    os.sync()
    time.sleep(seconds)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


TRASH: list[Path] = []


def discard(path: Path) -> None:
    """Delete ``path`` at the end of the round: deleting 100,000 files keeps the disk busy
    (this filesystem discards freed blocks) and would slow whatever is timed next."""
    TRASH.append(path)


def empty_trash() -> None:
    while TRASH:
        remove(TRASH.pop())
    settle(5)


def make_folder(root: Path, folder: Folder) -> None:
    rng = random.Random(folder.seed)
    for i in range(folder.count):
        sub = root / f"part-{i // folder.per_dir:03d}"
        if i % folder.per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file-{i:06d}.bin").write_bytes(rng.randbytes(folder.size))


def all_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# -- the two sides ------------------------------------------------------------------------


def shipyard_steps(folder: Folder, path: Path, work: Path, samples: Samples, *, order: int) -> None:
    """add, re-add, re-scan, status."""
    base = Path(tempfile.mkdtemp(prefix=f"shipyard-{folder.name}-", dir=work))

    def add_store_folder() -> str:
        cache = HashCache(base / "cache" / "file-hashes.db")
        store = LocalObjectStore(base / "objects")
        seconds, first = timed(lambda: store_folder(path, store, cache=cache))
        manifest = first.manifest
        samples.add("shipyard", folder.name, "add", seconds)
        log(f"  shipyard {folder.name}: add (store_folder)             {seconds:7.2f} s")
        if len(manifest) != folder.count:
            raise RuntimeError(f"store_folder found {len(manifest)} files, not {folder.count}")
        seconds, again = timed(
            lambda: store_folder(path, store, cache=cache, previous=first.object_digest)
        )
        samples.add("shipyard", folder.name, "readd", seconds)
        log(f"  shipyard {folder.name}: re-add unchanged                {seconds:7.2f} s")
        seconds, rescanned = timed(lambda: scan_folder(path, cache=cache))
        samples.add("shipyard", folder.name, "rescan", seconds)
        log(f"  shipyard {folder.name}: re-scan unchanged               {seconds:7.2f} s")

        def status() -> Any:
            stored = FolderManifest.from_bytes(store.get_bytes(first.object_digest))
            return folder_status(stored, path, cache=cache)

        seconds, changes = timed(status)
        samples.add("shipyard", folder.name, "status", seconds)
        log(f"  shipyard {folder.name}: status unchanged                {seconds:7.2f} s")
        if (
            changes
            or again.manifest.digest != manifest.digest
            or rescanned.digest != manifest.digest
        ):
            raise RuntimeError(f"the unchanged folder {path} looked changed: {changes}")
        cache.close()
        settle(2)
        digest: str = manifest.digest
        return digest

    digest = add_store_folder()
    if folder.size >= PACK_FILE_MAX:  # files stored as objects of their own: link them too
        cache = HashCache(base / "cache-link" / "file-hashes.db")
        store = LocalObjectStore(base / "objects-link")
        seconds, linked = timed(lambda: store_folder(path, store, cache=cache, link=True))
        samples.add("shipyard", folder.name, "add_link", seconds)
        log(f"  shipyard {folder.name}: add --link                     {seconds:7.2f} s")
        if linked.manifest.digest != digest:
            raise RuntimeError(f"add --link of {path} gave another digest")
        cache.close()
        settle(2)
    discard(base)


def ensure_dvc(spec: str) -> Path:
    """The ``dvc`` executable of DVC's venv, creating the venv on first use."""
    dvc = DVC_VENV / "bin" / "dvc"
    if dvc.exists():
        return dvc
    log(f"creating {DVC_VENV} and installing {spec} (first run only)...")
    subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
    python = DVC_VENV / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", spec], check=True
    )
    return dvc


def dvc_env(site_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(site_cache))
    return env


def run_dvc(dvc: Path, args: list[str], repo: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    result = subprocess.run(
        [str(dvc), *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def fresh_dvc_repo(dvc: Path, repo: Path, work: Path, round_no: int) -> dict[str, str]:
    """Forget DVC's previous round (metadata, cache, state) and ``dvc init`` again."""
    remove(repo / ".dvc")
    (repo / ".dvcignore").unlink(missing_ok=True)
    for tracked in repo.glob("*.dvc"):
        tracked.unlink()
    env = dvc_env(work / f"dvc-site-cache-{round_no}")
    run_dvc(dvc, ["init", "--no-scm", "-q"], repo, env)
    return env


def dvc_steps(dvc: Path, folder: Folder, repo: Path, env: dict[str, str], samples: Samples) -> None:
    first = repo / folder.name / "part-000" / "file-000000.bin"
    before = first.stat()
    for step, args in (
        ("add", ["add", "-q", folder.name]),
        ("readd", ["add", "-q", folder.name]),
        ("status", ["status", "-q", f"{folder.name}.dvc"]),
    ):
        seconds = run_dvc(dvc, args, repo, env)
        samples.add("dvc", folder.name, step, seconds)
        log(f"  dvc      {folder.name}: {step:<33} {seconds:7.2f} s")
    after = first.stat()
    if (before.st_ino, before.st_mtime_ns) != (after.st_ino, after.st_mtime_ns):
        log("  note: dvc add rewrote the workspace files (new inode or mtime)")


def dvc_startup(dvc: Path, work: Path, samples: Samples) -> None:
    """DVC's fixed cost per command: ``dvc status`` in an empty repository."""
    empty = Path(tempfile.mkdtemp(prefix="dvc-empty-", dir=work))
    env = dvc_env(empty / ".site-cache")
    run_dvc(dvc, ["init", "--no-scm", "-q"], empty, env)
    samples.add("dvc", "-", "startup", run_dvc(dvc, ["status", "-q"], empty, env))
    remove(empty)


def shipyard_import_time(samples: Samples) -> None:
    """What a ``shipyard`` command would add: a new interpreter importing the modules used."""
    code = "import shipyard.data.folders, shipyard.store.objects"
    seconds, _ = timed(lambda: subprocess.run([sys.executable, "-c", code], check=True))
    samples.add("shipyard", "-", "startup", seconds)


# -- references ----------------------------------------------------------------------------


def blake3_pass(files: list[str]) -> float:
    """One BLAKE3 pass over every file: read it whole, hash it (one thread)."""
    t0 = time.perf_counter()
    for name in files:
        with open(name, "rb") as fh:
            blake3.blake3(fh.read()).hexdigest()
    return time.perf_counter() - t0


def copy_floor(path: Path, work: Path) -> float:
    """``cp -r`` the folder and ``sync``: a plain copy made durable."""
    dest = Path(tempfile.mkdtemp(prefix="cp-", dir=work)) / "copy"
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(path), str(dest)], check=True)
    os.sync()
    seconds = time.perf_counter() - t0
    discard(dest.parent)
    return seconds


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    label: str
    shipyard: float
    other: float | None  # DVC's time, or the reference's
    other_name: str
    ratio: str  # "12.3x faster" against DVC, "1.4x the pass" against a reference
    target: str
    met: bool | None


def faster(other: float, shipyard: float) -> str:
    return f"{other / shipyard:,.1f}x faster"


def build_lines(samples: Samples, sizes: Sizes) -> list[Line]:
    lines: list[Line] = []
    for folder in sizes.folders:
        n = folder.name
        big = folder.size >= 64 * 1024

        def med(side: str, step: str, name: str = n) -> float:
            return samples.median(side, name, step)

        dvc_add = med("dvc", "add")
        sy = med("shipyard", "add")
        target, met = ("", None)
        if not big:
            target, met = ">= 10x faster than DVC", dvc_add / sy >= 10
        lines.append(
            Line(f"add {folder.label}", sy, dvc_add, "DVC", faster(dvc_add, sy), target, met)
        )
        if big:
            ref = med("ref", "blake3")
            for step, what in (("add", "add"), ("add_link", "add --link (hard links)")):
                took = med("shipyard", step)
                lines.append(
                    Line(
                        f"{what} {folder.label} vs one BLAKE3 pass",
                        took,
                        ref,
                        "BLAKE3 pass",
                        f"{took / ref:.1f}x the pass",
                        "<= 2x the BLAKE3 pass",
                        took <= 2 * ref,
                    )
                )
            scan = med("shipyard", "scan_cold")
            lines.append(
                Line(
                    f"hashing alone: cold scan_folder {folder.label} vs one BLAKE3 pass",
                    scan,
                    ref,
                    "BLAKE3 pass",
                    f"{scan / ref:.1f}x the pass",
                    "<= 2x the BLAKE3 pass",
                    scan <= 2 * ref,
                )
            )
        readd = med("shipyard", "readd")
        lines.append(
            Line(
                f"re-add unchanged {folder.label}",
                readd,
                med("dvc", "readd"),
                "DVC",
                faster(med("dvc", "readd"), readd),
                "",
                None,
            )
        )
        rescan = med("shipyard", "rescan")
        lines.append(
            Line(f"re-scan unchanged {folder.label} (scan_folder)", rescan, None, "", "", "", None)
        )
        status = med("shipyard", "status")
        limit = 0.5 if big else 3.0
        lines.append(
            Line(
                f"status of unchanged {folder.label}",
                status,
                med("dvc", "status"),
                "DVC",
                faster(med("dvc", "status"), status),
                f"< {limit:g} s",
                status < limit,
            )
        )
    return lines


def machine_info(load_before: float, dvc: Path, work: Path) -> list[tuple[str, str]]:
    cpu = platform.processor() or ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(
        [str(dvc), "--version"], capture_output=True, text=True, env=dvc_env(work / "v")
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    fs = "?"
    best = ""
    with open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if str(work).startswith(parts[1]) and len(parts[1]) > len(best):
                best, fs = parts[1], f"{parts[2]} ({parts[3]})"
    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpus (nproc)", str(os.cpu_count())),
        ("cpu", cpu),
        ("os", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("filesystem", f"{fs}, mounted at {best}"),
        ("shipyard", f"{commit}{' + uncommitted work' if dirty else ''}"),
        ("dvc", f"{version} (pip, its own venv, default settings: cache type reflink,copy)"),
        (
            "load average (1 min)",
            f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after the run "
            "(other work shares the machine and its disk)",
        ),
    ]


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def floors(samples: Samples, sizes: Sizes) -> list[str]:
    """One sentence per folder comparing its add with a plain copy and a hash pass."""
    out = []
    for folder in sizes.folders:
        n = folder.name
        sy = samples.median("shipyard", n, "add")
        dvc = samples.median("dvc", n, "add")
        copies = samples.values[("ref", n, "copy")]
        copy = f"{fmt_s(statistics.median(copies))} (fastest round {fmt_s(min(copies))})"
        ref = samples.median("ref", n, "blake3")
        if folder.size >= PACK_FILE_MAX:
            scan = samples.median("shipyard", n, "scan_cold")
            link = samples.median("shipyard", n, "add_link")
            out.append(
                f"{folder.label}: files this big are objects of their own. A plain durable "
                f"copy (`cp -r` + `sync`) takes {copy}; shipyard's add, which copies by "
                f"default, {fmt_s(sy)}; its hashing alone {fmt_s(scan)} ({scan / ref:.1f}x "
                f"one BLAKE3 pass). Within 2x of the pass ({fmt_s(2 * ref)}) no copy fits on "
                f"this disk: `add --link` stores the files as hard links instead (no second "
                f"copy; the files become read-only) and takes {fmt_s(link)}."
            )
        else:
            out.append(
                f"{folder.label}: small files are packed together into 64 MB pack objects, so "
                "the store gains a few objects instead of one per file. A plain durable copy "
                f"of the files (`cp -r` + `sync`) takes {copy}; DVC's add {fmt_s(dvc)}; "
                f"shipyard's {fmt_s(sy)}, of which reading and hashing every file is about "
                f"{fmt_s(ref)}: the rest is the walk (a stat per file), the hash cache's rows "
                "and the manifest."
            )
    return out


def render(
    lines: list[Line], samples: Samples, sizes: Sizes, info: list[tuple[str, str]], quick: bool
) -> str:
    out = [
        BEGIN,
        "## Versioning folders of files: shipyard vs DVC",
        "",
        "Produced by `.venv/bin/python benchmarks/data_folders.py"
        + (" --quick" if quick else "")
        + " --write-docs`"
        + (" (a **quick** smoke run: smaller folders, one round)." if quick else "."),
        "",
        "| workload | shipyard | compared with | ratio | target | met |",
        "|---|---:|---:|---:|---|:-:|",
    ]
    for line in lines:
        other = f"{line.other_name} {fmt_s(line.other)}" if line.other is not None else "-"
        ratio = f"**{line.ratio}**" if line.ratio else "-"
        met = "" if line.met is None else ("yes" if line.met else "**no**")
        out.append(
            f"| {line.label} | {fmt_s(line.shipyard)} | {other} | {ratio} | {line.target} | {met} |"
        )
    refs = []
    for folder in sizes.folders:
        refs.append(
            f"| {folder.label} | {fmt_s(samples.median('ref', folder.name, 'blake3'))} | "
            f"{fmt_s(samples.median('ref', folder.name, 'copy'))} |"
        )
    out += [
        "",
        '"Nx faster": the other side\'s time divided by shipyard\'s. "Nx the pass": '
        "shipyard's time divided by the reference's. All figures are medians over the rounds.",
        "",
        "References, same rounds:",
        "",
        "| folder | one BLAKE3 pass (read + hash, one thread) | `cp -r` + `sync` |",
        "|---|---:|---:|",
        *refs,
        "",
        "What bounds the adds (from the medians above):",
        "",
        *[f"- {text}" for text in floors(samples, sizes)],
        "",
        f"Fixed cost of a command, not in the figures above: `dvc status` in an empty "
        f"repository takes {fmt_s(samples.median('dvc', '-', 'startup'))} (every DVC figure "
        "includes it); a new Python importing `shipyard.data.folders` takes "
        f"{fmt_s(samples.median('shipyard', '-', 'startup'))} (shipyard figures are library "
        "calls in the benchmark's process and do not include it).",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info],
        "",
        "How each figure is measured:",
        "",
        f"- {sizes.rounds} round(s); in each, for each folder, the two sides run one after the "
        "other, alternating which goes first. Before every timed step the disk is left to "
        "settle (`sync`, 2 s) after the previous step's clean-up. Both sides run with a warm "
        "page cache: the folders were just generated and fit in memory (dropping the OS "
        "caches would need root tricks).",
        "- shipyard, in this process: `store_folder` (walk and stat; files under 256 KB read "
        "once, hashed and packed into 64 MB pack objects, each fsynced; bigger files hashed "
        "while copied into objects of their own, one filesystem sync before the renames; then "
        "the stored manifest) into a new `LocalObjectStore` with a new, empty hash cache; then, "
        "unchanged and with the warm cache: `store_folder` again with the first as its "
        "previous version (re-add), `scan_folder` (re-scan), and status = read the stored "
        "manifest + `folder_status`.",
        "- DVC: `dvc add -q <folder>`, the same again (re-add), `dvc status -q <folder>.dvc`, "
        "each a subprocess of DVC's venv, in a repository made with `dvc init --no-scm` and a "
        "fresh `DVC_SITE_CACHE_DIR` each round (so its hash state starts cold, as shipyard's "
        "cache does). `DVC_NO_ANALYTICS=1`.",
        "- The hashing-alone line times a cold `scan_folder` (new cache, nothing stored).",
        END,
    ]
    return "\n".join(out) + "\n"


def write_docs(section: str) -> None:
    replace_section(DOC, BEGIN, END, section)
    log(f"wrote {DOC}")


# -- main ----------------------------------------------------------------------------------


def measure(sizes: Sizes, dvc: Path, tmp: Path | None) -> tuple[Samples, list[tuple[str, str]]]:
    """Generate the folders, run every round, clean up; the samples and the machine info."""
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-folders-", dir=tmp))
    # Sources (a 1 KB file takes a 4 KB block), one store at a time per side, a copy.
    need = sum(f.count * max(f.size, 4096) for f in sizes.folders) * 4
    free = shutil.disk_usage(work).free
    if free < need:
        remove(work)
        raise SystemExit(
            f"not enough disk space in {work.parent}: need {need / 2**30:.1f} GB, "
            f"have {free / 2**30:.1f} GB; pass --tmp on a bigger disk"
        )
    load_before = os.getloadavg()[0]
    samples = Samples()
    repo = work / "repo"
    try:
        for folder in sizes.folders:
            log(f"generating {folder.name}: {folder.label} ...")
            make_folder(repo / folder.name, folder)
        settle(3)
        files = {f.name: all_files(repo / f.name) for f in sizes.folders}
        for r in range(sizes.rounds):
            log(f"round {r + 1}/{sizes.rounds}")
            env = fresh_dvc_repo(dvc, repo, work, r)
            dvc_startup(dvc, work, samples)
            shipyard_import_time(samples)
            for i, folder in enumerate(sizes.folders):
                path = repo / folder.name
                samples.add("ref", folder.name, "blake3", blake3_pass(files[folder.name]))
                cold_cache = HashCache(work / f"scan-cache-{r}-{folder.name}.db")
                seconds, _ = timed(lambda p=path, c=cold_cache: scan_folder(p, cache=c))
                cold_cache.close()
                samples.add("shipyard", folder.name, "scan_cold", seconds)
                settle(2)
                samples.add("ref", folder.name, "copy", copy_floor(path, work))
                settle(2)
                sides: list[Callable[[], None]] = [
                    lambda f=folder, p=path, o=r + i: shipyard_steps(f, p, work, samples, order=o),
                    lambda f=folder, e=env: dvc_steps(dvc, f, repo, e, samples),
                ]
                for side in sides if (r + i) % 2 == 0 else reversed(sides):
                    side()
                    settle(3)
            discard(repo / ".dvc")
            empty_trash()
        return samples, machine_info(load_before, dvc, work)
    finally:
        remove(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller folders, one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--dvc-spec", default="dvc", help="what to pip install for DVC")
    parser.add_argument("--tmp", type=Path, help="where to make the folders (default: $TMPDIR)")
    parser.add_argument("--json", type=Path, help="also save every sample to this JSON file")
    parser.add_argument(
        "--from-json", type=Path, help="measure nothing: report the samples a --json run saved"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        quick, rounds = bool(saved["quick"]), int(saved["rounds"])
        samples = Samples({tuple(k.split("/")): v for k, v in saved["samples"].items()})
        info = [(k, v) for k, v in saved["info"]]
    else:
        quick = args.quick
        rounds = args.rounds or (QUICK if quick else FULL).rounds
    sizes = Sizes(rounds=rounds, folders=(QUICK if quick else FULL).folders)
    if not args.from_json:
        samples, info = measure(sizes, ensure_dvc(args.dvc_spec), args.tmp)
    if args.json:
        document = {
            "quick": quick,
            "rounds": rounds,
            "info": info,
            "samples": {"/".join(k): v for k, v in samples.values.items()},
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    lines = build_lines(samples, sizes)
    print()
    for line in lines:
        other = f"{line.other_name} {fmt_s(line.other):>9}" if line.other is not None else ""
        verdict = "" if line.met is None else (" met" if line.met else " MISSED")
        target = f"  target {line.target}:{verdict}" if line.target else ""
        print(
            f"{line.label:<66} shipyard {fmt_s(line.shipyard):>9}  {other:<23} "
            f"{line.ratio:<16}{target}"
        )
    if args.write_docs:
        write_docs(render(lines, samples, sizes, info, quick))
    return 0 if all(line.met is not False for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
