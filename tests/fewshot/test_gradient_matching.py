"""GM-NAS' gradient matching on a tiny NAS-Bench-201 supernet."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from kerasnas import fewshot
from nas_helpers import compile_sgd, tiny_data, tiny_space

LABEL = "2<-1"


@pytest.fixture(scope="module")
def supernet():
    supernet = tiny_space().build_supernet(seed=3)
    compile_sgd(supernet)
    _, _, data = tiny_data(num=32, batch_size=8, seed=1)
    supernet.fit(data, epochs=1, verbose=0)  # not at initialisation
    return supernet


def test_shared_weights_exclude_the_split_edge_and_stem_and_classifier(supernet):
    matcher = fewshot.GradientMatcher(supernet, repeats=1)
    position = supernet.space.labels.index(LABEL)
    shared = {v.path for v in matcher.shared_variables(LABEL)}
    expected = set()
    for v in supernet.network_variables:
        owner = supernet.candidate_owner(v)
        if (owner is not None and owner[0] != position) or v.path.startswith("reduction"):
            expected.add(v.path)
    assert shared == expected
    # in every cell (3 here), the edge's own candidates are out, the others in
    assert not any("_e21/" in p for p in shared)
    assert {p.split("/")[0] for p in shared if "_e10/" in p} == {"cell0_0_e10", "cell1_0_e10", "cell2_0_e10"}
    assert any(p.startswith("reduction1/") for p in shared)
    assert not any(p.split("/")[0] in ("stem_conv", "stem_bn", "lastact_bn", "classifier") for p in shared)
    candidates = {v.path for v in fewshot.GradientMatcher(supernet, shared="candidates").shared_variables(LABEL)}
    assert candidates == {p for p in expected if not p.startswith("reduction")}


def test_distances_equal_a_numpy_recomputation_from_per_option_gradients(supernet):
    space = supernet.space
    base = space.from_string("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|")
    # Every other choice fixed by the mask: the base path is known.
    supernet.set_mask({label: [option] for label, option in base.items() if label != LABEL})
    try:
        matcher = fewshot.GradientMatcher(supernet, repeats=3)
        _, _, data = tiny_data(num=32, batch_size=8, seed=4)
        before = [v.numpy() for v in supernet._bn_statistics()]
        options, gradients = matcher.gradients(LABEL, data)
        after = [v.numpy() for v in supernet._bn_statistics()]
        assert all(np.array_equal(a, b) for a, b in zip(before, after))  # BN statistics restored
        assert options == list(space.choices[LABEL]) and gradients.shape[:2] == (3, 5)
        shared = matcher.shared_variables(LABEL)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        for r, (x, y) in enumerate(data.take(3)):
            for k, option in enumerate(options):
                path = tf.constant(space.encode({**base, LABEL: option}), "int32")
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, supernet.network([x, path], training=True))
                grads = tape.gradient(loss, shared)  # eager: None off the path
                flat = np.concatenate([
                    (np.zeros(v.shape) if g is None else g.numpy()).ravel() for g, v in zip(grads, shared)
                ])
                np.testing.assert_allclose(gradients[r, k], flat, rtol=1e-4, atol=1e-6)
        _, matrix = matcher.distances(LABEL, data)
        expected = []
        for g in gradients:
            norms = np.linalg.norm(g, axis=1)
            expected.append(1 - g @ g.T / (np.outer(norms, norms) + 1e-6))
        np.testing.assert_allclose(matrix, np.mean(expected, axis=0), atol=1e-6)
        assert matrix[0, 1] > 0.01  # options differ
        l2 = fewshot.GradientMatcher(supernet, repeats=3, metric="l2").distances(LABEL, data)[1]
        diffs = gradients[:, :, None, :] - gradients[:, None, :, :]
        np.testing.assert_allclose(l2, np.mean(np.sum(diffs**2, -1), 0), rtol=1e-4, atol=1e-9)
        per_filter = fewshot.GradientMatcher(supernet, repeats=3, metric="per_filter_cos")
        matrix = per_filter.distances(LABEL, data)[1]
        expected = 0.0
        for g in gradients:  # pair (1, 2), weight by weight, filter by filter
            start = 0
            for v in shared:
                size = int(np.prod(v.shape))
                a = g[1, start:start + size].reshape(-1, v.shape[-1] if len(v.shape) > 1 else 1)
                b = g[2, start:start + size].reshape(a.shape)
                start += size
                for f in range(a.shape[1]):
                    na, nb = np.linalg.norm(a[:, f]), np.linalg.norm(b[:, f])
                    if na or nb:
                        expected += (1 - a[:, f] @ b[:, f] / (na * nb + 1e-6)) / len(gradients)
        assert matrix[1, 2] == pytest.approx(expected, rel=1e-6)
    finally:
        supernet.set_mask(None)


def test_one_trace_for_every_option_repeat_and_edge(supernet):
    matcher = fewshot.GradientMatcher(supernet, repeats=2)
    _, _, data = tiny_data(num=32, batch_size=8, seed=5)
    for label in ("1<-0", "3<-2"):
        matcher.distances(label, data)
    assert matcher.trace_count == 1


def test_options_computing_the_same_function_land_in_one_group(supernet):
    # Make every cell's nor_conv_3x3 on the edge compute its nor_conv_1x1:
    # the 1x1 kernel at the centre of a zero 3x3 kernel, same bias and BN.
    saved = [v.numpy() for v in supernet.weights]
    try:
        layers = {l.name: l for l in supernet.network._flatten_layers(include_self=False)}
        for cell in ("cell0_0_e21", "cell1_0_e21", "cell2_0_e21"):
            one, three = layers[f"{cell}_nor_conv_1x1"], layers[f"{cell}_nor_conv_3x3"]
            for w1, w3 in zip(one.weights, three.weights):
                value = w1.numpy()
                if len(w3.shape) == 4:
                    kernel = np.zeros(w3.shape, "float32")
                    kernel[1, 1] = value[0, 0]
                    value = kernel
                w3.assign(value)
        matcher = fewshot.GradientMatcher(supernet, repeats=4)
        _, _, data = tiny_data(num=32, batch_size=8, seed=6)
        options, matrix = matcher.distances(LABEL, data)
        one, three = options.index("nor_conv_1x1"), options.index("nor_conv_3x3")
        others = matrix + np.diag(np.full(5, np.inf))
        others[one, three] = others[three, one] = np.inf
        assert matrix[one, three] < 1e-4 < others.min()
        groups, _ = fewshot.nb201_split(matrix)
        assert any(one in g and three in g for g in groups)
    finally:
        for v, value in zip(supernet.weights, saved):
            v.assign(value)


def test_bad_input(supernet):
    _, _, data = tiny_data(num=16, batch_size=8)
    with pytest.raises(ValueError, match="metric"):
        fewshot.GradientMatcher(supernet, metric="cosine")
    with pytest.raises(ValueError, match="repeats"):
        fewshot.GradientMatcher(supernet, repeats=0)
    matcher = fewshot.GradientMatcher(supernet, repeats=3)
    with pytest.raises(ValueError, match="label"):
        matcher.distances("9<-0", data)
    with pytest.raises(ValueError, match="at least repeats=3 batches"):
        matcher.distances(LABEL, data)
    supernet.set_mask({LABEL: ["none"]})
    try:
        with pytest.raises(ValueError, match="one option left"):
            matcher.distances(LABEL, data)
    finally:
        supernet.set_mask(None)
