"""The MobileNetV2 chain space of ProxylessNAS and SPOS."""

import numbers

import keras

from kerasnas import ops as nas_ops
from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import logits_policy
from kerasnas.layers import BatchNorm
from kerasnas.spaces.builder import NetworkBuild
from kerasnas.spaces.search_space import SearchSpace

# BN switches (affine, track_running_stats), the same in every layer.
MOBILENET_BN_MODES = {
    # Stand-alone networks and SPOS/ProxylessNAS supernets.
    "standard": (True, True),
    # PA&DA-style supernets: batch statistics always, no affine parameters.
    "batch": (False, False),
}

SKIP = "skip"


def mbconv_name(kernel_size, expansion):
    """The option name of an inverted residual block: `"mbconv_k5_e6"`."""
    return f"mbconv_k{kernel_size}_e{expansion}"


@kerasnas_export("kerasnas.spaces.MobileNetSpace")
class MobileNetSpace(SearchSpace):
    """A chain of searchable MobileNetV2 blocks (ProxylessNAS / SPOS space).

    The network is a 3x3 stem convolution (stride `stem_strides`) + BN +
    ReLU6, a fixed inverted residual block (3x3, expansion 1) to
    `first_block_filters` channels, then `len(stage_filters)` stages of
    searchable layers, a 1x1 convolution to `last_filters` channels + BN +
    ReLU6, global average pooling and a linear classifier.

    Stage `s` has `stage_depths[s]` layers with `stage_filters[s]` output
    channels; its first layer has the stage's stride and changes the width.
    Every layer chooses an inverted residual block
    (`kerasnas.ops.InvertedResidual`) among the kernel sizes x expansion
    ratios, named `"mbconv_k{k}_e{e}"` (kernel-major order). The other layers
    of a stage (stride 1, same width) may also be `"skip"` (identity; the
    last option) when `skip=True`, which makes the depth searchable. The
    choices are labelled `"layer0"`, `"layer1"`, ... in network order.

    The defaults are ProxylessNAS's mobile setting on ImageNet, the chain
    space PA&DA searches: 21 searchable layers of 6 blocks (kernel sizes
    3, 5, 7 x expansion rates 3, 6) + skip, the first layer of each stage
    without skip, 6^6 * 7^15 architectures.

    Strided convolutions pad like PyTorch (explicit symmetric padding then
    'valid'), so weights converted from the reference code give the same
    outputs.

    Reference:
        Cai et al., "ProxylessNAS: Direct Neural Architecture Search on
        Target Task and Hardware", ICLR 2019; Guo et al., "Single Path
        One-Shot Neural Architecture Search with Uniform Sampling", ECCV
        2020.

    Args:
        num_classes: number of classes of the classifier.
        input_shape: (height, width, channels) of the images; height and
            width must be divisible by the total stride (`stem_strides`
            times the product of `stage_strides`).
        stem_filters: channels of the stem convolution.
        stem_strides: stride of the stem convolution.
        first_block_filters: output channels of the fixed first block.
        stage_filters: output channels of each stage.
        stage_depths: number of searchable layers of each stage.
        stage_strides: stride of the first layer of each stage.
        kernel_sizes: depthwise kernel sizes to choose from (odd ints).
        expansions: expansion ratios to choose from (positive ints).
        skip: whether the layers after the first of each stage may be
            skipped.
        last_filters: channels of the last 1x1 convolution.

    Example:

    ```python
    space = kerasnas.spaces.MobileNetSpace()
    arch = space.sample(seed=0)  # {"layer0": "mbconv_k5_e3", ...}
    print(space.params(arch), space.flops(arch))
    supernet = space.build_supernet(seed=0)
    child = space.build_child(arch)
    ```
    """

    def __init__(
        self,
        num_classes=1000,
        input_shape=(224, 224, 3),
        stem_filters=32,
        stem_strides=2,
        first_block_filters=16,
        stage_filters=(24, 40, 80, 96, 192, 320),
        stage_depths=(4, 4, 4, 4, 4, 1),
        stage_strides=(2, 2, 2, 1, 2, 1),
        kernel_sizes=(3, 5, 7),
        expansions=(3, 6),
        skip=True,
        last_filters=1280,
    ):
        for name, value in (
            ("num_classes", num_classes),
            ("stem_filters", stem_filters),
            ("stem_strides", stem_strides),
            ("first_block_filters", first_block_filters),
            ("last_filters", last_filters),
        ):
            if not _is_positive_int(value):
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected a positive "
                    f"int. Received: {name}={value!r}"
                )
        stage_filters = _int_tuple("stage_filters", stage_filters)
        stage_depths = _int_tuple("stage_depths", stage_depths)
        stage_strides = _int_tuple("stage_strides", stage_strides)
        for name, value in (
            ("stage_depths", stage_depths),
            ("stage_strides", stage_strides),
        ):
            if len(value) != len(stage_filters):
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected one entry "
                    f"per stage, as in `stage_filters` ({len(stage_filters)}). "
                    f"Received: {name}={value}"
                )
        kernel_sizes = _int_tuple("kernel_sizes", kernel_sizes, distinct=True)
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(
                "Invalid value for argument `kernel_sizes`. Expected odd "
                f"kernel sizes. Received: kernel_sizes={kernel_sizes}"
            )
        expansions = _int_tuple("expansions", expansions, distinct=True)
        if not isinstance(skip, bool):
            raise ValueError(
                "Invalid value for argument `skip`. Expected a bool. "
                f"Received: skip={skip!r}"
            )
        try:
            input_shape = tuple(input_shape)
        except TypeError:
            input_shape = (input_shape,)
        total_stride = int(stem_strides)
        for s in stage_strides:
            total_stride *= s
        if (
            len(input_shape) != 3
            or not all(_is_positive_int(d) for d in input_shape)
            or input_shape[0] % total_stride
            or input_shape[1] % total_stride
        ):
            raise ValueError(
                "Invalid value for argument `input_shape`. Expected (height, "
                "width, channels) with height and width divisible by the "
                f"total stride {total_stride} (stem_strides x stage_strides). "
                f"Received: input_shape={input_shape}"
            )
        self.num_classes = int(num_classes)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.stem_filters = int(stem_filters)
        self.stem_strides = int(stem_strides)
        self.first_block_filters = int(first_block_filters)
        self.stage_filters = stage_filters
        self.stage_depths = stage_depths
        self.stage_strides = stage_strides
        self.kernel_sizes = kernel_sizes
        self.expansions = expansions
        self.skip = skip
        self.last_filters = int(last_filters)

        blocks = tuple(mbconv_name(k, e) for k in kernel_sizes for e in expansions)
        choices = {}
        for layer in self._layer_plan():
            options = blocks + (SKIP,) if layer["skippable"] else blocks
            choices[layer["label"]] = options
        super().__init__(choices)

    # === Structure ===
    def _layer_plan(self):
        """The searchable layers in network order, with their shapes:
        `{label, filters_in, filters, strides, input_hw, output_hw,
        skippable}`."""
        height = self.input_shape[0] // self.stem_strides
        width = self.input_shape[1] // self.stem_strides
        channels = self.first_block_filters
        layers = []
        for filters, depth, strides in zip(
            self.stage_filters, self.stage_depths, self.stage_strides
        ):
            for i in range(depth):
                stride = strides if i == 0 else 1
                layers.append(
                    dict(
                        label=f"layer{len(layers)}",
                        filters_in=channels,
                        filters=filters,
                        strides=stride,
                        input_hw=(height, width),
                        output_hw=(height // stride, width // stride),
                        skippable=self.skip and i > 0,
                    )
                )
                height, width, channels = height // stride, width // stride, filters
        return layers

    # === Cost model of the stand-alone child ===
    def params(self, arch, bn="standard"):
        """Trainable parameters of `build_child(arch, bn=bn)` (closed form)."""
        arch = self.validate(arch)
        affine, _ = _bn_mode(bn)
        bn_params = lambda c: 2 * c if affine else 0  # noqa: E731
        total = 9 * self.input_shape[2] * self.stem_filters + bn_params(self.stem_filters)
        total += _mbconv_params(
            self.stem_filters, self.first_block_filters, 3, 1, bn_params
        )
        for layer in self._layer_plan():
            option = arch[layer["label"]]
            if option == SKIP:
                continue
            k, e = _parse_mbconv(option)
            total += _mbconv_params(layer["filters_in"], layer["filters"], k, e, bn_params)
        total += self.stage_filters[-1] * self.last_filters + bn_params(self.last_filters)
        total += self.last_filters * self.num_classes + self.num_classes
        return int(total)

    def display_string(self, arch):
        """`"k3e6-k5e3-skip"`: each layer's option without `mbconv_` and `_`."""
        arch = self.validate(arch)
        return "-".join(arch[label].replace("mbconv_", "").replace("_", "") for label in self.labels)

    def flops(self, arch):
        """Multiply-accumulates of the stand-alone child.

        A convolution counts `k*k*Cin*Cout*Hout*Wout`, a depthwise one
        `k*k*C*Hout*Wout`, the classifier `in*out + out`; BN, activations,
        padding, pooling and additions count nothing.
        """
        arch = self.validate(arch)
        height = self.input_shape[0] // self.stem_strides
        width = self.input_shape[1] // self.stem_strides
        total = 9 * self.input_shape[2] * self.stem_filters * height * width
        total += _mbconv_flops(
            self.stem_filters, self.first_block_filters, 3, 1,
            (height, width), (height, width),
        )
        for layer in self._layer_plan():
            height, width = layer["output_hw"]
            option = arch[layer["label"]]
            if option == SKIP:
                continue
            k, e = _parse_mbconv(option)
            total += _mbconv_flops(
                layer["filters_in"], layer["filters"], k, e,
                layer["input_hw"], layer["output_hw"],
            )
        total += self.stage_filters[-1] * self.last_filters * height * width
        total += self.last_filters * self.num_classes + self.num_classes
        return int(total)

    # === Builders ===
    def build_child(self, arch, name="mobilenet_child", **options):
        """The stand-alone network of `arch`: a plain functional `keras.Model`.

        A skipped layer is left out of the graph; every other layer is one
        `kerasnas.ops.InvertedResidual` named `"{label}_{option}"`, as the
        candidate it inherits weights from in the supernet.
        """
        return self.build_network(arch=self.validate(arch), name=name, **options)

    def build_network(
        self,
        arch=None,
        bn="standard",
        synchronized_bn=False,
        virtual_batch_size=None,
        dense_choices=None,
        choices=None,
        name=None,
    ):
        """The functional network: the supernet's (`arch=None`) or a child's.

        The supernet network takes `[images, architecture input]` (that of
        `choices`, the method's `kerasnas.layers.ChoiceFactory`; default the
        int32 path of option indices in label order); a child takes images.
        Both are built by this one function, so their layers carry the same
        names and weights transfer by name (`Supernet.extract`).
        """
        affine, track = _bn_mode(bn)
        if arch is not None:
            arch = self.validate(arch)
        build = NetworkBuild(self, arch, choices)
        dense = bool(synchronized_bn) if dense_choices is None else bool(dense_choices)
        fixed_bn = dict(
            affine=affine,
            track_running_stats=track,
            synchronized=bool(synchronized_bn),
            virtual_batch_size=virtual_batch_size,
        )
        # Cross-replica reductions are only allowed outside a `switch`.
        choice_bn = dict(fixed_bn, synchronized=bool(synchronized_bn) and dense)
        layers = self._layer_plan()
        images = keras.Input(shape=self.input_shape, name="images")
        inputs = build.inputs(images)
        x = images
        if self.stem_strides > 1:
            x = keras.layers.ZeroPadding2D(1, name="stem_pad")(x)
        x = keras.layers.Conv2D(
            self.stem_filters,
            3,
            strides=self.stem_strides,
            padding="valid" if self.stem_strides > 1 else "same",
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            name="stem_conv",
        )(x)
        x = BatchNorm(name="stem_bn", **fixed_bn)(x)
        x = keras.layers.ReLU(max_value=6.0, name="stem_relu")(x)
        x = nas_ops.InvertedResidual(
            self.first_block_filters, 3, 1, name="first_block", **fixed_bn
        )(x)
        for position, layer in enumerate(layers):
            label = layer["label"]
            if arch is None:
                options = self.choices[label]
                candidates = [
                    self._candidate(label, option, layer, choice_bn)
                    for option in options
                ]
                x = build.choose(label, candidates, x, name=label, dense=dense)
            else:
                x = build.child_input(x, label)
                if arch[label] != SKIP:
                    x = self._candidate(label, arch[label], layer, choice_bn)(x)
        x = keras.layers.Conv2D(
            self.last_filters, 1, use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            name="last_conv",
        )(x)
        x = BatchNorm(name="last_bn", **fixed_bn)(x)
        x = keras.layers.ReLU(max_value=6.0, name="last_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        outputs = keras.layers.Dense(self.num_classes, name="classifier", dtype=logits_policy())(x)
        if name is None:
            name = "mobilenet_supernet_network" if arch is None else "mobilenet_child"
        return keras.Model(inputs, outputs, name=name)

    @staticmethod
    def _candidate(label, option, layer, bn):
        name = f"{label}_{option}"
        if option == SKIP:
            return nas_ops.Identity(name=name)
        kernel_size, expansion = _parse_mbconv(option)
        return nas_ops.InvertedResidual(
            layer["filters"],
            kernel_size,
            expansion,
            strides=layer["strides"],
            name=name,
            **bn,
        )

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "stem_filters": self.stem_filters,
            "stem_strides": self.stem_strides,
            "first_block_filters": self.first_block_filters,
            "stage_filters": list(self.stage_filters),
            "stage_depths": list(self.stage_depths),
            "stage_strides": list(self.stage_strides),
            "kernel_sizes": list(self.kernel_sizes),
            "expansions": list(self.expansions),
            "skip": self.skip,
            "last_filters": self.last_filters,
        }


def _is_positive_int(value):
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= 1
    )


def _int_tuple(name, value, distinct=False):
    """`value` as a non-empty tuple of positive ints, or a ValueError."""
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if not items or not all(_is_positive_int(v) for v in items):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a non-empty "
            f"sequence of positive ints. Received: {name}={value!r}"
        )
    if distinct and len(set(items)) != len(items):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected distinct values. "
            f"Received: {name}={items}"
        )
    return tuple(int(v) for v in items)


def _parse_mbconv(option):
    """`"mbconv_k5_e6"` -> `(5, 6)`."""
    kernel, expansion = option[len("mbconv_"):].split("_")
    return int(kernel[1:]), int(expansion[1:])


def _mbconv_params(filters_in, filters, kernel_size, expansion, bn_params):
    hidden = filters_in * expansion
    total = 0
    if expansion != 1:
        total += filters_in * hidden + bn_params(hidden)
    total += kernel_size * kernel_size * hidden + bn_params(hidden)
    total += hidden * filters + bn_params(filters)
    return total


def _mbconv_flops(filters_in, filters, kernel_size, expansion, input_hw, output_hw):
    hidden = filters_in * expansion
    h_in, w_in = input_hw
    h_out, w_out = output_hw
    total = 0
    if expansion != 1:
        total += filters_in * hidden * h_in * w_in
    total += kernel_size * kernel_size * hidden * h_out * w_out
    total += hidden * filters * h_out * w_out
    return total


def _bn_mode(bn):
    if bn not in MOBILENET_BN_MODES:
        raise ValueError(
            "Invalid value for argument `bn`. Expected one of "
            f"{list(MOBILENET_BN_MODES)}. Received: bn={bn!r}"
        )
    return MOBILENET_BN_MODES[bn]
