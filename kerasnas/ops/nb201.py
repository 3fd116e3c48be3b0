"""The candidate operations of NAS-Bench-201 (xautodl `cell_operations`).

PyTorch padding semantics are kept exactly (REFERENCE_NOTES §6): stride-1
convolutions pad symmetrically ('same' is symmetric for odd kernels at
stride 1), the stride-2 convolution of the residual block pads explicitly
by one on each side, and the 3x3 average pool leaves padding out of its
divisor (`count_include_pad=False`, which TF's 'same' pooling does).
"""

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import SublayerPolicy
from kerasnas.ops.batch_norm import BatchNorm


class _Op(keras.layers.Layer):
    """Base of the shape-preserving candidate ops: config + output shape."""

    def compute_output_shape(self, input_shape):
        return input_shape


@kerasnas_export("kerasnas.ops.ReLUConvBN")
class ReLUConvBN(SublayerPolicy, keras.layers.Layer):
    """ReLU, then a convolution, then batch normalization.

    As in xautodl, the convolution has a bias exactly when the BN is not
    affine (`bias = not affine`).

    Args:
        filters: output channels.
        kernel_size: int.
        strides: int; with stride 2 the input is padded by `kernel_size // 2`
            on every side before a 'valid' convolution (PyTorch semantics).
        affine: BN affine switch (and conv bias = not affine).
        track_running_stats: BN moving statistics switch.
        synchronized: synchronized batch moments across replicas.
        use_bias: overrides the conv bias; default `not affine`.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        affine=True,
        track_running_stats=True,
        synchronized=False,
        use_bias=None,
        virtual_batch_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.synchronized = bool(synchronized)
        self.use_bias = (not self.affine) if use_bias is None else bool(use_bias)
        self.virtual_batch_size = virtual_batch_size
        pad = self.kernel_size // 2
        explicit = self.strides > 1 and pad > 0
        self.pad = keras.layers.ZeroPadding2D(pad, name="pad") if explicit else None
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="valid" if explicit or pad == 0 else "same",
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.HeNormal(),
            name="conv",
        )
        self.bn = BatchNorm(
            affine=self.affine,
            track_running_stats=self.track_running_stats,
            synchronized=self.synchronized,
            virtual_batch_size=self.virtual_batch_size,
            name="bn",
        )

    def build(self, input_shape):
        shape = input_shape
        if self.pad is not None:
            self.pad.build(shape)
            shape = self.pad.compute_output_shape(shape)
        self.conv.build(shape)
        self.bn.build(self.conv.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = ops.relu(inputs)
        if self.pad is not None:
            x = self.pad(x)
        return self.bn(self.conv(x), training=training)

    def compute_output_shape(self, input_shape):
        shape = input_shape
        if self.pad is not None:
            shape = self.pad.compute_output_shape(shape)
        return self.conv.compute_output_shape(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "synchronized": self.synchronized,
            "use_bias": self.use_bias,
            "virtual_batch_size": self.virtual_batch_size,
        }


@kerasnas_export("kerasnas.ops.Zero")
class Zero(_Op):
    """The 'none' operation: zeros of the input's shape (no gradient path)."""

    def call(self, inputs):
        return ops.zeros_like(inputs)


@kerasnas_export("kerasnas.ops.Identity")
class Identity(_Op):
    """The 'skip_connect' operation inside a cell."""

    def call(self, inputs):
        return inputs


@kerasnas_export("kerasnas.ops.AvgPool3x3")
class AvgPool3x3(_Op):
    """3x3 average pool, stride 1, padding 1, `count_include_pad=False`."""

    def call(self, inputs):
        return ops.average_pool(inputs, 3, strides=1, padding="same")


@kerasnas_export("kerasnas.ops.ResNetBasicBlock")
class ResNetBasicBlock(SublayerPolicy, keras.layers.Layer):
    """The reduction block between NAS-Bench-201 stages (stride 2).

    `conv_a` = ReLU-Conv3x3(stride 2)-BN, `conv_b` = ReLU-Conv3x3-BN, the
    shortcut is AvgPool(2, 2) then a 1x1 conv without bias, BN or ReLU;
    output = shortcut + conv_b, no ReLU after the addition.

    Args:
        filters: output channels.
        affine, track_running_stats, synchronized: BN switches of both
            `ReLUConvBN`s (conv bias = not affine).
    """

    def __init__(
        self,
        filters,
        affine=True,
        track_running_stats=True,
        synchronized=False,
        virtual_batch_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.synchronized = bool(synchronized)
        self.virtual_batch_size = virtual_batch_size
        bn = dict(
            affine=affine,
            track_running_stats=track_running_stats,
            synchronized=synchronized,
            virtual_batch_size=virtual_batch_size,
        )
        self.conv_a = ReLUConvBN(filters, 3, strides=2, name="conv_a", **bn)
        self.conv_b = ReLUConvBN(filters, 3, strides=1, name="conv_b", **bn)
        self.shortcut = keras.layers.Conv2D(
            filters,
            1,
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            name="shortcut",
        )

    def build(self, input_shape):
        self.conv_a.build(input_shape)
        mid = self.conv_a.compute_output_shape(input_shape)
        self.conv_b.build(mid)
        self.shortcut.build(mid[:-1] + (input_shape[-1],))

    def call(self, inputs, training=None):
        residual = self.shortcut(ops.average_pool(inputs, 2, strides=2))
        x = self.conv_b(self.conv_a(inputs, training=training), training=training)
        return residual + x

    def compute_output_shape(self, input_shape):
        return self.conv_a.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "synchronized": self.synchronized,
            "virtual_batch_size": self.virtual_batch_size,
        }
