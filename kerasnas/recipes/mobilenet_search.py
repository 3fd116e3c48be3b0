"""SPOS on the MobileNet (ProxylessNAS) chain space under a FLOPs budget.

Trains a `kerasnas.spaces.MobileNetSpace` supernet with `nb201_spos`'s
training (one uniform path per step, SGD with momentum, coupled weight
decay, gradient clipping, cosine learning rate, checkpoints and exact
resume) on the `search_train` half of the train split, then searches it
with regularized evolution (`kerasnas.search.EvolutionOracle` through
`OneShotTuner`: BN recalibrated per architecture, scored on the
`search_valid` half) under a FLOPs budget, and exports the winner. A
budget of `median` (the presets' default) is the median FLOPs of 100
random architectures of the space, printed; `--max-flops 30M` sets it.

The space's geometry is part of the config (`stem_filters`,
`stage_filters`, `stage_depths`, `stage_strides`, `kernel_sizes`,
`expansions`, `skip`, `last_filters`, ...). Outputs are those of
`nb201_search` (`kerasnas.recipes.search_common`).

Presets: `smoke` (digits at 8x8, two tiny stages, about two minutes on a
2-core CPU), `cifar10-subset` (the shared CIFAR-10 subset at 32x32, three
small stages) and `paper`, which wires ProxylessNAS's mobile space and
SPOS's ImageNet training (batch 1024, lr 0.5, weight decay 4e-5, 120
epochs, a 330M FLOPs budget) on TensorFlow Datasets' `imagenet2012`
(prepared in the TFDS data directory: it cannot be downloaded), streamed
from its files (`kerasnas.data.stream`), never held in memory.

Usage:

```shell
kerasnas train --recipe mobilenet-search --preset smoke --output runs/mbv2 --overwrite
python recipes/mobilenet_search.py --preset cifar10-subset --max-flops 20M
```
"""

import argparse
from pathlib import Path

import kerasnas
from kerasnas import data as nas_data
from kerasnas.recipes import nb201_search
from kerasnas.recipes import nb201_spos
from kerasnas.recipes import search_common

_SHARED = Path(__file__).resolve().parents[2].parent / "shared"

# The `MobileNetSpace` arguments in the config (besides the data's classes
# and image shape).
SPACE_KEYS = (
    "stem_filters", "stem_strides", "first_block_filters", "stage_filters",
    "stage_depths", "stage_strides", "kernel_sizes", "expansions", "skip",
    "last_filters",
)

_SPOS = dict(
    nb201_spos._SPOS,
    **dict(
        search_common.SEARCH_DEFAULTS,
        checkpoint=None,
        train_split="search_train",
        bn="standard",
        weight_decay=4e-5,
        max_flops="median",
        kernel_sizes=[3, 5, 7],
        expansions=[3, 6],
        skip=True,
    ),
)

PRESETS = {
    # 4 searchable layers (1,764 architectures), 8/16 channels, digits at
    # their native 8x8 (supernet training accuracy about 0.85): the whole
    # flow in about two minutes on a busy 2-core CPU.
    "smoke": dict(
        _SPOS, data="digits", image_size=None, batch_size=32, epochs=20,
        learning_rate=0.1, augment=False, stem_filters=8, stem_strides=1,
        first_block_filters=8, stage_filters=[8, 16], stage_depths=[2, 2],
        stage_strides=[1, 2], last_filters=32, population_size=10, sample_size=3,
        max_trials=30, bn_calibration_steps=4, top_k=5,
    ),
    # 6 searchable layers of 16-40 channels at 32x32.
    "cifar10-subset": dict(
        _SPOS, data=str(_SHARED / "data" / "cifar" / "cifar10_subset.npz"),
        image_size=None, batch_size=64, epochs=60, learning_rate=0.05,
        augment=True, stem_filters=16, stem_strides=1, first_block_filters=16,
        stage_filters=[24, 32, 40], stage_depths=[2, 2, 2], stage_strides=[2, 2, 2],
        last_filters=256, population_size=30, sample_size=6, max_trials=300,
        bn_calibration_steps=10,
    ),
    # ProxylessNAS's mobile space (`MobileNetSpace()`'s defaults) with
    # SPOS' ImageNet supernet training and search (see the module docstring).
    "paper": dict(
        _SPOS, data="imagenet2012", image_size=224, batch_size=1024, epochs=120,
        learning_rate=0.5, augment=True, stem_filters=32, stem_strides=2,
        first_block_filters=16, stage_filters=[24, 40, 80, 96, 192, 320],
        stage_depths=[4, 4, 4, 4, 4, 1], stage_strides=[2, 2, 2, 1, 2, 1],
        last_filters=1280, max_flops=330e6, bn_calibration_steps=20,
        search_batch_size=500,
    ),
}

_TRAINING_KEYS = nb201_spos._TRAINING_KEYS + ("train_split",) + SPACE_KEYS


def build_space(config):
    """`(space, steps_per_epoch)`: the `MobileNetSpace` of `config` (its
    data's classes and image shape, `SPACE_KEYS`) and the number of
    training batches per epoch."""
    num_classes, input_shape, steps_per_epoch = nb201_spos.data_geometry(config)
    space = kerasnas.spaces.MobileNetSpace(
        num_classes=num_classes, input_shape=input_shape,
        **{key: config[key] for key in SPACE_KEYS},
    )
    return space, steps_per_epoch


def run(config, output, resume=False, overwrite=False, verbose=2):
    """Trains (or loads) the supernet, searches it under the budget and
    exports the winner; returns `output/search.json`'s content."""
    if not config.get("checkpoint"):
        nas_data.info(config["data"])  # a clear ValueError for an unknown dataset
    return search_common.run(
        config, output, build_space, resume=resume, overwrite=overwrite,
        verbose=verbose, training_keys=_TRAINING_KEYS,
    )


# === Command line ===
def _int_list(text):
    values = [nb201_spos._positive_int(part) for part in text.replace(",", " ").split()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected positive ints, received {text!r}")
    return values


def build_parser(prog="mobilenet_search"):
    """The recipe's `argparse.ArgumentParser`."""
    parser = nb201_spos.build_parser(prog)
    parser.description = (
        "Train a SPOS supernet of the MobileNet (ProxylessNAS) chain space, search it "
        "with evolution under a FLOPs budget and export the best architecture."
    )
    nb201_search.restrict_parser(parser, PRESETS, "runs/mobilenet_search/<preset>")
    for action in parser._actions:
        if action.dest in ("channels", "cells"):
            action.help = argparse.SUPPRESS
        if action.dest == "bn":
            action.choices = ("standard", "batch")
    group = parser.add_argument_group("space")
    arg = group.add_argument
    arg("--stem-filters", type=nb201_spos._positive_int)
    arg("--stem-strides", type=nb201_spos._positive_int)
    arg("--first-block-filters", type=nb201_spos._positive_int)
    arg("--stage-filters", type=_int_list, help="channels of each stage, e.g. '8,16'")
    arg("--stage-depths", type=_int_list, help="searchable layers of each stage")
    arg("--stage-strides", type=_int_list, help="stride of each stage's first layer")
    arg("--kernel-sizes", type=_int_list, help="depthwise kernel sizes, e.g. '3,5,7'")
    arg("--expansions", type=_int_list, help="expansion ratios, e.g. '3,6'")
    arg("--skip", action=argparse.BooleanOptionalAction,
        help="layers after a stage's first may be skipped")
    arg("--last-filters", type=nb201_spos._positive_int)
    return search_common.add_search_arguments(parser)


def config_from_args(args):
    """The preset of `args.preset` updated with the flags that were given."""
    return nb201_spos.config_from_args(args, PRESETS)


def main(argv=None, prog="mobilenet_search"):
    """Command-line entry point; returns the search report."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    output = Path(args.output or Path("runs") / "mobilenet_search" / args.preset)
    try:
        return run(config_from_args(args), output, resume=args.resume,
                   overwrite=args.overwrite, verbose=args.verbose)
    except ValueError as error:
        parser.error(str(error))
