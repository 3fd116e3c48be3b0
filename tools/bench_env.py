"""Process-level TensorFlow settings A/B: oneDNN, thread pools, Grappler passes.

Each setting is a fresh Python process (this script, `--only`), because
`TF_ENABLE_ONEDNN_OPTS` is read when TensorFlow loads, thread pools are
fixed at its first op, and a function keeps the graph it instantiated
under the first Grappler configuration. Every process builds a fresh model
of `tools/bench_supernet.py` (the NAS-Bench-201 supernet masked to one
architecture, or the child extracted for it), times its first step,
`--warmup` untimed steps and `--steps` timed ones, and reports its peak
resident memory. Settings are run in rotated order, `--repeats` times,
so that a machine growing busier or quieter affects each alike; ratios are
against `base` (TensorFlow's defaults) from the medians.

Settings:

- `base`: TensorFlow's defaults (oneDNN on, intra-/inter-op threads = all
  cores, every Grappler pass).
- `onednn0`: `TF_ENABLE_ONEDNN_OPTS=0` (Eigen kernels).
- `inter1`: one inter-op thread (ops run one at a time; intra-op = all cores).
- `intra1`: one intra-op thread, inter-op = all cores.
- `nomem`: Grappler without its memory optimizer (3.7 s of the supernet's
  ~16 s of Grappler passes on this CPU).
- `nomem_layout`: and without the layout optimizer (1.0 s; it changes
  nothing on a CPU).
- `nofold`: without memory, layout, constant-folding and remapper passes.
- `lean`: the supernet's own `grappler="lean"` (memory, layout and remapper
  passes off around its functions only, constant folding kept; the child
  keeps every pass).
- `off`: no Grappler, process-wide (`Supernet(grappler="off")`'s setting).

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_env.py --models supernet child \
    --settings base onednn0 inter1 --repeats 2 --json runs/bench_env.json
```
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = ("base", "onednn0", "inter1", "intra1", "nomem", "nomem_layout", "nofold", "lean", "off")
GRAPPLER_PASSES_OFF = {
    "nomem": {},
    "nomem_layout": {"layout_optimizer": False},
    "nofold": {"layout_optimizer": False, "constant_folding": False, "remapping": False},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=("supernet", "child"), default=["supernet", "child"])
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=["base", "onednn0", "inter1"])
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per (model, setting)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", metavar="OUT", help="write every process' numbers here")
    parser.add_argument("--only", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=("supernet", "child"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("repeats", "steps", "channels", "cells", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"Invalid value for argument `--{name.replace('_', '-')}`. "
                             f"Expected an integer >= 1. Received: {getattr(args, name)}")
    return args


def _apply_in_process(setting, cores):
    """The part of `setting` that is set from inside the process (after
    TensorFlow loads, before its first op)."""
    import tensorflow as tf

    if setting == "off":  # the child too (the supernet's own option covers only it)
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    elif setting == "inter1":
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(cores)
    elif setting == "intra1":
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
    elif setting in GRAPPLER_PASSES_OFF:
        from kerasnas.supernet import graph

        state = graph._state()
        graph._restore(graph.configured(state, GRAPPLER_PASSES_OFF[setting], memory_optimizer=False))


def run_one(args):
    """One process: first step, warm-up, timed steps, peak memory (JSON line)."""
    import numpy as np

    import bench_supernet as B

    bench_args = B.parse_args([
        "--channels", str(args.channels), "--cells", str(args.cells),
        "--batch-size", str(args.batch_size),
        "--grappler", args.only if args.only in ("lean", "off") else "on",
    ])
    _apply_in_process(args.only, B._cores())
    space = B.make_space(bench_args)
    arch = space.from_string(bench_args.arch)
    dataset = B.make_dataset(bench_args)
    model, result = B.first_step(args.model, space, arch, dataset, bench_args)
    B.fit_steps(model, dataset, args.warmup)
    times, _, _ = B.fit_steps(model, dataset, args.steps)
    result.update(
        setting=args.only, model=args.model,
        step_ms=1000 * float(np.median(times)),
        peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    )
    print("RESULT " + json.dumps(result), flush=True)


def launch(model, setting, args):
    env = dict(os.environ)
    env["TF_ENABLE_ONEDNN_OPTS"] = "0" if setting == "onednn0" else "1"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--only", setting, "--model", model,
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--channels", str(args.channels),
        "--cells", str(args.cells), "--batch-size", str(args.batch_size),
    ]
    start = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise RuntimeError(f"{model}/{setting} failed (rc {out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process_s"] = time.perf_counter() - start
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.only:
        run_one(args)
        return
    rows = []
    for repeat in range(args.repeats):
        order = args.settings[repeat % len(args.settings):] + args.settings[:repeat % len(args.settings)]
        for model in args.models:
            for setting in order:
                row = launch(model, setting, args)
                row["repeat"] = repeat
                rows.append(row)
                print(f"{model:8s} {setting:12s} first step {row['first_step_s']:6.1f} s  "
                      f"step {row['step_ms']:6.1f} ms  peak {row['peak_rss_gb']:.2f} GB  "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    print("\nmedians (ratio to base):")
    for model in args.models:
        base = [r for r in rows if r["model"] == model and r["setting"] == "base"]
        ref = {k: statistics.median(r[k] for r in base) for k in ("first_step_s", "step_ms", "peak_rss_gb")} if base else None
        for setting in args.settings:
            mine = [r for r in rows if r["model"] == model and r["setting"] == setting]
            med = {k: statistics.median(r[k] for r in mine) for k in ("first_step_s", "step_ms", "peak_rss_gb")}
            ratio = (lambda k: f" ({med[k] / ref[k]:.3f}x)") if ref else (lambda k: "")
            print(f"  {model:8s} {setting:12s} first step {med['first_step_s']:6.1f} s{ratio('first_step_s')}"
                  f"  step {med['step_ms']:6.1f} ms{ratio('step_ms')}"
                  f"  peak {med['peak_rss_gb']:.2f} GB{ratio('peak_rss_gb')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
