"""Inter-choice dependent supernet weights (Laube & Zell, 2021).

In a single-path supernet a candidate's weights must serve every
combination of the choices taken before it. These choice layers add weights
that depend on a few earlier choices, the choice's *priors*:

- `BiasChoice`: a small per-channel tensor per (prior options, own option)
  combination, added to (`"bias"`) or multiplied with (`"mul_bias"`) the
  candidate's input, or one vector per prior and per own option, summed
  (`"bias_sum"`);
- `SplitChoice`: one copy of every candidate's weights (and BN statistics)
  per value of its last priors, created at milestones during training.

The prior options are read from the supernet's path in the graph, so one
trace serves every path. `Supernet.extract` folds the biases of the chosen
path into constants of a plain child and loads the chosen split copy.

Reference:
    Laube & Zell, "Inter-choice dependent super-network weights", arXiv
    2104.11522; the authors' `uninas` (`BiasMixedOp`, `MulBiasMixedOp`,
    `BiasSumMixedOp`, `SplitWeightsMixedOp`).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras.src.backend.common.stateless_scope import in_stateless_scope

from kerasnas.api_export import kerasnas_export
from kerasnas.layers.choice import Choice
from kerasnas.layers.factory import ChoiceFactory

BIAS_MODES = ("bias", "mul_bias", "bias_sum")
INTERCHOICE = BIAS_MODES + ("split",)
BIAS_UPDATES = ("path", "all")
SPLIT_SLOTS = ("shared", "per_copy")
SPLIT_UNTRAINED = ("last_trained", "split_state")


def _check_priors(prior_labels, prior_sizes):
    prior_labels = tuple(str(p) for p in prior_labels)
    prior_sizes = tuple(int(s) for s in prior_sizes)
    if len(prior_labels) != len(prior_sizes) or any(s < 1 for s in prior_sizes):
        raise ValueError(
            "Invalid value for argument `prior_sizes`. Expected one positive "
            f"number of options per prior {list(prior_labels)}. Received: "
            f"prior_sizes={list(prior_sizes)}"
        )
    return prior_labels, prior_sizes


def _check_option(name, value, allowed):
    if value not in allowed:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected one of "
            f"{list(allowed)}. Received: {name}={value!r}"
        )
    return value


class _DependentChoice(Choice):
    """A `Choice` that also reads the options of its priors."""

    def __init__(self, candidates, options, label, prior_labels=(), prior_sizes=(), **kwargs):
        super().__init__(candidates, options, label, **kwargs)
        if self.dense:
            raise ValueError(
                "Invalid value for argument `dense`. Inter-choice weights run "
                "the selected candidate only (`dense=False`). Received: dense=True"
            )
        self.prior_labels, self.prior_sizes = _check_priors(prior_labels, prior_sizes)

    def select(self, inputs, selectors, labels):
        index = selectors[labels.index(self.label)]
        priors = ops.stack([selectors[labels.index(p)] for p in self.prior_labels])
        return self(inputs, index, priors=priors)

    def get_config(self):
        return {
            **super().get_config(),
            "prior_labels": list(self.prior_labels),
            "prior_sizes": list(self.prior_sizes),
        }


@kerasnas_export("kerasnas.layers.BiasChoice")
class BiasChoice(_DependentChoice):
    """A `Choice` whose input gets a bias that depends on earlier choices.

    `mode="bias"`: `x + B[p_1, ..., p_D, o]`, `"mul_bias"`:
    `x * B[p_1, ..., p_D, o]`, where `p_i` is the option taken by the i-th
    prior choice, `o` this choice's option and `B[...]` a per-channel vector
    (one per combination; zeros, resp. ones, at first, so that training
    starts exactly as SPOS). `"bias_sum"`: `x + B_1[p_1] + ... + B_D[p_D] +
    B_self[o]`, one vector per option of each prior and of the choice. The
    bias is applied to the candidate's input, as in the reference.

    `bias_updates="path"` (default): a step moves only the entries its path
    used, as kerasnas leaves every unsampled candidate unchanged (the
    supernet's guarded optimizer). `"all"`: the reference's behaviour, where
    the bias is one tensor that gets a gradient at every step, so momentum
    and weight decay move every entry.

    Args:
        candidates, options, label: see `Choice`.
        prior_labels: the labels of the choices this one depends on.
        prior_sizes: their numbers of options.
        mode: `"bias"`, `"mul_bias"` or `"bias_sum"`.
        bias_updates: `"path"` or `"all"` (see above).

    Call arguments:
        inputs: the input tensor.
        index: int32 scalar, this choice's option.
        priors: int32 vector, the priors' options (in `prior_labels` order).
        training: passed to the candidates.
    """

    def __init__(
        self, candidates, options, label, prior_labels=(), prior_sizes=(), mode="bias",
        bias_updates="path", **kwargs,
    ):
        super().__init__(candidates, options, label, prior_labels, prior_sizes, **kwargs)
        self.mode = _check_option("mode", mode, BIAS_MODES)
        self.bias_updates = _check_option("bias_updates", bias_updates, BIAS_UPDATES)
        n = len(self.candidates)
        if self.mode == "bias_sum":
            self._offsets = np.cumsum((0,) + self.prior_sizes).tolist()
            self.num_rows = int(self._offsets[-1] + n)
        else:
            sizes = self.prior_sizes + (n,)
            self._strides = [int(np.prod(sizes[i + 1:], dtype=np.int64)) for i in range(len(sizes))]
            self.num_rows = int(np.prod(sizes, dtype=np.int64))

    def build(self, input_shape):
        super().build(input_shape)
        self.bias = self.add_weight(
            shape=(self.num_rows, input_shape[-1]),
            initializer="ones" if self.mode == "mul_bias" else "zeros",
            name="bias",
        )

    def rows(self, index, priors):
        """The rows of the bias the path `(priors, index)` uses (int32)."""
        index = ops.cast(ops.reshape(index, (1,)), "int32")
        priors = ops.cast(ops.reshape(priors, (-1,)), "int32")
        digits = ops.concatenate([priors, index])
        if self.mode == "bias_sum":
            # Row blocks: one per prior, then the choice's own (offsets
            # 0, s_1, s_1 + s_2, ..., one per digit).
            return digits + ops.convert_to_tensor(self._offsets, dtype="int32")
        strides = ops.convert_to_tensor(self._strides, dtype="int32")
        return ops.reshape(ops.sum(digits * strides), (1,))

    def row_mask(self, index, priors):
        """Boolean `(num_rows, 1)`: the entries the path uses (the guarded
        optimizer's mask)."""
        used = ops.equal(ops.arange(self.num_rows, dtype="int32")[:, None], self.rows(index, priors)[None, :])
        return ops.any(used, axis=1, keepdims=True)

    def call(self, inputs, index, priors, training=None):
        bias = ops.cast(ops.take(self.bias, self.rows(index, priors), axis=0), inputs.dtype)
        if self.mode == "mul_bias":
            x = inputs * bias[0]
        elif self.mode == "bias":
            x = inputs + bias[0]
        else:
            x = inputs + ops.sum(bias, axis=0)
        return super().call(x, index, training=training)

    def fold(self, index, priors):
        """`(scale, offset)`: the path's bias as constants of a child's
        `keras.layers.Rescaling` (`x * scale + offset`)."""
        rows = ops.convert_to_numpy(self.rows(index, priors))
        values = ops.convert_to_numpy(self.bias)[rows]
        if self.mode == "mul_bias":
            return values[0], 0.0
        if self.mode == "bias":
            return 1.0, values[0]
        return 1.0, ops.convert_to_numpy(ops.sum(ops.convert_to_tensor(values), axis=0))

    def guarded_variables(self):
        """`[(variable, mask_fn(index, priors))]` for the supernet's guarded
        optimizer: only the masked entries may move in a step."""
        return [(self.bias, self.row_mask)] if self.bias_updates == "path" else []

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "bias_updates": self.bias_updates}


class _CopyBanks:
    """Weight copies of a choice's candidates, one live: the candidate's own
    variables hold the copy in use, the others wait in per-variable banks
    (`SplitChoice`, `LocalShareChoice`). Needs `candidates`, `num_copies`
    and `slots` (`"shared"` or `"per_copy"` optimizer slots)."""

    slot_banks = None
    conditional_swaps = True

    def _build_banks(self):
        n = len(self.candidates)
        self.loaded = self.add_weight(shape=(n,), dtype="int32", initializer="zeros", trainable=False, name="loaded")
        seen = np.zeros((n, self.num_copies), "float32")
        seen[:, 0] = 1.0
        self.seen = self.add_weight(
            shape=seen.shape, initializer=keras.initializers.Constant(seen), trainable=False, name="seen"
        )
        self.banks = [
            [
                self.add_weight(
                    shape=(self.num_copies,) + tuple(v.shape), dtype=v.dtype, initializer="zeros",
                    trainable=False, name=f"bank{o}_{k}",
                )
                for k, v in enumerate(candidate.weights)
            ]
            for o, candidate in enumerate(self.candidates)
        ]

    def _run(self, option, key, inputs, training):
        self._swap(option, key)
        return self.candidates[option](inputs, training=training)

    def _swap(self, option, key):
        """Loads the copy `key` of candidate `option` into its variables (in
        the graph; nothing happens when it is already loaded)."""
        if self.num_copies == 1 or in_stateless_scope():
            # Keras' symbolic build traces the network statelessly: an
            # assignment there would leak its value across branch graphs.
            return

        def record():
            self.seen.assign(tf.tensor_scatter_nd_update(self.seen.value, [[option, key]], [1.0]))
            self.loaded.assign(tf.tensor_scatter_nd_update(self.loaded.value, [[option]], [key]))

        _load_copy(
            self.candidates[option].weights, self.banks[option], self.loaded[option], key,
            self.seen[option, key] > 0, record, conditional=self.conditional_swaps,
        )

    # === Optimizer slots per copy ===
    def bind_slots(self, slots_by_variable):
        """Creates the banks of the optimizer slots (`slots="per_copy"`):
        `slots_by_variable` maps `id(variable)` to its slot variables.
        Returns the new variables (part of the supernet's training state)."""
        # Not tracked by the layer (built and locked): the supernet carries
        # them as training state, outside `model.variables`.
        banks = {}
        object.__setattr__(self, "slot_banks", banks)
        if self.slots != "per_copy" or self.num_copies == 1:
            return []
        seen = np.zeros((self.num_copies,), "float32")
        seen[0] = 1.0
        created = []
        for o, candidate in enumerate(self.candidates):
            for v in candidate.trainable_variables:
                slots = list(slots_by_variable.get(id(v), ()))
                if not slots:
                    continue
                prefix = v.path.replace("/", "_")
                entry = dict(
                    option=o,
                    slots=slots,
                    banks=[
                        keras.Variable(
                            np.zeros((self.num_copies,) + tuple(slot.shape), "float32"),
                            trainable=False, name=f"{prefix}_slot{k}_bank",
                        )
                        for k, slot in enumerate(slots)
                    ],
                    loaded=keras.Variable(np.int32(0), trainable=False, name=f"{prefix}_slots_loaded"),
                    seen=keras.Variable(seen, trainable=False, name=f"{prefix}_slots_seen"),
                )
                banks[id(v)] = entry
                created += entry["banks"] + [entry["loaded"], entry["seen"]]
        return created

    def swap_slots(self, variable):
        """Before the optimizer updates `variable` (a selected candidate's):
        loads the slots of the copy in use (`slots="per_copy"`)."""
        entry = (self.slot_banks or {}).get(id(variable))
        if entry is None:
            return
        key = self.loaded[entry["option"]]

        def record():
            entry["seen"].assign(tf.tensor_scatter_nd_update(entry["seen"].value, [[key]], [1.0]))
            entry["loaded"].assign(key)

        _load_copy(
            entry["slots"], entry["banks"], entry["loaded"].value, key, entry["seen"][key] > 0, record
        )


@kerasnas_export("kerasnas.layers.SplitChoice")
class SplitChoice(_CopyBanks, _DependentChoice):
    """A `Choice` whose candidates get one weight copy per value of its
    last priors once training reaches the split milestones.

    At depth 0 (before the first milestone) it is a plain `Choice`. At depth
    d the copy in use is keyed by the options of the last d priors
    (`kerasnas.callbacks.SplitWeights` raises the depth at its milestones;
    at most `max_depth`). The candidate's own variables hold the copy in
    use: when the selected candidate's key changes, its variables (weights
    and BN statistics) are stored in a bank and the key's copy is loaded in
    their place; an unseen key starts from the candidate's most recently
    used weights, as in the reference. Only the selected candidate is
    swapped (the reference swaps all candidates of the choice at once); its
    copies' weights are what extraction, saving and evaluation see.

    `slots="shared"` (reference): the optimizer slots (momentum, Adam's
    moments) are the live variables', one set for every copy, since the
    reference swaps the copies into the same parameter tensors.
    `"per_copy"`: each copy keeps its own slots, swapped with it by the
    supernet's guarded optimizer (a new copy's slots start as those of the
    copy it was cloned from).

    Args:
        candidates, options, label: see `Choice`.
        prior_labels, prior_sizes: the priors (the last `max_depth` key the
            copies).
        max_depth: the most priors a key may use (reference: 2).
        slots: `"shared"` or `"per_copy"` (see above).
        untrained: what a key that no training step has used since the last
            split gives. `"last_trained"` (uninas, the default): at a split
            every key starts unused; in training an unused key starts from
            the most recently used weights, and at evaluation (and
            extraction) it uses the copy trained last, staying unused (so
            scores do not depend on the order of evaluation).
            `"split_state"` (kerasnas before issue #35, what files without
            the option load with): at a split the existing copy becomes that
            of option 0 of the new prior and stays there, even if no path
            with that prior trains again (NB201's 'none' when 'none' is not
            trained).

    Call arguments:
        inputs: the input tensor.
        index: int32 scalar, this choice's option.
        priors: int32 vector, the priors' options (in `prior_labels` order).
        training: passed to the candidates.
    """

    def __init__(
        self, candidates, options, label, prior_labels=(), prior_sizes=(), max_depth=2,
        slots="shared", untrained="last_trained", **kwargs,
    ):
        super().__init__(candidates, options, label, prior_labels, prior_sizes, **kwargs)
        self.untrained = _check_option("untrained", untrained, SPLIT_UNTRAINED)
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(
                "Invalid value for argument `max_depth`. Expected a positive "
                f"int. Received: max_depth={max_depth!r}"
            )
        self.max_depth = max_depth
        self.slots = _check_option("slots", slots, SPLIT_SLOTS)
        sizes = self.prior_sizes[-max_depth:]
        self._key_sizes = sizes
        self._key_strides = [int(np.prod(sizes[i + 1:], dtype=np.int64)) for i in range(len(sizes))]
        self.num_copies = int(np.prod(sizes, dtype=np.int64)) if sizes else 1

    def build(self, input_shape):
        super().build(input_shape)
        self.depth = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="depth")
        self._build_banks()
        if self.untrained == "last_trained":
            # Per candidate: the key a training step used last.
            self.last_trained = self.add_weight(
                shape=(len(self.candidates),), dtype="int32", initializer="zeros", trainable=False,
                name="last_trained",
            )

    @property
    def max_key_depth(self):
        """The depth at which every prior of the key is used."""
        return len(self._key_sizes)

    def key(self, priors):
        """int32 scalar: the copy the path uses at the current depth."""
        if not self._key_sizes:
            return ops.convert_to_tensor(0, "int32")
        key_priors = ops.cast(ops.reshape(priors, (-1,)), "int32")[len(self.prior_sizes) - len(self._key_sizes):]
        position = ops.arange(len(self._key_sizes), dtype="int32")
        # The first (len - depth) digits are ignored: at a split the
        # existing copies become those of option 0 of the new prior.
        used = ops.greater_equal(position, len(self._key_sizes) - ops.cast(self.depth, "int32"))
        strides = ops.convert_to_tensor(self._key_strides, "int32")
        return ops.sum(ops.where(used, key_priors * strides, 0))

    def call(self, inputs, index, priors, training=None):
        if len(self.candidates) == 1:
            self._swap(0, self.key(priors), training)
            return self.candidates[0](inputs, training=training)
        key = self.key(priors)
        index = ops.cast(index, "int32")
        branches = [
            lambda x, o=o: self._run(o, key, x, training) for o in range(len(self.candidates))
        ]
        return ops.switch(index, branches, inputs)

    def _run(self, option, key, inputs, training):
        self._swap(option, key, training)
        return self.candidates[option](inputs, training=training)

    def _swap(self, option, key, training=False):
        if self.untrained == "split_state" or self.num_copies == 1 or in_stateless_scope():
            return super()._swap(option, key)
        key = ops.cast(key, "int32")
        used = self.seen[option, key] > 0
        if not training:  # an unused key: the copy trained last, and it stays unused
            key = tf.where(used, key, self.last_trained[option])
            used = self.seen[option, key] > 0

        def record():
            self.loaded.assign(tf.tensor_scatter_nd_update(self.loaded.value, [[option]], [key]))

        _load_copy(
            self.candidates[option].weights, self.banks[option], self.loaded[option], key, used, record,
            conditional=self.conditional_swaps,
        )
        if training:  # used by a training step, even when it was loaded already
            self.seen.assign(tf.tensor_scatter_nd_update(self.seen.value, [[option, key]], [1.0]))
            self.last_trained.assign(tf.tensor_scatter_nd_update(self.last_trained.value, [[option]], [key]))

    def load_path(self, index, priors):
        """Eagerly loads the copy the path `(priors, index)` uses (before a
        child is extracted from the live variables)."""
        self._swap(int(index), self.key(ops.convert_to_tensor(priors)))

    def set_depth(self, depth):
        """Sets the split depth (clipped to the priors available); with
        `untrained="last_trained"` a deeper split leaves every key unused."""
        depth = min(int(depth), self.max_depth, self.max_key_depth)
        if self.untrained == "last_trained" and depth > int(ops.convert_to_numpy(self.depth)):
            self.seen.assign(np.zeros(tuple(self.seen.shape), "float32"))
            self.last_trained.assign(ops.convert_to_numpy(self.loaded))
        self.depth.assign(depth)

    def get_config(self):
        return {**super().get_config(), "max_depth": self.max_depth, "slots": self.slots,
                "untrained": self.untrained}

    @classmethod
    def from_config(cls, config):
        # Files from before the option: the behaviour they were saved with.
        return super().from_config({"untrained": "split_state", **config})


def _load_copy(variables, banks, loaded, key, seen, record, conditional=True):
    """In the graph, when copy `loaded` is not `key`: stores `variables` as
    copy `loaded` of their `banks`, loads copy `key` into them (an unseen
    key, `seen` False, keeps the current values: the most recent copy) and
    runs `record()`, the caller's bookkeeping of seen and loaded copies.
    `conditional=False`: the same without a `tf.cond` (when `loaded` is
    `key` the row written is read back unchanged): a cheaper trace, one row
    copied per variable at every call."""

    def swap():
        for variable, bank in zip(variables, banks):
            _swap_copy(variable, bank, loaded, key, seen)
        record()
        return tf.constant(True)

    if not conditional:
        swap()
        return
    tf.cond(tf.not_equal(loaded, key), swap, lambda: tf.constant(False))


def _swap_copy(variable, bank, loaded, key, seen):
    """`bank[loaded] = variable; variable = bank[key] if seen else variable`."""
    current = ops.convert_to_tensor(variable)
    if tf.distribute.has_strategy():
        # Mirrored variables: a plain assignment of the whole bank.
        bank.assign(tf.tensor_scatter_nd_update(bank.value, [[loaded]], current[None]))
    else:  # in place, one row written
        bank.value.scatter_nd_update([[loaded]], current[None])
    variable.assign(tf.where(seen, tf.gather(bank.value, key), current))


@kerasnas_export("kerasnas.layers.InterChoices")
@keras.saving.register_keras_serializable(package="kerasnas")
class InterChoices(ChoiceFactory):
    """The choice factory of inter-choice dependent weights: single-path
    choices in which every choice with priors is a `BiasChoice` (`mode`
    `"bias"`, `"mul_bias"`, `"bias_sum"`) or a `SplitChoice` (`"split"`);
    a choice without priors is a plain `Choice` (the reference's rule). A
    child gets the path's biases folded into constants and the path's split
    copies (`Supernet.extract`).

    Args:
        mode: one of `"bias"`, `"mul_bias"`, `"bias_sum"`, `"split"`.
        priors: the choices each choice depends on (see
            `SearchSpace.resolve_priors`; default the space's
            `default_priors()`, for NAS-Bench-201 the reference's map).
        options: more arguments of the layers: `bias_updates` (bias modes),
            `max_depth`, `slots` and `untrained` (`"split"`; see
            `SplitChoice`).

    Example:

    ```python
    supernet = space.build_supernet(choices=kerasnas.layers.InterChoices("bias"))
    ```
    """

    def __init__(self, mode="bias", priors=None, options=None):
        if mode not in INTERCHOICE:
            raise ValueError(
                "Invalid value for argument `mode`. Expected one of "
                f"{list(INTERCHOICE)}. Received: mode={mode!r}"
            )
        options = dict(options or {})
        allowed = {"max_depth", "slots", "untrained"} if mode == "split" else {"bias_updates"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(
                "Invalid value for argument `options`. Expected keys "
                f"among {sorted(allowed)} for mode={mode!r}. "
                f"Received: {sorted(options)}"
            )
        if mode == "split":  # recorded: files without it load as they were made
            options["untrained"] = _check_option("untrained", options.get("untrained", "last_trained"),
                                                 SPLIT_UNTRAINED)
        self.mode = mode
        self.priors = priors
        self.options = options

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("mode") == "split":
            config["options"] = {"untrained": "split_state", **(config.get("options") or {})}
        return cls(**config)

    def make(self, candidates, options, label, *, name, dense, space):
        priors = space.resolve_priors(self.priors)[label]
        if not priors:
            return super().make(candidates, options, label, name=name, dense=dense, space=space)
        kwargs = dict(self.options)
        if self.mode == "split":
            cls = SplitChoice
        else:
            cls, kwargs["mode"] = BiasChoice, self.mode
        return cls(
            candidates, options=options, label=label, dense=dense, name=name,
            prior_labels=priors, prior_sizes=[len(space.choices[p]) for p in priors], **kwargs,
        )

    def get_config(self):
        priors = self.priors
        if isinstance(priors, dict):
            priors = {k: list(v) for k, v in priors.items()}
        elif priors is not None:
            priors = [list(p) for p in priors]
        return {"mode": self.mode, "priors": priors, "options": dict(self.options)}
