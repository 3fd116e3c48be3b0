"""Every kind of supernet survives `.keras` save -> `load_model`.

One parametrised test: a trained supernet is saved and reloaded; the reloaded
one must have the same config, the same variables (weights, BN statistics,
path, mask, path-sampler state, seed state, optimizer slots), give the same
outputs on several paths, and continue training exactly as the original
does. A new path sampler, choice kind or `Supernet` subclass joins by adding
one `Case` to `CASES`.
"""

import dataclasses
from typing import Callable

import numpy as np
import pytest

import keras
import kerasnas
from kerasnas.sampling import ImportancePathSampler
from nas_helpers import compile_sgd, tiny_data, tiny_mobilenet, tiny_space


@dataclasses.dataclass
class Case:
    """`build()` returns an uncompiled supernet; `callbacks(supernet)` the
    callbacks its training needs (e.g. a sampler's end-of-epoch update)."""

    build: Callable
    callbacks: Callable = lambda supernet: []
    mask: dict = None
    shape: tuple = (8, 8, 3)
    num_classes: int = 5
    paired: bool = False  # bilevel training on (train, valid) pairs
    prepare: Callable = lambda supernet: None  # e.g. PT's projections


def pa(**kwargs):
    return ImportancePathSampler(name="path_sampler", **kwargs)


def pa_callbacks(supernet):
    # A constant δ moves the probabilities from the first epoch on.
    return [supernet.path_sampler.callback(delta=0.5)]


def darts(**kwargs):
    return tiny_space().build_supernet(
        supernet_class=kerasnas.darts.DartsSupernet, seed=1, bn="search", **kwargs
    )


def project(supernet):
    supernet.set_projection("1<-0", "nor_conv_3x3")
    supernet.set_projection("3<-1", None)


def dcnas_pair_phase(supernet, layer):
    rng = np.random.default_rng(0)
    states = rng.integers(supernet.copies, size=supernet.states.shape).astype("int32")
    states[:, layer:] = -1
    supernet.states.assign(states)
    supernet.phase.assign(layer)


MOBILENET = dict(shape=(16, 16, 3), num_classes=10)


def mobilenet(**kwargs):
    return tiny_mobilenet(input_shape=(16, 16, 3), stage_depths=(1, 1), **kwargs)


CASES = {
    "uniform-batch-ghost-bn": Case(
        lambda: tiny_space().build_supernet(seed=1, bn="batch", virtual_batch_size=4)
    ),
    "uniform-search-bn-masked": Case(
        lambda: tiny_space().build_supernet(seed=1, bn="search", clip_norm=5.0),
        mask={"1<-0": ["nor_conv_1x1", "nor_conv_3x3"], "3<-2": ["skip_connect"]},
    ),
    "uniform-synchronized-bn-dense": Case(
        lambda: tiny_space().build_supernet(
            seed=1, bn="standard", synchronized_bn=True, weight_decay=1e-3
        )
    ),
    "pa-shared": Case(
        lambda: tiny_space().build_supernet(path_sampler=pa(), seed=1, clip_norm=5.0),
        pa_callbacks,
    ),
    "pa-per-choice": Case(
        lambda: tiny_space().build_supernet(path_sampler=pa(shared=False), seed=1),
        pa_callbacks,
    ),
    "pa-floor-masked": Case(
        lambda: tiny_space().build_supernet(
            path_sampler=pa(parameter_free_floor=0.1), seed=1, bn="standard"
        ),
        pa_callbacks,
        mask={"2<-1": ["none", "nor_conv_3x3"]},
    ),
    # bfloat16 compute; weights, BN statistics and importance scores float32.
    "pa-shared-mixed-bfloat16": Case(
        lambda: tiny_space().build_supernet(
            path_sampler=pa(), seed=1, bn="standard", dtype_policy="mixed_bfloat16"
        ),
        pa_callbacks,
    ),
    # GM-NAS' RSWS base: paths that cut NB201's output off are redrawn.
    "uniform-reject-disconnected": Case(
        lambda: tiny_space().build_supernet(
            path_sampler=kerasnas.sampling.UniformPathSampler(reject_disconnected=True, name="path_sampler"),
            seed=1,
        )
    ),
    # Inter-choice weights: per-channel biases indexed by earlier choices;
    # split copies with per-copy optimizer slots (the supernet's state).
    "interchoice-split-per-copy": Case(
        lambda: tiny_space().build_supernet(
            seed=1, bn="batch", choices=kerasnas.layers.InterChoices("split", options={"slots": "per_copy"})
        ),
        prepare=lambda supernet: [
            l.set_depth(2) for l in supernet.choice_layers() if isinstance(l, kerasnas.layers.SplitChoice)
        ],
    ),
    # DCNAS: M local copies, the pool's sharing states (layer 0 decided),
    # pair steps on layer 1 with a meta step each, the copies' seed state
    # (a 2-layer MobileNet with 2 options a layer: a trace in seconds).
    "mobilenet-dcnas-pair-phase": Case(
        lambda: mobilenet(kernel_sizes=(3,)).build_supernet(
            supernet_class=kerasnas.dcnas.DCNASSupernet, seed=1, bn="standard", pool_size=4,
            meta_interval=1, meta_learning_rate=100.0,
        ),
        prepare=lambda supernet: dcnas_pair_phase(supernet, layer=1), **MOBILENET,
    ),
    "mobilenet-interchoice-bias-sum": Case(
        lambda: mobilenet().build_supernet(seed=1, bn="standard", choices=kerasnas.layers.InterChoices("bias_sum")), **MOBILENET
    ),
    "mobilenet-uniform": Case(
        lambda: mobilenet().build_supernet(seed=1, bn="standard"), **MOBILENET
    ),
    "mobilenet-pa-batch-bn": Case(
        lambda: mobilenet().build_supernet(path_sampler=pa(shared=False), seed=1, bn="batch"),
        pa_callbacks, **MOBILENET,
    ),
    # α, its Adam state, the Gumbel noise's seed state and a few-shot mask.
    "snas-masked": Case(
        lambda: darts(relaxation="snas", temperature=(2.0, 0.5)), paired=True,
        mask={"2<-0": ["none", "skip_connect", "nor_conv_1x1"]},
    ),
    "darts-fix-alpha-projected": Case(lambda: darts(fix_alpha=True), prepare=project),
    # The DARTS space's two-input cells (α's bilevel state: the NB201 cases
    # above; a bilevel trace of this network costs minutes).
    "darts-space-s2-fix-alpha": Case(
        lambda: kerasnas.spaces.Darts(
            num_classes=5, channels=4, layers=3, input_shape=(8, 8, 3), op_set="s2"
        ).build_supernet(supernet_class=kerasnas.darts.DartsSupernet, seed=1, fix_alpha=True),
    ),
}


def training_data(case, seed):
    x, _, data = tiny_data(num=32, seed=seed, shape=case.shape, num_classes=case.num_classes)
    if case.paired:
        _, _, valid = tiny_data(num=16, seed=seed + 10, shape=case.shape, num_classes=case.num_classes)
        data = kerasnas.darts.paired(data, valid)
    return x, data


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def variables_by_path(model):
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.variables}


def optimizer_state(model):
    return [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]


def sample_paths(space, n=3):
    rng = np.random.default_rng(3)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", list(CASES))
def test_save_load_round_trip(name, tmp_path):
    case = CASES[name]
    keras.utils.set_random_seed(0)
    supernet = compile_sgd(case.build())
    if case.mask:
        supernet.set_mask(case.mask)
    case.prepare(supernet)
    x, data = training_data(case, seed=0)
    alpha = [keras.ops.convert_to_numpy(v) for v in supernet.arch_variables]
    supernet.fit(data, epochs=1, verbose=0, callbacks=case.callbacks(supernet))
    for before, variable in zip(alpha, supernet.arch_variables):
        # α moved (the test is void otherwise), unless it is fixed.
        moved = not np.array_equal(keras.ops.convert_to_numpy(variable), before)
        assert moved != supernet.fix_alpha
        if supernet.fix_alpha:  # and trains on plain (x, y) batches
            assert int(supernet.arch_optimizer.iterations.numpy()) == 0
    sampler = supernet.path_sampler
    if isinstance(sampler, ImportancePathSampler):
        # The test is void if the sampler's state never left its start.
        probabilities = keras.ops.convert_to_numpy(sampler.probabilities)
        assert not np.allclose(probabilities, sampler.uniform)

    supernet.save(tmp_path / "supernet.keras")
    reloaded = keras.saving.load_model(tmp_path / "supernet.keras")

    assert type(reloaded) is type(supernet)
    assert type(reloaded.path_sampler) is type(sampler)
    assert reloaded.get_config() == supernet.get_config()
    assert reloaded.get_mask() == supernet.get_mask()
    before, after = variables_by_path(supernet), variables_by_path(reloaded)
    assert sorted(after) == sorted(before)
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)
    for a, b in zip(optimizer_state(supernet), optimizer_state(reloaded)):
        np.testing.assert_array_equal(b, a)
    state = [supernet.training_state_variables(), reloaded.training_state_variables()]
    assert len(state[1]) == len(state[0])
    for a, b in zip(*state):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a))

    for arch in sample_paths(supernet.space):
        supernet.set_path(arch)
        reloaded.set_path(arch)
        # Eager calls: the same computation without tracing two predict
        # functions per case (the training below traces both models).
        np.testing.assert_allclose(numpy(reloaded(x, training=False)), numpy(supernet(x, training=False)), atol=1e-6)

    # Continue both: same sampled paths, same updates, same sampler state.
    _, more = training_data(case, seed=1)
    histories = [
        model.fit(more, epochs=1, verbose=0, callbacks=case.callbacks(model)).history
        for model in (supernet, reloaded)
    ]
    np.testing.assert_allclose(histories[1]["loss"], histories[0]["loss"], rtol=1e-6)
    before, after = variables_by_path(supernet), variables_by_path(reloaded)
    for path, value in before.items():
        np.testing.assert_allclose(after[path], value, atol=1e-6, err_msg=path)


def test_every_path_sampler_has_a_round_trip_case():
    # A new sampler class exported by kerasnas.sampling must join CASES.
    covered = {type(CASES[name].build().path_sampler) for name in CASES}
    samplers = {
        obj for obj in vars(kerasnas.sampling).values()
        if isinstance(obj, type) and issubclass(obj, kerasnas.sampling.PathSampler)
        and obj is not kerasnas.sampling.PathSampler
    }
    assert samplers <= covered, samplers - covered


def test_few_shot_tree_round_trip(tmp_path):
    # A tree is its directory: FewShotSupernet.load rebuilds it with the same
    # nodes, every leaf computes what it computed, and both continue alike.
    import shutil

    from kerasnas import fewshot

    keras.utils.set_random_seed(0)
    case = Case(None)
    x, data = training_data(case, seed=0)
    supernet = compile_sgd(tiny_space().build_supernet(seed=1))
    tree = fewshot.FewShotSupernet(supernet, tmp_path / "a", split_epochs=[1], matcher_options={"repeats": 2})
    tree.fit(data, epochs=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    loaded = fewshot.FewShotSupernet.load(tmp_path / "b")
    assert loaded.tree.nodes == tree.tree.nodes and len(loaded.tree.leaves()) == 2
    archs = sample_paths(supernet.space, 6)
    assert len({tree.leaf_for(a)["id"] for a in archs}) == 2
    for arch in archs:
        outputs = []
        for t in (tree, loaded):
            with t.activate_for(arch).fixed(arch):
                outputs.append(numpy(t.supernet(x, training=False)))
        np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-6)
    _, more = training_data(case, seed=1)
    for t in (tree, loaded):
        t.fit(more, epochs=3)
    for leaf in tree.tree.leaves():
        states = [variables_by_path(t.activate(leaf["id"])) for t in (tree, loaded)]
        for path, value in states[0].items():
            np.testing.assert_allclose(states[1][path], value, atol=1e-6, err_msg=path)
