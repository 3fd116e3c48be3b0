"""DARTS' evaluation network (`NetworkCIFAR`): auxiliary head, drop-path."""

import keras

from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import logits_policy
from kerasnas.layers import BatchNorm
from kerasnas.layers import DropPath
from kerasnas.ops.darts import DartsIdentity
from kerasnas.ops.darts import DartsReLUConvBN
from kerasnas.ops.darts import FactorizedReduce
from kerasnas.ops.darts import darts_op

STEPS = 4


def build_eval_network(space, arch, channels=36, layers=20, auxiliary=True, name="darts_eval_network"):
    """`NetworkCIFAR` of a validated DARTS `arch`: stem 3x3 conv to `3C` +
    BN, `layers` cells (reductions at 1/3 and 2/3), global pooling and a
    classifier; with `auxiliary` an `AuxiliaryHeadCIFAR` after the cell at
    2/3 of the depth and the model returns `[logits, aux_logits]` (train it
    with `loss_weights=[1, 0.4]`; `strip_auxiliary` gives the inference
    model). Every op but identities is followed by a `DropPath`."""
    c = channels
    images = keras.Input(shape=space.input_shape, name="images")
    x = keras.layers.Conv2D(3 * c, 3, padding="same", use_bias=False, name="stem_conv")(images)
    x = BatchNorm(name="stem_bn")(x)
    s0 = s1 = x
    reduction_prev = False
    aux_input = None
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c *= 2
        s0, s1 = s1, _eval_cell(space, arch, f"cell{i}", s0, s1, c, reduction, reduction_prev)
        reduction_prev = reduction
        if i == 2 * layers // 3:
            aux_input = s1
    x = keras.layers.GlobalAveragePooling2D(name="pool")(s1)
    logits = keras.layers.Dense(space.num_classes, name="classifier", dtype=logits_policy())(x)
    outputs = logits
    if auxiliary:
        outputs = [logits, _auxiliary_head(aux_input, space.num_classes)]
    return keras.Model(images, outputs, name=name)


@kerasnas_export("kerasnas.spaces.strip_auxiliary")
def strip_auxiliary(model):
    """The inference model of an evaluation network: its main logits only
    (the auxiliary head is dropped; weights are shared)."""
    if not isinstance(model.outputs, (list, tuple)) or len(model.outputs) == 1:
        return model
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, model.outputs[0], name=f"{model.name}_inference")


def _eval_cell(space, arch, name, s0, s1, c, reduction, reduction_prev):
    if reduction_prev:
        p0 = FactorizedReduce(c, name=f"{name}_pre0")
    else:
        p0 = DartsReLUConvBN(c, 1, name=f"{name}_pre0")
    states = [p0(s0), DartsReLUConvBN(c, 1, name=f"{name}_pre1")(s1)]
    cell_type = "reduce" if reduction else "normal"
    for node in range(2, 2 + STEPS):
        terms = []
        for j in range(node):
            op = arch[f"{cell_type}_{node}<-{j}"]
            if op == "none":
                continue
            stride = 2 if reduction and j < 2 else 1
            layer = darts_op(op, c, stride, affine=True, layer_name=f"{name}_e{node}{j}_{op}")
            y = layer(states[j])
            if not isinstance(layer, DartsIdentity):
                y = DropPath(name=f"{name}_e{node}{j}_drop")(y)
            terms.append(y)
        states.append(keras.layers.Add(name=f"{name}_node{node}")(terms))
    return keras.layers.Concatenate(name=f"{name}_concat")(states[2:])


def _auxiliary_head(x, num_classes):
    """DARTS' `AuxiliaryHeadCIFAR` (8x8 input): ReLU, 5x5 average pool with
    stride 3, 1x1 conv to 128 + BN + ReLU, 2x2 conv to 768 + BN + ReLU,
    classifier."""
    x = keras.layers.ReLU(name="aux_relu0")(x)
    x = keras.layers.AveragePooling2D(5, strides=3, padding="valid", name="aux_pool")(x)
    x = keras.layers.Conv2D(128, 1, use_bias=False, name="aux_conv1")(x)
    x = keras.layers.ReLU(name="aux_relu1")(BatchNorm(name="aux_bn1")(x))
    x = keras.layers.Conv2D(768, 2, use_bias=False, name="aux_conv2")(x)
    x = keras.layers.ReLU(name="aux_relu2")(BatchNorm(name="aux_bn2")(x))
    x = keras.layers.Flatten(name="aux_flatten")(x)
    return keras.layers.Dense(num_classes, name="aux_classifier", dtype=logits_policy())(x)
