"""Seconds per search trial on a supernet: `OneShotTuner` vs the bare scorer.

One trial of `kerasnas.search.OneShotTuner` = the oracle proposes an
architecture (evolution), the supernet scores it with BN recalibration
(`ArchitectureScorer.score`), and keras-tuner records the trial (JSON files
of the trial and the oracle, written on every trial). This measures, in one
run on one supernet (NB201 C=16, N=5 by default, `bn="standard"`), the
same 1,000 evaluation images and the same calibration batches:

- tuner: seconds per trial of `OneShotTuner.search` with `EvolutionOracle`;
- scorer: seconds per architecture of `ArchitectureScorer.score` alone
  (the floor: what the trial's compute costs);

in alternating rounds (tuner / scorer / tuner / ...) on fresh
architectures, and reports both and their ratio (keras-tuner's overhead).

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_search.py
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_search.py --quick
```
"""

import argparse
import json
import statistics
import tempfile
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
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="C=8, N=1, 1 round (a smoke run)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.channels, args.cells, args.rounds, args.per_round = 8, 1, 1, 4
    return args


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    import kerasnas
    from kerasnas.evaluation import ArchitectureScorer
    from kerasnas.search import EvolutionOracle, OneShotTuner

    data = np.load(SUBSET)
    x = data["x_test"][: args.images].astype("float32") / 255.0
    y = data["y_test"][: args.images].astype("int64")
    xc = data["x_train"][: args.calibration_steps * args.calibration_batch_size].astype("float32") / 255.0
    yc = data["y_train"][: len(xc)].astype("int64")
    valid = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.eval_batch_size)
    calibration = tf.data.Dataset.from_tensor_slices((xc, yc)).batch(args.calibration_batch_size)

    space = kerasnas.spaces.NasBench201(num_classes=10, channels=args.channels, cells_per_stage=args.cells)
    supernet = space.build_supernet(seed=0, bn="standard")
    total = args.rounds * args.per_round
    oracle = EvolutionOracle(space, population_size=max(4, args.per_round), sample_size=2,
                             max_trials=1, seed=0)
    directory = tempfile.mkdtemp()
    tuner = OneShotTuner(supernet, oracle, valid, bn_calibration_data=calibration,
                         bn_calibration_steps=args.calibration_steps,
                         directory=directory, project_name="bench")
    tuner.search(verbose=0)  # warm-up: traces the evaluation and the calibration
    rng = np.random.default_rng(1)
    timings = {"tuner": [], "scorer": []}
    with ArchitectureScorer(supernet, valid, calibration, args.calibration_steps) as scorer:
        scorer.score(space.sample(rng))  # warm-up
        for round_ in range(args.rounds):
            for kind in ("tuner", "scorer") if round_ % 2 == 0 else ("scorer", "tuner"):
                start = time.perf_counter()
                if kind == "tuner":
                    oracle.max_trials = len(oracle.trials) + args.per_round
                    tuner.search(verbose=0)
                else:
                    for _ in range(args.per_round):
                        scorer.score(space.sample(rng))
                timings[kind].append((time.perf_counter() - start) / args.per_round)
                print(f"round {round_}: {kind:<6} {timings[kind][-1]:.3f} s per architecture", flush=True)
    result = {
        "config": vars(args),
        "tuner_s_per_trial": statistics.median(timings["tuner"]),
        "scorer_s_per_arch": statistics.median(timings["scorer"]),
        "rounds": timings,
        "trials": len(oracle.trials),
    }
    result["ratio"] = result["tuner_s_per_trial"] / result["scorer_s_per_arch"]
    print(
        f"OneShotTuner: {result['tuner_s_per_trial']:.3f} s per trial; scorer alone: "
        f"{result['scorer_s_per_arch']:.3f} s per architecture; ratio {result['ratio']:.3f} "
        f"({total} trials per kind, median of {args.rounds} rounds)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
