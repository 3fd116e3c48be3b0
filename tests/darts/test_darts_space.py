"""The DARTS space: genotypes, evaluation network parameters, PyTorch
padding semantics of its ops, supernet children and PT's topology step."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.darts import DartsSupernet
from kerasnas.darts import PerturbationSelector
from kerasnas.ops import DartsPool
from kerasnas.ops import DilConv
from kerasnas.spaces import GENOTYPES
from kerasnas.spaces import Darts
from kerasnas.spaces import strip_auxiliary


def count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_darts_v2_genotype_round_trips_and_has_the_reference_parameter_count():
    space = Darts(op_set="darts")
    arch = space.from_genotype(GENOTYPES["DARTS_V2"])
    assert arch["normal_5<-2"] == "dil_conv_3x3" and arch["reduce_2<-0"] == "max_pool_3x3"
    assert sum(op != "none" for op in arch.values()) == 16
    assert space.from_genotype(space.to_genotype(arch)) == arch
    # darts `count_parameters_in_MB` (auxiliary head excluded): 3.349342 MB.
    assert space.params(arch) == 3_349_342
    model = space.build_child(arch)
    assert count(strip_auxiliary(model)) == 3_349_342
    assert count(model) == space.params(arch, auxiliary=True)
    # DARTS-PT's published s5 genotype: "2.85 (param size)".
    s5 = Darts(op_set="s5")
    assert round(s5.params(s5.from_genotype(GENOTYPES["DARTS_PT_S5_0"])) / 1e6, 2) == 2.85


def test_genotype_and_architecture_errors():
    space = Darts(op_set="s5")
    arch = space.from_genotype(GENOTYPES["DARTS_PT_S5_0"])
    three = dict(arch, **{"normal_4<-3": "skip_connect"})
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        space.validate(three)
    with pytest.raises(ValueError, match="'none'"):
        space.validate(dict(arch, **{"normal_2<-0": "conv_7x7"}))
    text = GENOTYPES["DARTS_V2"]
    for bad in (
        "Genotype(normal=[('sep_conv_3x3', 0)], reduce=[])",  # too few pairs
        text.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),  # no such input
        text.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 0)"),  # input twice
        "Genotype(normal=[(",
        "not a genotype",
    ):
        with pytest.raises(ValueError, match="genotype"):
            space.from_genotype(bad)
    with pytest.raises(ValueError, match="op_set"):
        Darts(op_set="s9")


def test_sampled_and_derived_architectures_keep_two_inputs_per_node():
    space = Darts(op_set="s3")
    for seed in range(5):
        space.validate(space.sample(seed))  # raises otherwise
    rng = np.random.default_rng(0)
    weights = {l: {o: float(rng.random()) for o in ops} for l, ops in space.choices.items()}
    arch = space.derive(weights)
    space.validate(arch)
    for label, op in arch.items():
        if op != "none":  # the strongest non-'none' op of a kept edge
            row = {o: w for o, w in weights[label].items() if o != "none"}
            assert op == max(row, key=row.get)


def reference_pool(x, mode, stride):
    """PyTorch's 3x3 pool with padding 1 (count_include_pad=False)."""
    n, h, w, c = x.shape
    out = np.zeros((n, (h - 1) // stride + 1, (w - 1) // stride + 1, c), "float32")
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            r0, c0 = i * stride - 1, j * stride - 1
            window = x[:, max(r0, 0) : r0 + 3, max(c0, 0) : c0 + 3, :]
            out[:, i, j] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("stride", [1, 2])
def test_pools_follow_pytorch_padding(mode, stride):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    y = DartsPool(3, stride, mode=mode)(x)
    np.testing.assert_allclose(np.asarray(y), reference_pool(x, mode, stride), rtol=1e-5, atol=1e-6)


def test_dilated_conv_at_stride_two_equals_the_direct_formula():
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 2)).astype("float32")
    layer = DilConv(2, 3, strides=2, dilation_rate=2, bn_options=dict(track_running_stats=False), affine=False)
    layer(x)
    kernel = np.asarray(layer.depthwise.kernel)[:, :, :, 0]  # (3, 3, C)
    pointwise = np.asarray(layer.pointwise.kernel)[0, 0]  # (C, F)
    padded = np.pad(np.maximum(x, 0), ((0, 0), (2, 2), (2, 2), (0, 0)))
    depth = np.zeros((1, 4, 4, 2), "float32")
    for i in range(4):
        for j in range(4):
            for a in range(3):
                for b in range(3):
                    depth[0, i, j] += padded[0, 2 * i + 2 * a, 2 * j + 2 * b] * kernel[a, b]
    z = depth @ pointwise
    expected = (z - z.mean(axis=(0, 1, 2))) / np.sqrt(z.var(axis=(0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), expected, rtol=1e-4, atol=1e-4)


def tiny_darts(op_set="s3"):
    return Darts(num_classes=5, channels=4, layers=3, input_shape=(8, 8, 3), op_set=op_set)


def test_extracted_child_equals_the_supernet_fixed_to_it_and_topology_selection():
    keras.utils.set_random_seed(0)
    space = tiny_darts()
    supernet = space.build_supernet(supernet_class=DartsSupernet, seed=0, bn="standard")
    supernet.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(2).normal(size=(16, 8, 8, 3)).astype("float32")
    arch = space.sample(3)
    child = supernet.extract(arch)
    assert count(child) < count(supernet.network)
    with supernet.fixed(arch):
        np.testing.assert_allclose(supernet.predict(x, verbose=0), child.predict(x, verbose=0), atol=1e-5)

    # Topology: every edge into node 4 of the normal cell is decided; two
    # carry 'none' (zeros), so removing them changes nothing and PT must
    # keep the two convolutions.
    for label in space.labels:
        supernet.set_projection(label, "sep_conv_3x3")
    supernet.set_projection("normal_4<-0", "none")
    supernet.set_projection("normal_4<-2", "none")
    logits = supernet.network([tf.constant(x), supernet.mixing_weights()], training=True)
    valid = tf.data.Dataset.from_tensor_slices((x, np.argmax(np.asarray(logits), -1))).batch(16)
    selector = PerturbationSelector(supernet, valid, tune_epochs=0)
    kept, rounds = selector.select_edges("normal:4")
    assert kept == ["normal_4<-1", "normal_4<-3"]
    assert list(rounds[0]) == ["normal_4<-0", "normal_4<-1", "normal_4<-2", "normal_4<-3"]
    assert rounds[0]["normal_4<-0"] == rounds[0]["normal_4<-2"] == -1.0  # ties: the later goes first
    assert "normal_4<-2" not in rounds[1]
    weights = np.asarray(supernet.mixing_weights())
    assert not weights[space.labels.index("normal_4<-0")].any()
    # The groups of a DARTS selection: a normal and a reduce edge per event,
    # then one node of each cell type.
    groups = selector.groups
    assert len(groups) == 14 + 3 and all(len(g) == 2 for g in groups)
    assert {g[0].split("_")[0] for g in groups[:14]} == {"normal"}
    assert sorted(g[0] for g in groups[14:]) == ["normal:3", "normal:4", "normal:5"]


def test_drop_path_drops_whole_samples_and_its_rate_ramps_linearly():
    layer = kerasnas.layers.DropPath(seed=0)
    x = np.ones((64, 2, 2, 3), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), x)  # rate 0
    layer.rate.assign(0.5)
    y = np.asarray(layer(x, training=True))
    per_sample = y.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}  # x / keep * Bernoulli(keep)
    assert all(len(set(row)) == 1 for row in per_sample)  # whole samples
    assert 10 < (per_sample[:, 0] == 0).sum() < 54
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    inputs = keras.Input((2, 2, 3))
    model = keras.Model(inputs, kerasnas.layers.DropPath(name="d")(inputs))
    schedule = kerasnas.callbacks.DropPathSchedule(0.2, epochs=4)
    schedule.set_model(model)
    rates = []
    for epoch in range(4):
        schedule.on_epoch_begin(epoch)
        rates.append(float(model.get_layer("d").rate.numpy()))
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15])


def test_cutout_zeroes_a_clipped_square():
    image = np.ones((32, 32, 3), "float32")
    sizes = set()
    for k in range(20):
        out = np.asarray(kerasnas.data.cutout(image, 16, seed=tf.constant([k, 1])))
        zero = out[:, :, 0] == 0
        rows, cols = np.where(zero)
        assert (out[zero] == 0).all() and (zero == (out == 0).all(-1)).all()
        assert rows.max() - rows.min() + 1 == len(set(rows)) <= 16  # one square
        sizes.add(int(zero.sum()))
    assert 256 in sizes and min(sizes) < 256  # whole, and clipped at a border
    with pytest.raises(ValueError, match="length"):
        kerasnas.data.cutout(image, 0)


@pytest.mark.parametrize("method", ["bias", "dcnas"])
def test_inter_choice_weights_and_dcnas_build_on_the_darts_space(method):
    # The DARTS space names no method: inter-choice biases and DCNAS' local
    # copies come from the supernet's choice factory alone (issue #34). With
    # every bias / every second copy made non-trivial, the extracted child
    # still computes the supernet's path (eager calls: no trace to pay).
    from kerasnas.dcnas import DCNASSupernet
    from kerasnas.layers import BiasChoice, InterChoices, LocalShareChoice

    keras.utils.set_random_seed(0)
    space = tiny_darts()
    rng = np.random.default_rng(1)
    if method == "dcnas":
        supernet = space.build_supernet(supernet_class=DCNASSupernet, seed=0, bn="standard", pool_size=6)
        kind = LocalShareChoice
        supernet.states.assign(rng.integers(2, size=tuple(supernet.states.shape)).astype("int32"))
    else:
        supernet = space.build_supernet(choices=InterChoices("bias"), seed=0, bn="standard")
        kind = BiasChoice
    layers = supernet.choice_layers()
    # Every choice but the first depends on the one before it (bias), or
    # every choice holds copies (DCNAS).
    assert sum(isinstance(l, kind) for l in layers) == len(layers) - (method == "bias")
    for layer in layers:
        if method == "bias" and isinstance(layer, kind):
            layer.bias.assign(rng.normal(scale=0.5, size=tuple(layer.bias.shape)).astype("float32"))
        elif method == "dcnas":
            for option in range(len(layer.candidates)):
                layer.load_copy(option, 1)
                for v in layer.candidates[option].trainable_variables:
                    v.assign(v + rng.normal(scale=0.3, size=tuple(v.shape)).astype("float32"))
                layer.load_copy(option, 0)
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    for seed in (3, 4):
        arch = space.sample(seed)
        child = supernet.extract(arch)
        with supernet.fixed(arch):
            expected = keras.ops.convert_to_numpy(supernet(x, training=False))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(child(x, training=False)), expected, atol=1e-4)
    if method == "dcnas":  # the altered copies were used, not only copy 0
        assert any(supernet.sharing_state(space.sample(s)).any() for s in (3, 4))
