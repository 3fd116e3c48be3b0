"""DARTS-PT on NAS-Bench-201: DARTS argmax, PT-Mag and PT from the same supernets.

For every variant (`darts`: α trained bilevel, first order; `blank`: α fixed
at its near-uniform initialisation) and seed, trains a `DartsSupernet` on
NAS-Bench-201's `search_train` half with α updated on `search_valid`
(REFERENCE_NOTES §0.2 / §3), saves it, then selects an architecture from
that checkpoint three ways: DARTS' argmax of α (no tuning; for `blank` it
is the argmax of random noise), PT-Mag (the progressive project-and-tune
loop keeping the largest α) and PT (keeping the op whose removal hurts the
validation accuracy most), and looks each choice up in NAS-Bench-201
(CIFAR-10, CIFAR-100 and ImageNet16-120 test accuracies). The table gives
mean ± std over seeds and the mean number of parameter-free ops (skip,
pool, none) in the chosen cells: DARTS-PT's claim is that argmax α drifts
to skip-heavy cells while PT does not.

PT evaluates on the un-augmented `search_valid` images (deterministic); the
reference's valid queue carries the training augmentation.

Presets: `smoke` (digits, seconds), `cifar10-subset` (the shared 5,085
CIFAR-10 images at 16 px, C=8, N=1, 50 epochs), `paper` (REFERENCE_NOTES:
full CIFAR-10 at C=16, N=5, batch 64, 100 epochs, SGD 0.025 cosine to
0.001, PT every 5 tuning epochs).

Outputs: `output/<variant>/seed_<s>/` (config, checkpoints, history,
`supernet.keras`, `select_pt/`, `select_pt-mag/` with their checkpoints and
decision logs, the selected children `child_<method>.keras`, `result.json`),
`output/table.json` and `output/table.txt`.

Usage:

```shell
python recipes/nb201_darts_pt.py --preset cifar10-subset --seeds 0 1 2
kerasnas train --recipe nb201-darts-pt --preset smoke
```
"""

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasnas import data as nas_data
from kerasnas.benchmarks import NasBench201 as NasBench201Benchmark
from kerasnas.darts import DartsSupernet
from kerasnas.darts import PerturbationSelector
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import write_json
from kerasnas.timing import running_time

_SHARED = nb201_spos._SHARED

_DARTS = dict(
    momentum=0.9,
    weight_decay=3e-4,
    clip_norm=5.0,
    bn="search",
    seed=0,
    limit=None,
    crop_padding=4,
    min_learning_rate=0.001,
    order=1,
    arch_learning_rate=3e-4,
    arch_weight_decay=1e-3,
    train_split="search_train",
    valid_split="search_valid",
    interval=5,
    tune_epochs=None,
    tune_learning_rate=0.0025,
    criterion="accuracy",
    benchmark=str(_SHARED / "data" / "nb201"),
)

PRESETS = {
    "smoke": dict(
        _DARTS, data="digits", image_size=16, channels=4, cells=1, batch_size=64,
        epochs=3, learning_rate=0.1, augment=False, interval=1,
    ),
    "cifar10-subset": dict(
        _DARTS, data=str(_SHARED / "data" / "cifar" / "cifar10_subset.npz"),
        image_size=16, channels=8, cells=1, batch_size=64, epochs=50,
        learning_rate=0.025, augment=True, crop_padding=2,
    ),
    "paper": dict(
        _DARTS, data="cifar10", image_size=None, channels=16, cells=5, batch_size=64,
        epochs=100, learning_rate=0.025, augment=True,
    ),
}

VARIANTS = ("darts", "blank")
SELECTIONS = ("argmax", "pt-mag", "pt")
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")

_TRAINING_KEYS = nb201_spos._TRAINING_KEYS + (
    "min_learning_rate", "order", "arch_learning_rate", "arch_weight_decay",
    "train_split", "valid_split", "fix_alpha",
)


def build_supernet(space, config, steps_per_epoch):
    """The compiled `DartsSupernet` of `config` (`fix_alpha` for blank)."""
    supernet = space.build_supernet(
        supernet_class=DartsSupernet,
        seed=config["seed"],
        weight_decay=config["weight_decay"],
        clip_norm=config["clip_norm"],
        bn=config["bn"],
        order=config["order"],
        fix_alpha=config["fix_alpha"],
        arch_weight_decay=config["arch_weight_decay"],
    )
    if config["min_learning_rate"] > config["learning_rate"]:  # e.g. lowered on resume
        raise ValueError(
            "Invalid value for argument `learning_rate`. Expected at least "
            f"min_learning_rate={config['min_learning_rate']} (the cosine schedule's "
            f"floor). Received: learning_rate={config['learning_rate']}"
        )
    schedule = keras.optimizers.schedules.CosineDecay(
        config["learning_rate"],
        decay_steps=config["epochs"] * steps_per_epoch,
        alpha=config["min_learning_rate"] / config["learning_rate"],
    )
    supernet.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=config["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        arch_optimizer=keras.optimizers.Adam(
            config["arch_learning_rate"], beta_1=0.5, beta_2=0.999, epsilon=1e-8
        ),
    )
    return supernet


def _batches(config, split, seed, augment):
    """`epoch -> dataset` of one epoch of `split` (epoch-seeded)."""

    def at(epoch):
        dataset, steps = nb201_spos.train_dataset(
            config["data"], config["batch_size"], seed, epoch + 1, initial_epoch=epoch,
            augment=augment, image_size=config["image_size"], limit=config["limit"],
            crop_padding=config["crop_padding"], split=split,
        )
        # One epoch: a known length lets `fit` end it without a warning.
        return dataset.apply(tf.data.experimental.assert_cardinality(steps))

    return at


def make_selector(config, supernet, method, directory, verbose=0):
    """The `PerturbationSelector` of `config` on `supernet`: PT evaluates on
    the un-augmented `valid_split`, tuning reads epoch-seeded batches of
    `train_split` (α's of `valid_split`), checkpoints in `directory`."""
    valid = nas_data.load(
        config["data"], config["valid_split"], batch_size=256,
        image_size=config["image_size"], limit=config["limit"],
    )
    return PerturbationSelector(
        supernet, valid,
        train_data=_batches(config, config["train_split"], config["seed"] + 2, config["augment"]),
        alpha_data=_batches(config, config["valid_split"], config["seed"] + 3, config["augment"]),
        method=method, criterion=config["criterion"], interval=config["interval"],
        tune_epochs=config["tune_epochs"], learning_rate=config["tune_learning_rate"],
        momentum=config["momentum"], seed=config["seed"], directory=directory,
        verbose=verbose > 0,
    )


def run_one(config, output, resume=False, overwrite=False, verbose=2, selections=SELECTIONS):
    """Trains one supernet and selects with each of `selections` (default
    all three); returns the content of `output/result.json` (with the
    seconds and optimizer steps of training and of each selection: PT's
    tuning steps are the selection's)."""
    unknown = [m for m in selections if m not in SELECTIONS]
    if unknown or not selections:
        raise ValueError(
            f"Invalid value for argument `selections`. Expected any of {list(SELECTIONS)}. "
            f"Received: {list(selections)}"
        )
    output = Path(output)
    paths = nb201_spos.output_paths(output)
    nb201_spos._prepare_output(config, paths, resume, overwrite, _TRAINING_KEYS)
    if overwrite:
        for method in ("pt-mag", "pt"):
            shutil.rmtree(output / f"select_{method}", ignore_errors=True)
    keras.utils.set_random_seed(config["seed"])
    space, steps_per_epoch = nb201_spos.build_space(config)
    supernet = build_supernet(space, config, steps_per_epoch)
    start = running_time()
    history = nb201_spos.train(
        supernet, config, paths, resume, verbose,
        valid_split=None if config["fix_alpha"] else config["valid_split"],
    )
    train_seconds = nb201_spos.train_seconds(history, running_time() - start)
    nb201_spos._write_history(history, paths["history"], paths["history_csv"])
    supernet.save(paths["supernet"])

    benchmarks = {d: NasBench201Benchmark(config["benchmark"], dataset=d) for d in DATASETS}
    chosen = {}
    if "argmax" in selections:
        chosen["argmax"] = {"arch": supernet.derive(), "log": [], "seconds": 0.0, "steps": 0}
    for method in ("pt-mag", "pt"):
        if method not in selections:
            continue
        selected = keras.saving.load_model(paths["supernet"])
        selector = make_selector(
            config, selected, "magnitude" if method == "pt-mag" else "pt",
            output / f"select_{method}", verbose,
        )
        arch = selector.run()
        selected.extract(arch).save(output / f"child_{method}.keras")
        chosen[method] = {
            # The whole selection's, over every process that worked on it.
            "arch": arch, "log": selector.log, "seconds": selector.seconds,
            "steps": selector.tune_epochs * steps_per_epoch,
        }
    result = {"selections": {}, "paths": {k: str(v) for k, v in paths.items()}}
    for method, selection in chosen.items():
        arch = selection["arch"]
        result["selections"][method] = {
            "arch": arch,
            "arch_string": space.to_string(arch),
            "test_acc": {d: benchmarks[d].query(space.to_string(arch))["test_acc"] for d in DATASETS},
            "parameter_free_ops": parameter_free(arch),
            "decisions": selection["log"],
            "seconds": selection["seconds"],
            "steps": int(selection["steps"]),
        }
    result["alphas"] = supernet.alphas()
    result["train_seconds"] = train_seconds
    result["train_steps"] = int(steps_per_epoch * config["epochs"])
    result["config"] = config
    write_json(paths["result"], result)
    return result


def parameter_free(arch):
    """How many edges of `arch` carry a parameter-free op (skip, pool, none)."""
    return sum(op in ("skip_connect", "avg_pool_3x3", "none") for op in arch.values())


def run(config, variants, seeds, output, resume=False, overwrite=False, verbose=2):
    """Every variant for every seed; returns the table dict."""
    output = Path(output)
    results = {}
    for variant in variants:
        for seed in seeds:
            run_config = dict(config, seed=seed, fix_alpha=variant == "blank")
            results[(variant, seed)] = run_one(
                run_config, output / variant / f"seed_{seed}", resume, overwrite, verbose
            )
    table = make_table(results, variants, seeds)
    write_json(output / "table.json", table)
    text = format_table(table)
    (output / "table.txt").write_text(text + "\n")
    print("\n" + text)
    return table


def make_table(results, variants, seeds):
    rows = {}
    for variant in variants:
        for method in SELECTIONS:
            chosen = [results[(variant, s)]["selections"][method] for s in seeds]
            row = {
                d: {
                    "mean": float(np.mean([c["test_acc"][d] for c in chosen])),
                    "std": float(np.std([c["test_acc"][d] for c in chosen])),
                    "values": [c["test_acc"][d] for c in chosen],
                }
                for d in DATASETS
            }
            row["parameter_free_ops"] = float(np.mean([c["parameter_free_ops"] for c in chosen]))
            row["archs"] = [c["arch_string"] for c in chosen]
            rows[f"{variant} {method}"] = row
    return {"seeds": list(seeds), "rows": rows}


def format_table(table):
    lines = [
        f"NAS-Bench-201 test accuracy (%) of the selected cell, mean ± std over seeds {table['seeds']}",
        f"{'':<16}{'CIFAR-10':>16}{'CIFAR-100':>16}{'ImageNet16':>16}{'param-free ops':>16}",
    ]
    for name, row in table["rows"].items():
        cells = "".join(f"{row[d]['mean']:>9.2f} ± {row[d]['std']:<4.2f}" for d in DATASETS)
        lines.append(f"{name:<16}{cells}{row['parameter_free_ops']:>14.1f}/6")
    return "\n".join(lines)


def build_parser(prog="nb201_darts_pt"):
    parser = nb201_spos.build_parser(prog)
    parser.description = (
        "DARTS-PT on NAS-Bench-201: DARTS argmax, PT-Mag and PT from DARTS and fixed-α supernets."
    )
    arg = parser.add_argument
    arg("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
        help="darts (α trained) and/or blank (α fixed)")
    arg("--seeds", nargs="+", type=int, help="seeds (default: the preset's)")
    arg("--order", type=int, choices=(1, 2), help="DARTS order (1: first order)")
    arg("--interval", type=nb201_spos._positive_int, help="tuning epochs between PT decisions")
    arg("--tune-epochs", type=int, help="total tuning epochs (default: interval * (edges - 1))")
    arg("--criterion", choices=("accuracy", "loss"), help="PT's criterion")
    arg("--benchmark", help="NAS-Bench-201 ground truth (directory of JSON tables)")
    return parser


def main(argv=None, prog="nb201_darts_pt"):
    """Command-line entry point; returns the table dict."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = nb201_spos.config_from_args(args, PRESETS)
    output = Path(args.output or Path("runs") / "nb201_darts_pt" / args.preset)
    seeds = args.seeds or [config["seed"]]
    try:
        return run(config, args.variants, seeds, output, args.resume, args.overwrite, args.verbose)
    except ValueError as error:
        parser.error(str(error))
