"""The candidate operations of the DARTS space (darts-pt `operations.py`).

PyTorch padding semantics are kept exactly (REFERENCE_NOTES §6): every
convolution and pool pads symmetrically by hand and then runs 'valid', so
stride-2 ops sample the same grid as the reference; max pools pad with
-inf, average pools leave the padding out of the divisor
(`count_include_pad=False`). Separable and dilated convolutions have no
bias; BN is `kerasnas.layers.BatchNorm` with PyTorch's momentum and epsilon.
"""

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import SublayerPolicy
from kerasnas.ops.batch_norm import BatchNorm


def _bn(affine, name="bn", **bn):
    return BatchNorm(affine=affine, name=name, **bn)


class _DartsOp(SublayerPolicy, keras.layers.Layer):
    """Config plumbing shared by the DARTS ops."""

    def __init__(self, filters, strides=1, affine=True, bn_options=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.affine = bool(affine)
        self.bn_options = dict(bn_options or {})

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "affine": self.affine,
            "bn_options": dict(self.bn_options),
        }


def _pad(x, pad, value=0.0):
    if not pad:
        return x
    return ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], constant_values=value)


@kerasnas_export("kerasnas.ops.DartsReLUConvBN")
class DartsReLUConvBN(_DartsOp):
    """ReLU, convolution (no bias, symmetric padding), BN: DARTS' cell
    preprocessing (1x1) and the auxiliary head's blocks."""

    def __init__(self, filters, kernel_size=1, strides=1, affine=True, bn_options=None, **kwargs):
        super().__init__(filters, strides, affine, bn_options, **kwargs)
        self.kernel_size = int(kernel_size)
        self.conv = keras.layers.Conv2D(
            self.filters, self.kernel_size, strides=self.strides, padding="valid",
            use_bias=False, kernel_initializer=keras.initializers.HeNormal(), name="conv",
        )
        self.bn = _bn(self.affine, **self.bn_options)

    def build(self, input_shape):
        pad = self.kernel_size // 2
        shape = (input_shape[0], _grow(input_shape[1], pad), _grow(input_shape[2], pad), input_shape[3])
        self.conv.build(shape)
        self.bn.build(self.conv.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = _pad(ops.relu(inputs), self.kernel_size // 2)
        return self.bn(self.conv(x), training=training)

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, self.filters, self.kernel_size, self.strides, 1)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@kerasnas_export("kerasnas.ops.DilConv")
class DilConv(_DartsOp):
    """ReLU, depthwise k x k (dilation d, stride s, pad `d * (k - 1) / 2`),
    1x1 conv, BN. With stride 2 and dilation 2 (TF cannot combine them) the
    depthwise conv runs at stride 1 and is subsampled: the same outputs."""

    def __init__(self, filters, kernel_size, strides=1, dilation_rate=1, affine=True, bn_options=None, **kwargs):
        super().__init__(filters, strides, affine, bn_options, **kwargs)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self._subsample = self.strides > 1 and self.dilation_rate > 1
        self.depthwise = keras.layers.DepthwiseConv2D(
            self.kernel_size, strides=1 if self._subsample else self.strides, padding="valid",
            dilation_rate=self.dilation_rate, use_bias=False, name="depthwise",
        )
        self.pointwise = keras.layers.Conv2D(
            self.filters, 1, use_bias=False, kernel_initializer=keras.initializers.HeNormal(),
            name="pointwise",
        )
        self.bn = _bn(self.affine, **self.bn_options)

    @property
    def _padding(self):
        return self.dilation_rate * (self.kernel_size - 1) // 2

    def build(self, input_shape):
        pad = self._padding
        shape = (input_shape[0], _grow(input_shape[1], pad), _grow(input_shape[2], pad), input_shape[3])
        self.depthwise.build(shape)
        out = self.compute_output_shape(input_shape)
        self.pointwise.build(out[:3] + (input_shape[3],))
        self.bn.build(out)

    def call(self, inputs, training=None):
        x = self.depthwise(_pad(ops.relu(inputs), self._padding))
        if self._subsample:
            x = x[:, :: self.strides, :: self.strides, :]
        return self.bn(self.pointwise(x), training=training)

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, self.filters, self.kernel_size, self.strides, self.dilation_rate)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "dilation_rate": self.dilation_rate}


@kerasnas_export("kerasnas.ops.SepConv")
class SepConv(_DartsOp):
    """DARTS' separable convolution: the (ReLU, depthwise, 1x1, BN) block
    twice, the first with the stride (inside DARTS cells input and output
    channels are equal, so both blocks map `filters` to `filters`)."""

    def __init__(self, filters, kernel_size, strides=1, affine=True, bn_options=None, **kwargs):
        super().__init__(filters, strides, affine, bn_options, **kwargs)
        self.kernel_size = int(kernel_size)
        self.first = DilConv(
            self.filters, self.kernel_size, self.strides, 1, self.affine, self.bn_options, name="first"
        )
        self.second = DilConv(
            self.filters, self.kernel_size, 1, 1, self.affine, self.bn_options, name="second"
        )

    def build(self, input_shape):
        self.first.build(input_shape)
        self.second.build(self.first.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.second(self.first(inputs, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, self.filters, self.kernel_size, self.strides, 1)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@kerasnas_export("kerasnas.ops.FactorizedReduce")
class FactorizedReduce(_DartsOp):
    """ReLU, two 1x1 stride-2 convs (on x and on x shifted by one pixel),
    concatenated (filters / 2 each), BN."""

    def __init__(self, filters, affine=True, bn_options=None, strides=2, **kwargs):
        if strides != 2:
            raise ValueError(
                f"Invalid value for argument `strides`. Expected 2. Received: strides={strides!r}"
            )
        super().__init__(filters, 2, affine, bn_options, **kwargs)
        if self.filters % 2:
            raise ValueError(
                "Invalid value for argument `filters`. Expected an even number "
                f"(two halves). Received: filters={filters}"
            )
        conv = lambda name: keras.layers.Conv2D(
            self.filters // 2, 1, strides=2, use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(), name=name,
        )
        self.conv_1, self.conv_2 = conv("conv_1"), conv("conv_2")
        self.bn = _bn(self.affine, **self.bn_options)

    def build(self, input_shape):
        self.conv_1.build(input_shape)
        shifted = (input_shape[0], _grow(input_shape[1], -0.5), _grow(input_shape[2], -0.5), input_shape[3])
        self.conv_2.build(shifted)
        self.bn.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = ops.relu(inputs)
        y = ops.concatenate([self.conv_1(x), self.conv_2(x[:, 1:, 1:, :])], axis=-1)
        return self.bn(y, training=training)

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, self.filters, 1, 2, 1)


@kerasnas_export("kerasnas.ops.DartsPool")
class DartsPool(_DartsOp):
    """3x3 max or average pool, pad 1 (max: -inf; average: out of the
    divisor), stride s; with `bn=True` followed by BN without affine
    parameters, as in DARTS' search MixedOp."""

    def __init__(self, filters, strides=1, mode="max", bn=False, affine=False, bn_options=None, **kwargs):
        super().__init__(filters, strides, affine, bn_options, **kwargs)
        if mode not in ("max", "avg"):
            raise ValueError(f"Invalid value for argument `mode`. Expected 'max' or 'avg'. Received: {mode!r}")
        self.mode = mode
        self.use_bn = bool(bn)
        self.bn = _bn(False, **self.bn_options) if self.use_bn else None

    def build(self, input_shape):
        if self.bn is not None:
            self.bn.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        s = self.strides
        if self.mode == "max":
            y = ops.max_pool(_pad(inputs, 1, float("-inf")), 3, strides=s, padding="valid")
        else:
            total = ops.average_pool(_pad(inputs, 1), 3, strides=s, padding="valid")
            ones = ops.ones_like(inputs[:1, :, :, :1])
            count = ops.average_pool(_pad(ones, 1), 3, strides=s, padding="valid")
            y = total / count
        return self.bn(y, training=training) if self.bn is not None else y

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, input_shape[-1], 3, self.strides, 1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "bn": self.use_bn}


@kerasnas_export("kerasnas.ops.DartsZero")
class DartsZero(_DartsOp):
    """'none': zeros of the (strided) input's shape."""

    def call(self, inputs):
        return ops.zeros_like(inputs[:, :: self.strides, :: self.strides, :])

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, input_shape[-1], 1, self.strides, 1)


@kerasnas_export("kerasnas.ops.DartsIdentity")
class DartsIdentity(_DartsOp):
    """'skip_connect' at stride 1."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


@kerasnas_export("kerasnas.ops.Noise")
class Noise(_DartsOp):
    """RobustDARTS' 'noise' op (space S4): standard normal noise of the
    (strided) input's shape, in training and inference."""

    def __init__(self, filters, strides=1, affine=True, bn_options=None, seed=None, **kwargs):
        super().__init__(filters, strides, affine, bn_options, **kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        return keras.random.normal(ops.shape(x), dtype=x.dtype, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return _conv_shape(input_shape, input_shape[-1], 1, self.strides, 1)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


DARTS_OPS = (
    "none", "noise", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)


@kerasnas_export("kerasnas.ops.darts_op")
def darts_op(name, filters, strides=1, affine=True, search=False, bn_options=None, layer_name=None):
    """A DARTS candidate by name (`DARTS_OPS`); `search=True` puts BN after
    the pools (DARTS' search MixedOp)."""
    bn = dict(bn_options or {})
    common = dict(affine=affine, bn_options=bn, name=layer_name)
    if name == "none":
        return DartsZero(filters, strides, **common)
    if name == "noise":
        return Noise(filters, strides, **common)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return DartsPool(filters, strides, mode=name[:3], bn=search, bn_options=bn, name=layer_name)
    if name == "skip_connect":
        return DartsIdentity(filters, 1, **common) if strides == 1 else FactorizedReduce(filters, **common)
    if name.startswith("sep_conv_"):
        return SepConv(filters, int(name[-1]), strides, **common)
    if name.startswith("dil_conv_"):
        return DilConv(filters, int(name[-1]), strides, 2, **common)
    raise ValueError(
        f"Invalid value for argument `name`. Expected one of {list(DARTS_OPS)}. Received: name={name!r}"
    )


def _grow(size, pad):
    if size is None:
        return None
    return int(size + 2 * pad)


def _conv_shape(input_shape, filters, kernel, strides, dilation):
    pad = dilation * (kernel - 1) // 2

    def out(size):
        if size is None:
            return None
        return (size + 2 * pad - dilation * (kernel - 1) - 1) // strides + 1

    return (input_shape[0], out(input_shape[1]), out(input_shape[2]), filters)
