import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from nas_helpers import compile_sgd, tiny_data, tiny_space

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


class PathRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.paths = []

    def on_train_batch_end(self, batch, logs=None):
        self.paths.append(tuple(keras.ops.convert_to_numpy(self.model.active_path)))


def count_traces(model, method):
    calls = []
    original = getattr(model, method)

    def wrapper(data):
        calls.append(1)
        return original(data)

    setattr(model, method, wrapper)
    return calls


def snapshot(model):
    state = {id(v): np.array(v.numpy()) for v in model.variables}
    state.update({id(v): np.array(v.numpy()) for v in model.optimizer.variables})
    return state


def test_one_trace_for_a_whole_fit_and_for_every_architecture():
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0))
    _, _, data = tiny_data()
    traces = count_traces(supernet, "train_step")
    recorder = PathRecorder()
    supernet.fit(data.repeat(), epochs=3, steps_per_epoch=4, verbose=0, callbacks=[recorder])
    assert len(traces) == 1
    assert len(set(recorder.paths)) > 6  # the path really changes per step
    evals = count_traces(supernet, "test_step")
    for seed in range(4):
        supernet.evaluate_arch(space.sample(seed), data)
    assert len(evals) == 1


def test_unsampled_candidates_are_left_exactly_unchanged():
    space = tiny_space()
    supernet = space.build_supernet(seed=1, weight_decay=1e-2, clip_norm=5.0, bn="standard")
    compile_sgd(supernet, momentum=0.9)
    _, _, data = tiny_data()
    supernet.fit(data.repeat(), epochs=1, steps_per_epoch=6, verbose=0)
    before = snapshot(supernet)
    supernet.fit(data.take(1), epochs=1, verbose=0)
    path = supernet.get_path()
    slots = kerasnas.supernet.supernet._optimizer_slots(supernet.optimizer, supernet.trainable_variables)
    checked_moving = 0
    for variable in supernet.trainable_variables:
        owner = supernet.candidate_owner(variable)
        state = [variable] + slots[supernet.optimizer._var_key(variable)]
        if owner is None:
            continue
        label = space.labels[owner[0]]
        option = space.choices[label][owner[1]]
        changed = [not np.array_equal(before[id(v)], v.numpy()) for v in state]
        if path[label] == option:
            assert all(changed), variable.path
        else:
            assert not any(changed), variable.path
            checked_moving += int(np.any(before[id(state[1])] != 0))
    # Unsampled candidates with non-zero momentum (which a plain update would
    # have moved) were among those checked.
    assert checked_moving > 0


def test_clipping_and_coupled_weight_decay_follow_the_reference():
    space = tiny_space()
    x, y, _ = tiny_data(num=8)
    lr, wd, clip = 0.1, 0.05, 0.01
    supernet = space.build_supernet(seed=0, weight_decay=wd, clip_norm=clip)
    compile_sgd(supernet, learning_rate=lr, momentum=0.9)
    arch = space.from_string(RESNET)
    supernet.set_mask({k: [v] for k, v in arch.items()})
    supernet.set_path(arch)
    variables = supernet.trainable_variables
    with tf.GradientTape() as tape:
        logits = supernet(x, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    grads = tape.gradient(loss, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    norm = float(tf.linalg.global_norm(grads))
    assert norm > clip  # clipping is active
    scale = clip / (norm + 1e-6)
    expected = [v.numpy() - lr * (scale * g.numpy() + wd * v.numpy()) for g, v in zip(grads, variables)]
    sampled = [supernet.candidate_owner(v) is None or
               space.choices[space.labels[supernet.candidate_owner(v)[0]]][supernet.candidate_owner(v)[1]]
               == arch[space.labels[supernet.candidate_owner(v)[0]]] for v in variables]
    old = [v.numpy() for v in variables]
    supernet.fit(tf.data.Dataset.from_tensors((x, y)), epochs=1, verbose=0)
    for v, e, o, s in zip(variables, expected, old, sampled):
        np.testing.assert_allclose(v.numpy(), e if s else o, rtol=1e-5, atol=1e-6)


def test_mask_restricts_sampling():
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0))
    supernet.set_mask({"1<-0": ["nor_conv_3x3"], "3<-2": ["none", "skip_connect"]})
    assert supernet.get_mask()["3<-2"] == ["none", "skip_connect"]
    _, _, data = tiny_data()
    recorder = PathRecorder()
    supernet.fit(data.repeat(), epochs=1, steps_per_epoch=12, verbose=0, callbacks=[recorder])
    draws = np.array(recorder.paths)
    assert np.all(draws[:, 0] == 3)
    assert set(draws[:, 5]) <= {0, 1}
    assert len(set(draws[:, 1])) > 2
    draws = np.array([
        keras.ops.convert_to_numpy(supernet.path_sampler.sample(supernet.option_mask, supernet.seed_generator))
        for _ in range(300)
    ])
    assert set(draws[:, 5]) == {0, 1} and np.all(draws[:, 0] == 3)
    counts = np.bincount(draws[:, 2], minlength=5)
    assert counts.min() > 30  # uniform over the 5 allowed options
    with pytest.raises(ValueError, match="argument `allowed` at label '1<-0'"):
        supernet.set_mask({"1<-0": ["conv"]})
    with pytest.raises(ValueError, match="Expected labels among"):
        supernet.set_mask({"9<-0": ["none"]})
    supernet.set_mask(None)
    assert supernet.get_mask() == {k: list(v) for k, v in space.choices.items()}


@pytest.mark.parametrize("bn", ["standard", "search", "batch"])
def test_extracted_child_equals_supernet(bn):
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn=bn))
    x, _, data = tiny_data()
    supernet.fit(data, epochs=1, verbose=0)  # moves weights and BN statistics
    for seed in range(3):
        arch = space.sample(seed)
        child = supernet.extract(arch)
        supernet.set_path(arch)  # eager calls: no predict function traced per child
        expected = keras.ops.convert_to_numpy(supernet(x, training=False))
        got = keras.ops.convert_to_numpy(child(x, training=False))
        assert np.abs(expected - got).max() < 1e-5
        assert len(child.trainable_weights) < len(supernet.trainable_weights)


def test_bn_recalibration_and_restore():
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn="standard"))
    x, y, data = tiny_data(num=32, batch_size=8)
    supernet.fit(data, epochs=1, verbose=0)
    arch = space.from_string(RESNET)
    stem = supernet.network.get_layer("stem_bn")
    before = [v.numpy().copy() for v in supernet._bn_statistics()]
    plain = supernet.evaluate_arch(arch, data)
    calibrated = supernet.evaluate_arch(arch, data, bn_calibration_data=data, bn_calibration_steps=4)
    after = [v.numpy() for v in supernet._bn_statistics()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # restored
    assert plain["loss"] != calibrated["loss"]
    # After calibration the stem BN holds the plain mean of the 4 batch moments.
    supernet.set_path(arch)
    supernet.calibrate_bn(data, 4)
    conv = supernet.network.get_layer("stem_conv")
    feats = [conv(xb).numpy() for xb, _ in data]
    means = [f.mean(axis=(0, 1, 2)) for f in feats]
    variances = [f.var(axis=(0, 1, 2)) * f[..., 0].size / (f[..., 0].size - 1) for f in feats]
    np.testing.assert_allclose(stem.moving_mean.numpy(), np.mean(means, 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stem.moving_variance.numpy(), np.mean(variances, 0), rtol=1e-4, atol=1e-6)
    # An extracted, recalibrated child reproduces the calibrated evaluation.
    child = supernet.extract(arch, bn_calibration_data=data, bn_calibration_steps=4)
    child.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    child_metrics = child.evaluate(data, return_dict=True, verbose=0)
    assert abs(child_metrics["loss"] - calibrated["loss"]) < 1e-4
    with pytest.raises(ValueError, match="bn_calibration_data"):
        supernet.evaluate_arch(arch, data, bn_calibration_steps=2)


def test_extract_leaves_the_supernet_exactly_as_it_was():
    # Issue #34: extract recalibrated the path's BN statistics in place and
    # never restored them (78 moving statistics moved on a C=8 supernet).
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn="standard"))
    x, _, data = tiny_data(num=32, batch_size=8)
    supernet.fit(data, epochs=1, verbose=0)
    before = snapshot(supernet)
    shifted = data.map(lambda xb, yb: (xb * 3.0 + 1.0, yb))
    for arch in (space.from_string(RESNET), space.sample(4)):
        child = supernet.extract(arch, bn_calibration_data=shifted, bn_calibration_steps=3)
        assert all(np.array_equal(a, b) for a, b in zip(before, snapshot(supernet)))
    # ... and the child did get the recalibrated statistics.
    supernet.set_path(arch)
    assert np.abs(child.predict(x, verbose=0) - supernet.predict(x, verbose=0)).max() > 1e-3


def test_child_export_keras_and_saved_model(tmp_path):
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn="standard"))
    x, _, data = tiny_data()
    supernet.fit(data, epochs=1, verbose=0)
    child = supernet.extract(space.from_string(RESNET))
    expected = child.predict(x, verbose=0)
    child.save(tmp_path / "child.keras")
    reloaded = keras.saving.load_model(tmp_path / "child.keras")
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)
    child.export(str(tmp_path / "saved_model"), verbose=False)
    served = keras.layers.TFSMLayer(str(tmp_path / "saved_model"), call_endpoint="serve")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(served(x)), expected, atol=1e-6)


def test_supernet_keras_round_trip(tmp_path):
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=5, weight_decay=1e-3, clip_norm=5.0, bn="search"))
    x, _, data = tiny_data()
    supernet.fit(data, epochs=1, verbose=0)
    supernet.set_mask({"1<-0": ["none", "nor_conv_1x1"]})
    supernet.save(tmp_path / "supernet.keras")
    reloaded = keras.saving.load_model(tmp_path / "supernet.keras")
    assert isinstance(reloaded, kerasnas.Supernet)
    assert reloaded.space == space and reloaded.clip_norm == 5.0 and reloaded.seed == 5
    assert reloaded.get_mask() == supernet.get_mask()
    arch = space.from_string(RESNET)
    for model in (supernet, reloaded):
        model.set_path(arch)
    np.testing.assert_array_equal(
        reloaded.predict(x, verbose=0), supernet.predict(x, verbose=0)
    )


def test_dense_choices_train_exactly_like_switched_ones():
    # Dense selection runs every candidate; the unselected ones must not move
    # (weights, momentum, BN moving statistics): same result as the switch.
    space = tiny_space()
    _, _, data = tiny_data(num=48)
    results = []
    for dense in (False, True):
        keras.utils.set_random_seed(0)
        supernet = space.build_supernet(seed=4, bn="standard", weight_decay=1e-3, dense_choices=dense)
        assert all(c.dense == dense for c in supernet.choice_layers())
        compile_sgd(supernet)
        history = supernet.fit(data, epochs=2, verbose=0).history
        results.append((history["loss"], supernet.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_same_seed_same_paths_and_weights():
    space = tiny_space()
    _, _, data = tiny_data()
    runs = []
    for seed in (7, 7, 8):
        keras.utils.set_random_seed(0)  # same initial weights
        supernet = compile_sgd(space.build_supernet(seed=seed))
        recorder = PathRecorder()
        supernet.fit(data, epochs=2, verbose=0, callbacks=[recorder])
        runs.append((recorder.paths, [v.numpy() for v in supernet.trainable_variables]))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0] != runs[2][0]


def test_bad_inputs():
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0))
    with pytest.raises(ValueError, match=r"Expected images of shape \(batch, 8, 8, 3\)"):
        supernet(np.zeros((2, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match="argument `space`"):
        kerasnas.Supernet("nb201")
    with pytest.raises(ValueError, match="argument `clip_norm`"):
        space.build_supernet(clip_norm=0)
    with pytest.raises(ValueError, match="argument `optimizer`"):
        supernet.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="mse")
    with pytest.raises(ValueError, match=r"num_classes\)\. Received: labels in \[0, 9\]"):
        supernet.fit(np.zeros((4, 8, 8, 3), "float32"), np.array([0, 9, 1, 2]), verbose=0)
    one_hot = tf.data.Dataset.from_tensors((np.zeros((4, 8, 8, 3), "float32"), np.zeros((4, 10), "float32")))
    with pytest.raises(ValueError, match="one-hot labels with num_classes=5"):
        supernet.evaluate(one_hot, verbose=0)
    with pytest.raises(ValueError, match="argument `op_name`"):
        kerasnas.ops.get("conv_9x9", 4)


def test_index_element_is_not_a_sample_weight():
    space = tiny_space()
    x, y, _ = tiny_data()
    with_index = tf.data.Dataset.from_tensor_slices((x, y, np.arange(len(x)))).batch(8)
    without = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    results = []
    for data in (with_index, without):
        keras.utils.set_random_seed(0)
        supernet = compile_sgd(space.build_supernet(seed=0))
        history = supernet.fit(data, epochs=1, verbose=0).history
        results.append((history["loss"][0], [v.numpy() for v in supernet.trainable_variables]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    assert all(np.allclose(a, b) for a, b in zip(results[0][1], results[1][1]))


@keras.saving.register_keras_serializable(package="kerasnas_tests")
class CyclicSampler(kerasnas.sampling.PathSampler):
    """A stateful sampler: at step t every choice takes option t mod n."""

    def __init__(self, offset=0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def build(self, input_shape=None):
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="step")
        super().build(input_shape)

    def sample(self, mask, seed_generator):
        self.step.assign_add(1)
        n = keras.ops.convert_to_tensor(self.num_options, "int32")
        return (self.step - 1 + self.offset) % n

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def test_a_custom_path_sampler_plugs_in_and_saves_its_state(tmp_path):
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, path_sampler=CyclicSampler(offset=2)))
    _, _, data = tiny_data()
    recorder = PathRecorder()
    supernet.fit(data, epochs=2, verbose=0, callbacks=[recorder])
    assert [p[0] for p in recorder.paths] == [(t + 2) % 5 for t in range(8)]
    supernet.save(tmp_path / "s.keras")
    reloaded = keras.saving.load_model(tmp_path / "s.keras")
    assert isinstance(reloaded.path_sampler, CyclicSampler)
    assert reloaded.path_sampler.offset == 2
    assert int(reloaded.path_sampler.step.numpy()) == 8


def test_every_candidate_has_its_own_branch():
    # One switch branch per candidate, parameter-free ones included: a
    # shared branch for none/skip/pooling computed them all on every step
    # (uniform training 1.24x, the scoring forward 1.9x slower). Each option computes
    # its own output, and only the selected branch's ops run.
    from kerasnas.ops import get as get_op

    options = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    choice = kerasnas.layers.Choice([get_op(o, channels=4) for o in options], options, label="e")
    x = tf.random.stateless_normal((2, 6, 6, 4), seed=(0, 1))
    choice.build(x.shape)

    @tf.function
    def run(index):
        return choice(x, index=index, training=False)

    for k, candidate in enumerate(choice.candidates):
        np.testing.assert_allclose(run(tf.constant(k)), candidate(x, training=False), rtol=1e-6, atol=1e-6)
    graph = run.get_concrete_function(tf.TensorSpec((), tf.int32)).graph.as_graph_def()
    cases = [n for n in graph.node if n.op in ("Case", "StatelessCase")]
    assert len(cases) == 1 and len(cases[0].attr["branches"].list.func) == len(options)
    # The skip branch holds no pooling, the pooling branch no convolution.
    library = {f.signature.name: f for f in graph.library.function}
    branch_ops = [
        {node.op for node in library[f.name].node_def}
        for f in cases[0].attr["branches"].list.func
    ]
    assert not any("AvgPool" in o or "Conv2D" in o for o in branch_ops[1])
    assert any("AvgPool" in o for o in branch_ops[4])
    assert not any("Conv2D" in o for o in branch_ops[4])


def _grappler_state():
    """What a function called now would be optimized with: Grappler's
    options and the memory optimizer's setting."""
    from tensorflow.python.eager import context

    rewrite = context.context().config.graph_options.rewrite_options
    return (tf.config.optimizer.get_experimental_options(), rewrite.memory_optimization)


def test_grappler_lean_and_off_train_like_on_and_leave_the_process_setting_alone():
    space = tiny_space()
    _, _, data = tiny_data()
    default = _grappler_state()
    runs = {}
    for grappler in ("on", "lean", "off"):
        keras.utils.set_random_seed(0)  # same initial weights
        supernet = compile_sgd(space.build_supernet(seed=3, grappler=grappler))
        recorder = PathRecorder()
        supernet.fit(data, epochs=2, verbose=0, callbacks=[recorder])
        loss = supernet.evaluate_arch(space.sample(1), data, bn_calibration_data=data, bn_calibration_steps=2)["loss"]
        runs[grappler] = recorder.paths, [v.numpy() for v in supernet.trainable_variables], loss
        assert isinstance(supernet.train_function, kerasnas.supernet.graph.ScopedFunction)
        assert supernet.train_function._mode == grappler
        # The process' own setting is back to exactly TensorFlow's default after each call.
        assert _grappler_state() == default
    for other in ("lean", "off"):
        assert runs["on"][0] == runs[other][0]
        for a, b in zip(runs["on"][1], runs[other][1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)  # rounding only (3e-5 seen)
        np.testing.assert_allclose(runs["on"][2], runs[other][2], rtol=1e-4)
    assert kerasnas.Supernet.from_config(supernet.get_config()).grappler == "off"
    # "auto": lean on a CPU where one path runs, on for mixed choices (every candidate runs).
    gpu = bool(tf.config.list_logical_devices("GPU"))
    assert space.build_supernet(grappler="auto")._scoped(lambda: None)._mode == ("on" if gpu else "lean")
    assert space.build_supernet().grappler == "auto"  # the default
    darts = space.build_supernet(supernet_class=kerasnas.darts.DartsSupernet, grappler="auto")
    assert darts._scoped(lambda: None)._mode == "on"
    with pytest.raises(ValueError, match="argument `grappler`"):
        space.build_supernet(grappler="fast")


def test_grappler_scope_sets_the_options_only_during_the_call():
    from tensorflow.core.protobuf import rewriter_config_pb2 as rc

    default = _grappler_state()
    seen = []
    record = lambda: seen.append(_grappler_state())
    for mode in ("off", "lean", "on"):
        kerasnas.supernet.graph.ScopedFunction(record, mode)()
    record()
    off, lean, on, after = seen
    assert off[0] == {**default[0], "disable_meta_optimizer": True} and off[1] == default[1]
    assert lean[0] == {**default[0], "layout_optimizer": False, "remapping": False}
    assert lean[1] == rc.RewriterConfig.NO_MEM_OPT != default[1]
    assert on == after == default
    # "on" undoes a process-wide "off" for its own call only.
    state = kerasnas.supernet.graph._state()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        kerasnas.supernet.graph.ScopedFunction(record, "on")()
        record()
    finally:
        kerasnas.supernet.graph._restore(state)
    assert seen[-2] == default
    assert seen[-1][0] == {**default[0], "disable_meta_optimizer": True}
    with pytest.raises(ValueError, match="argument `mode`"):
        with kerasnas.supernet.graph.grappler_scope("fast"):
            pass