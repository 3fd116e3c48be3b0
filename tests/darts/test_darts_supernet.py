"""Mixed choices and the DARTS / SNAS supernet: weighted sums, masks, the
bilevel step against a hand-written loop, fixed α, warm-up, temperature."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.darts import DartsSupernet
from kerasnas.darts import paired
from kerasnas.layers import MixedChoice
from nas_helpers import compile_sgd, tiny_data, tiny_space


def darts(**kwargs):
    options = dict(supernet_class=DartsSupernet, seed=1, bn="search")
    options.update(kwargs)
    return tiny_space().build_supernet(**options)


def pairs(num=32, valid_num=16, seed=0):
    _, _, train = tiny_data(num=num, seed=seed)
    _, _, valid = tiny_data(num=valid_num, seed=seed + 10)
    return paired(train, valid)


class Scale(keras.layers.Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor


class Poison(keras.layers.Layer):
    """Returns +inf everywhere: if it ran, 0 * inf = NaN would show."""

    def call(self, inputs):
        return inputs / 0.0


@pytest.mark.parametrize("dense", [False, True])
def test_mixed_choice_is_the_weighted_sum_and_skips_zero_weights(dense):
    choice = MixedChoice(
        [Scale(2.0), Scale(-3.0), Poison(), Scale(5.0)], ["a", "b", "p", "c"], "e", dense=dense
    )
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    w = np.array([0.2, 0.5, 0.0, 0.3, 0.0], "float32")  # trailing padding ignored
    y = keras.ops.convert_to_numpy(choice(x, keras.ops.convert_to_tensor(w)))
    np.testing.assert_allclose(y, (0.2 * 2 - 0.5 * 3 + 0.3 * 5) * x, rtol=1e-6)

    @tf.function
    def graph(x, w):  # decided in the graph: one trace, any weights
        with tf.GradientTape() as tape:
            tape.watch(w)
            y = choice(x, w)
            total = tf.reduce_sum(y)
        return y, tape.gradient(total, w)

    y, grad = graph(tf.constant(x), tf.constant(w))
    assert np.isfinite(y.numpy()).all() and np.isfinite(grad.numpy()).all()
    # d sum(y) / d w_o = sum(candidate_o(x)); the skipped op gets 0.
    np.testing.assert_allclose(grad.numpy()[[0, 1, 3]], [2 * x.sum(), -3 * x.sum(), 5 * x.sum()], rtol=1e-5)
    assert grad.numpy()[2] == 0.0
    y, _ = graph(tf.constant(x), tf.constant([0.0, 0.0, 0.0, 1.0, 0.0]))
    np.testing.assert_allclose(y.numpy(), 5 * x, rtol=1e-6)


def test_mixing_weights_mask_perturbation_and_projection():
    supernet = darts()
    alpha = np.random.default_rng(0).normal(size=supernet.alpha.shape).astype("float32")
    supernet.alpha.assign(alpha)
    softmax = lambda a: np.exp(a - a.max()) / np.exp(a - a.max()).sum()
    # A few-shot mask restricts the softmax's domain (renormalised).
    supernet.set_mask({"2<-0": ["skip_connect", "nor_conv_3x3"]})
    # PT masks one op: exactly 0, the others keep their softmax weights.
    perturbation = np.ones(alpha.shape, "float32")
    perturbation[0, 3] = 0.0
    supernet.perturbation.assign(perturbation)
    supernet.set_projection("3<-2", "avg_pool_3x3")
    supernet.set_projection("3<-1", None)
    w = keras.ops.convert_to_numpy(supernet.mixing_weights())
    expected = softmax(alpha[0])
    expected[3] = 0.0
    np.testing.assert_allclose(w[0], expected, rtol=1e-6)
    np.testing.assert_allclose(w[1, [1, 3]], softmax(alpha[1, [1, 3]]), rtol=1e-6)
    assert w[1, [0, 2, 4]].tolist() == [0.0, 0.0, 0.0]
    assert w[5].tolist() == [0, 0, 0, 0, 1] and w[4].tolist() == [0] * 5
    # alphas() ignores the perturbation; derive() takes the argmax.
    alphas = supernet.alphas()
    assert alphas["1<-0"]["nor_conv_3x3"] == pytest.approx(softmax(alpha[0])[3])
    arch = supernet.derive()
    assert arch["3<-2"] == "avg_pool_3x3" and arch["2<-0"] in ("skip_connect", "nor_conv_3x3")
    assert arch["1<-0"] == supernet.space.choices["1<-0"][int(np.argmax(alpha[0]))]


def test_first_order_step_equals_a_hand_written_two_optimizer_loop():
    keras.utils.set_random_seed(0)
    supernet = compile_sgd(darts(weight_decay=3e-4, clip_norm=5.0), learning_rate=0.05)
    reference = darts(weight_decay=3e-4, clip_norm=5.0)
    for a, b in zip(supernet.variables, reference.variables):
        b.assign(a)
    data = pairs()
    supernet.fit(data, epochs=1, verbose=0)

    sgd = keras.optimizers.SGD(0.05, momentum=0.9)
    adam = keras.optimizers.Adam(3e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    weights = reference.network_variables
    sgd.build(weights)
    adam.build([reference.alpha])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for (xt, yt), (xv, yv) in data:
        with tf.GradientTape() as tape:
            loss = loss_fn(yv, reference.network([xv, reference.mixing_weights()], training=True))
        (g,) = tape.gradient(loss, [reference.alpha])
        adam.apply([g + 1e-3 * tf.convert_to_tensor(reference.alpha)], [reference.alpha])
        with tf.GradientTape() as tape:
            loss = loss_fn(yt, reference.network([xt, reference.mixing_weights()], training=True))
        grads = tape.gradient(loss, weights)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, weights)]
        norm = tf.linalg.global_norm(grads)
        scale = tf.minimum(1.0, 5.0 / (norm + 1e-6))
        sgd.apply([g * scale + 3e-4 * tf.convert_to_tensor(v) for g, v in zip(grads, weights)], weights)
    assert not np.allclose(supernet.alpha.numpy(), 0.0, atol=1e-3)
    for a, b in zip(supernet.variables, reference.variables):
        if a.name != "active_weights":  # the last step's weights (bookkeeping)
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)


def test_alpha_warmup_snas_temperature_and_masked_candidates_stay_unchanged():
    assert [kerasnas.darts.temperature(e, 5) for e in range(5)] == pytest.approx(
        [1.0, 0.775, 0.55, 0.325, 0.1]
    )
    supernet = compile_sgd(darts(relaxation="snas", alpha_warmup_epochs=1, weight_decay=1e-2))
    supernet.set_mask({"1<-0": ["skip_connect", "nor_conv_1x1"]})
    masked = supernet.network.get_layer("cell0_0_e10").candidates[3]  # nor_conv_3x3
    frozen = [v.numpy().copy() for v in masked.variables]
    alphas, temperatures = [], []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: batch == 0
        and temperatures.append(float(supernet.temperature.numpy())),
        on_epoch_end=lambda epoch, logs: alphas.append(supernet.alpha.numpy().copy()),
    )
    initial = supernet.alpha.numpy().copy()
    traces = []
    original = supernet.train_step
    supernet.train_step = lambda data: traces.append(1) or original(data)
    supernet.fit(pairs(), epochs=3, verbose=0, callbacks=[record])
    assert len(traces) == 1
    assert temperatures == pytest.approx([1.0, 0.55, 0.1])
    np.testing.assert_array_equal(alphas[0], initial)  # warm-up epoch
    assert not np.array_equal(alphas[1], alphas[0]) and not np.array_equal(alphas[2], alphas[1])
    for v, before in zip(masked.variables, frozen):
        np.testing.assert_array_equal(v.numpy(), before, err_msg=v.path)


def test_mobilenet_space_builds_a_mixed_supernet_whose_children_match():
    from nas_helpers import tiny_mobilenet

    space = tiny_mobilenet(input_shape=(16, 16, 3), stage_depths=(1, 1))
    supernet = space.build_supernet(supernet_class=DartsSupernet, seed=0, bn="standard")
    assert all(isinstance(c, MixedChoice) for c in supernet.choice_layers())
    arch = space.sample(0)
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    with supernet.fixed(arch):
        np.testing.assert_allclose(
            supernet.predict(x, verbose=0), supernet.extract(arch).predict(x, verbose=0), atol=1e-5
        )


def test_bad_inputs_raise_value_errors():
    supernet = compile_sgd(darts())
    _, _, train = tiny_data()
    with pytest.raises(ValueError, match="valid_batch"):
        supernet.fit(train, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="relaxation"):
        darts(relaxation="gdas")
    with pytest.raises(ValueError, match="DartsSupernet builds mixed choices"):
        darts(choices=kerasnas.layers.ChoiceFactory())
    with pytest.raises(ValueError, match=r"argument `choices`. Expected a kerasnas.layers.ChoiceFactory"):
        tiny_space().build_network(choices="mixed")
    with pytest.raises(ValueError, match="arch_optimizer"):
        supernet.compile(
            optimizer="sgd", loss="sparse_categorical_crossentropy",
            arch_optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1),
        )


def test_second_order_step_equals_the_finite_difference_formula():
    keras.utils.set_random_seed(0)
    lr, wd = 0.05, 3e-4
    supernet = darts(order=2, weight_decay=wd, clip_norm=None)
    # Plain SGD on α: Adam's first steps hardly depend on the gradient's size.
    supernet.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        arch_optimizer=keras.optimizers.SGD(1.0),
    )
    reference = darts(order=2, weight_decay=wd, clip_norm=None)
    for a, b in zip(supernet.variables, reference.variables):
        b.assign(a)
    data = pairs(num=16, valid_num=16)  # 2 steps: the second uses momentum
    supernet.fit(data, epochs=1, verbose=0)

    sgd = keras.optimizers.SGD(lr, momentum=0.9)
    arch_sgd = keras.optimizers.SGD(1.0)
    weights, alpha = reference.network_variables, reference.alpha
    sgd.build(weights)
    arch_sgd.build([alpha])
    corrections = []
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def grads(x, y, variables):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, reference.network([x, reference.mixing_weights()], training=True))
        return [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(loss, variables), variables)]

    for (xt, yt), (xv, yv) in data:
        theta = [tf.convert_to_tensor(v) for v in weights]
        g = grads(xt, yt, weights)
        momentum = [sgd.momentums[sgd._get_variable_index(v)] for v in weights]
        for v, t, gv, m in zip(weights, theta, g, momentum):
            v.assign(t + 0.9 * tf.convert_to_tensor(m) - lr * (gv + wd * t))
        d = grads(xv, yv, [alpha] + weights)
        r = 0.01 / tf.linalg.global_norm(d[1:])
        finite = []
        for sign in (1.0, -1.0):
            for v, t, dw in zip(weights, theta, d[1:]):
                v.assign(t + sign * r * dw)
            finite.append(grads(xt, yt, [alpha])[0])
        for v, t in zip(weights, theta):
            v.assign(t)
        correction = lr * (finite[0] - finite[1]) / (2 * r)
        corrections.append(float(tf.norm(correction) / tf.norm(d[0])))
        arch_sgd.apply([d[0] - correction + 1e-3 * tf.convert_to_tensor(alpha)], [alpha])
        g = grads(xt, yt, weights)
        sgd.apply([gv + wd * tf.convert_to_tensor(v) for gv, v in zip(g, weights)], weights)
    assert min(corrections) > 1e-3  # the second-order term matters here
    # float rounding of two summation orders; the second-order term is > 1e-3
    np.testing.assert_allclose(supernet.alpha.numpy(), alpha.numpy(), rtol=1e-4, atol=1e-5)
    for a, b in zip(supernet.network_variables, weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)


def test_ranking_harness_scores_the_discrete_architectures_of_a_darts_supernet():
    from kerasnas.evaluation import rank_architectures

    supernet = compile_sgd(darts(bn="standard"))
    space = supernet.space
    supernet.set_projection("3<-2", "nor_conv_3x3")  # a PT decision to keep
    saved = [np.asarray(v).copy() for v in supernet.path_variables()]
    archs = [space.sample(s) for s in range(3)]
    _, _, data = tiny_data(num=16, seed=9)
    scores = rank_architectures(supernet, archs, data, verbose=0, score="loss")
    for arch, score in zip(archs, scores):
        child = compile_sgd(supernet.extract(arch))
        assert -score == pytest.approx(child.evaluate(data, verbose=0, return_dict=True)["loss"], rel=1e-5)
    assert len(set(np.round(scores, 6))) == 3  # not the mixture thrice
    for variable, value in zip(supernet.path_variables(), saved):
        np.testing.assert_array_equal(np.asarray(variable), value)
