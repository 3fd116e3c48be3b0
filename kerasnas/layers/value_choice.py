"""Value choices: one layer whose narrower candidates are slices of the widest."""

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.layers.ValueChoice")
class ValueChoice(keras.layers.Layer):
    """A width choice on one layer whose candidates share its weights.

    `layer` is built at the widest value; the candidate of value `v`
    computes the first `v` output channels of it and zeroes the others, so
    that what follows sees exactly a width-`v` layer's output (zeros
    contribute nothing to a convolution, a dense layer or a pooling after
    it). A child built with width `v` gets the first `v` channels of the
    weights and the layers after it the matching rows (`Supernet.extract`
    slices). The channels past `v` get zero gradients in a step of width
    `v` (momentum still moves them, as in the sliced PyTorch supernets).

    Args:
        layer: the layer at the widest value (its output's last axis has
            `max(values)` channels).
        values: the widths, ints, one per option.
        label: the name of the decision.

    Call arguments:
        inputs: the input tensor.
        index: int32 scalar, the position of the selected value; or a float
            vector of weights over the values (mixed choices, DARTS): the
            output is the weighted sum of the candidates' outputs.
    """

    def __init__(self, layer, values, label, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, keras.layers.Layer):
            layer = keras.saving.deserialize_keras_object(layer)
        values = [int(v) for v in values]
        if not values or min(values) < 1 or len(set(values)) != len(values):
            raise ValueError(
                "Invalid value for argument `values`. Expected distinct positive ints. "
                f"Received: values={values}"
            )
        self.layer = layer
        self.values = values
        self.label = str(label)
        self.options = [str(v) for v in values]

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, inputs, index, training=None):
        y = self.layer(inputs, training=training)
        channels = ops.arange(max(self.values), dtype="int32")
        widths = ops.convert_to_tensor(self.values, dtype="int32")
        if "float" in str(index.dtype):  # mixed: weights over the values
            weights = ops.cast(index[: len(self.values)], y.dtype)
            masks = ops.cast(channels[None, :] < widths[:, None], y.dtype)
            return y * ops.sum(weights[:, None] * masks, axis=0)
        width = ops.take(widths, ops.cast(index, "int32"))
        return y * ops.cast(channels < width, y.dtype)

    def select(self, inputs, selectors, labels):
        """Calls the layer with its row of the architecture input (see
        `kerasnas.layers.Choice.select`)."""
        return self(inputs, selectors[labels.index(self.label)])

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "layer": keras.saving.serialize_keras_object(self.layer),
            "values": list(self.values),
            "label": self.label,
        }
