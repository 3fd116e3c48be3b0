"""PNG figures of rankings: predicted vs true scores, metrics over epochs.

The figures are drawn on matplotlib's Agg canvas directly, without pyplot,
so they neither need a display nor change the caller's matplotlib backend.
"""

import math
import os

import numpy as np

from kerasnas.evaluation import metrics as ranking_metrics

_METRIC_NAMES = {
    "kendall_tau": "Kendall τ",
    "spearman": "Spearman ρ",
    "pearson": "Pearson r",
}


def metric_label(metric):
    """A readable name of a `ranking_report` key, e.g. "P@Top5%"."""
    if metric in _METRIC_NAMES:
        return _METRIC_NAMES[metric]
    if metric.startswith("precision_at_top_"):
        return "P@Top" + metric[len("precision_at_top_"):]
    if metric.startswith("spearman_at_top_"):
        return "Spearman ρ, top " + metric[len("spearman_at_top_"):]
    return metric.replace("_", " ")


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png_path(path):
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(
            "Invalid value for argument `path`. Expected a `.png` file. "
            f"Received: path={path!r}"
        )
    return path


def _save(figure, path):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def plot_ranking_scatter(
    pred,
    true,
    path,
    title=None,
    baselines=None,
    pred_label="predicted accuracy (%)",
    true_label="true test accuracy (%)",
    k=0.05,
):
    """Scatter of the predicted against the true score of each architecture.

    One panel for `pred` and one for each baseline, side by side, sharing
    the x axis (the true score). The architectures of the true top-k are
    highlighted; each panel's title gives Kendall's tau and P@Top-k.

    Args:
        pred: predicted scores.
        true: true scores of the same architectures.
        path: the `.png` file to write (parent folders are created).
        title: the figure's title.
        baselines: optional `{name: scores}` drawn in panels of their own
            (e.g. `baseline_scores(space, archs)`: "params", "flops").
        pred_label: the y label of the `pred` panel.
        true_label: the x label.
        k: the top fraction highlighted and scored (default 5%).

    Returns:
        `path`.
    """
    path = _png_path(path)
    pred, true = ranking_metrics._pair(pred, true)
    k = ranking_metrics._check_k(k)
    panels = [(pred_label, pred)]
    for name, scores in (baselines or {}).items():
        scores = ranking_metrics._vector(scores, f"baselines[{name!r}]")
        if scores.shape != true.shape:
            raise ValueError(
                f"Invalid value for argument `baselines`. Expected {true.size} "
                f"scores for {name!r}, one per architecture. Received: {scores.size}"
            )
        panels.append((_baseline_label(name), scores))

    m = ranking_metrics.top_k_count(k, true.size)
    top = ranking_metrics.top_k_membership(true, m, "index") > 0
    figure = _figure(4.2 * len(panels) + 0.4, 4.2)
    axes = figure.subplots(1, len(panels), sharex=True, squeeze=False)[0]
    size = 6 if true.size > 2000 else 12
    for ax, (label, scores) in zip(axes, panels):
        ax.scatter(true[~top], scores[~top], s=size, alpha=0.35, linewidths=0,
                   color="tab:blue", label="other architectures")
        ax.scatter(true[top], scores[top], s=size * 1.5, alpha=0.8, linewidths=0,
                   color="tab:orange", label=f"true top {_percent(k)}")
        tau = ranking_metrics.kendall_tau(scores, true)
        precision = ranking_metrics.precision_at_top_k(scores, true, k)
        ax.set_title(f"Kendall τ = {tau:.3f}   P@Top{_percent(k)} = {precision:.3f}", fontsize=10)
        ax.set_xlabel(true_label)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, markerscale=2, framealpha=0.9)
    heading = title or "Predicted vs true ranking"
    figure.suptitle(f"{heading} (n = {true.size})")
    return _save(figure, path)


def _baseline_label(name):
    units = {"params": "parameters (M)", "flops": "FLOPs (M)"}
    return units.get(name, name)


def _percent(k):
    return f"{k * 100:g}%"


def plot_metric_over_epochs(runs, path, metric="kendall_tau", baselines=None, title=None):
    """One ranking metric against the training epoch, one line per run.

    Args:
        runs: `{run_name: {"epoch": [...], metric: [...], ...}}`, e.g. the
            ranking metrics of several supernets evaluated every few epochs;
            NaN values leave gaps.
        path: the `.png` file to write (parent folders are created).
        metric: the key to plot (a `ranking_report` key such as
            `"kendall_tau"` or `"precision_at_top_5%"`).
        baselines: optional `{name: value}` drawn as horizontal dashed
            lines, e.g. `{"params": 0.577}`; a value may also be a dict of
            metrics (like `ranking_report(...)["baselines"][name]`), of
            which `metric` is drawn.
        title: the figure's title (default: the metric's name).

    Returns:
        `path`.
    """
    path = _png_path(path)
    if not isinstance(runs, dict) or not runs:
        raise ValueError(
            "Invalid value for argument `runs`. Expected a non-empty dict "
            f'{{run_name: {{"epoch": [...], {metric!r}: [...]}}}}. Received: runs={runs!r}'
        )
    lines = []
    for name, run in runs.items():
        if not isinstance(run, dict) or "epoch" not in run or metric not in run:
            keys = list(run) if isinstance(run, dict) else run
            raise ValueError(
                f"Invalid value for argument `runs`. Expected run {name!r} to "
                f"hold 'epoch' and {metric!r}. Received: {keys!r}"
            )
        epochs = np.asarray(run["epoch"], dtype=np.float64).reshape(-1)
        values = np.asarray(run[metric], dtype=np.float64).reshape(-1)
        if epochs.size != values.size or not epochs.size:
            raise ValueError(
                f"Invalid value for argument `runs`. Expected run {name!r} to "
                f"hold as many values of {metric!r} as epochs (at least one). "
                f"Received: {epochs.size} epochs, {values.size} values"
            )
        lines.append((str(name), epochs, values))
    levels = []
    for name, value in (baselines or {}).items():
        if isinstance(value, dict):
            if metric not in value:
                raise ValueError(
                    f"Invalid value for argument `baselines`. Expected baseline "
                    f"{name!r} to hold {metric!r}. Received: {list(value)!r}"
                )
            value = value[metric]
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"Invalid value for argument `baselines`. Expected a number for "
                f"{name!r}. Received: {value!r}"
            ) from None
        if not math.isnan(value):
            levels.append((str(name), value))

    figure = _figure(7.0, 4.5)
    ax = figure.subplots()
    for name, epochs, values in lines:
        marker = "o" if epochs.size <= 30 else None
        ax.plot(epochs, values, marker=marker, markersize=4, linewidth=1.8, label=name)
    colors = ["0.3", "tab:red", "tab:purple", "tab:brown", "tab:olive"]
    dash = 5.0
    for i, (name, value) in enumerate(levels):
        # Interleaved dashes, so that baselines at the same level (params
        # and FLOPs often rank alike) all stay visible.
        gap = dash * (len(levels) - 1) if len(levels) > 1 else dash * 0.6
        ax.axhline(value, linestyle=(i * dash, (dash, gap)), linewidth=1.6,
                   color=colors[i % len(colors)], label=f"{name} baseline ({value:.3f})")
    label = metric_label(metric)
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.set_title(title or f"{label} of the predicted ranking over training")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, framealpha=0.9)
    return _save(figure, path)


def plot_search_progress(runs, path, ylabel="score", truth=None, mode="max", title=None):
    """Scores of a search's trials in order, with the best so far.

    Args:
        runs: `{name: sequence of scores in trial order}` (e.g. one search
            algorithm per entry), or one sequence.
        path: output `.png` path.
        ylabel: name of the score (e.g. "supernet val accuracy").
        truth: optional `{name: sequence}` of the same trials' ground truth
            (e.g. NAS-Bench-201 test accuracy); a second panel then shows the
            ground truth of the best-so-far trial (by score).
        mode: `"max"` when higher scores are better (accuracy), `"min"`
            (loss) otherwise.
        title: figure title.

    Returns:
        `path`.
    """
    path = _png_path(path)
    if not isinstance(runs, dict):
        runs = {"search": runs}
    if not runs or any(len(v) == 0 for v in runs.values()):
        raise ValueError(
            "Invalid value for argument `runs`. Expected a non-empty sequence of "
            f"scores per run. Received: {({k: len(v) for k, v in runs.items()} if isinstance(runs, dict) else runs)}"
        )
    if mode not in ("max", "min"):
        raise ValueError(
            f"Invalid value for argument `mode`. Expected 'max' or 'min'. Received: mode={mode!r}"
        )
    if truth and (set(truth) != set(runs) or any(len(truth[k]) != len(runs[k]) for k in runs)):
        raise ValueError(
            "Invalid value for argument `truth`. Expected one value per trial of each "
            f"run {({k: len(v) for k, v in runs.items()})}. "
            f"Received: {({k: len(v) for k, v in truth.items()})}"
        )
    sign = 1.0 if mode == "max" else -1.0
    panels = 2 if truth else 1
    figure = _figure(5.0 * panels, 3.6)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    colors = [f"C{i}" for i in range(10)]
    for i, (name, scores) in enumerate(runs.items()):
        scores = np.asarray(scores, dtype="float64")
        trials = np.arange(1, len(scores) + 1)
        color = colors[i % len(colors)]
        axes[0].scatter(trials, scores, s=6, alpha=0.35, color=color)
        best = sign * np.maximum.accumulate(sign * scores)
        axes[0].plot(trials, best, color=color, label=f"{name} (best so far)")
        if truth:
            best_index = np.array([int(np.argmax(sign * scores[:t])) for t in trials])
            values = np.asarray(truth[name], dtype="float64")[best_index]
            axes[1].plot(trials, values, color=color, label=name)
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    if truth:
        axes[1].set_xlabel("trial")
        axes[1].set_ylabel("ground truth of the best trial so far")
        axes[1].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def _check_runs(runs, values):
    if not isinstance(runs, dict) or not runs:
        raise ValueError(
            "Invalid value for argument `runs`. Expected a non-empty dict "
            f"{{method: {values}}}. Received: runs={runs!r}"
        )


def plot_improvement(runs, path, title=None, ylabel="mean true accuracy of the top n"):
    """The improvement metric (Laube & Zell) against n, log-x, mean ± std
    over runs: one line per method.

    Args:
        runs: `{method: [improvement_curve(...) per run]}` (or one curve).
        path: the `.png` file to write.
        title: the figure's title.
        ylabel: the label of the upper panel (the mean true score of the
            top n predicted architectures).

    Returns:
        `path`.
    """
    path = _png_path(path)
    _check_runs(runs, "[improvement curves]")
    figure = _figure(7.0, 6.5)
    top, bottom = figure.subplots(2, 1, sharex=True)
    for name, curves in runs.items():
        if isinstance(curves, dict):
            curves = [curves]
        average = ranking_metrics.average_curves(curves)
        n = average["n"]
        for ax, key in ((top, "mean_true"), (bottom, "improvement")):
            mean, std = average[key], average[f"{key}_std"]
            (line,) = ax.plot(n, mean, linewidth=1.6, label=f"{name} ({len(curves)} runs)")
            if len(curves) > 1:
                ax.fill_between(n, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    bottom.axhline(0.0, color="0.4", linewidth=1.0, linestyle="--")
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
    top.set_ylabel(ylabel)
    bottom.set_ylabel("improvement (1 best, 0 mean, -1 worst)")
    bottom.set_xlabel("n (top-n predicted architectures)")
    top.set_title(title or "Improvement over the population mean")
    top.legend(fontsize=8, framealpha=0.9)
    return _save(figure, path)


def plot_best_vs_cost(runs, path, xlabel="cost", ylabel="accuracy of the best found", title=None):
    """Each method's best-found accuracy against its cost: one point per
    run, and the mean with its standard deviation as error bars.

    Args:
        runs: `{method: (costs, accuracies)}`, one value per run each (NaN
            costs, e.g. not recorded, leave the run out).
        path: the `.png` file to write.
        xlabel, ylabel, title: the axes' labels and the title.

    Returns:
        `path`.
    """
    path = _png_path(path)
    _check_runs(runs, "(costs, accuracies)")
    figure = _figure(7.0, 5.0)
    ax = figure.subplots()
    markers = "os^Dv<>pP*Xh"  # with the 10 colours, 11+ methods stay apart
    for index, (name, (costs, accuracies)) in enumerate(runs.items()):
        marker = markers[index % len(markers)]
        costs, accuracies = np.asarray(costs, float), np.asarray(accuracies, float)
        if costs.shape != accuracies.shape:
            raise ValueError(
                f"Invalid value for argument `runs`. Expected as many costs as accuracies "
                f"for {name!r}. Received: {costs.size} and {accuracies.size}"
            )
        keep = np.isfinite(costs) & np.isfinite(accuracies)
        if not keep.any():
            continue
        costs, accuracies = costs[keep], accuracies[keep]
        (points,) = ax.plot(costs, accuracies, marker, linestyle="none", alpha=0.35)
        ax.errorbar(
            costs.mean(), accuracies.mean(), xerr=costs.std(), yerr=accuracies.std(),
            fmt=marker, markersize=8, color=points.get_color(), capsize=3,
            label=f"{name} ({costs.size} run{'s' if costs.size > 1 else ''})",
        )
    ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Best architecture found vs cost")
    ax.legend(fontsize=8, framealpha=0.9)
    return _save(figure, path)
