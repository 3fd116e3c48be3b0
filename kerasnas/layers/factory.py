"""Choice factories: which choice layer a supernet's choice points become.

A search space says where its choice points are and what their candidates
are; a method says what kind of layer holds them. The space's builder (a
`kerasnas.spaces.NetworkBuild`) asks the supernet's factory for the
network's architecture input and for one choice layer per choice point,
and calls that layer's `select` hook; a child is built with the factory's
`for_child` side, which applies what the supernet folded for it (e.g.
inter-choice biases). A method that needs a new kind of choice writes one
factory and one layer; no space changes.

Factories are small serialisable objects (`get_config`); a supernet saves
its own in its config.
"""

import keras

from kerasnas.api_export import kerasnas_export
from kerasnas.config_value import ConfigValue
from kerasnas.layers.choice import Choice
from kerasnas.layers.mixed import MixedChoice
from kerasnas.layers.value_choice import ValueChoice


@kerasnas_export("kerasnas.layers.ChoiceFactory")
@keras.saving.register_keras_serializable(package="kerasnas")
class ChoiceFactory(ConfigValue):
    """Single-path choices (SPOS and every method that samples one path):
    a `kerasnas.layers.Choice` per choice point, a `ValueChoice` per value
    choice, and an int32 path (one option index per choice, in label order)
    as the network's architecture input.

    Subclasses override what differs: `architecture_input`, `make`,
    `make_value`, and for children `for_child`.
    """

    # Entries of the int32 path per choice (LocalCopies: the option, then
    # further on the copy).
    selectors_per_choice = 1

    def architecture_input(self, num_options):
        """The supernet network's architecture input and its per-choice rows
        (`(keras.Input, [selector per row])`), given the number of options
        of each choice in label order: here the int32 path,
        `selectors_per_choice` entries per choice. A choice layer's
        `select` reads its rows."""
        n = self.selectors_per_choice * len(num_options)
        tensor = keras.Input(batch_shape=(n,), dtype="int32", name="path")
        return tensor, [tensor[i] for i in range(n)]

    def make(self, candidates, options, label, *, name, dense, space):
        """The choice layer of one choice point.

        Args:
            candidates: the layers, one per option.
            options: the option names.
            label: the choice's label in `space`.
            name: the layer's name.
            dense: run every candidate and select the output (the space
                asks for it where BN is synchronized across replicas).
            space: the `kerasnas.spaces.SearchSpace` being built.
        """
        return Choice(candidates, options=options, label=label, dense=dense, name=name)

    def make_value(self, layer, values, label, *, name, space):
        """The layer of one value choice (`layer` built at the widest
        value); see `kerasnas.layers.ValueChoice`."""
        return ValueChoice(layer, values, label, name=name)

    def for_child(self, folded):
        """The factory of a child extracted from this factory's supernet:
        `folded` maps choice layer names to what their `fold` hook returned
        for the child's path (`(scale, offset)`, applied to that choice's
        input in the child)."""
        return ChildChoices(folded)

    def child_input(self, inputs, name):
        """A child's input to the candidate of the choice layer `name`."""
        return inputs


class ChildChoices(ChoiceFactory):
    """A child's side of a factory: applies the folded `(scale, offset)` of
    each choice layer named in `folded` to that choice's input (a
    `keras.layers.Rescaling` named `<choice name>_input`)."""

    def __init__(self, folded=None):
        self.folded = {k: v for k, v in (folded or {}).items() if v is not None}

    def child_input(self, inputs, name):
        if name not in self.folded:
            return inputs
        scale, offset = self.folded[name]
        return keras.layers.Rescaling(scale, offset, name=f"{name}_input")(inputs)

    def make(self, *args, **kwargs):
        raise ValueError("A child's factory builds no choice layer.")


@kerasnas_export("kerasnas.layers.MixedChoices")
@keras.saving.register_keras_serializable(package="kerasnas")
class MixedChoices(ChoiceFactory):
    """Mixed (weighted) choices, DARTS-style: a `kerasnas.layers.MixedChoice`
    per choice point; the architecture input is the float `(num_choices,
    max_options)` matrix of architecture weights, one row per choice."""

    def architecture_input(self, num_options):
        tensor = keras.Input(
            batch_shape=(len(num_options), max(num_options)), dtype="float32", name="arch_weights"
        )
        return tensor, [tensor[i] for i in range(len(num_options))]

    def make(self, candidates, options, label, *, name, dense, space):
        return MixedChoice(candidates, options=options, label=label, dense=dense, name=name)


def check_factory(choices, argument="choices"):
    """`choices` as a `ChoiceFactory` (None: the single-path default; a
    config dict is deserialized)."""
    if choices is None:
        return ChoiceFactory()
    if isinstance(choices, dict):
        choices = keras.saving.deserialize_keras_object(choices)
    if not isinstance(choices, ChoiceFactory):
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected a "
            "kerasnas.layers.ChoiceFactory (e.g. kerasnas.layers.MixedChoices(), "
            "kerasnas.layers.InterChoices('bias'), kerasnas.layers.LocalCopies(2)). "
            f"Received: {argument}={choices!r}"
        )
    return choices
