"""The base of :mod:`shipyard.training.plots`: :class:`Plot`, its renderers and shared checks.

Private: import the public names from :mod:`shipyard.training.plots`.
"""

from __future__ import annotations

import html
import io
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.core.errors import InvalidInputError, InvalidStateError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_HTML_POINTS = 5_000
"""Regression scatter plots draw at most this many points in HTML (a seeded sample)."""
MAX_PNG_POINTS = 50_000
"""Regression scatter plots draw at most this many points in a PNG (a seeded sample)."""
MAX_CURVE_POINTS = 2_000
"""ROC and precision-recall curves are thinned to this many points when drawn."""
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_PLOTS_EXTRA = "pip install 'shipyard[plots]'"
_DEFAULT_SIZE = (6.4, 4.8)
_DEFAULT_HEIGHT_PX = 480
_COLORS = ("#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04")

FloatArray = npt.NDArray[np.float64]


# -- renderers' dependencies -------------------------------------------------------------------


def _matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``; a shipyard error naming the extra if matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise InvalidStateError(
            f"drawing a PNG plot needs matplotlib, which is not installed ({exc}); "
            f"run {_PLOTS_EXTRA}"
        ) from exc
    return Figure, FigureCanvasAgg


def _plotly() -> Any:
    """``plotly.graph_objects``; a shipyard error naming the extra if plotly is absent."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        raise InvalidStateError(
            f"an interactive HTML plot needs plotly, which is not installed ({exc}); "
            f"run {_PLOTS_EXTRA}"
        ) from exc
    return go


def _mpl_text(text: str) -> str:
    """Text shown literally by matplotlib (``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _web_text(text: str) -> str:
    """Text shown literally by plotly.js (it reads a few HTML tags and entities)."""
    return html.escape(text, quote=False)


def _readonly(values: npt.ArrayLike, dtype: Any = None) -> Any:
    out = np.array(values, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


# -- the plot base class -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class Plot:
    """An evaluation plot: its numbers and two renderers.

    Subclasses hold what they draw as read-only numpy arrays. Build them with the
    functions of this module; rename one with ``dataclasses.replace(plot, name=...)``.

    Attributes:
        name: the file stem and element id suffix, such as ``"confusion_matrix"``: a
            letter or digit, then letters, digits, ``_`` or ``-`` (at most 100).
        title: the title drawn above the plot.
    """

    name: str
    title: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise InvalidInputError(
                f"plot name must be a file stem of letters, digits, '_' or '-' starting with a "
                f"letter or digit (at most 100 characters); got {self.name!r}"
            )
        if not isinstance(self.title, str):
            raise InvalidInputError(f"plot title must be a string; got {self.title!r}")

    @property
    def div_id(self) -> str:
        """The id of the plot's element in HTML: ``shipyard-plot-<name>``."""
        return f"shipyard-plot-{self.name}"

    def to_matplotlib(self) -> Figure:
        """A new matplotlib figure on the Agg canvas (not registered with pyplot).

        Returns:
            The figure; the caller owns it (nothing else holds a reference).

        Raises:
            InvalidStateError: matplotlib is not installed.
        """
        figure_cls, canvas_cls = _matplotlib()
        fig = figure_cls(figsize=self._figsize(), layout="constrained")
        canvas_cls(fig)
        ax = fig.add_subplot()
        self._draw(ax)
        ax.set_title(_mpl_text(self.title))
        return fig  # type: ignore[no-any-return]

    def to_png(self, dpi: float = 100) -> bytes:
        """The plot as PNG bytes, drawn with matplotlib's Agg renderer.

        The image is ``figure size x dpi`` pixels (640 x 480 at ``dpi=100`` for most
        plots); the figure is cleared after saving so nothing accumulates.

        Args:
            dpi: dots per inch, between 10 and 1200.

        Returns:
            The PNG file's bytes.

        Raises:
            InvalidInputError: ``dpi`` is not a number between 10 and 1200.
            InvalidStateError: matplotlib is not installed.

        Example::

            >>> png = confusion_matrix_plot([[5, 1], [2, 7]], ["no", "yes"]).to_png(dpi=50)
            >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
            True
        """
        if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 10 <= dpi <= 1200:
            raise InvalidInputError(f"dpi must be a number between 10 and 1200; got {dpi!r}")
        fig = self.to_matplotlib()
        try:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=float(dpi))
            return buffer.getvalue()
        finally:
            fig.clear()

    def to_plotly(self) -> Any:
        """A new ``plotly.graph_objects.Figure`` of the plot.

        Raises:
            InvalidStateError: plotly is not installed.
        """
        go = _plotly()
        fig = go.Figure()
        self._add_traces(fig, go)
        fig.update_layout(
            title={"text": _web_text(self.title)},
            template="plotly_white",
            height=self._height_px(),
            margin={"l": 70, "r": 30, "t": 60, "b": 60},
        )
        return fig

    def to_html_div(self) -> str:
        """The plot as an HTML fragment: a ``<div id="shipyard-plot-<name>">`` and its script.

        The fragment has no plotly.js (``include_plotlyjs=False``) and no URL: the page
        that shows it must include the plotly.js bundle once before it.

        Returns:
            The HTML text.

        Raises:
            InvalidStateError: plotly is not installed.

        Example::

            >>> div = confusion_matrix_plot([[5, 1], [2, 7]], ["no", "yes"]).to_html_div()
            >>> 'id="shipyard-plot-confusion_matrix"' in div, "https://" in div
            (True, False)
        """
        fig = self.to_plotly()
        return str(
            fig.to_html(
                full_html=False,
                include_plotlyjs=False,
                include_mathjax=False,
                div_id=self.div_id,
                config={"displaylogo": False, "responsive": True},
                default_width="100%",
            )
        )

    # subclasses draw -------------------------------------------------------------------

    def _draw(self, ax: Any) -> None:
        raise NotImplementedError

    def _add_traces(self, fig: Any, go: Any) -> None:
        raise NotImplementedError

    def _figsize(self) -> tuple[float, float]:
        return _DEFAULT_SIZE

    def _height_px(self) -> int:
        return _DEFAULT_HEIGHT_PX


# -- input checks ------------------------------------------------------------------------------


def _labels(values: Any, name: str) -> npt.NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"{name} is empty; pass at least one label")
    missing = int(pd.isna(pd.Series(arr, copy=False)).sum())
    if missing:
        raise InvalidInputError(
            f"{name} has {missing} missing label(s); drop those rows before plotting"
        )
    return arr


def _floats(values: Any, name: str, *, ndim: int | tuple[int, ...] = 1) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric; {exc}") from exc
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        wanted = " or ".join(f"{d}-D" for d in dims)
        raise InvalidInputError(f"{name} must be {wanted}; got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"{name} is empty; pass at least one value")
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise InvalidInputError(
            f"{name} has {bad} missing or infinite value(s); drop or impute them first"
        )
    return arr


def _same_length(a: npt.NDArray[Any], b: npt.NDArray[Any], names: str) -> None:
    if len(a) != len(b):
        raise InvalidInputError(f"{names} must have the same length; got {len(a)} and {len(b)}")


def _classes(classes: Any, name: str = "classes") -> tuple[Any, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence | np.ndarray | pd.Index):
        raise InvalidInputError(
            f"{name} must be a sequence of class labels (such as estimator.classes_); "
            f"got {classes!r}"
        )
    out = tuple(classes)
    if not out:
        raise InvalidInputError(f"{name} is empty; pass the class labels")
    if not pd.Index(out).is_unique or len({str(c) for c in out}) != len(out):
        raise InvalidInputError(f"{name} must be distinct (also as text); got {list(out)}")
    return out


def _infer_classes(*label_arrays: npt.NDArray[Any]) -> tuple[Any, ...]:
    values = pd.unique(np.concatenate([np.asarray(a, dtype=object) for a in label_arrays]))
    try:
        return tuple(sorted(values.tolist()))
    except TypeError as exc:
        raise InvalidInputError(
            f"the labels mix types that do not sort ({exc}); pass classes= in the order of "
            "the probability columns (estimator.classes_)"
        ) from exc


def _codes(labels: npt.NDArray[Any], classes: tuple[Any, ...], name: str) -> npt.NDArray[np.intp]:
    """Position of each label in ``classes``; an error listing labels that are not classes."""
    codes = np.asarray(pd.Index(list(classes), dtype=object).get_indexer(labels.astype(object)))
    unknown = codes < 0
    if unknown.any():
        examples = pd.unique(labels[unknown].astype(object))[:5].tolist()
        raise InvalidInputError(
            f"{name} has {int(unknown.sum())} label(s) that are not among classes "
            f"{list(classes)}, such as {examples}; pass classes= with every label "
            "(estimator.classes_) in the order of the probability columns",
            details={"unknown": [str(e) for e in examples]},
        )
    return codes.astype(np.intp)


def _sample(n: int, max_points: int, priority: FloatArray) -> npt.NDArray[np.intp]:
    """At most ``max_points`` ascending indices: the 1% of highest priority plus a seeded sample."""
    if n <= max_points:
        return np.arange(n, dtype=np.intp)
    keep = max(1, max_points // 100)
    top = np.argsort(-priority, kind="stable")[:keep]
    rest = np.setdiff1d(np.arange(n), top, assume_unique=True)
    chosen = np.random.default_rng(0).choice(rest, size=max_points - keep, replace=False)
    return np.sort(np.concatenate([top, chosen])).astype(np.intp)


def _thin(x: FloatArray, y: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    if len(x) <= max_points:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(np.intp))
    return x[idx], y[idx]


def _fill_color(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
