"""Epoch time of PA&DA against plain SPOS, measured in one run.

Both supernets are built from the same recipe config (`nb201_rank`'s
`cifar10-subset` preset by default, overridable below), warmed up by one
epoch each (tracing), then trained epoch by epoch in alternating order
(SPOS, PA&DA, PA&DA, SPOS, ...) so that a noisy machine slows both alike.
PA&DA's extra work per step is the gradient-norm sum of the sampled
candidates, the per-sample scores and their scatter update, per epoch the
end-of-epoch draw; SPOS streams the epoch-seeded pipeline. Reports the
median epoch time of each and their ratio (goal <= 1.03), with every
measurement.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_pada.py
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_pada.py --channels 16 --cells 5 --image-size 32
```
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cifar10-subset")
    parser.add_argument("--channels", type=int)
    parser.add_argument("--cells", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--method", default="pada", choices=("pa", "da", "pada"),
                        help="the method timed against SPOS (pa / da isolate each sampler)")
    parser.add_argument("--delta", type=float,
                        help="hold PA's δ constant (0: the same path distribution as SPOS, so "
                        "the ratio is the sampler's own overhead)")
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from kerasnas.recipes import nb201_rank, nb201_spos

    config = dict(nb201_rank.PRESETS[args.preset])
    for key in ("channels", "cells", "image_size", "batch_size", "limit"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    epochs = 2 * args.rounds + 1
    config["epochs"] = epochs

    runs = {}
    for method in ("spos", "pada"):
        keras.utils.set_random_seed(0)
        run_config = dict(config, method=args.method if method == "pada" else "spos")
        if args.delta is not None:
            run_config["delta"] = args.delta
        space, steps = nb201_spos.build_space(run_config)
        path, data, callbacks = nb201_rank.samplers(run_config)
        supernet = nb201_spos.build_supernet(space, run_config, steps, path)
        if data is None:
            dataset, _ = nb201_spos.train_dataset(
                config["data"], config["batch_size"], 0, epochs, augment=config["augment"],
                image_size=config["image_size"], limit=config["limit"],
            )
            fit_kwargs = dict(x=dataset, steps_per_epoch=steps)
        else:
            fit_kwargs = dict(x=data.dataset())
        runs[method] = dict(supernet=supernet, callbacks=callbacks, fit=fit_kwargs, epoch=0, times=[])

    def epoch(method):
        run = runs[method]
        start = time.perf_counter()
        run["supernet"].fit(
            epochs=run["epoch"] + 1, initial_epoch=run["epoch"], verbose=0,
            callbacks=run["callbacks"], **run["fit"],
        )
        run["epoch"] += 1
        return time.perf_counter() - start

    for method in runs:  # warm-up: tracing and the first epoch
        print(f"warm-up {method}: {epoch(method):.1f} s", flush=True)
    for r in range(args.rounds):
        for method in (("spos", "pada") if r % 2 == 0 else ("pada", "spos")):
            seconds = epoch(method)
            runs[method]["times"].append(seconds)
            print(f"round {r}: {method:5s} {seconds:6.2f} s", flush=True)
    spos = statistics.median(runs["spos"]["times"])
    pada = statistics.median(runs["pada"]["times"])
    pairs = [p / s for s, p in zip(runs["spos"]["times"], runs["pada"]["times"])]
    results = {
        "config": {k: config[k] for k in ("data", "channels", "cells", "image_size", "batch_size", "limit")},
        "spos_epoch_s": runs["spos"]["times"],
        "pada_epoch_s": runs["pada"]["times"],
        "method": args.method,
        "median_ratio": pada / spos,
        "per_round_ratios": pairs,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(results, indent=2))
    print(f"\n{args.method.upper()} / SPOS epoch time: {pada / spos:.3f} (median {pada:.2f} s vs {spos:.2f} s; "
          f"per round {', '.join(f'{p:.3f}' for p in pairs)}; goal <= 1.03)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
