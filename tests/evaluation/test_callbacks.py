import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.evaluation import GradientVarianceMonitor
from nas_helpers import compile_sgd, tiny_data, tiny_space


class PathRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.paths = []

    def on_train_batch_end(self, batch, logs=None):
        self.paths.append(self.model.get_path())


def test_gradient_variance_equals_eqs_14_15_on_recorded_gradients():
    # With a zero learning rate the weights stay put, so the gradient of each
    # step can be recomputed afterwards from its path and batch, and the
    # variance of Eqs. 14-15 computed in numpy (per parameter over the steps
    # whose path contains it, then averaged over parameters).
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=3, bn="batch"), learning_rate=0.0, momentum=0.0)
    _, _, data = tiny_data(num=48, batch_size=8, seed=4)
    monitor, recorder = GradientVarianceMonitor(relative=True), PathRecorder()
    history = supernet.fit(data, epochs=1, verbose=0, callbacks=[recorder, monitor]).history
    assert len(set(map(str, recorder.paths))) > 3

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = supernet.trainable_variables
    steps = {id(v): [] for v in variables}
    for arch, (x, y) in zip(recorder.paths, data):
        supernet.set_path(arch)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, supernet(x, training=True))
        for v, g in zip(variables, tape.gradient(loss, variables)):
            owner = supernet.candidate_owner(v)
            if owner is None or arch[space.labels[owner[0]]] == space.choices[space.labels[owner[0]]][owner[1]]:
                steps[id(v)].append(np.zeros(v.shape) if g is None else g.numpy())
    variances = np.concatenate([np.var(steps[id(v)], axis=0).ravel() for v in variables if steps[id(v)]])
    mean_squares = np.concatenate([np.mean(steps[id(v)], axis=0).ravel() ** 2 for v in variables if steps[id(v)]])
    expected = variances.mean()
    assert expected > 0
    assert history["gradient_variance"][0] == pytest.approx(expected, rel=1e-4)
    assert monitor.history["gradient_variance_relative"][0] == pytest.approx(
        expected / mean_squares.mean(), rel=1e-4
    )
    # Candidates never sampled in the epoch are left out, not counted as 0.
    counts = monitor._state["count"].numpy()
    assert 0 in counts and counts.max() == len(recorder.paths)


def test_gradient_variance_is_zero_for_identical_steps_and_resets_per_epoch():
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn="batch"), learning_rate=0.0, momentum=0.0)
    arch = space.sample(1)
    supernet.set_mask({k: [v] for k, v in arch.items()})
    x, y, _ = tiny_data(num=8)
    same = tf.data.Dataset.from_tensors((x, y)).repeat(4)
    monitor = GradientVarianceMonitor(relative=True)
    supernet.fit(same, epochs=2, verbose=0, callbacks=[monitor])
    assert monitor.history["epoch"] == [1, 2]
    # Zero up to float32 rounding of E[g^2] - E[g]^2, against the gradient's scale.
    assert max(monitor.history["gradient_variance_relative"]) < 1e-5
    plain = keras.Sequential([keras.layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="kerasnas.Supernet"):
        plain.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0, callbacks=[GradientVarianceMonitor()])
