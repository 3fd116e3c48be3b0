import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.export import save_child
from nas_helpers import compile_sgd, tiny_data, tiny_mobilenet

BLOCKS = [f"mbconv_k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6)]
def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def counted_flops(model, x):
    """MACs of `model` on `x`, from the output shapes its Conv2D,
    DepthwiseConv2D and Dense layers (nested ones included) produce."""
    total = []

    def record(layer, call):
        def wrapper(*args, **kwargs):
            y = call(*args, **kwargs)
            if isinstance(layer, keras.layers.Dense):
                total.append(int(np.prod(layer.kernel.shape)) + layer.units)
            else:  # kernel (k, k, Cin, Cout) or depthwise (k, k, C, 1)
                _, h, w, _ = y.shape
                total.append(int(np.prod(layer.kernel.shape)) * h * w)
            return y

        return wrapper

    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            layer.call = record(layer, layer.call)
    model(x, training=False)
    return sum(total)


def snapshot(model):
    state = {id(v): np.array(v.numpy()) for v in model.variables}
    state.update({id(v): np.array(v.numpy()) for v in model.optimizer.variables})
    return state


@pytest.fixture(scope="module")
def trained():
    """A tiny SPOS supernet ("standard" BN) after 3 training steps."""
    space = tiny_mobilenet()
    keras.utils.set_random_seed(0)
    supernet = compile_sgd(space.build_supernet(seed=0, bn="standard"), learning_rate=0.05)
    x, _, data = tiny_data(num=24, batch_size=8, num_classes=10, shape=(32, 32, 3))
    history = supernet.fit(data, epochs=1, verbose=0).history
    return space, supernet, x, data, history


def test_choices_labels_and_options():
    space = tiny_mobilenet()
    assert space.labels == ("layer0", "layer1", "layer2", "layer3")
    assert space.choices["layer0"] == tuple(BLOCKS)  # first of stage 0
    assert space.choices["layer1"] == tuple(BLOCKS) + ("skip",)
    assert space.choices["layer2"] == tuple(BLOCKS)  # first of stage 1
    assert space.choices["layer3"] == tuple(BLOCKS) + ("skip",)
    assert len(space) == 6 * 7 * 6 * 7
    no_skip = tiny_mobilenet(skip=False, kernel_sizes=(3, 5), expansions=(4,))
    assert no_skip.choices["layer3"] == ("mbconv_k3_e4", "mbconv_k5_e4")
    assert len(no_skip) == 2**4
    default = kerasnas.spaces.MobileNetSpace()
    assert len(default.labels) == 21 and default.labels[-1] == "layer20"
    assert len(default) == 6**6 * 7**15
    arch = space.sample(seed=1)
    assert space.decode(space.encode(arch)) == arch


def test_registry_ops_and_pytorch_stride_two_padding():
    block = kerasnas.ops.get("mbconv_k5_e6", channels=12, strides=2, name="b")
    assert isinstance(block, kerasnas.ops.InvertedResidual)
    assert (block.kernel_size, block.expansion, block.strides) == (5, 6, 2)
    y = block(np.zeros((2, 9, 9, 4), "float32"))
    assert y.shape == (2, 5, 5, 12) and not block.residual
    clone = kerasnas.ops.InvertedResidual.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    # Identity-like 3x3 stride-2 block: PyTorch's symmetric padding samples
    # centres 0, 2, 4, 6, so an impulse at (1, 1) reaches 2 x 2 outputs
    # (TF 'same' would sample 1, 3, 5, 7 and reach one).
    block = kerasnas.ops.InvertedResidual(1, 3, 1, strides=2)
    block.build((1, 8, 8, 1))
    block.depthwise_conv.kernel.assign(np.ones((3, 3, 1, 1), "float32"))
    block.project_conv.kernel.assign(np.ones((1, 1, 1, 1), "float32"))
    x = np.zeros((1, 8, 8, 1), "float32")
    x[0, 1, 1, 0] = 1.0
    y = keras.ops.convert_to_numpy(block(x, training=False))[0, :, :, 0]
    assert sorted(zip(*np.nonzero(y))) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_params_and_flops_match_the_built_child():
    space = tiny_mobilenet()
    archs = [space.sample(seed) for seed in range(3)]
    archs.append({k: ("skip" if "skip" in v else "mbconv_k3_e3") for k, v in space.choices.items()})
    archs.append(dict.fromkeys(space.labels, "mbconv_k7_e6"))
    x = np.zeros((1, 32, 32, 3), "float32")
    for arch in archs:
        child = space.build_child(arch)
        assert space.params(arch) == trainable_count(child), arch
        assert space.flops(arch) == counted_flops(child, x), arch
    assert space.params(archs[-1]) > space.params(archs[-2])
    batch = space.build_child(archs[0], bn="batch")
    assert space.params(archs[0], bn="batch") == trainable_count(batch)
    with pytest.raises(ValueError, match="argument `bn`"):
        space.build_child(archs[0], bn="search")


def test_config_round_trip_and_bad_arguments():
    space = tiny_mobilenet(expansions=(6, 3))
    config = space.get_config()
    assert kerasnas.spaces.MobileNetSpace.from_config(config) == space
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(space)) == space
    assert space != tiny_mobilenet()
    cases = [
        (dict(stage_depths=(2, 2, 2)), r"argument `stage_depths`.*Received: stage_depths=\(2, 2, 2\)"),
        (dict(stage_strides=(1,)), "argument `stage_strides`"),
        (dict(kernel_sizes=(3, 4)), r"argument `kernel_sizes`. Expected odd"),
        (dict(expansions=(0, 3)), "argument `expansions`"),
        (dict(input_shape=(34, 32, 3)), r"argument `input_shape`.*total stride 4"),
        (dict(stem_filters=0), "argument `stem_filters`"),
        (dict(num_classes=2.5), "argument `num_classes`"),
        (dict(skip="yes"), "argument `skip`"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            tiny_mobilenet(**kwargs)
    with pytest.raises(ValueError, match="label 'layer2'"):
        space.build_child({**space.sample(0), "layer2": "skip"})


def test_dense_choices_and_batch_bn_networks_agree():
    # Dense selection (synchronized BN) computes what the switch computes;
    # a "batch"-BN child computes what its supernet path computes.
    space = tiny_mobilenet()
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 32, 32, 3)), "float32")
    arch = {**space.sample(2), "layer3": "skip"}
    path = tf.constant(space.encode(arch), "int32")
    switched = space.build_network()
    dense = space.build_network(dense_choices=True)
    assert all(dense.get_layer(label).dense for label in space.labels)
    dense.set_weights(switched.get_weights())
    for training in (False, True):
        np.testing.assert_allclose(
            dense([x, path], training=training), switched([x, path], training=training), atol=1e-6
        )
    supernet = space.build_network(bn="batch")
    child = space.build_child(arch, bn="batch")
    kerasnas.supernet.supernet.transfer_weights(supernet, child)
    np.testing.assert_allclose(child(x), supernet([x, path]), atol=1e-6)


def test_extracted_child_equals_supernet_path(trained):
    space, supernet, x, _, history = trained
    assert np.isfinite(history["loss"]).all()
    archs = [space.sample(3), {**space.sample(4), "layer1": "skip", "layer3": "skip"}]
    for arch in archs:
        supernet.set_path(arch)
        expected = keras.ops.convert_to_numpy(supernet(x, training=False))
        child = supernet.extract(arch)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(child(x, training=False)), expected, atol=1e-5
        )
        alone = space.build_child(arch)
        assert [(v.path, tuple(v.shape)) for v in alone.weights] == [
            (v.path, tuple(v.shape)) for v in child.weights
        ]
        assert len(child.trainable_weights) < len(supernet.trainable_weights)


def test_spos_training_leaves_unsampled_candidates_unchanged(trained):
    space, supernet, _, data, _ = trained
    before = snapshot(supernet)
    history = supernet.fit(data.take(1), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    path = supernet.get_path()
    slots = kerasnas.supernet.supernet._optimizer_slots(supernet.optimizer, supernet.trainable_variables)
    checked = {"sampled": 0, "unsampled": 0, "moving": 0}
    for variable in supernet.trainable_variables:
        owner = supernet.candidate_owner(variable)
        if owner is None:
            continue
        label = space.labels[owner[0]]
        option = space.choices[label][owner[1]]
        state = [variable] + slots[supernet.optimizer._var_key(variable)]
        changed = [not np.array_equal(before[id(v)], v.numpy()) for v in state]
        if path[label] == option:
            assert all(changed), variable.path
            checked["sampled"] += 1
        else:
            assert not any(changed), variable.path
            checked["unsampled"] += 1
            # with momentum from earlier steps, which a plain update would apply
            checked["moving"] += int(np.any(before[id(state[1])] != 0))
    assert checked["moving"] > 0
    assert checked["sampled"] > 0 or all(v == "skip" for v in path.values())


def test_child_export_keras_and_saved_model(trained, tmp_path):
    space, supernet, x, _, _ = trained
    child = supernet.extract(space.sample(5))
    expected = keras.ops.convert_to_numpy(child(x, training=False))
    paths = save_child(child, tmp_path)
    reloaded = keras.saving.load_model(paths["child"])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(reloaded(x, training=False)), expected)
    exported = tf.saved_model.load(paths["saved_model"])  # keeps its variables alive
    served = exported.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)


def test_supernet_keras_round_trip(trained, tmp_path):
    space, supernet, x, _, _ = trained
    supernet.save(tmp_path / "supernet.keras")
    reloaded = keras.saving.load_model(tmp_path / "supernet.keras")
    assert isinstance(reloaded, kerasnas.Supernet) and reloaded.space == space
    arch = space.sample(6)
    for model in (supernet, reloaded):
        model.set_path(arch)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(reloaded(x, training=False)),
        keras.ops.convert_to_numpy(supernet(x, training=False)),
    )
