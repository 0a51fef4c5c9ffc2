"""One frozen settings object, built from defaults, ``shipyard.toml`` and ``SHIPYARD_*`` variables.

Precedence, lowest to highest: built-in default, ``shipyard.toml`` (in the
working directory, or the file ``SHIPYARD_CONFIG`` names), environment
variable. Every value remembers where it came from, so ``shipyard config
show`` can say so. Only entry points (CLI, server, the public client) call
:func:`load_settings`; library code receives the object.

Example::

    settings = load_settings(os.environ, cwd=Path.cwd())
    settings.db_url, settings.source_of("db_url")
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError

CONFIG_FILE = "shipyard.toml"


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _positive_float(raw: Any) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(f"expected a number > 0, got {raw!r}")
    return value


def _positive_int(raw: Any) -> int:
    if isinstance(raw, float) or (isinstance(raw, str) and not raw.strip().isdigit()):
        raise ValueError(f"expected a whole number > 0, got {raw!r}")
    value = int(raw)
    if value <= 0:
        raise ValueError(f"expected a whole number > 0, got {raw!r}")
    return value


def _text(raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"expected text, got {raw!r}")
    return str(raw)


@dataclass(frozen=True)
class _Option:
    name: str
    env: str
    parse: Callable[[Any], Any]
    help: str


OPTIONS: tuple[_Option, ...] = (
    _Option("home", "SHIPYARD_HOME", _text, "folder for the embedded store"),
    _Option("db_url", "SHIPYARD_DB_URL", _text, "SQLAlchemy URL of the metadata database"),
    _Option("artifact_uri", "SHIPYARD_ARTIFACT_URI", _text, "folder or s3:// URI of the objects"),
    _Option("experiment", "SHIPYARD_EXPERIMENT", _text, "experiment used when none is set"),
    _Option(
        "flush_interval",
        "SHIPYARD_FLUSH_INTERVAL",
        _positive_float,
        "seconds between background writes",
    ),
    _Option(
        "flush_max_points",
        "SHIPYARD_FLUSH_MAX_POINTS",
        _positive_int,
        "points that wake the writer early",
    ),
    _Option(
        "busy_timeout",
        "SHIPYARD_BUSY_TIMEOUT",
        _positive_float,
        "seconds to wait for a locked database",
    ),
    _Option(
        "capture_environment",
        "SHIPYARD_CAPTURE_ENV",
        _bool,
        "record git and packages with each run",
    ),
    _Option("cache_dir", "SHIPYARD_CACHE_DIR", _text, "folder for caches shared by stores"),
    _Option(
        "expectations_dir",
        "SHIPYARD_EXPECTATIONS_DIR",
        _text,
        "folder of the editable <dataset>.yaml expectation files",
    ),
    _Option("uri", "SHIPYARD_URI", _text, "tracking server URL (team mode); empty = embedded"),
    _Option(
        "s3_endpoint_url", "SHIPYARD_S3_ENDPOINT_URL", _text, "endpoint of an S3-compatible store"
    ),
    _Option("user", "SHIPYARD_USER", _text, "who acts (audit log, roles); empty = the OS user"),
)


@dataclass(frozen=True)
class Settings:
    """Effective settings. Build with :func:`load_settings`; never mutate."""

    home: str = ".shipyard"
    db_url: str = ""
    artifact_uri: str = ""
    experiment: str = "Default"
    flush_interval: float = 0.2
    flush_max_points: int = 50_000
    busy_timeout: float = 60.0
    capture_environment: bool = True
    cache_dir: str = ""
    expectations_dir: str = "expectations"
    uri: str = ""
    s3_endpoint_url: str = ""
    user: str = ""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def actor(self) -> str:
        """The name recorded as the actor of every change: ``user``, else the OS user."""
        if self.user:
            return self.user
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no login name (some containers)
            return "unknown"

    def source_of(self, name: str) -> str:
        """Where the value of ``name`` came from: ``default``, ``shipyard.toml`` or ``env VAR``."""
        return self.sources.get(name, "default")

    def describe(self) -> list[tuple[str, str, str]]:
        """``(name, value, source)`` rows, in declaration order."""
        return [(o.name, str(getattr(self, o.name)), self.source_of(o.name)) for o in OPTIONS]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not valid TOML: {exc}. Fix the file or remove it."
        ) from exc
    table = data.get("shipyard", data)
    if not isinstance(table, dict):
        raise InvalidInputError(f"{path}: [shipyard] must be a table of settings")
    known = {o.name for o in OPTIONS}
    unknown = sorted(set(table) - known - {"shipyard"})
    if unknown:
        raise InvalidInputError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return {k: v for k, v in table.items() if k in known}


def load_settings(environ: Mapping[str, str], *, cwd: Path | None = None) -> Settings:
    """Build the settings from ``environ`` and the optional ``shipyard.toml``.

    Args:
        environ: the process environment (only ``SHIPYARD_*`` keys are read).
        cwd: folder where ``shipyard.toml`` and the default ``.shipyard`` home live.

    Raises:
        InvalidInputError: a value does not parse; the message names the variable.
    """
    base = cwd or Path.cwd()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path = Path(environ["SHIPYARD_CONFIG"]) if environ.get("SHIPYARD_CONFIG") else None
    if config_path is not None and not config_path.is_absolute():
        config_path = base / config_path
    if config_path is None and (base / CONFIG_FILE).is_file():
        config_path = base / CONFIG_FILE
    if config_path is not None:
        if not config_path.is_file():
            raise InvalidInputError(
                f"SHIPYARD_CONFIG names {config_path}, which does not exist; "
                "create it or unset the variable"
            )
        for key, raw in _read_toml(config_path).items():
            values[key] = (raw, f"{config_path.name}")
    for opt in OPTIONS:
        if opt.env in environ:
            values[opt.name] = (environ[opt.env], f"env {opt.env}")
    parsed: dict[str, Any] = {}
    by_name = {o.name: o for o in OPTIONS}
    for name, (raw, source) in values.items():
        opt = by_name[name]
        try:
            parsed[name] = opt.parse(raw)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"setting {name} from {source}: {exc}") from exc
        sources[name] = source
    home = Path(parsed.get("home", Settings.home))
    if not home.is_absolute():
        home = base / home
    parsed["home"] = str(home)
    if not parsed.get("db_url"):
        parsed["db_url"] = f"sqlite:///{home / 'shipyard.db'}"
        sources.setdefault("db_url", "default")
    if not parsed.get("artifact_uri"):
        parsed["artifact_uri"] = str(home / "objects")
    elif "://" not in parsed["artifact_uri"] and not Path(parsed["artifact_uri"]).is_absolute():
        parsed["artifact_uri"] = str(base / parsed["artifact_uri"])
    expectations = Path(parsed.get("expectations_dir", Settings.expectations_dir))
    parsed["expectations_dir"] = str(
        expectations if expectations.is_absolute() else base / expectations
    )
    if not parsed.get("cache_dir"):
        xdg = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        parsed["cache_dir"] = str(Path(xdg) / "shipyard")
    names = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in parsed.items() if k in names}, sources=sources)
