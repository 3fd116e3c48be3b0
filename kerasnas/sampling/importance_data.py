"""PA&DA's data importance sampling in `tf.data`."""

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.callbacks.observer import SupernetObserver
from kerasnas.sampling.schedules import LinearSchedule
from kerasnas.sampling.schedules import schedule_value
from kerasnas.sampling.schedules import with_epochs


@kerasnas_export("kerasnas.sampling.ImportanceDataSampler")
class ImportanceDataSampler:
    """Draws each epoch's training samples by importance (PA&DA's data
    importance sampling), streaming them through `tf.data`.

    The score of sample `i` is `||softmax(logits_i) − onehot(y_i)||₂`, taken
    from the training forward pass of the step that drew it (the norm of the
    loss gradient with respect to the logits); a sample drawn again in the
    same epoch gets the mean of its old score and the new one, a sample not
    drawn keeps 0. At the end of epoch `e`, with `τ` from the schedule,
    `p = τ · s / Σs + (1 − τ) / N` and the next epoch is `N` indices drawn
    from `p` **with replacement** (numpy, seeded by `(seed, e)`), as the
    reference code does. The first epoch is a seeded permutation (plain
    SPOS data).

    `dataset()` is one epoch of `(x, y, index)` batches (`(x, y, weight,
    index)` with `importance_weighted_loss`) that reads the sampler's
    current indices each time Keras starts an epoch: pass it to `fit`
    without `steps_per_epoch`. The per-example `map_fn(image, label, seed)`
    (e.g. augmentation with stateless random ops and the given seed) runs
    inside the pipeline. Scores are collected in the graph by the callback
    (`sampler.callback()`, pass it to `fit`), gathered from every replica
    under `tf.distribute`.

    Args:
        source: `(images, labels)` arrays, a `kerasnas.data` name or `.npz`
            path (its `split` is used), a `tf.data.Dataset` of unbatched
            `(x, y)` or `(x, y, index)` examples (read once into memory), or
            a random-access source read example by example, never held in
            memory: any object with `len()` and `[i]` returning `(image,
            label)` or `{"image": ..., "label": ...}`, e.g.
            `kerasnas.data.random_access("imagenet2012")` (TFDS'
            `tfds.data_source`, ArrayRecord files). A sample's index is its
            position in the source.
        batch_size: training batch size.
        map_fn: optional per-example `(image, label, seed) -> (image,
            label)`; `seed` is a stateless seed (shape (2,)) that depends only
            on the sampler's seed, the epoch and the position in the epoch.
        tau: τ schedule (a number, a callable of the 0-based epoch, or a
            schedule); default `LinearSchedule()` (`epoch / epochs`).
        seed: int seed of the draws and of `map_fn`'s seeds.
        importance_weighted_loss: weight each sample's loss by `1 / (N p_i)`
            (unbiased importance sampling, the paper's Eq. 3); off in the
            reference code.
        split: the split of a named source.
        limit: keep the first `limit` samples of the source.
    """

    def __init__(
        self,
        source,
        batch_size,
        map_fn=None,
        tau=None,
        seed=0,
        importance_weighted_loss=False,
        split="train",
        limit=None,
    ):
        if int(batch_size) < 1:
            raise ValueError(
                "Invalid value for argument `batch_size`. Expected a positive int. "
                f"Received: batch_size={batch_size}"
            )
        self.source = source if _is_random_access(source) else None
        if self.source is not None:
            n = len(source) if limit is None else min(len(source), int(limit))
            if not n:
                raise ValueError(
                    "Invalid value for argument `source`. Expected a non-empty "
                    "random-access source. Received: 0 examples"
                )
            image, _ = _example(source[0])
            self._image_spec = tf.TensorSpec((None,) * image.ndim, tf.as_dtype(image.dtype))
            if image.ndim == 3:  # fixed channels; heights and widths may vary
                self._image_spec = tf.TensorSpec((None, None, image.shape[-1]), self._image_spec.dtype)
            self.images = self.labels = None
        else:
            images, labels = _arrays(source, split)
            if limit is not None:
                images, labels = images[: int(limit)], labels[: int(limit)]
            if len(images) != len(labels) or not len(images):
                raise ValueError(
                    "Invalid value for argument `source`. Expected as many labels as "
                    f"images, at least one. Received: {len(images)} images, {len(labels)} labels"
                )
            n = len(images)
            self.images = tf.constant(images)
            self.labels = tf.constant(labels)
        self.num_examples = n
        self.batch_size = int(batch_size)
        self.map_fn = map_fn
        self.tau = LinearSchedule() if tau is None else tau
        self.seed = int(seed)
        self.importance_weighted_loss = bool(importance_weighted_loss)
        first = np.random.default_rng([self.seed, 0]).permutation(n)
        with tf.init_scope():
            self.indices = tf.Variable(first.astype("int64"), trainable=False, name="data_indices")
            self.weights = tf.Variable(np.ones(n, "float32"), trainable=False, name="data_weights")
            self.epoch = tf.Variable(0, dtype="int64", trainable=False, name="data_epoch")
        self.probabilities = np.full(n, 1.0 / n)

    @property
    def variables(self):
        """The state to checkpoint: drawn indices, their weights, the epoch."""
        return [self.indices, self.weights, self.epoch]

    def steps_per_epoch(self):
        return -(-self.num_examples // self.batch_size)

    def dataset(self):
        """One epoch of batches from the current draw (see the class doc)."""
        seed = tf.constant([self.seed, 1], tf.int64)
        fold_in = tf.random.experimental.stateless_fold_in

        def example(position, index, weight, epoch_seed):
            if self.source is not None:
                image, label = self._read(index)
            else:
                image = tf.gather(self.images, index)
                label = tf.gather(self.labels, index)
            if self.map_fn is not None:
                image, label = self.map_fn(image, label, fold_in(epoch_seed, position))
            if self.importance_weighted_loss:
                return image, label, weight, index
            return image, label, index

        def epoch(_):
            indices = self.indices.read_value()
            weights = self.weights.read_value()
            epoch_seed = fold_in(seed, self.epoch.read_value())
            examples = tf.data.Dataset.from_tensor_slices((indices, weights)).enumerate()
            return examples.map(
                lambda k, iw: example(k, iw[0], iw[1], epoch_seed),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            ).batch(self.batch_size)

        dataset = tf.data.Dataset.from_tensors(0).flat_map(epoch)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch()))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def _read(self, index):
        """`(image, label)` of example `index` of the random-access source."""
        spec = self._image_spec

        def read(i):
            image, label = _example(self.source[int(i)])
            return image.astype(spec.dtype.as_numpy_dtype), np.int64(label)

        image, label = tf.numpy_function(read, [index], [spec.dtype, tf.int64], stateful=False)
        image.set_shape(spec.shape)
        label.set_shape(())
        return image, label

    def end_epoch(self, scores, tau, epoch):
        """Draws the next epoch from `scores` (numpy, one per sample).

        Returns:
            The sampling probabilities `τ · q + (1 − τ) / N`.
        """
        n = self.num_examples
        scores = np.asarray(scores, "float64")
        total = scores.sum()
        q = scores / total if total > 0 else np.full(n, 1.0 / n)
        probabilities = tau * q + (1.0 - tau) / n
        probabilities /= probabilities.sum()
        rng = np.random.default_rng([self.seed, int(epoch) + 1])
        drawn = rng.choice(n, size=n, replace=True, p=probabilities)
        self.indices.assign(drawn.astype("int64"))
        self.weights.assign((1.0 / (n * probabilities[drawn])).astype("float32"))
        self.epoch.assign(int(epoch) + 1)
        self.probabilities = probabilities
        return probabilities

    def callback(self, tau=None):
        """The Keras callback that scores samples and redraws every epoch."""
        return DataImportanceCallback(self, self.tau if tau is None else tau)


class DataImportanceCallback(SupernetObserver):
    """Collects per-sample scores in the training step and calls
    `ImportanceDataSampler.end_epoch` at the end of every epoch.

    Logs `data_tau` and `data_unique_fraction` (distinct samples drawn for
    the next epoch / N) in the epoch's logs. Place it before a checkpoint
    callback so that checkpoints hold the new draw.
    """

    observes = "batches"

    def __init__(self, sampler, tau=None):
        super().__init__()
        self.sampler = sampler
        self.tau = sampler.tau if tau is None else tau
        self._tau = self.tau

    def _make_state(self, model):
        # Per-replica copies, updated with the scores gathered from every
        # replica, so all replicas hold the same values.
        n = self.sampler.num_examples
        return [
            keras.Variable(
                initializer="zeros", shape=(n,), dtype="float32", trainable=False,
                synchronization="on_read", aggregation="mean", name=name,
            )
            for name in ("data_scores", "data_seen")
        ]

    def _observe(self, supernet, x, y, y_pred, index):
        if index is None:
            raise ValueError(
                "Invalid value for argument `x`. Expected batches of (x, y, index) "
                "(ImportanceDataSampler.dataset() yields them): the data sampler "
                "scores samples by index. Received: batches without an index"
            )
        logits = tf.cast(tf.stop_gradient(y_pred), "float32")
        classes = logits.shape[-1]
        if len(y.shape) == len(logits.shape) and y.shape[-1] == classes:
            onehot = tf.cast(y, "float32")
        else:
            onehot = tf.one_hot(tf.cast(tf.reshape(y, (-1,)), "int32"), classes)
        scores = tf.norm(tf.nn.softmax(logits) - onehot, axis=-1)
        index = tf.cast(tf.reshape(index, (-1,)), "int64")
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            index = context.all_gather(index, axis=0)
            scores = context.all_gather(scores, axis=0)
        running_mean_update(self._state[0], self._state[1], index, scores)

    def on_train_begin(self, logs=None):
        self._tau = with_epochs(self.tau, (self.params or {}).get("epochs"))

    def on_epoch_begin(self, epoch, logs=None):
        for variable in self._state:
            variable.assign(ops.zeros_like(variable))

    def on_epoch_end(self, epoch, logs=None):
        tau = schedule_value(self._tau, epoch, "tau")
        scores = ops.convert_to_numpy(self._state[0])
        self.sampler.end_epoch(scores, tau, epoch)
        if logs is not None:
            logs["data_tau"] = tau
            unique = np.unique(self.sampler.indices.numpy()).size
            logs["data_unique_fraction"] = unique / self.sampler.num_examples


    def scores(self):
        """The scores collected so far in this epoch (numpy)."""
        return ops.convert_to_numpy(self._state[0])


def running_mean_update(scores, seen, index, values):
    """`scores[i] = values` for a first sighting of `i`, else the mean of the
    old score and the new value, applied in batch order (a sample twice in
    one batch is averaged twice, as a sequential loop would)."""
    order = tf.argsort(index, stable=True)
    index = tf.gather(index, order)
    values = tf.gather(values, order)
    unique, segment = tf.unique(index)
    size = tf.shape(index)[0]
    counts = tf.math.unsorted_segment_sum(tf.ones_like(values), segment, tf.shape(unique)[0])
    starts = tf.cumsum(counts, exclusive=True)
    rank = tf.cast(tf.range(size), "float32") - tf.gather(starts, segment)
    last = tf.gather(counts, segment) - 1.0
    # After k sequential means, value r (0-based) carries weight 2^-(k - r)
    # and the old score 2^-k; an unseen sample starts from its first value.
    weighted = tf.math.unsorted_segment_sum(
        values * tf.pow(0.5, last + 1.0 - rank), segment, tf.shape(unique)[0]
    )
    first = tf.math.unsorted_segment_min(
        tf.where(rank == 0.0, values, np.inf), segment, tf.shape(unique)[0]
    )
    old = tf.gather(ops.convert_to_tensor(scores), unique)
    was_seen = tf.gather(ops.convert_to_tensor(seen), unique) > 0
    old = tf.where(was_seen, old, first)
    new = old * tf.pow(0.5, counts) + weighted
    scores.assign(tf.tensor_scatter_nd_update(ops.convert_to_tensor(scores), unique[:, None], new))
    seen.assign(tf.tensor_scatter_nd_update(ops.convert_to_tensor(seen), unique[:, None], tf.ones_like(new)))


def _is_random_access(source):
    """A sequence of examples read one by one (not arrays, a name, a
    dataset or an `(images, labels)` pair)."""
    if isinstance(source, (str, bytes, np.ndarray, tf.data.Dataset, tuple, list)):
        return False
    return hasattr(source, "__len__") and hasattr(source, "__getitem__")


def _example(item):
    """`(image array, label)` of one random-access example."""
    if isinstance(item, dict):
        if "image" not in item or "label" not in item:
            raise ValueError(
                "Invalid value for argument `source`. Expected examples with "
                f"'image' and 'label'. Received keys: {sorted(item)}"
            )
        return np.asarray(item["image"]), item["label"]
    image, label = item[0], item[1]
    return np.asarray(image), label


def _arrays(source, split):
    if isinstance(source, (tuple, list)) and len(source) == 2:
        return np.asarray(source[0]), np.asarray(source[1])
    if isinstance(source, tf.data.Dataset):
        images, labels = [], []
        for element in source.as_numpy_iterator():
            images.append(element[0])
            labels.append(element[1])
        return np.stack(images), np.asarray(labels)
    if isinstance(source, str):
        from kerasnas import data as nas_data

        return nas_data.load_arrays(source, split)
    raise ValueError(
        "Invalid value for argument `source`. Expected (images, labels) arrays, "
        "a kerasnas.data name or .npz path, or a tf.data.Dataset of examples. "
        f"Received: {type(source).__name__}"
    )
