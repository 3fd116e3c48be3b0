"""DCNAS-style local weight sharing on NAS-Bench-201 (Pan et al., CVPR 2022).

Trains a SPOS supernet and DCNAS supernets (`kerasnas.dcnas`: M = 2 weight
copies per candidate, a pool of architectures with per-layer sharing
states, meta networks, Algorithm 1's layer-by-layer pair training and
clustering) and the ablations, each ranked on the same architectures with
`nb201_rank`'s harness on images the supernets never trained on. Reports KT,
Spearman and P@Top5% (mean ± std over seeds), the parameter-count row and
the best architecture each ranking puts first.

Variants:
- `spos`: global sharing (DCNAS with M = 1 is bitwise this; tested);
- `dcnas`: Algorithm 1 with the meta network's lambda in Eq. 8;
- `random`: random sharing states at the same decision points, no pair
  steps, no meta network (the paper's "Random Assign");
- `lambda0`, `lambda1`: Algorithm 1 with lambda fixed in Eq. 8 (the meta
  network still learns and drives the clustering).

The paper gives no code: what is our reading is marked "DCNAS-style" and
listed in the README's DCNAS section (the feature the meta network sees,
the lambda scaling, the nearest-member rule for architectures outside the
pool, the column standardization before K-means, eta).

Presets: `smoke`; `cifar10-subset` (the held-out CPU proxy of
`nb201_rank`, 150 epochs = T_w 10 + 6 layers x 2 x T 8 + T_f 44, a pool of
1,000 where the paper has 10,000: the decisions run one forward pass per
member); `paper` (NB201 on CIFAR-10 for 150 epochs as the paper's
Figure 3, its ImageNet schedule's T_w 10, T_f 44, tau 20, M 2, N 10,000,
with T 8 to fill 150 epochs over NB201's 6 layers).

Outputs: `output/<variant>/seed_<s>/` (each run: `nb201_rank`'s files plus
`dcnas_decisions.jsonl`, a line per decision), `output/table.json`, `output/table.txt`.

Usage:

```shell
python recipes/nb201_dcnas.py --preset cifar10-subset --seeds 0 1 2 --resume
kerasnas train --recipe nb201-dcnas --preset smoke
```
"""

import csv
from pathlib import Path

import numpy as np

from kerasnas import data as nas_data
from kerasnas.recipes import nb201_pada
from kerasnas.recipes import nb201_rank
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import drop_option
from kerasnas.recipes.common import write_json

VARIANTS = ("spos", "dcnas", "random", "lambda0", "lambda1")
METRICS = ("kendall_tau", "spearman", "precision_at_top_5%")

# The DCNAS options of a run (`config["dcnas"]`).
DCNAS = dict(
    copies=2, pool_size=10000, warmup_epochs=10, layer_epochs=8, final_epochs=44,
    assignment="cluster", pair_lambda=None, lambda_scale="lr", meta_learning_rate=0.1,
    meta_interval=20, representatives=4, feature_steps=1, feature_choice="last",
)

PRESETS = {
    # Plumbing: one epoch per phase, a pool of 50.
    "smoke": dict(
        nb201_rank.PRESETS["smoke"], epochs=14, num_archs=20,
        dcnas=dict(DCNAS, pool_size=50, warmup_epochs=1, layer_epochs=1, final_epochs=1),
    ),
    "cifar10-subset": dict(nb201_rank.PRESETS["cifar10-subset"], dcnas=dict(DCNAS, pool_size=1000)),
    "paper": dict(nb201_rank.PRESETS["paper"], epochs=150, dcnas=dict(DCNAS)),
}


def supernet_options(config):
    """`build_supernet` options of a DCNAS run."""
    from kerasnas.dcnas import DCNASSupernet

    options = config["dcnas"]
    extra = {}
    if options.get("pool") == "trained":  # absent from runs made before the option: the whole space
        excluded = set(config.get("exclude_ops") or [])
        from kerasnas.spaces import NB201_EDGES, NB201_OPS

        extra["pool_options"] = {e: [o for o in NB201_OPS if o not in excluded] for e in NB201_EDGES}
    return dict(
        supernet_class=DCNASSupernet, local_copies=options["copies"], pool_size=options["pool_size"], **extra,
        lambda_scale=options["lambda_scale"], meta_learning_rate=options["meta_learning_rate"],
        meta_interval=options["meta_interval"], pair_lambda=options["pair_lambda"],
        feature_choice=options["feature_choice"],
    )


def schedule(config, output):
    """The `DCNASSchedule` of a DCNAS run (decisions on training batches,
    logged to `output/dcnas_decisions.jsonl`)."""
    from kerasnas.dcnas import DCNASSchedule

    options = config["dcnas"]
    data = nas_data.load(
        config["data"], config["train_split"], batch_size=config["batch_size"],
        image_size=config["image_size"], limit=config["limit"],
    )
    return DCNASSchedule(
        options["warmup_epochs"], options["layer_epochs"], options["final_epochs"], data,
        assignment=options["assignment"], representatives=options["representatives"],
        feature_steps=options["feature_steps"], seed=config["seed"], verbose=1,
        log_path=Path(output) / "dcnas_decisions.jsonl",
    )


def variant_config(config, variant, num_layers=6):
    """The config of `variant` (`nb201_rank`'s, or any recipe training with
    `nb201_spos.build_supernet`) for a space of `num_layers` layers."""
    if variant not in VARIANTS:
        raise ValueError(
            f"Invalid value for argument `variants`. Expected any of {list(VARIANTS)}. "
            f"Received: {variant!r}"
        )
    if variant == "spos":
        return dict(config, method="spos", dcnas=None)
    options = dict(config["dcnas"])
    options.update({
        "dcnas": {},
        "random": {"assignment": "random"},
        "lambda0": {"pair_lambda": 0.0},
        "lambda1": {"pair_lambda": 1.0},
    }[variant])
    total = options["warmup_epochs"] + 2 * options["layer_epochs"] * num_layers + options["final_epochs"]
    if total != config["epochs"]:
        raise ValueError(
            f"Invalid value for argument `epochs`. Expected T_w + 2 * T * {num_layers} + T_f = "
            f"{total} epochs for the DCNAS schedule {options['warmup_epochs']}, "
            f"{options['layer_epochs']}, {options['final_epochs']}. Received: epochs={config['epochs']}"
        )
    return dict(config, method="spos", dcnas=options)


def run(config, variants, seeds, output, resume=False, overwrite=False, verbose=2):
    """Runs every variant for every seed (seed by seed); returns the table."""
    output = Path(output)
    configs = {variant: variant_config(config, variant) for variant in variants}
    results = {variant: {} for variant in variants}
    for seed in seeds:
        for variant in variants:
            directory = output / variant / f"seed_{seed}"
            results[variant][seed] = nb201_rank.run(
                dict(configs[variant], seed=seed), directory, resume=resume, overwrite=overwrite,
                verbose=verbose,
            )
    table = nb201_pada.make_table(results, METRICS)
    table["best"] = {
        variant: {str(seed): best_found(output / variant / f"seed_{seed}") for seed in seeds}
        for variant in variants
    }
    write_json(output / "table.json", table)
    text = nb201_pada.format_table(table) + "\n" + format_best(table["best"])
    (output / "table.txt").write_text(text + "\n")
    print("\n" + text)
    return table


def best_found(directory):
    """`{"arch", "true"}`: the architecture a run's ranking puts first and
    its NAS-Bench-201 CIFAR-10 test accuracy (from `ranking.csv`)."""
    with open(Path(directory) / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    best = max(rows, key=lambda r: float(r["predicted"]))
    return {"arch": best["arch"], "true": float(best["true"])}


def format_best(best):
    """Per variant: the benchmark accuracy of the architecture ranked first
    (mean over seeds, and per seed)."""
    lines = ["Best architecture found (ranked first): NAS-Bench-201 CIFAR-10 test accuracy"]
    for variant, per_seed in best.items():
        values = [b["true"] for b in per_seed.values()]
        lines.append(
            f"  {variant:<10}{np.mean(values):7.2f}  ("
            + ", ".join(f"seed {s}: {b['true']:.2f}" for s, b in per_seed.items()) + ")"
        )
    return "\n".join(lines)


def build_parser(prog="nb201_dcnas"):
    parser = nb201_rank.build_parser(prog)
    parser.description = "DCNAS-style local weight sharing on NAS-Bench-201: SPOS vs DCNAS and its ablations."
    for action in parser._actions:
        if action.dest == "preset":
            action.choices = sorted(PRESETS)
    drop_option(parser, "method")
    arg = parser.add_argument
    arg("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="supernets to compare")
    add_dcnas_arguments(parser)
    return parser


def add_dcnas_arguments(parser):
    """The flags that override a preset's DCNAS options (`dcnas_config`)."""
    arg = parser.add_argument_group("DCNAS").add_argument
    arg("--pool-size", type=nb201_spos._positive_int, help="architectures in the DCNAS pool (N)")
    arg("--copies", type=nb201_spos._positive_int, help="weight copies per candidate (M)")
    arg("--warmup-epochs", type=_non_negative_int, help="T_w: ordinary epochs before the first layer")
    arg("--layer-epochs", type=nb201_spos._positive_int, help="T: pair epochs per layer, then as many ordinary ones")
    arg("--final-epochs", type=_non_negative_int, help="T_f: ordinary epochs after the last layer")
    arg("--pool", choices=("trained", "full"), help="draw the pool from the options the supernet trains "
        "(without --exclude-ops; issue #35) or from the whole space (the default, as before)")
    arg("--lambda-scale", choices=("lr", "paper"), help="Eq. 8's lambda times the learning rate (lr, "
        "the default) or as written (paper)")


def dcnas_config(config, args):
    """`config` with its DCNAS options overridden by the flags given."""
    options = dict(config["dcnas"])
    for key in ("pool_size", "copies", "warmup_epochs", "layer_epochs", "final_epochs", "lambda_scale"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.pool == "trained":  # recorded only when asked: earlier runs resume as they were
        options["pool"] = "trained"
    return dict(config, dcnas=options)


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise ValueError(f"expected an int >= 0, received {text!r}")
    return value


def main(argv=None, prog="nb201_dcnas"):
    """Command-line entry point; returns the table dict."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = dcnas_config(nb201_spos.config_from_args(args, PRESETS), args)
    output = Path(args.output or Path("runs") / "nb201_dcnas" / args.preset)
    seeds = args.seeds or [config["seed"]]
    try:
        return run(config, args.variants, seeds, output, args.resume, args.overwrite, args.verbose)
    except ValueError as error:
        parser.error(str(error))
