"""``shipyard audit`` (the hash-chained log) and ``shipyard users`` (roles)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

audit_app = typer.Typer(help="The tamper-evident audit log of every change.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their roles (viewer, editor, approver, admin).",
                        no_args_is_help=True)  # fmt: skip


@audit_app.command("log")
def log(
    entity: Annotated[str | None, typer.Option(help="A model, dataset, run or alias name.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only changes by this user.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (alias.promote...).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Changes, newest first: time, actor, action, entity, before and after."""
    from shipyard.governance import audit_events

    stores = c.open_stores()
    events = audit_events(stores.store.db, entity=entity, actor=actor, action=action,
                          limit=limit)  # fmt: skip
    if as_json:
        c.print_json([e.to_dict() for e in events])
        return
    table = c.new_table("seq", "when", "actor", "action", "entity", "change", no_wrap=["seq"])
    for e in events:
        change = _change(e.before, e.after)
        table.add_row(c.text(e.seq), c.text(c.fmt_time(e.at)), c.text(e.actor),
                      c.text(e.action), c.text(e.entity), c.text(change))  # fmt: skip
    c.console().print(table)
    if not events:
        c.note("no events match")


def _change(before: object, after: object) -> str:
    import json

    def show(value: object) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    if before and after:
        return f"{show(before)} -> {show(after)}"
    return show(after or before or "")


@audit_app.command("verify")
def verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH from an earlier `audit head`: also proves no event was cut from the end."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the hash chain; exit 1 and say where if any event was edited, removed or
    reordered."""
    from shipyard.governance import verify_audit_log

    stores = c.open_stores()
    check = verify_audit_log(stores.store.db, anchor=anchor)
    if as_json:
        c.print_json({"ok": check.ok, "events": check.events, "head_seq": check.head_seq,
                      "head_hash": check.head_hash, "first_bad_seq": check.first_bad_seq,
                      "problems": list(check.problems)})  # fmt: skip
    elif check.ok:
        c.console().print(f"audit log intact: {check.events} events, head {check.head_seq}:"
                          f"{check.head_hash}")  # fmt: skip
    else:
        err = c.err_console()
        err.print(f"[bold red]audit log broken[/] at event {check.first_bad_seq} "
                  f"({check.events} events read):")  # fmt: skip
        for problem in check.problems:
            err.print(f"  - {problem}", markup=False)
    if not check.ok:
        raise typer.Exit(1)


@audit_app.command("head")
def head() -> None:
    """Print SEQ:HASH of the newest event; keep it elsewhere to anchor a later verify."""
    from shipyard.governance import audit_head

    seq, digest = audit_head(c.open_stores().store.db)
    typer.echo(f"{seq}:{digest}")


@users_app.command("list")
def list_users(as_json: JsonFlag = False) -> None:
    """Users with a stored role, and who you are."""
    registry = c.open_registry()
    rows = registry.users.list_users()
    me = registry.identity
    if as_json:
        c.print_json({"you": {"name": me.name, "role": me.role, "assigned": me.assigned},
                      "users": [{"name": n, "role": r, "created_at": t, "created_by": b}
                                for n, r, t, b in rows]})  # fmt: skip
        return
    table = c.new_table("user", "role", "since", "by")
    for name, role, at, by in rows:
        table.add_row(c.text(name), c.text(role), c.text(c.fmt_time(at)), c.text(by))
    c.console().print(table)
    how = "stored" if me.assigned else "the embedded default for a user without a stored role"
    c.note(f"you are {me.name!r}, role {me.role} ({how})")


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user name (as SHIPYARD_USER gives it).")],
    role: Annotated[str, typer.Option(help="viewer, editor, approver or admin.")],
) -> None:
    """Give a user a role (admin role)."""
    c.open_registry().set_role(name, role)
    c.console().print(f"{name} is {role}")


@users_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Remove a user's stored role (admin role)."""
    c.open_registry().set_role(name, None)
    c.console().print(f"removed {name}")
