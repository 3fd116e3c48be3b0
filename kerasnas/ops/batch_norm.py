"""Batch normalization with the switches NAS code bases need."""

import contextlib
import threading

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export

_calibration = threading.local()


@contextlib.contextmanager
def calibration_scope(weight):
    """Makes every tracking `BatchNorm` called inside it a cumulative average.

    Inside the scope a `BatchNorm` in training mode updates its moving
    statistics as `moving += weight * (batch - moving)`. Calling a network
    on batches k = 0..N-1 with `weight = 1 / (k + 1)` leaves in the moving
    statistics the plain mean of the N batch statistics: the BN recalibration
    of the SPOS protocol (PyTorch `momentum=None`). The scope is read when a
    function is traced, so `weight` should be a tensor argument of that
    function (one trace serves every step).

    Args:
        weight: scalar tensor, the weight of the current batch.
    """
    previous = getattr(_calibration, "weight", None)
    _calibration.weight = weight
    try:
        yield
    finally:
        _calibration.weight = previous


@contextlib.contextmanager
def moving_stats_gate(gate):
    """Scales the moving-statistics updates of `BatchNorm`s called inside it.

    `gate` is a 0/1 scalar tensor: with 0 a `BatchNorm` in training mode
    still normalizes with the batch moments but leaves its moving statistics
    exactly unchanged. A `Choice` that runs every candidate (dense selection)
    gates each candidate by whether it is the selected one, so unselected
    candidates' statistics stay as they were, as if they had not run. Gates
    nest by multiplication.

    Args:
        gate: scalar tensor, 1 where updates apply, 0 where they do not.
    """
    previous = getattr(_calibration, "gate", None)
    _calibration.gate = gate if previous is None else previous * gate
    try:
        yield
    finally:
        _calibration.gate = previous


@kerasnas_export("kerasnas.layers.BatchNorm")
class BatchNorm(keras.layers.Layer):
    """Batch normalization over the channels of NHWC (or NC) inputs.

    Follows PyTorch's `BatchNorm2d`, as the NAS reference code does:
    `affine` switches the learned scale and offset, `track_running_stats`
    switches moving statistics. Without them the layer normalizes with the
    batch moments in training *and* inference (PA&DA's and NAS-Bench-201's
    search setting). Moving variances are updated with the unbiased batch
    variance, as PyTorch does.

    With `synchronized=True`, batch moments are computed over the global
    batch under a `tf.distribute` strategy (`keras.ops.moments(...,
    synchronized=True)`), so results do not depend on the number of replicas.

    Args:
        affine: whether to learn a scale (gamma) and offset (beta).
        track_running_stats: whether to keep moving mean and variance for
            inference. If False, batch statistics are always used.
        momentum: Keras convention: `moving = momentum * moving +
            (1 - momentum) * batch`. PyTorch's default 0.1 is 0.9 here.
        epsilon: added to the variance; PyTorch's default 1e-5.
        synchronized: compute batch moments across replicas. Inside a
            `Choice` this needs the choice's dense selection
            (`Choice(..., dense=True)`): TF forbids cross-replica reductions
            inside the control flow of the default `switch` selection.
        virtual_batch_size: if set, normalize each consecutive group of that
            many samples with its own moments ("ghost" batch norm). One
            device with `virtual_batch_size = global_batch / R` computes what
            R replicas with per-replica statistics compute.
    """

    def __init__(
        self,
        affine=True,
        track_running_stats=True,
        momentum=0.9,
        epsilon=1e-5,
        synchronized=False,
        virtual_batch_size=None,
        **kwargs,
    ):
        if virtual_batch_size is not None and int(virtual_batch_size) < 1:
            raise ValueError(
                "Invalid value for argument `virtual_batch_size`. Expected None "
                f"or a positive int. Received: virtual_batch_size={virtual_batch_size}"
            )
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(
                "Invalid value for argument `momentum`. Expected a float in "
                f"[0, 1]. Received: momentum={momentum}"
            )
        # Statistics and affine parameters are read in float32 under a mixed
        # policy (no autocast to the compute dtype; see `call`).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.synchronized = bool(synchronized)
        self.virtual_batch_size = None if virtual_batch_size is None else int(virtual_batch_size)

    def build(self, input_shape):
        shape = (input_shape[-1],)
        if self.affine:
            self.gamma = self.add_weight(
                shape=shape, name="gamma", initializer="ones", autocast=False
            )
            self.beta = self.add_weight(
                shape=shape, name="beta", initializer="zeros", autocast=False
            )
        if self.track_running_stats:
            # On-read synchronization: each replica updates its own copy
            # (no `merge_call`, which TF refuses inside the `switch` branch
            # a candidate runs in); reads across replicas see the mean.
            self.moving_mean = self._statistic("moving_mean", "zeros", shape)
            self.moving_variance = self._statistic("moving_variance", "ones", shape)

    def _statistic(self, name, initializer, shape):
        return keras.Variable(
            initializer=initializer,
            shape=shape,
            dtype=self.variable_dtype,
            trainable=False,
            synchronization="on_read",
            aggregation="mean",
            autocast=False,
            name=name,
        )

    def call(self, inputs, training=None):
        # Under a mixed policy, moments, normalization and statistics are
        # float32 (low-precision moments lose the small variances); the
        # output has the layer's compute dtype. Float32 runs are unchanged.
        if keras.backend.standardize_dtype(inputs.dtype) in ("float16", "bfloat16"):
            inputs = ops.cast(inputs, "float32")
        outputs = self._call(inputs, training)
        if keras.backend.standardize_dtype(outputs.dtype) != self.compute_dtype:
            outputs = ops.cast(outputs, self.compute_dtype)
        return outputs

    def _call(self, inputs, training):
        axes = tuple(range(len(inputs.shape) - 1))
        if self.virtual_batch_size and (training or not self.track_running_stats):
            return self._ghost_call(inputs, training)
        if training or not self.track_running_stats:
            if self.synchronized:
                mean, variance = _synchronized_moments(inputs, axes)
            else:
                mean, variance = ops.moments(inputs, axes=axes)
            if training and self.track_running_stats:
                self._update_moving_stats(inputs, mean, variance, axes)
        else:
            mean = ops.cast(self.moving_mean, inputs.dtype)
            variance = ops.cast(self.moving_variance, inputs.dtype)
        return self._normalize(inputs, mean, variance)

    def _normalize(self, inputs, mean, variance):
        inv = ops.rsqrt(variance + self.epsilon)
        if self.affine:
            inv = inv * ops.cast(self.gamma, inputs.dtype)
            return (inputs - mean) * inv + ops.cast(self.beta, inputs.dtype)
        return (inputs - mean) * inv

    def _ghost_call(self, inputs, training):
        shape = ops.shape(inputs)
        groups = ops.reshape(
            inputs, (-1, self.virtual_batch_size) + tuple(inputs.shape[1:])
        )
        axes = tuple(range(1, len(groups.shape) - 1))
        mean, variance = ops.moments(groups, axes=axes, keepdims=True)
        outputs = ops.reshape(self._normalize(groups, mean, variance), shape)
        if training and self.track_running_stats:
            flat = (-1, inputs.shape[-1])
            self._update_moving_stats(
                groups[0],
                ops.mean(ops.reshape(mean, flat), axis=0),
                ops.mean(ops.reshape(variance, flat), axis=0),
                axes,
            )
        return outputs

    def _update_moving_stats(self, inputs, mean, variance, axes):
        count = ops.cast(ops.prod(ops.shape(inputs)[:-1]), variance.dtype)
        if self.synchronized:
            count = _all_reduce_sum(count)
        unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        weight = getattr(_calibration, "weight", None)
        if weight is None:
            weight = 1.0 - self.momentum
        gate = getattr(_calibration, "gate", None)
        if gate is not None:
            weight = ops.cast(gate, "float32") * weight
        for moving, value in (
            (self.moving_mean, mean),
            (self.moving_variance, unbiased),
        ):
            value = ops.cast(value, moving.dtype)
            moving.assign(moving + ops.cast(weight, moving.dtype) * (value - moving))

    def reset_moving_stats(self):
        """Sets the moving statistics to their initial values (0 and 1)."""
        if self.track_running_stats:
            self.moving_mean.assign(ops.zeros_like(self.moving_mean))
            self.moving_variance.assign(ops.ones_like(self.moving_variance))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "synchronized": self.synchronized,
            "virtual_batch_size": self.virtual_batch_size,
        }


def _all_reduce_sum(value):
    """Sum of `value` over the replicas of a `tf.distribute` strategy."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    try:
        return context.all_reduce(tf.distribute.ReduceOp.SUM, value)
    except RuntimeError as error:
        raise ValueError(
            "Invalid value for argument `synchronized`. Synchronized batch "
            "normalization cannot run inside a choice's branch under a "
            "multi-replica strategy: TensorFlow forbids cross-replica "
            "reductions (`merge_call`) inside control flow. Build the choice "
            "with `dense=True` (what `synchronized_bn=True` does), use "
            "per-replica statistics, or one replica. "
            f"Received: synchronized=True ({error})"
        ) from None


def _synchronized_moments(inputs, axes):
    """Mean and (biased) variance over `axes` of the global batch."""
    x = ops.cast(inputs, "float32")
    count = ops.cast(ops.prod(ops.shape(x)[:-1]), "float32")
    local = ops.concatenate(
        [ops.sum(x, axis=axes), ops.sum(x * x, axis=axes), ops.reshape(count, (1,))]
    )
    total = _all_reduce_sum(local)
    channels = inputs.shape[-1]
    count = total[-1]
    mean = total[:channels] / count
    variance = ops.maximum(total[channels : 2 * channels] / count - mean * mean, 0.0)
    return ops.cast(mean, inputs.dtype), ops.cast(variance, inputs.dtype)
