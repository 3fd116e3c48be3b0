"""Inter-choice dependent supernet weights (Laube & Zell): bias and split
weights as choice layers of the core (`kerasnas.layers`)."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.callbacks import EpochCheckpoint
from kerasnas.callbacks import SplitWeights
from kerasnas.layers import BiasChoice
from kerasnas.layers import InterChoices
from kerasnas.layers import SplitChoice
from nas_helpers import compile_sgd, tiny_data, tiny_mobilenet, tiny_space

# Every edge fixed: each step trains this one path.
FIXED = {
    "1<-0": "nor_conv_3x3", "2<-0": "nor_conv_1x1", "2<-1": "nor_conv_3x3",
    "3<-0": "skip_connect", "3<-1": "nor_conv_1x1", "3<-2": "nor_conv_3x3",
}


def build(interchoice=None, seed=1, interchoice_options=None, **options):
    keras.utils.set_random_seed(0)
    choices = None if interchoice is None else InterChoices(interchoice, options=interchoice_options)
    return tiny_space().build_supernet(seed=seed, bn="batch", choices=choices, **options)


def layers_of(supernet, cls):
    return [l for l in supernet.choice_layers() if isinstance(l, cls)]


def numpy(v):
    return keras.ops.convert_to_numpy(v)


def fix_path(supernet, arch):
    supernet.set_mask({label: [option] for label, option in arch.items()})


# === Priors ===
def test_nb201_default_priors_are_the_reference_map():
    space = tiny_space()
    reference = [[], [], [-2], [], [-4], [-4, -3]]  # uninas' NATS demo
    assert space.resolve_priors(None) == space.resolve_priors(reference)
    assert space.resolve_priors(None)["3<-2"] == ("2<-0", "2<-1")
    # MobileNet: the previous layer.
    mobile = tiny_mobilenet()
    assert mobile.resolve_priors(None)["layer2"] == ("layer1",)
    assert mobile.resolve_priors(None)["layer0"] == ()


@pytest.mark.parametrize(
    "priors, message",
    [
        ({"2<-1": ["3<-0"]}, "come before"),
        ({"2<-1": ["2<-1"]}, "come before"),
        ({"2<-1": ["layer0"]}, "labels of this space"),
        ({"layer3": ["1<-0"]}, "unknown labels"),
        ([[], [], [-3], [], [], []], "negative offsets"),
        ([[], []], "one list of offsets per choice"),
    ],
)
def test_bad_priors_are_clear_value_errors(priors, message):
    with pytest.raises(ValueError, match=message):
        tiny_space().build_supernet(choices=InterChoices("bias", priors=priors))


def test_bad_interchoice_options_are_clear_value_errors():
    with pytest.raises(ValueError, match="`mode`.*'split'.*Received: mode='biases'"):
        InterChoices("biases")
    with pytest.raises(ValueError, match=r"`options`. Expected keys among \['bias_updates'\]"):
        InterChoices("bias", options={"slots": "shared"})
    with pytest.raises(ValueError, match="DartsSupernet builds mixed choices"):
        tiny_space().build_supernet(
            supernet_class=kerasnas.darts.DartsSupernet, choices=InterChoices("bias")
        )


# === Bias weights ===
@pytest.mark.parametrize("mode", ["bias", "mul_bias", "bias_sum"])
def test_the_bias_used_is_the_one_the_path_indexes(mode):
    # Edge 3<-2 of NB201 depends on 2<-0 and 2<-1 (5 options each).
    layer = BiasChoice(
        [keras.layers.Identity(name=f"id{k}") for k in range(5)], [str(k) for k in range(5)],
        "3<-2", prior_labels=["2<-0", "2<-1"], prior_sizes=[5, 5], mode=mode,
    )
    layer.build((2, 3, 3, 4))
    table = np.random.default_rng(0).normal(size=tuple(layer.bias.shape)).astype("float32")
    layer.bias.assign(table)
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 4)).astype("float32")
    p1, p2, own = 3, 1, 4
    y = numpy(layer(x, np.int32(own), priors=np.array([p1, p2], "int32")))
    if mode == "bias":
        expected = x + table[(p1 * 5 + p2) * 5 + own]
    elif mode == "mul_bias":
        expected = x * table[(p1 * 5 + p2) * 5 + own]
    else:  # one vector per option of each prior, and of the choice itself
        expected = x + table[p1] + table[5 + p2] + table[10 + own]
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    assert layer.bias.shape == ((125 if mode != "bias_sum" else 15), 4)


@pytest.mark.parametrize("mode", ["mul_bias"])  # additive: the next test
def test_initial_biases_reproduce_spos_bitwise(mode):
    _, _, data = tiny_data(num=32, seed=3)
    runs = {}
    for interchoice in (None, mode):
        supernet = compile_sgd(build(interchoice))
        if interchoice:
            # Frozen at their initial zeros (ones): every op of the bias
            # path runs, and must change nothing, in N steps.
            for layer in layers_of(supernet, BiasChoice):
                layer.bias.trainable = False
        history = supernet.fit(data, epochs=2, verbose=0)
        runs[interchoice] = (supernet, history.history["loss"])
    (spos, loss_spos), (biased, loss_bias) = runs[None], runs[mode]
    assert loss_bias == loss_spos
    biases = {id(l.bias) for l in layers_of(biased, BiasChoice)}
    others = [v for v in biased.variables if id(v) not in biases]
    assert len(others) == len(spos.variables)
    for u, v in zip(others, spos.variables):
        np.testing.assert_array_equal(numpy(u), numpy(v), err_msg=v.path)


def test_the_first_step_with_trainable_biases_equals_spos():
    _, _, data = tiny_data(num=8, seed=3)
    states = []
    for interchoice in (None, "bias"):
        supernet = compile_sgd(build(interchoice))
        supernet.fit(data, epochs=1, verbose=0)
        states.append({v.path: numpy(v) for v in supernet.network.trainable_variables})
    for path, value in states[0].items():
        np.testing.assert_array_equal(states[1][path], value, err_msg=path)
    moved = [p for p, v in states[1].items() if p not in states[0] and np.any(v != 0)]
    assert moved  # the biases got their first gradient


@pytest.mark.parametrize("updates", ["path", "all"])
def test_only_the_paths_bias_entries_move(updates):
    _, _, data = tiny_data(num=24, seed=4)
    supernet = compile_sgd(build("mul_bias", weight_decay=1e-2, interchoice_options={"bias_updates": updates}))
    fix_path(supernet, FIXED)
    layer = next(l for l in layers_of(supernet, BiasChoice) if l.label == "3<-2")
    ops_ = supernet.space.ops
    row = (ops_.index(FIXED["2<-0"]) * 5 + ops_.index(FIXED["2<-1"])) * 5 + ops_.index(FIXED["3<-2"])
    before = numpy(layer.bias)
    supernet.fit(data, epochs=1, verbose=0)  # 3 steps, momentum and decay
    after = numpy(layer.bias)
    changed = np.flatnonzero(np.any(after != before, axis=1))
    if updates == "path":
        assert changed.tolist() == [row]
    else:  # the reference: decay and momentum reach every entry
        assert len(changed) == layer.num_rows


@pytest.mark.parametrize("mode", ["bias", "mul_bias", "bias_sum", "split"])
def test_extracted_child_folds_the_path_and_has_the_plain_childs_variables(mode, tmp_path):
    x, _, data = tiny_data(num=32, seed=5)
    supernet = compile_sgd(build(mode))
    if mode == "split":
        for layer in layers_of(supernet, SplitChoice):
            layer.set_depth(2)
    supernet.fit(data, epochs=2, verbose=0)
    space = supernet.space
    for arch in [space.sample(s) for s in range(3)] + [FIXED]:
        with supernet.fixed(arch):  # eager calls: no predict function traced per child
            expected = numpy(supernet(x, training=False))
        child = supernet.extract(arch)
        np.testing.assert_allclose(numpy(child(x, training=False)), expected, atol=1e-5)
        plain = space.build_network(arch=arch, bn="batch")
        assert sorted((w.path, tuple(w.shape)) for w in child.weights) == sorted(
            (w.path.replace(plain.name, child.name), tuple(w.shape)) for w in plain.weights
        )
        assert not any(isinstance(l, (BiasChoice, SplitChoice)) for l in child._flatten_layers())
    # The folded constants survive the child's `.keras` file.
    child.save(tmp_path / "child.keras")
    reloaded = keras.saving.load_model(tmp_path / "child.keras")
    np.testing.assert_array_equal(numpy(reloaded(x, training=False)), numpy(child(x, training=False)))


def test_one_trace_serves_every_path_of_a_bias_supernet():
    from test_supernet import count_traces

    _, _, data = tiny_data(num=32, seed=6)
    supernet = compile_sgd(build("bias_sum"))
    traces = count_traces(supernet, "train_step")
    supernet.fit(data, epochs=2, verbose=0)
    assert len(traces) == 1


# === Split weights ===
def split_supernet(slots="shared", seed=1, untrained="last_trained"):
    supernet = compile_sgd(build("split", seed=seed, interchoice_options={"slots": slots, "untrained": untrained}))
    for layer in layers_of(supernet, SplitChoice):
        layer.set_depth(1)
    return supernet


def copy_of(supernet, layer, arch):
    """The weights of the 2<-1 edge's selected candidate under `arch`'s key."""
    labels = supernet.space.labels
    indices = dict(zip(labels, supernet.space.encode(arch)))
    layer.load_path(indices[layer.label], [indices[p] for p in layer.prior_labels])
    option = layer.options.index(arch[layer.label])
    return [numpy(v) for v in layer.candidates[option].weights]


@pytest.mark.parametrize("untrained", ["last_trained", "split_state"])
def test_split_copies_diverge_only_for_their_key(untrained):
    _, _, data = tiny_data(num=8, seed=7)
    supernet = split_supernet(untrained=untrained)
    layer = next(l for l in layers_of(supernet, SplitChoice) if l.label == "2<-1")
    a = dict(FIXED, **{"1<-0": "nor_conv_3x3"})
    b = dict(FIXED, **{"1<-0": "nor_conv_1x1"})
    initial = copy_of(supernet, layer, a)
    fix_path(supernet, a)
    supernet.fit(data, epochs=1, verbose=0)
    copy_a = copy_of(supernet, layer, a)
    assert any(np.any(u != v) for u, v in zip(copy_a, initial))
    # An unseen key starts from the most recently used weights: a's.
    for u, v in zip(copy_of(supernet, layer, b), copy_a):
        np.testing.assert_array_equal(u, v)
    fix_path(supernet, b)
    supernet.fit(data, epochs=1, verbose=0)
    copy_b = copy_of(supernet, layer, b)
    assert any(np.any(u != v) for u, v in zip(copy_b, copy_a))
    # Training under key b left key a's copy untouched, and b's is kept.
    for u, v in zip(copy_of(supernet, layer, a), copy_a):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(copy_of(supernet, layer, b), copy_b):
        np.testing.assert_array_equal(u, v)
    option = layer.options.index(FIXED["2<-1"])
    ops_ = supernet.space.ops
    seen = {ops_.index(a["1<-0"]), ops_.index(b["1<-0"])}  # a's, b's
    if untrained == "split_state":  # and the copy held at the split, as option 0's
        seen.add(0)
    assert set(np.flatnonzero(numpy(layer.seen)[option]).tolist()) == seen


def test_a_key_no_step_trained_gives_the_copy_trained_last_in_any_order():
    # Issue #35: NB201's 'none' prior when 'none' is not trained. uninas
    # falls back to the weights trained last; kerasnas' earlier
    # `split_state` kept the copy of the split for option 0 ('none').
    _, _, data = tiny_data(num=8, seed=7)
    a = dict(FIXED, **{"1<-0": "nor_conv_3x3"})
    untrained = dict(FIXED, **{"1<-0": "none"})  # option 0: no step trains it
    other = dict(FIXED, **{"1<-0": "avg_pool_3x3"})
    copies = {}
    for mode in ("last_trained", "split_state"):
        supernet = split_supernet(untrained=mode)
        layer = next(l for l in layers_of(supernet, SplitChoice) if l.label == "2<-1")
        at_split = copy_of(supernet, layer, a)
        fix_path(supernet, a)
        supernet.fit(data, epochs=1, verbose=0)
        seen = numpy(layer.seen).copy()
        copies[mode] = (at_split, copy_of(supernet, layer, a), copy_of(supernet, layer, untrained),
                        copy_of(supernet, layer, other), copy_of(supernet, layer, untrained))
        if mode == "last_trained":  # evaluating leaves them untrained
            np.testing.assert_array_equal(numpy(layer.seen), seen)
    at_split, trained, none_first, other_copy, none_again = copies["last_trained"]
    for u, v, w, x in zip(trained, none_first, other_copy, none_again):
        np.testing.assert_array_equal(v, u)
        np.testing.assert_array_equal(w, u)
        np.testing.assert_array_equal(x, u)  # the same after another unused key
    at_split, trained, none_first, _, none_again = copies["split_state"]
    for u, v, x in zip(at_split, none_first, none_again):
        np.testing.assert_array_equal(v, u)  # frozen at the split
        np.testing.assert_array_equal(x, u)
    assert any(np.any(u != v) for u, v in zip(trained, at_split))


def momentum_of(supernet, layer, option):
    variable = layer.candidates[option].trainable_variables[0]
    slots = kerasnas.supernet.supernet._optimizer_slots(supernet.optimizer, [variable])
    (slot,) = slots[supernet.optimizer._var_key(variable)]
    return numpy(slot)


def test_shared_and_per_copy_optimizer_slots():
    # Steps under keys a, b, a. Both runs are identical through the second
    # step; at the third, the per-copy run's momentum restarts from a's
    # (m_a), the shared run's from b's step (m_b): the difference after
    # SGD's `m = 0.9 m - lr g` (same g: same weights) is 0.9 (m_b - m_a).
    _, _, data = tiny_data(num=8, seed=8)
    a = dict(FIXED, **{"1<-0": "nor_conv_3x3"})
    b = dict(FIXED, **{"1<-0": "nor_conv_1x1"})
    results = {}
    for slots in ("shared", "per_copy"):
        supernet = split_supernet(slots)
        layer = next(l for l in layers_of(supernet, SplitChoice) if l.label == "2<-1")
        option = layer.options.index(FIXED["2<-1"])
        moments = []
        for arch in (a, b, a):
            fix_path(supernet, arch)
            supernet.fit(data, epochs=1, verbose=0)
            moments.append(momentum_of(supernet, layer, option))
        results[slots] = moments
        if slots == "per_copy":
            assert len(supernet.training_state_variables()) > 0
        else:
            assert supernet.training_state_variables() == []
    shared, per_copy = results["shared"], results["per_copy"]
    for k in range(2):
        np.testing.assert_array_equal(shared[k], per_copy[k])
    np.testing.assert_allclose(shared[2] - per_copy[2], 0.9 * (shared[1] - shared[0]), atol=1e-6)
    assert np.abs(shared[1] - shared[0]).max() > 1e-4  # the test is void otherwise


def test_split_milestones_set_the_depth_and_bad_milestones_are_refused():
    _, _, data = tiny_data(num=16, seed=9)
    supernet = compile_sgd(build("split"))
    depths = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: depths.append(int(numpy(layers_of(supernet, SplitChoice)[-1].depth)))
    )
    supernet.fit(data, epochs=4, verbose=0, callbacks=[SplitWeights([1, 3]), record])
    assert depths == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="within training"):
        supernet.fit(data, epochs=3, verbose=0, callbacks=[SplitWeights([3])])
    with pytest.raises(ValueError, match="milestones"):
        SplitWeights([0])
    with pytest.raises(ValueError, match="no SplitChoice"):
        compile_sgd(build("bias")).fit(data, epochs=2, verbose=0, callbacks=[SplitWeights([1])])


def test_split_training_resumes_bit_identically(tmp_path):
    _, _, data = tiny_data(num=16, seed=10)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    def run(directory, kill=False, initial=False):
        supernet = compile_sgd(build("split", interchoice_options={"slots": "per_copy"}))
        checkpoint = EpochCheckpoint(directory)
        start = checkpoint.restore(supernet) if initial else 0
        supernet.fit(
            data, epochs=3, initial_epoch=start, verbose=0,
            callbacks=[SplitWeights([1, 2]), checkpoint] + ([Kill()] if kill else []),
        )
        return supernet

    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "part", kill=True)
    resumed = run(tmp_path / "part", initial=True)
    for u, v in zip(whole.variables, resumed.variables):
        np.testing.assert_array_equal(numpy(u), numpy(v), err_msg=u.path)
    for u, v in zip(whole.training_state_variables(), resumed.training_state_variables()):
        np.testing.assert_array_equal(numpy(u), numpy(v))
    layer = layers_of(whole, SplitChoice)[0]
    assert int(numpy(layer.depth)) == min(2, layer.max_key_depth) and int(numpy(layer.seen).sum()) >= 1
