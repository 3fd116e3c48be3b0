"""Multiply-accumulates of a built Keras model, for spaces without a closed
form (`FunctionSpace.flops`)."""

import math

import keras
import numpy as np

from kerasnas.api_export import kerasnas_export

_CONV = keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D
_DEPTHWISE = (keras.layers.DepthwiseConv2D,)
_SEPARABLE = keras.layers.SeparableConv1D, keras.layers.SeparableConv2D
_TRANSPOSE = keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose
_UNCOUNTED = (keras.layers.EinsumDense,)


@kerasnas_export("kerasnas.spaces.count_flops")
def count_flops(model, input_shape=None):
    """Multiply-accumulates of one example through `model` (the xautodl
    convention of `NasBench201.flops` and `MobileNetSpace.flops`).

    A convolution counts `prod(kernel) * Cin / groups * Cout * prod(output
    spatial)`, a depthwise one `prod(kernel) * Cin * multiplier * prod(output
    spatial)`, a separable one both parts, a dense layer `in * out` per
    position; each bias adds its output's size. Normalization, activations,
    pooling and additions count nothing. Counted by calling the model once
    on zeros, so layers nested in subclassed layers and layers called more
    than once are counted as they run.

    Args:
        model: a built `keras.Model`.
        input_shape: one example's shape; default the model's input's.

    Raises:
        ValueError: for a layer whose cost this convention does not define
            (transposed convolutions, `EinsumDense`).
    """
    if input_shape is None:
        input_shape = tuple(model.inputs[0].shape[1:])
    counts = []
    patched = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, _TRANSPOSE + _UNCOUNTED):
            raise ValueError(
                f"Invalid value for argument `model`. Expected layers whose FLOPs are defined "
                f"(convolutions, depthwise and separable convolutions, dense). Received: layer "
                f"{layer.name!r} ({type(layer).__name__}); give the space a `flops(arch)` method."
            )
        if isinstance(layer, _CONV + _DEPTHWISE + _SEPARABLE + (keras.layers.Dense,)):
            object.__setattr__(layer, "call", _recorder(layer, layer.call, counts))
            patched.append(layer)
    try:
        model(np.zeros((1,) + tuple(input_shape), "float32"), training=False)
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")
    return int(sum(counts))


def _recorder(layer, call, counts):
    def recording(inputs, *args, **kwargs):
        outputs = call(inputs, *args, **kwargs)
        counts.append(_macs(layer, tuple(inputs.shape), tuple(outputs.shape)))
        return outputs

    return recording


def _macs(layer, input_shape, output_shape):
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(output_shape[1:-1])
        total = positions * input_shape[-1] * layer.units
        return total + (positions * layer.units if layer.use_bias else 0)
    cin = input_shape[-1] if channels_last else input_shape[1]
    spatial = math.prod(output_shape[1:-1] if channels_last else output_shape[2:])
    kernel = math.prod(layer.kernel_size)
    if isinstance(layer, _DEPTHWISE):
        cout = cin * layer.depth_multiplier
        total = kernel * cout * spatial
    elif isinstance(layer, _SEPARABLE):
        middle = cin * layer.depth_multiplier
        cout = layer.filters
        total = kernel * middle * spatial + middle * cout * spatial
    else:
        cout = layer.filters
        total = kernel * (cin // layer.groups) * cout * spatial
    return total + (cout * spatial if layer.use_bias else 0)
