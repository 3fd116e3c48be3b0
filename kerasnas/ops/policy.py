"""Dtype policies (mixed precision) for supernets, children and their ops.

Keras gives a layer the global dtype policy when it is constructed. kerasnas
builds networks inside `dtype_policy_scope(policy)`, so that a supernet or
child built with `dtype_policy="mixed_bfloat16"` is mixed throughout while
the rest of the program keeps its own policy. Three rules keep the numbers
that must stay float32 in float32:

- the classifier is a float32 layer (`logits_policy()`): logits, losses and
  everything computed from them (importance scores, scores of rankings);
- `kerasnas.layers.BatchNorm` computes moments and normalizes in float32
  and keeps its statistics in float32;
- variables (weights, BN statistics, DARTS' α, sampler state) are float32
  under the mixed policies, as Keras makes them.

Composite ops (a layer that creates sublayers, e.g. `ReLUConvBN`) derive from
`SublayerPolicy`: reloaded from a `.keras` file they create their sublayers
under their own saved policy, not under whatever policy the loading program
has.
"""

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Within the block, layers are constructed with `policy` (a name such
    as `"mixed_bfloat16"`, a `keras.DTypePolicy`, or None: unchanged)."""
    if policy is None:
        yield
        return
    policy = check_dtype_policy(policy)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_dtype_policy(policy):
    """The `keras.DTypePolicy` of `policy` (name, policy or its config);
    a `ValueError` naming `dtype_policy` otherwise."""
    try:
        return keras.dtype_policies.get(policy)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "Invalid value for argument `dtype_policy`. Expected a Keras dtype "
            "policy such as 'float32', 'mixed_bfloat16' or 'mixed_float16'. "
            f"Received: dtype_policy={policy!r} ({error})"
        ) from None


def policy_name(policy):
    """The name of a policy (None stays None), for configs."""
    return None if policy is None else check_dtype_policy(policy).name


def logits_policy():
    """The policy for a network's classifier: float32 when the current
    policy computes in lower precision (the loss must see float32 logits),
    else None (the current policy)."""
    if keras.config.dtype_policy().compute_dtype != "float32":
        return "float32"
    return None


class SublayerPolicy:
    """Mixin for layers that create sublayers in `__init__`: `from_config`
    constructs the layer under its saved dtype policy, so that its
    sublayers get it too."""

    @classmethod
    def from_config(cls, config):
        policy = config.get("dtype")
        if policy is None:
            return super().from_config(config)
        if isinstance(policy, dict):
            policy = keras.saving.deserialize_keras_object(policy)
        with dtype_policy_scope(policy):
            return super().from_config(config)
