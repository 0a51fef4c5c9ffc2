"""Turning Python objects into artifact bytes, and writing artifacts back out safely."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.core.errors import InvalidInputError


def dict_bytes(data: Any, artifact_file: str) -> bytes:
    """JSON for ``.json``, YAML for ``.yaml``/``.yml``."""
    suffix = PurePosixPath(artifact_file).suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    if suffix == ".json":
        try:
            return json.dumps(data, indent=2, default=_json_default, allow_nan=True).encode()
        except TypeError as exc:
            raise InvalidInputError(f"cannot write {artifact_file} as JSON: {exc}") from exc
    raise InvalidInputError(
        f"log_dict writes .json, .yaml or .yml files; {artifact_file!r} has none of these "
        "extensions"
    )


def _json_default(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def figure_bytes(figure: Any, artifact_file: str) -> bytes:
    """A matplotlib figure (png, svg, pdf, jpg) or a plotly figure (html, or images via kaleido)."""
    suffix = PurePosixPath(artifact_file).suffix.lower().lstrip(".")
    if hasattr(figure, "savefig"):
        if suffix not in ("png", "svg", "pdf", "jpg", "jpeg"):
            raise InvalidInputError(
                f"a matplotlib figure is saved as png, svg, pdf or jpg, not {artifact_file!r}"
            )
        buf = io.BytesIO()
        figure.savefig(buf, format=suffix, bbox_inches="tight")
        return buf.getvalue()
    if hasattr(figure, "to_html"):
        if suffix == "html":
            return str(figure.to_html(include_plotlyjs=True, full_html=True)).encode()
        return bytes(figure.to_image(format=suffix))
    raise InvalidInputError(
        f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
    )


def table_bytes(table: Any, artifact_file: str) -> bytes:
    """A DataFrame (or anything ``pandas.DataFrame`` accepts) as parquet, csv or json."""
    import pandas as pd

    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    suffix = PurePosixPath(artifact_file).suffix.lower()
    buf = io.BytesIO()
    if suffix == ".parquet":
        df.to_parquet(buf, index=False)
    elif suffix == ".csv":
        buf.write(df.to_csv(index=False).encode())
    elif suffix == ".json":
        buf.write(df.to_json(orient="split", index=False).encode())
    else:
        raise InvalidInputError(
            f"log_table writes .parquet, .csv or .json files, not {artifact_file!r}"
        )
    return buf.getvalue()


def safe_destination(root: Path, relative: str) -> Path:
    """``root/relative``, refusing anything that would land outside ``root``."""
    dest = (root / relative).resolve()
    if os.path.commonpath([dest, root.resolve()]) != str(root.resolve()):
        raise InvalidInputError(f"artifact path {relative!r} would be written outside {root}")
    return dest
