"""SPOS on NAS-Bench-201, whole: train a supernet, search it, export the winner.

The supernet trains as in `nb201_spos` (same training functions, presets
and config keys: one uniform path per step, SGD, coupled weight decay,
clipping), but on the `search_train` half of the train split, and the
architectures are scored on the other half, `search_valid` (NAS-Bench-201's
protocol), never on the test split. `--checkpoint supernet.keras` skips the
training and searches a saved supernet.

The search is regularized evolution with mutation and crossover
(`kerasnas.search.EvolutionOracle`, or `--oracle random`) through
`kerasnas.search.OneShotTuner`: every trial recalibrates the BN statistics
of its architecture on training batches and scores it on the validation
split (the SPOS protocol), under the `--max-params` / `--max-flops`
budgets. So that the recalibration means something and the exported child
runs on any batch, the presets train with `bn="search"` (affine-free BN
with moving statistics in the cells, as xautodl's search models) instead
of `nb201_spos`'s batch statistics. The top-k table shows each
architecture's supernet validation accuracy, parameters and FLOPs (of this
space's networks), and with `--benchmark` NAS-Bench-201's ground truth.

Outputs, under `output/`: what `nb201_spos` writes while training
(`config.json`, `checkpoints/`, `tensorboard/`, `history.*`,
`supernet.keras`), then `search/` (the tuner's trials), `search.json`,
`top.txt` and `best/` (`child.keras`, `saved_model/`, `architecture.json`);
see `kerasnas.recipes.search_common`. `--resume` continues an interrupted
training and then the interrupted search.

Usage:

```shell
kerasnas train --recipe nb201-search --preset smoke --output runs/smoke --overwrite
python recipes/nb201_search.py --preset cifar10-subset --output runs/search
python recipes/nb201_search.py --preset cifar10-subset --output runs/search --resume
kerasnas train --recipe nb201-search --checkpoint runs/rank/supernet.keras \\
    --preset cifar10-subset --output runs/search2 --max-params 0.5M
```
"""

from pathlib import Path

from kerasnas.recipes import nb201_spos
from kerasnas.recipes import search_common

_SHARED = Path(__file__).resolve().parents[2].parent / "shared"
_BENCHMARK = _SHARED / "data" / "nb201"

_SEARCH = dict(
    search_common.SEARCH_DEFAULTS,
    checkpoint=None,
    train_split="search_train",
    bn="search",
)

PRESETS = {
    # The whole flow in about a minute on a laptop CPU: nb201_spos' smoke
    # (digits, offline) on 719 images, in batches of 32 at lr 0.1 for 15
    # epochs (supernet training accuracy about 0.73), then 30 architectures
    # scored on the other 719.
    "smoke": dict(
        nb201_spos.PRESETS["smoke"], **dict(
            _SEARCH, epochs=15, batch_size=32, learning_rate=0.1,
            population_size=10, sample_size=3, max_trials=30,
            bn_calibration_steps=4, top_k=5,
        ),
    ),
    # nb201_rank's calibrated CPU proxy (16x16 images, no augmentation, lr
    # 0.1) on half the subset, 300 architectures scored on the other half
    # (2,543 images), NAS-Bench-201's ground truth in the table.
    "cifar10-subset": dict(
        nb201_spos.PRESETS["cifar10-subset"], **dict(
            _SEARCH, image_size=16, epochs=100, augment=False, learning_rate=0.1,
            population_size=30, sample_size=6, max_trials=300,
            bn_calibration_steps=10, benchmark=str(_BENCHMARK),
        ),
    ),
    # nb201_spos' paper training (C=16, N=5, 250 epochs, CIFAR-10 through
    # TFDS) on 25,000 images; SPOS' search: population 50, 1,000
    # architectures, BN recalibrated on 20,480 training images each.
    "paper": dict(
        nb201_spos.PRESETS["paper"], **dict(
            _SEARCH, bn_calibration_steps=80, search_batch_size=512,
            benchmark=str(_BENCHMARK) if _BENCHMARK.is_dir() else None,
        ),
    ),
}

# Config keys that must not change when a training is resumed.
_TRAINING_KEYS = nb201_spos._TRAINING_KEYS + ("train_split",)


def run(config, output, resume=False, overwrite=False, verbose=2):
    """Trains (or loads) the supernet, searches it and exports the winner;
    returns `output/search.json`'s content (`search_common.run`)."""
    return search_common.run(
        config, output, nb201_spos.build_space, resume=resume, overwrite=overwrite,
        verbose=verbose, training_keys=_TRAINING_KEYS,
    )


# === Command line ===
def build_parser(prog="nb201_search"):
    """The recipe's `argparse.ArgumentParser` (nb201_spos' flags and the search's)."""
    parser = nb201_spos.build_parser(prog)
    parser.description = (
        "Train a SPOS supernet on NAS-Bench-201, search it with evolution "
        "(BN recalibration, validation split, constraints) and export the best "
        "architecture."
    )
    restrict_parser(parser, PRESETS, "runs/nb201_search/<preset>")
    return search_common.add_search_arguments(parser)


def restrict_parser(parser, presets, default_output):
    """Adapts nb201_spos' parser: this recipe's presets and default output,
    no random-candidate selection."""
    import argparse

    for action in parser._actions:
        if action.dest == "preset":
            action.choices = sorted(presets)
        if action.dest == "num_candidates":
            action.help = argparse.SUPPRESS
        if action.dest == "output":
            action.help = f"output directory (default: {default_output})"


def config_from_args(args):
    """The preset of `args.preset` updated with the flags that were given."""
    return nb201_spos.config_from_args(args, PRESETS)


def main(argv=None, prog="nb201_search"):
    """Command-line entry point; returns the search report."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    output = Path(args.output or Path("runs") / "nb201_search" / args.preset)
    try:
        return run(config_from_args(args), output, resume=args.resume,
                   overwrite=args.overwrite, verbose=args.verbose)
    except ValueError as error:
        parser.error(str(error))
