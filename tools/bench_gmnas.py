"""Cost of one GM-NAS gradient-matching split against training.

On one NAS-Bench-201 supernet (C=16, N=5 by default, batch 64, random
32x32 images: the cost does not depend on the pixels), measured in one run:

- epoch: seconds per training step of `fit` (after its trace), times the
  steps of one CIFAR-10 epoch of the reference (25,000 images / batch);
- split: one `GradientMatcher` split of the root, every candidate edge
  (6) x every option (5) x R repeats, each a forward + backward pass;
- the split's lower bound: that many forward/backward passes at the
  measured cost of one (a training step without the optimizer update is
  the bound we compare with; the step includes it, so the ratio is
  conservative).

Rounds alternate step timing and split timing (A/B/A) so a noisy machine
hits both alike. Reports: seconds of the split, its ratio to one epoch,
and its ratio to the lower bound (1.0 = the split does nothing but the
passes it needs).

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_gmnas.py --repeats 10
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_gmnas.py --quick --json out.json
```
"""

import argparse
import json
import statistics
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10, help="R of the timed split (reference 100)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epoch-images", type=int, default=25000)
    parser.add_argument("--quick", action="store_true", help="C=8, N=1, R=2: plumbing only")
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.quick:
        args.channels, args.cells, args.repeats, args.steps, args.rounds = 8, 1, 2, 5, 2
    import keras
    import tensorflow as tf

    import kerasnas
    from kerasnas import fewshot

    keras.utils.set_random_seed(0)
    space = kerasnas.spaces.NasBench201(num_classes=10, channels=args.channels, cells_per_stage=args.cells)
    supernet = space.build_supernet(seed=0, weight_decay=5e-4, clip_norm=5.0)
    supernet.compile(
        optimizer=keras.optimizers.SGD(0.025, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    n = args.batch_size * max(args.steps, args.repeats)
    x = rng.normal(size=(n, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, n).astype("int64")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size, drop_remainder=True).cache()
    train = data.take(args.steps)

    start = time.perf_counter()
    supernet.fit(train.take(1), epochs=1, verbose=0)
    trace_fit = time.perf_counter() - start
    matcher = fewshot.GradientMatcher(supernet, repeats=args.repeats)
    labels = list(space.labels)
    start = time.perf_counter()
    matcher.distances(labels[0], data.take(args.repeats))  # trace + warm-up
    trace_split = time.perf_counter() - start

    step_times, split_times = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        supernet.fit(train, epochs=1, verbose=0)
        step_times.append((time.perf_counter() - start) / args.steps)
        start = time.perf_counter()
        for label in labels:
            matcher.distances(label, data)
        split_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        supernet.fit(train, epochs=1, verbose=0)
        step_times.append((time.perf_counter() - start) / args.steps)
    step = statistics.median(step_times)
    split = statistics.median(split_times)
    passes = len(labels) * len(space.choices[labels[0]]) * args.repeats
    epoch = step * (args.epoch_images // args.batch_size)
    result = {
        "channels": args.channels, "cells": args.cells, "batch_size": args.batch_size,
        "repeats": args.repeats, "passes": passes,
        "seconds_per_step": step, "seconds_per_epoch": epoch,
        "split_seconds": split, "split_to_epoch": split / epoch,
        "split_to_lower_bound": split / (passes * step),
        "split_seconds_at_R100": split * 100 / args.repeats,
        "first_fit_seconds": trace_fit, "first_split_seconds": trace_split,
        "split_traces": matcher.trace_count,
        "step_times": step_times, "split_times": split_times,
    }
    print(json.dumps(result, indent=1))
    print(
        f"\nSplit of the root ({len(labels)} edges x 5 options x R={args.repeats}): {split:.1f} s = "
        f"{split / epoch:.2f} epochs of {args.epoch_images} images "
        f"(R=100: {split * 100 / args.repeats:.0f} s); {split / (passes * step):.2f}x its lower bound "
        f"of {passes} forward/backward passes at {step * 1000:.0f} ms per training step; "
        f"{matcher.trace_count} trace."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
