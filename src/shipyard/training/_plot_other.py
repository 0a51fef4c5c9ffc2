"""Regression, learning-curve and feature-importance plots of :mod:`shipyard.training.plots`.

Private: import the public names from :mod:`shipyard.training.plots`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.core.errors import InvalidInputError
from shipyard.training._plot_base import (
    _COLORS,
    MAX_HTML_POINTS,
    MAX_PNG_POINTS,
    FloatArray,
    Plot,
    _fill_color,
    _floats,
    _labels,
    _mpl_text,
    _readonly,
    _same_length,
    _sample,
    _web_text,
)

# -- regression --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class _RegressionPlot(Plot):
    y_true: FloatArray
    y_pred: FloatArray

    @property
    def residuals(self) -> FloatArray:
        """``y_true - y_pred``."""
        return self.y_true - self.y_pred

    def sample_indices(self, max_points: int = MAX_HTML_POINTS) -> npt.NDArray[np.intp]:
        """The rows drawn when at most ``max_points`` fit, ascending and deterministic.

        All rows when there are few enough; otherwise the 1% of rows with the largest
        absolute residuals (so outliers always show) plus a seeded random sample.
        """
        return _sample(len(self.y_true), max_points, np.abs(self.residuals))

    def _xy(self) -> tuple[FloatArray, FloatArray, str, str]:
        raise NotImplementedError

    def _reference(self) -> tuple[list[float], list[float], str]:
        raise NotImplementedError

    def _caption(self, shown: int) -> str:
        n = len(self.y_true)
        return f"{shown:,} of {n:,} points shown (sampled)" if shown < n else f"{n:,} points"

    def _draw(self, ax: Any) -> None:
        x, y, x_label, y_label = self._xy()
        idx = self.sample_indices(MAX_PNG_POINTS)
        size = 10 if len(idx) <= 2_000 else 3
        ax.scatter(x[idx], y[idx], s=size, alpha=0.5, color=_COLORS[0], linewidths=0)
        ref_x, ref_y, ref_label = self._reference()
        ax.plot(ref_x, ref_y, linestyle="--", color="grey", linewidth=1, label=ref_label)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.legend(loc="best", fontsize="small", title=self._caption(len(idx)))

    def _add_traces(self, fig: Any, go: Any) -> None:
        x, y, x_label, y_label = self._xy()
        idx = self.sample_indices(MAX_HTML_POINTS)
        fig.add_trace(
            go.Scatter(
                x=x[idx],
                y=y[idx],
                mode="markers",
                name=self._caption(len(idx)),
                marker={"size": 5, "opacity": 0.55, "color": _COLORS[0]},
                customdata=idx,
                hovertemplate=f"row %{{customdata}}<br>{x_label} %{{x:.4g}}<br>"
                f"{y_label} %{{y:.4g}}<extra></extra>",
            )
        )
        ref_x, ref_y, ref_label = self._reference()
        fig.add_trace(
            go.Scatter(
                x=ref_x,
                y=ref_y,
                mode="lines",
                name=ref_label,
                line={"dash": "dash", "color": "grey", "width": 1},
                hoverinfo="skip",
            )
        )
        fig.update_xaxes(title_text=x_label)
        fig.update_yaxes(title_text=y_label)


@dataclass(frozen=True, eq=False, kw_only=True)
class ResidualsPlot(_RegressionPlot):
    """Residuals (actual - predicted) against predicted values, with the zero line.

    Attributes:
        y_true: the actual values.
        y_pred: the predicted values.
    """

    def _xy(self) -> tuple[FloatArray, FloatArray, str, str]:
        return self.y_pred, self.residuals, "Predicted", "Residual (actual - predicted)"

    def _reference(self) -> tuple[list[float], list[float], str]:
        return [float(self.y_pred.min()), float(self.y_pred.max())], [0.0, 0.0], "zero"


@dataclass(frozen=True, eq=False, kw_only=True)
class PredictedVsActualPlot(_RegressionPlot):
    """Actual values against predicted values, with the identity line.

    Attributes:
        y_true: the actual values.
        y_pred: the predicted values.
    """

    def _xy(self) -> tuple[FloatArray, FloatArray, str, str]:
        return self.y_pred, self.y_true, "Predicted", "Actual"

    def _reference(self) -> tuple[list[float], list[float], str]:
        low = float(min(self.y_true.min(), self.y_pred.min()))
        high = float(max(self.y_true.max(), self.y_pred.max()))
        return [low, high], [low, high], "actual = predicted"


def _regression_inputs(y_true: Any, y_pred: Any) -> tuple[FloatArray, FloatArray]:
    actual = _floats(y_true, "y_true")
    predicted = _floats(y_pred, "y_pred")
    _same_length(actual, predicted, "y_true and y_pred")
    return _readonly(actual), _readonly(predicted)


def residuals_plot(y_true: Any, y_pred: Any) -> ResidualsPlot:
    """Residuals against predictions (regression).

    The HTML draws at most :data:`MAX_HTML_POINTS` points and the PNG at most
    :data:`MAX_PNG_POINTS` (see :meth:`ResidualsPlot.sample_indices`); the plot keeps
    every value.

    Args:
        y_true: the actual values.
        y_pred: the predicted values.

    Returns:
        A :class:`ResidualsPlot` named ``residuals``.

    Raises:
        InvalidInputError: lengths differ, or values are missing, infinite or not numbers.

    Example::

        >>> residuals_plot([1.0, 2.0, 3.0], [1.5, 2.0, 2.0]).residuals.tolist()
        [-0.5, 0.0, 1.0]
    """
    actual, predicted = _regression_inputs(y_true, y_pred)
    return ResidualsPlot(name="residuals", title="Residuals", y_true=actual, y_pred=predicted)


def predicted_vs_actual_plot(y_true: Any, y_pred: Any) -> PredictedVsActualPlot:
    """Actual against predicted values with the identity line (regression).

    Sampled for drawing like :func:`residuals_plot`.

    Args:
        y_true: the actual values.
        y_pred: the predicted values.

    Returns:
        A :class:`PredictedVsActualPlot` named ``predicted_vs_actual``.

    Raises:
        InvalidInputError: lengths differ, or values are missing, infinite or not numbers.

    Example::

        >>> predicted_vs_actual_plot([1, 2, 3], [1.5, 2, 2]).name
        'predicted_vs_actual'
    """
    actual, predicted = _regression_inputs(y_true, y_pred)
    return PredictedVsActualPlot(
        name="predicted_vs_actual", title="Predicted vs actual", y_true=actual, y_pred=predicted
    )


# -- learning curve ----------------------------------------------------------------------------


def _nan_mean_std(scores: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation per row, ignoring NaN (NaN for an all-NaN row)."""
    present = ~np.isnan(scores)
    count = present.sum(axis=1)
    filled = np.where(present, scores, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, filled.sum(axis=1) / count, np.nan)
        squares = np.where(present, (scores - mean[:, None]) ** 2, 0.0)
        std = np.where(count > 0, np.sqrt(squares.sum(axis=1) / count), np.nan)
    return mean, std


@dataclass(frozen=True, eq=False, kw_only=True)
class LearningCurvePlot(Plot):
    """Training and validation scores against training set size, mean +- one std.

    Attributes:
        train_sizes: the training set sizes.
        train_scores: ``(n_sizes, n_folds)`` scores on the training folds (NaN = failed fit).
        valid_scores: ``(n_sizes, n_folds)`` scores on the validation folds.
        metric: the score's name (the y axis).
    """

    train_sizes: FloatArray
    train_scores: FloatArray
    valid_scores: FloatArray
    metric: str

    def bands(self) -> dict[str, tuple[FloatArray, FloatArray]]:
        """``{"training": (mean, std), "validation": (mean, std)}`` per size (NaN ignored)."""
        return {
            "training": _nan_mean_std(self.train_scores),
            "validation": _nan_mean_std(self.valid_scores),
        }

    def _draw(self, ax: Any) -> None:
        for i, (label, (mean, std)) in enumerate(self.bands().items()):
            color = _COLORS[i]
            ax.fill_between(self.train_sizes, mean - std, mean + std, color=color, alpha=0.2)
            ax.plot(self.train_sizes, mean, marker="o", color=color, label=label)
        ax.set_xlabel("Training examples")
        ax.set_ylabel(_mpl_text(self.metric))
        ax.legend(loc="best", fontsize="small")

    def _add_traces(self, fig: Any, go: Any) -> None:
        x = self.train_sizes
        for i, (label, (mean, std)) in enumerate(self.bands().items()):
            color = _COLORS[i]
            band = {"mode": "lines", "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"}
            fig.add_trace(go.Scatter(x=x, y=mean + std, legendgroup=label, **band))
            fig.add_trace(
                go.Scatter(
                    x=x, y=mean - std, fill="tonexty", fillcolor=_fill_color(color, 0.2),
                    legendgroup=label, **band,
                )
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mean,
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    line={"color": color},
                    customdata=std,
                    hovertemplate="%{x:,} examples<br>mean %{y:.4g}<br>std %{customdata:.3g}"
                    "<extra>" + label + "</extra>",
                )
            )
        fig.update_xaxes(title_text="Training examples")
        fig.update_yaxes(title_text=_web_text(self.metric))


def learning_curve_plot(
    train_sizes: Any, train_scores: Any, valid_scores: Any, metric: str
) -> LearningCurvePlot:
    """A learning curve: mean training and validation scores with +- one std bands.

    Takes ``sklearn.model_selection.learning_curve``'s outputs as they are.

    Args:
        train_sizes: the ``n_sizes`` training set sizes.
        train_scores: ``(n_sizes, n_folds)`` training scores (1-D means one fold); NaN
            marks a failed fit and is left out of the mean.
        valid_scores: ``(n_sizes, n_folds)`` validation scores.
        metric: the name of the score, such as ``"accuracy"``.

    Returns:
        A :class:`LearningCurvePlot` named ``learning_curve``.

    Raises:
        InvalidInputError: shapes disagree, sizes are not positive, or scores are infinite.

    Example::

        >>> plot = learning_curve_plot([10, 20], [[0.9, 1.0], [0.9, 0.9]],
        ...                            [[0.6, 0.7], [0.8, 0.8]], "accuracy")
        >>> plot.bands()["validation"][0].round(2).tolist()
        [0.65, 0.8]
    """
    sizes = _floats(train_sizes, "train_sizes")
    if (sizes <= 0).any():
        raise InvalidInputError("train_sizes must be positive numbers of training examples")
    if not isinstance(metric, str) or not metric:
        raise InvalidInputError(
            f"metric must be the score's name, such as 'accuracy'; got {metric!r}"
        )
    scores = {}
    for name, values in (("train_scores", train_scores), ("valid_scores", valid_scores)):
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} must be numeric; {exc}") from exc
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != len(sizes) or arr.shape[1] == 0:
            raise InvalidInputError(
                f"{name} must be shaped (n_sizes, n_folds) = ({len(sizes)}, n_folds); got "
                f"{np.shape(values)}"
            )
        if np.isinf(arr).any():
            raise InvalidInputError(f"{name} has infinite values; check the scorer")
        scores[name] = arr
    if scores["train_scores"].shape != scores["valid_scores"].shape:
        raise InvalidInputError(
            f"train_scores and valid_scores must have the same shape; got "
            f"{scores['train_scores'].shape} and {scores['valid_scores'].shape}"
        )
    return LearningCurvePlot(
        name="learning_curve",
        title=f"Learning curve ({metric})",
        train_sizes=_readonly(sizes),
        train_scores=_readonly(scores["train_scores"]),
        valid_scores=_readonly(scores["valid_scores"]),
        metric=metric,
    )


# -- feature importance ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class FeatureImportancePlot(Plot):
    """Horizontal bars of the most important features, most important on top.

    Attributes:
        names: the features drawn, by decreasing absolute importance.
        importances: their importances.
        stds: their standard deviations (error bars), or None.
        total_features: how many features were given (``len(names)`` may be fewer).
    """

    names: tuple[str, ...]
    importances: FloatArray
    stds: FloatArray | None
    total_features: int

    def _draw(self, ax: Any) -> None:
        positions = np.arange(len(self.names))
        ax.barh(
            positions, self.importances, xerr=self.stds, color=_COLORS[0], alpha=0.85,
            error_kw={"ecolor": "#334155", "capsize": 2},
        )  # fmt: skip
        ax.set_yticks(positions, labels=[_mpl_text(n) for n in self.names])
        ax.invert_yaxis()
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("Importance")

    def _add_traces(self, fig: Any, go: Any) -> None:
        fig.add_trace(
            go.Bar(
                x=self.importances,
                y=[_web_text(n) for n in self.names],
                orientation="h",
                marker={"color": _COLORS[0]},
                error_x=None if self.stds is None else {"type": "data", "array": self.stds},
                hovertemplate="%{y}<br>%{x:.4g}<extra></extra>",
            )
        )
        fig.update_xaxes(title_text="Importance")
        fig.update_yaxes(type="category", autorange="reversed", automargin=True)

    def _figsize(self) -> tuple[float, float]:
        return (7.2, min(20.0, max(3.6, 0.3 * len(self.names) + 1.6)))

    def _height_px(self) -> int:
        return min(2000, max(360, 26 * len(self.names) + 150))


def feature_importance_plot(
    names: Sequence[Any], importances: Any, stds: Any = None, top: int = 20
) -> FeatureImportancePlot:
    """The ``top`` features by absolute importance, as bars with optional error bars.

    Negative importances (a permutation importance below zero) are kept and drawn left of
    zero; ties keep the input order.

    Args:
        names: the feature names.
        importances: one importance per name.
        stds: one standard deviation per name (such as ``permutation_importance``'s
            ``importances_std``), or None.
        top: how many features to draw, at least 1.

    Returns:
        A :class:`FeatureImportancePlot` named ``feature_importance``.

    Raises:
        InvalidInputError: lengths disagree, names repeat, values are not finite, a
            standard deviation is negative, or ``top`` is below 1.

    Example::

        >>> plot = feature_importance_plot(["a", "b", "c"], [0.1, -0.5, 0.3], top=2)
        >>> plot.names, plot.importances.tolist()
        (('b', 'c'), [-0.5, 0.3])
    """
    labels = _labels(names, "names")
    values = _floats(importances, "importances")
    _same_length(labels, values, "names and importances")
    text = [str(n) for n in labels]
    if len(set(text)) != len(text):
        duplicated = sorted({t for t in text if text.count(t) > 1})[:5]
        raise InvalidInputError(f"feature names must be distinct; repeated: {duplicated}")
    deviations = None
    if stds is not None:
        deviations = _floats(stds, "stds")
        _same_length(labels, deviations, "names and stds")
        if (deviations < 0).any():
            raise InvalidInputError("stds must be non-negative standard deviations")
    if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 1:
        raise InvalidInputError(f"top must be a whole number of features, at least 1; got {top!r}")
    order = np.argsort(-np.abs(values), kind="stable")[: int(top)]
    shown = f"top {len(order)} of {len(text)}" if len(order) < len(text) else f"{len(text)}"
    return FeatureImportancePlot(
        name="feature_importance",
        title=f"Feature importance ({shown} features)",
        names=tuple(text[i] for i in order),
        importances=_readonly(values[order]),
        stds=None if deviations is None else _readonly(deviations[order]),
        total_features=len(text),
    )
