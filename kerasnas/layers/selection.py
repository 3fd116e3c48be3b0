"""What a space builder needs to build a single-path or a mixed supernet."""

import keras

from kerasnas.layers.choice import Choice
from kerasnas.layers.mixed import MixedChoice


CHOICE_TYPES = ("single", "mixed")


def check_choice_type(choice_type):
    """Validates a space builder's `choice_type` argument."""
    if choice_type not in CHOICE_TYPES:
        raise ValueError(
            "Invalid value for argument `choice_type`. Expected one of "
            f"{list(CHOICE_TYPES)}. Received: choice_type={choice_type!r}"
        )
    return choice_type


def architecture_input(num_options, choice_type="single"):
    """The supernet network's architecture input and its per-choice rows.

    `"single"`: the int32 path, one option index per choice (label order).
    `"mixed"`: the float `(num_choices, max_options)` matrix of architecture
    weights, one row per choice. Returns `(keras.Input, [selector per
    choice])`; a space builder passes each selector to its choice layer.
    """
    check_choice_type(choice_type)
    num_choices = len(num_options)
    if choice_type == "single":
        tensor = keras.Input(batch_shape=(num_choices,), dtype="int32", name="path")
    else:
        tensor = keras.Input(
            batch_shape=(num_choices, max(num_options)), dtype="float32", name="arch_weights"
        )
    return tensor, [tensor[i] for i in range(num_choices)]


def make_choice(candidates, options, label, choice_type="single", dense=False, name=None):
    """A `Choice` (`"single"`) or a `MixedChoice` (`"mixed"`) layer."""
    cls = Choice if check_choice_type(choice_type) == "single" else MixedChoice
    return cls(candidates, options=options, label=label, dense=dense, name=name)
