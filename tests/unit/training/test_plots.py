"""Evaluation plots: the numbers they hold, their PNG and HTML renderings, their errors."""

from __future__ import annotations

import dataclasses
import doctest
import gc
import re
import struct
import subprocess
import sys
import weakref

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from shipyard.core.errors import InvalidInputError, InvalidStateError
from shipyard.training import plots
from shipyard.training.plots import (
    MAX_HTML_POINTS,
    Plot,
    calibration_plot,
    confusion_matrix_plot,
    feature_importance_plot,
    learning_curve_plot,
    plots_for,
    pr_plot,
    predicted_vs_actual_plot,
    residuals_plot,
    roc_plot,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, the first chunk of every PNG."""
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def binary_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative (imperfect) probabilities of the positive class."""
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * score))).astype(int)
    proba = 1 / (1 + np.exp(-(1.5 * score + rng.normal(scale=0.5, size=n))))
    return y, proba


def multiclass_data(n: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """String labels of 3 classes and noisy softmax probabilities in class order."""
    rng = np.random.default_rng(seed)
    classes = ["bird", "cat", "dog"]
    codes = rng.integers(0, 3, size=n)
    logits = np.eye(3)[codes] * 1.5 + rng.normal(size=(n, 3))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.array(classes)[codes], proba, classes


def legend_texts(plot: Plot) -> tuple[list[str], list[str]]:
    """The legend entries as drawn by matplotlib and by plotly."""
    fig = plot.to_matplotlib()
    drawn = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    web = [t.name for t in plot.to_plotly().data if t.name]
    return drawn, web


# -- PNG and HTML renderings -------------------------------------------------------------


def test_png_has_the_signature_and_the_pixel_size_of_figure_size_times_dpi() -> None:
    y, proba = binary_data()
    plot = roc_plot(y, proba)
    assert png_size(plot.to_png()) == (640, 480)
    assert png_size(plot.to_png(dpi=50)) == (320, 240)
    big = confusion_matrix_plot(np.ones((30, 30), dtype=int), [f"c{i}" for i in range(30)])
    width, height = png_size(big.to_png(dpi=40))
    assert 400 <= width <= 800 and 400 <= height <= 700  # grows with classes, capped


def test_png_figures_are_not_kept_anywhere() -> None:
    plot = residuals_plot([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
    fig = plot.to_matplotlib()
    ref = weakref.ref(fig)
    del fig
    gc.collect()
    assert ref() is None
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for _ in range(3):
        plot.to_png(dpi=30)
    assert plt.get_fignums() == before


def test_rendering_never_touches_pyplot_and_shipyard_does_not_import_training() -> None:
    code = (
        "import sys, shipyard\n"
        "print('shipyard.training' in sys.modules)\n"
        "from shipyard.training.plots import roc_plot\n"
        "roc_plot([0, 1, 0, 1], [0.2, 0.7, 0.4, 0.9]).to_png(dpi=20)\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]


def test_html_div_has_a_stable_id_one_script_and_no_plotly_bundle_or_url() -> None:
    y, proba = binary_data()
    plot = roc_plot(y, proba)
    div = plot.to_html_div()
    assert div == plot.to_html_div()
    assert f'id="{plot.div_id}"' in div and plot.div_id == "shipyard-plot-roc_curve"
    assert div.count("<script") == 1
    assert "http://" not in div and "https://" not in div
    assert len(div) < 100_000  # the 4 MB plotly.js bundle is not in it


def test_dpi_must_be_sensible() -> None:
    plot = residuals_plot([1.0, 2.0], [1.0, 2.5])
    for bad in (0, -5, 5000, True, "100"):
        with pytest.raises(InvalidInputError, match="dpi"):
            plot.to_png(dpi=bad)  # type: ignore[arg-type]


def test_a_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    plot = confusion_matrix_plot([[1, 0], [0, 1]], ["a", "b"])
    for prefix in ("matplotlib", "plotly"):
        with monkeypatch.context() as m:
            for key in [k for k in sys.modules if k == prefix or k.startswith(prefix + ".")]:
                m.setitem(sys.modules, key, None)
            m.setitem(sys.modules, prefix, None)
            render = plot.to_png if prefix == "matplotlib" else plot.to_html_div
            with pytest.raises(InvalidStateError, match=re.escape("pip install 'shipyard[plots]'")):
                render()
    assert plot.to_png(dpi=20)[:8] == PNG_SIGNATURE  # fine again once installed


# -- classification ----------------------------------------------------------------------


def test_binary_roc_auc_is_sklearns_and_shows_in_both_legends() -> None:
    y, proba = binary_data()
    expected = roc_auc_score(y, proba)
    plot = roc_plot(y, np.column_stack([1 - proba, proba]), classes=[0, 1])
    (curve,) = plot.curves
    assert curve.score == pytest.approx(expected, abs=1e-12)
    assert curve.label == "1"
    drawn, web = legend_texts(plot)
    entry = f"1 (AUC = {expected:.3f})"
    assert entry in drawn and entry in web
    assert float(re.search(r"AUC = ([0-9.]+)", web[-1]).group(1)) == pytest.approx(
        expected, abs=5e-4
    )  # type: ignore[union-attr]
    assert curve.x[0] == 0 and curve.y[-1] == 1  # from (0, 0) to (1, 1)


def test_multiclass_roc_is_one_vs_rest_per_class_with_sklearns_macro_auc() -> None:
    y, proba, classes = multiclass_data()
    plot = roc_plot(y, proba, classes)
    assert [c.label for c in plot.curves] == classes
    for j, curve in enumerate(plot.curves):
        assert curve.score == pytest.approx(roc_auc_score(y == classes[j], proba[:, j]))
    assert plot.macro_score == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    assert f"{plot.macro_score:.3f}" in plot.title
    _, web = legend_texts(plot)
    assert [w.split(" (")[0] for w in web if w != "chance"] == classes


def test_a_class_absent_from_y_true_gets_no_curve() -> None:
    y, proba, classes = multiclass_data()
    keep = y != "dog"
    plot = roc_plot(y[keep], proba[keep], classes)
    assert [c.label for c in plot.curves] == ["bird", "cat"]
    assert plot.skipped == ("dog",)


def test_binary_precision_recall_matches_sklearn_and_draws_the_prevalence() -> None:
    y, proba = binary_data()
    plot = pr_plot(np.where(y == 1, "yes", "no"), proba)
    (curve,) = plot.curves
    assert curve.label == "yes"
    assert curve.score == pytest.approx(average_precision_score(y, proba))
    chance = plot.to_plotly().data[0]
    assert chance.name == "chance" and list(chance.y) == pytest.approx([y.mean()] * 2)
    drawn, _ = legend_texts(plot)
    assert f"yes (AP = {average_precision_score(y, proba):.3f})" in drawn


def test_calibration_bins_match_sklearns_calibration_curve() -> None:
    y, proba = binary_data()
    plot = calibration_plot(y, proba, n_bins=8)
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=8)
    filled = plot.bin_counts > 0
    np.testing.assert_allclose(plot.fraction_positive[filled], prob_true)
    np.testing.assert_allclose(plot.mean_predicted[filled], prob_pred)
    assert plot.bin_counts.sum() == len(y)
    assert plot.brier == pytest.approx(brier_score_loss(y, proba))
    labels = calibration_plot(np.where(y == 1, "churn", "stay"), proba, 8, pos_label="churn")
    np.testing.assert_allclose(labels.fraction_positive, plot.fraction_positive)


def test_calibration_puts_probabilities_on_bin_edges_where_sklearn_does() -> None:
    y, proba = [0, 1, 1, 0, 1, 1], [0.0, 0.25, 0.5, 0.5, 0.75, 1.0]
    plot = calibration_plot(y, proba, n_bins=4)
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=4)
    assert plot.bin_counts.tolist() == [2, 2, 1, 1]
    np.testing.assert_allclose(plot.fraction_positive, prob_true)
    np.testing.assert_allclose(plot.mean_predicted, prob_pred)


def test_calibration_refuses_scores_that_are_not_probabilities() -> None:
    with pytest.raises(InvalidInputError, match=r"\[0, 1\].*decision_function"):
        calibration_plot([0, 1], [-1.5, 2.0])
    with pytest.raises(InvalidInputError, match="pos_label"):
        calibration_plot(["a", "b"], [0.2, 0.8])


def test_confusion_matrix_cells_show_counts_or_row_shares() -> None:
    counts = np.array([[50, 10, 0], [5, 30, 5], [0, 0, 0]])
    plot = confusion_matrix_plot(counts, ["a", "b", "c"])
    assert plot.cell_texts()[0] == ["50", "10", "0"]
    heatmap = plot.to_plotly().data[0]
    np.testing.assert_array_equal(np.asarray(heatmap.z), counts)
    shares = confusion_matrix_plot(counts, ["a", "b", "c"], normalize=True)
    assert shares.name == "confusion_matrix_normalized"
    np.testing.assert_allclose(shares.values.sum(axis=1), [1, 1, 0])  # empty row stays 0
    assert shares.cell_texts()[1] == ["0.12", "0.75", "0.12"]
    with pytest.raises(ValueError):
        shares.counts[0, 0] = 1  # read-only


def test_class_names_are_shown_literally_not_as_markup_or_mathtext() -> None:
    plot = confusion_matrix_plot([[3, 1], [0, 4]], [HOSTILE, "$x^2$ cost"])
    div = plot.to_html_div()
    assert "<script>alert" not in div and div.count("<script") == 1
    heatmap = plot.to_plotly().data[0]  # plotly.js reads tags in text: it gets entities
    assert list(heatmap.x) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "$x^2$ cost"]
    assert plot.to_png(dpi=30)[:8] == PNG_SIGNATURE  # "$" did not start mathtext
    ticks = [t.get_text() for t in plot.to_matplotlib().axes[0].get_xticklabels()]
    assert ticks == [HOSTILE, r"\$x^2\$ cost"]


def test_labels_outside_classes_are_reported_with_the_fix() -> None:
    y, proba, _ = multiclass_data()
    with pytest.raises(InvalidInputError, match=r"not among classes.*estimator\.classes_"):
        roc_plot(y, proba, ["bird", "cat", "cow"])
    with pytest.raises(InvalidInputError, match="3 columns but there are 2 classes"):
        roc_plot(y, proba, ["bird", "cat"])
    with pytest.raises(InvalidInputError, match="same length"):
        roc_plot(y[:10], proba[:9], ["bird", "cat", "dog"])
    with pytest.raises(InvalidInputError, match="missing or infinite"):
        roc_plot([0, 1], [0.5, np.nan])
    with pytest.raises(InvalidInputError, match="only class"):
        roc_plot([1, 1], [0.5, 0.6], classes=[0, 1])


# -- regression --------------------------------------------------------------------------


def test_regression_html_draws_a_deterministic_sample_that_keeps_the_worst_points() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=40_000)
    pred = y + rng.normal(scale=0.3, size=y.size)
    pred[12_345] = 50.0  # the worst prediction
    plot = residuals_plot(y, pred)
    np.testing.assert_allclose(plot.residuals, y - pred)
    scatter = plot.to_plotly().data[0]
    assert len(scatter.x) == MAX_HTML_POINTS
    assert 12_345 in set(np.asarray(scatter.customdata).tolist())
    np.testing.assert_array_equal(plot.sample_indices(), plot.sample_indices())
    assert "5,000 of 40,000" in scatter.name
    assert len(plot.to_html_div()) < 400_000
    small = predicted_vs_actual_plot([1, 2, 3], [1.5, 2, 2])
    points = small.to_plotly().data[0]
    assert list(points.x) == [1.5, 2, 2] and list(points.y) == [1, 2, 3]


def test_regression_inputs_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="same length"):
        residuals_plot([1, 2, 3], [1, 2])
    with pytest.raises(InvalidInputError, match="numeric"):
        predicted_vs_actual_plot(["a", "b"], [1, 2])


# -- learning curve and importance -------------------------------------------------------


def test_learning_curve_bands_are_mean_and_std_over_folds_ignoring_failed_fits() -> None:
    rng = np.random.default_rng(4)
    sizes = np.array([50, 100, 200, 400])
    train = rng.uniform(0.9, 1.0, size=(4, 5))
    valid = rng.uniform(0.6, 0.8, size=(4, 5))
    valid[0, 2] = np.nan  # a failed fit
    plot = learning_curve_plot(sizes, train, valid, "accuracy")
    mean, std = plot.bands()["validation"]
    assert mean[0] == pytest.approx(np.nanmean(valid[0]))
    np.testing.assert_allclose(mean[1:], valid[1:].mean(axis=1))
    np.testing.assert_allclose(std[1:], valid[1:].std(axis=1))
    lines = {t.name: t for t in plot.to_plotly().data if t.name}
    np.testing.assert_allclose(lines["training"].y, train.mean(axis=1))
    assert png_size(plot.to_png(dpi=50)) == (320, 240)
    with pytest.raises(InvalidInputError, match=r"\(n_sizes, n_folds\) = \(4, n_folds\)"):
        learning_curve_plot(sizes, train[:3], valid, "accuracy")


def test_feature_importance_shows_the_top_features_by_absolute_value() -> None:
    names = [f"f{i}" for i in range(30)]
    values = np.linspace(-0.3, 0.6, 30)
    plot = feature_importance_plot(names, values, stds=np.full(30, 0.01), top=5)
    assert plot.names == ("f29", "f28", "f27", "f26", "f25")
    assert plot.total_features == 30 and "top 5 of 30" in plot.title
    bars = plot.to_plotly().data[0]
    assert list(bars.y) == list(plot.names) and list(bars.x) == pytest.approx(values[::-1][:5])
    negative = feature_importance_plot(["a", "b"], [0.1, -0.4])
    assert negative.names == ("b", "a")
    with pytest.raises(InvalidInputError, match="distinct"):
        feature_importance_plot(["a", "a"], [0.1, 0.2])


# -- the set per task --------------------------------------------------------------------


def test_plots_for_picks_the_plots_of_each_task() -> None:
    y, proba = binary_data()
    binary = plots_for("binary", y, (proba > 0.5).astype(int), np.column_stack([1 - proba, proba]))
    assert [p.name for p in binary] == [
        "confusion_matrix", "roc_curve", "precision_recall_curve", "calibration_curve"
    ]  # fmt: skip
    counts = binary[0].counts  # type: ignore[attr-defined]
    assert counts.sum() == len(y) and counts[1, 1] == ((proba > 0.5) & (y == 1)).sum()
    labels, mproba, classes = multiclass_data()
    pred = np.array(classes)[mproba.argmax(axis=1)]
    multi = plots_for("multiclass", labels, pred, mproba, classes)
    assert [p.name for p in multi] == ["confusion_matrix", "roc_curve", "precision_recall_curve"]
    assert [p.name for p in plots_for("multiclass", labels, pred)] == ["confusion_matrix"]
    regression = plots_for("regression", [1.0, 2.0], [1.5, 2.5])
    assert [p.name for p in regression] == ["predicted_vs_actual", "residuals"]
    with pytest.raises(InvalidInputError, match="binary, multiclass, regression"):
        plots_for("ranking", y, y)
    with pytest.raises(InvalidInputError, match="exactly 2 classes"):
        plots_for("binary", labels, pred)


def test_plot_names_are_file_stems_and_can_be_changed() -> None:
    plot = residuals_plot([1.0, 2.0], [1.0, 2.5])
    renamed = dataclasses.replace(plot, name="residuals_test")
    assert renamed.div_id == "shipyard-plot-residuals_test"
    for bad in ("../x", 'a"b', "", "a b"):
        with pytest.raises(InvalidInputError, match="file stem"):
            dataclasses.replace(plot, name=bad)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(plots, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10 and result.failed == 0
