"""The settings of the public Python API, read once from the environment.

``import shipyard as sy`` and ``sy.data`` are entry points like the CLI: they build
their settings here, from ``SHIPYARD_*`` variables and ``shipyard.toml``, the first
time a call needs them. :func:`set_settings` replaces them (``sy.configure`` uses it);
everything below takes the settings object as an argument.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from shipyard.core.config import Settings, load_settings

_lock = threading.Lock()
_current: list[Settings] = []


def current_settings() -> Settings:
    """The settings in effect, read from the environment on first use."""
    if not _current:
        with _lock:
            if not _current:
                _current.append(load_settings(os.environ, cwd=Path.cwd()))
    return _current[0]


def set_settings(settings: Settings | None = None) -> Settings:
    """Use ``settings`` from now on (None: read the environment again)."""
    with _lock:
        _current[:] = [settings or load_settings(os.environ, cwd=Path.cwd())]
        return _current[0]
