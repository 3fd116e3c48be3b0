"""The single-path choice layer: the supernet module of one decision."""

import functools

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.ops.batch_norm import moving_stats_gate


@kerasnas_export("kerasnas.layers.Choice")
class Choice(keras.layers.Layer):
    """Holds every candidate of one decision and runs the selected one.

    The selection is a tensor (`index`, an int32 scalar) passed at call
    time, and the branch is picked in the graph with `keras.ops.switch`
    (`tf.switch_case`): one trace serves every architecture, and only the
    selected candidate runs. All candidates are built in `build()`, so the
    layer reloads from `.keras` files and the optimizer knows every variable
    from the first step.

    Choices that carry the same `label` take the same decision (the 15 cells
    of a NAS-Bench-201 network share one architecture).

    With `dense=True` every candidate runs and the selected output is picked
    with `where`: no control flow, at the cost of every candidate's compute.
    Unselected candidates still get zero gradients (the supernet's optimizer
    guard leaves them unchanged) and their `BatchNorm` moving statistics are
    not updated (`kerasnas.layers.moving_stats_gate`). This is the selection
    that allows cross-replica reductions inside candidates, i.e. synchronized
    BN under `tf.distribute.MirroredStrategy`; results equal the `switch`
    selection's.

    Args:
        candidates: list of layers, one per option, all mapping the input to
            outputs of the same shape.
        options: list of option names (strings), one per candidate.
        label: the name of the decision this layer takes.
        dense: run every candidate and select the output (see above) instead
            of running only the selected one in a `switch`.

    Call arguments:
        inputs: the input tensor.
        index: int32 scalar tensor, the position of the selected option.
        training: Python boolean or None, passed to the candidates.

    Example:

    ```python
    choice = kerasnas.layers.Choice(
        [kerasnas.ops.get("nor_conv_3x3", channels=16),
         kerasnas.ops.get("skip_connect", channels=16)],
        options=["nor_conv_3x3", "skip_connect"],
        label="edge",
    )
    y = choice(x, index=keras.ops.convert_to_tensor(1))
    ```
    """

    def __init__(self, candidates, options, label, dense=False, **kwargs):
        super().__init__(**kwargs)
        candidates = [
            c
            if isinstance(c, keras.layers.Layer)
            else keras.saving.deserialize_keras_object(c)
            for c in candidates
        ]
        if not candidates:
            raise ValueError(
                "Invalid value for argument `candidates`. Expected a non-empty "
                f"list of layers. Received: candidates={candidates}"
            )
        options = [str(o) for o in options]
        if len(options) != len(candidates):
            raise ValueError(
                "Invalid value for argument `options`. Expected one name per "
                f"candidate ({len(candidates)}). Received: options={options}"
            )
        self.candidates = candidates
        self.options = options
        self.label = str(label)
        self.dense = bool(dense)

    def build(self, input_shape):
        for candidate in self.candidates:
            if not candidate.built:
                candidate.build(input_shape)

    def call(self, inputs, index, training=None):
        if len(self.candidates) == 1:
            return self.candidates[0](inputs, training=training)
        index = ops.cast(index, "int32")
        if self.dense:
            return self._dense_call(inputs, index, training)
        # One branch per candidate, parameter-free ones included. Grouping
        # those into one branch that computes them all and selects with
        # `where` (3 branches per NAS-Bench-201 choice instead of 5) saved
        # about 1 s of a 40 s first step but made every step pay for the
        # group's pooling and selects: uniform-path training 1.24x and the
        # scoring forward pass 1.9x slower (tools/bench_supernet.py, bench_rank.py).
        return ops.switch(
            index,
            [functools.partial(self._run, k, training) for k in range(len(self.candidates))],
            inputs,
        )

    def _run(self, k, training, inputs):
        return self.candidates[k](inputs, training=training)

    def _dense_call(self, inputs, index, training):
        outputs = None
        for k, candidate in enumerate(self.candidates):
            selected = ops.equal(index, k)
            with moving_stats_gate(ops.cast(selected, "float32")):
                y = candidate(inputs, training=training)
            # `where`, not a one-hot product: a non-finite output of an
            # unselected candidate must not leak into the result.
            outputs = y if outputs is None else ops.where(selected, y, outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.candidates[0].compute_output_shape(input_shape)

    # === Hooks the supernet and the space builders call ===
    # The labels of earlier choices this one reads (inter-choice weights).
    prior_labels = ()
    # `{id(variable): bank entry}` of per-copy optimizer slots (`bind_slots`).
    slot_banks = None
    # Whether a step runs every candidate (mixed choices: DARTS, SNAS); the
    # supernet's graph optimizer setting follows it (`grappler="auto"`).
    runs_every_candidate = False

    def select(self, inputs, selectors, labels):
        """Calls the layer on `inputs` with its part of the architecture
        input: `selectors` are the network's per-choice rows (see
        `kerasnas.layers.ChoiceFactory.architecture_input`), `labels` the
        space's labels in their order. Subclasses that read more (priors,
        a copy) override it."""
        return self(inputs, selectors[labels.index(self.label)])

    def guarded_variables(self):
        """`[(variable, mask_fn(index, priors))]`: the layer's own variables
        a path uses in part; the supernet's optimizer moves only the masked
        entries (inter-choice biases). None here."""
        return []

    def bind_slots(self, slots_by_variable):
        """Called once the optimizer has its slots (`{id(variable): [slot
        variables]}` of the candidates); returns the variables the layer
        creates for them (per-copy slots of weight copies). None here."""
        return []

    def load_path(self, index, priors):
        """Before a child of the path `(priors, index)` is extracted from
        the live variables: loads what that path uses (a weight copy).
        Nothing here."""

    def fold(self, index, priors):
        """What the child of the path `(priors, index)` applies to this
        choice's input, as `(scale, offset)` constants (`x * scale +
        offset`), or None for nothing (here)."""
        return None

    def candidate_variables(self, option):
        """The trainable variables of the candidate named `option`."""
        return self.candidates[self.options.index(option)].trainable_variables

    def get_config(self):
        return {
            **super().get_config(),
            "candidates": [
                keras.saving.serialize_keras_object(c) for c in self.candidates
            ],
            "options": list(self.options),
            "label": self.label,
            "dense": self.dense,
        }
