"""Local weight sharing: M weight copies per candidate (DCNAS).

Every candidate of the choice holds `copies` copies of its weights and BN
statistics; the copy a path uses (its *sharing state* at this layer) is an
int32 input read in the graph, so one trace serves every architecture and
every sharing state. The live copy sits in the candidate's own variables
(the banks of `kerasnas.layers.SplitChoice`): extraction, saving and
evaluation read those.

Reference:
    Pan et al., "Distribution Consistent Neural Architecture Search", CVPR
    2022, Section 3.2.1 (no public code; `kerasnas.dcnas` documents our
    reading).
"""

import keras
import tensorflow as tf
from keras import ops
from keras.src.backend.common.stateless_scope import in_stateless_scope

from kerasnas.api_export import kerasnas_export
from kerasnas.layers.choice import Choice
from kerasnas.layers.factory import ChoiceFactory
from kerasnas.layers.interchoice import SPLIT_SLOTS
from kerasnas.layers.interchoice import _CopyBanks
from kerasnas.layers.interchoice import _check_option


def check_local_copies(copies, argument="local_copies"):
    """Validates M, the weight copies per candidate (an int >= 1)."""
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected an int M >= 1 "
            f"(weight copies per candidate). Received: {argument}={copies!r}"
        )
    return copies


@kerasnas_export("kerasnas.layers.LocalShareChoice")
class LocalShareChoice(_CopyBanks, Choice):
    """A `Choice` whose candidates hold `copies` weight copies each.

    Called with the option `index` and the `copy` the path uses. When the
    selected candidate's copy changes, its variables (weights and BN
    statistics) are stored in a bank and the copy is loaded in their place;
    a copy used for the first time starts from the candidate's most
    recently used weights (DCNAS-style reading: the paper initializes M
    copies without saying how). With `copies=1` it computes exactly what a
    `Choice` computes.

    With `record_input = True` (an attribute the DCNAS supernet sets on one
    choice per label before tracing) every call also stores the batch- and
    spatially-averaged input in the variable `pooled` (the feature
    `h^{l-1}` of the paper's meta network).

    Args:
        candidates, options, label: see `Choice` (`dense` must be False).
        copies: M, the weight copies per candidate (paper: 2).
        slots: `"shared"` (one set of optimizer slots for every copy) or
            `"per_copy"` (see `SplitChoice`).

    Call arguments:
        inputs: the input tensor.
        index: int32 scalar, this choice's option.
        copy: int32 scalar, the copy in `[0, copies)`.
        training: passed to the candidates.
    """

    record_input = False
    # Copies change at most steps (random states, two paths a step): a swap
    # without `tf.cond` traces faster and costs one row copy per variable.
    conditional_swaps = False

    def __init__(self, candidates, options, label, copies=2, slots="shared", **kwargs):
        super().__init__(candidates, options, label, **kwargs)
        if self.dense:
            raise ValueError(
                "Invalid value for argument `dense`. Local weight copies run the "
                "selected candidate only (`dense=False`). Received: dense=True"
            )
        self.num_copies = check_local_copies(copies, "copies")
        self.copies = self.num_copies
        self.slots = _check_option("slots", slots, SPLIT_SLOTS)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_banks()
        self.pooled = keras.Variable(
            initializer="zeros", shape=(input_shape[-1],), dtype="float32", trainable=False,
            synchronization="on_read", aggregation="mean", name="pooled",
        )

    def call(self, inputs, index, copy, training=None):
        if self.record_input and not in_stateless_scope():
            axes = tuple(range(len(inputs.shape) - 1))
            self.pooled.assign(ops.mean(ops.cast(inputs, "float32"), axis=axes))
        copy = ops.cast(copy, "int32")
        if len(self.candidates) == 1:
            self._swap(0, copy)
            return self.candidates[0](inputs, training=training)
        index = ops.cast(index, "int32")
        branches = [lambda x, o=o: self._run(o, copy, x, training) for o in range(len(self.candidates))]
        return ops.switch(index, branches, inputs)

    def select(self, inputs, selectors, labels):
        """The option and the copy: the path's entry of this label and the
        entry `len(labels)` after it (`LocalCopies.architecture_input`)."""
        position = labels.index(self.label)
        return self(inputs, selectors[position], copy=selectors[len(labels) + position])

    def load_copy(self, index, copy):
        """Eagerly loads copy `copy` of candidate `index` (before a child is
        extracted from the live variables)."""
        self._swap(int(index), tf.constant(int(copy), "int32"))

    def get_config(self):
        return {**super().get_config(), "copies": self.copies, "slots": self.slots}


@kerasnas_export("kerasnas.layers.LocalCopies")
@keras.saving.register_keras_serializable(package="kerasnas")
class LocalCopies(ChoiceFactory):
    """The choice factory of local weight sharing (DCNAS): a
    `LocalShareChoice` with `copies` weight copies per candidate at every
    choice point. The architecture input is the path followed by the copy
    each choice uses (`2 * num_choices` int32 entries).

    Args:
        copies: M, the weight copies per candidate (paper: 2).
        slots: `"shared"` or `"per_copy"` optimizer slots.
    """

    def __init__(self, copies=2, slots="shared"):
        self.copies = check_local_copies(copies)
        self.slots = _check_option("slots", slots, SPLIT_SLOTS)

    selectors_per_choice = 2

    def make(self, candidates, options, label, *, name, dense, space):
        return LocalShareChoice(
            candidates, options=options, label=label, dense=dense, name=name,
            copies=self.copies, slots=self.slots,
        )

    def make_value(self, layer, values, label, *, name, space):
        raise ValueError(
            f"Invalid value for argument `space`: its value choice {label!r} shares one layer "
            "among its values, and DCNAS' local weight copies are per candidate. Use "
            "`b.choice` with one candidate per value for DCNAS."
        )

    def get_config(self):
        return {"copies": self.copies, "slots": self.slots}
