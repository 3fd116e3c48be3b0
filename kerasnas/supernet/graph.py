"""Grappler (TensorFlow's graph optimizer) settings for a supernet's functions.

A supernet's training graph holds every candidate of every choice: after
TensorFlow lowers its `Case` ops, the NAS-Bench-201 supernet at C=16, N=5 is
a flat graph of ~44,000 nodes, and Grappler's passes over it take about 16 s
of its ~40 s first step on a 2-core CPU (memory optimizer 3.7 s, constant
folding 2.1 s, remapper 1.9 s, layout 1.0 s, ...). Only the sampled path
runs each step, so what those passes win per step is small. Settings:

- "on": TensorFlow's full optimizer.
- "lean": without the memory optimizer, the remapper and the layout pass.
  Pruning, constant folding, arithmetic, dependency and function
  optimization stay: they halve the graph (to ~23,000 nodes). Constant
  folding stays for reproducibility: without it, two identical runs in
  one process differed in the last bits (the resume tests caught it; with
  one inter-op thread they did not, so something in the unfolded graph
  adds up in the order its inputs arrive), while without the other three
  passes, each alone and all together, they stayed bit-identical.
- "off": no Grappler (no constant folding either: expect the same last-bit
  differences between identical runs).
- "auto" (the supernet's default): "lean" on a CPU for a supernet that runs
  one path per step; "on" for mixed choices and wherever a GPU is visible.

Measured with `tools/bench_env.py` (fresh processes, C=16, N=5, batch 64, 2
each, interleaved) against "on": "lean" took 0.83x the time to the first
step (36.8-37.1 s against 44.3-44.4 s), 0.91x the step time and 0.79x the
peak memory (2.16 GB against 2.73 GB). An earlier "lean" that also left out
constant folding took 0.79x, 0.91x, 0.78x, and "off" 0.77x, 0.93x and 1.30x
the memory (the unpruned graph), which ran the test suite's workers out of
a 24 GB machine when it was the default. A DARTS supernet is the opposite case:
its mixed choices run every candidate each step, and Grappler's fusions pay
(`tools/bench_darts.py --grappler`: without it the first step took 151 s
against 140 s and a step 3.04 s against 2.61 s). On a GPU the layout pass and
fusions are tuned for it (not measured there), so "auto" keeps them.

Grappler is configured per process (`tf.config.optimizer`, and the memory
optimizer in the eager context's base config, which has no public setter),
and TensorFlow instantiates a function once per configuration, so the
setting is applied around each call of the supernet's own functions and
restored exactly after: other models in the process keep their
configuration, and every later call finds the graph it instantiated on its
first.
"""

import contextlib
import warnings

import tensorflow as tf

GRAPPLER_OPTIONS = ("auto", "on", "lean", "off")

# "lean": Grappler without the passes that cost a single-path supernet's
# first step much and win it little on a CPU (memory optimizer 3.7 s,
# remapper 1.9 s, layout 1.0 s of ~16 s at C=16, N=5). Constant folding
# (2.1 s) stays: without it runs are not bit-reproducible (module
# docstring). Pruning, arithmetic, dependency and function optimization
# stay: they shrink the graph, and without them (`"off"`) the process needs
# 1.3-1.4x the memory.
_LEAN_PASSES_OFF = {"layout_optimizer": False, "remapping": False}
# The `tf.config.optimizer` options these settings manage ("on" undoes any
# of them set process-wide, for the supernet's own functions).
_MANAGED = ("disable_meta_optimizer", "layout_optimizer", "constant_folding", "remapping")


def _as_mode(grappler):
    if grappler is True:
        return "on"
    if grappler is False:
        return "off"
    return grappler


def validate_grappler(grappler):
    """The `grappler` argument as given ("auto", "on", "lean" or "off";
    True and False read as "on" and "off")."""
    grappler = _as_mode(grappler)
    if grappler not in GRAPPLER_OPTIONS:
        raise ValueError(
            "Invalid value for argument `grappler`. Expected one of "
            f"{GRAPPLER_OPTIONS} (or a bool). Received: grappler={grappler!r}"
        )
    return grappler


def grappler_mode(grappler, runs_every_candidate=False):
    """The Grappler setting ("on", "lean" or "off") that `grappler` means.
    "auto": "lean" on a CPU for a supernet that runs one path per step, "on"
    for one that runs every candidate (mixed choices: DARTS, SNAS) and
    wherever a GPU is visible."""
    grappler = validate_grappler(grappler)
    if grappler == "auto":
        if runs_every_candidate or tf.config.list_logical_devices("GPU"):
            return "on"
        return "lean"
    return grappler


def _context():
    from tensorflow.python.eager import context

    return context.context()


def _state():
    """The process' Grappler state: the optimizer options set through
    `tf.config.optimizer` and the base config (memory optimizer); None where
    this TensorFlow keeps them elsewhere."""
    ctx = _context()
    try:
        state = dict(ctx._optimizer_experimental_options), ctx._config
        ctx._thread_local_data.function_call_options  # noqa: B018 (checked: reset by _restore)
    except AttributeError:
        return None
    return state


def _restore(state):
    """Puts back a `_state()` exactly (unset options unset again, so that
    functions instantiated before find the same configuration)."""
    ctx = _context()
    ctx._optimizer_experimental_options = dict(state[0])
    ctx._config = state[1]
    ctx._thread_local_data.function_call_options = None


def _target(mode, state):
    """The state in which functions of `mode` run: "on" is TensorFlow's
    full optimizer (undoing any of these settings made process-wide)."""
    if mode == "lean":
        return configured(state, _LEAN_PASSES_OFF, memory_optimizer=False)
    return configured(state, disable=mode == "off")


def configured(state, passes_off=None, memory_optimizer=True, disable=False):
    """`state` (`_state()`) with the passes in `passes_off` (a dict of
    `tf.config.optimizer` options set False) off, the memory optimizer on
    or off, or Grappler disabled; every other option of these as
    TensorFlow's default. Apply it with `_restore`: the benchmarks' way to
    try a set of passes process-wide."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.core.protobuf import rewriter_config_pb2

    options = {k: v for k, v in state[0].items() if k not in _MANAGED}
    options.update(passes_off or {})
    if disable:
        options["disable_meta_optimizer"] = True
    memory = rewriter_config_pb2.RewriterConfig.DEFAULT_MEM_OPT
    if not memory_optimizer:
        memory = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    config = state[1]
    current = rewriter_config_pb2.RewriterConfig.DEFAULT_MEM_OPT
    if config is not None:
        current = config.graph_options.rewrite_options.memory_optimization
    if current != memory:
        config = config_pb2.ConfigProto() if config is None else _copy(config)
        config.graph_options.rewrite_options.memory_optimization = memory
    return options, config


def _copy(config):
    from tensorflow.core.protobuf import config_pb2

    copy = config_pb2.ConfigProto()
    copy.CopyFrom(config)
    return copy


@contextlib.contextmanager
def grappler_scope(mode):
    """Functions first called (instantiated) inside run with Grappler
    `mode`: "on" (TensorFlow's full optimizer), "lean" or "off" (True and
    False read as "on" and "off"); the process' setting is restored exactly
    on exit. A no-op where that is already the setting."""
    mode = _as_mode(mode)
    if mode not in ("on", "lean", "off"):
        raise ValueError(
            "Invalid value for argument `mode`. Expected 'on', 'lean' or 'off'. " f"Received: mode={mode!r}"
        )
    state = _state()
    if state is None:  # another TensorFlow's internals: run with its own setting
        _warn_unsupported(mode)
        yield
        return
    target = _target(mode, state)
    if target[0] == state[0] and target[1] is state[1]:
        yield
        return
    _restore(target)
    try:
        yield
    finally:
        _restore(state)


_warned = set()


def _warn_unsupported(mode):
    if mode != "on" and mode not in _warned:
        _warned.add(mode)
        warnings.warn(
            f"grappler={mode!r} is not supported by TensorFlow {tf.__version__} (its eager context "
            "keeps the optimizer options elsewhere): the supernet runs with the process' own setting.",
            stacklevel=3,
        )


class ScopedFunction:
    """`function` (callable, e.g. a `tf.function`) called inside
    `grappler_scope(mode)`; other attributes are the function's."""

    def __init__(self, function, mode):
        self.__dict__["_function"] = function
        self.__dict__["_mode"] = _as_mode(mode)

    def __call__(self, *args, **kwargs):
        with grappler_scope(self._mode):
            return self._function(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._function, name)

    def __setattr__(self, name, value):
        setattr(self._function, name, value)
