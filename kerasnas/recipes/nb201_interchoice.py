"""Inter-choice dependent supernet weights on NAS-Bench-201 (Laube & Zell).

Trains SPOS supernets with and without inter-choice weights (additive
bias, multiplicative bias, split weights; `kerasnas.layers.BiasChoice`,
`SplitChoice`) in two spaces, the full NB201 space without `none` and the
conv-only space (1x1 and 3x3 convolutions: 64 cells), each ranked on the
same architectures (all 64 of the conv-only space) with `nb201_rank`'s
harness, on images the supernets never trained on. Reports, per space, KT,
Spearman and P@Top5% (mean ± std over seeds), the parameter-count row, and
the improvement curves (`kerasnas.evaluation.improvement_curve`, plotted
mean ± std over seeds). The paper's claim: gains in the conv-only space,
little or none in the full space.

Variants: `spos`, `bias` (x + B[priors, op]), `mul_bias` (x * B[...]),
`bias_sum` (one vector per prior and op, summed) and `split` (one weight
copy per option of the last prior from `split_milestones` on); priors are
the reference's NB201 map (each edge depends on the edges producing its
input node).

Presets: `smoke`; `cifar10-subset` (the held-out CPU proxy of
`nb201_rank`, 100 epochs, split at epoch 40: the reference's 100 of 250);
`paper` (the reference's demo: 250 epochs, batch 256, SGD lr 0.025
momentum 0.9, wd 3e-4, cosine, 2 cells per stage, 16 channels, split at
100, CIFAR-10).

Outputs: `output/<space>/<variant>/seed_<s>/` (each run: `nb201_rank`'s
files), `output/<space>/improvement.png`, `output/table.json`,
`output/table.txt`.

Usage:

```shell
python recipes/nb201_interchoice.py --preset cifar10-subset --seeds 0 1 2 --resume
kerasnas train --recipe nb201-interchoice --preset smoke
```
"""

import csv
from pathlib import Path

import numpy as np

from kerasnas.evaluation import average_curves
from kerasnas.evaluation import improvement_curve
from kerasnas.evaluation import plot_improvement
from kerasnas.recipes import nb201_pada
from kerasnas.recipes import nb201_rank
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import drop_option
from kerasnas.recipes.common import write_json

VARIANTS = ("spos", "bias", "mul_bias", "bias_sum", "split")
DEFAULT_VARIANTS = ("spos", "bias", "mul_bias", "split")
SPACES = {
    "no-none": ["none"],
    "conv-only": ["none", "skip_connect", "avg_pool_3x3"],
}
METRICS = ("kendall_tau", "spearman", "precision_at_top_5%")

_INTERCHOICE = dict(rank_trained_space=True, interchoice_options=None)

PRESETS = {
    "smoke": dict(nb201_rank.PRESETS["smoke"], **_INTERCHOICE, epochs=2, split_milestones=[1]),
    "cifar10-subset": dict(
        nb201_rank.PRESETS["cifar10-subset"], **_INTERCHOICE, epochs=100, split_milestones=[40],
    ),
    # REFERENCE_NOTES §4: uninas' demo (s1_random_cifar + bench201 search
    # net: cell order n,n,r,n,n,r,n,n, stem 16 channels).
    "paper": dict(
        nb201_rank.PRESETS["paper"], **_INTERCHOICE, epochs=250, batch_size=256,
        learning_rate=0.025, momentum=0.9, weight_decay=3e-4, cells=2, channels=16,
        split_milestones=[100],
    ),
}


def variant_config(config, space, variant):
    """The `nb201_rank` config of `variant` in `space`."""
    if variant not in VARIANTS:
        raise ValueError(
            f"Invalid value for argument `variants`. Expected any of {list(VARIANTS)}. "
            f"Received: {variant!r}"
        )
    if space not in SPACES:
        raise ValueError(
            f"Invalid value for argument `spaces`. Expected any of {list(SPACES)}. "
            f"Received: {space!r}"
        )
    milestones = config.get("split_milestones") or []
    if variant == "split" and (not milestones or max(milestones) >= config["epochs"] or min(milestones) < 1):
        raise ValueError(
            "Invalid value for argument `split_milestones`. Expected epochs in "
            f"[1, {config['epochs']}). Received: split_milestones={milestones}"
        )
    config = dict(config)
    untrained = config.pop("split_untrained", "last_trained")
    if variant == "split":  # what an untrained key gives (SplitChoice's `untrained`; issue #35)
        config["interchoice_options"] = dict(config.get("interchoice_options") or {}, untrained=untrained)
    return dict(
        config, method="spos", exclude_ops=list(SPACES[space]),
        interchoice=None if variant == "spos" else variant,
        split_milestones=list(milestones) if variant == "split" else None,
    )


def curves_of(directory):
    """`(supernet curve, params curve)`: the improvement curves of a run's
    `ranking.csv` (predicted scores, and the parameter count, against the
    benchmark's)."""
    with open(Path(directory) / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    true = [float(r["true"]) for r in rows]
    return (
        improvement_curve([float(r["predicted"]) for r in rows], true),
        improvement_curve([float(r["params"]) for r in rows], true),
    )


def run(config, variants, spaces, seeds, output, resume=False, overwrite=False, verbose=2):
    """Runs every variant in every space for every seed; returns the table."""
    output = Path(output)
    for space in spaces:  # every config checked before anything trains
        for variant in variants:
            variant_config(config, space, variant)
    table = {"spaces": {}, "seeds": list(seeds), "variants": list(variants)}
    for space in spaces:
        results, curves = {}, {}
        for variant in variants:
            results[variant], curves[variant] = {}, []
            for seed in seeds:
                directory = output / space / variant / f"seed_{seed}"
                results[variant][seed] = nb201_rank.run(
                    dict(variant_config(config, space, variant), seed=seed), directory,
                    resume=resume, overwrite=overwrite, verbose=verbose,
                )
                supernet_curve, params_curve = curves_of(directory)
                curves[variant].append(supernet_curve)
        # Every run of a space ranks the same architectures: one params curve.
        curves["params"] = [params_curve]
        plot_improvement(
            curves, output / space / "improvement.png",
            title=f"Improvement, NB201 {space} ({len(seeds)} seeds)",
            ylabel="NB201 CIFAR-10 test accuracy, mean of top n",
        )
        space_table = nb201_pada.make_table(results, METRICS)
        space_table["improvement"] = {
            name: {
                k: [float(v) for v in values]
                for k, values in average_curves(runs).items()
            }
            for name, runs in curves.items()
        }
        table["spaces"][space] = space_table
    write_json(output / "table.json", table)
    text = format_table(table)
    (output / "table.txt").write_text(text + "\n")
    print("\n" + text)
    return table


def format_table(table):
    """Per space: `nb201_pada`'s table, then the improvement of the top 1,
    5 and 10 % of the ranking (mean over seeds)."""
    blocks = []
    for space, space_table in table["spaces"].items():
        blocks.append(f"== NB201 {space} ==")
        blocks.append(nb201_pada.format_table(space_table))
        blocks.append("Improvement of the top-n (1 best, 0 mean), mean over seeds:")
        for name, curve in space_table["improvement"].items():
            n = len(curve["n"])
            cells = "  ".join(
                f"top {k:>4.0%} {curve['improvement'][max(1, round(k * n)) - 1]:+.3f}"
                for k in (0.01, 0.05, 0.1)
            )
            blocks.append(f"  {name:<10}{cells}")
        blocks.append("")
    return "\n".join(blocks).rstrip()


def build_parser(prog="nb201_interchoice"):
    parser = nb201_rank.build_parser(prog)
    parser.description = (
        "Inter-choice dependent supernet weights on NAS-Bench-201: SPOS vs bias and split weights."
    )
    for action in parser._actions:
        if action.dest == "preset":
            action.choices = sorted(PRESETS)
    drop_option(parser, "method")
    arg = parser.add_argument
    arg("--variants", nargs="+", choices=VARIANTS, default=list(DEFAULT_VARIANTS), help="supernets to compare")
    arg("--spaces", nargs="+", choices=sorted(SPACES), default=list(SPACES), help="spaces (masks) to train and rank")
    arg("--split-milestones", type=nb201_spos._positive_int, nargs="+", help="epochs at which split weights split")
    arg("--split-untrained", choices=("last_trained", "split_state"),
        help="what a key no step trained since the split gives: the copy trained last (uninas, "
             "the default) or the copy held at the split (kerasnas before issue #35)")
    return parser


def main(argv=None, prog="nb201_interchoice"):
    """Command-line entry point; returns the table dict."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = nb201_spos.config_from_args(args, PRESETS)
    if args.split_untrained:
        config["split_untrained"] = args.split_untrained
    output = Path(args.output or Path("runs") / "nb201_interchoice" / args.preset)
    seeds = args.seeds or [config["seed"]]
    try:
        return run(config, args.variants, args.spaces, seeds, output, args.resume, args.overwrite, args.verbose)
    except ValueError as error:
        parser.error(str(error))

