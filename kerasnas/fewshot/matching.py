"""Gradient matching (GM-NAS): how much the options of a choice agree on
the weights they share with the rest of the supernet."""

import zlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export

METRICS = ("cos", "per_filter_cos", "l2")
SHARED = ("reference", "candidates", "all")


@kerasnas_export("kerasnas.fewshot.GradientMatcher")
class GradientMatcher:
    """Distance matrices between the options of a choice from the gradients
    they induce on the shared weights.

    For a choice (edge) `e` and each option `o` it allows: the rest of the
    architecture is drawn as the base method draws it (a single-path
    supernet: one path from its path sampler under its mask; a DARTS/SNAS
    supernet: its masked softmax mixing weights), `o` is forced on `e`
    (one-hot; `hard=False` keeps the option's softmax weight, DARTS only),
    and the gradient of the training loss on one batch is taken with
    respect to the *shared weights*. The distance of two options is a
    function of their two gradients (`metric`). This is repeated `repeats`
    times, each on a fresh batch with a fresh draw of the rest of the path
    (the same draw for every option of a repeat), and the matrices (not the
    gradients) are averaged, as in the reference (`skhu101/GM-NAS`).

    Shared weights (`shared`):
        - `"reference"` (default): the candidates of every other choice
          (edge `e`'s own candidates are excluded in every cell, since all
          cells share one label), plus the layers the space names in
          `matching_shared_layers` (NAS-Bench-201's residual reduction
          blocks); never the stem or the classifier.
        - `"candidates"`: the candidates of every other choice only.
        - `"all"`: every network weight but edge `e`'s candidates.
        - a callable `variable -> bool` selecting the base set (edge `e`'s
          candidates are always excluded).

    Metrics: `"cos"`: 1 − cosine of the concatenated gradients (reference
    default); `"per_filter_cos"`: the sum over weights and output filters
    of 1 − cosine (per-output-channel vectors, the last axis in Keras; a
    bias or BN vector counts as one filter; a filter whose gradient is zero
    for both options, e.g. off the drawn path, counts 0); `"l2"`: the squared Euclidean
    distance (the reference's `"mse"`).

    One compiled function computes a gradient for any option, repeat and
    edge (the architecture is an input tensor): a split traces once. Under
    a `tf.distribute` strategy the batch is split across replicas and the
    gradients summed across them before any distance is taken (R replicas
    give what one device gives). Moving BN statistics are restored after a
    call (matching does not change the supernet).

    Args:
        supernet: a `kerasnas.Supernet` (or `DartsSupernet`), compiled.
        repeats: R, the number of batches per matrix (reference 100).
        metric: see above.
        shared: see above.
        hard: force the option with weight 1 or (mixed supernets only) with
            its softmax weight; default the space's `matching_hard` (the
            reference: 1 on NAS-Bench-201, the softmax weight on DARTS).
        seed: seed of the path draws (combined with the edge and `key`).
    """

    def __init__(self, supernet, repeats=100, metric="cos", shared="reference", hard=None, seed=0):
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ValueError(
                "Invalid value for argument `repeats`. Expected a positive int. "
                f"Received: repeats={repeats!r}"
            )
        if metric not in METRICS:
            raise ValueError(
                f"Invalid value for argument `metric`. Expected one of {METRICS}. "
                f"Received: metric={metric!r}"
            )
        if not callable(shared) and shared not in SHARED:
            raise ValueError(
                f"Invalid value for argument `shared`. Expected one of {SHARED} "
                f"or a callable. Received: shared={shared!r}"
            )
        self.supernet = supernet
        self.repeats = repeats
        self.metric = metric
        self.shared = shared
        if hard is None:
            hard = supernet.space.matching_hard
        self.hard = bool(hard)
        self.seed = int(seed)
        self.mixed = bool(supernet.arch_variables)
        self._function = None
        self.trace_count = 0
        variables = supernet.network_variables
        self._base = [self._in_base(v) for v in variables]
        self._owners = [supernet.candidate_owner(v) for v in variables]
        self._sizes = [int(np.prod(v.shape)) for v in variables]
        self._shapes = [tuple(v.shape) for v in variables]

    def _in_base(self, variable):
        if callable(self.shared):
            return bool(self.shared(variable))
        if self.supernet.candidate_owner(variable) is not None:
            return True
        if self.shared == "all":
            return True
        if self.shared == "candidates":
            return False
        prefixes = tuple(getattr(self.supernet.space, "matching_shared_layers", ()))
        return bool(prefixes) and variable.path.split("/")[0].startswith(prefixes)

    def shared_variables(self, label):
        """The shared weights of choice `label` (see the class docstring)."""
        position = self._position(label)
        return [v for v, k in zip(self.supernet.network_variables, self._keep(position)) if k]

    def _keep(self, position):
        return [
            base and (owner is None or owner[0] != position)
            for base, owner in zip(self._base, self._owners)
        ]

    def _position(self, label):
        labels = self.supernet.space.labels
        if label not in labels:
            raise ValueError(
                f"Invalid value for argument `label`. Expected one of {list(labels)}. "
                f"Received: label={label!r}"
            )
        return labels.index(label)

    # === Gradients ===
    def _make_function(self):
        supernet = self.supernet
        strategy = supernet.distribute_strategy
        variables = supernet.network_variables

        def step(x, y, arch):
            with tf.GradientTape() as tape:
                y_pred = supernet.network([x, arch], training=True)
                loss = supernet._compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            gradients = supernet._replica_sum(tape.gradient(loss, variables), variables)
            return tf.concat([tf.reshape(tf.cast(g, "float32"), [-1]) for g in gradients], 0)

        def function(x, y, arch):
            self.trace_count += 1  # Python runs once per trace
            result = strategy.run(step, args=(x, y, arch))
            return strategy.experimental_local_results(result)[0]

        return supernet.graph_function(function)

    def gradients(self, label, data, key=0):
        """Flat gradients for every allowed option of `label`, per repeat.

        Args:
            label: the choice to split.
            data: a dataset of training batches (`(x, y)`, `(x, y, index)`,
                or a DARTS `(train, valid)` pair: the train part is used);
                its first `repeats` batches are used.
            key: an int folded into the seed of the path draws (e.g. the
                node of a few-shot tree).

        Returns:
            `(options, gradients)`: the allowed option names and an array
            `(repeats, len(options), num_shared_weights)`.
        """
        position = self._position(label)
        supernet = self.supernet
        options = supernet.get_mask()[label]
        all_options = supernet.space.choices[label]
        if len(options) < 2:
            raise ValueError(
                f"Cannot split choice {label!r}: it has one option left ({options})."
            )
        indices = [all_options.index(o) for o in options]
        keep = np.repeat(self._keep(position), self._sizes)  # per weight -> per scalar
        if self._function is None:
            self._function = self._make_function()
        generator = keras.random.SeedGenerator(
            zlib.crc32(f"{self.seed}/{key}/{label}".encode()) & 0x7FFFFFFF
        )
        statistics = supernet._bn_statistics()
        saved = [ops.convert_to_numpy(v) for v in statistics]
        strategy = supernet.distribute_strategy
        batches = data.map(_train_part).take(self.repeats)
        if strategy.num_replicas_in_sync > 1:
            batches = strategy.experimental_distribute_dataset(batches)
        result = []
        try:
            for x, y in batches:
                base = self._base_arch(generator)
                row = []
                for index in indices:
                    arch = self._force(base, position, index)
                    row.append(np.asarray(self._function(x, y, arch))[keep])
                result.append(np.stack(row))
        finally:
            for variable, value in zip(statistics, saved):
                variable.assign(value)
        if len(result) < self.repeats:
            raise ValueError(
                f"Invalid value for argument `data`. Expected at least repeats={self.repeats} "
                f"batches. Received: {len(result)}"
            )
        return list(options), np.stack(result)

    def _base_arch(self, generator):
        supernet = self.supernet
        if self.mixed:
            return ops.convert_to_numpy(supernet.alpha_weights(sample=True))
        path = supernet.path_sampler.sample(supernet.option_mask, generator)
        return ops.convert_to_numpy(path)

    def _force(self, base, position, index):
        arch = np.array(base, copy=True)
        if self.mixed:
            weight = 1.0 if self.hard else float(arch[position, index])
            arch[position] = 0.0
            arch[position, index] = weight
            return tf.constant(arch, "float32")
        arch[position] = index
        return tf.constant(arch, "int32")

    # === Distances ===
    def distances(self, label, data, key=0):
        """The `(n, n)` distance matrix of the allowed options of `label`,
        averaged over the repeats. Returns `(options, matrix)`."""
        options, gradients = self.gradients(label, data, key)
        return options, self.distance_from_gradients(gradients, label)

    def distance_from_gradients(self, gradients, label=None):
        """Average over repeats of the metric on `(repeats, n, d)` gradients."""
        shapes = None
        if self.metric == "per_filter_cos":
            position = self._position(label)
            shapes = [s for s, k in zip(self._shapes, self._keep(position)) if k]
        return np.mean([pairwise(g, self.metric, shapes) for g in gradients], axis=0)


def _train_part(*batch):
    if len(batch) == 2 and isinstance(batch[0], (tuple, list)):
        batch = batch[0]  # a DARTS (train, valid) pair
    return batch[0], batch[1]


@kerasnas_export("kerasnas.fewshot.pairwise_distances")
def pairwise(gradients, metric="cos", shapes=None):
    """`(n, n)` distances between the rows of `gradients` `(n, d)`.

    `shapes`: the shapes of the weights concatenated in each row (needed by
    `"per_filter_cos"`)."""
    g = np.asarray(gradients, "float64")
    n = g.shape[0]
    if metric == "cos":
        norms = np.linalg.norm(g, axis=1)
        return 1.0 - (g @ g.T) / (norms[:, None] * norms[None, :] + 1e-6)
    if metric == "l2":
        squared = np.sum(g * g, axis=1)
        return np.maximum(squared[:, None] + squared[None, :] - 2 * g @ g.T, 0.0)
    if metric == "per_filter_cos":
        if shapes is None:
            raise ValueError("`per_filter_cos` needs the weights' shapes.")
        result = np.zeros((n, n))
        start = 0
        for shape in shapes:
            size = int(np.prod(shape))
            filters = shape[-1] if len(shape) >= 2 else 1
            block = g[:, start : start + size].reshape(n, -1, filters)  # (n, fan_in, filters)
            start += size
            norms = np.linalg.norm(block, axis=1)  # (n, filters)
            dots = np.einsum("ikf,jkf->ijf", block, block)
            distance = 1.0 - dots / (norms[:, None, :] * norms[None, :, :] + 1e-6)
            # A filter no option moves (off the path) says nothing: 0.
            silent = (norms[:, None, :] == 0) & (norms[None, :, :] == 0)
            result += np.sum(np.where(silent, 0.0, distance), axis=-1)
        return result
    raise ValueError(
        f"Invalid value for argument `metric`. Expected one of {METRICS}. Received: metric={metric!r}"
    )
