"""Path samplers: how a supernet picks the architecture of each step."""

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.sampling.PathSampler")
class PathSampler(keras.layers.Layer):
    """Base class of the samplers that choose each training step's path.

    A sampler is a Layer so that its state lives in variables tracked by the
    supernet: saved in `.keras` files and checkpoints, mirrored under a
    distribution strategy. `Supernet` calls, inside its compiled
    `train_step`:

    - `sample(mask, seed_generator)` -> int32 vector of option indices, one
      per choice in label order. `mask` is the supernet's `(num_choices,
      max_options)` 0/1 float mask of allowed options; a sampler must only
      return allowed options.
    - `update(supernet, path, gradients, variables)` after the gradients are
      reduced across replicas and clipped (before weight decay): the hook of
      gradient-driven samplers such as PA&DA's. Default: nothing.

    Subclasses create variables in `build()`, where `self.num_options` (the
    number of options of each choice) and `self.labels` are known.
    """

    def bind(self, space):
        """Attaches the sampler to a search space and builds its state."""
        self.labels = tuple(space.labels)
        self.num_options = tuple(space.num_options)
        if not self.built or getattr(self, "_build_deferred", False):
            self._build_deferred = False
            self.build(None)

    def build(self, input_shape=None):
        self.built = True

    def build_from_config(self, config):
        # A sampler's state depends on the space, not on an input shape: a
        # deserialized sampler is built when the supernet binds it (Keras
        # marks it built after this call).
        self._build_deferred = True

    def sample(self, mask, seed_generator):
        raise NotImplementedError

    def update(self, supernet, path, gradients, variables):
        return None

    def call(self, mask):
        raise NotImplementedError(
            "A PathSampler is not called; use `sample(mask, seed_generator)`."
        )


@kerasnas_export("kerasnas.sampling.UniformPathSampler")
class UniformPathSampler(PathSampler):
    """SPOS: every choice independently uniform over its allowed options.

    Args:
        reject_disconnected: draw again (in the graph, at most
            `max_draws` times) while the path leaves the network's output
            disconnected from its input, as GM-NAS' RSWS base does on
            NAS-Bench-201 (`check_connect`); needs a space with
            `path_connected` (NAS-Bench-201).
        max_draws: the bound of those draws (the last is used if none is
            connected, e.g. under a mask that allows no connected path).
    """

    def __init__(self, reject_disconnected=False, max_draws=100, **kwargs):
        super().__init__(**kwargs)
        self.reject_disconnected = bool(reject_disconnected)
        self.max_draws = int(max_draws)
        self._connected = None

    def bind(self, space):
        if self.reject_disconnected:
            if not hasattr(space, "path_connected"):
                raise ValueError(
                    "Invalid value for argument `reject_disconnected`. Expected a space "
                    f"with `path_connected` (NAS-Bench-201). Received: {type(space).__name__}"
                )
            self._connected = space.path_connected
        super().bind(space)

    def sample(self, mask, seed_generator):
        path = sample_from_probabilities(mask, seed_generator)
        if not self.reject_disconnected:
            return path
        import tensorflow as tf

        def again(count, path):
            return tf.logical_and(count < self.max_draws, tf.logical_not(self._connected(path)))

        def draw(count, path):
            return count + 1, sample_from_probabilities(mask, seed_generator)

        return tf.while_loop(again, draw, (tf.constant(1), path))[1]

    def get_config(self):
        config = super().get_config()
        config.update(reject_disconnected=self.reject_disconnected, max_draws=self.max_draws)
        return config


def sample_from_probabilities(probabilities, seed_generator):
    """One categorical draw per row of an unnormalized `(choices, options)`
    probability matrix (zero rows entries are never drawn) -> int32 vector."""
    logits = ops.where(probabilities > 0, ops.log(ops.maximum(probabilities, 1e-30)), -1e9)
    draws = keras.random.categorical(logits, 1, seed=seed_generator, dtype="int32")
    return ops.reshape(draws, (-1,))
