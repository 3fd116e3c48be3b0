"""Candidate operations by registry name (never by lambda)."""

from kerasnas.ops import mobilenet
from kerasnas.ops import nb201

_REGISTRY = {}


def register(name, factory):
    """Registers `factory(channels, **bn_options) -> Layer` under `name`."""
    _REGISTRY[name] = factory


def names():
    """The registered operation names."""
    return tuple(_REGISTRY)


def get(
    op_name,
    channels,
    affine=True,
    track_running_stats=True,
    synchronized=False,
    virtual_batch_size=None,
    **kwargs,
):
    """Builds the candidate operation registered as `name`.

    Args:
        op_name: registry name, e.g. `"nor_conv_3x3"`.
        channels: input = output channels of the operation (the output
            channels for the `mbconv_*` blocks, whose input channels are
            read from the input shape).
        affine, track_running_stats, synchronized, virtual_batch_size: BN
            options (see `kerasnas.ops.BatchNorm`).
        **kwargs: passed to the layer (e.g. `name`, or `strides` for the
            `mbconv_*` blocks).
    """
    if op_name not in _REGISTRY:
        raise ValueError(
            "Invalid value for argument `op_name`. Expected one of "
            f"{sorted(_REGISTRY)}. Received: op_name={op_name!r}"
        )
    bn = dict(
        affine=affine,
        track_running_stats=track_running_stats,
        synchronized=synchronized,
        virtual_batch_size=virtual_batch_size,
    )
    return _REGISTRY[op_name](channels, bn, **kwargs)


register("none", lambda c, bn, **kw: nb201.Zero(**kw))
register("skip_connect", lambda c, bn, **kw: nb201.Identity(**kw))
register("avg_pool_3x3", lambda c, bn, **kw: nb201.AvgPool3x3(**kw))
for _k in (1, 3, 5, 7):
    register(
        f"nor_conv_{_k}x{_k}",
        lambda c, bn, _k=_k, **kw: nb201.ReLUConvBN(c, _k, **bn, **kw),
    )
# MobileNetV2 / ProxylessNAS inverted residual blocks, "mbconv_k{k}_e{e}"
# (e1: no expansion convolution, the fixed first block of the chain).
for _k in (3, 5, 7):
    for _e in (1, 3, 4, 6):
        register(
            f"mbconv_k{_k}_e{_e}",
            lambda c, bn, _k=_k, _e=_e, **kw: mobilenet.InvertedResidual(
                c, _k, _e, **bn, **kw
            ),
        )
