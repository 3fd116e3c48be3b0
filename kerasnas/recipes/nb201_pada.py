"""PA&DA on NAS-Bench-201: SPOS / PA / DA / PA&DA (the paper's Table 5).

For every method and seed, trains the supernet with that sampling
(`kerasnas.recipes.nb201_rank`: same data, schedule, monitoring and
ranking), then prints a mean ± std table of Kendall tau and P@Top5% against
NAS-Bench-201 CIFAR-10 with the parameter-count baseline as a row, and draws
the KT-over-epochs curves of all methods on one plot.

Presets: `smoke`, `cifar10-subset` (the calibrated CPU proxy of
`nb201_rank`: ranked by loss on the 1,017 test images, with the same
supernets' ranking on 1,024 training images as "[fit]" rows),
`cifar10-subset-train-images` (the training-image proxy of issue #5) and `paper` (REFERENCE_NOTES §1: C=16, N=5, 250 epochs, batch
256, SGD 0.05 cosine, wd 2.5e-4, clip 5, batch-statistics BN, all 15,625
architectures on the CIFAR-10 test set with batch 512).

Measured on the `cifar10-subset` proxy (seeds 0-2, 1,000 architectures,
held-out KT by loss on the 1,017 test images, mean ± std): SPOS 0.327 ±
0.035, DA 0.414 ± 0.019, PA 0.612 ± 0.038, PA&DA 0.644 ± 0.010; parameter
count 0.594. On 1,024 training images ([fit]): 0.301, 0.348, 0.644, 0.661.
The paper's ordering SPOS < DA < PA < PA&DA holds on every seed (README).

Outputs: `output/<method>/seed_<s>/` (each run, see `nb201_rank`),
`output/table.json`, `output/table.txt` and `output/kt_over_epochs.png`.

Usage:

```shell
python recipes/nb201_pada.py --preset cifar10-subset --methods spos pada --seeds 0 1 2
kerasnas train --recipe nb201-pada --preset smoke --methods pada
```
"""

from pathlib import Path

import numpy as np

from kerasnas.evaluation import plot_metric_over_epochs
from kerasnas.recipes import nb201_rank
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import write_json

PRESETS = {name: dict(preset) for name, preset in nb201_rank.PRESETS.items()}


def run(config, methods, seeds, output, resume=False, overwrite=False, verbose=2):
    """Runs every method for every seed; returns the table dict."""
    output = Path(output)
    results = {}
    for method in methods:
        results[method] = {}
        for seed in seeds:
            results[method][seed] = nb201_rank.run(
                dict(config, method=method, seed=seed), output / method / f"seed_{seed}",
                resume=resume, overwrite=overwrite, verbose=verbose,
            )
    table = make_table(results)
    write_json(output / "table.json", table)
    text = format_table(table)
    (output / "table.txt").write_text(text + "\n")
    runs = {
        f"{method} seed {seed}": result["curve"]
        for method, by_seed in results.items() for seed, result in by_seed.items()
    }
    first = next(iter(next(iter(results.values())).values()))
    plot_metric_over_epochs(
        runs, output / "kt_over_epochs.png",
        baselines={"params": first["monitored_params_baseline"]},
        title=f"Kendall tau of {first['monitored_archs']} monitored architectures",
    )
    print("\n" + text)
    return table


METRICS = ("kendall_tau", "precision_at_top_5%", "spearman")
HEADERS = {
    "kendall_tau": "Kendall tau", "precision_at_top_5%": "P@Top5%", "spearman": "Spearman",
    "spearman_at_top_1%": "Spearman top1%", "spearman_at_top_0.2%": "Spearman top0.2%",
    "spearman_at_top_0.5%": "Spearman top0.5%", "leaf_kendall_tau": "KT in leaves",
    "leaf_best_test_acc": "leaf best acc",
}


def make_table(results, metrics=METRICS, reference="spos"):
    """`{"rows": {name: {metric: {"mean", "std", "values"}}}, "versus": ...}`
    over the `results[method][seed]` of `nb201_rank.run`; `versus`: each
    method against `reference` with the same seed (`versus`)."""
    rows = {}

    def row(reports):
        # A metric a report could not compute (None: e.g. the top 1 % of
        # too few architectures) is NaN.
        values = {
            metric: [float("nan") if r.get(metric) is None else float(r[metric]) for r in reports]
            for metric in metrics
        }
        return {
            metric: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v}
            for metric, v in values.items()
        }

    for method, by_seed in results.items():
        rows[method] = row([r["report"] for r in by_seed.values()])
        rows[method]["train_seconds"] = float(np.mean([r["train_seconds"] for r in by_seed.values()]))
        if all("train_steps" in r for r in by_seed.values()):
            rows[method]["train_steps"] = float(np.mean([r["train_steps"] for r in by_seed.values()]))
    fit = [r.get("fit_report") for by_seed in results.values() for r in by_seed.values()]
    if all(fit):
        # The same supernets ranked on training images (fit), beside them.
        for method, by_seed in results.items():
            rows[f"{method} [fit]"] = row([r["fit_report"] for r in by_seed.values()])
    first = next(iter(next(iter(results.values())).values()))["report"]
    for name, values in first.get("baselines", {}).items():
        rows[f"baseline: {name}"] = row([values])
        for stats in rows[f"baseline: {name}"].values():
            stats["std"] = 0.0
    seeds = sorted({seed for by_seed in results.values() for seed in by_seed})
    table = {"seeds": seeds, "num_archs": first["n"], "metrics": list(metrics), "rows": rows}
    if "scored_on" in first:
        table["scored_on"] = first["scored_on"]
    table["score"] = first.get("score", "accuracy")
    if all(fit):
        table["fit_scored_on"] = fit[0]["scored_on"]
    if reference in results:
        table["versus"] = {
            m: versus({name: rows[name][m]["values"] for name in results}, reference)
            for m in VERSUS_METRICS if m in metrics
        }
    return table


VERSUS_METRICS = ("kendall_tau", "spearman_at_top_1%", "leaf_kendall_tau")


def versus(values, reference="spos"):
    """Each method against `reference` run with the same seed (same data
    order and initial weights): the per-seed differences of a metric
    (mean ± std), on how many seeds it is higher, and the paired t-test's
    two-sided p-value (NaN with one seed or identical differences). A
    difference within its spread over seeds is seed noise, whatever its
    mean says.

    Args:
        values: `{method: [the metric per seed, seeds in the same order]}`.
        reference: the method the others are compared with.

    Returns:
        `{method: {"delta": {"mean", "std", "values"}, "wins", "n", "p_paired"}}`;
        empty when `reference` is not in `values`.
    """
    from scipy import stats

    if reference not in values:
        return {}
    base = np.asarray(values[reference], dtype=float)
    result = {}
    for name, own in values.items():
        if name == reference:
            continue
        own = np.asarray(own, dtype=float)
        delta = own - base
        p = float("nan")
        if len(delta) > 1 and np.all(np.isfinite(delta)) and np.ptp(delta) > 0:
            p = float(stats.ttest_rel(own, base).pvalue)
        result[name] = {
            "delta": {"mean": float(np.mean(delta)), "std": float(np.std(delta)), "values": delta.tolist()},
            "wins": int(np.sum(delta > 0)), "n": int(len(delta)), "p_paired": p, "reference": reference,
        }
    return result


def format_versus(by_metric, what="", headers=None):
    """Text lines of `{metric: versus(...)}` (nothing for empty results)."""
    lines = []
    for metric, by_method in by_metric.items():
        if not by_method:
            continue
        reference = next(iter(by_method.values())).get("reference", "the reference")
        name = (headers or HEADERS).get(metric, metric)
        lines.append(f"Against {reference} with the same seed, {what}{name}: difference "
                     "(mean ± std over seeds), seeds where higher, paired t-test p")
        for method, v in by_method.items():
            d = v["delta"]
            lines.append(f"  {method:<18}{d['mean']:>+9.3f} ± {d['std']:.3f}{v['wins']:>6d}/{v['n']}"
                         f"{v['p_paired']:>10.3f}")
        lines.append("")
    return lines


def format_table(table):
    """The table as text: mean ± std per method, baselines as rows."""
    metrics = table.get("metrics", METRICS)
    steps = any("train_steps" in row for row in table["rows"].values())
    header = f"{'':<18}" + "".join(f"{HEADERS.get(m, m):>18}" for m in metrics) + f"{'train s':>10}"
    if steps:
        header += f"{'steps':>9}"
    scored = table.get("scored_on", {}).get("label", "unrecorded images")
    lines = [
        f"{table['num_archs']} architectures, seeds {table['seeds']}, scored by "
        f"{table.get('score', 'accuracy')} on {scored}, against NAS-Bench-201 "
        "CIFAR-10 test accuracy (mean ± std over seeds)",
        header,
    ]
    if "fit_scored_on" in table:
        lines.insert(1, f"[fit] rows: the same supernets ranked on {table['fit_scored_on']['label']}")
    for name, row in table["rows"].items():
        cells = "".join(f"{row[m]['mean']:>10.3f} ± {row[m]['std']:.3f}" for m in metrics)
        seconds = f"{row['train_seconds']:>10.0f}" if "train_seconds" in row else ""
        if "train_steps" in row:
            seconds += f"{row['train_steps']:>9.0f}"
        lines.append(f"{name:<18}{cells}{seconds}")
    versus_lines = format_versus(table.get("versus", {}))
    return "\n".join(lines + ([""] + versus_lines if versus_lines else []))


def build_parser(prog="nb201_pada"):
    parser = nb201_rank.build_parser(prog)
    parser.description = "PA&DA on NAS-Bench-201: SPOS, PA, DA and PA&DA, ranked against the benchmark."
    parser.add_argument(
        "--methods", nargs="+", choices=nb201_rank.METHODS, default=list(nb201_rank.METHODS),
        help="methods to run (default: all four)",
    )
    return parser


def main(argv=None, prog="nb201_pada"):
    """Command-line entry point; returns the table dict."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    if args.method is not None:
        # Inherited from nb201_rank (one method per run): here it would be
        # silently overridden by --methods.
        parser.error(
            f"argument --method: not allowed here (it would run every method of "
            f"--methods); use --methods {args.method}"
        )
    config = nb201_spos.config_from_args(args, PRESETS)
    output = Path(args.output or Path("runs") / "nb201_pada" / args.preset)
    seeds = args.seeds or [config["seed"]]
    try:
        return run(config, args.methods, seeds, output, args.resume, args.overwrite, args.verbose)
    except ValueError as error:
        parser.error(str(error))
