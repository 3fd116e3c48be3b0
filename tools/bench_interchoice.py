"""Step time of inter-choice weights against SPOS on NAS-Bench-201.

In one process, on the same random batches: SPOS supernets (uniform paths,
the same initial weights) plain and with each kind of inter-choice weights
(`bias`, `mul_bias`, `bias_sum`, `split`; split weights already at their
deepest split, so that a step swaps copies whenever a key changes, the
worst case). Rounds interleave the models in an order rotated from round
to round; each round times `--steps` training steps of each (after
`--warmup` untimed ones, which also hold the trace). Reports the median
step time of each and the ratio to SPOS (the epoch-time ratio: an epoch is
a fixed number of steps), with every round's ratio so that noise is
visible. The paper reports +18-38 % epoch time for bias weights on
NAS-Bench-201.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_interchoice.py --rounds 5
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_interchoice.py --quick --json out.json
```
"""

import json
import statistics

from bench_dtype import dataset
from bench_dtype import interleaved_rounds
from bench_dtype import parse_timing_args
from bench_dtype import timing_parser

VARIANTS = ("spos", "bias", "mul_bias", "bias_sum", "split")


def parse_args(argv=None):
    parser = timing_parser(__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parse_timing_args(parser, argv)
    if "spos" not in args.variants:
        args.variants = ["spos"] + list(args.variants)
    return args


def build(args):
    import keras

    import kerasnas

    space = kerasnas.spaces.NasBench201(num_classes=10, channels=args.channels, cells_per_stage=args.cells)
    models = {}
    for variant in args.variants:
        keras.utils.set_random_seed(0)
        supernet = space.build_supernet(
            seed=0, bn="batch", weight_decay=5e-4, clip_norm=5.0,
            choices=None if variant == "spos" else kerasnas.layers.InterChoices(variant),
        )
        for layer in supernet.choice_layers():
            if isinstance(layer, kerasnas.layers.SplitChoice):
                layer.set_depth(layer.max_depth)
        supernet.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        models[variant] = supernet
    return models


def main(argv=None):
    args = parse_args(argv)
    models = build(args)
    data = dataset(args)
    names = list(models)
    per_round = interleaved_rounds(models, data, args, lambda step: step, "s")
    results = {"args": vars(args), "step_seconds": per_round, "median": {}, "ratios": {}}
    for name in names:
        results["median"][name] = statistics.median(per_round[name])
    for name in names[1:]:
        rounds = [b / a for a, b in zip(per_round["spos"], per_round[name])]
        results["ratios"][f"{name}/spos"] = {
            "of_medians": results["median"][name] / results["median"]["spos"],
            # Each round times every model within seconds of the others:
            # the median of the rounds' ratios is the least noisy figure.
            "median_of_rounds": statistics.median(rounds),
            "per_round": rounds,
        }
    print(f"C={args.channels} N={args.cells} batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps")
    for name in names:
        print(f"  {name:<10} {1000 * results['median'][name]:8.1f} ms/step")
    for key, value in results["ratios"].items():
        rounds = " ".join(f"{v:.2f}" for v in value["per_round"])
        print(f"  {key:<14} {value['median_of_rounds']:.3f} median of rounds, "
              f"{value['of_medians']:.3f} of medians  (rounds: {rounds})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
