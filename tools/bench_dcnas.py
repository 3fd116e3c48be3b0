"""Step time of DCNAS against SPOS on NAS-Bench-201, and the cost of one
clustering decision against one epoch.

In one process, on the same random batches: a SPOS supernet and DCNAS
supernets (M = 2, same initial weights) in an ordinary step (phase -1:
random copies, swapped in the graph), in a pair step without the meta
update (Eq. 8 only: the partner's pass and a_i's) and in a pair step with
the meta update at every step (tau = 1: Eq. 12's look-ahead pass too).
Rounds interleave the models in an order rotated from round to round (see
`bench_dtype.interleaved_rounds`). Reports median step times, the ratios
to SPOS (median of the rounds' ratios), the meta update's share of a pair
step at the paper's tau = 20, and the time of one decision
(`DCNASSchedule.decide`: a forward pass per pool member, K-means, Eq. 7)
against one epoch of `--epoch-steps` ordinary steps.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_dcnas.py --rounds 5
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_dcnas.py --quick --pool-size 200 --json out.json
```
"""

import json
import statistics
import time

from bench_dtype import dataset
from bench_dtype import interleaved_rounds
from bench_dtype import parse_timing_args
from bench_dtype import timing_parser

MODELS = ("spos", "dcnas_ordinary", "dcnas_pair", "dcnas_pair_meta")


def parse_args(argv=None):
    parser = timing_parser(__doc__.split("\n")[0])
    parser.add_argument("--pool-size", type=int, default=1000, help="pool of the timed decision")
    parser.add_argument("--epoch-steps", type=int, default=80, help="steps of an epoch (proxy: 80)")
    return parse_timing_args(parser, argv)


def build(args):
    import keras

    import kerasnas
    from kerasnas.dcnas import DCNASSupernet

    space = kerasnas.spaces.NasBench201(num_classes=10, channels=args.channels, cells_per_stage=args.cells)
    models = {}
    for name in MODELS:
        keras.utils.set_random_seed(0)
        options = dict(seed=0, bn="batch", weight_decay=5e-4, clip_norm=5.0)
        if name != "spos":
            options.update(
                supernet_class=DCNASSupernet, pool_size=args.pool_size,
                meta_interval=1 if name == "dcnas_pair_meta" else 10**9,
            )
        supernet = space.build_supernet(**options)
        if name in ("dcnas_pair", "dcnas_pair_meta"):
            supernet.phase.assign(2)
        supernet.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        models[name] = supernet
    return models


def time_decision(supernet, data, layer=3):
    """Seconds of one `DCNASSchedule.decide` on `supernet`'s pool (the
    feature and loss functions traced first, untimed)."""
    from kerasnas.dcnas import DCNASSchedule

    schedule = DCNASSchedule(0, 1, 0, data, representatives=4, verbose=0)
    schedule.set_model(supernet)
    batch = list(data.take(1))
    # Trace both functions on one member, then time a whole decision.
    function = schedule._function("_feature_function", features=True)
    function(batch[0][0], batch[0][1], schedule._arch_input(0))
    schedule.loss(0, layer, 0, batch)
    start = time.perf_counter()
    schedule.decide(layer)
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    models = build(args)
    data = dataset(args)
    names = list(models)
    per_round = interleaved_rounds(models, data, args, lambda step: step, "s")
    results = {"args": vars(args), "step_seconds": per_round, "median": {}, "ratios": {}}
    for name in names:
        results["median"][name] = statistics.median(per_round[name])

    def ratio(a, b):
        return statistics.median([y / x for x, y in zip(per_round[a], per_round[b])])

    for name in names[1:]:
        results["ratios"][f"{name}/spos"] = ratio("spos", name)
    meta = results["median"]["dcnas_pair_meta"] - results["median"]["dcnas_pair"]
    pair_tau20 = results["median"]["dcnas_pair"] + meta / 20
    results["meta_share_tau20"] = (meta / 20) / pair_tau20
    results["pair_tau20/spos"] = pair_tau20 / results["median"]["spos"]
    decision = time_decision(models["dcnas_ordinary"], data)
    epoch = args.epoch_steps * results["median"]["dcnas_ordinary"]
    results["decision_seconds"] = decision
    results["decision/epoch"] = decision / epoch

    print(f"C={args.channels} N={args.cells} batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps")
    for name in names:
        print(f"  {name:<16} {1000 * results['median'][name]:8.1f} ms/step")
    for key, value in results["ratios"].items():
        print(f"  {key:<22} {value:.3f} (median of rounds)")
    print(f"  pair step at tau=20 / spos: {results['pair_tau20/spos']:.3f}; "
          f"meta update's share of it: {100 * results['meta_share_tau20']:.1f} %")
    print(f"  one decision (pool {args.pool_size}): {decision:.1f} s = "
          f"{results['decision/epoch']:.2f} epochs of {args.epoch_steps} ordinary steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
