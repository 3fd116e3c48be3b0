"""Grappler (TensorFlow's graph optimizer) on or off for a supernet's functions.

A supernet's training graph holds every candidate of every choice: after
TensorFlow lowers its `Case` ops, the NAS-Bench-201 supernet at C=16, N=5 is
a flat graph of ~44,000 nodes, and Grappler's passes over it take about 16 s
of its ~40 s first step on a 2-core CPU (memory optimizer 3.7 s, constant
folding 2.1 s, remapper 1.9 s, layout 1.0 s, ...). Only the sampled path
runs each step, so what those passes win per step is small. Measured with
`tools/bench_supernet.py`'s first step and `--grappler on|off`, alternating,
2 fresh processes each: without Grappler the first step took 33.5-34.1 s
against 46.9-47.5 s with it, and the step time 462-471 ms against 511-526 ms.
A DARTS supernet is the opposite
case: its mixed choices run every candidate each step, Grappler's passes pay
for themselves (`tools/bench_darts.py --grappler`: without it the first step
took 151 s against 140 s and a step 3.04 s against 2.61 s). And the
unoptimized graph costs memory: the C=16, N=5 supernet's process peaked at
3.6 GB without Grappler against 2.55 GB with it (1.41x), and the test suite's
workers, which build hundreds of small supernets, ran out of a 24 GB
machine's memory. So the supernet's default is TensorFlow's (`"on"`);
`"off"` trades memory for the first step, and `"auto"` is off on a CPU for
supernets that run one path, on for mixed choices and wherever a GPU is
visible (its layout pass and fusions are tuned for GPUs; not measured
there).

Grappler is configured per process (`tf.config.optimizer`), and TensorFlow
instantiates a function once per configuration, so the option is set around
each call of the supernet's own functions and restored after: other models
in the process keep TensorFlow's default, and every later call finds the
graph it instantiated on its first.
"""

import contextlib

import tensorflow as tf

GRAPPLER_OPTIONS = ("auto", "on", "off")


def validate_grappler(grappler):
    """The `grappler` argument as given ("auto", "on" or "off"; True and
    False read as "on" and "off")."""
    if grappler is True:
        return "on"
    if grappler is False:
        return "off"
    if grappler not in GRAPPLER_OPTIONS:
        raise ValueError(
            "Invalid value for argument `grappler`. Expected one of "
            f"{GRAPPLER_OPTIONS} (or a bool). Received: grappler={grappler!r}"
        )
    return grappler


def grappler_enabled(grappler, runs_every_candidate=False):
    """Whether Grappler runs for `grappler`. "auto": on with a GPU, and on
    a CPU only for a supernet that runs every candidate each step (mixed
    choices: DARTS, SNAS)."""
    grappler = validate_grappler(grappler)
    if grappler == "auto":
        return bool(runs_every_candidate or tf.config.list_logical_devices("GPU"))
    return grappler == "on"


@contextlib.contextmanager
def grappler_scope(enabled):
    """Functions first called (instantiated) inside run with Grappler on or
    off; the process' previous setting is restored on exit. A no-op when
    that is already the setting."""
    previous = bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False))
    if previous == (not enabled):
        yield
        return
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not enabled})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": previous})


class ScopedFunction:
    """`function` (callable, e.g. a `tf.function`) called inside
    `grappler_scope(enabled)`; other attributes are the function's."""

    def __init__(self, function, enabled):
        self.__dict__["_function"] = function
        self.__dict__["_enabled"] = bool(enabled)

    def __call__(self, *args, **kwargs):
        with grappler_scope(self._enabled):
            return self._function(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._function, name)

    def __setattr__(self, name, value):
        setattr(self._function, name, value)
