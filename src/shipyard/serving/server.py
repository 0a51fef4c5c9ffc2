"""Build a model server from settings and run it with uvicorn (one or several workers).

Several workers are separate processes: uvicorn imports :func:`app_from_environment`
in each, which reads the server's options from ``SHIPYARD_SERVE_CONFIG`` (JSON the
``serve`` command sets), so every worker serves the same models the same way. Each
worker has its own metrics and prediction-log writer (files never collide: their
names carry a random part).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError
from shipyard.serving.app import Server, ServerConfig, create_app
from shipyard.serving.auth import TokenCheck
from shipyard.serving.models import ModelSlot
from shipyard.serving.validation import InputPolicy

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shipyard.core.config import Settings
    from shipyard.registry.registry import ModelRegistry

CONFIG_ENV = "SHIPYARD_SERVE_CONFIG"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_server(
    registry: ModelRegistry,
    refs: Sequence[str],
    config: ServerConfig,
    *,
    log_root: str | os.PathLike[str] | None,
) -> Server:
    """Load every model (hash-checked, tried on its input example) and wire the server."""
    from shipyard.monitoring.prediction_log import PredictionLog
    from shipyard.store.tokens_store import SqlTokenStore

    slots = [ModelSlot(registry, ref, fast=config.fast) for ref in refs]
    log = PredictionLog(log_root) if (log_root is not None and config.log_predictions) else None
    tokens = TokenCheck(SqlTokenStore(registry.tracker.db)) if config.require_auth else None
    return Server(slots, config, prediction_log=log, tokens=tokens)


def needs_auth(host: str, auth: bool | None) -> bool:
    """Tokens are required unless turned off, and always off by default on loopback only."""
    if auth is not None:
        return auth
    return host not in LOOPBACK


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker serves, from ``SHIPYARD_SERVE_CONFIG``."""
    import shipyard as sy

    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise InvalidInputError(f"{CONFIG_ENV} is not set; start servers with `shipyard serve`")
    spec = json.loads(raw)
    sy.configure()
    registry = sy.model_registry()
    config = ServerConfig(
        policy=InputPolicy(**spec["policy"]), max_body_bytes=spec["max_body_bytes"],
        poll_interval=spec["poll_interval"], require_auth=spec["require_auth"],
        log_predictions=spec["log_predictions"], cors_origins=tuple(spec["cors_origins"]),
        fast=spec["fast"], batch_max_rows=spec["batch_max_rows"],
        batch_timeout=spec["batch_timeout"],
    )  # fmt: skip
    server = build_server(registry, spec["refs"], config, log_root=spec["log_root"])
    return create_app(server)


def config_spec(refs: Sequence[str], config: ServerConfig, log_root: str | None) -> str:
    """The JSON :func:`app_from_environment` reads."""
    data: dict[str, Any] = {
        "refs": list(refs), "policy": asdict(config.policy),
        "max_body_bytes": config.max_body_bytes, "poll_interval": config.poll_interval,
        "require_auth": config.require_auth, "log_predictions": config.log_predictions,
        "cors_origins": list(config.cors_origins), "log_root": log_root, "fast": config.fast,
        "batch_max_rows": config.batch_max_rows, "batch_timeout": config.batch_timeout,
    }  # fmt: skip
    return json.dumps(data)


def log_root_of(settings: Settings) -> str:
    """Where the prediction log goes: the store's home folder."""
    return str(Path(settings.home).resolve())
