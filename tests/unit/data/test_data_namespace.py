"""``sy.data`` stays a namespace of functions even after every submodule is imported."""

from __future__ import annotations

import importlib
import pkgutil
import types

import shipyard.data


def test_no_submodule_shadows_a_public_function() -> None:
    for info in pkgutil.iter_modules(shipyard.data.__path__):
        importlib.import_module(f"shipyard.data.{info.name}")
    for name in shipyard.data.__all__:
        value = getattr(shipyard.data, name)
        assert not isinstance(value, types.ModuleType), f"shipyard.data.{name} is a module"


def test_sy_data_is_the_data_package() -> None:
    import shipyard as sy

    assert sy.data is shipyard.data
    assert callable(sy.data.add) and callable(sy.data.profile) and callable(sy.data.diff)


def test_folder_manifests_are_what_the_store_reads() -> None:
    from shipyard.data.folders import FileEntry, FolderManifest
    from shipyard.store.manifest import encode_manifest, manifest_entries

    entries = [("b/x.bin", 3, "b" * 64), ("a.txt", 1, "a" * 64)]
    manifest = FolderManifest(tuple(FileEntry(p, s, d) for p, s, d in sorted(entries)))
    assert manifest.to_bytes() == encode_manifest(entries)
    assert manifest_entries(manifest.to_bytes()) == [("a.txt", "a" * 64), ("b/x.bin", "b" * 64)]
