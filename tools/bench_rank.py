"""Architectures scored per minute: `rank_architectures` vs a naive loop.

Measured in one run, on the same supernet (C=16, N=5 by default, 10
classes, `bn="standard"` so that BN recalibration does real work), the
same 1,000 evaluation images and the same 5 calibration batches of 64:

- fast: `kerasnas.evaluation.rank_architectures` (batches kept in memory,
  one trace for every architecture, calibration in place);
- naive: what one writes without it, per architecture: `supernet.extract`
  (build the child, copy the weights), compile it, recalibrate its BN
  statistics with 5 `training=True` passes, `child.evaluate(...)`.

Rounds alternate fast / naive / fast / ... on fresh architectures (no
architecture is scored twice) so that a noisy machine hits both alike; the
report gives architectures per minute of each, their ratio, and the
floating-point floor of the fast path (multiply-accumulates per
architecture and what the machine sustained).

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_rank.py
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_rank.py --quick --json out.json
```
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT.parent / "shared" / "data" / "cifar" / "cifar10_subset.npz"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--eval-batch-size", type=int, default=250)
    parser.add_argument("--calibration-steps", type=int, default=5)
    parser.add_argument("--calibration-batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fast-per-round", type=int, default=12)
    parser.add_argument("--naive-per-round", type=int, default=2)
    parser.add_argument("--grappler", choices=("auto", "on", "lean", "off"), default="auto",
                        help="the supernet's `grappler` option (auto: lean on a CPU for single-path supernets)")
    parser.add_argument("--dtype-policy", choices=("float32", "mixed_bfloat16"), default="float32",
                        help="also time the fast path scoring in this policy (a bfloat16 twin of "
                        "the float32 supernet), interleaved, with the Kendall tau of its scores "
                        "against float32 scores of the same architectures")
    parser.add_argument("--fit-steps", type=int, default=0,
                        help="train the supernet this many SPOS steps first (scores of an "
                        "untrained supernet are near chance, too flat to compare dtypes)")
    parser.add_argument("--quick", action="store_true", help="C=8, N=1, 1 round (a smoke run)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.channels, args.cells, args.rounds = 8, 1, 1
        args.fast_per_round, args.naive_per_round = 4, 1
    return args


def load_data(args):
    import tensorflow as tf
    from kerasnas import data as nas_data

    source = str(SUBSET) if SUBSET.is_file() else "digits"
    test = nas_data.load(source, "test", batch_size=args.eval_batch_size, limit=args.images)
    calibration = nas_data.load(
        source, "train", batch_size=args.calibration_batch_size, augment=True, seed=0
    ).take(args.calibration_steps)
    # Fixed tensors: both contenders see exactly the same batches.
    test = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*[
        (x.numpy(), y.numpy()) for x, y in test
    ]))).batch(args.eval_batch_size)
    calibration = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*[
        (x.numpy(), y.numpy()) for x, y in calibration
    ]))).batch(args.calibration_batch_size)
    return source, test, calibration


def naive_score(supernet, arch, test, calibration):
    """Build, compile, recalibrate and evaluate one child."""
    import keras
    import tensorflow as tf
    from kerasnas.layers import BatchNorm, calibration_scope

    child = supernet.extract(arch)
    child.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    bns = [l for l in child._flatten_layers() if isinstance(l, BatchNorm) and l.track_running_stats]
    for bn in bns:
        bn.reset_moving_stats()

    @tf.function
    def calibrate(x, weight):
        with calibration_scope(weight):
            child(x, training=True)

    for k, (x, _) in enumerate(calibration):
        calibrate(x, tf.constant(1.0 / (k + 1)))
    return child.evaluate(test, verbose=0, return_dict=True)["accuracy"]


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import kerasnas
    from kerasnas.evaluation import ArchitectureScorer

    source, test, calibration = load_data(args)
    shape = next(iter(test))[0].shape[1:]
    space = kerasnas.spaces.NasBench201(
        num_classes=10, channels=args.channels, cells_per_stage=args.cells, input_shape=tuple(shape)
    )
    keras.utils.set_random_seed(0)
    supernet = space.build_supernet(seed=0, bn="standard", grappler=args.grappler)
    if args.fit_steps:
        from kerasnas import data as nas_data

        supernet.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        train = nas_data.load(source, "train", batch_size=64, augment=True, seed=1).repeat()
        supernet.fit(train, steps_per_epoch=args.fit_steps, epochs=1, verbose=0)
    other = args.dtype_policy if args.dtype_policy != "float32" else None
    rng = np.random.default_rng(0)
    per_round = args.fast_per_round * (2 if other else 1) + args.naive_per_round
    needed = args.rounds * per_round + 2
    archs, seen = [], set()
    while len(archs) < needed:
        arch = space.sample(rng)
        if space.to_string(arch) not in seen:
            seen.add(space.to_string(arch))
            archs.append(arch)

    # The fast path's one-time set-up (materializing batches, first trace)
    # is timed apart and included in its rate below.
    start = time.perf_counter()
    scorer = ArchitectureScorer(supernet, test, calibration, args.calibration_steps)
    with scorer:
        scorer.score(archs.pop())
    setup = time.perf_counter() - start
    print(f"fast path set-up (batches + first trace + 1 arch): {setup:.1f} s", flush=True)
    scorers = {"fast": scorer}
    if other:
        start = time.perf_counter()
        scorers["fast_" + other] = ArchitectureScorer(
            supernet, test, calibration, args.calibration_steps, dtype_policy=other
        )
        with scorers["fast_" + other]:
            scorers["fast_" + other].score(archs.pop())
        print(f"{other} fast path set-up (twin + first trace + 1 arch): "
              f"{time.perf_counter() - start:.1f} s", flush=True)

    times = {**{kind: [] for kind in scorers}, "naive": []}
    checks = []
    pairs = []  # (float32 loss, other-dtype loss) of the same architectures
    kinds = [(kind, args.fast_per_round) for kind in scorers] + [("naive", args.naive_per_round)]
    for r in range(args.rounds):
        for kind, count in (kinds if r % 2 == 0 else kinds[::-1]):
            batch = [archs.pop() for _ in range(count)]
            start = time.perf_counter()
            if kind in scorers:
                with scorers[kind]:
                    results_ = [scorers[kind].score(a) for a in batch]
                scores = [a for a, _ in results_]
            else:
                scores = [naive_score(supernet, a, test, calibration) for a in batch]
            elapsed = time.perf_counter() - start
            times[kind].append(elapsed / count)
            print(f"round {r}: {kind:5s} {count:3d} archs, {elapsed / count:6.2f} s/arch", flush=True)
            if kind == "naive":
                # The two paths must agree on what they measure.
                with scorer:
                    checks += [abs(scorer.score(a)[0] - s) for a, s in zip(batch, scores)]
            elif kind != "fast":  # the same architectures' float32 losses (untimed)
                with scorer:
                    pairs += [(scorer.score(a)[1], loss) for a, (_, loss) in zip(batch, results_)]
    fast = statistics.median(times["fast"])
    naive = statistics.median(times["naive"])
    macs = statistics.mean(
        kerasnas.spaces.NasBench201(
            num_classes=10, channels=args.channels, cells_per_stage=args.cells, input_shape=tuple(shape)
        ).flops(a)
        for a in [space.sample(s) for s in range(200)]
    )
    images = args.images + args.calibration_steps * args.calibration_batch_size
    results = {
        "source": source,
        "grappler": args.grappler,
        "channels": args.channels,
        "cells": args.cells,
        "images": args.images,
        "calibration": f"{args.calibration_steps} x {args.calibration_batch_size}",
        "fast_s_per_arch": fast,
        "naive_s_per_arch": naive,
        "fast_archs_per_minute": 60.0 / fast,
        "fast_archs_per_minute_incl_setup": 60.0 * (len(times["fast"]) * args.fast_per_round + 1)
        / (sum(t * args.fast_per_round for t in times["fast"]) + setup),
        "naive_archs_per_minute": 60.0 / naive,
        "speedup": naive / fast,
        "max_accuracy_difference_fast_vs_naive": max(checks) if checks else None,
        "fit_steps": args.fit_steps,
        "mean_macs_per_image": macs,
        "sustained_gmac_per_s": macs * images / fast / 1e9,
        "load_average": os.getloadavg(),
    }
    if other:
        from scipy.stats import kendalltau

        slow = statistics.median(times["fast_" + other])
        a, b = np.array(pairs).T
        results.update({
            f"{other}_s_per_arch": slow,
            f"{other}_archs_per_minute": 60.0 / slow,
            f"{other}_vs_float32_speedup": fast / slow,
            f"{other}_vs_float32_loss_kendall_tau": float(kendalltau(a, b)[0]),
            f"{other}_vs_float32_max_relative_loss_difference": float(np.max(np.abs(b - a) / np.abs(a))),
            "dtype_pairs": len(pairs),
        })
    print(json.dumps(results, indent=2))
    print(
        f"\nfast {results['fast_archs_per_minute']:.1f} archs/min vs naive "
        f"{results['naive_archs_per_minute']:.1f} archs/min: {results['speedup']:.1f}x "
        f"(goal >= 60 archs/min at C=16 N=5). At {macs / 1e6:.1f} M MACs per image, "
        f"{images} images per architecture need {macs * images / 1e9:.1f} GMAC; this machine "
        f"sustained {results['sustained_gmac_per_s']:.1f} GMAC/s."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
