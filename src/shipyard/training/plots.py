"""Evaluation plots from plain arrays: confusion matrix, ROC, PR, calibration, regression, more.

Every function here takes arrays (labels, probabilities, predictions, scores), never an
estimator, computes what the plot shows and returns a :class:`Plot`: a frozen dataclass
that holds those numbers (so a test or a tool can read them) and renders them two ways:

- :meth:`Plot.to_png` draws with matplotlib on the Agg canvas (never a GUI backend, never
  pyplot's global figure list, the figure cleared after saving) and returns PNG bytes;
- :meth:`Plot.to_html_div` builds a plotly figure and returns it as one ``<div>`` plus one
  small ``<script>``, without plotly.js (the page embeds the bundle once, see
  :mod:`shipyard.training.report`), with the stable element id ``shipyard-plot-<name>``.

Computing a plot needs only numpy, pandas and scikit-learn; rendering needs the ``plots``
extra (``pip install 'shipyard[plots]'``), imported on first use. Text that comes from the
data (class and feature names) is escaped for both renderers: ``$`` does not start
matplotlib mathtext and ``<``/``>``/``&`` show literally in plotly.

:func:`plots_for` picks the usual set for a ``"binary"``, ``"multiclass"`` or
``"regression"`` task.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.core.errors import InvalidInputError
from shipyard.training._plot_base import (
    _DEFAULT_HEIGHT_PX,
    MAX_CURVE_POINTS,
    MAX_HTML_POINTS,
    MAX_PNG_POINTS,
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
    _web_text,
)
from shipyard.training._plot_curves import (
    CalibrationPlot,
    Curve,
    PrecisionRecallPlot,
    RocPlot,
    calibration_plot,
    pr_plot,
    roc_plot,
)
from shipyard.training._plot_other import (
    FeatureImportancePlot,
    LearningCurvePlot,
    PredictedVsActualPlot,
    ResidualsPlot,
    feature_importance_plot,
    learning_curve_plot,
    predicted_vs_actual_plot,
    residuals_plot,
)

__all__ = [
    "MAX_CURVE_POINTS",
    "MAX_HTML_POINTS",
    "MAX_PNG_POINTS",
    "TASKS",
    "CalibrationPlot",
    "ConfusionMatrixPlot",
    "Curve",
    "FeatureImportancePlot",
    "LearningCurvePlot",
    "Plot",
    "PrecisionRecallPlot",
    "PredictedVsActualPlot",
    "ResidualsPlot",
    "RocPlot",
    "calibration_plot",
    "confusion_matrix_plot",
    "feature_importance_plot",
    "learning_curve_plot",
    "plots_for",
    "pr_plot",
    "predicted_vs_actual_plot",
    "residuals_plot",
    "roc_plot",
]

TASKS = ("binary", "multiclass", "regression")
_ANNOTATE_MAX_CLASSES = 25

# The examples of the names defined in the private sibling modules run with this module's
# doctests (``doctest.testmod(shipyard.training.plots)``), in this module's namespace.
__test__ = {
    "Plot.to_png": Plot.to_png,
    "Plot.to_html_div": Plot.to_html_div,
    "roc_plot": roc_plot,
    "pr_plot": pr_plot,
    "calibration_plot": calibration_plot,
    "residuals_plot": residuals_plot,
    "predicted_vs_actual_plot": predicted_vs_actual_plot,
    "learning_curve_plot": learning_curve_plot,
    "feature_importance_plot": feature_importance_plot,
}


# -- confusion matrix --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class ConfusionMatrixPlot(Plot):
    """A confusion matrix: rows are true classes, columns predicted classes.

    Attributes:
        counts: ``(k, k)`` int64 counts, ``counts[i, j]`` = true ``classes[i]`` predicted
            as ``classes[j]``.
        classes: the class labels as text, in row/column order.
        normalize: cells show each row's shares (recall per class) instead of counts.
    """

    counts: npt.NDArray[np.int64]
    classes: tuple[str, ...]
    normalize: bool = False

    @property
    def values(self) -> FloatArray:
        """What the cells show: counts, or shares of each true class (0 for an empty row)."""
        counts = self.counts.astype(np.float64)
        if not self.normalize:
            return counts
        totals = counts.sum(axis=1, keepdims=True)
        shares: FloatArray = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        return shares

    def cell_texts(self) -> list[list[str]]:
        """The annotation of every cell: ``"1,234"`` or ``"0.87"``."""
        if self.normalize:
            return [[f"{v:.2f}" for v in row] for row in self.values]
        return [[f"{int(v):,}" for v in row] for row in self.counts]

    def _vmax(self) -> float:
        return 1.0 if self.normalize else float(max(1, int(self.counts.max())))

    def _draw(self, ax: Any) -> None:
        values, vmax, k = self.values, self._vmax(), len(self.classes)
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
        labels = [_mpl_text(c) for c in self.classes]
        rotate = k > 4 or max(len(c) for c in self.classes) > 6
        ax.set_xticks(
            np.arange(k),
            labels=labels,
            rotation=45 if rotate else 0,
            ha="right" if rotate else "center",
        )
        ax.set_yticks(np.arange(k), labels=labels)
        ax.set_xlabel("Predicted label")
        ax.set_ylabel("True label")
        if k <= _ANNOTATE_MAX_CLASSES:
            size = 10 if k <= 8 else 7
            for i, row in enumerate(self.cell_texts()):
                for j, text in enumerate(row):
                    color = "white" if values[i, j] > vmax / 2 else "black"
                    ax.text(j, i, text, ha="center", va="center", color=color, fontsize=size)

    def _add_traces(self, fig: Any, go: Any) -> None:
        labels = [_web_text(c) for c in self.classes]
        annotate = len(self.classes) <= _ANNOTATE_MAX_CLASSES
        fig.add_trace(
            go.Heatmap(
                z=self.values,
                x=labels,
                y=labels,
                text=self.cell_texts(),
                texttemplate="%{text}" if annotate else None,
                colorscale="Blues",
                zmin=0,
                zmax=self._vmax(),
                hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
            )
        )
        fig.update_xaxes(title_text="Predicted label", type="category")
        fig.update_yaxes(title_text="True label", type="category", autorange="reversed")

    def _figsize(self) -> tuple[float, float]:
        side = min(16.0, max(4.8, 0.45 * len(self.classes) + 3.0))
        return (side + 1.4, side)

    def _height_px(self) -> int:
        return min(1400, max(_DEFAULT_HEIGHT_PX, 32 * len(self.classes) + 220))


def confusion_matrix_plot(
    counts: Any, classes: Sequence[Any], normalize: bool = False
) -> ConfusionMatrixPlot:
    """A confusion matrix with annotated cells.

    Args:
        counts: ``(k, k)`` non-negative integer counts, rows true classes and columns
            predicted classes (``sklearn.metrics.confusion_matrix`` order).
        classes: the ``k`` class labels, in row order.
        normalize: show each row's shares (the recall of each class) instead of counts.

    Returns:
        A :class:`ConfusionMatrixPlot` named ``confusion_matrix`` (or
        ``confusion_matrix_normalized``).

    Raises:
        InvalidInputError: ``counts`` is not a square matrix of non-negative whole numbers,
            or does not have one row per class; ``classes`` repeat.

    Example::

        >>> plot = confusion_matrix_plot([[5, 1], [2, 7]], ["no", "yes"], normalize=True)
        >>> plot.cell_texts()
        [['0.83', '0.17'], ['0.22', '0.78']]
    """
    matrix = _floats(counts, "counts", ndim=2)
    if matrix.shape[0] != matrix.shape[1]:
        raise InvalidInputError(f"counts must be a square (k, k) matrix; got shape {matrix.shape}")
    if (matrix < 0).any() or (matrix != np.round(matrix)).any():
        raise InvalidInputError("counts must hold non-negative whole numbers (a confusion matrix)")
    labels = _classes(classes)
    if len(labels) != matrix.shape[0]:
        raise InvalidInputError(
            f"counts is {matrix.shape[0]}x{matrix.shape[0]} but {len(labels)} classes were "
            "given; pass one class label per row"
        )
    name = "confusion_matrix_normalized" if normalize else "confusion_matrix"
    title = "Confusion matrix (shares of each true class)" if normalize else "Confusion matrix"
    return ConfusionMatrixPlot(
        name=name,
        title=title,
        counts=_readonly(matrix, np.int64),
        classes=tuple(str(c) for c in labels),
        normalize=bool(normalize),
    )


# -- the usual set per task --------------------------------------------------------------------


def plots_for(
    task: str,
    y_true: Any,
    y_pred: Any,
    y_proba: Any = None,
    classes: Sequence[Any] | None = None,
) -> list[Plot]:
    """The evaluation plots that fit a task.

    - ``"binary"``: confusion matrix; with ``y_proba`` also ROC, precision-recall and
      calibration (of ``classes[1]``).
    - ``"multiclass"``: confusion matrix; with ``y_proba`` also one-vs-rest ROC and
      precision-recall.
    - ``"regression"``: predicted vs actual and residuals.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: the true labels or values.
        y_pred: the predicted labels or values.
        y_proba: class probabilities, ``(n, k)`` in ``classes`` order (binary also takes
            the positive class's 1-D probabilities); classification only.
        classes: the class labels (``estimator.classes_``); default: the sorted labels of
            ``y_true`` and ``y_pred``.

    Returns:
        The plots, in display order, with distinct names.

    Raises:
        InvalidInputError: an unknown task, ``y_proba`` for regression, a binary task
            without exactly two classes, or any input error of the plot functions.

    Example::

        >>> [p.name for p in plots_for("binary", [0, 1, 1, 0], [0, 1, 0, 0],
        ...                            y_proba=[0.2, 0.9, 0.4, 0.1])]
        ['confusion_matrix', 'roc_curve', 'precision_recall_curve', 'calibration_curve']
    """
    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    if task == "regression":
        if y_proba is not None:
            raise InvalidInputError("y_proba is for classification; leave it out for regression")
        return [predicted_vs_actual_plot(y_true, y_pred), residuals_plot(y_true, y_pred)]
    truth = _labels(y_true, "y_true")
    predicted = _labels(y_pred, "y_pred")
    _same_length(truth, predicted, "y_true and y_pred")
    names = _classes(classes) if classes is not None else _infer_classes(truth, predicted)
    if task == "binary" and len(names) != 2:
        raise InvalidInputError(
            f"a binary task needs exactly 2 classes; got {list(names)}. Pass "
            "classes=estimator.classes_ (or use task='multiclass')"
        )
    k = len(names)
    true_codes = _codes(truth, names, "y_true")
    pred_codes = _codes(predicted, names, "y_pred")
    counts = np.bincount(true_codes * k + pred_codes, minlength=k * k).reshape(k, k)
    plots: list[Plot] = [confusion_matrix_plot(counts, names)]
    if y_proba is None:
        return plots
    plots.append(roc_plot(truth, y_proba, names))
    plots.append(pr_plot(truth, y_proba, names))
    if task == "binary":
        proba = _floats(y_proba, "y_proba", ndim=(1, 2))
        positive = proba if proba.ndim == 1 else proba[:, -1]
        plots.append(calibration_plot(true_codes == 1, positive))
    return plots
