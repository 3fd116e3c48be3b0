"""Benchmark of the kerasnas supernet against its child and a PyTorch baseline.

Measured in one run, on one machine, with interleaved rounds so that a noisy
machine affects every model alike:

(a) training images/s of the supernet restricted to one architecture
    (`set_mask`) vs the child extracted from it (same architecture, batch,
    data, loss, metric, gradient clipping and weight decay);
(b) time to the first trained step (build + compile + trace + first step) of
    a fresh supernet vs a fresh child, each in a fresh Python process
    (subprocesses of this script) and, as a cross-check, in this process
    (child first, supernet second: Keras' tracing caches favour the second);
(c) when PyTorch is installed, images/s of the supernet with uniform path
    sampling vs an eager PyTorch NAS-Bench-201 supernet written the way the
    reference code is (`tools/_torch_reference.py`), with as many threads as
    TensorFlow uses. The PyTorch supernet replays the paths that kerasnas
    sampled in the same round, so both train the same sequence of paths; it
    also trains the child's path alone (framework speed on one network).

Each round runs `--steps` steps of every model, in an order rotated from
round to round; per-step times are taken around each `train_function` call
(a Keras callback), so `fit`'s per-call set-up is reported apart.

Ratios (goals from the project's issue), from medians of the same run, each
followed by robust cross-checks (per-round pairs, same-path pairs, minima):

- supernet step time / child step time: goal <= 1.10;
- supernet time to first step / child's (fresh processes): goal <= 2;
- kerasnas images/s / PyTorch images/s (uniform paths): goal >= 1.5.

On a shared machine, read the load averages printed with the results: under
contention PyTorch's OpenMP threads slow down much more than TensorFlow's.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_supernet.py
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_supernet.py --quick
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_supernet.py --json out.json
```
"""

import argparse
import gc
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_REFERENCE = Path(__file__).resolve().parent / "_torch_reference.py"

DEFAULT_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+"
    "|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
)
LEARNING_RATE = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 2.5e-4
CLIP_NORM = 5.0
CONTENDED_CORES = 0.3  # cores used by other programs above which a run is flagged
GOALS = {
    "step_time_ratio": ("<=", 1.10),
    "first_step_ratio": ("<=", 2.0),
    "torch_speedup": (">=", 1.5),
}


# === Arguments ===
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Supernet vs child vs PyTorch reference training speed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--channels", type=int, default=16, help="C of NAS-Bench-201")
    parser.add_argument("--cells", type=int, default=5, help="N, cells per stage")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model after the first")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="NAS-Bench-201 string of the child")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of TF (intra- and inter-op) and PyTorch; None: TF's "
                        "own default (all cores) and as many PyTorch threads")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--dtype-policy", choices=("float32", "mixed_bfloat16"), default="float32",
                        help="Keras dtype policy of the kerasnas supernet and child (logits, "
                        "losses, BN statistics and variables stay float32)")
    parser.add_argument("--torch-dtype", choices=("float32", "bfloat16"), default="float32",
                        help="PyTorch reference: float32, or bfloat16 autocast on CPU "
                        "(forward and loss; weights and optimizer float32)")
    parser.add_argument("--grappler", choices=("auto", "on", "lean", "off"), default="auto",
                        help="the supernet's `grappler` option (TensorFlow's graph optimizer; "
                        "auto: lean on a CPU for single-path supernets)")
    parser.add_argument("--first-step", choices=("both", "subprocess", "inprocess"), default="both",
                        help="where to measure the time to the first step")
    parser.add_argument("--first-step-repeats", type=int, default=1,
                        help="fresh-process measurements per model")
    parser.add_argument("--plain-child-optimizer", action="store_true",
                        help="child SGD without clipping and weight decay (otherwise "
                        "matched to the supernet's)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test (< 2 min): C=8, N=1, 3 rounds of 5 steps (overrides "
                        "those four flags)")
    parser.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    parser.add_argument("--only", choices=("first-step",), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=("supernet", "child"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.channels, args.cells, args.rounds, args.steps = 8, 1, 3, 5
    for name in ("channels", "cells", "batch_size", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# === Models and data ===
def make_space(args):
    import kerasnas

    return kerasnas.spaces.NasBench201(
        num_classes=args.num_classes,
        channels=args.channels,
        cells_per_stage=args.cells,
        input_shape=(32, 32, 3),
    )


def make_dataset(args, num_batches=8):
    """`num_batches` fixed random batches of 32x32x3 images, repeated."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(args.seed)
    n = num_batches * args.batch_size
    x = rng.standard_normal((n, 32, 32, 3), dtype="float32")
    y = rng.integers(0, args.num_classes, n).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    return dataset.batch(args.batch_size, drop_remainder=True).cache().repeat()


def _loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build_supernet(space, args):
    """A compiled supernet (PA&DA's settings: batch-statistics BN)."""
    import keras

    supernet = space.build_supernet(
        seed=args.seed, weight_decay=WEIGHT_DECAY, clip_norm=CLIP_NORM, bn="batch",
        dtype_policy=args.dtype_policy, grappler=args.grappler,
    )
    supernet.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM), loss=_loss()
    )
    return supernet


def compile_child(child, args):
    """Compiles `child` like the supernet: SGD, CE loss, accuracy metric.

    By default the optimizer also clips the global gradient norm and decays
    the weights (decoupled, `lr * wd * w`: the same work per variable as the
    supernet's coupled decay), so that the step-time ratio measures the
    supernet's own overhead rather than regularizers the child skips.
    """
    import keras

    options = {} if args.plain_child_optimizer else dict(
        global_clipnorm=CLIP_NORM, weight_decay=WEIGHT_DECAY
    )
    child.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM, **options),
        loss=_loss(),
        metrics=["accuracy"],
    )
    return child


def build_fresh(kind, space, arch, args):
    """A fresh compiled model: `"supernet"` (masked to `arch`) or `"child"`."""
    if kind == "supernet":
        model = build_supernet(space, args)
        model.set_mask({label: [op] for label, op in arch.items()})
        return model
    from kerasnas.ops.policy import dtype_policy_scope

    with dtype_policy_scope(args.dtype_policy):
        child = space.build_child(arch, bn="batch")
    return compile_child(child, args)


# === Timing ===
def _step_timer_class():
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Records the wall time of each `train_function` call of `fit`.

        Args:
            path_variable: optional variable read after each step (the
                supernet's `active_path`), to record the sampled paths.
        """

        def __init__(self, path_variable=None):
            super().__init__()
            self.path_variable = path_variable
            self.times = []
            self.paths = []
            self._begin = None

        def on_train_batch_begin(self, batch, logs=None):
            self._begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self._begin)
            if self.path_variable is not None:
                self.paths.append([int(i) for i in self.path_variable.numpy()])

    return StepTimer


def fit_steps(model, dataset, steps, record_paths=False):
    """Trains `steps` steps with `fit`.

    Returns:
        `(per-step seconds, seconds of the whole fit call, sampled paths)`.
    """
    timer = _step_timer_class()(model.active_path if record_paths else None)
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return timer.times, time.perf_counter() - start, timer.paths


def _instrument(model, stats):
    """Times `model`'s Python tracing of its train step and symbolic build.

    `fit` calls `model.train_step` once per trace of the train function and
    `model._symbolic_build` before it (the supernet builds its metrics
    symbolically, so that the function is traced once); both are wrapped on
    the instance, which changes nothing else.
    """
    train_step = model.train_step
    symbolic_build = model._symbolic_build

    def timed_train_step(data):
        start = time.perf_counter()
        try:
            return train_step(data)
        finally:
            stats["traces"] += 1
            stats["trace_s"] += time.perf_counter() - start

    def timed_symbolic_build(*args, **kwargs):
        start = time.perf_counter()
        try:
            return symbolic_build(*args, **kwargs)
        finally:
            stats["symbolic_build_s"] += time.perf_counter() - start

    model.train_step = timed_train_step
    model._symbolic_build = timed_symbolic_build


def first_step(kind, space, arch, dataset, args):
    """Builds, compiles and trains one step of a fresh model.

    Returns:
        `(model, seconds)`: `build_compile_s`, `first_fit_s` (the first `fit`
        call of one step), `first_step_s` (their sum), of which
        `symbolic_build_s` and `trace_s` (Python tracing of the train step,
        `traces` times), and `second_step_s`; `rest_s` = first fit - trace -
        symbolic build - second step is TensorFlow's graph optimization and
        kernel instantiation (plus the fit-call overhead).
    """
    start = time.perf_counter()
    model = build_fresh(kind, space, arch, args)
    return model, time_first_fit(model, dataset, start)


def time_first_fit(model, dataset, start):
    """Times the first `fit` step of a compiled `model` built since `start`."""
    stats = {"traces": 0, "trace_s": 0.0, "symbolic_build_s": 0.0}
    built = time.perf_counter()
    _instrument(model, stats)
    _, fit_s, _ = fit_steps(model, dataset, 1)
    done = time.perf_counter()
    second, _, _ = fit_steps(model, dataset, 1)
    result = {
        "build_compile_s": built - start,
        "first_fit_s": fit_s,
        "first_step_s": done - start,
        "second_step_s": second[0],
        **stats,
        "rest_s": fit_s - stats["trace_s"] - stats["symbolic_build_s"] - second[0],
    }
    return result


def first_step_subprocess(kind, args):
    """`first_step` in a fresh Python process (this script, `--only`)."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--only", "first-step",
        "--model", kind,
        "--channels", str(args.channels), "--cells", str(args.cells),
        "--batch-size", str(args.batch_size), "--num-classes", str(args.num_classes),
        "--arch", args.arch, "--seed", str(args.seed),
        "--dtype-policy", args.dtype_policy, "--grappler", args.grappler,
    ]
    if args.plain_child_optimizer:
        command.append("--plain-child-optimizer")
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stderr[-3000:]}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def run_only_first_step(args):
    """Entry point of the `--only first-step` subprocess: prints one JSON line."""
    start = time.perf_counter()
    import keras  # noqa: F401  (imports are timed apart)
    import tensorflow as tf  # noqa: F401

    import kerasnas  # noqa: F401

    imported = time.perf_counter()
    configure_threads(args)
    space = make_space(args)
    arch = space.from_string(args.arch)
    dataset = make_dataset(args)
    _, result = first_step(args.model, space, arch, dataset, args)
    result["import_s"] = imported - start
    result["model"] = args.model
    print(json.dumps(result), flush=True)


class TorchReference:
    """The PyTorch reference supernet, served by a subprocess.

    The subprocess (`tools/_torch_reference.py --serve`) imports only
    PyTorch, so the two frameworks' thread pools and allocators do not share
    a process; it is idle (blocked on stdin) while Keras is measured.
    """

    def __init__(self, args):
        command = [
            sys.executable, str(TORCH_REFERENCE), "--serve",
            "--channels", str(args.channels), "--cells", str(args.cells),
            "--num-classes", str(args.num_classes), "--batch-size", str(args.batch_size),
            "--threads", str(args.threads or _cores()), "--seed", str(args.seed),
            "--dtype", args.torch_dtype,
        ]
        start = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.facts = self._read()
        self.startup_s = time.perf_counter() - start

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch reference process ended unexpectedly")
        return json.loads(line)

    def run(self, steps, archs=None):
        """Per-step seconds of `steps` steps, on `archs` (lists of indices) if given."""
        request = {"cmd": "run", "steps": steps}
        if archs is not None:
            request["archs"] = archs
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()["step_times"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


# === Report ===
def machine_facts(args):
    import keras
    import tensorflow as tf

    facts = {
        "nproc": os.cpu_count(),
        "cores_usable": _cores(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "loadavg_start": os.getloadavg(),
        "kerasnas_sources_sha256": _sources_digest(ROOT / "kerasnas"),
        "torch": None,
    }
    if not args.no_torch and importlib.util.find_spec("torch") is not None:
        facts["torch"] = importlib.metadata.version("torch")
    return facts


def _sources_digest(folder):
    """A short digest of the `.py` files under `folder` (ties numbers to code)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


class CpuMeter:
    """CPU seconds used by other programs while something is measured.

    Reads the machine's busy time from `/proc/stat` and subtracts the CPU
    time of this process, of its finished subprocesses and of the running
    `pids` (the PyTorch server): what is left was taken by other programs,
    so `others_s / wall_s` is the number of cores they occupied. Zero where
    `/proc` is missing.
    """

    def __init__(self, pids=()):
        self.pids = list(pids)
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _machine_busy(self):
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal (guest is in user).
        return (sum(fields[:3]) + sum(fields[5:8])) / self.tick

    def _own(self):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = time.process_time() + children.ru_utime + children.ru_stime
        for pid in self.pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / self.tick
            except (OSError, ValueError, IndexError):
                pass
        return total

    def snapshot(self):
        return self._machine_busy(), self._own(), time.perf_counter()

    @staticmethod
    def others(before, after):
        """`(CPU seconds of other processes, wall seconds)` between snapshots."""
        if before[0] is None or after[0] is None:
            return 0.0, after[2] - before[2]
        return max(0.0, (after[0] - before[0]) - (after[1] - before[1])), after[2] - before[2]


def _cores_of_others(before, cpu_meter):
    """Cores used by other programs on average since the snapshot `before`."""
    others_s, wall_s = CpuMeter.others(before, cpu_meter.snapshot())
    return others_s / wall_s if wall_s > 0 else 0.0


class GcClock:
    """Accumulates the wall time of Python's garbage collections."""

    def __init__(self):
        self.total = 0.0
        self._start = None
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.total += time.perf_counter() - self._start
            self._start = None

    def close(self):
        gc.callbacks.remove(self._callback)


def summarize(record, batch_size):
    """Statistics of one model's measurements (`times`: per-step seconds)."""
    times = record["times"]
    median = statistics.median(times)
    mean = statistics.fmean(times)
    round_medians = [statistics.median(r) for r in record["rounds"]]
    return {
        "steps": len(times),
        "median_s": median,
        "min_s": min(times),
        "mean_s": mean,
        "best_round_median_s": min(round_medians),
        "images_per_s_median": batch_size / median,
        "images_per_s_mean": batch_size / mean,
        "fit_overhead_s": sum(record["overhead"]),
        "gc_s": sum(record["gc"]),
        "major_faults": sum(record["major_faults"]),
        "others_cores": statistics.fmean(record["others_cores"]),
        "others_cores_max": max(record["others_cores"]),
    }


def _verdict(name, value):
    sign, goal = GOALS[name]
    ok = value <= goal if sign == "<=" else value >= goal
    return f"goal {sign} {goal:g}: {'PASS' if ok else 'FAIL'}"


def print_report(results, args):
    facts = results["facts"]
    torch_threads = results.get("torch", {}).get("facts", {}).get("torch_threads")
    print()
    print(f"NAS-Bench-201 C={args.channels} N={args.cells}, batch {args.batch_size}, "
          f"32x32x3 random inputs, {args.num_classes} classes, CPU; kerasnas "
          f"{args.dtype_policy}, PyTorch {args.torch_dtype}")
    print(f"machine: nproc {facts['nproc']} ({facts['cpu']}); python {facts['python']}, "
          f"TF {facts['tensorflow']} (intra/inter-op threads {facts['tf_intra_op_threads']}/"
          f"{facts['tf_inter_op_threads']}, 0 = all cores), Keras {facts['keras']}, "
          f"torch {facts['torch'] or '-'}" + (f" ({torch_threads} threads)" if torch_threads else "")
          + f"; kerasnas sources {facts['kerasnas_sources_sha256']}")
    loads = " ".join(f"{x:.1f}" for x in results["loadavg_rounds"])
    print(f"1-min load average (this benchmark included): start {facts['loadavg_start'][0]:.2f}, "
          f"after each round [{loads}], end {facts['loadavg_end'][0]:.2f}")
    others = [m["others_cores_max"] for m in results["throughput"].values()]
    others += [row["others_cores"] for row in results["first_step"]]
    if max(others) > CONTENDED_CORES:
        print(f"WARNING: other programs used up to {max(others):.2f} cores during a measurement "
              "('others' columns). Wall times are then inflated, PyTorch's (spinning OpenMP "
              "threads) far more than TensorFlow's: trust the ratios of a quiet run.")
    print(f"child: {args.arch}; child optimizer "
          + ("plain SGD" if args.plain_child_optimizer
             else f"SGD + global clipnorm {CLIP_NORM:g} + weight decay {WEIGHT_DECAY:g}"))

    print(f"\nTraining step time, {args.rounds} interleaved rounds x {args.steps} steps "
          "(best rnd: best round's median; fit ovh: fit-call time outside the steps, all rounds;\n"
          "gc: Python GC pauses; majflt: this process's major page faults; others: cores used\n"
          "by other programs, mean/max over rounds)")
    header = (f"{'model':<30}{'median ms':>10}{'min ms':>8}{'mean ms':>9}{'best rnd':>9}"
              f"{'img/s med':>10}{'img/s mean':>11}{'fit ovh s':>10}{'gc s':>6}{'majflt':>7}"
              f"{'others':>11}")
    print(header)
    print("-" * len(header))
    for name, m in results["throughput"].items():
        print(f"{name:<30}{m['median_s'] * 1e3:>10.1f}{m['min_s'] * 1e3:>8.1f}"
              f"{m['mean_s'] * 1e3:>9.1f}{m['best_round_median_s'] * 1e3:>9.1f}"
              f"{m['images_per_s_median']:>10.1f}{m['images_per_s_mean']:>11.1f}"
              f"{m['fit_overhead_s']:>10.2f}{m['gc_s']:>6.2f}{m['major_faults']:>7}"
              f"{m['others_cores']:>6.2f}/{m['others_cores_max']:.2f}")

    print("\nTime to the first trained step (build + compile + first fit step), seconds;")
    print("first fit = symbolic build + Python trace of train_step (x traces) + rest (TF graph")
    print("optimization, kernel instantiation, fit overhead) + one step (~ the 2nd step)")
    header = (f"{'measurement':<31}{'total':>7}{'build+compile':>14}{'first fit':>10}"
              f"{'symb.build':>11}{'trace':>11}{'rest':>7}{'2nd step':>9}{'import':>7}{'others':>7}")
    print(header)
    print("-" * len(header))
    for row in results["first_step"]:
        trace = f"{row['trace_s']:.2f} x{row['traces']}"
        print(f"{row['label']:<31}{row['first_step_s']:>7.2f}{row['build_compile_s']:>14.2f}"
              f"{row['first_fit_s']:>10.2f}{row['symbolic_build_s']:>11.2f}"
              f"{trace:>11}{row['rest_s']:>7.2f}{row['second_step_s']:>9.2f}"
              + (f"{row['import_s']:>7.1f}" if "import_s" in row else f"{'-':>7}")
              + f"{row['others_cores']:>7.2f}")

    print("\nRatios (from this run)")
    for entry in results["ratios"]:
        verdict = f"  [{_verdict(entry['goal'], entry['value'])}]" if entry["goal"] else ""
        print(f"  {entry['name']:<60}{entry['value']:>7.3f}{verdict}")
    print(f"\nwall time of the benchmark: {results['wall_s']:.0f} s")


def compute_ratios(records, first_rows, args):
    """The goal ratios (medians) and robust cross-checks."""
    s = {k: summarize(r, args.batch_size) for k, r in records.items() if r["times"]}
    ratios = []

    def add(name, value, goal=None):
        ratios.append({"name": name, "value": value, "goal": goal})

    def paired_rounds(a, b):
        pairs = zip(records[a]["rounds"], records[b]["rounds"])
        return statistics.median(statistics.median(x) / statistics.median(y) for x, y in pairs)

    add("supernet (masked) / child step time, medians", s["fixed"]["median_s"] / s["child"]["median_s"],
        "step_time_ratio")
    add("  ditto, median of per-round ratios", paired_rounds("fixed", "child"))
    add("  ditto, min step times", s["fixed"]["min_s"] / s["child"]["min_s"])
    for where, label in (("subprocess", "fresh processes"), ("inprocess", "this process")):
        rows = {row["kind"]: row for row in first_rows if row["where"] == where}
        if "supernet" in rows and "child" in rows:
            goal = "first_step_ratio" if where == "subprocess" or args.first_step == "inprocess" else None
            add(f"supernet / child time to first step, {label}",
                rows["supernet"]["first_step_s"] / rows["child"]["first_step_s"], goal)
    if s.get("torch"):
        add("kerasnas supernet / torch images/s, uniform paths, medians",
            s["torch"]["median_s"] / s["uniform"]["median_s"], "torch_speedup")
        add("  ditto, totals (means)", s["torch"]["mean_s"] / s["uniform"]["mean_s"])
        per_step = [t / k for t, k in zip(records["torch"]["times"], records["uniform"]["times"])]
        add("  ditto, median of per-step ratios (same paths)", statistics.median(per_step))
        add("  ditto, median of per-round ratios", paired_rounds("torch", "uniform"))
        add("  ditto, min step times (not the same path)", s["torch"]["min_s"] / s["uniform"]["min_s"])
    if s.get("torch_fixed"):
        add("kerasnas child / torch images/s, child's arch, medians",
            s["torch_fixed"]["median_s"] / s["child"]["median_s"])
        add("kerasnas supernet (masked) / torch, child's arch, medians",
            s["torch_fixed"]["median_s"] / s["fixed"]["median_s"])
    add("supernet uniform / masked step time, medians", s["uniform"]["median_s"] / s["fixed"]["median_s"])
    return s, ratios


# === Main ===
NAMES = {
    "fixed": "kerasnas supernet (masked)",
    "child": "kerasnas extracted child",
    "torch_fixed": "torch reference (child arch)",
    "uniform": "kerasnas supernet (uniform)",
    "torch": "torch reference (uniform)",
}


def measure_first_steps(space, arch, dataset, args, cpu_meter):
    """(b) Time to the first step, as table rows.

    Fresh processes first (supernet, then child), then this process (child,
    then the supernet reused for the rounds, then the child extracted from
    it).

    Returns:
        `(rows, supernet, extracted child)`.
    """
    rows = []

    def timed(label, kind, where, function):
        before = cpu_meter.snapshot()
        out = function()
        row = out if isinstance(out, dict) else out[1]
        rows.append({**row, "label": label, "kind": kind, "where": where,
                     "others_cores": _cores_of_others(before, cpu_meter)})
        return out

    if args.first_step in ("both", "subprocess"):
        for repeat in range(args.first_step_repeats):
            for kind in ("supernet", "child"):
                print(f"first step, fresh process: {kind} ...", flush=True)
                suffix = f" #{repeat + 1}" if args.first_step_repeats > 1 else ""
                timed(f"{kind}, fresh process{suffix}", kind, "subprocess",
                      lambda kind=kind: first_step_subprocess(kind, args))
    print("first step, this process: child then supernet ...", flush=True)
    timed("child, this process (1st)", "child", "inprocess",
          lambda: first_step("child", space, arch, dataset, args))
    supernet, _ = timed("supernet, this process (2nd)", "supernet", "inprocess",
                        lambda: first_step("supernet", space, arch, dataset, args))

    def extracted():
        start = time.perf_counter()
        child = compile_child(supernet.extract(arch), args)
        return child, time_first_fit(child, dataset, start)

    child, _ = timed("extracted child, this process", "child", "extracted", extracted)
    return rows, supernet, child


def run_rounds(supernet, child, torch_ref, arch, space, dataset, args, cpu_meter):
    """(a, c) Interleaved rounds: `args.steps` steps of every model per round.

    Returns:
        `({key: record}, [1-min load average after each round])`; a record
        holds per-step seconds (`times`, and by round in `rounds`), the fit
        calls' time outside the steps (`overhead`), GC pauses (`gc`), the
        cores other programs used (`others_cores`), this process's major page
        faults (`major_faults`) and, for the uniform supernet, the sampled
        paths.
    """
    mask = {label: [op] for label, op in arch.items()}
    arch_path = [int(i) for i in space.encode(arch)]
    print("warm-up ...", flush=True)
    if torch_ref is not None:
        torch_ref.run(1 + args.warmup)
    fit_steps(supernet, dataset, args.warmup)
    fit_steps(child, dataset, args.warmup)
    supernet.set_mask(None)
    last_paths = fit_steps(supernet, dataset, args.warmup + 1, record_paths=True)[2]
    gc.collect()

    keys = [k for k in NAMES if torch_ref is not None or not k.startswith("torch")]
    records = {
        k: {"times": [], "rounds": [], "overhead": [], "gc": [], "others_cores": [],
            "major_faults": [], "paths": []}
        for k in keys
    }

    def measure(key):
        """`(per-step seconds, fit-call seconds)` of `args.steps` steps of `key`."""
        nonlocal last_paths
        if key == "fixed":
            supernet.set_mask(mask)
            times, total, _ = fit_steps(supernet, dataset, args.steps)
        elif key == "child":
            times, total, _ = fit_steps(child, dataset, args.steps)
        elif key == "uniform":
            supernet.set_mask(None)
            times, total, last_paths = fit_steps(supernet, dataset, args.steps, record_paths=True)
            records["uniform"]["paths"].extend(last_paths)
        else:
            # The PyTorch supernet replays the paths kerasnas just sampled,
            # or trains the child's path.
            archs = last_paths if key == "torch" else [arch_path]
            start = time.perf_counter()
            times = torch_ref.run(args.steps, archs=archs)
            total = time.perf_counter() - start
        return times, total

    # "torch" always right after "uniform", whose paths it replays.
    units = [("fixed",), ("child",), ("uniform", "torch"), ("torch_fixed",)]
    units = [tuple(k for k in u if k in records) for u in units]
    units = [u for u in units if u]
    gc_clock = GcClock()
    loads = []
    try:
        for r in range(args.rounds):
            for unit in units[r % len(units):] + units[: r % len(units)]:
                for key in unit:
                    gc_before, cpu_before = gc_clock.total, cpu_meter.snapshot()
                    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
                    times, total = measure(key)
                    record = records[key]
                    record["major_faults"].append(
                        resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults_before
                    )
                    record["others_cores"].append(_cores_of_others(cpu_before, cpu_meter))
                    record["times"].extend(times)
                    record["rounds"].append(times)
                    record["overhead"].append(total - sum(times))
                    record["gc"].append(gc_clock.total - gc_before)
            loads.append(os.getloadavg()[0])
            others = statistics.fmean(v["others_cores"][-1] for v in records.values())
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{k} {statistics.median(v['rounds'][-1]) * 1e3:.0f} ms" for k, v in records.items()
            ) + f"; load {loads[-1]:.1f}, other programs {others:.2f} cores", flush=True)
    finally:
        gc_clock.close()
    return records, loads


def start_torch(space, args):
    """The PyTorch reference server, or None (with a note) if it cannot start."""
    print("starting the PyTorch reference ...", flush=True)
    try:
        torch_ref = TorchReference(args)
    except (OSError, RuntimeError, ValueError) as error:
        print(f"PyTorch reference unavailable, skipped: {error}", flush=True)
        return None
    if (list(torch_ref.facts["edges"]), list(torch_ref.facts["ops"])) != (
        list(space.labels), list(space.ops)
    ):
        torch_ref.close()
        raise RuntimeError("The PyTorch reference orders edges or operations differently.")
    return torch_ref


def run_benchmark(args):
    """Runs every measurement, prints the report; returns all numbers."""
    wall_start = time.perf_counter()
    configure_threads(args)
    results = {"config": vars(args).copy(), "facts": machine_facts(args)}
    if not args.no_torch and results["facts"]["torch"] is None:
        print("torch is not installed: skipping the PyTorch reference", flush=True)

    space = make_space(args)
    arch = space.from_string(args.arch)
    dataset = make_dataset(args)
    cpu_meter = CpuMeter()
    first_rows, supernet, child = measure_first_steps(space, arch, dataset, args, cpu_meter)
    results["first_step"] = first_rows

    torch_ref = start_torch(space, args) if results["facts"]["torch"] else None
    if torch_ref is not None:
        results["torch"] = {"facts": torch_ref.facts, "startup_s": torch_ref.startup_s}
        cpu_meter.pids.append(torch_ref.process.pid)
    try:
        records, results["loadavg_rounds"] = run_rounds(
            supernet, child, torch_ref, arch, space, dataset, args, cpu_meter
        )
    finally:
        if torch_ref is not None:
            torch_ref.close()

    summary, results["ratios"] = compute_ratios(records, first_rows, args)
    results["throughput"] = {NAMES[k]: summary[k] for k in records}
    results["records"] = {NAMES[k]: v for k, v in records.items()}
    results["facts"]["loadavg_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - wall_start
    print_report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        print(f"wrote {args.json}")
    return results


def configure_threads(args):
    """Sets TensorFlow's intra- and inter-op threads to `--threads`, if given."""
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)


def main(argv=None):
    args = parse_args(argv)
    if args.only == "first-step":
        if args.model is None:
            raise SystemExit("--only first-step needs --model supernet|child")
        run_only_first_step(args)
        return
    run_benchmark(args)


if __name__ == "__main__":
    main()
