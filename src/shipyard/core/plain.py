"""Plain values: made safe for strict JSON, or written short for people (reports)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None (and mapping keys as text), so
    ``json.dumps(..., allow_nan=False)`` accepts it."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        value = value.item()  # a NumPy scalar: its Python value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def format_number(value: float | int | None) -> str:
    """A number as a report shows it: thousands separated, four significant digits,
    scientific notation when very large or small, ``-`` when missing or not finite."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "-"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:,.4g}" if abs(value) >= 1000 else f"{value:.4g}"
