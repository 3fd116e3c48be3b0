"""DCNAS (DCNAS-style reading): local weight copies, the pool and its
sharing states, Eq. 8 and Eq. 12 against hand computations, the clustering
and Eq. 7, M = 1 as SPOS, resume."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

import keras
from kerasnas.callbacks import EpochCheckpoint
from kerasnas.dcnas import DCNASSchedule
from kerasnas.dcnas import DCNASSupernet
from kerasnas.dcnas import nearest_members
from kerasnas.dcnas import sample_pool
from kerasnas.layers import LocalShareChoice
from nas_helpers import compile_sgd, tiny_data, tiny_mobilenet, tiny_space
from test_supernet import count_traces

OPS = ("nor_conv_1x1", "skip_connect", "nor_conv_3x3")
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build(copies=2, pool_size=40, seed=1, **kwargs):
    keras.utils.set_random_seed(0)
    return tiny_space(ops=OPS).build_supernet(
        supernet_class=DCNASSupernet, local_copies=copies, pool_size=pool_size, seed=seed,
        bn="batch", **kwargs,
    )


def numpy(v):
    return keras.ops.convert_to_numpy(v)


def small_mobilenet(**kwargs):
    """A 2-layer MobileNet with 2 options a layer, every architecture in the
    pool: a DCNAS step traces in seconds."""
    keras.utils.set_random_seed(0)
    space = tiny_mobilenet(input_shape=(16, 16, 3), stage_depths=(1, 1), kernel_sizes=(3,))
    return space.build_supernet(supernet_class=DCNASSupernet, pool_size=4, seed=1, bn="batch", **kwargs)


def decide_all_but(supernet, layer, seed=0):
    """Random sharing states on every layer except `layer`."""
    rng = np.random.default_rng(seed)
    states = rng.integers(supernet.copies, size=numpy(supernet.states).shape).astype("int32")
    states[:, layer] = -1
    supernet.states.assign(states)


def warm(supernet, data, epochs=1):
    """A few ordinary steps so that both copies exist and differ."""
    supernet.fit(data, epochs=epochs, verbose=0)


# === The pool and the nearest-member rule ===
def test_pool_is_distinct_seeded_and_bounded():
    space = tiny_space(ops=OPS)
    pool = sample_pool(space, 100, seed=3)
    assert pool.shape == (100, 6) and len({tuple(r) for r in pool}) == 100
    np.testing.assert_array_equal(pool, sample_pool(space, 100, seed=3))
    assert not np.array_equal(pool, sample_pool(space, 100, seed=4))
    assert len({tuple(r) for r in sample_pool(space, len(space), seed=0)}) == len(space)
    with pytest.raises(ValueError, match="pool_size.*729"):
        sample_pool(space, len(space) + 1)


def test_pool_from_the_trained_options_only():
    # Issue #35: training masks 'none', so a pool from the whole space would
    # train paths SPOS never trains; `pool_options` draws from the rest.
    space = tiny_space()
    trained = {label: [o for o in options if o != "none"] for label, options in space.choices.items()}
    pool = sample_pool(space, 200, seed=3, options=trained)
    none = list(space.choices[space.labels[0]]).index("none")
    assert pool.shape == (200, len(space.labels)) and not (pool == none).any()
    assert len({tuple(r) for r in pool}) == 200
    assert (pool == none).any(axis=1).mean() == 0 < (sample_pool(space, 200, seed=3) == none).any(axis=1).mean()
    np.testing.assert_array_equal(sample_pool(space, 200, seed=3, options=None), sample_pool(space, 200, seed=3))
    with pytest.raises(ValueError, match="`pool_size`"):  # 4 ** 6 = 4096 architectures left
        sample_pool(space, 4097, seed=0, options=trained)
    with pytest.raises(ValueError, match="`pool_options`"):
        sample_pool(space, 10, options={"1<-0": ["conv_7x7"]})
    supernet = space.build_supernet(supernet_class=DCNASSupernet, pool_size=50, seed=0, pool_options=trained)
    assert not (np.asarray(supernet.pool) == none).any()
    assert DCNASSupernet.from_config(supernet.get_config()).pool_options == trained
    from kerasnas.recipes import nb201_dcnas

    config = dict(nb201_dcnas.PRESETS["smoke"], exclude_ops=["none"])
    assert "pool_options" not in nb201_dcnas.supernet_options(config)  # runs made before the option
    config["dcnas"] = dict(config["dcnas"], pool="trained")
    assert nb201_dcnas.supernet_options(config)["pool_options"]["3<-2"] == [
        "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def test_nearest_member_rule():
    pool = np.array([[0, 0, 0], [0, 1, 1], [1, 1, 0]])
    # Layer 0: rows 0 and 1 take option 0, both one layer away: the lower
    # index. Layer 1: row 1 agrees on layer 0, row 2 does not. Layer 2:
    # rows 0 and 2 each differ once before layer 2: row 0.
    np.testing.assert_array_equal(nearest_members(pool, [0, 1, 0]), [0, 1, 0])
    # Decided in the order 2, 1, 0: at layer 0 the layers before are 2 and 1.
    np.testing.assert_array_equal(nearest_members(pool, [0, 1, 0], order=[2, 1, 0]), [0, 2, 0])
    for i, row in enumerate(pool):  # a member gets itself
        np.testing.assert_array_equal(nearest_members(pool, row), [i] * 3)
    # No member takes option 2 at layer 0; row 2 is nearest where it agrees.
    np.testing.assert_array_equal(nearest_members(pool, [2, 1, 0]), [-1, 2, 2])


def test_bad_inputs_are_clear_value_errors():
    space = tiny_space(ops=OPS)
    with pytest.raises(ValueError, match="local_copies"):
        space.build_supernet(supernet_class=DCNASSupernet, local_copies=0, pool_size=10)
    with pytest.raises(ValueError, match="pool_size"):
        space.build_supernet(supernet_class=DCNASSupernet, pool_size=10**6)
    with pytest.raises(ValueError, match="layer_order"):
        space.build_supernet(supernet_class=DCNASSupernet, pool_size=10, layer_order=["1<-0", "2<-0"])
    with pytest.raises(ValueError, match="layer_order"):
        space.build_supernet(supernet_class=DCNASSupernet, pool_size=10, layer_order=list(range(5)) + [9])
    with pytest.raises(ValueError, match="lambda_scale"):
        space.build_supernet(supernet_class=DCNASSupernet, pool_size=10, lambda_scale="gamma")
    with pytest.raises(ValueError, match="layer_epochs"):
        DCNASSchedule(1, 0, 1, data=None)


# === M = 1 is SPOS ===
def test_one_copy_reproduces_spos_bitwise():
    _, _, data = tiny_data(num=32, seed=1, shape=(16, 16, 3), num_classes=10)
    keras.utils.set_random_seed(0)
    space = tiny_mobilenet(input_shape=(16, 16, 3), stage_depths=(1, 1), kernel_sizes=(3,))
    spos = compile_sgd(space.build_supernet(seed=1, bn="batch", weight_decay=1e-3))
    dcnas = compile_sgd(small_mobilenet(local_copies=1, weight_decay=1e-3))
    spos.fit(data, epochs=2, verbose=0)
    dcnas.fit(data, epochs=2, verbose=0, callbacks=[DCNASSchedule(0, 1, 0, data)])
    ours = {v.path: numpy(v) for v in dcnas.network.weights}
    checked = 0
    for v in spos.network.weights:
        np.testing.assert_array_equal(ours[v.path], numpy(v), err_msg=v.path)
        checked += 1
    assert checked > 10 and int(numpy(dcnas.phase)) == -1


# === The copy a path uses ===
def test_the_copy_used_is_the_one_the_sharing_state_names():
    x, _, _ = tiny_data(num=32, seed=2)
    supernet = compile_sgd(build())
    rng = np.random.default_rng(0)
    states = rng.integers(2, size=numpy(supernet.states).shape).astype("int32")
    supernet.states.assign(states)
    pool = numpy(supernet.pool)
    labels = list(supernet.space.labels)
    conv = [OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")]
    members = [m for m in range(len(pool)) if pool[m, 0] in conv][:2]
    # Copy 1 of the convolutions on edge 1<-0 made distinct from copy 0.
    for layer in supernet.choice_layers():
        if layer.label == "1<-0":
            for option in conv:
                layer.load_copy(option, 1)
                for v in layer.candidates[option].trainable_variables:
                    v.assign(v + rng.normal(scale=0.5, size=v.shape).astype("float32"))
                layer.load_copy(option, 0)
    for member in members:
        arch = supernet.space.decode(pool[member])
        supernet.set_path(arch)
        np.testing.assert_array_equal(numpy(supernet.active_copies), states[member])
        out = supernet.predict(x, verbose=0)
        for layer in supernet.choice_layers():
            position = labels.index(layer.label)
            assert int(numpy(layer.loaded)[pool[member, position]]) == states[member, position]
        np.testing.assert_allclose(supernet.extract(arch).predict(x, verbose=0), out, atol=1e-5)
        # The other copy at edge 1<-0 computes something else.
        flipped = states[member].copy()
        flipped[0] = 1 - flipped[0]
        other = supernet.network.predict_on_batch([x, np.concatenate([pool[member], flipped]).astype("int32")])
        assert np.abs(other - out).max() > 1e-4
    # Outside the pool: the nearest member's state per layer, in the graph too.
    graph = tf.function(supernet._copies_in_graph)
    for arch in [supernet.space.sample(s) for s in range(5)]:
        path = np.asarray(supernet.space.encode(arch), "int32")
        nearest = nearest_members(pool, path)
        expected = states[nearest, np.arange(6)]
        np.testing.assert_array_equal(supernet.sharing_state(arch), expected)
        np.testing.assert_array_equal(numpy(graph(tf.constant(path))), expected)


# === Eq. 8 and Eq. 12 ===
GAMMA, ETA = 0.1, 1e4


@pytest.fixture(scope="module", params=["lr", "paper"])
def pair_step(request):
    """One pair step on layer 1 with SGD (no momentum) and a meta step
    (tau = 1); returns the supernet, the batch and what the step did (with
    the state before it). A large eta: the meta step is a tiny move
    otherwise, lost in float32."""
    x, y, data = tiny_data(num=16, seed=3, shape=(16, 16, 3), num_classes=10)
    supernet = compile_sgd(
        small_mobilenet(lambda_scale=request.param, meta_interval=1, meta_learning_rate=ETA),
        learning_rate=GAMMA, momentum=0.0,
    )
    warm(supernet, data)  # ordinary steps (phase -1): random copies
    layer = 1
    decide_all_but(supernet, layer)
    rng = np.random.default_rng(1)
    supernet.meta_kernel.assign(rng.normal(size=supernet.meta_kernel.shape).astype("float32") * 3.0)
    supernet.meta_bias.assign(rng.normal(size=supernet.meta_bias.shape).astype("float32"))
    supernet.phase.assign(layer)
    before = [numpy(v) for v in supernet.variables]
    x, y = x[:8], y[:8]
    supernet.fit(tf.data.Dataset.from_tensors((x, y)), verbose=0)  # the same trace
    step = dict(
        path=numpy(supernet.active_path), copies=numpy(supernet.active_copies),
        partner=numpy(supernet.partner), option=int(numpy(supernet.pair_option)),
        lam=float(numpy(supernet.last_lambda)), kernel=numpy(supernet.meta_kernel),
        bias=numpy(supernet.meta_bias), after={v.path: numpy(v) for v in supernet.network_variables},
        layer=layer, scale=request.param, before=before,
    )
    return supernet, x, y, step


def restore(supernet, step):
    for v, value in zip(supernet.variables, step["before"]):
        v.assign(value)


def gradients(supernet, x, y, arch):
    variables = supernet.network_variables
    with tf.GradientTape() as tape:
        loss = LOSS(y, supernet.network([tf.constant(x), tf.constant(arch, "int32")], training=True))
    grads = tape.gradient(loss, variables)
    grads = [np.zeros(v.shape, "float32") if g is None else numpy(g) for g, v in zip(grads, variables)]
    return float(loss), grads, numpy(supernet.pooled_features())


def selects(supernet, layer, option):
    return [supernet.candidate_owner(v) == (layer, option) for v in supernet.network_variables]


def test_pair_step_is_eq8_by_hand(pair_step):
    supernet, x, y, step = pair_step
    restore(supernet, step)
    layer, option = step["layer"], step["option"]
    assert step["path"][layer] == option == step["partner"][layer]
    assert not np.array_equal(step["path"], step["partner"][: len(step["path"])])
    # The partner's pass first (its copies loaded), then a_i's.
    _, g_j, h_j = gradients(supernet, x, y, step["partner"])
    _, g_i, h_i = gradients(supernet, x, y, np.concatenate([step["path"], step["copies"]]))
    kernel = numpy(supernet.meta_kernel)[layer, option]
    lam = 1.0 / (1.0 + np.exp(-(np.sum(kernel * (h_i[layer] - h_j[layer])) + numpy(supernet.meta_bias)[layer, option])))
    np.testing.assert_allclose(step["lam"], lam, rtol=1e-5)
    assert 0.02 < lam < 0.98
    mixed = 0
    for v, gi, gj, sel in zip(supernet.network_variables, g_i, g_j, selects(supernet, layer, option)):
        scale = lam if step["scale"] == "lr" else lam / GAMMA
        expected = numpy(v) - GAMMA * (gi + (scale * gj if sel else 0.0))
        np.testing.assert_allclose(step["after"][v.path], expected, rtol=1e-4, atol=1e-6, err_msg=v.path)
        mixed += sel and np.abs(gj).max() > 1e-6
    assert mixed  # the partner's gradient took part


def test_meta_step_is_eq12_analytic_and_finite_difference(pair_step):
    supernet, x, y, step = pair_step
    restore(supernet, step)
    gamma, eta, lambda_scale = GAMMA, ETA, step["scale"]
    layer, option = step["layer"], step["option"]
    arch_i = np.concatenate([step["path"], step["copies"]])
    _, g_j, h_j = gradients(supernet, x, y, step["partner"])
    _, g_i, h_i = gradients(supernet, x, y, arch_i)
    lam = step["lam"]
    sel = selects(supernet, layer, option)
    scale = gamma if lambda_scale == "lr" else 1.0
    variables = supernet.network_variables
    start = [numpy(v) for v in variables]

    def lookahead(value):
        """W' = W - gamma * g_i - scale * value * g_j (on the selected op)."""
        for v, w, gi, gj, s in zip(variables, start, g_i, g_j, sel):
            v.assign(w - gamma * gi - (scale * value * gj if s else 0.0))

    lookahead(lam)
    _, g_ahead, _ = gradients(supernet, x, y, arch_i)
    inner = sum(float(np.sum(a * b)) for a, b, s in zip(g_ahead, g_j, sel) if s)
    d_lambda = -scale * inner
    slope = d_lambda * lam * (1.0 - lam)
    diff = h_i[layer] - h_j[layer]
    kernel_before = numpy(supernet.meta_kernel)[layer, option]
    bias_before = float(numpy(supernet.meta_bias)[layer, option])
    np.testing.assert_allclose(step["kernel"][layer, option], kernel_before - eta * slope * diff, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(step["bias"][layer, option], bias_before - eta * slope, rtol=1e-3, atol=1e-8)
    assert abs(slope) > 1e-6  # the meta network moved
    # Finite difference of L(a_i; W'(lambda)).
    delta = 0.01 if lambda_scale == "paper" else 0.1
    losses = []
    for value in (lam + delta, lam - delta):
        lookahead(value)
        losses.append(gradients(supernet, x, y, arch_i)[0])
    np.testing.assert_allclose((losses[0] - losses[1]) / (2 * delta), d_lambda, rtol=5e-2)
    # Only that (layer, option)'s meta network moved.
    changed = np.argwhere(step["bias"] != numpy(supernet.meta_bias))
    np.testing.assert_array_equal(changed, [[layer, option]])
    assert np.any(step["kernel"] != numpy(supernet.meta_kernel))


# === Clustering and Eq. 7 ===
def test_kmeans_recovers_known_clusters_and_eq7_assigns_distinct_copies():
    _, _, data = tiny_data(num=16, seed=4)
    supernet = compile_sgd(build())
    schedule = DCNASSchedule(0, 1, 0, data)
    schedule.set_model(supernet)
    layer, option = 3, 2
    rng = np.random.default_rng(0)
    groups = rng.integers(2, size=30)
    features = rng.normal(scale=0.1, size=(30, supernet._widths[layer]))
    features[:, 1] += np.where(groups == 1, 1.0, -1.0)
    # An untrained meta network (w = 0) tells nobody apart: one cluster.
    np.testing.assert_array_equal(schedule.cluster(layer, option, features, rng), 0)
    kernel = np.zeros(supernet.meta_kernel.shape, "float32")
    kernel[layer, option, 1] = 1e-3  # small, as early in training
    supernet.meta_kernel.assign(kernel)
    clusters = schedule.cluster(layer, option, features, rng)
    assert adjusted_rand_score(groups, clusters) == 1.0
    # Eq. 7: cluster 0's representatives do better with copy 1, cluster 1's
    # with copy 0 (costs from a table).
    cost = {(0, 0): 2.0, (0, 1): 1.0, (1, 0): 0.5, (1, 1): 0.7}
    members = np.arange(30)
    schedule.loss = lambda member, l, copy, batches: cost[(int(clusters[member]), copy)]
    copies = schedule.assign_copies(layer, members, clusters, None, rng)
    np.testing.assert_array_equal(copies, [1, 0])
    # Both prefer copy 1; cluster 1 gains more from it (total 1.1 vs 1.4).
    cost.update({(0, 0): 1.0, (0, 1): 0.5, (1, 0): 0.9, (1, 1): 0.1})
    np.testing.assert_array_equal(schedule.assign_copies(layer, members, clusters, None, rng), [0, 1])


def test_schedule_phases_and_decisions_and_random_ablation():
    _, _, data = tiny_data(num=16, seed=5)
    schedule = DCNASSchedule(2, 3, 4, data)
    assert schedule.epochs(6) == 2 + 36 + 4
    order = [5, 4, 3, 2, 1, 0]
    assert [schedule.phase_at(e, order) for e in range(10)] == [-1, -1, 5, 5, 5, -1, -1, -1, 4, 4]
    assert schedule.decision_epoch(0) == 5 and schedule.phase_at(41, order) == -1
    supernet = compile_sgd(build(pool_size=30))
    random = DCNASSchedule(0, 1, 0, data, assignment="random", seed=3)
    random.set_model(supernet)
    for epoch in range(3):
        random.on_epoch_begin(epoch)
        assert int(numpy(supernet.phase)) == -1  # no pair steps
    # Layer 0 is decided at epoch 1, layer 1 at epoch 3 (not reached).
    decided = supernet.decided()
    assert decided[0] and not decided[1:].any()
    assert len(set(numpy(supernet.states)[:, 0])) == 2
    # The cluster schedule sets the pair phases; a resumed epoch past a
    # decision takes the decision it missed.
    supernet.states.assign(np.full(supernet.states.shape, -1, "int32"))
    clustered = DCNASSchedule(0, 1, 0, data, representatives=1, verbose=0)
    clustered.set_model(supernet)
    clustered.on_epoch_begin(2)
    assert int(numpy(supernet.phase)) == 1 and supernet.decided()[0] and not supernet.decided()[1:].any()
    clustered.on_epoch_begin(4)
    assert int(numpy(supernet.phase)) == 2 and supernet.decided()[:2].all() and not supernet.decided()[2:].any()


def test_training_resumes_bit_identically(tmp_path):
    space = tiny_mobilenet(input_shape=(16, 16, 3), stage_depths=(1, 1), kernel_sizes=(3,))
    _, _, data = tiny_data(num=16, seed=6, shape=(16, 16, 3), num_classes=10)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    traces = {}

    def run(directory, kill=False, resume=False):
        keras.utils.set_random_seed(0)
        supernet = compile_sgd(space.build_supernet(
            supernet_class=DCNASSupernet, pool_size=4, seed=2, meta_interval=1, bn="standard",
        ))
        schedule = DCNASSchedule(1, 1, 1, data, representatives=2, verbose=0)
        checkpoint = EpochCheckpoint(directory)
        start = checkpoint.restore(supernet) if resume else 0
        traces[directory.name] = count_traces(supernet, "train_step")
        supernet.fit(
            data, epochs=schedule.epochs(len(space.labels)), initial_epoch=start, verbose=0,
            callbacks=[schedule, checkpoint] + ([Kill()] if kill else []),
        )
        return supernet

    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "part", kill=True)
    resumed = run(tmp_path / "part", resume=True)
    assert whole.decided().all()
    assert len(traces["whole"]) == 1  # every phase of Algorithm 1 in one trace
    for u, v in zip(whole.variables, resumed.variables):
        np.testing.assert_array_equal(numpy(u), numpy(v), err_msg=u.path)
    assert np.any(numpy(whole.meta_kernel))  # meta steps took place


def test_local_share_choice_with_one_copy_is_a_choice():
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    from kerasnas.ops import get

    keras.utils.set_random_seed(0)
    local = LocalShareChoice([get(o, 4, name=f"l_{o}") for o in OPS], OPS, "e", copies=1)
    keras.utils.set_random_seed(0)
    from kerasnas.layers import Choice

    plain = Choice([get(o, 4, name=f"p_{o}") for o in OPS], OPS, "e")
    for k in range(3):
        np.testing.assert_array_equal(
            numpy(local(x, tf.constant(k), copy=tf.constant(0))), numpy(plain(x, tf.constant(k)))
        )
    with pytest.raises(ValueError, match="copies"):
        LocalShareChoice([get(o, 4) for o in OPS], OPS, "e", copies=0)
