"""``shipyard serve``: the HTTP model server, and ``shipyard tokens`` for its API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

tokens_app = typer.Typer(help="API tokens for the model server (stored hashed).",
                         no_args_is_help=True)  # fmt: skip


def serve(
    refs: Annotated[list[str], typer.Argument(help="Models to serve: NAME@ALIAS or NAME@VERSION.")],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    auth: Annotated[
        bool | None,
        typer.Option("--auth/--no-auth", help="Require API tokens (default: unless on loopback)."),
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between checks that a served alias moved (0: never).")
    ] = 5.0,
    out_of_range: Annotated[
        str, typer.Option(help="Values far outside the training range: reject, flag or pass.")
    ] = "flag",
    unseen_category: Annotated[
        str, typer.Option(help="Categories not seen in training: reject, flag or pass.")
    ] = "reject",
    max_rows: Annotated[int, typer.Option(help="Rows per request at most.")] = 10_000,
    max_body_mb: Annotated[float, typer.Option(help="Request body size limit in MB.")] = 8.0,
    fast: Annotated[
        bool,
        typer.Option(
            help="Serve scikit-learn models through onnxruntime when the "
            "conversion matches on the input example (the onnx extra)."
        ),
    ] = False,
    batch_max_size: Annotated[
        int, typer.Option(help="Micro-batching: rows that close a batch (0: off).")
    ] = 0,
    batch_timeout_ms: Annotated[
        float, typer.Option(help="Micro-batching: ms a request waits for others, at most.")
    ] = 2.0,
    log_predictions: Annotated[
        bool, typer.Option(help="Write every prediction to the prediction log.")
    ] = True,
    cors_origin: Annotated[
        list[str], typer.Option(help="Allow this origin (CORS); repeatable. Default: none.")
    ] = [],  # noqa: B006
) -> None:
    """Serve registered models over HTTP: Open Inference Protocol v2, /predict, /metrics."""
    import logging
    import os

    import uvicorn

    from shipyard.core.errors import InvalidInputError
    from shipyard.serving.app import ServerConfig, create_app
    from shipyard.serving.server import (
        CONFIG_ENV,
        build_server,
        config_spec,
        log_root_of,
        needs_auth,
    )
    from shipyard.serving.validation import InputPolicy

    if workers < 1:
        raise InvalidInputError(f"--workers must be at least 1, got {workers}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InvalidInputError("TLS needs both --ssl-certfile and --ssl-keyfile")
    registry = c.open_registry()
    config = ServerConfig(
        policy=InputPolicy(out_of_range=out_of_range, unseen_category=unseen_category,
                           max_rows=max_rows),
        max_body_bytes=int(max_body_mb * 2**20), poll_interval=poll_interval,
        require_auth=needs_auth(host, auth), log_predictions=log_predictions,
        cors_origins=tuple(cors_origin), fast=fast, batch_max_rows=batch_max_size,
        batch_timeout=batch_timeout_ms / 1000,
    )  # fmt: skip
    log_root = log_root_of(registry.tracker.settings)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("shipyard.serving.access").setLevel(logging.INFO)
    cert = str(ssl_certfile) if ssl_certfile else None
    key = str(ssl_keyfile) if ssl_keyfile else None
    scheme = "https" if cert else "http"
    c.note(
        f"serving {', '.join(refs)} on {scheme}://{host}:{port} ({workers} worker(s), tokens "
        f"{'required' if config.require_auth else 'not required'}); Ctrl-C or SIGTERM stops"
    )
    if workers == 1:
        server = build_server(registry, refs, config, log_root=log_root)
        uvicorn.run(
            create_app(server),
            host=host,
            port=port,
            access_log=False,
            timeout_graceful_shutdown=30,
            log_level="warning",
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
        return
    for ref in refs:  # fail here, once, rather than in every worker
        registry.get_version(ref)
    os.environ[CONFIG_ENV] = config_spec(refs, config, log_root)
    uvicorn.run("shipyard.serving.server:app_from_environment", factory=True, host=host,
                port=port, workers=workers, access_log=False, timeout_graceful_shutdown=30,
                log_level="warning", ssl_certfile=cert, ssl_keyfile=key)  # fmt: skip


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="What the token is for (e.g. checkout-service).")],
    role: Annotated[
        str, typer.Option(help="predict, viewer, editor, approver or admin.")
    ] = "predict",
    expires_days: Annotated[float | None, typer.Option(help="Days until it expires.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a token (admin role). It is printed once; only its hash is stored."""
    import time

    from shipyard.governance.identity import require_role
    from shipyard.store.tokens_store import SqlTokenStore

    registry = c.open_registry()
    require_role(registry.identity, "admin", to="create API tokens")
    expires = int((time.time() + expires_days * 86400) * 1000) if expires_days else None
    token, record = SqlTokenStore(registry.tracker.db, actor=registry.store.actor).create(
        name, role, expires_at=expires
    )
    if as_json:
        c.print_json({"token": token, "id": record.token_id, "name": name, "role": role,
                      "expires_at": expires})  # fmt: skip
        return
    typer.echo(token)
    c.note(f"token {record.token_id} ({role}) for {name}: shown once, store it now")


@tokens_app.command("list")
def list_tokens(as_json: JsonFlag = False) -> None:
    """Tokens (never their secrets)."""
    from shipyard.store.tokens_store import SqlTokenStore

    registry = c.open_registry()
    tokens = SqlTokenStore(registry.tracker.db).list()
    if as_json:
        c.print_json([{"id": t.token_id, "name": t.name, "role": t.role, "active": t.active,
                       "created_at": t.created_at, "created_by": t.created_by,
                       "expires_at": t.expires_at, "revoked_at": t.revoked_at}
                      for t in tokens])  # fmt: skip
        return
    table = c.new_table("id", "name", "role", "active", "created", "by")
    for t in tokens:
        table.add_row(c.text(t.token_id), c.text(t.name), c.text(t.role),
                      c.text("yes" if t.active else "no"), c.text(c.fmt_time(t.created_at)),
                      c.text(t.created_by))  # fmt: skip
    c.console().print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token (admin role); servers stop accepting it within 30 seconds."""
    from shipyard.governance.identity import require_role
    from shipyard.store.tokens_store import SqlTokenStore

    registry = c.open_registry()
    require_role(registry.identity, "admin", to="revoke API tokens")
    SqlTokenStore(registry.tracker.db, actor=registry.store.actor).revoke(token_id)
    c.console().print(f"revoked {token_id}")
