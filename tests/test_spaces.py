import json
import itertools

import numpy as np
import pytest

import kerasnas
from kerasnas.spaces import NB201_EDGES

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
FREE_OPS = ("none", "skip_connect", "avg_pool_3x3")


def arch_with(n3, n1, seed=0):
    """An architecture with n3 conv3x3 and n1 conv1x1 edges, the rest free ops."""
    rng = np.random.default_rng(seed + 10 * n3 + n1)
    ops = ["nor_conv_3x3"] * n3 + ["nor_conv_1x1"] * n1
    ops += [FREE_OPS[i] for i in rng.integers(0, 3, 6 - n3 - n1)]
    rng.shuffle(ops)
    return dict(zip(NB201_EDGES, ops))


COMBOS = [(n3, n1) for n3 in range(7) for n1 in range(7 - n3)]
EXTRA = {10: 0.0, 100: 0.00585, 120: 0.00715}


def closed_form_params(n3, n1, classes):
    return round((0.073306 + 0.243040 * n3 + 0.028 * n1 + EXTRA[classes]) * 1e6)


def test_choices_and_codecs():
    space = kerasnas.spaces.NasBench201()
    assert list(space.choices) == list(NB201_EDGES)
    assert space.choices["1<-0"] == (
        "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
    )
    assert len(space) == 15625
    archs = list(space.enumerate())
    assert len(archs) == 15625
    strings = {space.to_string(a) for a in archs}
    assert len(strings) == 15625
    for arch in archs[::97]:
        assert space.from_string(space.to_string(arch)) == arch
        assert space.decode(space.encode(arch)) == arch
    assert space.to_string(space.from_string(RESNET)) == RESNET
    assert space.encode(space.from_string(RESNET)) == [3, 0, 3, 1, 0, 1]
    a, b = space.sample(seed=3), space.sample(seed=3)
    assert a == b and space.validate(a) == a
    json.dumps(a)  # plain and serializable


def test_every_string_in_the_ground_truth_parses(shared_data):
    space = kerasnas.spaces.NasBench201()
    table = json.loads((shared_data / "nb201" / "nasbench201_cifar10.json").read_text())
    assert len(table) == 15625
    assert {space.to_string(space.from_string(s)) for s in table} == set(table)


def test_restricted_ops():
    space = kerasnas.spaces.NasBench201(ops=("nor_conv_1x1", "nor_conv_3x3"))
    assert len(space) == 2**6
    with pytest.raises(ValueError, match="at label '1<-0'.*nor_conv_1x1"):
        space.validate(dict.fromkeys(NB201_EDGES, "skip_connect"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ops=("nor_conv_3x3", "conv_9x9")), "argument `ops`"),
        (dict(input_shape=(30, 32, 3)), "argument `input_shape`"),
        (dict(channels=0), "argument `channels`"),
        (dict(num_classes=2.5), "argument `num_classes`"),
    ],
)
def test_bad_space_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerasnas.spaces.NasBench201(**kwargs)


def test_bad_architectures():
    space = kerasnas.spaces.NasBench201()
    arch = space.from_string(RESNET)
    with pytest.raises(ValueError, match=r"missing: \['3<-2'\]"):
        space.validate({k: v for k, v in arch.items() if k != "3<-2"})
    with pytest.raises(ValueError, match=r"unknown: \['4<-0'\]"):
        space.validate({**arch, "4<-0": "none"})
    with pytest.raises(ValueError, match=r"label '2<-1'.*Received: 2<-1='conv'"):
        space.validate({**arch, "2<-1": "conv"})
    for bad in ["", "|nor_conv_3x3~0|", RESNET.replace("~1|+", "~2|+"), RESNET[:-1], 42]:
        with pytest.raises(ValueError, match="argument `string`"):
            space.from_string(bad)
    with pytest.raises(ValueError, match="argument `indices`"):
        space.decode([0, 1, 2])
    with pytest.raises(ValueError, match="argument `indices`"):
        space.decode([0, 1, 2, 3, 4, 5])


@pytest.mark.parametrize("classes", [10, 100, 120])
def test_params_match_nas_bench_201_closed_form(classes):
    shape = (16, 16, 3) if classes == 120 else (32, 32, 3)
    space = kerasnas.spaces.NasBench201(num_classes=classes, input_shape=shape)
    for n3, n1 in COMBOS:
        assert space.params(arch_with(n3, n1)) == closed_form_params(n3, n1, classes)


@pytest.mark.parametrize("classes", [10, 100, 120])
def test_built_child_has_the_benchmark_parameter_count(classes):
    shape = (16, 16, 3) if classes == 120 else (32, 32, 3)
    space = kerasnas.spaces.NasBench201(num_classes=classes, input_shape=shape)
    combos = COMBOS if classes == 10 else COMBOS[::4]
    for n3, n1 in combos:
        child = space.build_child(arch_with(n3, n1))
        count = sum(int(np.prod(w.shape)) for w in child.trainable_weights)
        assert count == closed_form_params(n3, n1, classes), (n3, n1)


def test_flops_match_closed_form():
    space = kerasnas.spaces.NasBench201()
    for n3, n1 in COMBOS:
        expected = 7.78305 + 35.38944 * n3 + 3.93216 * n1
        assert abs(space.flops(arch_with(n3, n1)) / 1e6 - expected) < 5e-6


def test_supernet_bn_flavours_and_child_bias():
    space = kerasnas.spaces.NasBench201(channels=4, cells_per_stage=1, input_shape=(8, 8, 3))
    arch = space.from_string(RESNET)
    infer = space.build_child(arch)
    batch = space.build_child(arch, bn="batch")
    conv = lambda m: m.get_layer("cell0_0_e10_nor_conv_3x3")  # noqa: E731
    assert not conv(infer).conv.use_bias and conv(infer).bn.affine
    assert conv(batch).conv.use_bias and not conv(batch).bn.affine
    assert not conv(batch).bn.track_running_stats
    assert space.params(arch, bn="batch") == sum(
        int(np.prod(w.shape)) for w in batch.trainable_weights
    )
    with pytest.raises(ValueError, match="argument `bn`"):
        space.build_child(arch, bn="weird")


def test_space_config_round_trip():
    space = kerasnas.spaces.NasBench201(num_classes=7, channels=8, ops=("none", "nor_conv_3x3"))
    assert kerasnas.spaces.NasBench201.from_config(space.get_config()) == space
    assert len(list(itertools.islice(space.enumerate(), 5))) == 5


def test_nb201_equivalence_classes_match_the_known_counts():
    # NAS-Bench-201 reports 6,466 unique cells of 15,625 (xautodl's
    # to_unique_str with zeros considered); ignoring ops on edges that
    # cannot reach the output alone leaves 12,205.
    space = kerasnas.spaces.NasBench201()
    archs = list(space.enumerate())
    assert len({space.equivalence_key(a) for a in archs}) == 12205
    assert len({space.equivalence_key(a, "isomorphic") for a in archs}) == 6466
    resnet = space.from_string("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
    assert space.equivalence_key(resnet) == tuple(resnet.values())  # every edge live
    # A space without 'none' has no dead edge: classes are the architectures.
    conv = kerasnas.spaces.NasBench201(ops=("nor_conv_1x1", "nor_conv_3x3"))
    assert len({conv.equivalence_key(a) for a in conv.enumerate()}) == 64


def test_an_option_no_space_builds_is_named_not_passed_to_keras():
    # Issue #34: a missing hook surfaced as Keras' "Unrecognized keyword
    # arguments passed to Supernet: {'interchoice': 'bias'}".
    space = kerasnas.spaces.Darts(channels=4, layers=3)
    with pytest.raises(ValueError, match=r"argument `interchoice`. Expected options of "
                                         r"Darts.build_network \(\[.*'dense_choices'.*\]\) or of Supernet"):
        space.build_supernet(interchoice="bias")


# === Methods plug into every space through the choice factory ===
import keras  # noqa: E402


@keras.saving.register_keras_serializable(package="kerasnas_tests")
class _Doubled(kerasnas.layers.Choice):
    """A new kind of choice, as a sixth method would write it."""

    def call(self, inputs, index, training=None):
        return 2.0 * super().call(inputs, index, training=training)


@keras.saving.register_keras_serializable(package="kerasnas_tests")
class _DoubledChoices(kerasnas.layers.ChoiceFactory):
    def make(self, candidates, options, label, *, name, dense, space):
        return _Doubled(candidates, options=options, label=label, dense=dense, name=name)


def _own_space(b, images):
    x = keras.layers.Conv2D(4, 3, padding="same")(images)
    x = b.choice("block", {"conv": lambda: keras.layers.Conv2D(4, 3, padding="same"),
                           "skip": lambda: keras.layers.Identity()}, x)
    return keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))


def _space_of_kind(kind):
    """A tiny space of each kind: NB201, MobileNet, DARTS and a function space."""
    from nas_helpers import tiny_mobilenet, tiny_space

    return {
        "nb201": lambda: tiny_space(),
        "mobilenet": lambda: tiny_mobilenet(),
        "darts": lambda: kerasnas.spaces.Darts(num_classes=5, channels=4, layers=3,
                                               input_shape=(8, 8, 3), op_set="s3"),
        "function": lambda: kerasnas.spaces.from_function(_own_space, input_shape=(8, 8, 3)),
    }[kind]()


@pytest.mark.parametrize("kind", ["nb201", "mobilenet", "darts", "function"])
def test_a_new_choice_factory_builds_every_space_without_editing_it(kind, tmp_path):
    # Issue #34: adding a method needs no edit in kerasnas/spaces. A factory
    # written here (outside the library) reaches every choice point of every
    # built-in space and of a user's space, survives `.keras`, and leaves the
    # children plain.
    space = _space_of_kind(kind)
    plain = space.build_supernet(seed=0)
    doubled = space.build_supernet(seed=0, choices=_DoubledChoices())
    assert len(doubled.choice_layers()) == len(plain.choice_layers()) > 0
    assert all(type(l) is _Doubled for l in doubled.choice_layers())
    assert {type(l) for l in plain.choice_layers()} == {kerasnas.layers.Choice}
    arch = space.sample(1)
    child = doubled.extract(arch)
    assert not any(isinstance(l, kerasnas.layers.Choice) for l in child._flatten_layers())
    if kind == "function":  # cheap enough to round-trip here
        path = str(tmp_path / "doubled.keras")
        doubled.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.choices == _DoubledChoices()
        assert all(type(l) is _Doubled for l in loaded.choice_layers())
        x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
        with doubled.fixed(arch), loaded.fixed(arch):
            np.testing.assert_array_equal(doubled.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_a_supernet_saved_before_choice_factories_loads_with_its_method():
    # Files saved when the spaces' builders took the methods' options:
    # `network_options` held `interchoice` / `local_copies` / `choice_type`.
    from nas_helpers import tiny_space

    supernet = tiny_space().build_supernet(seed=0, choices=kerasnas.layers.InterChoices("bias"))
    config = supernet.get_config()
    old = {k: v for k, v in config.items() if k != "choices"}
    old["network_options"] = dict(config["network_options"], interchoice="bias",
                                  interchoice_options={"bias_updates": "all"}, priors=None)
    loaded = kerasnas.Supernet.from_config(old)
    assert loaded.choices == kerasnas.layers.InterChoices("bias", options={"bias_updates": "all"})
    assert "interchoice" not in loaded.network_options
    assert [type(l) for l in loaded.choice_layers()] == [type(l) for l in supernet.choice_layers()]
    old["network_options"] = dict(config["network_options"], choice_type="mixed")
    darts = kerasnas.darts.DartsSupernet.from_config(old)
    assert darts.choices == kerasnas.layers.MixedChoices()


@pytest.mark.parametrize("kind", ["nb201", "mobilenet", "darts", "function"])
def test_every_space_names_its_architectures_by_a_string_that_parses_back(kind):
    # One codec on the base class (JSON; NAS-Bench-201 its benchmark's
    # string): result files, the command line's --arch and messages use it.
    space = _space_of_kind(kind)
    archs = [space.sample(seed) for seed in range(6)]
    for arch in archs:
        assert space.from_string(space.to_string(arch)) == arch
        assert kerasnas.evaluation.ranking.parse_arch(space, space.to_string(arch)) == arch
    assert len({space.to_string(a) for a in archs}) == len({json.dumps(a, sort_keys=True) for a in archs})
    if kind == "nb201":
        assert space.to_string(archs[0]).startswith("|")
    else:
        assert json.loads(space.to_string(archs[0])) == archs[0]
    with pytest.raises(ValueError, match="`string`"):
        space.from_string("not an architecture")
    wrong = dict(archs[0], **{space.labels[0]: "no_such_option"})
    with pytest.raises(ValueError, match="`arch`"):
        space.from_string(json.dumps(wrong)) if kind != "nb201" else space.validate(wrong)


def test_flops_counted_on_the_built_child_equal_the_closed_forms():
    # `count_flops` (the default of every space without a closed form) on
    # children of the two spaces that have one: NB201 (tiny and the
    # benchmark's C=16, N=5) and MobileNet.
    from nas_helpers import tiny_mobilenet, tiny_space

    for space in (tiny_space(), kerasnas.spaces.NasBench201(), tiny_mobilenet()):
        for seed in range(3):
            arch = space.sample(seed)
            child = space.build_network(arch=arch)
            assert kerasnas.spaces.count_flops(child) == space.flops(arch) > 0
    transposed = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2DTranspose(2, 3)])
    with pytest.raises(ValueError, match="`model`.*Conv2DTranspose"):
        kerasnas.spaces.count_flops(transposed)
