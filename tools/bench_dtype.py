"""float32 vs mixed_bfloat16 training speed of the NB201 child and supernet.

In one process, on the same random batches: the child of `--arch` and the
SPOS supernet (uniform paths), each built once in float32 and once with
`dtype_policy="mixed_bfloat16"` (the child by `supernet.extract`, so the
four models carry the same weights). Rounds interleave the four models in
an order rotated from round to round; each round times `--steps` training
steps of each (after `--warmup` untimed ones in round 0, which also hold
the trace). Reports images/s (median over rounds) and the ratios
bfloat16 / float32 for the child and the supernet, with every round's
ratio so that noise is visible.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_dtype.py --rounds 5
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_dtype.py --quick --json out.json
```
"""

import argparse
import json
import statistics
import time

import numpy as np

DEFAULT_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
POLICIES = ("float32", "mixed_bfloat16")


def timing_parser(description):
    """The arguments every interleaved step-time benchmark takes (network
    size, steps, rounds, `--quick`, `--json`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="C=8, N=1, 2 rounds of 3 steps")
    parser.add_argument("--json", metavar="OUT")
    return parser


def parse_timing_args(parser, argv=None):
    args = parser.parse_args(argv)
    if args.quick:
        args.channels, args.cells, args.rounds, args.steps, args.warmup = 8, 1, 2, 3, 1
    return args


def parse_args(argv=None):
    parser = timing_parser(__doc__.split("\n")[0])
    parser.add_argument("--arch", default=DEFAULT_ARCH)
    return parse_timing_args(parser, argv)


def build(args):
    import keras

    import kerasnas

    space = kerasnas.spaces.NasBench201(num_classes=10, channels=args.channels,
                                        cells_per_stage=args.cells)
    arch = space.from_string(args.arch)
    models = {}
    for policy in POLICIES:
        supernet = space.build_supernet(seed=0, bn="standard", weight_decay=5e-4, clip_norm=5.0,
                                        dtype_policy=policy)
        if models:
            supernet.set_weights(models["supernet float32"].get_weights())
        child = supernet.extract(arch)
        for model in (supernet, child):
            model.compile(
                optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
        models[f"child {policy}"] = child
        models[f"supernet {policy}"] = supernet
    return models


def dataset(args, batches=8):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * args.batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, len(x)).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size).repeat().prefetch(2)


def time_steps(model, data, steps):
    """Seconds per step of `steps` training steps (one `fit` call)."""
    import keras

    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Timer()])
    return times


def interleaved_rounds(models, data, args, value, unit):
    """`{name: [value(median step seconds) per round]}`: after an untimed
    trace + warm-up of every model, `args.rounds` rounds each timing
    `args.steps` steps of every model, in an order rotated per round."""
    names = list(models)
    for name in names:  # trace + warm-up, untimed
        time_steps(models[name], data, args.warmup)
    per_round = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            per_round[name].append(value(statistics.median(time_steps(models[name], data, args.steps))))
        print(f"round {r}: " + ", ".join(f"{n} {per_round[n][-1]:.1f} {unit}" for n in names), flush=True)
    return per_round


def main(argv=None):
    args = parse_args(argv)
    models = build(args)
    data = dataset(args)
    names = list(models)
    per_round = interleaved_rounds(models, data, args, lambda step: args.batch_size / step, "img/s")
    results = {"args": vars(args), "images_per_s": per_round, "median": {}, "ratios": {}}
    for name in names:
        results["median"][name] = statistics.median(per_round[name])
    for kind in ("child", "supernet"):
        rounds = [b / a for a, b in zip(per_round[f"{kind} float32"], per_round[f"{kind} mixed_bfloat16"])]
        results["ratios"][f"{kind} bfloat16/float32"] = {
            "of_medians": results["median"][f"{kind} mixed_bfloat16"] / results["median"][f"{kind} float32"],
            "per_round": rounds,
        }
    print(f"C={args.channels} N={args.cells} batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps")
    for name in names:
        print(f"  {name:<26} {results['median'][name]:8.1f} img/s")
    for key, value in results["ratios"].items():
        rounds = " ".join(f"{v:.2f}" for v in value["per_round"])
        print(f"  {key:<26} {value['of_medians']:.2f}  (rounds: {rounds})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
