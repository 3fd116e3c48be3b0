import numpy as np
import pytest

from kerasnas.evaluation import plot_metric_over_epochs
from kerasnas.evaluation import plot_ranking_scatter
from kerasnas.evaluation import plots

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    """(width, height) from the PNG's IHDR chunk."""
    data = open(path, "rb").read(24)
    assert data[:8] == PNG_HEADER and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _scores(n=200, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(10, 95, n)
    return true + rng.normal(0, 5, n), true


def test_ranking_scatter_writes_a_png_with_one_panel_per_predictor(tmp_path):
    pred, true = _scores()
    path = plot_ranking_scatter(pred, true, tmp_path / "one.png", title="test")
    assert path == str(tmp_path / "one.png")
    width, height = _png_size(path)
    baselines = {"params": true * 0.01, "flops": np.sqrt(true)}
    path = plot_ranking_scatter(pred, true, tmp_path / "sub" / "three.png", baselines=baselines)
    width3, height3 = _png_size(path)
    assert height3 == height and width3 > 2.5 * width  # three panels side by side


def test_ranking_scatter_errors(tmp_path):
    pred, true = _scores()
    with pytest.raises(ValueError, match="same length"):
        plot_ranking_scatter(pred[:-1], true, tmp_path / "x.png")
    with pytest.raises(ValueError, match="Expected 200 scores for 'params'"):
        plot_ranking_scatter(pred, true, tmp_path / "x.png", baselines={"params": [1.0, 2.0]})
    with pytest.raises(ValueError, match="Expected a `.png` file"):
        plot_ranking_scatter(pred, true, tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="finite"):
        plot_ranking_scatter(np.full(200, np.nan), true, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_metric_over_epochs_writes_a_png(tmp_path):
    runs = {
        "seed 0": {"epoch": [0, 10, 20], "kendall_tau": [0.2, 0.5, 0.6], "spearman": [0.3, 0.6, 0.7]},
        "seed 1": {"epoch": [0, 10, 20], "kendall_tau": [0.25, float("nan"), 0.65]},
    }
    path = plot_metric_over_epochs(runs, tmp_path / "tau.png", baselines={"params": 0.577, "flops": 0.577})
    assert path == str(tmp_path / "tau.png")
    assert _png_size(path)[0] > 100
    # Baselines given as ranking_report entries: their `metric` is drawn.
    report_baselines = {"params": {"spearman": 0.75, "kendall_tau": 0.577}}
    path = plot_metric_over_epochs({"seed 0": runs["seed 0"]}, tmp_path / "rho.png",
                                   metric="spearman", baselines=report_baselines)
    assert _png_size(path)[0] > 100


def test_metric_over_epochs_errors(tmp_path):
    run = {"epoch": [0, 1], "kendall_tau": [0.1, 0.2]}
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_metric_over_epochs({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="to hold 'epoch' and 'spearman'"):
        plot_metric_over_epochs({"a": run}, tmp_path / "x.png", metric="spearman")
    with pytest.raises(ValueError, match="as many values of 'kendall_tau' as epochs"):
        plot_metric_over_epochs({"a": {"epoch": [0, 1, 2], "kendall_tau": [0.1]}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="baseline 'params' to hold 'kendall_tau'"):
        plot_metric_over_epochs({"a": run}, tmp_path / "x.png", baselines={"params": {"spearman": 0.7}})
    with pytest.raises(ValueError, match="Expected a number for 'params'"):
        plot_metric_over_epochs({"a": run}, tmp_path / "x.png", baselines={"params": "high"})
    assert not list(tmp_path.iterdir())


def test_metric_labels():
    assert plots.metric_label("kendall_tau") == "Kendall τ"
    assert plots.metric_label("precision_at_top_5%") == "P@Top5%"
    assert plots.metric_label("spearman_at_top_1%") == "Spearman ρ, top 1%"
    assert plots.metric_label("my_metric") == "my metric"


def test_search_progress_plot(tmp_path):
    from kerasnas.evaluation import plot_search_progress

    rng = np.random.default_rng(0)
    runs = {"evolution": rng.uniform(0, 1, 50), "random": rng.uniform(0, 1, 50)}
    one = plot_search_progress(runs, tmp_path / "one.png")
    two = plot_search_progress(runs, tmp_path / "two.png", truth={k: v * 90 for k, v in runs.items()})
    assert _png_size(two)[0] > 1.8 * _png_size(one)[0]  # the ground-truth panel
    with pytest.raises(ValueError, match="truth"):
        plot_search_progress(runs, tmp_path / "x.png", truth={"evolution": [1.0]})
    with pytest.raises(ValueError, match="mode"):
        plot_search_progress(runs, tmp_path / "x.png", mode="best")
    with pytest.raises(ValueError, match="png"):
        plot_search_progress(runs, tmp_path / "x.jpg")


def test_improvement_plot_writes_a_png(tmp_path):
    from kerasnas.evaluation import improvement_curve
    from kerasnas.evaluation import plot_improvement

    runs = {
        name: [improvement_curve(*_scores(seed=seed)) for seed in range(3)]
        for name in ("spos", "bias")
    }
    path = plot_improvement(runs, tmp_path / "improvement.png")
    width, height = _png_size(path)
    assert width > 600 and height > 600
    with pytest.raises(ValueError, match="runs"):
        plot_improvement({}, tmp_path / "x.png")
