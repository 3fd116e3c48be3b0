"""GM-NAS on a DARTS (mixed) supernet: the rest of the architecture is the
masked softmax of α, the split option forced with weight 1 or its own."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from kerasnas import fewshot
from kerasnas.darts import DartsSupernet
from kerasnas.darts import paired
from nas_helpers import compile_sgd, tiny_data, tiny_space

LABEL = "3<-1"


def epoch_pairs(initial_epoch, epochs):
    train = [tiny_data(num=16, batch_size=8, seed=200 + e)[2] for e in range(initial_epoch, epochs)]
    valid = [tiny_data(num=16, batch_size=8, seed=300 + e)[2] for e in range(initial_epoch, epochs)]
    t, v = train[0], valid[0]
    for a, b in zip(train[1:], valid[1:]):
        t, v = t.concatenate(a), v.concatenate(b)
    return paired(t, v), 2


@pytest.fixture(scope="module")
def supernet():
    supernet = tiny_space().build_supernet(supernet_class=DartsSupernet, seed=2, bn="search")
    compile_sgd(supernet, learning_rate=0.05)
    supernet.alpha.assign(np.random.default_rng(0).normal(size=supernet.alpha.shape).astype("float32"))
    return supernet


@pytest.mark.parametrize("hard", [True, False])
def test_forced_option_over_the_masked_softmax(supernet, hard):
    supernet.set_mask({"1<-0": ["nor_conv_3x3", "skip_connect"]})
    try:
        matcher = fewshot.GradientMatcher(supernet, repeats=2, hard=hard)
        data, _ = epoch_pairs(0, 1)
        options, gradients = matcher.gradients(LABEL, data)
        weights = supernet.alpha_weights().numpy()
        assert weights[0, 0] == 0.0 and weights[0, 3] > 0  # the mask is in the softmax
        shared = matcher.shared_variables(LABEL)
        position = supernet.space.labels.index(LABEL)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        for r, ((x, y), _) in enumerate(data.take(2)):
            for k in range(len(options)):
                arch = weights.copy()
                arch[position] = 0.0
                arch[position, k] = 1.0 if hard else weights[position, k]
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, supernet.network([x, tf.constant(arch)], training=True))
                grads = tape.gradient(loss, shared)
                flat = np.concatenate([
                    (np.zeros(v.shape) if g is None else g.numpy()).ravel() for g, v in zip(grads, shared)
                ])
                np.testing.assert_allclose(gradients[r, k], flat, rtol=1e-4, atol=1e-6)
    finally:
        supernet.set_mask(None)


def test_a_darts_tree_trains_bilevel_under_its_masks(supernet, tmp_path):
    supernet.set_mask(None)
    trainer = fewshot.FewShotSupernet(
        supernet, tmp_path, split_epochs=[1], matcher_options={"repeats": 2}, seed=1,
    )
    tree = trainer.fit(epoch_pairs, epochs=2)
    assert len(tree.leaves()) == 2
    initial_alpha = None
    for leaf in tree.leaves():
        net = trainer.activate(leaf["id"])
        label = tree.root["split"]
        i = net.space.labels.index(label)
        weights = net.alpha_weights().numpy()
        allowed = [net.space.choices[label].index(o) for o in leaf["mask"][label]]
        assert np.all(weights[i, [k for k in range(5) if k not in allowed]] == 0)
        assert np.isclose(weights[i, allowed].sum(), 1.0)
        if initial_alpha is None:
            initial_alpha = net.alpha.numpy()
        else:  # restarted from the same α, trained apart
            assert not np.array_equal(initial_alpha, net.alpha.numpy())
