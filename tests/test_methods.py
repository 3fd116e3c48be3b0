"""Method modules: the registry and configs, how parts combine, that
`Method.train` is exactly the hand-wired training, budget scaling, and the
errors on inputs a method cannot use."""

import keras
import numpy as np
import pytest

import kerasnas
from kerasnas import methods
from nas_helpers import tiny_data


def conv(filters, kernel_size):
    return lambda: keras.Sequential([
        keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False),
        kerasnas.layers.BatchNorm(), keras.layers.ReLU()])


def two_blocks(b, images):
    x = keras.layers.Conv2D(4, 3, padding="same")(images)
    for i in range(2):
        x = b.choice(f"block{i}", {"conv1": conv(4, 1), "conv3": conv(4, 3),
                                   "skip": lambda: keras.layers.Identity()}, x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(5)(x)


def space():
    return kerasnas.spaces.from_function(two_blocks, input_shape=(8, 8, 3))


def sgd():
    return keras.optimizers.SGD(0.05, momentum=0.9)


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_every_registered_method_round_trips_through_its_config():
    assert {"spos", "pa", "da", "pada", "interchoice-bias", "interchoice-split", "darts", "snas",
            "dcnas", "gmnas"} <= set(methods.names())
    for name in methods.names():
        method = methods.get(name)
        assert methods.get(method.get_config()) == method
    combined = methods.get("pa+interchoice-split")
    assert combined.name == "pa+interchoice-split"
    assert methods.get(combined.get_config()) == combined
    assert methods.get("interchoice-split").mode == "split"
    assert methods.get("dcnas", copies=3).get_config()["options"]["copies"] == 3
    assert methods.get("snas").supernet_options() == {"relaxation": "snas"}


@pytest.mark.parametrize("identifier, message", [
    ("enas", r"identifier.*'spos'.*Received: 'enas'"),
    ("pa+pada", "'pa' and 'pa' both set the path sampler"),
    ("darts+dcnas", "'darts' trains alone"),
    ("pa+darts", "'darts' trains alone"),
    ("interchoice-bias+interchoice-split", "both set the choices"),
    ("spos+gmnas", "'gmnas' trains alone"),
    ("pada+dcnas", "'dcnas' trains alone"),
])
def test_unknown_names_and_methods_on_one_axis_are_refused(identifier, message):
    with pytest.raises(ValueError, match=message):
        methods.get(identifier)


def test_methods_on_different_axes_combine_their_parts():
    combined = methods.PA() + methods.InterChoice("split", milestones=[1]) + methods.DA()
    assert [m.name for m in combined.parts] == ["pa", "interchoice-split", "da"]
    assert isinstance(combined.choices(), kerasnas.layers.InterChoices)
    assert isinstance(combined.path_sampler(space()), kerasnas.sampling.ImportancePathSampler)
    assert combined.step_cost == pytest.approx(1.5)  # 1 + 0.1 + 0.3 + 0.1


def _weights(model):
    return [np.array(v) for v in model.weights]


def test_train_is_exactly_the_hand_wired_pada_training():
    """`PADA().train` = the path and data samplers and their callbacks wired
    by hand, bit for bit."""
    x, y, _ = tiny_data(num=32, seed=2)
    s = space()
    keras.utils.set_random_seed(0)  # the same initial weights for both
    trained = methods.PADA(path={"delta": 0.5}, data={"tau": 0.5}).train(
        s, (x, y), 2, optimizer=sgd(), batch_size=8, seed=0)

    keras.utils.set_random_seed(0)
    path = kerasnas.sampling.ImportancePathSampler(shared=True, name="path_sampler")
    by_hand = s.build_supernet(seed=0, path_sampler=path)
    by_hand.compile(optimizer=sgd(), loss=LOSS)
    data = kerasnas.sampling.ImportanceDataSampler((x, y), 8, seed=0)
    by_hand.fit(data.dataset(), epochs=2, verbose=0, shuffle=False,
                callbacks=[data.callback(tau=0.5), path.callback(delta=0.5)])
    assert not np.allclose(path.probabilities.numpy(), 1 / 3)
    for a, b in zip(_weights(trained), _weights(by_hand)):
        np.testing.assert_array_equal(a, b)


def test_pa_with_interchoice_bias_trains_both_parts_and_extracts_the_path():
    x, y, _ = tiny_data(num=32, seed=3)
    s = space()
    supernet = (methods.PA(delta=0.5) + methods.InterChoice("bias")).train(
        s, (x, y), 2, optimizer=sgd(), batch_size=8, seed=0)
    assert isinstance(supernet.path_sampler, kerasnas.sampling.ImportancePathSampler)
    assert not np.allclose(supernet.path_sampler.probabilities.numpy(), 1 / 3)  # PA moved them
    biased = [l for l in supernet._flatten_layers() if isinstance(l, kerasnas.layers.BiasChoice)]
    assert biased and any(np.abs(np.array(v)).max() > 0 for l in biased for v in l.weights)
    arch = {"block0": "conv3", "block1": "conv1"}
    with supernet.fixed(arch):
        expected = keras.ops.convert_to_numpy(supernet(x, training=False))
    child = supernet.extract(arch)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(child(x, training=False)), expected, atol=1e-6)


def test_budgets_scale_to_the_reference_schedules():
    gm = methods.GMNAS()
    assert gm.scale(150, None)[1] == 55 and gm.scale(150, None)[0].split_epochs == [14, 28]
    for budget in range(7, 200):
        scaled, epochs = gm.scale(budget, None)
        assert scaled.node_epochs(epochs) == budget  # equal optimizer steps to a one-shot supernet
    assert methods.GMNAS(split_epochs=[2, 4]).node_epochs(6) == 2 + 2 * 2 + 4 * 2
    from kerasnas.methods.dcnas import dcnas_schedule

    assert dcnas_schedule(150) == (10, 8, 44)
    assert methods.SPOS().scale(40, None) == (methods.SPOS(), 40)
    split = methods.InterChoice("split").callbacks(None, 100, None, 0)[0]
    assert split.milestones == [40]  # nb201_interchoice: 40 of 100
    assert methods.GMNAS().splits(60) == [15, 30]


def test_inputs_a_method_cannot_use_are_value_errors(tmp_path):
    x, y, dataset = tiny_data(num=16, seed=0)
    s = space()
    with pytest.raises(ValueError, match=r"`data`.*arrays \(x, y\)"):  # DA draws examples itself
        methods.DA().train(s, dataset, 1, optimizer=sgd())
    with pytest.raises(ValueError, match="`arch_data`.*darts"):
        methods.DARTS().train(s, dataset, 1, optimizer=sgd())
    with pytest.raises(ValueError, match="`arch_data`.*Expected None"):
        methods.SPOS().train(s, dataset, 1, optimizer=sgd(), arch_data=dataset)
    with pytest.raises(ValueError, match="`batch_size`.*Expected None with a dataset"):
        methods.SPOS().train(s, dataset, 1, optimizer=sgd(), batch_size=8)
    with pytest.raises(ValueError, match="`batch_size`.*positive int"):
        methods.SPOS().train(s, (x, y), 1, optimizer=sgd())
    with pytest.raises(ValueError, match="`choices`.*from the method 'interchoice-bias'"):
        methods.InterChoice("bias").build(s, choices=kerasnas.layers.ChoiceFactory())
    with pytest.raises(ValueError, match="`directory`"):
        methods.GMNAS().train(s, dataset, 3, optimizer=sgd())
    with pytest.raises(ValueError, match="`epochs`.*at least 2 for split"):
        methods.InterChoice("split").train(s, dataset, 1, optimizer=sgd())
    with pytest.raises(ValueError, match="`milestones`.*mode='split'"):
        methods.InterChoice("bias", milestones=[3])
    with pytest.raises(ValueError, match="`relaxationn`"):
        methods.DARTS(relaxationn="snas")
