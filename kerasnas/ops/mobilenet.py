"""The inverted-residual (MBConv) block of MobileNetV2 / ProxylessNAS / SPOS.

PyTorch padding semantics are kept exactly (REFERENCE_NOTES §6): at stride
1 the depthwise convolution pads 'same' (symmetric for odd kernels); at a
larger stride the input is padded explicitly by `kernel_size // 2` on every
side before a 'valid' convolution, so that the sampling grid matches
PyTorch's symmetric `padding=k // 2` (TF's 'same' pads 0 before and 1 after
on even inputs).
"""

import numbers

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import SublayerPolicy
from kerasnas.ops.batch_norm import BatchNorm


@kerasnas_export("kerasnas.ops.InvertedResidual")
class InvertedResidual(SublayerPolicy, keras.layers.Layer):
    """MobileNetV2's inverted residual block ("MBConv").

    A 1x1 expansion convolution to `expansion * input_channels` channels
    + BN + ReLU6 (left out when `expansion == 1`), a `kernel_size` x
    `kernel_size` depthwise convolution with stride `strides` + BN + ReLU6,
    then a 1x1 projection convolution to `filters` channels + BN without
    activation. The input is added to the output when the block keeps the
    shape (`strides == 1` and input channels == `filters`). Convolutions
    have no bias and a He-normal initialization. The input channels are
    read from the input shape in `build()`.

    Reference:
        Sandler et al., "MobileNetV2: Inverted Residuals and Linear
        Bottlenecks", CVPR 2018; Cai et al., "ProxylessNAS: Direct Neural
        Architecture Search on Target Task and Hardware", ICLR 2019.

    Args:
        filters: output channels.
        kernel_size: odd int, the depthwise kernel size.
        expansion: int >= 1, the expansion ratio of the hidden channels.
        strides: int, the stride of the depthwise convolution; above 1 the
            input is padded by `kernel_size // 2` on every side before a
            'valid' convolution (PyTorch semantics).
        affine: BN scale and offset switch (see `kerasnas.ops.BatchNorm`).
        track_running_stats: BN moving statistics switch.
        synchronized: synchronized batch moments across replicas.
        virtual_batch_size: "ghost" BN groups.
        **kwargs: base layer arguments (e.g. `name`).

    Call arguments:
        inputs: NHWC tensor.
        training: Python boolean or None, passed to the BN layers.

    Input shape:
        `(batch, height, width, input_channels)`.

    Output shape:
        `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Example:

    ```python
    block = kerasnas.ops.InvertedResidual(40, kernel_size=5, expansion=6,
                                          strides=2)
    y = block(keras.random.normal((2, 32, 32, 24)))  # (2, 16, 16, 40)
    ```
    """

    def __init__(
        self,
        filters,
        kernel_size,
        expansion,
        strides=1,
        affine=True,
        track_running_stats=True,
        synchronized=False,
        virtual_batch_size=None,
        **kwargs,
    ):
        for name, value in (
            ("filters", filters),
            ("kernel_size", kernel_size),
            ("expansion", expansion),
            ("strides", strides),
        ):
            if not _is_positive_int(value):
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected a positive "
                    f"int. Received: {name}={value!r}"
                )
        if kernel_size % 2 == 0:
            raise ValueError(
                "Invalid value for argument `kernel_size`. Expected an odd "
                f"int. Received: kernel_size={kernel_size!r}"
            )
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.expansion = int(expansion)
        self.strides = int(strides)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.synchronized = bool(synchronized)
        self.virtual_batch_size = virtual_batch_size
        # Explicit symmetric padding before a strided depthwise convolution.
        self._explicit_pad = self.strides > 1 and self.kernel_size > 1
        # Whether the input is added to the output; known in `build()`.
        self.residual = False

    def _bn(self, name):
        return BatchNorm(
            affine=self.affine,
            track_running_stats=self.track_running_stats,
            synchronized=self.synchronized,
            virtual_batch_size=self.virtual_batch_size,
            name=name,
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        input_channels = int(input_shape[-1])
        hidden = input_channels * self.expansion
        self.residual = self.strides == 1 and input_channels == self.filters
        shape = input_shape
        if self.expansion != 1:
            self.expand_conv = keras.layers.Conv2D(
                hidden, 1, use_bias=False,
                kernel_initializer=keras.initializers.HeNormal(),
                name="expand_conv",
            )
            self.expand_conv.build(shape)
            shape = self.expand_conv.compute_output_shape(shape)
            self.expand_bn = self._bn("expand_bn")
            self.expand_bn.build(shape)
        if self._explicit_pad:
            self.depthwise_pad = keras.layers.ZeroPadding2D(
                self.kernel_size // 2, name="depthwise_pad"
            )
            self.depthwise_pad.build(shape)
            shape = self.depthwise_pad.compute_output_shape(shape)
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            self.kernel_size,
            strides=self.strides,
            padding="valid" if self._explicit_pad else "same",
            use_bias=False,
            depthwise_initializer=keras.initializers.HeNormal(),
            name="depthwise_conv",
        )
        self.depthwise_conv.build(shape)
        shape = self.depthwise_conv.compute_output_shape(shape)
        self.depthwise_bn = self._bn("depthwise_bn")
        self.depthwise_bn.build(shape)
        self.project_conv = keras.layers.Conv2D(
            self.filters, 1, use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            name="project_conv",
        )
        self.project_conv.build(shape)
        shape = self.project_conv.compute_output_shape(shape)
        self.project_bn = self._bn("project_bn")
        self.project_bn.build(shape)

    def call(self, inputs, training=None):
        x = inputs
        if self.expansion != 1:
            x = ops.relu6(self.expand_bn(self.expand_conv(x), training=training))
        if self._explicit_pad:
            x = self.depthwise_pad(x)
        x = ops.relu6(self.depthwise_bn(self.depthwise_conv(x), training=training))
        x = self.project_bn(self.project_conv(x), training=training)
        if self.residual:
            x = x + inputs
        return x

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else -(-int(size) // self.strides)

        return (
            input_shape[0],
            reduce(input_shape[1]),
            reduce(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "expansion": self.expansion,
            "strides": self.strides,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "synchronized": self.synchronized,
            "virtual_batch_size": self.virtual_batch_size,
        }


def _is_positive_int(value):
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= 1
    )
