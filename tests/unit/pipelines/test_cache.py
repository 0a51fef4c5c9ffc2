"""Step cache keys, input digests through the stat cache, and saved/restored outputs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.data import folders
from shipyard.data.folders import HASH_CACHE_FILENAME, FolderManifest, HashCache
from shipyard.pipelines import cache as cache_module
from shipyard.pipelines.cache import (
    InputHasher,
    OutputManifest,
    OutputStore,
    PathDigest,
    code_fingerprint,
    step_key,
)
from shipyard.store.objects import LocalObjectStore, ObjectInfo, hash_bytes, hash_file

OLD_NS = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago, whole seconds


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def hash_cache(tmp_path: Path) -> Iterator[HashCache]:
    with HashCache(tmp_path / "cache" / HASH_CACHE_FILENAME) as c:
        yield c


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache files written moments ago too (the files' mtimes are set explicitly)."""
    monkeypatch.setattr(folders, "RACY_WINDOW_NS", -3600 * 10**9)


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the input hasher reads to hash (the files are still hashed)."""
    calls: list[str] = []

    def spy(path: str) -> ObjectInfo:
        calls.append(os.fspath(path))
        return hash_file(path)

    monkeypatch.setattr(cache_module, "hash_file", spy)
    return calls


@pytest.fixture
def make_outputs(root: Path, tmp_path: Path) -> Callable[[], OutputStore]:
    """Factory: a fresh OutputStore (and hasher) on one object store, as each run makes."""
    objects = LocalObjectStore(tmp_path / "objects")

    def make() -> OutputStore:
        return OutputStore(objects, root, hasher=InputHasher(root))

    return make


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _key(hasher: InputHasher, command: str, deps: list[str], **params: object) -> str:
    return step_key(
        code=code_fingerprint("run", command, root=hasher.root),
        inputs={dep: hasher.digest(dep).digest for dep in deps},
        params=params,
    )


# -- input digests ------------------------------------------------------------------------


def test_file_digest_is_the_blake3_of_its_bytes(root: Path) -> None:
    _write(root, {"data/raw.csv": b"a,b\n1,2\n"})
    found = InputHasher(root).digest("./data//raw.csv")
    assert found == PathDigest("data/raw.csv", "file", hash_bytes(b"a,b\n1,2\n"), 8, 1)


def test_missing_path_has_kind_missing(root: Path) -> None:
    hasher = InputHasher(root)
    assert hasher.digest("nope.csv") == PathDigest("nope.csv", "missing", "", 0, 0)
    _write(root, {"file": b"x"})
    assert hasher.digest("file/below").kind == "missing"  # a file where a folder would be


@pytest.mark.parametrize("bad", ["/etc/passwd", "", ".", "  "])
def test_input_paths_must_be_relative_and_name_something(root: Path, bad: str) -> None:
    with pytest.raises(InvalidInputError):
        InputHasher(root).digest(bad)


def test_folder_digest_is_independent_of_write_order_and_changes_with_a_new_file(
    root: Path,
) -> None:
    files = {"b/2.txt": b"two", "a.txt": b"one", "b/c/3.txt": b"three"}
    _write(root / "first", files)
    _write(root / "second", dict(reversed(files.items())))
    hasher = InputHasher(root)
    first, second = hasher.digest("first"), hasher.digest("second")
    assert first.kind == "dir" and (first.files, first.size) == (3, 11)
    assert first.digest == second.digest
    assert first.digest == folders.scan_folder(root / "first", cache=None).digest

    _write(root / "second", {"b/c/4.txt": b""})
    assert hasher.digest("second").digest != first.digest


def test_empty_folder_has_the_digest_of_an_empty_manifest(root: Path) -> None:
    (root / "empty" / "sub").mkdir(parents=True)
    found = InputHasher(root).digest("empty")
    assert (found.kind, found.digest, found.files) == ("dir", FolderManifest(()).digest, 0)


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_big_file_is_not_read_again(
    root: Path, hash_cache: HashCache, hash_calls: list[str]
) -> None:
    big = root / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * 16)  # 16 MiB
    os.utime(big, ns=(OLD_NS, OLD_NS))
    first = InputHasher(root, hash_cache=hash_cache).digest("big.bin")
    assert len(hash_calls) == 1

    # a new hasher (a new run) on the same cache: a stat and one lookup, no read
    t0 = time.perf_counter()
    again = InputHasher(root, hash_cache=hash_cache).digest("big.bin")
    elapsed = time.perf_counter() - t0
    assert again == first
    assert len(hash_calls) == 1
    assert elapsed < 0.5  # loose: hashing 16 MiB is what would take time

    # touched only: read once more (its mtime changed), same digest
    os.utime(big, ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    hasher = InputHasher(root, hash_cache=hash_cache)
    assert hasher.digest("big.bin") == first
    assert len(hash_calls) == 2
    assert hasher.digest("big.bin") == first  # remembered by the hasher as well
    assert len(hash_calls) == 2


@pytest.mark.usefixtures("no_racy_window")
def test_folder_inputs_use_the_same_stat_cache(root: Path, hash_cache: HashCache) -> None:
    _write(root, {"data/a.csv": b"a", "data/b.csv": b"b"})
    for name in ("a.csv", "b.csv"):
        os.utime(root / "data" / name, ns=(OLD_NS, OLD_NS))
    first = InputHasher(root, hash_cache=hash_cache).digest("data")
    rows = hash_cache.lookup(root / "data")
    assert {Path(p).name for p in rows} == {"a.csv", "b.csv"}
    assert InputHasher(root, hash_cache=hash_cache).digest("data") == first


def test_recent_files_are_hashed_each_time(
    root: Path, hash_cache: HashCache, hash_calls: list[str]
) -> None:
    _write(root, {"fresh.txt": b"x"})  # written now: its timestamps cannot prove a change yet
    hasher = InputHasher(root, hash_cache=hash_cache)
    hasher.digest("fresh.txt")
    hasher.digest("fresh.txt")
    assert len(hash_calls) == 2
    assert hash_cache.lookup(root) == {}


# -- keys ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_racy_window")
def test_key_changes_with_command_input_bytes_and_params_not_with_a_touch(
    root: Path, hash_cache: HashCache
) -> None:
    _write(root, {"data/raw.csv": b"x,y\n1,2\n", "prep.py": b"print('hi')\n"})
    for rel in ("data/raw.csv", "prep.py"):
        os.utime(root / rel, ns=(OLD_NS, OLD_NS))
    deps = ["data/raw.csv", "prep.py"]

    def key(command: str = "python prep.py", **params: object) -> str:
        return _key(InputHasher(root, hash_cache=hash_cache), command, deps, **params)

    base = key(test_size=0.2)
    assert key(test_size=0.2) == base
    assert key("python prep.py --fast", test_size=0.2) != base
    assert key(test_size=0.3) != base
    assert key() != base

    os.utime(root / "data/raw.csv", ns=(OLD_NS + 5 * 10**9, OLD_NS + 5 * 10**9))
    assert key(test_size=0.2) == base  # touched: same bytes, same key

    (root / "data/raw.csv").write_bytes(b"x,y\n1,3\n")  # same size, one byte differs
    os.utime(root / "data/raw.csv", ns=(OLD_NS + 9 * 10**9, OLD_NS + 9 * 10**9))
    assert key(test_size=0.2) != base


def test_key_is_canonical() -> None:
    a = step_key(code="c", inputs={"x": "1", "y": "2"}, params={"p": [1, 2], "q": {"b": 1, "a": 2}})
    b = step_key(code="c", inputs={"y": "2", "x": "1"}, params={"q": {"a": 2, "b": 1}, "p": (1, 2)})
    assert a == b and len(a) == 64
    assert step_key(code="c", inputs={"x": "1", "y": "2"}, params={"p": [1, 2]}) != a
    assert step_key(code="c", inputs={}, params={}, extra={"outs": ["a"]}) != step_key(
        code="c", inputs={}, params={}, extra={"outs": ["b"]}
    )
    assert step_key(code="c", inputs={}, params={"p": 1}) != step_key(
        code="c", inputs={}, params={"p": True}
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"grid": {1, 2}}, "params['grid']"),
        ({"alpha": float("nan")}, "params['alpha']"),
        ({"grid": {"C": [1, object()]}}, "params['grid']['C'][1]"),
        ({"grid": {1: "a"}}, "params['grid']"),
    ],
)
def test_params_without_a_json_form_are_refused(params: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInputError, match=named.replace("[", r"\[")):
        step_key(code="c", inputs={}, params=params)


# -- code fingerprints ----------------------------------------------------------------------


def _module(root: Path, rel: str, source: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_run_and_uses_fingerprints(root: Path) -> None:
    assert code_fingerprint("run", "python a.py --n 3", root=root) == "python a.py --n 3"
    assert "shipyard.split" in code_fingerprint("uses", "shipyard.split", root=root)
    with pytest.raises(InvalidInputError, match="'shell'"):
        code_fingerprint("shell", "ls", root=root)


def test_call_fingerprint_is_the_function_source_and_follows_edits(root: Path) -> None:
    _module(
        root,
        "cachetest_steps/train.py",
        '''
        import cachetest_not_installed_anywhere  # never imported: read from the file

        def helper():
            return 1


        @staticmethod
        def main(n=1):
            """Train."""
            return n + helper()


        if __name__ == "__main__":
            main()
        ''',
    )
    before = sys.path[:]
    code = code_fingerprint("call", "cachetest_steps.train:main", root=root)
    assert sys.path == before
    assert code.startswith("@staticmethod\ndef main(n=1):")
    assert "return n + helper()" in code and "helper():" not in code
    assert "cachetest_steps" not in sys.modules

    # the helper is not part of the function's source
    text = (root / "cachetest_steps/train.py").read_text()
    (root / "cachetest_steps/train.py").write_text(text.replace("return 1", "return 2"))
    assert code_fingerprint("call", "cachetest_steps.train:main", root=root) == code

    (root / "cachetest_steps/train.py").write_text(text.replace("n + helper()", "n * helper()"))
    changed = code_fingerprint("call", "cachetest_steps.train:main", root=root)
    assert changed != code
    key = step_key(code=code, inputs={}, params={})
    assert step_key(code=changed, inputs={}, params={}) != key


def test_call_fingerprint_imports_a_reexported_function(root: Path) -> None:
    _module(root, "cachetest_pkg/__init__.py", "from cachetest_pkg.impl import fit as main\n")
    _module(root, "cachetest_pkg/impl.py", "def fit(x):\n    return x * 2\n")
    before = sys.path[:]
    try:
        code = code_fingerprint("call", "cachetest_pkg:main", root=root)
    finally:
        for name in ("cachetest_pkg", "cachetest_pkg.impl"):
            sys.modules.pop(name, None)
    assert code == "def fit(x):\n    return x * 2\n"
    assert sys.path == before


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("cachetest_missing_mod:main", "cannot import module cachetest_missing_mod"),
        ("cachetest_solo:nope", "has no 'nope'"),
        ("cachetest_solo", "MODULE:FUNCTION"),
        ("cachetest_solo:", "MODULE:FUNCTION"),
        ("cachetest_broken:main", "cannot read module cachetest_broken"),
    ],
)
def test_call_fingerprint_names_the_target_it_cannot_import(
    root: Path, target: str, match: str
) -> None:
    _module(root, "cachetest_solo.py", "def main():\n    pass\n")
    _module(root, "cachetest_broken.py", "def main(:\n")
    before = sys.path[:]
    try:
        with pytest.raises(InvalidInputError, match=match) as info:
            code_fingerprint("call", target, root=root)
    finally:
        sys.modules.pop("cachetest_solo", None)
    assert repr(target) in info.value.message
    assert sys.path == before


# -- outputs ------------------------------------------------------------------------------


def test_file_output_save_present_restore(
    root: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    _write(root, {"models/model.pkl": b"weights" * 1000, "run.sh": b"#!/bin/sh\necho\n"})
    os.chmod(root / "run.sh", 0o755)
    manifest = make_outputs().save(["models/model.pkl", "run.sh", "models/model.pkl"])
    assert [(e.path, e.kind, e.files) for e in manifest.outputs] == [
        ("models/model.pkl", "file", 1),
        ("run.sh", "file", 1),
    ]
    assert manifest.outputs[1].executable and not manifest.outputs[0].executable
    outputs = make_outputs()
    assert outputs.present(manifest)
    assert outputs.restore(manifest) == []

    (root / "models/model.pkl").unlink()
    (root / "run.sh").unlink()
    outputs = make_outputs()
    assert not outputs.present(manifest)
    assert outputs.restore(manifest) == ["models/model.pkl", "run.sh"]
    assert (root / "models/model.pkl").read_bytes() == b"weights" * 1000
    assert os.stat(root / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(root / "models/model.pkl").st_mode & stat.S_IXUSR
    assert make_outputs().present(manifest)

    (root / "models/model.pkl").write_bytes(b"tampered")
    outputs = make_outputs()
    assert not outputs.present(manifest)
    assert outputs.restore(manifest) == ["models/model.pkl"]
    assert (root / "models/model.pkl").read_bytes() == b"weights" * 1000
    assert [p.name for p in (root / "models").iterdir()] == ["model.pkl"]  # no temp left

    # a folder where the file belongs is replaced by the file
    (root / "run.sh").unlink()
    (root / "run.sh").mkdir()
    (root / "run.sh" / "x").write_bytes(b"x")
    assert make_outputs().restore(manifest) == ["run.sh"]
    assert (root / "run.sh").read_bytes() == b"#!/bin/sh\necho\n"


def test_folder_output_save_present_restore(
    root: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    files = {"out/a.csv": b"a" * 100, "out/sub/b.csv": b"b" * 50, "out/sub/deep/c.txt": b"c"}
    _write(root, files)
    manifest = make_outputs().save(["out"])
    (entry,) = manifest.outputs
    assert (entry.kind, entry.files, entry.size) == ("dir", 3, 151)
    assert entry.digest == InputHasher(root).digest("out").digest  # as a downstream input
    assert [f.path for f in entry.contents] == ["a.csv", "sub/b.csv", "sub/deep/c.txt"]
    assert make_outputs().present(manifest)

    # deleted: everything comes back
    for path in sorted((root / "out").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "out").rmdir()
    outputs = make_outputs()
    assert not outputs.present(manifest)
    assert sorted(outputs.restore(manifest)) == sorted(files)
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data

    # modified: only that file is rewritten
    (root / "out/sub/b.csv").write_bytes(b"B" * 50)
    outputs = make_outputs()
    assert not outputs.present(manifest)
    assert outputs.restore(manifest) == ["out/sub/b.csv"]
    assert (root / "out/sub/b.csv").read_bytes() == b"b" * 50

    # an extra file (and the folder it was in) is removed
    _write(root, {"out/extra.txt": b"?", "out/new/dir/stray.bin": b"??"})
    outputs = make_outputs()
    assert not outputs.present(manifest)
    assert outputs.restore(manifest) == []
    assert not (root / "out/extra.txt").exists()
    assert not (root / "out/new").exists()
    assert make_outputs().present(manifest)
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data


def test_folder_output_replaced_by_a_file_is_restored(
    root: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    _write(root, {"out/a": b"1", "out/b/c": b"2"})
    manifest = make_outputs().save(["out"])
    for rel in ("out/b/c", "out/a"):
        (root / rel).unlink()
    (root / "out/b").rmdir()
    _write(root, {"out/b": b"now a file"})
    assert sorted(make_outputs().restore(manifest)) == ["out/a", "out/b/c"]
    assert (root / "out/b/c").read_bytes() == b"2"


def test_symlinked_output_folder_is_restored_through_the_link(
    root: Path, tmp_path: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    _write(tmp_path / "elsewhere", {"a.txt": b"a"})
    (root / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    manifest = make_outputs().save(["out"])
    (tmp_path / "elsewhere" / "a.txt").write_bytes(b"changed")
    assert make_outputs().restore(manifest) == ["out/a.txt"]
    assert (root / "out").is_symlink()
    assert (tmp_path / "elsewhere" / "a.txt").read_bytes() == b"a"


def test_inputs_outside_the_root_are_hashed(root: Path, tmp_path: Path) -> None:
    _write(tmp_path, {"shared/params.yaml": b"a: 1\n"})
    found = InputHasher(root).digest("../shared/params.yaml")
    assert (found.path, found.digest) == ("../shared/params.yaml", hash_bytes(b"a: 1\n"))


def test_missing_declared_output_is_an_error(
    root: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    _write(root, {"written.csv": b"x"})
    with pytest.raises(InvalidInputError, match=r"step declared output data/out\.csv but did not"):
        make_outputs().save(["written.csv", "data/out.csv"])


@pytest.mark.parametrize("bad", ["../elsewhere.csv", "/tmp/x.csv"])
def test_outputs_must_be_inside_the_root(
    root: Path, make_outputs: Callable[[], OutputStore], bad: str
) -> None:
    with pytest.raises(InvalidInputError, match="pipeline's folder"):
        make_outputs().save([bad])


def test_restore_without_the_objects_raises_not_found(
    root: Path, tmp_path: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    _write(root, {"a.txt": b"a"})
    manifest = make_outputs().save(["a.txt"])
    (root / "a.txt").unlink()
    empty = OutputStore(LocalObjectStore(tmp_path / "other"), root, hasher=InputHasher(root))
    with pytest.raises(NotFoundError):
        empty.restore(manifest)
    assert os.listdir(root) == []  # nothing half-written


def test_manifest_round_trips_through_json(
    root: Path, make_outputs: Callable[[], OutputStore]
) -> None:
    _write(root, {"m.bin": b"m", "d/x": b"x", "d/y/z": b"z"})
    manifest = make_outputs().save(["m.bin", "d"])
    body = json.loads(json.dumps(manifest.to_dict()))
    assert body["format"] == "shipyard.step-outputs"
    assert OutputManifest.from_dict(body) == manifest
    assert manifest.digests == {hash_bytes(b"m"), hash_bytes(b"x"), hash_bytes(b"z")}

    body["outputs"][1]["contents"][0][1] = hash_bytes(b"other")
    with pytest.raises(InvalidInputError, match="do not match its digest"):
        OutputManifest.from_dict(body)
    with pytest.raises(InvalidInputError, match="malformed"):
        OutputManifest.from_dict({"format": "shipyard.step-outputs", "version": 99})


def test_hasher_and_store_must_share_the_root(root: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="hasher"):
        OutputStore(LocalObjectStore(tmp_path / "o"), root, hasher=InputHasher(tmp_path))


# -- import cost ----------------------------------------------------------------------------


def test_import_does_not_load_the_data_science_stack() -> None:
    code = (
        "import sys, shipyard.pipelines.cache; "
        "print([m for m in ('pandas', 'sklearn', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
