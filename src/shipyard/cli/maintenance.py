"""``shipyard doctor`` and ``shipyard gc``: check a store, mend stale runs, reclaim space."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

if TYPE_CHECKING:
    from collections.abc import Callable

    from shipyard.store.maintenance import DoctorReport, ObjectIssue

_MAX_LISTED = 50


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on stderr when it is a terminal, else no callback."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(console=c.err_console(), transient=True) as bar:
        task = bar.add_task("hashing objects", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _issue_lines(title: str, issues: tuple[ObjectIssue, ...], style: str) -> None:
    out = c.console()
    out.print(c.text(f"{title} ({len(issues)}):", f"bold {style}"))
    for issue in issues[:_MAX_LISTED]:
        out.print(c.text(f"  run {issue.where}  object {issue.digest}", style))
    if len(issues) > _MAX_LISTED:
        out.print(c.text(f"  ... and {len(issues) - _MAX_LISTED} more (see --json)", style))


def _print_report(report: DoctorReport, marked: list[str]) -> None:
    out = c.console()
    hashing = "hashes verified" if report.hashes_verified else "hashes not verified"
    out.print(
        c.text(
            f"objects: {report.objects_referenced} referenced, "
            f"{report.objects_stored} stored ({hashing})"
        )
    )
    if report.missing:
        _issue_lines("missing objects", report.missing, "red")
    if report.corrupt:
        _issue_lines("corrupt objects", report.corrupt, "red")
    if report.integrity_errors:
        out.print(
            c.text(f"database integrity errors ({len(report.integrity_errors)}):", "bold red")
        )
        for line in report.integrity_errors:
            out.print(c.text(f"  {line}", "red"))
    if report.stale:
        out.print(
            c.text(
                f"stale runs, left RUNNING by a dead process ({len(report.stale)}):", "bold yellow"
            )
        )
        for s in report.stale:
            done = " -> marked KILLED" if s.run_id in marked else ""
            out.print(c.text(f"  run {s.run_id}: {s.reason}{done}", "yellow"))
        if not marked:
            out.print(c.text("  mark them KILLED with `shipyard doctor --fix-stale`", "dim"))
    if report.unchecked_running:
        out.print(
            c.text(
                f"runs RUNNING on another host, not checked: {len(report.unchecked_running)}", "dim"
            )
        )
    if report.orphans:
        out.print(
            c.text(
                f"unreferenced objects: {len(report.orphans)} (`shipyard gc` removes them)", "dim"
            )
        )
    if report.consistent:
        out.print(c.text("the store is consistent", "bold green"))
    else:
        out.print(c.text("the store is NOT consistent", "bold red"))


def doctor(
    fix_stale: Annotated[
        bool, typer.Option("--fix-stale", help="Mark runs of dead processes KILLED.")
    ] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Only check that objects exist; do not hash them.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check the store: every referenced object exists and hashes right, no stale runs.

    Exits 1 when a referenced object is missing or corrupt or the database fails its
    integrity checks; stale runs and unreferenced objects are reported but are not errors.
    """
    from shipyard.store import maintenance

    stores = c.open_stores()
    with _progress(not no_verify and not as_json) as progress:
        report = maintenance.doctor(
            stores.store, stores.objects, verify_hashes=not no_verify, progress=progress
        )
    marked: list[str] = []
    if fix_stale and report.stale:
        marked = maintenance.mark_stale(stores.store, [s.run_id for s in report.stale])
    if as_json:
        data = report.to_dict()
        data["marked_killed"] = marked
        c.print_json(data)
    else:
        _print_report(report, marked)
    if not report.consistent:
        raise typer.Exit(1)


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")
    ] = False,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            min=0,
            metavar="SECONDS",
            help="Keep unreferenced objects modified less than this long ago.",
        ),
    ] = 3600.0,
    as_json: JsonFlag = False,
) -> None:
    """Purge deleted runs and experiments for good, then delete unreferenced objects."""
    from shipyard.store import maintenance

    stores = c.open_stores()
    report = maintenance.gc(stores.store, stores.objects, older_than_s=older_than, dry_run=dry_run)
    if as_json:
        c.print_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    out = c.console()
    out.print(
        c.text(
            f"{verb} {report.runs_purged} deleted runs and "
            f"{report.experiments_purged} deleted experiments"
        )
    )
    out.print(
        c.text(
            f"{verb} {len(report.objects_deleted)} unreferenced objects"
            f" ({c.fmt_size(report.bytes_freed)})"
        )
    )
    if report.temp_files_deleted:
        out.print(c.text(f"{verb} {report.temp_files_deleted} leftover temporary files"))
    if report.objects_in_grace:
        out.print(
            c.text(
                f"kept {report.objects_in_grace} unreferenced objects newer than "
                f"{older_than:g}s (they may be about to be recorded)",
                "dim",
            )
        )
