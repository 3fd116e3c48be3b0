"""DARTS and SNAS supernets: mixed choices weighted by α, trained bilevel."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.layers import MixedChoices
from kerasnas.layers.factory import check_factory
from kerasnas.supernet import Supernet

RELAXATIONS = ("darts", "snas")


@kerasnas_export("kerasnas.darts.temperature")
def temperature(epoch, epochs, start=1.0, end=0.1):
    """SNAS' Gumbel-softmax temperature of `epoch` (0-based) of `epochs`:
    linear from `start` (first epoch) to `end` (last epoch), the schedule of
    xautodl's GDAS/SNAS and GM-NAS (`tau_max - (tau_max - tau_min) * epoch /
    (epochs - 1)`)."""
    if epochs <= 1:
        return float(start)
    return float(start - (start - end) * epoch / (epochs - 1))


@kerasnas_export("kerasnas.darts.DartsSupernet")
class DartsSupernet(Supernet):
    """A differentiable supernet: every choice a mixture weighted by α.

    The space's network is built with `kerasnas.layers.MixedChoices()`: each choice
    (`kerasnas.layers.MixedChoice`) outputs `sum_o w_o * candidate_o(x)` with
    `w` the row of its label in `mixing_weights()`: the softmax of `α` over
    the options `option_mask` allows (a few-shot sub-supernet's domain; the
    others get exactly 0), or, for an edge PT has decided, its one-hot
    `projection` row (a zero row prunes the edge), times the `perturbation`
    mask (PT zeroes one op with it, without renormalising the others).
    Choices with the same label share one row of α (NAS-Bench-201's 15
    cells; DARTS' normal and reduce cells).

    `fit` takes a dataset of `(train_batch, valid_batch)` pairs
    (`kerasnas.darts.paired`) and runs DARTS' bilevel step: first α on the
    valid batch with `arch_optimizer` (first order; coupled L2
    `arch_weight_decay`), then the network weights on the train batch with
    the compiled optimizer (global-norm clipping `clip_norm`, coupled L2
    `weight_decay`), both as in the reference code `ruocwang/darts-pt`.
    `relaxation="snas"` replaces the softmax by a Gumbel-softmax sample at
    each training forward pass, with the temperature annealed linearly from
    `temperature[0]` to `temperature[1]` over the epochs of `fit`
    (`kerasnas.darts.temperature`); evaluation uses the softmax of α.

    α is a variable of the model (saved in `.keras` files and checkpoints)
    listed by `arch_variables` and never touched by the weight optimizer; a
    candidate whose weight is exactly 0 in a step is not computed and is
    left exactly unchanged, like an unsampled candidate of a single-path
    supernet.

    Reference:
        Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019;
        Xie et al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019;
        Wang et al., "Rethinking Architecture Selection in Differentiable
        NAS", ICLR 2021.

    Args:
        space: the search space.
        network_options: keyword arguments of `space.build_network`.
            NAS-Bench-201's reference search model uses `bn="search"`.
        seed: seed of α's initialisation and of the Gumbel noise.
        weight_decay: coupled L2 decay of the weights (reference 3e-4).
        clip_norm: global-norm clipping of the weight gradients (reference 5).
        relaxation: `"darts"` (softmax) or `"snas"` (Gumbel-softmax).
        order: 1 (first-order DARTS, the reference's default) or 2 (DARTS'
            unrolled step: α's gradient at the weights after one virtual SGD
            step `w' = w + momentum * m - lr * (g + weight_decay * w)` on the
            train batch, minus `lr` times the finite-difference
            Hessian-vector product with `r = 0.01 / ||grad_w' L_val||`).
            Keras' momentum slot `m` is `-lr * b` of PyTorch's buffer `b`,
            so the virtual step equals the reference's at a constant lr.
        fix_alpha: never update α ("blank" in DARTS-PT: α stays at its
            near-uniform initialisation). No valid batch is then needed.
        alpha_warmup_epochs: epochs (of `fit`'s epoch count) before α is
            first updated; the weights train with α's initial mixture.
        arch_weight_decay: coupled L2 decay of α (reference 1e-3).
        alpha_init_stddev: α starts as `stddev * N(0, 1)` (reference 1e-3).
        temperature: `(start, end)` of SNAS' linear schedule.
        **kwargs: passed to `kerasnas.Supernet`.

    Example:

    ```python
    space = kerasnas.spaces.NasBench201(num_classes=10, channels=16)
    supernet = space.build_supernet(supernet_class=kerasnas.darts.DartsSupernet, bn="search", seed=0)
    supernet.compile(optimizer=keras.optimizers.SGD(0.025, momentum=0.9),
                     loss="sparse_categorical_crossentropy")
    supernet.fit(kerasnas.darts.paired(train_ds, valid_ds), epochs=50)
    supernet.derive()  # argmax architecture
    ```
    """

    def __init__(
        self,
        space,
        network_options=None,
        seed=None,
        weight_decay=3e-4,
        clip_norm=5.0,
        relaxation="darts",
        order=1,
        fix_alpha=False,
        alpha_warmup_epochs=0,
        arch_weight_decay=1e-3,
        alpha_init_stddev=1e-3,
        temperature=(1.0, 0.1),
        **kwargs,
    ):
        choices = check_factory(kwargs.pop("choices", None) or type(self).default_choices())
        if not isinstance(choices, MixedChoices):
            raise ValueError(
                "Invalid value for argument `choices`. A DartsSupernet builds mixed "
                "choices: expected kerasnas.layers.MixedChoices() or None. Received: "
                f"choices={choices!r}"
            )
        if relaxation not in RELAXATIONS:
            raise ValueError(
                f"Invalid value for argument `relaxation`. Expected one of "
                f"{list(RELAXATIONS)}. Received: relaxation={relaxation!r}"
            )
        if order not in (1, 2):
            raise ValueError(
                "Invalid value for argument `order`. Expected 1 (first-order) "
                f"or 2 (unrolled). Received: order={order!r}"
            )
        if not isinstance(alpha_warmup_epochs, (int, np.integer)) or alpha_warmup_epochs < 0:
            raise ValueError(
                "Invalid value for argument `alpha_warmup_epochs`. Expected an "
                f"int >= 0. Received: alpha_warmup_epochs={alpha_warmup_epochs!r}"
            )
        temperature = tuple(float(t) for t in temperature)
        if len(temperature) != 2 or min(temperature) <= 0:
            raise ValueError(
                "Invalid value for argument `temperature`. Expected (start, end) "
                f"with both > 0. Received: temperature={temperature}"
            )
        if arch_weight_decay < 0 or alpha_init_stddev < 0:
            raise ValueError(
                "Invalid value for arguments `arch_weight_decay` / "
                "`alpha_init_stddev`. Expected floats >= 0. Received: "
                f"{arch_weight_decay}, {alpha_init_stddev}"
            )
        super().__init__(
            space,
            network_options=network_options,
            choices=choices,
            seed=seed,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            **kwargs,
        )
        self.relaxation = relaxation
        self.order = int(order)
        self.fix_alpha = bool(fix_alpha)
        self.alpha_warmup_epochs = int(alpha_warmup_epochs)
        self.arch_weight_decay = float(arch_weight_decay)
        self.alpha_init_stddev = float(alpha_init_stddev)
        self.temperature_schedule = temperature
        shape = self._valid_options.shape
        self.alpha = self.add_weight(
            shape=shape,
            initializer=keras.initializers.RandomNormal(stddev=self.alpha_init_stddev, seed=seed),
            trainable=True,
            name="alpha",
        )
        constant = lambda name, value, dtype="float32", s=shape: self.add_weight(
            shape=s,
            dtype=dtype,
            initializer=keras.initializers.Constant(value),
            trainable=False,
            name=name,
        )
        self.projection = constant("projection", 0.0)
        self.decided = constant("decided", 0.0, s=shape[:1])
        self.perturbation = constant("perturbation", 1.0)
        self.active_weights = constant("active_weights", 0.0)
        self.epoch = constant("epoch", 0, "int32", ())
        self.temperature = constant("temperature", temperature[0], s=())
        self.arch_optimizer = None

    # === Architecture weights ===
    @property
    def arch_variables(self):
        return [self.alpha]

    def alpha_weights(self, sample=False):
        """Softmax of α over the options `option_mask` allows (the others
        exactly 0); with `sample` and SNAS, a Gumbel-softmax sample at the
        current temperature. No projection, no perturbation."""
        allowed = ops.convert_to_tensor(self.option_mask) > 0
        logits = ops.convert_to_tensor(self.alpha)
        if sample and self.relaxation == "snas":
            uniform = keras.random.uniform(
                ops.shape(logits), minval=1e-20, maxval=1.0, seed=self.seed_generator
            )
            gumbel = -ops.log(-ops.log(uniform))
            logits = (logits + gumbel) / ops.convert_to_tensor(self.temperature)
        weights = ops.softmax(ops.where(allowed, logits, -1e9), axis=-1)
        return ops.where(allowed, weights, 0.0)

    def mixing_weights(self, sample=False, perturb=True):
        """The `(choices, max_options)` weights the mixed choices use:
        `alpha_weights(sample)`, decided rows replaced by their projection,
        times the perturbation mask (unless `perturb=False`)."""
        decided = ops.expand_dims(ops.convert_to_tensor(self.decided) > 0, -1)
        weights = ops.where(decided, ops.convert_to_tensor(self.projection), self.alpha_weights(sample))
        return weights * ops.convert_to_tensor(self.perturbation) if perturb else weights

    @classmethod
    def default_choices(cls):
        return MixedChoices()

    def architecture_input(self):
        return self.mixing_weights()

    def alphas(self):
        """`{label: {option: weight}}`: the current mixing weights (softmax of
        α over allowed options, with PT's projections; no perturbation)."""
        weights = ops.convert_to_numpy(self.mixing_weights(perturb=False))
        return {
            label: {o: float(weights[i, k]) for k, o in enumerate(options)}
            for i, (label, options) in enumerate(self.space.choices.items())
        }

    def derive(self):
        """The discrete architecture of the current weights, by the space's
        rule (`space.derive`: argmax per choice; DARTS' space keeps two
        inputs per node)."""
        return self.space.derive(self.alphas())

    def set_projection(self, label, option=None):
        """Decides choice `label`: one-hot on `option`, or pruned (a zero
        row) with `option=None`."""
        i = self.space.labels.index(label)
        row = np.zeros(self._valid_options.shape[1], "float32")
        if option is not None:
            row[self.space.choices[label].index(option)] = 1.0
        projection = ops.convert_to_numpy(self.projection)
        decided = ops.convert_to_numpy(self.decided)
        projection[i], decided[i] = row, 1.0
        self.projection.assign(projection)
        self.decided.assign(decided)

    def clear_projections(self):
        """Undoes every `set_projection`."""
        self.projection.assign(np.zeros(self._valid_options.shape, "float32"))
        self.decided.assign(np.zeros(self._valid_options.shape[:1], "float32"))

    def set_path(self, arch):
        """Makes the supernet compute the discrete `arch`: every choice
        projected on its option ('none', an edge a DARTS architecture does
        not keep or the zero op, is a pruned row: the same output, nothing
        computed). The ranking harness and the search tuner score
        architectures through it; `fixed(arch)` undoes it after a block."""
        arch = self.space.validate(arch)
        projection = np.zeros(self._valid_options.shape, "float32")
        for i, (label, options) in enumerate(self.space.choices.items()):
            if arch[label] != "none":
                projection[i, options.index(arch[label])] = 1.0
        self.projection.assign(projection)
        self.decided.assign(np.ones(self._valid_options.shape[:1], "float32"))

    def get_path(self):
        """The architecture the current weights select (`derive()`)."""
        return self.derive()

    def path_variables(self):
        return [self.projection, self.decided]

    def evaluate_arch(self, arch, data, bn_calibration_data=None, bn_calibration_steps=0, **kwargs):
        """`Supernet.evaluate_arch` of the discrete `arch` (see `fixed`)."""
        with self.fixed(arch):
            return super().evaluate_arch(
                arch, data, bn_calibration_data, bn_calibration_steps, **kwargs
            )

    def _candidate_active(self, position, option):
        return tf.not_equal(self.active_weights.value[position, option], 0.0)

    # === Training ===
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, arch_optimizer=None, **kwargs):
        """`Supernet.compile` plus α's optimizer.

        Args:
            arch_optimizer: the optimizer of α; default the reference's
                `Adam(3e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)`. Its
                own `weight_decay` must be None (α's coupled L2 is
                `arch_weight_decay`).
        """
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        if arch_optimizer is None:
            arch_optimizer = keras.optimizers.Adam(3e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
        arch_optimizer = keras.optimizers.get(arch_optimizer)
        if getattr(arch_optimizer, "weight_decay", None):
            raise ValueError(
                "Invalid value for argument `arch_optimizer`. Expected an "
                "optimizer without `weight_decay`; pass `arch_weight_decay=` to "
                "the supernet (coupled L2, as the reference). Received: "
                f"weight_decay={arch_optimizer.weight_decay}"
            )
        if not arch_optimizer.built:
            arch_optimizer.build(self.arch_variables)
        self.arch_optimizer = arch_optimizer

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self.arch_optimizer is not None:
            config = dict(config)
            config["arch_optimizer"] = keras.saving.serialize_keras_object(self.arch_optimizer)
        return config

    def training_state_variables(self):
        return list(super().training_state_variables()) + (
            list(self.arch_optimizer.variables) if self.arch_optimizer is not None else []
        )

    def fit(self, x=None, y=None, callbacks=None, **kwargs):
        if not self.fix_alpha or isinstance(x, tf.data.Dataset):
            check_paired(x, y, required=not self.fix_alpha)
        callbacks = list(callbacks or []) + [_EpochState(self)]
        return super().fit(x, y, callbacks=callbacks, **kwargs)

    def _symbolic_build(self, iterator=None, data_batch=None):
        if data_batch is not None and _is_pair(data_batch):
            data_batch = data_batch[0]
        if data_batch is None and iterator is not None:
            for _, _, data_iterator in iterator:
                data_batch = next(data_iterator)
                break
            if _is_pair(data_batch):
                data_batch = data_batch[0]
        return super()._symbolic_build(data_batch=data_batch)

    def train_step(self, data):
        if _is_pair(data):
            train, valid = data
        elif self.fix_alpha:
            train, valid = data, None
        else:
            raise ValueError(
                "Invalid value for argument `x`. Expected (train_batch, "
                "valid_batch) pairs (kerasnas.darts.paired). Received: a batch "
                f"of {len(data) if isinstance(data, (tuple, list)) else 1} tensors"
            )
        x, y, sample_weight, index = self._unpack(train)
        if not self.fix_alpha:
            xv, yv, swv, _ = self._unpack(valid)
            self._arch_step(xv, yv, swv, (x, y, sample_weight))
        weights = self.mixing_weights(sample=True)
        self.active_weights.assign(weights)
        path = ops.cast(ops.argmax(weights, axis=-1), "int32")
        return self._weight_step(x, y, sample_weight, index, weights, path)

    def _loss_gradients(self, x, y, sample_weight, variables):
        """Gradients (summed over replicas) of the loss on a batch, the
        network reading the (sampled) mixing weights of α."""
        with tf.GradientTape() as tape:
            y_pred = self.network([x, self.mixing_weights(sample=True)], training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return self._replica_sum(tape.gradient(loss, variables), variables)

    def _unrolled_arch_gradients(self, valid, train):
        """DARTS' second-order α gradient (see `order`)."""
        weights = self.network_variables
        alpha = self.arch_variables
        self.active_weights.assign(self.mixing_weights())
        learning_rate = ops.cast(self.optimizer.learning_rate, "float32")
        theta = [tf.identity(v) for v in weights]
        g = self._loss_gradients(*train, weights)
        momentum = float(getattr(self.optimizer, "momentum", 0.0) or 0.0)
        unrolled = []
        for v, t, grad in zip(weights, theta, g):
            step = t - learning_rate * (grad + self.weight_decay * t)
            if momentum:
                slot = self.optimizer.momentums[self.optimizer._get_variable_index(v)]
                step = step + momentum * ops.convert_to_tensor(slot)
            owner = self.candidate_owner(v)
            if owner is not None:  # a candidate outside the mixture stays
                step = tf.where(self._candidate_active(*owner), step, t)
            unrolled.append(step)
        for v, value in zip(weights, unrolled):
            v.assign(value)
        d = self._loss_gradients(*valid, alpha + weights)
        d_alpha, d_weights = d[: len(alpha)], d[len(alpha) :]
        r = 0.01 / (tf.linalg.global_norm(d_weights) + 1e-12)
        finite = []
        for sign in (1.0, -1.0):
            for v, t, dw in zip(weights, theta, d_weights):
                v.assign(t + sign * r * dw)
            finite.append(self._loss_gradients(*train, alpha))
        for v, t in zip(weights, theta):
            v.assign(t)
        return [
            da - learning_rate * (gp - gn) / (2.0 * r)
            for da, gp, gn in zip(d_alpha, finite[0], finite[1])
        ]

    def _arch_step(self, x, y, sample_weight, train=None):
        """One update of α on a validation batch (first order, or unrolled
        on the `train` batch with `order=2`), skipped in the graph during the
        warm-up epochs."""
        variables = self.arch_variables
        warm = self.alpha_warmup_epochs > 0
        update = ops.greater_equal(ops.convert_to_tensor(self.epoch), self.alpha_warmup_epochs)
        single = tf.distribute.get_strategy().num_replicas_in_sync == 1
        if self.order == 2:
            compute = lambda: self._unrolled_arch_gradients((x, y, sample_weight), train)
        else:
            compute = lambda: self._loss_gradients(x, y, sample_weight, variables)
        if warm and single:
            # No forward/backward pass at all while warming up.
            gradients = tf.cond(update, compute, lambda: [tf.zeros_like(v) for v in variables])
        else:
            gradients = compute()
        if not warm:
            self._apply(self.arch_optimizer, gradients, variables, self.arch_weight_decay)
            return
        state = list(variables) + list(self.arch_optimizer.variables)
        before = [tf.identity(v) for v in state]
        self._apply(self.arch_optimizer, gradients, variables, self.arch_weight_decay)
        for v, old in zip(state, before):
            v.assign(tf.where(update, v, old))

    # === Config ===
    def get_config(self):
        return {
            **super().get_config(),
            "relaxation": self.relaxation,
            "order": self.order,
            "fix_alpha": self.fix_alpha,
            "alpha_warmup_epochs": self.alpha_warmup_epochs,
            "arch_weight_decay": self.arch_weight_decay,
            "alpha_init_stddev": self.alpha_init_stddev,
            "temperature": list(self.temperature_schedule),
        }


class _EpochState(keras.callbacks.Callback):
    """Writes the epoch and SNAS' temperature into the supernet's variables
    at the start of every epoch (read in the graph)."""

    def __init__(self, supernet):
        super().__init__()
        self.supernet = supernet

    def on_epoch_begin(self, epoch, logs=None):
        model = self.supernet
        model.epoch.assign(epoch)
        start, end = model.temperature_schedule
        model.temperature.assign(temperature(epoch, self.params.get("epochs", 1), start, end))


def _is_pair(data):
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(d, (tuple, list)) for d in data)
    )


@kerasnas_export("kerasnas.darts.check_paired")
def check_paired(x, y=None, required=True):
    """Raises a `ValueError` unless `x` is a dataset of `(train_batch,
    valid_batch)` pairs, each batch `(images, labels[, ...])`."""
    spec = x.element_spec if isinstance(x, tf.data.Dataset) else None
    if y is None and spec is not None and _is_pair(spec):
        return
    if not required and spec is not None:
        return
    received = "arrays" if spec is None else f"element_spec={spec}"
    raise ValueError(
        "Invalid value for argument `x`. Expected a tf.data.Dataset of "
        "(train_batch, valid_batch) pairs, each batch (images, labels): use "
        "kerasnas.darts.paired(train_ds, valid_ds). Received: " + received
    )


@kerasnas_export("kerasnas.darts.paired")
def paired(train, valid):
    """`(train_batch, valid_batch)` pairs for `DartsSupernet.fit`.

    One epoch is one pass over `train`; `valid` is repeated as needed (the
    reference draws a validation batch at every step).
    """
    for name, data in (("train", train), ("valid", valid)):
        if not isinstance(data, tf.data.Dataset):
            raise ValueError(
                f"Invalid value for argument `{name}`. Expected a "
                f"tf.data.Dataset of batches. Received: {type(data).__name__}"
            )
    return tf.data.Dataset.zip((train, valid.repeat()))
