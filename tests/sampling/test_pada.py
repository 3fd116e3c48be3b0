"""PA&DA's path and data importance samplers: the algorithm's invariants."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.sampling import ImportanceDataSampler, ImportancePathSampler
from kerasnas.sampling.importance_data import running_mean_update
from nas_helpers import compile_sgd, tiny_data, tiny_space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def pada_supernet(delta=None, seed=0, **options):
    sampler = ImportancePathSampler(**options)
    supernet = tiny_space().build_supernet(seed=seed, bn="batch", clip_norm=5.0, path_sampler=sampler)
    return supernet, sampler


def test_path_probabilities_follow_the_reference_formula():
    supernet, sampler = pada_supernet()
    space = supernet.space
    variables = supernet.trainable_variables
    rng = np.random.default_rng(0)
    gradients = [tf.constant(rng.normal(size=v.shape), "float32") for v in variables]
    paths = [space.sample(s) for s in (3, 4, 5)]
    # By hand: per op, the sum of the norms of its sampled candidates'
    # gradients over cells and edges, divided by the edges that sampled it;
    # a running mean (g + new) / 2 from 0, skipped when new is 0.
    g = np.zeros(5)
    for arch in paths:
        new = np.zeros(5)
        for v, grad in zip(variables, gradients):
            owner = supernet.candidate_owner(v)
            if owner and arch[space.labels[owner[0]]] == OPS[owner[1]]:
                new[owner[1]] += np.linalg.norm(grad.numpy())
        counts = np.array([sum(arch[l] == op for l in space.labels) for op in OPS])
        new = new / np.maximum(counts, 1)
        g = np.where(new != 0, (g + new) / 2, g)
        sampler.update(supernet, tf.constant(space.encode(arch), "int32"), gradients, variables)
    assert g[2] > 0 and g[3] > 0 and not g[[0, 1, 4]].any()  # only convs gain importance
    np.testing.assert_allclose(sampler.importance.numpy(), np.tile(g, (6, 1)), rtol=1e-5)
    delta = 0.7
    probabilities = sampler.end_epoch(delta)
    expected = delta * g / g.sum() + (1 - delta) / 5
    np.testing.assert_allclose(probabilities, np.tile(expected, (6, 1)), rtol=1e-6)
    np.testing.assert_allclose(probabilities[0, [0, 1, 4]], (1 - delta) / 5)
    assert not sampler.importance.numpy().any()  # reset for the next epoch


def test_training_shifts_the_path_distribution_to_convolutions():
    supernet, sampler = pada_supernet(seed=1)
    compile_sgd(supernet)
    _, _, data = tiny_data(num=64)
    paths = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: paths.append(supernet.active_path.numpy().copy())
    )
    history = supernet.fit(
        data, epochs=3, verbose=0, callbacks=[sampler.callback(delta=0.9), record]
    ).history
    p = sampler.probabilities.numpy()
    np.testing.assert_allclose(p[:, [0, 1, 4]], 0.1 / 5, rtol=1e-6)  # parameter-free: (1 - δ) / 5
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert history["path_p_nor_conv_3x3"][-1] == pytest.approx(p[0, 3])
    last = np.array(paths[-8:])
    assert np.isin(last, [2, 3]).mean() > 0.7  # the last epoch samples mostly convs
    assert np.isin(np.array(paths[:8]), [2, 3]).mean() < 0.7  # the first, uniformly


def test_parameter_free_floor_and_per_choice_mode():
    supernet, sampler = pada_supernet(parameter_free_floor=0.1)
    compile_sgd(supernet)
    _, _, data = tiny_data()
    supernet.fit(data, epochs=2, verbose=0, callbacks=[sampler.callback(delta=1.0)])
    p = sampler.probabilities.numpy()
    np.testing.assert_allclose(p[:, [0, 1, 4]], 0.1, rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    supernet, sampler = pada_supernet(shared=False)
    compile_sgd(supernet)
    _, _, data = tiny_data(num=128)
    supernet.fit(data, epochs=1, verbose=0, callbacks=[sampler.callback(delta=0.5)])
    p = sampler.probabilities.numpy()
    np.testing.assert_allclose(p[:, [0, 1, 4]], 0.1, rtol=1e-6)
    assert len({tuple(np.round(row, 6)) for row in p}) > 1  # one distribution per choice
    with pytest.raises(ValueError, match="parameter_free_floor"):
        ImportancePathSampler(parameter_free_floor=1.5)
    uneven = kerasnas.spaces.SearchSpace({"a": ("x", "y"), "b": ("x",)})
    with pytest.raises(ValueError, match="shared"):
        ImportancePathSampler().bind(uneven)


def test_running_mean_update_matches_a_sequential_loop():
    scores = keras.Variable(np.zeros(6, "float32"))
    seen = keras.Variable(np.zeros(6, "float32"))
    expected, was_seen = np.zeros(6), np.zeros(6, bool)
    rng = np.random.default_rng(3)
    for _ in range(3):
        index = rng.integers(0, 6, 8)  # duplicates inside a batch too
        values = rng.random(8).astype("float32")
        for i, v in zip(index, values):
            expected[i] = (expected[i] + v) / 2 if was_seen[i] else v
            was_seen[i] = True
        running_mean_update(scores, seen, tf.constant(index, "int64"), tf.constant(values))
        np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-6)
        np.testing.assert_array_equal(seen.numpy() > 0, was_seen)


def test_data_distribution_after_an_epoch_and_draws():
    n = 100
    x = np.zeros((n, 8, 8, 3), "float32")
    y = np.zeros(n, "int64")
    sampler = ImportanceDataSampler((x, y), batch_size=10, seed=0)
    scores = np.ones(n)
    scores[0] = 30.0
    scores[1] = 0.0
    tau = 0.8
    p = sampler.end_epoch(scores, tau, epoch=0)
    np.testing.assert_allclose(p, tau * scores / scores.sum() + (1 - tau) / n)
    drawn = sampler.indices.numpy()
    assert drawn.shape == (n,) and len(np.unique(drawn)) < n  # with replacement
    counts = np.bincount(drawn, minlength=n)
    assert counts[0] > 5 * np.mean(counts[2:])  # p0 = 0.19 vs 0.0088: drawn far more often
    np.testing.assert_allclose(sampler.weights.numpy(), 1.0 / (n * p[drawn]), rtol=1e-5)
    assert int(sampler.epoch.numpy()) == 1
    batches = list(sampler.dataset())
    assert len(batches) == 10
    np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), drawn)


def test_scores_are_the_gradient_norms_of_the_logits():
    # lr 0 and one architecture: the forward pass of each batch can be redone.
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn="batch"), learning_rate=0.0, momentum=0.0)
    arch = space.sample(2)
    supernet.set_mask({k: [v] for k, v in arch.items()})
    supernet.set_path(arch)
    x, y, _ = tiny_data(num=40)
    sampler = ImportanceDataSampler((x, y), batch_size=8, seed=4)
    callback = sampler.callback(tau=0.5)
    order = sampler.indices.numpy().copy()
    supernet.fit(sampler.dataset(), epochs=1, verbose=0, callbacks=[callback])
    expected = np.zeros(40)
    for b in range(5):
        idx = order[b * 8:(b + 1) * 8]
        logits = supernet(x[idx], training=True).numpy()
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        expected[idx] = np.linalg.norm(probs - np.eye(5)[y[idx]], axis=1)
    np.testing.assert_allclose(callback.scores(), expected, rtol=1e-5)
    np.testing.assert_allclose(sampler.probabilities, 0.5 * expected / expected.sum() + 0.5 / 40, rtol=1e-5)
    with pytest.raises(ValueError, match="index"):
        supernet.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0,
                     callbacks=[sampler.callback()])


def test_zero_smoothing_reproduces_spos_exactly():
    x, y, _ = tiny_data(num=48, seed=6)
    initial = tiny_space().build_supernet(seed=9).network.get_weights()
    draws = []

    def fresh(path_sampler=None):
        supernet = tiny_space().build_supernet(seed=9, bn="batch", clip_norm=5.0, path_sampler=path_sampler)
        supernet.network.set_weights(initial)
        return compile_sgd(supernet)

    # PA&DA with δ = τ = 0: both samplers active, distributions uniform.
    path, data = ImportancePathSampler(), ImportanceDataSampler((x, y), batch_size=8, seed=1)
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: draws.append(data.indices.numpy().copy())
    )
    supernet = fresh(path)
    supernet.fit(data.dataset(), epochs=3, verbose=0,
                 callbacks=[path.callback(delta=0.0), data.callback(tau=0.0), record])
    pada = supernet.network.get_weights()
    # Plain SPOS (uniform path sampler, no observers) on the same samples.
    epochs = [tf.data.Dataset.from_tensor_slices((x[d], y[d])).batch(8) for d in draws]
    spos_data = epochs[0].concatenate(epochs[1]).concatenate(epochs[2])
    supernet = fresh()
    supernet.fit(spos_data.repeat(), epochs=3, steps_per_epoch=6, verbose=0)
    spos = supernet.network.get_weights()
    assert len(np.unique(draws[1])) < 48  # later epochs really are drawn with replacement
    # The same paths and samples: equal up to float rounding (the two graphs
    # differ, and so may their kernels' summation order; a different path
    # or sample moves weights by ~1e-2).
    # A conv bias feeding a batch-statistics BN has a true gradient of 0: its
    # value is rounding noise amplified by momentum, only checked to stay small.
    names = [v.path for v in supernet.network.weights]
    for name, a, b in zip(names, pada, spos):
        noise_only = name.endswith("conv/bias")
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3 if noise_only else 1e-5, err_msg=name)


def test_checkpoint_resume_restores_both_samplers(tmp_path):
    x, y, _ = tiny_data(num=32, seed=8)

    def run(epochs, directory, restore, stop_after=None):
        keras.utils.set_random_seed(0)
        path = ImportancePathSampler()
        supernet = tiny_space().build_supernet(seed=2, bn="batch", clip_norm=5.0, path_sampler=path)
        compile_sgd(supernet)
        data = ImportanceDataSampler((x, y), batch_size=8, seed=3)
        checkpoint = kerasnas.callbacks.EpochCheckpoint(directory, state=[data])
        initial = checkpoint.restore(supernet) if restore else 0
        callbacks = [path.callback(), data.callback(), checkpoint]
        if stop_after:  # a run killed after the checkpoint of epoch `stop_after`
            callbacks.append(keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: setattr(supernet, "stop_training", epoch + 1 == stop_after)
            ))
        supernet.fit(data.dataset(), epochs=epochs, initial_epoch=initial, verbose=0, callbacks=callbacks)
        return supernet, path, data

    full = run(4, tmp_path / "full", False)
    run(4, tmp_path / "cut", False, stop_after=2)
    resumed = run(4, tmp_path / "cut", True)
    np.testing.assert_array_equal(full[1].probabilities.numpy(), resumed[1].probabilities.numpy())
    np.testing.assert_array_equal(full[2].indices.numpy(), resumed[2].indices.numpy())
    assert not np.allclose(full[1].probabilities.numpy(), 0.2)  # the state is not trivial
    for a, b in zip(full[0].get_weights(), resumed[0].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_uniform_sampler_can_reject_disconnected_nb201_paths():
    # GM-NAS' RSWS base (`check_connect`): redraw while 'none' cuts the
    # cell's output off its input; in the graph, one trace.
    import tensorflow as tf
    from kerasnas.sampling import UniformPathSampler

    space = tiny_space()
    connected = lambda arch: bool(space.path_connected(tf.constant(space.encode(arch), "int32")))
    assert not connected(space.from_string("|none~0|+|none~0|skip_connect~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"))
    assert connected(space.from_string("|none~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|none~2|"))
    assert connected(space.from_string("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"))
    mask = np.ones((6, 5), "float32")
    counts = {}
    for reject in (False, True):
        sampler = UniformPathSampler(reject_disconnected=reject)
        sampler.bind(space)
        generator = keras.random.SeedGenerator(0)
        draw = tf.function(lambda: sampler.sample(tf.constant(mask), generator))
        paths = [draw().numpy() for _ in range(300)]
        counts[reject] = sum(not bool(space.path_connected(tf.constant(p))) for p in paths)
    assert counts[False] > 3 and counts[True] == 0  # ~3 % of uniform paths are cut off
    restored = UniformPathSampler.from_config(UniformPathSampler(reject_disconnected=True).get_config())
    assert restored.reject_disconnected
    with pytest.raises(ValueError, match="path_connected"):
        UniformPathSampler(reject_disconnected=True).bind(kerasnas.spaces.MobileNetSpace())


def test_data_sampler_reads_a_random_access_source_as_it_reads_arrays():
    # ImageNet scale: examples read one by one (tfds.data_source), never held
    # in memory; the batches equal those of the same data as arrays.
    tfds = pytest.importorskip("tensorflow_datasets")
    map_fn = lambda image, label, seed: (tf.image.resize(image, (8, 8)), label)
    with tfds.testing.mock_data(num_examples=24):
        source = kerasnas.data.random_access("cifar10", "train")
        assert len(source) == 24
        x = np.stack([source[i]["image"] for i in range(24)])
        y = np.array([source[i]["label"] for i in range(24)], "int64")
        streamed = ImportanceDataSampler(source, batch_size=5, seed=3, map_fn=map_fn)
        in_memory = ImportanceDataSampler((x, y), batch_size=5, seed=3, map_fn=map_fn)
        assert streamed.images is None and streamed.num_examples == 24
        scores = np.arange(24, dtype="float64")
        for sampler in (streamed, in_memory):
            sampler.end_epoch(scores, tau=0.9, epoch=0)  # a non-uniform draw
        for a, b in zip(streamed.dataset(), in_memory.dataset(), strict=True):
            for u, v in zip(a, b, strict=True):
                np.testing.assert_array_equal(u.numpy(), v.numpy())
    with pytest.raises(ValueError, match="argument `name`"):
        kerasnas.data.random_access("digits")
