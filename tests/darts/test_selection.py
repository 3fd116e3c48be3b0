"""DARTS-PT's perturbation-based selection, PT-Mag and DARTS argmax."""

import json

import numpy as np
import pytest
import tensorflow as tf

import keras
from kerasnas.darts import DartsSupernet
from kerasnas.darts import PerturbationSelector
from kerasnas.darts import argmax_architecture
from nas_helpers import compile_sgd, tiny_data, tiny_space


def darts(seed=1, **kwargs):
    return tiny_space().build_supernet(supernet_class=DartsSupernet, seed=seed, bn="search", **kwargs)


def self_labelled(supernet, num=64, batch_size=16):
    """Images labelled by the supernet's own training-mode prediction, batch
    by batch: the unperturbed supernet is 100 % accurate on them."""
    x, _, _ = tiny_data(num=num, seed=5)
    batches = []
    for k in range(0, num, batch_size):
        xb = x[k : k + batch_size]
        logits = supernet.network([tf.constant(xb), supernet.mixing_weights()], training=True)
        batches.append((xb, np.argmax(keras.ops.convert_to_numpy(logits), -1)))
    xs = np.concatenate([b[0] for b in batches])
    ys = np.concatenate([b[1] for b in batches])
    return tf.data.Dataset.from_tensor_slices((xs, ys)).batch(batch_size)


@pytest.mark.parametrize("method", ["pt", "magnitude"])
def test_selection_removes_the_op_the_network_needs_most(method):
    # On every edge one op holds (almost) all the weight: removing it is
    # the only perturbation that changes the predictions, so PT must keep
    # it; PT-Mag keeps it because its α is the largest.
    supernet = compile_sgd(darts())
    rng = np.random.default_rng(0)
    dominant = rng.integers(1, 5, size=6)  # never 'none'
    alpha = np.full(supernet.alpha.shape, -20.0, "float32")
    alpha[np.arange(6), dominant] = 20.0
    supernet.alpha.assign(alpha)
    valid = self_labelled(supernet)
    selector = PerturbationSelector(supernet, valid, method=method, tune_epochs=0, seed=3)
    assert selector.evaluate()[0] == 1.0
    arch = selector.run()
    options = supernet.space.choices["1<-0"]
    assert arch == {label: options[k] for label, k in zip(supernet.space.labels, dominant)}
    first = selector.log[0]
    if method == "pt":
        # The dominant op's removal costs accuracy; the others' costs none.
        kept = first["option"]
        assert first["scores"][kept] > -1.0
        assert all(s == -1.0 for o, s in first["scores"].items() if o != kept)
        assert selector._eval_function.experimental_get_tracing_count() == 1
    # Every decision is a one-hot projection: the supernet is now the child.
    assert set(np.unique(keras.ops.convert_to_numpy(supernet.mixing_weights()))) <= {0.0, 1.0}


def test_pt_scores_equal_a_direct_evaluation_and_argmax_ignores_projections():
    supernet = compile_sgd(darts())
    valid = self_labelled(supernet)
    assert argmax_architecture(supernet) == supernet.derive()
    selector = PerturbationSelector(supernet, valid, criterion="loss", tune_epochs=0, seed=0)
    label = selector.groups[0][0]
    i = supernet.space.labels.index(label)
    moving = [v.numpy().copy() for v in supernet.non_trainable_variables]
    option, scores = selector.select_op(label)
    for v, value in zip(supernet.non_trainable_variables, moving):  # restore BN stats
        v.assign(value)
    supernet.clear_projections()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for k, o in enumerate(supernet.space.choices[label]):
        weights = keras.ops.convert_to_numpy(supernet.mixing_weights()).copy()
        weights[i, k] = 0.0
        losses = [
            float(loss_fn(y, supernet.network([x, tf.constant(weights)], training=True))) * len(y)
            for x, y in valid
        ]
        assert scores[o] == pytest.approx(sum(losses) / 64, rel=1e-5)
    assert option == max(scores, key=scores.get)


def test_selection_resumes_after_a_kill_bit_identically(tmp_path):
    _, _, train = tiny_data(num=16, seed=2)

    def fresh():  # fixed α: a cheaper trace; α's own resume is the round trip's
        keras.utils.set_random_seed(0)
        return compile_sgd(darts(fix_alpha=True))

    def selector(supernet, directory, callbacks=()):
        valid = tiny_data(num=16, seed=4)[2]
        return PerturbationSelector(
            supernet, valid, train, interval=1, tune_epochs=2, seed=7,
            directory=directory, callbacks=list(callbacks),
        )

    reference = fresh()
    expected = selector(reference, tmp_path / "a").run()

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        selector(fresh(), tmp_path / "b", [Kill()]).run()
    before_kill = json.loads((tmp_path / "b" / "selection.json").read_text())["epoch_seconds"]
    assert len(before_kill) == 1 and before_kill[0] > 0
    resumed_selector = selector(fresh(), tmp_path / "b")
    resumed = resumed_selector.run()
    assert resumed == expected
    assert len(resumed_selector.log) == 6
    # Its seconds are the whole selection's: the killed process' epoch too.
    assert resumed_selector.epoch_seconds[0] == before_kill[0]
    assert len(resumed_selector.epoch_seconds) == 2
    assert resumed_selector.seconds == pytest.approx(
        sum(resumed_selector.epoch_seconds) + resumed_selector.final_seconds
    )
    for a, b in zip(reference.variables, resumed_selector.supernet.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_bad_selector_arguments():
    supernet = compile_sgd(darts())
    valid = tiny_data()[2]
    with pytest.raises(ValueError, match="method"):
        PerturbationSelector(supernet, valid, method="gradient")
    with pytest.raises(ValueError, match="criterion"):
        PerturbationSelector(supernet, valid, criterion="f1")
    with pytest.raises(ValueError, match="train_data"):
        PerturbationSelector(supernet, valid)
    with pytest.raises(ValueError, match="DartsSupernet"):
        PerturbationSelector(compile_sgd(tiny_space().build_supernet()), valid)
