from pathlib import Path

import pytest

from shipyard.core.config import load_settings
from shipyard.core.errors import InvalidInputError


def test_defaults_put_the_store_under_cwd(tmp_path: Path) -> None:
    s = load_settings({}, cwd=tmp_path)
    assert s.home == str(tmp_path / ".shipyard")
    assert s.db_url == f"sqlite:///{tmp_path / '.shipyard' / 'shipyard.db'}"
    assert s.artifact_uri == str(tmp_path / ".shipyard" / "objects")
    assert s.source_of("db_url") == "default"


def test_env_beats_toml_beats_default_and_sources_are_named(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(
        '[shipyard]\nexperiment = "from-toml"\nflush_interval = 0.5\n'
    )
    s = load_settings({"SHIPYARD_FLUSH_INTERVAL": "2"}, cwd=tmp_path)
    assert s.experiment == "from-toml"
    assert s.source_of("experiment") == "shipyard.toml"
    assert s.flush_interval == 2.0
    assert s.source_of("flush_interval") == "env SHIPYARD_FLUSH_INTERVAL"
    rows = {name: (value, source) for name, value, source in s.describe()}
    assert rows["flush_interval"] == ("2.0", "env SHIPYARD_FLUSH_INTERVAL")


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings({}, cwd=tmp_path)
    with pytest.raises(AttributeError):
        s.experiment = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SHIPYARD_FLUSH_INTERVAL": "soon"}, "SHIPYARD_FLUSH_INTERVAL"),
        ({"SHIPYARD_FLUSH_MAX_POINTS": "-3"}, "SHIPYARD_FLUSH_MAX_POINTS"),
        ({"SHIPYARD_CAPTURE_ENV": "maybe"}, "SHIPYARD_CAPTURE_ENV"),
        ({"SHIPYARD_CONFIG": "missing.toml"}, "missing.toml"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        load_settings(env, cwd=tmp_path)


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("[shipyard]\nexperiments = 'typo'\n")
    with pytest.raises(InvalidInputError, match="unknown setting"):
        load_settings({}, cwd=tmp_path)


def test_broken_toml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("[shipyard\n")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_settings({}, cwd=tmp_path)
