"""ROC, precision-recall and calibration plots of :mod:`shipyard.training.plots`.

Private: import the public names from :mod:`shipyard.training.plots`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_curve,
)

from shipyard.core.errors import InvalidInputError
from shipyard.training._plot_base import (
    _COLORS,
    MAX_CURVE_POINTS,
    FloatArray,
    Plot,
    _classes,
    _codes,
    _floats,
    _infer_classes,
    _labels,
    _mpl_text,
    _readonly,
    _same_length,
    _thin,
    _web_text,
)

# -- ROC and precision-recall curves -----------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class Curve:
    """One curve of a ROC or precision-recall plot.

    Attributes:
        label: the positive class, as text.
        x: false positive rates (ROC) or recalls (PR).
        y: true positive rates (ROC) or precisions (PR).
        score: the area under the ROC curve, or the average precision.
        prevalence: the share of rows whose true class is ``label`` (a PR chance level).
    """

    label: str
    x: FloatArray
    y: FloatArray
    score: float
    prevalence: float


@dataclass(frozen=True, eq=False, kw_only=True)
class _CurvesPlot(Plot):
    curves: tuple[Curve, ...]
    macro_score: float | None = None
    skipped: tuple[str, ...] = ()

    score_name: ClassVar[str] = ""
    x_label: ClassVar[str] = ""
    y_label: ClassVar[str] = ""
    steps: ClassVar[bool] = False

    def legend(self, curve: Curve) -> str:
        """A curve's legend entry: ``"<class> (AUC = 0.912)"``."""
        return f"{curve.label} ({self.score_name} = {curve.score:.3f})"

    def _chance(self) -> tuple[list[float], list[float]] | None:
        raise NotImplementedError

    def _color(self, i: int) -> str | None:
        """The house colour of curve ``i``; None (the library's palette) beyond seven curves."""
        return _COLORS[i] if len(self.curves) <= len(_COLORS) else None

    def _draw(self, ax: Any) -> None:
        chance = self._chance()
        if chance is not None:
            ax.plot(*chance, linestyle="--", color="grey", linewidth=1, label="chance")
        for i, curve in enumerate(self.curves):
            x, y = _thin(curve.x, curve.y, MAX_CURVE_POINTS)
            ax.plot(
                x,
                y,
                drawstyle="steps-post" if self.steps else "default",
                color=self._color(i),
                label=_mpl_text(self.legend(curve)),
            )
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(self.y_label)
        many = len(self.curves) > 8
        ax.legend(
            loc="lower right" if not self.steps else "lower left",
            fontsize="x-small" if many else "small",
            ncol=2 if many else 1,
        )

    def _add_traces(self, fig: Any, go: Any) -> None:
        chance = self._chance()
        if chance is not None:
            fig.add_trace(
                go.Scatter(
                    x=chance[0],
                    y=chance[1],
                    mode="lines",
                    name="chance",
                    line={"dash": "dash", "color": "grey", "width": 1},
                    hoverinfo="skip",
                )
            )
        for i, curve in enumerate(self.curves):
            x, y = _thin(curve.x, curve.y, MAX_CURVE_POINTS)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=_web_text(self.legend(curve)),
                    line={"color": self._color(i)},
                    line_shape="hv" if self.steps else "linear",
                )
            )
        fig.update_xaxes(title_text=self.x_label, range=[-0.01, 1.01])
        fig.update_yaxes(title_text=self.y_label, range=[-0.01, 1.01])


@dataclass(frozen=True, eq=False, kw_only=True)
class RocPlot(_CurvesPlot):
    """ROC curves: one for a binary task, one per class (one-vs-rest) otherwise.

    Attributes:
        curves: the :class:`Curve` of each class drawn (``score`` is its AUC).
        macro_score: the mean AUC over the curves (multiclass), else None.
        skipped: classes with no curve because ``y_true`` has none or only them.
    """

    score_name: ClassVar[str] = "AUC"
    x_label: ClassVar[str] = "False positive rate"
    y_label: ClassVar[str] = "True positive rate"

    def _chance(self) -> tuple[list[float], list[float]] | None:
        return [0.0, 1.0], [0.0, 1.0]


@dataclass(frozen=True, eq=False, kw_only=True)
class PrecisionRecallPlot(_CurvesPlot):
    """Precision-recall curves: one for a binary task, one per class otherwise.

    Attributes:
        curves: the :class:`Curve` of each class drawn (``score`` is its average precision).
        macro_score: the mean average precision over the curves (multiclass), else None.
        skipped: classes with no curve because ``y_true`` has none or only them.
    """

    score_name: ClassVar[str] = "AP"
    x_label: ClassVar[str] = "Recall"
    y_label: ClassVar[str] = "Precision"
    steps: ClassVar[bool] = True

    def _chance(self) -> tuple[list[float], list[float]] | None:
        if len(self.curves) != 1:
            return None
        return [0.0, 1.0], [self.curves[0].prevalence] * 2


def _one_vs_rest(
    y_true: Any, y_proba: Any, classes: Sequence[Any] | None
) -> tuple[list[tuple[str, npt.NDArray[np.bool_], FloatArray]], tuple[str, ...], bool]:
    """``([(class, is_class, score), ...], skipped classes, binary)`` for curve plots."""
    labels = _labels(y_true, "y_true")
    proba = _floats(y_proba, "y_proba", ndim=(1, 2))
    _same_length(labels, proba, "y_true and y_proba")
    names = _classes(classes) if classes is not None else _infer_classes(labels)
    columns = 1 if proba.ndim == 1 else proba.shape[1]
    if proba.ndim == 1 or columns == 2:
        if len(names) != 2:
            raise InvalidInputError(
                f"binary scores need exactly 2 classes (negative, positive); got {list(names)}. "
                "Pass classes=estimator.classes_, or an (n, k) y_proba for k classes"
            )
        positive = proba if proba.ndim == 1 else proba[:, 1]
        codes = _codes(labels, names, "y_true")
        if codes.min() == codes.max():
            raise InvalidInputError(
                f"y_true holds only class {names[int(codes[0])]!r}; a curve needs rows of both "
                "classes"
            )
        return [(str(names[1]), codes == 1, positive)], (), True
    if columns < 2:
        raise InvalidInputError(
            "y_proba needs one column per class (at least 2), or 1-D scores of the positive class"
        )
    if columns != len(names):
        raise InvalidInputError(
            f"y_proba has {columns} columns but there are {len(names)} classes {list(names)}; "
            "pass classes= in the order of the columns (estimator.classes_)"
        )
    codes = _codes(labels, names, "y_true")
    series: list[tuple[str, npt.NDArray[np.bool_], FloatArray]] = []
    skipped: list[str] = []
    for j, name in enumerate(names):
        is_class = codes == j
        if is_class.all() or not is_class.any():
            skipped.append(str(name))
        else:
            series.append((str(name), is_class, proba[:, j]))
    if not series:
        raise InvalidInputError("no class of y_true has both positive and negative rows")
    return series, tuple(skipped), False


def roc_plot(y_true: Any, y_proba: Any, classes: Sequence[Any] | None = None) -> RocPlot:
    """ROC curves with the AUC of each in the legend.

    A 1-D ``y_proba`` (the positive class's probability or any score) or an ``(n, 2)``
    one gives one curve for ``classes[1]``; an ``(n, k)`` one gives a one-vs-rest curve per
    class (classes absent from ``y_true`` are skipped and listed in ``skipped``).

    Args:
        y_true: the true labels.
        y_proba: scores or probabilities, 1-D or ``(n, k)`` in ``classes`` order.
        classes: the class labels in column order (``estimator.classes_``); default: the
            sorted labels of ``y_true``.

    Returns:
        A :class:`RocPlot` named ``roc_curve``.

    Raises:
        InvalidInputError: shapes or lengths disagree, labels are missing or not among
            ``classes``, scores are not finite, or a binary ``y_true`` has one class only.

    Example::

        >>> plot = roc_plot([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> plot.legend(plot.curves[0])
        '1 (AUC = 0.750)'
    """
    series, skipped, binary = _one_vs_rest(y_true, y_proba, classes)
    curves = []
    for label, is_class, score in series:
        fpr, tpr, _ = roc_curve(is_class, score)
        curves.append(
            Curve(
                label=label,
                x=_readonly(fpr, np.float64),
                y=_readonly(tpr, np.float64),
                score=float(auc(fpr, tpr)),
                prevalence=float(is_class.mean()),
            )
        )
    return _curves_plot(
        RocPlot, name="roc_curve", title="ROC curve", curves=curves, skipped=skipped, binary=binary
    )


def pr_plot(y_true: Any, y_proba: Any, classes: Sequence[Any] | None = None) -> PrecisionRecallPlot:
    """Precision-recall curves with the average precision (AP) of each in the legend.

    Takes the same inputs as :func:`roc_plot`. A binary plot also draws the chance level
    (the positive class's prevalence).

    Args:
        y_true: the true labels.
        y_proba: scores or probabilities, 1-D or ``(n, k)`` in ``classes`` order.
        classes: the class labels in column order (``estimator.classes_``); default: the
            sorted labels of ``y_true``.

    Returns:
        A :class:`PrecisionRecallPlot` named ``precision_recall_curve``.

    Raises:
        InvalidInputError: as :func:`roc_plot`.

    Example::

        >>> plot = pr_plot(["a", "a", "b", "b"], [0.1, 0.4, 0.35, 0.8])
        >>> plot.legend(plot.curves[0])
        'b (AP = 0.833)'
    """
    series, skipped, binary = _one_vs_rest(y_true, y_proba, classes)
    curves = []
    for label, is_class, score in series:
        precision, recall, _ = precision_recall_curve(is_class, score, drop_intermediate=True)
        curves.append(
            Curve(
                label=label,
                x=_readonly(recall, np.float64),
                y=_readonly(precision, np.float64),
                score=float(average_precision_score(is_class, score)),
                prevalence=float(is_class.mean()),
            )
        )
    return _curves_plot(
        PrecisionRecallPlot,
        name="precision_recall_curve",
        title="Precision-recall curve",
        curves=curves,
        skipped=skipped,
        binary=binary,
    )


_C = TypeVar("_C", bound=_CurvesPlot)


def _curves_plot(
    cls: type[_C],
    *,
    name: str,
    title: str,
    curves: list[Curve],
    skipped: tuple[str, ...],
    binary: bool,
) -> _C:
    if binary:
        return cls(name=name, title=title, curves=tuple(curves))
    macro = float(np.mean([c.score for c in curves]))
    return cls(
        name=name,
        title=f"{title} (one-vs-rest, macro {cls.score_name} = {macro:.3f})",
        curves=tuple(curves),
        macro_score=macro,
        skipped=skipped,
    )


# -- calibration -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class CalibrationPlot(Plot):
    """A reliability diagram: observed frequency of the positive class per probability bin.

    Attributes:
        bin_edges: ``n_bins + 1`` equal-width edges from 0 to 1.
        bin_counts: rows per bin.
        mean_predicted: the mean predicted probability per bin (NaN for an empty bin).
        fraction_positive: the share of positives per bin (NaN for an empty bin).
        brier: the Brier score (mean squared error of the probabilities).
    """

    bin_edges: FloatArray
    bin_counts: npt.NDArray[np.int64]
    mean_predicted: FloatArray
    fraction_positive: FloatArray
    brier: float

    def _filled(self) -> tuple[FloatArray, FloatArray]:
        mask = self.bin_counts > 0
        return self.mean_predicted[mask], self.fraction_positive[mask]

    def _draw(self, ax: Any) -> None:
        edges = self.bin_edges
        counts_ax = ax.twinx()
        counts_ax.bar(
            (edges[:-1] + edges[1:]) / 2, self.bin_counts, width=np.diff(edges), color="grey",
            alpha=0.15,
        )  # fmt: skip
        counts_ax.set_ylabel("Rows per bin", color="grey")
        ax.set_zorder(counts_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
        x, y = self._filled()
        ax.plot(x, y, marker="o", color=_COLORS[0], label=f"model (Brier = {self.brier:.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("Mean predicted probability")
        ax.set_ylabel("Fraction of positives")
        ax.legend(loc="upper left", fontsize="small")

    def _add_traces(self, fig: Any, go: Any) -> None:
        edges = self.bin_edges
        fig.add_trace(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=self.bin_counts,
                width=np.diff(edges),
                name="rows per bin",
                marker={"color": "grey"},
                opacity=0.2,
                yaxis="y2",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="perfect",
                line={"dash": "dash", "color": "grey", "width": 1},
                hoverinfo="skip",
            )
        )
        x, y = self._filled()
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=f"model (Brier = {self.brier:.3f})",
                line={"color": _COLORS[0]},
                customdata=self.bin_counts[self.bin_counts > 0],
                hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}<br>%{customdata} rows"
                "<extra></extra>",
            )
        )
        fig.update_layout(
            xaxis={"title": {"text": "Mean predicted probability"}, "range": [0, 1]},
            yaxis={"title": {"text": "Fraction of positives"}, "range": [-0.01, 1.01]},
            yaxis2={
                "title": {"text": "Rows per bin"},
                "overlaying": "y",
                "side": "right",
                "showgrid": False,
                "tickmode": "auto",
                "rangemode": "tozero",
            },
            legend={"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.7)"},
        )


def calibration_plot(
    y_true: Any, y_proba_positive: Any, n_bins: int = 10, *, pos_label: Any = None
) -> CalibrationPlot:
    """A reliability diagram (binary): the share of positives per bin against the diagonal.

    Bins are ``n_bins`` equal-width intervals of [0, 1], assigned as
    ``sklearn.calibration.calibration_curve(strategy="uniform")`` does, so the non-empty
    bins' values equal its ``(prob_true, prob_pred)``.

    Args:
        y_true: the true labels: 0/1 or booleans, or any two labels with ``pos_label``.
        y_proba_positive: the predicted probability of the positive class, in [0, 1].
        n_bins: the number of bins, 2 to 1000.
        pos_label: the positive class, when ``y_true`` is not 0/1.

    Returns:
        A :class:`CalibrationPlot` named ``calibration_curve``.

    Raises:
        InvalidInputError: lengths disagree, probabilities outside [0, 1], labels that
            are not 0/1 without ``pos_label``, or a bad ``n_bins``.

    Example::

        >>> plot = calibration_plot([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], n_bins=2)
        >>> plot.fraction_positive.tolist(), round(plot.brier, 4)
        ([0.0, 1.0], 0.0675)
    """
    labels = _labels(y_true, "y_true")
    proba = _floats(y_proba_positive, "y_proba_positive")
    _same_length(labels, proba, "y_true and y_proba_positive")
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral):
        raise InvalidInputError(f"n_bins must be a whole number from 2 to 1000; got {n_bins!r}")
    if not 2 <= n_bins <= 1000:
        raise InvalidInputError(f"n_bins must be from 2 to 1000; got {n_bins}")
    if proba.min() < 0 or proba.max() > 1:
        raise InvalidInputError(
            f"y_proba_positive must hold probabilities in [0, 1]; got values from "
            f"{proba.min():g} to {proba.max():g}. Pass predict_proba(X)[:, 1], not "
            "decision_function(X)"
        )
    if pos_label is not None:
        positive = _codes_or_other(labels, pos_label)
    elif labels.dtype == np.bool_:
        positive = labels.astype(bool)
    else:
        try:
            positive = _codes(labels, (0, 1), "y_true") == 1
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"{exc.message}. A calibration plot needs 0/1 labels or pos_label=<the "
                "positive class>"
            ) from exc
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    bins = np.searchsorted(edges[1:-1], proba)
    counts = np.bincount(bins, minlength=n_bins)
    sums = np.bincount(bins, weights=proba, minlength=n_bins)
    hits = np.bincount(bins, weights=positive.astype(np.float64), minlength=n_bins)
    filled = counts > 0
    mean_predicted = np.full(n_bins, np.nan)
    fraction_positive = np.full(n_bins, np.nan)
    mean_predicted[filled] = sums[filled] / counts[filled]
    fraction_positive[filled] = hits[filled] / counts[filled]
    return CalibrationPlot(
        name="calibration_curve",
        title="Calibration (reliability diagram)",
        bin_edges=_readonly(edges),
        bin_counts=_readonly(counts, np.int64),
        mean_predicted=_readonly(mean_predicted),
        fraction_positive=_readonly(fraction_positive),
        brier=float(np.mean((proba - positive) ** 2)),
    )


def _codes_or_other(labels: npt.NDArray[Any], pos_label: Any) -> npt.NDArray[np.bool_]:
    """``labels == pos_label`` for labels of any type."""
    codes = pd.Index([pos_label], dtype=object).get_indexer(labels.astype(object))
    return np.asarray(codes == 0)
