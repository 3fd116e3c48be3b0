"""A search space written as one function of ordinary Keras code
(`kerasnas.spaces.from_function`): every method trains it, the child equals
the supernet on its path, and the supernet round-trips through `.keras`."""

import functools

import numpy as np
import pytest

import keras
import kerasnas
from nas_helpers import compile_sgd, tiny_data


def conv_bn(filters, kernel_size):
    return lambda: keras.Sequential([
        keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False),
        kerasnas.layers.BatchNorm(), keras.layers.ReLU(),
    ])


# The user's space: a stem, three blocks that each choose a 3x3 or 5x5
# convolution, a separable convolution or nothing, a 1x1 convolution whose
# width is chosen (the narrower a slice of the wider), and a classifier.
def blocks(b, images):
    x = keras.layers.Conv2D(8, 3, padding="same")(images)
    for i in range(3):
        x = b.choice(f"block{i}", {
            "conv3": conv_bn(8, 3), "conv5": conv_bn(8, 5),
            "sep3": lambda: keras.layers.SeparableConv2D(8, 3, padding="same"),
            "skip": lambda: keras.layers.Identity(),
        }, x)
    return x


def small_cnn(b, images):
    x = b.value_choice("width", [4, 8], lambda w: conv_bn(w, 1)(), blocks(b, images))
    x = keras.layers.Conv2D(6, 3, padding="same")(x)  # its rows follow the width
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(5)(x)


def small_cnn_without_width(b, images):
    x = keras.layers.GlobalAveragePooling2D()(blocks(b, images))
    return keras.layers.Dense(5)(x)


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@functools.lru_cache(maxsize=None)
def spaces():
    """`(SPACE, NO_WIDTH)`, made on first use: making a space builds Keras
    graphs, which must not happen when pytest imports this file (a test
    file collected after it sets TensorFlow's threads first)."""
    return (kerasnas.spaces.from_function(small_cnn, input_shape=(8, 8, 3)),
            kerasnas.spaces.from_function(small_cnn_without_width, input_shape=(8, 8, 3)))


# Each method's module trains the space through one call (`Method.train`);
# the epochs are each schedule's least: split weights need a milestone
# inside training, DCNAS a pair and an ordinary epoch per layer (3), GM-NAS
# two splits.
EPOCHS = {"interchoice-split": 2, "dcnas": 6, "gmnas": 3}
OPTIONS = {"pada": dict(path={"delta": 0.5}, data={"tau": 0.5}), "dcnas": dict(pool_size=8),
           "gmnas": dict(matcher_options={"repeats": 2})}


def _train(method, x, y, tmp_path, space):
    """A supernet of `space` trained by `method` (a registered name); returns it."""
    method = kerasnas.methods.get(method, **OPTIONS.get(method, {}))
    trained = method.train(
        space, (x, y), EPOCHS.get(method.name, 1), optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        arch_data=(x, y) if method.needs_arch_data else None, batch_size=8,
        seed=1 if method.name == "dcnas" else 0, directory=tmp_path / "tree",
    )
    if method.name == "pada":  # importance moved the probabilities
        assert not np.allclose(trained.path_sampler.probabilities.numpy()[:3], 0.25)
    if method.name == "gmnas":
        assert len(trained.tree.leaves()) == 4
    if method.name == "dcnas":  # every layer decided
        assert all(trained.decided())
    return trained


@pytest.mark.parametrize("method", ["spos", "pada", "interchoice-bias", "interchoice-split", "darts",
                                    "dcnas", "gmnas"])
def test_every_method_trains_extracts_and_round_trips_a_function_space(method, tmp_path):
    x, y, data = tiny_data(num=32, batch_size=8, seed=1)
    # DCNAS gives every choice local weight copies: a value choice has none.
    SPACE, NO_WIDTH = spaces()  # noqa: N806
    space = NO_WIDTH if method == "dcnas" else SPACE
    trained = _train(method, x, y, tmp_path, space)
    archs = [space.sample(seed) for seed in range(3)]
    archs[2].update({"block0": "conv5", "block1": "skip", "block2": "sep3"})
    if space is SPACE:
        archs[0]["width"], archs[1]["width"] = "4", "8"
    scores = kerasnas.evaluation.rank_architectures(trained, archs, data, verbose=0)
    assert np.isfinite(scores).all()
    numpy = keras.ops.convert_to_numpy  # eager calls: no predict function traced per child
    for arch in archs:
        supernet = trained.activate_for(arch) if method == "gmnas" else trained
        with supernet.fixed(arch):
            expected = numpy(supernet(x, training=False))
        before = [np.array(v) for v in supernet.variables]
        child = trained.extract(arch)
        np.testing.assert_allclose(numpy(child(x, training=False)), expected, rtol=0, atol=1e-6)
        assert all(np.array_equal(a, b) for a, b in zip(before, supernet.variables))
        assert child.count_params() == space.params(arch)
    child.save(tmp_path / "child.keras")  # exported: the child's own .keras file
    np.testing.assert_allclose(numpy(keras.saving.load_model(tmp_path / "child.keras")(x, training=False)),
                               expected, rtol=0, atol=1e-6)
    supernet.save(tmp_path / "supernet.keras")
    reloaded = keras.saving.load_model(tmp_path / "supernet.keras")
    assert reloaded.space == space
    with reloaded.fixed(arch):
        np.testing.assert_array_equal(numpy(reloaded(x, training=False)), expected)


def test_names_are_the_librarys_and_the_space_knows_its_choices():
    SPACE = spaces()[0]  # noqa: N806
    blocks = {f"block{i}": ("conv3", "conv5", "sep3", "skip") for i in range(3)}
    assert SPACE.choices == {**blocks, "width": ("4", "8")}  # in call order
    assert len(SPACE) == 128 and SPACE.num_classes == 5 and SPACE.sliced_weights
    supernet = SPACE.build_supernet(seed=0)
    arch = {"block0": "skip", "block1": "conv3", "block2": "sep3", "width": "4"}
    child = SPACE.build_network(arch=arch)
    # The function's own layers are named alike in both (however many
    # candidates the supernet built between them); candidates by label.
    assert [l.name for l in child.layers] == [
        "images", "conv2d", "block0__skip", "block1__conv3", "block2__sep3", "width__value",
        "conv2d_1", "global_average_pooling2d", "dense"]
    assert [l.name for l in supernet.network.layers if "__" not in l.name] == [
        "images", "path", "conv2d", "conv2d_1", "global_average_pooling2d", "dense"]
    # No closed form needed: the child is counted. Width 4 against 8: the
    # 1x1 convolution's 4 more filters (8 inputs each), their BN and the
    # next convolution's 4 more input channels (3x3, 6 filters).
    skips = dict(block0="skip", block1="skip", block2="skip")
    narrow, wide = SPACE.params({**skips, "width": "4"}), SPACE.params({**skips, "width": "8"})
    assert wide - narrow == 4 * 8 + 4 * 4 + 4 * 9 * 6  # BN: scale, offset, mean, variance
    # FLOPs too (multiply-accumulates on 8x8): the 1x1 convolution's 4 more
    # filters and the 3x3's 4 more input channels, per position.
    narrow, wide = SPACE.flops({**skips, "width": "4"}), SPACE.flops({**skips, "width": "8"})
    assert wide - narrow == (4 * 8 + 4 * 9 * 6) * 64
    # The whole count by hand: stem 3x3 (3 -> 8, bias), width 1x1 (8 -> 4),
    # 3x3 (4 -> 6, bias), classifier 6 -> 5 (+ bias).
    assert narrow == (9 * 3 * 8 + 8 + 8 * 4 + 9 * 4 * 6 + 6) * 64 + 6 * 5 + 5
    assert SPACE.get_config() == {"function": f"{__name__}:small_cnn", "input_shape": [8, 8, 3]}


def test_a_search_ranks_and_exports_a_function_space(tmp_path):
    from kerasnas.search import EvolutionOracle, OneShotTuner

    SPACE = spaces()[0]  # noqa: N806
    x, _, data = tiny_data(num=32, batch_size=8, seed=1)
    supernet = compile_sgd(SPACE.build_supernet(seed=0))
    supernet.fit(data, epochs=1, verbose=0)
    scores = kerasnas.evaluation.rank_architectures(supernet, list(SPACE.enumerate())[:6], data, verbose=0)
    assert scores.shape == (6,) and np.isfinite(scores).all()
    oracle = EvolutionOracle(SPACE, max_trials=4, population_size=3, sample_size=2, seed=0)
    tuner = OneShotTuner(supernet, oracle, data, directory=str(tmp_path), project_name="search")
    tuner.search(verbose=0)
    best = tuner.get_best_architectures(1)[0]
    paths = kerasnas.export.save_child(supernet.extract(best), tmp_path / "best")
    assert set(paths) >= {"child", "saved_model"}


@pytest.mark.parametrize("make, message", [
    (lambda: kerasnas.spaces.from_function(
        lambda b, x: b.choice("c", {"a": lambda: keras.layers.Dense(3), "b": lambda: keras.layers.Dense(4)},
                              keras.layers.Flatten()(x)), input_shape=(4, 4, 1)),
     r"choice 'c'. Expected candidates whose outputs have one shape .*'a': \(None, 3\), 'b': \(None, 4\)"),
    (lambda: kerasnas.spaces.from_function(
        lambda b, x: b.choice("c", {"a": keras.layers.Dense(3)}, x), input_shape=(4, 4, 1)),
     "Expected a function returning a new layer"),
    (lambda: kerasnas.spaces.from_function(
        lambda b, x: b.choice("c", {"a": lambda: keras.layers.Identity()},
                              b.choice("c", {"z": lambda: keras.layers.Identity()}, x)),
        input_shape=(4, 4, 1)),
     r"Expected the options of its first call, \['z'\]. Received: \['a'\]"),
    (lambda: kerasnas.spaces.from_function(lambda b, x: keras.layers.Dense(2)(x), input_shape=(4, 4, 1)),
     "makes at least one choice"),
    (lambda: kerasnas.spaces.from_function(
        lambda b, x: b.value_choice("w", [2, 4], lambda w: keras.layers.Dense(3), x), input_shape=(4, 4, 1)),
     r"value choice 'w'. Expected layers whose output has `value` channels .*2: \(None, 4, 4, 3\)"),
    (lambda: kerasnas.spaces.from_function(
        lambda b, x: b.value_choice("w", [2, 0], lambda w: keras.layers.Dense(w), x), input_shape=(4, 4, 1)),
     r"`values` of value choice 'w'. Expected positive ints"),
    (lambda: spaces()[1].build_network(arch={"block0": "skip"}), r"Expected exactly the labels"),
    (lambda: spaces()[0].build_supernet(supernet_class=__import__("kerasnas").dcnas.DCNASSupernet,
                                  local_copies=2, pool_size=4),
     r"value choice 'width' shares one layer among its values"),
])
def test_bad_spaces_are_refused_when_made(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_keras_batch_normalization_is_refused_by_recalibration_not_ignored():
    # Issue #34: a keras.layers.BatchNormalization in a candidate was never
    # recalibrated, silently (calibrating on shifted data changed nothing).
    def with_keras_bn(b, images):
        x = b.choice("c", {"bn": lambda: keras.Sequential([
            keras.layers.Conv2D(4, 3, padding="same"), keras.layers.BatchNormalization()]),
            "conv": lambda: keras.layers.Conv2D(4, 3, padding="same")}, images)
        return keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))

    space = kerasnas.spaces.from_function(with_keras_bn, input_shape=(8, 8, 3))
    supernet = compile_sgd(space.build_supernet(seed=0))
    _, _, data = tiny_data(num=16, batch_size=8, num_classes=2)
    arch = {"c": "bn"}
    with pytest.raises(ValueError, match=r"kerasnas.layers.BatchNorm.*1 keras.layers.BatchNormalization"):
        supernet.evaluate_arch(arch, data, bn_calibration_data=data, bn_calibration_steps=2)
    with pytest.raises(ValueError, match="keras.layers.BatchNormalization"):
        supernet.extract(arch, bn_calibration_data=data, bn_calibration_steps=2)
    with pytest.raises(ValueError, match="keras.layers.BatchNormalization"):
        kerasnas.evaluation.rank_architectures(
            supernet, [arch], data, bn_calibration_data=data, bn_calibration_steps=1, verbose=0)
    assert np.isfinite(supernet.evaluate_arch(arch, data)["loss"])  # without calibration it runs


def test_value_choice_slices_by_index_and_mixes_by_weights():
    # Single path: the candidate of width v is the widest layer's first v
    # channels, the others zero. Mixed (DARTS): sum_v w_v * (that output).
    layer = keras.layers.Dense(4, kernel_initializer="ones", bias_initializer="ones")
    choice = kerasnas.layers.ValueChoice(layer, [2, 4], "width")
    x = np.arange(6, dtype="float32").reshape(2, 3)
    full = x.sum(axis=1, keepdims=True) + 1.0 + np.zeros((2, 4), "float32")
    numpy = keras.ops.convert_to_numpy
    narrow = numpy(choice(x, np.int32(0)))
    np.testing.assert_array_equal(narrow[:, :2], full[:, :2])
    np.testing.assert_array_equal(narrow[:, 2:], 0.0)
    np.testing.assert_array_equal(numpy(choice(x, np.int32(1))), full)
    mixed = numpy(choice(x, np.array([0.25, 0.75, 0.0], "float32")))  # a padded α row
    np.testing.assert_allclose(mixed, full * np.array([1.0, 1.0, 0.75, 0.75], "float32"), rtol=1e-6)
