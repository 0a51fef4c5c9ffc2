"""``shipyard models``: the registry (versions, aliases, gates, cards), and ``shipyard lineage``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

app = typer.Typer(help="Registered models: versions, aliases, promotion gates, model cards.",
                  no_args_is_help=True)  # fmt: skip

AliasOption = Annotated[str, typer.Option("--alias", "-a", help="The alias (e.g. production).")]


@app.command("list")
def list_models(as_json: JsonFlag = False) -> None:
    """Registered models with their latest version and aliases."""
    models = c.open_registry().store.list_models()
    if as_json:
        c.print_json([m.to_dict() for m in models])
        return
    table = c.new_table("name", "latest", "aliases", "policy", "updated", "description")
    for m in models:
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(m.aliases.items())) or "-"
        table.add_row(
            c.text(m.name), c.text(m.latest_version), c.text(aliases),
            c.text("yes" if m.has_policy else "-"), c.text(c.fmt_time(m.updated_at)),
            c.text(m.description),
        )  # fmt: skip
    c.console().print(table)
    if not models:
        c.note("no registered models yet; `shipyard models register RUN_ID NAME` adds one")


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME (all versions), NAME@VERSION or NAME@ALIAS.")],
    as_json: JsonFlag = False,
) -> None:
    """A model's versions, or one version's record (run, signature, hashes, gate checks)."""
    registry = c.open_registry()
    if "@" not in ref:
        model = registry.store.get_model(ref)
        versions = registry.store.list_versions(ref)
        if as_json:
            c.print_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
            return
        table = c.new_table("version", "aliases", "status", "flavor", "run", "created", "by")
        for v in versions:
            table.add_row(
                c.text(v.version), c.text(", ".join(v.aliases) or "-"), c.text(v.status),
                c.text(v.flavor), c.text(v.run_id), c.text(c.fmt_time(v.created_at)),
                c.text(v.created_by),
            )  # fmt: skip
        table.title = f"{model.name}: {model.description}" if model.description else model.name
        c.console().print(table)
        return
    version = registry.get_version(ref)
    meta = registry.model_meta(version)
    record = {
        **version.to_dict(),
        "files": {k: dict(v) for k, v in meta.files.items()},
        "requirements": list(meta.requirements),
        "gate_checks": [
            {"alias": g.alias, "at": g.at, "actor": g.actor, "passed": g.passed,
             "results": g.results}
            for g in registry.store.gate_checks(version)
        ],
        "citations": [
            {"kind": x.kind, "key": x.key} for x in registry.store.citations(version)
        ],
    }  # fmt: skip
    if as_json:
        c.print_json(record)
        return
    console = c.console()
    console.print(c.key_value_table(
        [("version", version.ref), ("aliases", ", ".join(version.aliases) or "-"),
         ("status", version.status), ("flavor", version.flavor), ("run", version.run_id),
         ("path", version.artifact_path), ("metadata hash", version.meta_digest),
         ("created", f"{c.fmt_time(version.created_at)} by {version.created_by}"),
         ("description", version.description or "-"),
         ("requirements", ", ".join(meta.requirements))],
        title=version.ref,
    ))  # fmt: skip
    files = c.new_table("file", "size", "blake3", title="files (checked on every load)")
    for name, info in sorted(meta.files.items()):
        files.add_row(c.text(name), c.text(c.fmt_size(info["size"])), c.text(info["digest"]))
    console.print(files)
    if version.signature:
        sig = c.new_table("input", "type", "nullable", "values", title="signature")
        for col in version.signature.get("inputs", []):
            values = col.get("categories") or (
                f"{col.get('minimum')} .. {col.get('maximum')}"
                if col.get("minimum") is not None else "-"
            )  # fmt: skip
            sig.add_row(c.text(col["name"]), c.text(col["type"]), c.text(col["nullable"]),
                        c.text(values))  # fmt: skip
        console.print(sig)
    if version.metrics:
        metrics = c.new_table("metric", "value", title="metrics (from the run)")
        for key, value in sorted(version.metrics.items()):
            metrics.add_row(c.text(key), c.text(value))
        console.print(metrics)


@app.command("register")
def register(
    run_id: Annotated[str, typer.Argument(help="The run that logged the model (or a prefix).")],
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    path: Annotated[str, typer.Option(help="The model folder in the run.")] = "model",
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register a run's model folder as the next version of NAME."""
    registry = c.open_registry()
    run = c.resolve_run_id(registry.tracker.store, run_id)
    version = registry.register(run, name, path=path, description=description)
    if as_json:
        c.print_json(version.to_dict())
        return
    c.console().print(f"registered {version.ref} ({version.flavor}) from run {run}")


def _print_gates(results: list[dict[str, Any]], *, title: str) -> None:
    if not results:
        c.note("no gates apply (the model has no policy for this alias)")
        return
    table = c.new_table("gate", "result", "detail", title=title)
    for r in results:
        table.add_row(
            c.text(r["gate"]),
            c.text("pass" if r["passed"] else "FAIL", "green" if r["passed"] else "bold red"),
            c.text(r["detail"]),
        )
    c.console().print(table)


@app.command("check")
def check(
    name: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[int, typer.Argument(help="The version to check.")],
    alias: AliasOption,
    as_json: JsonFlag = False,
) -> None:
    """Run the promotion gates of ALIAS for NAME VERSION without moving anything."""
    results = c.open_registry().check_gates(name, version, alias)
    if as_json:
        c.print_json({"passed": all(r["passed"] for r in results), "gates": results})
    else:
        _print_gates(results, title=f"gates of {name}@{alias} for version {version}")
    if not all(r["passed"] for r in results):
        raise typer.Exit(1)


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[int, typer.Argument(help="The version to promote.")],
    alias: AliasOption = "production",
    force: Annotated[
        bool, typer.Option(help="Promote despite failing gates (admin role; needs --reason).")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Point ALIAS at NAME VERSION once the model's promotion gates pass."""
    from shipyard.core.errors import GateFailedError

    registry = c.open_registry()
    if force and not reason and not as_json:
        reason = typer.prompt("reason for forcing the promotion (goes into the audit log)")
    try:
        done = registry.promote(name, version, alias, force=force, reason=reason)
    except GateFailedError as exc:
        if not as_json:
            _print_gates(exc.details.get("gates", []), title=f"gates of {name}@{alias}")
        raise
    if as_json:
        c.print_json(
            {
                "version": done.version.to_dict(),
                "alias": alias,
                "previous": done.previous,
                "forced": done.forced,
                "gates": done.gates,
            }
        )
        return  # fmt: skip
    if done.gates:
        _print_gates(done.gates, title=f"gates of {name}@{alias}")
    was = f" (was {done.previous})" if done.previous is not None else ""
    forced = " [forced]" if done.forced else ""
    c.console().print(f"{name}@{alias} -> version {version}{was}{forced}", markup=False)


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The model.")],
    alias: AliasOption = "production",
) -> None:
    """Move ALIAS back to the version that held it before the last promotion."""
    move = c.open_registry().rollback(name, alias)
    c.console().print(f"{name}@{alias} -> version {move.to_version} (was {move.from_version})")


@app.command("unalias")
def unalias(
    name: Annotated[str, typer.Argument(help="The model.")],
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
) -> None:
    """Remove an alias (the version stays)."""
    move = c.open_registry().remove_alias(name, alias)
    c.console().print(f"removed {name}@{alias} (was version {move.from_version})")


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="The model.")],
    alias: Annotated[str | None, typer.Option("--alias", "-a", help="Only this alias.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every move of the model's aliases: promotions, rollbacks, removals."""
    moves = c.open_registry().store.alias_moves(name, alias)
    if as_json:
        c.print_json([dataclasses.asdict(m) for m in moves])
        return
    table = c.new_table("when", "alias", "action", "from", "to", "by", "forced", "reason")
    for m in moves:
        table.add_row(
            c.text(c.fmt_time(m.at)), c.text(m.alias), c.text(m.action), c.text(m.from_version),
            c.text(m.to_version), c.text(m.actor), c.text("yes" if m.forced else "-"),
            c.text(m.reason),
        )  # fmt: skip
    c.console().print(table)


@app.command("approve")
def approve(
    name: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[int, typer.Argument(help="The version.")],
    alias: AliasOption = "production",
    comment: Annotated[str, typer.Option(help="A note kept with the approval.")] = "",
) -> None:
    """Approve NAME VERSION for ALIAS (approver role)."""
    registry = c.open_registry()
    registry.approve(name, version, alias, comment=comment)
    c.console().print(f"{registry.store.actor} approved {name}@{version} for {alias}")


@app.command("policy")
def policy(
    name: Annotated[str, typer.Argument(help="The model.")],
    file: Annotated[Path | None, typer.Option(help="YAML policy to set (admin role).")] = None,
    clear: Annotated[bool, typer.Option(help="Remove the policy (admin role).")] = False,
) -> None:
    """Show, set (--file) or remove (--clear) the promotion policy of a model."""
    registry = c.open_registry()
    if file is not None:
        registry.set_policy(name, file)
        c.console().print(f"policy of {name} set from {file}")
    elif clear:
        registry.set_policy(name, None)
        c.console().print(f"policy of {name} removed")
    text, parsed = registry.store.get_policy(name)
    if file is None and not clear:
        if parsed is None:
            c.note(f"{name} has no policy: any editor can move its aliases")
        else:
            from shipyard.data.schema import dump_yaml

            typer.echo(text if text else dump_yaml(parsed), nl=False)


@app.command("edit")
def edit(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    description: Annotated[str | None, typer.Option(help="What this version is.")] = None,
    intended_use: Annotated[str | None, typer.Option(help="For the model card.")] = None,
    limitations: Annotated[str | None, typer.Option(help="For the model card.")] = None,
) -> None:
    """Edit a version's description, intended use or limitations."""
    version = c.open_registry().update_version(
        ref, description=description, intended_use=intended_use, limitations=limitations
    )
    c.console().print(f"updated {version.ref}")


@app.command("archive")
def archive(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    undo: Annotated[bool, typer.Option("--undo", help="Make it active again.")] = False,
) -> None:
    """Archive a version (refused while an alias points to it)."""
    version = c.open_registry().update_version(ref, status="active" if undo else "archived")
    c.console().print(f"{version.ref} is {version.status}")


@app.command("delete")
def delete(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION, or NAME for the whole model.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a version or a model (admin role; refused while an alias points to it)."""
    registry = c.open_registry()
    if not yes:
        typer.confirm(f"delete {ref}?", abort=True)
    if "@" in ref:
        registry.delete_version(ref)
    else:
        registry.delete_model(ref)
    c.console().print(f"deleted {ref}")


@app.command("cite")
def cite(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    doi: Annotated[str | None, typer.Option(help="A DOI, e.g. 10.1145/2939672.2939785.")] = None,
    arxiv: Annotated[str | None, typer.Option(help="An arXiv id, e.g. 1603.02754.")] = None,
    bibtex: Annotated[Path | None, typer.Option(help="A file with BibTeX entries.")] = None,
    url: Annotated[str | None, typer.Option(help="A URL.")] = None,
    note: Annotated[str, typer.Option(help="Why it matters (shown on the card).")] = "",
) -> None:
    """Attach references that guided the method; the model card lists them."""
    import re

    from shipyard.core.errors import InvalidInputError

    registry = c.open_registry()
    added = []
    if doi:
        registry.cite(ref, kind="doi", key=doi, text=note)
        added.append(doi)
    if arxiv:
        registry.cite(ref, kind="arxiv", key=arxiv, text=note)
        added.append(arxiv)
    if url:
        registry.cite(ref, kind="url", key=url, text=note)
        added.append(url)
    if bibtex is not None:
        if not bibtex.is_file():
            raise InvalidInputError(f"no BibTeX file at {bibtex}")
        entries = [e for e in re.split(r"(?m)^(?=@)", bibtex.read_text()) if e.strip()]
        for entry in entries:
            registry.cite(ref, kind="bibtex", key=entry, text=entry)
        added.append(f"{len(entries)} BibTeX entries")
    if not added:
        raise InvalidInputError("name a reference: --doi, --arxiv, --bibtex FILE or --url")
    c.console().print(f"{ref}: cited {', '.join(added)}")


@app.command("card")
def card(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS.")],
    html: Annotated[Path | None, typer.Option(help="Write the HTML card here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the Markdown card here.")] = None,
) -> None:
    """The model card: intended use, data, metrics, gates, lineage, limitations, references."""
    from shipyard.registry.cards import build_card

    made = build_card(c.open_registry(), ref)
    for path, body in ((html, made.html), (markdown, made.markdown)):
        if path is not None:
            c.write_text_atomic(path, body)
            c.note(f"wrote {path}")
    if html is None and markdown is None:
        typer.echo(made.markdown)




@app.command("export-onnx")
def export_onnx(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of a scikit-learn model.")],
    register: Annotated[
        bool, typer.Option(help="Register the ONNX model as the next version of NAME.")
    ] = True,
) -> None:
    """Convert a scikit-learn version to ONNX, check its outputs match, log it in the run."""
    from shipyard.core.errors import InvalidStateError
    from shipyard.registry.onnx_export import export_onnx as convert

    registry = c.open_registry()
    version = registry.get_version(ref)
    if version.flavor != "sklearn":
        raise InvalidStateError(f"{version.ref} is a {version.flavor} model; export-onnx "
                                "converts scikit-learn models")  # fmt: skip
    model = registry.load(version)
    example = model.input_example()
    if example is None or version.run_id is None:
        raise InvalidStateError(
            f"{version.ref} has no input example to check the conversion on; log the model "
            "with input_example="
        )
    onnx_bytes = convert(model.native, example)
    tracker = registry.tracker
    source = tracker.get_run(version.run_id)
    with tracker.start_run(
        name=f"onnx export of {version.ref}", parent_run_id=version.run_id,
        tags={"shipyard.role": "onnx-export", "shipyard.source_model": version.ref},
    ) as run:  # fmt: skip
        if "target" in source.params:
            tracker.log_params({"target": source.params["target"]})
        tracker.log_metrics(dict(version.metrics))
        registry.log_model(onnx_bytes, "model", flavor="onnx", input_example=example,
                           task=model.meta.task)  # fmt: skip
    c.console().print(f"converted {version.ref}: outputs match on its input example; "
                      f"logged in run {run.run_id} (a child of {version.run_id})")  # fmt: skip
    if register:
        new = registry.register(run.run_id, version.name,
                                description=f"ONNX export of {version.ref}")  # fmt: skip
        c.console().print(f"registered {new.ref} (onnx)")


def lineage(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS.")],
    as_json: JsonFlag = False,
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz DOT.")] = False,
) -> None:
    """The chain model version -> run -> dataset versions -> their parents, with git commit."""
    graph = c.open_registry().lineage(ref)
    if as_json:
        c.print_json(graph)
        return
    if dot:
        typer.echo(lineage_dot(graph))
        return
    from rich.markup import escape
    from rich.tree import Tree

    model = graph["model"]
    aliases = ", ".join(model["aliases"]) or "-"
    root = Tree(f"[bold]model {escape(model['ref'])}[/bold] "
                + escape(f"({model['flavor']}, aliases: {aliases})"))  # fmt: skip
    run = graph["run"]
    if run is None:
        root.add("no run")
    elif run.get("missing"):
        root.add(escape(f"run {run['run_id']} (deleted)"))
    else:
        commit = run.get("git_commit")
        dirty = " (uncommitted changes)" if run.get("git_dirty") else ""
        where = f"git {commit[:12]}{dirty}" if commit else "no git commit"
        branch = root.add(escape(f"run {run['run_id']} {run['name']!r}, {where}"))
        _add_datasets(branch, graph["datasets"])
    c.console().print(root)


def _add_datasets(branch: Any, datasets: list[dict[str, Any]]) -> None:
    from rich.markup import escape

    for d in datasets:
        context = f" [{d['context']}]" if d.get("context") else ""
        missing = " (missing)" if d.get("missing") else ""
        node = branch.add(escape(f"dataset {d['ref']}{context}{missing}"))
        _add_datasets(node, d.get("parents", []))


def lineage_dot(graph: dict[str, Any]) -> str:
    """The lineage as a Graphviz digraph (edges point from what was made to what it came from)."""

    def q(text: str) -> str:  # names never hold backslashes; "\\n" in a label is a newline
        return '"' + text.replace('"', '\\"') + '"'

    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box];"]
    model = f"model {graph['model']['ref']}"
    lines.append(f"  {q(model)} [style=bold];")
    run = graph.get("run")
    if run:
        label = f"run {run['run_id'][:12]}"
        commit = run.get("git_commit")
        node_label = label + (f"\\ngit {commit[:12]}" if commit else "")
        lines.append(f"  {q(label)} [label={q(node_label)}];")
        lines.append(f"  {q(model)} -> {q(label)};")

        def walk(parent: str, datasets: list[dict[str, Any]]) -> None:
            for d in datasets:
                name = f"dataset {d['ref']}"
                lines.append(f"  {q(name)} [shape=cylinder];")
                lines.append(f"  {q(parent)} -> {q(name)};")
                walk(name, d.get("parents", []))

        walk(label, graph.get("datasets", []))
    lines.append("}")
    return "\n".join(dict.fromkeys(lines)) + "\n"
