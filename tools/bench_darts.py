"""Benchmark of the kerasnas DARTS supernet against a darts-pt-style PyTorch one.

Measures, on NAS-Bench-201's DARTS supernet (same C, N, batch, 32x32 random
images, first-order bilevel step: α on a valid batch, then the weights):

- training images/s (train-batch images per second of the whole bilevel
  step, median over the timed steps), kerasnas vs the eager PyTorch
  reference of `tools/_torch_darts_reference.py`;
- peak memory of the training step, each framework in a fresh process:
  the resident set's maximum during the timed steps minus the process's
  footprint after importing its framework (and, apart, the high-water mark
  including kerasnas' trace);
- the seconds of one PT decision (every op of one edge masked in turn, the
  supernet evaluated on `--valid-batches` batches) and the number of
  traces of PT's evaluation function after two decisions (goal: 1).

Every measurement runs in a fresh subprocess, alternating the frameworks
(torch, keras, torch, keras, ...) for `--rounds` rounds, so that a noisy
machine affects both alike; ratios are of medians over rounds. Goals (the
DARTS-PT issue): images/s ratio >= 1.0, memory ratio <= 1.0.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_darts.py --rounds 3
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_darts.py --quick --json out.json
```
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per framework")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--valid-batches", type=int, default=4, help="PT's evaluation batches")
    parser.add_argument("--quick", action="store_true", help="C=8, N=1, 5 steps, 2 rounds")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--grappler", choices=("auto", "on", "lean", "off"), default="auto",
                        help="the kerasnas supernet's `grappler` option (auto: lean on a CPU for single-path supernets)")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--run", choices=("keras",), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.channels, args.cells, args.steps, args.rounds = 8, 1, 5, 2
    return args


def rss_mib():
    import resource

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def run_keras(args):
    """One fresh-process measurement of kerasnas (prints one JSON line)."""
    import resource

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    import numpy as np

    import kerasnas

    idle = rss_mib()
    start = time.perf_counter()
    space = kerasnas.spaces.NasBench201(
        num_classes=10, channels=args.channels, cells_per_stage=args.cells, input_shape=(32, 32, 3)
    )
    supernet = space.build_supernet(
        supernet_class=kerasnas.darts.DartsSupernet, seed=0, bn="search",
        weight_decay=3e-4, clip_norm=5.0, grappler=args.grappler,
    )
    supernet.compile(
        optimizer=keras.optimizers.SGD(0.025, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    n = 8 * args.batch_size
    make = lambda: tf.data.Dataset.from_tensor_slices((
        rng.standard_normal((n, 32, 32, 3), dtype="float32"), rng.integers(0, 10, n).astype("int32")
    )).batch(args.batch_size, drop_remainder=True).cache().repeat()
    data = kerasnas.darts.paired(make(), make())
    supernet.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
    first = time.perf_counter() - start

    times, peak = [], [0.0]

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.begin)
            peak[0] = max(peak[0], rss_mib())

    supernet.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=[Timer()])
    valid = make().take(args.valid_batches)
    selector = kerasnas.darts.PerturbationSelector(supernet, valid, tune_epochs=0, seed=0)
    decisions = []
    for label in ("1<-0", "2<-1"):
        t = time.perf_counter()
        selector.select_op(label)
        decisions.append(time.perf_counter() - t)
    print(json.dumps({
        "framework": f"keras {keras.__version__} / tf {tf.__version__}",
        "first_step_s": first, "step_times": times, "idle_mib": idle, "steady_peak_mib": peak[0],
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pt_decision_s": decisions,
        "pt_eval_traces": selector._eval_function.experimental_get_tracing_count(),
        "pt_forward_passes": len(space.choices["1<-0"]) * args.valid_batches,
    }))


def measure(framework, args):
    common = [
        "--channels", str(args.channels), "--cells", str(args.cells),
        "--batch-size", str(args.batch_size), "--steps", str(args.steps),
        "--threads", str(args.threads),
    ]
    if framework == "torch":
        command = [sys.executable, os.path.join(HERE, "_torch_darts_reference.py")] + common
    else:
        command = [sys.executable, os.path.abspath(__file__), "--run", "keras",
                   "--valid-batches", str(args.valid_batches), "--grappler", args.grappler] + common
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{framework} run failed:\n{out.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result["median_step_s"] = statistics.median(result["step_times"])
    result["images_per_s"] = args.batch_size / result["median_step_s"]
    result["step_mib"] = result["steady_peak_mib"] - result["idle_mib"]
    result["max_mib"] = result["max_rss_mib"] - result["idle_mib"]
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.run == "keras":
        return run_keras(args)
    frameworks = ["keras"] if args.no_torch else ["torch", "keras"]
    runs = {f: [] for f in frameworks}
    for round_ in range(args.rounds):
        for framework in frameworks if round_ % 2 == 0 else frameworks[::-1]:
            runs[framework].append(measure(framework, args))
            r = runs[framework][-1]
            print(f"round {round_} {framework:<6} {r['images_per_s']:8.1f} img/s  step "
                  f"{r['step_mib']:7.1f} MiB  max {r['max_mib']:7.1f} MiB  first step "
                  f"{r['first_step_s']:6.1f} s", flush=True)
    summary = {
        f: {k: statistics.median(r[k] for r in rs)
            for k in ("images_per_s", "step_mib", "max_mib", "first_step_s")}
        for f, rs in runs.items()
    }
    keras_runs = runs["keras"]
    summary["pt_decision_s"] = statistics.median(s for r in keras_runs for s in r["pt_decision_s"])
    summary["pt_eval_traces"] = max(r["pt_eval_traces"] for r in keras_runs)
    summary["pt_forward_passes"] = keras_runs[0]["pt_forward_passes"]
    if "torch" in runs:
        summary["images_per_s_ratio"] = summary["keras"]["images_per_s"] / summary["torch"]["images_per_s"]
        summary["step_memory_ratio"] = summary["keras"]["step_mib"] / max(summary["torch"]["step_mib"], 1e-9)
        summary["max_memory_ratio"] = summary["keras"]["max_mib"] / max(summary["torch"]["max_mib"], 1e-9)
    summary["load_average"] = os.getloadavg()
    summary["settings"] = {k: getattr(args, k) for k in ("channels", "cells", "batch_size", "steps", "rounds", "threads")}
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "runs": runs}, f, indent=1)
    return summary


if __name__ == "__main__":
    main()
