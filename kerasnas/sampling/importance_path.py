"""PA&DA's path importance sampling (Lu et al., CVPR 2023)."""

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.sampling.path_sampler import PathSampler
from kerasnas.sampling.path_sampler import sample_from_probabilities
from kerasnas.sampling.schedules import LinearSchedule
from kerasnas.sampling.schedules import schedule_value
from kerasnas.sampling.schedules import with_epochs


@kerasnas_export("kerasnas.sampling.ImportancePathSampler")
class ImportancePathSampler(PathSampler):
    """Samples each choice's option with probability built from the gradient
    norms of the sampled candidates (PA&DA's path importance).

    Reference mode (default, `shared=True`, as the authors' code): one
    distribution over the options, shared by every choice (all choices must
    have the same options, as NAS-Bench-201's edges). After each step (the
    gradients already clipped), the importance of an option is the sum of
    the L2 norms of the gradients of its sampled candidates' variables (all
    cells and edges where it was sampled) divided by the number of choices
    that sampled it; it enters a per-epoch running mean `g = (g + new) / 2`
    (only when non-zero; `g` starts each epoch at 0). At the end of an
    epoch, with `δ` from the schedule,
    `p = δ · g / Σg + (1 − δ) · uniform`, used for the next epoch.

    Parameter-free options (none, skip, pooling) never get a gradient, so
    their importance is 0 and their probability decays to `(1 − δ) / n`:
    late in training the reference in effect samples only convolutions.
    `parameter_free_floor` is the explicit fix: a lower bound on every
    option's probability (rows renormalized).

    With `shared=False` each choice has its own distribution, built from its
    own candidates' norms.

    The state lives in variables: `importance` (per-replica copies updated
    with the all-reduced gradients, so every replica holds the same values)
    and `probabilities`; both are saved with the supernet and in
    checkpoints. The end-of-epoch update is done by the Keras callback
    `sampler.callback()` (pass it to `fit`).

    Args:
        shared: one distribution for every choice (reference) or one each.
        parameter_free_floor: None (reference) or a probability in [0, 1):
            the parameter-free options' probabilities are raised to at
            least this, the other options scaled down to keep the sum 1.

    Example:

    ```python
    sampler = kerasnas.sampling.ImportancePathSampler()
    supernet = space.build_supernet(path_sampler=sampler, clip_norm=5.0)
    supernet.compile(...)
    supernet.fit(data, epochs=250, callbacks=[sampler.callback()])
    ```
    """

    def __init__(self, shared=True, parameter_free_floor=None, **kwargs):
        super().__init__(**kwargs)
        if parameter_free_floor is not None and not 0.0 <= parameter_free_floor < 1.0:
            raise ValueError(
                "Invalid value for argument `parameter_free_floor`. Expected None "
                f"or a float in [0, 1). Received: parameter_free_floor={parameter_free_floor}"
            )
        self.shared = bool(shared)
        self.parameter_free_floor = None if parameter_free_floor is None else float(parameter_free_floor)
        self._groups_cache = None

    def bind(self, space):
        options = list(space.choices.values())
        if self.shared and any(o != options[0] for o in options):
            raise ValueError(
                "Invalid value for argument `shared`. One shared distribution needs "
                "every choice to have the same options; use shared=False for this "
                f"space. Received: choices={dict(space.choices)}"
            )
        self.option_names = tuple(options[0]) if self.shared else None
        super().bind(space)

    def build(self, input_shape=None):
        n, m = len(self.num_options), max(self.num_options)
        self.valid = np.zeros((n, m), "float32")
        for i, k in enumerate(self.num_options):
            self.valid[i, :k] = 1.0
        self.uniform = self.valid / self.valid.sum(axis=1, keepdims=True)
        self.probabilities = self.add_weight(
            shape=(n, m), initializer=keras.initializers.Constant(self.uniform),
            trainable=False, name="probabilities",
        )
        self.importance = keras.Variable(
            initializer="zeros", shape=(n, m), dtype="float32", trainable=False,
            synchronization="on_read", aggregation="mean", name="importance",
        )
        self.built = True

    def sample(self, mask, seed_generator):
        return sample_from_probabilities(ops.convert_to_tensor(self.probabilities) * mask, seed_generator)

    def _groups(self, supernet, variables):
        """`[(position, option, [variable indices])]` of the candidates with
        variables, grouped over cells."""
        groups = {}
        for k, variable in enumerate(variables):
            owner = supernet.candidate_owner(variable)
            if owner is not None:
                groups.setdefault(owner, []).append(k)
        return [(p, o, ks) for (p, o), ks in sorted(groups.items())]

    def update(self, supernet, path, gradients, variables):
        groups = self._groups(supernet, variables)
        if not groups:
            return
        n, m = self.valid.shape
        # Vectorised (a handful of ops instead of a few per variable: at the
        # proxy scale per-op overhead dominated the step): the L2 norm of
        # every candidate variable's gradient from one concatenation, summed
        # per (choice, option) over the cells.
        order = [k for _, _, indices in groups for k in indices]
        sizes = [int(np.prod(variables[k].shape)) for k in order]
        flat = tf.concat([tf.reshape(tf.cast(gradients[k], "float32"), [-1]) for k in order], 0)
        squares = tf.math.segment_sum(flat * flat, np.repeat(np.arange(len(order)), sizes))
        owners = np.repeat(np.arange(len(groups)), [len(indices) for _, _, indices in groups])
        norms = tf.math.unsorted_segment_sum(tf.sqrt(squares), owners, len(groups))
        positions = tf.constant([p for p, _, _ in groups], "int32")
        options = tf.constant([o for _, o, _ in groups], "int32")
        active = tf.cast(tf.equal(tf.gather(path, positions), options), "float32")
        contributions = tf.scatter_nd(
            tf.stack([positions, options], axis=1), norms * active, (n, m)
        )
        if self.shared:
            counts = tf.reduce_sum(tf.one_hot(path, m, dtype="float32"), axis=0)
            new = tf.reduce_sum(contributions, axis=0) / tf.maximum(counts, 1.0)
            new = tf.broadcast_to(new[None, :], (n, m))
        else:
            new = contributions
        old = ops.convert_to_tensor(self.importance)
        self.importance.assign(tf.where(new != 0.0, (old + new) / 2.0, old))

    def end_epoch(self, delta, parameter_free=None):
        """Sets the next epoch's probabilities from the epoch's importance.

        Args:
            delta: the smoothing `δ` in [0, 1].
            parameter_free: optional `(choices, options)` 0/1 array of the
                options without variables (for `parameter_free_floor`).

        Returns:
            The new probabilities (numpy).
        """
        importance = ops.convert_to_numpy(self.importance).astype("float64") * self.valid
        total = importance.sum(axis=1, keepdims=True)
        normalized = np.where(total > 0, importance / np.where(total > 0, total, 1.0), self.uniform)
        probabilities = delta * normalized + (1.0 - delta) * self.uniform
        if self.parameter_free_floor is not None:
            probabilities = _apply_floor(
                probabilities, self.parameter_free_floor,
                self.valid if parameter_free is None else self.valid * parameter_free,
            )
        self.probabilities.assign(probabilities.astype("float32"))
        self.reset_importance()
        return probabilities

    def reset_importance(self):
        self.importance.assign(ops.zeros_like(self.importance))

    def callback(self, delta=None):
        """The Keras callback that updates the distribution every epoch.

        Args:
            delta: δ schedule: a number, a callable of the (0-based) epoch,
                or a schedule object; default `LinearSchedule()`, i.e.
                `epoch / epochs` with fit's `epochs`.
        """
        return PathImportanceCallback(self, delta)

    def get_config(self):
        return {
            **super().get_config(),
            "shared": self.shared,
            "parameter_free_floor": self.parameter_free_floor,
        }


def _apply_floor(probabilities, floor, floored):
    """Raises the `floored` entries of each row below `floor` to it and
    scales the row's other entries down so that it still sums to 1."""
    probabilities = probabilities.copy()
    for row, where in zip(probabilities, floored > 0):
        low = where & (row < floor)
        if not low.any():
            continue
        rest = ~low & (row > 0)
        budget = 1.0 - floor * low.sum()
        if rest.any() and budget > 0:
            row[rest] *= budget / row[rest].sum()
        row[low] = floor
    return probabilities


class PathImportanceCallback(keras.callbacks.Callback):
    """End-of-epoch update of an `ImportancePathSampler` (see its `callback`).

    Logs the probabilities (shared mode: `path_p_<option>`; otherwise their
    entropy `path_entropy`) in the epoch's logs.
    """

    def __init__(self, sampler, delta=None):
        super().__init__()
        self.sampler = sampler
        self.delta = LinearSchedule() if delta is None else delta
        self._delta = self.delta

    def on_train_begin(self, logs=None):
        if self.model.path_sampler is not self.sampler:
            raise ValueError(
                "Invalid value for argument `sampler`. Expected the path sampler "
                "of the supernet being trained. Received: another sampler"
            )
        self._delta = with_epochs(self.delta, (self.params or {}).get("epochs"))

    def on_epoch_begin(self, epoch, logs=None):
        self.sampler.reset_importance()

    def on_epoch_end(self, epoch, logs=None):
        delta = schedule_value(self._delta, epoch, "delta")
        probabilities = self.sampler.end_epoch(delta, self._parameter_free())
        if logs is None:
            return
        if self.sampler.shared:
            for name, p in zip(self.sampler.option_names, probabilities[0]):
                logs[f"path_p_{name}"] = float(p)
        else:
            p = np.where(probabilities > 0, probabilities, 1.0)
            logs["path_entropy"] = float(-(probabilities * np.log(p)).sum(axis=1).mean())

    def _parameter_free(self):
        supernet = self.model
        parametric = np.zeros_like(self.sampler.valid)
        for variable in supernet.trainable_variables:
            owner = supernet.candidate_owner(variable)
            if owner is not None:
                parametric[owner] = 1.0
        if self.sampler.shared:
            parametric = np.broadcast_to(parametric.max(axis=0), parametric.shape)
        return self.sampler.valid * (1.0 - parametric)
