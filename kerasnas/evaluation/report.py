"""Rank architectures on a supernet against a benchmark and write it all down."""

import csv
import json
import math
from pathlib import Path

import numpy as np

from kerasnas.benchmarks import check_benchmark
from kerasnas.evaluation import metrics
from kerasnas.evaluation import plots
from kerasnas.evaluation.ranking import rank_architectures
from kerasnas.evaluation.ranking import record_path


def rank_and_report(
    supernet,
    benchmark,
    archs,
    data,
    output,
    bn_calibration_data=None,
    bn_calibration_steps=0,
    key="test_acc",
    title=None,
    verbose=1,
    score="accuracy",
    scored_on=None,
    classes="exact",
    dtype_policy=None,
    overwrite=False,
    described=None,
):
    """Scores `archs` on `supernet`, compares with `benchmark`, writes files.

    Every result is appended to `output/scores.csv` as it is computed (a
    rerun resumes, see `rank_architectures`, when the weights, images and
    settings are those that produced them: `scores.json` records them, and
    `report.json` holds that record under `"scored_with"`). The report compares the
    supernet's ranking with the truth and, next to it, the training-free
    baselines of the benchmark (parameter count and FLOPs of each network):
    on NAS-Bench-201 they are strong, so a supernet's ranking means
    something only next to them.

    Writes, under `output/`: `scores.csv` (arch, accuracy, loss, seconds),
    `ranking.csv` (arch, predicted, true, params, flops), `report.json`
    (`kerasnas.evaluation.ranking_report` with baselines, plus the
    settings) and `scatter.png` (predicted vs true, one panel per
    predictor).

    Args:
        supernet: a trained `kerasnas.Supernet`.
        benchmark: ground truth with `table(archs, key)`, e.g.
            `kerasnas.benchmarks.NasBench201`.
        archs: architectures (strings or dicts).
        data: the evaluation dataset (finite, batched).
        output: output directory.
        bn_calibration_data, bn_calibration_steps: see
            `rank_architectures`.
        key: the benchmark's column used as truth.
        title: title of the scatter plot.
        verbose: progress bar (1) or not (0).
        score: what ranks the architectures: `"accuracy"` or `"loss"`
            (lower loss ranks higher), see `rank_architectures`.
        scored_on: optional description of the scoring images (e.g.
            `{"split": "search_valid", "images": 2543, "held_out": True}`),
            kept in the report.
        classes: equivalence classes scored once each (see
            `rank_architectures`); recorded in the report.
        dtype_policy: the dtype policy of the scoring (None: the
            supernet's), see `rank_architectures`; recorded in the report.
        overwrite, described: see `rank_architectures` (discard the scores
            in `output`; the inputs named for people, e.g. the checkpoint).

    Returns:
        The report dict (as in `report.json`).
    """
    check_benchmark(benchmark, supernet.space, "supernet")  # before anything is written
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    space = supernet.space
    strings = [a if isinstance(a, str) else space.to_string(a) for a in archs]
    true = benchmark.table(strings, key)
    predicted = rank_architectures(
        supernet, strings, data,
        bn_calibration_data=bn_calibration_data,
        bn_calibration_steps=bn_calibration_steps,
        results_path=output / "scores.csv",
        verbose=verbose,
        score=score,
        classes=classes,
        dtype_policy=dtype_policy,
        overwrite=overwrite,
        described=described,
    ) * (100.0 if score == "accuracy" else 1.0)
    baselines = {name: benchmark.table(strings, name) for name in ("params", "flops")}
    report = metrics.ranking_report(predicted, true, baselines=baselines)
    report["truth"] = key
    report[f"mean_predicted_{score}"] = float(np.mean(predicted) if score == "accuracy" else -np.mean(predicted))
    report["bn_calibration_steps"] = int(bn_calibration_steps or 0)
    report["score"] = score
    report["classes"] = classes
    report["score_dtype_policy"] = dtype_policy
    if scored_on is not None:
        report["scored_on"] = dict(scored_on)
    report["scored_with"] = json.loads(Path(record_path(output / "scores.csv")).read_text())
    with open(output / "ranking.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "predicted", "true", "params", "flops"])
        for row in zip(strings, predicted, true, baselines["params"], baselines["flops"]):
            writer.writerow([row[0]] + [repr(float(v)) for v in row[1:]])
    (output / "report.json").write_text(json.dumps(json_safe(report), indent=2) + "\n")
    plots.plot_ranking_scatter(
        predicted, true, output / "scatter.png", title=title, baselines=baselines,
        pred_label="supernet accuracy (%)" if score == "accuracy" else "supernet -loss", true_label=f"benchmark {key.replace('_', ' ')} (%)",
    )
    return report


def format_report(report, ks=(0.05,)):
    """A plain-text table of a `ranking_report` with its baselines."""
    columns = ["kendall_tau", "spearman"] + [f"precision_at_top_{_percent(k)}" for k in ks]
    rows = [("supernet", report)] + [
        (f"baseline: {name}", values) for name, values in report.get("baselines", {}).items()
    ]
    width = max(len(name) for name, _ in rows) + 2
    lines = [" " * width + "".join(f"{c:>26}" for c in columns)]
    for name, values in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{_fmt(values.get(c)):>26}" for c in columns))
    return "\n".join(lines)


def _percent(k):
    value = k * 100
    return f"{value:g}%"


def _fmt(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def json_safe(value):
    """`value` with numpy scalars as Python numbers and NaN as None (JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
