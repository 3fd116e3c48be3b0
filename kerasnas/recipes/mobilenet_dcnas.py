"""DCNAS-style local weight sharing on the MobileNet chain space, searched
under a FLOPs budget.

`mobilenet_search`'s flow (train the supernet, regularized evolution with
BN recalibration on `search_valid`, export the winner) with a
`kerasnas.dcnas.DCNASSupernet` trained by Algorithm 1
(`kerasnas.dcnas.DCNASSchedule`; see `nb201_dcnas` and the README's DCNAS
section for what is our reading). `--variant` picks DCNAS, an ablation or
SPOS, one run per call.

Presets: `smoke` (digits at 8x8, two tiny stages, one epoch per phase);
`cifar10-subset` (the shared CIFAR-10 subset, `mobilenet_search`'s
space, 6 layers, 60 epochs = T_w 6 + 6 x 2 x 3 + T_f 18, a pool of 1,000);
`paper`, the paper's ImageNet setting, wired and documented though this
machine cannot run it: MBConv with kernel sizes 3, 5 and expansions 4, 5,
6 (K = 6, no skip) in L = 16 searchable layers, N = 10,000, M = 2, T_w 10,
T 3, T_f 44 (150 epochs), tau 20, SGD momentum 0.9, weight decay 4e-5, lr
0.5, batch 1,024 on TFDS' `imagenet2012` (prepared locally). Differences
from the paper: no squeeze-excitation in kerasnas' MobileNet blocks, and a
cosine learning-rate schedule where the paper anneals linearly.

Usage:

```shell
kerasnas train --recipe mobilenet-dcnas --preset smoke --output runs/mbv2_dcnas --overwrite
python recipes/mobilenet_dcnas.py --preset cifar10-subset --variant random --resume
```
"""

from pathlib import Path

from kerasnas.recipes import mobilenet_search
from kerasnas.recipes import nb201_dcnas
from kerasnas.recipes import nb201_spos
from kerasnas.recipes import search_common

_MB = mobilenet_search.PRESETS

PRESETS = {
    # 4 layers: T_w 1 + 4 x 2 x 1 + T_f 1 = 10 epochs.
    "smoke": dict(
        _MB["smoke"], epochs=10, max_trials=20,
        dcnas=dict(nb201_dcnas.DCNAS, pool_size=100, warmup_epochs=1, layer_epochs=1, final_epochs=1),
    ),
    "cifar10-subset": dict(
        _MB["cifar10-subset"], epochs=60,
        dcnas=dict(nb201_dcnas.DCNAS, pool_size=1000, warmup_epochs=6, layer_epochs=3, final_epochs=18),
    ),
    "paper": dict(
        _MB["paper"], epochs=150, kernel_sizes=[3, 5], expansions=[4, 5, 6], skip=False,
        stage_filters=[24, 40, 80, 112, 192], stage_depths=[2, 3, 4, 4, 3],
        stage_strides=[2, 2, 2, 1, 2],
        dcnas=dict(nb201_dcnas.DCNAS, pool_size=10000, warmup_epochs=10, layer_epochs=3, final_epochs=44),
    ),
}

_TRAINING_KEYS = mobilenet_search._TRAINING_KEYS + ("dcnas",)


def run(config, variant, output, resume=False, overwrite=False, verbose=2):
    """Trains the `variant` supernet, searches it, exports the winner;
    returns `output/search.json`'s content."""
    space, _ = mobilenet_search.build_space(config)
    config = nb201_dcnas.variant_config(config, variant, num_layers=len(space.labels))
    return search_common.run(
        config, output, mobilenet_search.build_space, resume=resume, overwrite=overwrite,
        verbose=verbose, training_keys=_TRAINING_KEYS,
    )


def build_parser(prog="mobilenet_dcnas"):
    parser = mobilenet_search.build_parser(prog)
    parser.description = (
        "DCNAS-style local weight sharing on the MobileNet chain space, searched with "
        "evolution under a FLOPs budget."
    )
    for action in parser._actions:
        if action.dest == "preset":
            action.choices = sorted(PRESETS)
    arg = parser.add_argument
    arg("--variant", choices=nb201_dcnas.VARIANTS, default="dcnas", help="the supernet to train")
    nb201_dcnas.add_dcnas_arguments(parser)
    return parser


def main(argv=None, prog="mobilenet_dcnas"):
    """Command-line entry point; returns the search report."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = nb201_dcnas.dcnas_config(nb201_spos.config_from_args(args, PRESETS), args)
    output = Path(args.output or Path("runs") / "mobilenet_dcnas" / args.preset / args.variant)
    try:
        return run(config, args.variant, output, args.resume, args.overwrite, args.verbose)
    except ValueError as error:
        parser.error(str(error))
