"""Single device vs MirroredStrategy on 2 logical CPUs (see conftest)."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from nas_helpers import compile_sgd, tiny_data, tiny_space


@pytest.fixture(scope="module")
def mirrored():
    # One strategy per process: separate MirroredStrategy objects reuse
    # collective keys and collide in TF's process-wide collective runtime.
    return tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])


def train(strategy, bn, data, steps_per_epoch, initial, **options):
    options.setdefault("virtual_batch_size", 8)
    with strategy.scope():
        supernet = tiny_space().build_supernet(
            seed=11, bn=bn, weight_decay=1e-3, clip_norm=1.0, **options
        )
        supernet.set_weights(initial)
        compile_sgd(supernet, learning_rate=0.1, momentum=0.9)
    paths = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: paths.append(tuple(supernet.active_path.numpy()))
    )
    history = supernet.fit(data, epochs=2, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=[record])
    return supernet, history.history, paths


# "standard" BN: moving statistics averaged across replicas. Batch-statistics
# BN on two replicas: the inter-choice test below (and PA&DA's).
@pytest.mark.parametrize("bn", ["standard"])
def test_two_replicas_match_one_device(mirrored, bn):
    # Global batch 16 = 2 replicas x 8. Per-replica BN statistics on 2
    # replicas are "ghost" BN over groups of 8 on one device.
    _, _, data = tiny_data(num=64, batch_size=16, seed=2)
    initial = tiny_space().build_supernet(seed=11, bn=bn, virtual_batch_size=8).get_weights()
    one, h1, p1 = train(tf.distribute.get_strategy(), bn, data, 4, initial)
    two, h2, p2 = train(mirrored, bn, data, 4, initial)
    assert p1 == p2 and len(set(p1)) > 3  # the same path on every replica and device
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h1["accuracy"], h2["accuracy"], atol=1e-6)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    arch = tiny_space().from_string(
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    )
    r1 = one.evaluate_arch(arch, data.take(2))
    r2 = two.evaluate_arch(arch, data.take(2))
    assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-5, abs=1e-5)


# "standard" BN: synchronized moments and the moving statistics they feed
# ("batch" BN computes the same moments and keeps no statistics).
@pytest.mark.parametrize("bn", ["standard"])
def test_synchronized_bn_on_two_replicas_matches_one_device(mirrored, bn):
    # Synchronized BN normalizes with the global batch's moments, so 2
    # replicas compute what one device computes with plain BN on the same
    # global batches. On one device the choices switch; on two they are
    # dense (every candidate runs, the selected output is kept).
    _, _, data = tiny_data(num=64, batch_size=16, seed=3)
    initial = tiny_space().build_supernet(seed=11, bn=bn).get_weights()
    one, h1, p1 = train(tf.distribute.get_strategy(), bn, data, 4, initial, virtual_batch_size=None)
    two, h2, p2 = train(mirrored, bn, data, 4, initial, virtual_batch_size=None, synchronized_bn=True)
    assert all(c.dense for c in two.choice_layers()) and not any(c.dense for c in one.choice_layers())
    assert p1 == p2 and len(set(p1)) > 3
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5, atol=1e-5)
    for v, a, b in zip(one.weights, one.get_weights(), two.get_weights()):
        # A conv bias feeding a batch-statistics BN has a true gradient of 0:
        # its value is float rounding noise (~1e-5), amplified by momentum,
        # and is only checked to stay at that noise level.
        noise_only = v.path.endswith("conv/bias")
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4 if noise_only else 1e-5, err_msg=v.path)
    # Differs from per-replica statistics: the test can tell them apart.
    ghost, h3, _ = train(tf.distribute.get_strategy(), bn, data, 4, initial, virtual_batch_size=8)
    assert max(abs(a - b) for a, b in zip(h1["loss"], h3["loss"])) > 1e-4


def test_synchronized_bn_inside_a_switch_is_refused_clearly(mirrored):
    _, _, data = tiny_data(num=32, batch_size=16)
    space = tiny_space()
    with mirrored.scope():
        # With switch selection, synchronized BN is applied outside choices
        # only; forcing it inside a branch gets a clear error, not TF's
        # merge_call one.
        supernet = space.build_supernet(seed=0, bn="batch", synchronized_bn=True, dense_choices=False)
        for layer in supernet.network._flatten_layers():
            if isinstance(layer, keras.layers.Layer) and type(layer).__name__ == "BatchNorm":
                layer.synchronized = True
        compile_sgd(supernet)
    assert not any(c.dense for c in supernet.choice_layers())
    with pytest.raises(ValueError, match="cannot run inside a choice's branch"):
        supernet.fit(data, epochs=1, verbose=0)


def test_synchronized_bn_outside_switched_choices_trains(mirrored):
    _, _, data = tiny_data(num=32, batch_size=16)
    with mirrored.scope():
        supernet = compile_sgd(
            tiny_space().build_supernet(seed=0, bn="batch", synchronized_bn=True, dense_choices=False)
        )
    history = supernet.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_ranking_on_two_replicas_matches_one_device(mirrored):
    # Calibration on 2 replicas averages per-replica statistics: what one
    # device computes with ghost batches of the per-replica size.
    from kerasnas.evaluation import ArchitectureScorer

    _, _, data = tiny_data(num=64, batch_size=16, seed=5)
    space = tiny_space()
    archs = [space.sample(seed) for seed in range(4)]
    initial = space.build_supernet(seed=1, bn="standard", virtual_batch_size=8).get_weights()
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            supernet = space.build_supernet(seed=1, bn="standard", virtual_batch_size=8)
            supernet.set_weights(initial)
        with ArchitectureScorer(supernet, data, data, bn_calibration_steps=2) as scorer:
            results.append([scorer.score(a) for a in archs])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
    assert len({loss for _, loss in results[0]}) == len(archs)  # the archs really differ


def test_pada_samplers_on_two_replicas_match_one_device(mirrored):
    # Path importance from all-reduced gradients, data scores gathered from
    # both replicas: the same distributions as one device (ghost BN of the
    # per-replica batch).
    from kerasnas.sampling import ImportanceDataSampler, ImportancePathSampler

    x, y, _ = tiny_data(num=64, seed=7)
    initial = tiny_space().build_supernet(seed=3, bn="batch", virtual_batch_size=8).network.get_weights()
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            path = ImportancePathSampler()
            supernet = tiny_space().build_supernet(
                seed=3, bn="batch", virtual_batch_size=8, clip_norm=5.0, path_sampler=path
            )
            supernet.network.set_weights(initial)
            compile_sgd(supernet)
        data = ImportanceDataSampler((x, y), batch_size=16, seed=2)
        data_callback = data.callback(tau=0.5)
        supernet.fit(data.dataset(), epochs=2, verbose=0, callbacks=[path.callback(delta=0.5), data_callback])
        results.append((path.probabilities.numpy(), data_callback.scores(), data.indices.numpy(),
                        supernet.network.get_weights()))
    one, two = results
    # 1e-4: the importance sums norms of conv-bias gradients, which are 0 up
    # to float rounding under batch-statistics BN (reference behaviour), so
    # they differ at the 1e-5 level between one and two devices.
    np.testing.assert_allclose(one[0], two[0], rtol=1e-4)
    assert not np.allclose(one[0], 0.2)
    np.testing.assert_allclose(one[1], two[1], rtol=1e-5, atol=1e-6)
    assert (one[1] > 0).sum() > 20
    np.testing.assert_array_equal(one[2], two[2])
    for a, b in zip(one[3], two[3]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_one_shot_search_on_two_replicas_matches_one_device(mirrored, tmp_path):
    from kerasnas.search import EvolutionOracle, OneShotTuner

    _, _, data = tiny_data(num=64, batch_size=16, seed=5)
    space = tiny_space()
    initial = space.build_supernet(seed=1, bn="standard", virtual_batch_size=8).get_weights()
    runs = []
    for k, strategy in enumerate((tf.distribute.get_strategy(), mirrored)):
        with strategy.scope():
            supernet = space.build_supernet(seed=1, bn="standard", virtual_batch_size=8)
            supernet.set_weights(initial)
        oracle = EvolutionOracle(space, population_size=4, sample_size=2, max_trials=8, seed=0)
        tuner = OneShotTuner(supernet, oracle, data, bn_calibration_data=data, bn_calibration_steps=2,
                             directory=tmp_path, project_name=f"run{k}")
        tuner.search(verbose=0)
        runs.append([(r["arch"], r["metrics"]["val_loss"], r["metrics"]["val_accuracy"]) for r in tuner.results()])
    # Same scores, hence the same evolution: the same architectures in the same order.
    assert [a for a, _, _ in runs[0]] == [a for a, _, _ in runs[1]]
    np.testing.assert_allclose([r[1:] for r in runs[0]], [r[1:] for r in runs[1]], rtol=1e-5, atol=1e-6)


def test_darts_bilevel_step_on_two_replicas_matches_one_device(mirrored, order=1):
    import kerasnas

    # α's gradients are reduced like the weights': 2 replicas x 8 = one
    # device with ghost BN over groups of 8. (order=2 also matched, 261 s on
    # a loaded 2-core machine: too slow for the suite.) Three operations per
    # edge, one with weights and BN: every candidate is traced, and what is
    # tested does not depend on how many there are.
    _, _, train_data = tiny_data(num=32, batch_size=16, seed=4)
    _, _, valid_data = tiny_data(num=32, batch_size=16, seed=5)
    data = kerasnas.darts.paired(train_data, valid_data)

    def build():
        return tiny_space(ops=("skip_connect", "nor_conv_3x3", "avg_pool_3x3")).build_supernet(
            supernet_class=kerasnas.darts.DartsSupernet, seed=3, bn="search",
            virtual_batch_size=8, order=order, weight_decay=1e-3, clip_norm=1.0,
        )

    initial = build().get_weights()
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            supernet = build()
            supernet.set_weights(initial)
            compile_sgd(supernet, learning_rate=0.1, momentum=0.9)
        history = supernet.fit(data, epochs=1, verbose=0)
        results.append((supernet, history.history))
    (one, h1), (two, h2) = results
    assert not np.allclose(one.alpha.numpy(), initial[[v.name for v in one.weights].index("alpha")])
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5, atol=1e-5)
    for v, a, b in zip(one.weights, one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=v.path)


def test_gradient_matching_on_two_replicas_matches_one_device(mirrored):
    # GM-NAS' per-option gradients are summed across replicas before any
    # distance: 2 replicas x 8 images = one device with ghost BN of 8.
    from kerasnas import fewshot

    _, _, data = tiny_data(num=48, batch_size=16, seed=8)
    initial = tiny_space().build_supernet(seed=11, bn="standard", virtual_batch_size=8).get_weights()
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            supernet = tiny_space().build_supernet(seed=11, bn="standard", virtual_batch_size=8)
            supernet.set_weights(initial)
            compile_sgd(supernet)
        matcher = fewshot.GradientMatcher(supernet, repeats=3, seed=1)
        options, gradients = matcher.gradients("2<-1", data)
        results.append((gradients, matcher.distance_from_gradients(gradients)))
    (g1, d1), (g2, d2) = results
    assert g1.shape == g2.shape == (3, 5, g1.shape[-1]) and np.abs(g1).max() > 1e-3
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d1, d2, atol=1e-5)


# Split weights: copies swapped in the graph on every replica (bias entries
# are gathered rows: sparse gradients, reduced like any other).
@pytest.mark.parametrize("interchoice", ["split"])
def test_interchoice_weights_on_two_replicas_match_one_device(mirrored, interchoice):
    # Split copies are selected by the path, the same on every replica.
    from kerasnas.callbacks import SplitWeights

    _, _, data = tiny_data(num=64, batch_size=16, seed=2)
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            supernet = tiny_space().build_supernet(
                seed=1, bn="batch", choices=kerasnas.layers.InterChoices(interchoice), weight_decay=1e-3,
                virtual_batch_size=8,
            )
            compile_sgd(supernet)
        callbacks = [SplitWeights([1])] if interchoice == "split" else []
        history = supernet.fit(data, epochs=2, verbose=0, callbacks=callbacks)
        results.append((supernet, history.history["loss"]))
    (one, h1), (two, h2) = results
    np.testing.assert_allclose(h1, h2, rtol=1e-5, atol=1e-5)
    moved = 0
    for u, v in zip(one.variables, two.variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v), rtol=1e-5, atol=1e-5, err_msg=u.path
        )
        moved += "bank" in u.path and bool(np.any(keras.ops.convert_to_numpy(u)))
    assert moved  # split copies took part


def test_dcnas_pair_steps_on_two_replicas_match_one_device(mirrored):
    # Pair steps (Eq. 8) with a meta step each (Eq. 12): both paths, the
    # copies and lambda are the same on every replica; gradients, pooled
    # features and the look-ahead product are reduced across them. A 2-layer
    # MobileNet with 2 options a layer, every architecture in the pool.
    from kerasnas.dcnas import DCNASSupernet
    from nas_helpers import tiny_mobilenet

    _, _, data = tiny_data(num=32, batch_size=16, seed=4, shape=(16, 16, 3), num_classes=10)
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            space = tiny_mobilenet(input_shape=(16, 16, 3), stage_depths=(1, 1), kernel_sizes=(3,))
            supernet = space.build_supernet(
                supernet_class=DCNASSupernet, seed=1, bn="standard", pool_size=4, meta_interval=1,
                meta_learning_rate=100.0, weight_decay=1e-3, virtual_batch_size=8,
            )
            compile_sgd(supernet)
        supernet.states.assign(np.array([[0, -1], [1, -1], [1, -1], [0, -1]], "int32"))
        supernet.phase.assign(1)
        history = supernet.fit(data, epochs=2, verbose=0)
        results.append((supernet, history.history["loss"]))
    (one, h1), (two, h2) = results
    np.testing.assert_allclose(h1, h2, rtol=1e-5, atol=1e-5)
    for u, v in zip(one.variables, two.variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v), rtol=1e-4, atol=1e-5, err_msg=u.path
        )
    assert np.any(keras.ops.convert_to_numpy(one.meta_bias))  # meta steps took place
