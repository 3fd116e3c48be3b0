"""Few-shot supernet trees: splits, inheritance, restart, masks and resume."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import keras
from kerasnas import fewshot
from nas_helpers import compile_sgd, tiny_data, tiny_space

STEPS = 2


def epoch_data(initial_epoch, epochs):
    """Batches of epochs initial..epochs-1, epoch e's drawn from e only."""
    parts = [tiny_data(num=8 * STEPS, batch_size=8, seed=100 + e)[2] for e in range(initial_epoch, epochs)]
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return dataset, STEPS


def split_data(node_id):
    return tiny_data(num=16, batch_size=8, seed=7)[2]


@pytest.fixture(scope="module")
def supernet():
    supernet = tiny_space().build_supernet(seed=5)
    compile_sgd(supernet, learning_rate=0.05)
    return supernet


def run(supernet, directory, callbacks=(), initial_from=None, **options):
    if initial_from is not None:  # the same starting state as another run
        os.makedirs(os.path.join(directory, "nodes"), exist_ok=True)
        shutil.copytree(os.path.join(initial_from, "nodes", "initial"), os.path.join(directory, "nodes", "initial"))
    options = {"split_epochs": (1, 2), "matcher_options": {"repeats": 2}, "seed": 3, **options}
    trainer = fewshot.FewShotSupernet(supernet, directory, **options)
    trainer.fit(epoch_data, epochs=3, split_data=split_data, callbacks=list(callbacks))
    return trainer


def arrays(trainer, node_id, epoch):
    path = os.path.join(trainer.directory, "nodes", node_id, f"epoch_{epoch:05d}.npz")
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        return meta, {k: f[k] for k in f.files if k != "meta"}


class PathRecorder(keras.callbacks.Callback):
    def __init__(self, trainer_ref):
        super().__init__()
        self.trainer_ref = trainer_ref
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        mask = self.model.get_mask()
        self.seen.append((self.model.get_path(), mask))


@pytest.fixture(scope="module")
def trained(supernet, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("gm"))
    recorder = PathRecorder(None)
    trainer = run(supernet, directory, callbacks=[recorder])
    return trainer, recorder


def test_tree_shape_masks_and_split_scores(trained):
    trainer, _ = trained
    tree = trainer.tree
    leaves = tree.leaves()
    assert [n["id"] for n in leaves] == ["0.0.0", "0.0.1", "0.1.0", "0.1.1"]
    space = trainer.space
    for node in tree.nodes.values():
        if node["children"]:
            record = json.load(open(os.path.join(trainer.directory, "splits", f"{node['id']}.json")))
            candidates = [l for l in space.labels if node["mask"][l] == list(space.choices[l])]
            assert sorted(record["distances"]) == sorted(candidates)
            matrices = {l: np.asarray(record["distances"][l]["matrix"]) for l in candidates}
            label, groups, _ = fewshot.choose_edge(matrices, "nb201")
            options = record["distances"][label]["options"]
            assert node["split"] == label == record["chosen"]
            assert [tree.nodes[c]["mask"][label] for c in node["children"]] == [[options[i] for i in g] for g in groups]
            assert sorted(len(tree.nodes[c]["mask"][label]) for c in node["children"]) == [2, 3]
    for leaf in leaves:  # each leaf trained under its own mask, to the end
        assert trainer.node_epoch(leaf["id"]) == 3
        assert trainer.activate(leaf["id"]).get_mask() == leaf["mask"]
    # every architecture lies in exactly one leaf, the one leaf_for names
    for seed in range(30):
        arch = space.sample(seed=seed)
        holders = [n["id"] for n in leaves if tree.contains(n, arch)]
        assert holders == [trainer.leaf_for(arch)["id"]]


def test_masks_restrict_sampling_exactly(trained):
    _, recorder = trained
    assert len(recorder.seen) == 7 * STEPS  # 1 + 2 + 4 nodes, one epoch each
    restricted = 0
    for path, mask in recorder.seen:
        assert all(path[label] in allowed for label, allowed in mask.items())
        restricted += any(len(a) < 5 for a in mask.values())
    assert restricted == 6 * STEPS


def test_children_inherit_bitwise_and_only_the_last_generation_restarts(trained):
    trainer, _ = trained
    supernet = trainer.supernet
    names = [v.path for v in supernet.variables]
    free = {f"model_{k:05d}" for k, n in enumerate(names) if "option_mask" in n or "seed" in n}
    _, root = arrays(trainer, "0", 1)
    _, initial = arrays(trainer, "initial", 0)
    for child in ("0.0", "0.1"):
        _, state = arrays(trainer, child, 1)
        assert state.keys() == root.keys()
        for key in state:
            if key not in free:
                np.testing.assert_array_equal(state[key], root[key], err_msg=key)
        assert any(not np.array_equal(state[k], root[k]) for k in free)  # own mask and stream
    weights = [f"model_{k:05d}" for k, v in enumerate(supernet.variables) if v.trainable]
    for parent, child in (("0.0", "0.0.1"), ("0.1", "0.1.0")):
        _, before = arrays(trainer, parent, 2)
        _, state = arrays(trainer, child, 2)
        for key in weights:
            np.testing.assert_array_equal(state[key], initial[key], err_msg=key)  # re-initialised
        assert any(not np.array_equal(state[k], before[k]) for k in weights)
        optimizer = [k for k in state if k.startswith("optimizer_")]
        for key in optimizer:
            np.testing.assert_array_equal(state[key], initial[key])  # step count and slots too


def test_resume_mid_training_and_mid_split_equals_uninterrupted(trained, supernet, tmp_path):
    reference, _ = trained

    class Kill(keras.callbacks.Callback):
        def __init__(self, at):
            super().__init__()
            self.at, self.count = at, 0

        def on_train_batch_end(self, batch, logs=None):
            self.count += 1
            if self.count == self.at:
                raise KeyboardInterrupt("killed")

    directory = str(tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):  # mid-epoch of the third node
        run(supernet, directory, callbacks=[Kill(5)], initial_from=reference.directory)
    original = fewshot.GradientMatcher.distances
    calls = []

    def dying(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:  # the third edge of node 0.0's split
            raise KeyboardInterrupt("killed")
        return original(self, *args, **kwargs)

    fewshot.GradientMatcher.distances = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            run(supernet, directory)
    finally:
        fewshot.GradientMatcher.distances = original
    assert os.path.exists(os.path.join(directory, "splits", "0.0.json"))
    resumed = run(supernet, directory)
    assert resumed.tree.nodes == reference.tree.nodes
    for leaf in reference.tree.leaves():
        meta_a, a = arrays(reference, leaf["id"], 3)
        meta_b, b = arrays(resumed, leaf["id"], 3)
        assert meta_a["history"] == meta_b["history"]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{leaf['id']} {key}")


@pytest.mark.parametrize("method,sizes", [("exhaustive", [1, 1, 1, 1, 1]), ("random", [2, 3])])
def test_baseline_splits(supernet, tmp_path, method, sizes):
    supernet.set_mask(None)  # the supernet holds the last leaf used, mask included
    trainer = fewshot.FewShotSupernet(supernet, tmp_path, split_epochs=[1], split_method=method, seed=4)
    tree = trainer.fit(epoch_data, epochs=2)
    root = tree.root
    assert sorted(len(tree.nodes[c]["mask"][root["split"]]) for c in root["children"]) == sizes
    assert all(trainer.node_epoch(n["id"]) == 2 for n in tree.leaves())
    assert not os.path.exists(tmp_path / "splits")


def test_bad_input(supernet, tmp_path):
    space = supernet.space
    with pytest.raises(ValueError, match="split_epochs"):
        fewshot.FewShotSupernet(supernet, tmp_path, split_epochs=[2, 2])
    with pytest.raises(ValueError, match="split_method"):
        fewshot.FewShotSupernet(supernet, tmp_path, split_method="greedy")
    with pytest.raises(ValueError, match="restart"):
        fewshot.FewShotSupernet(supernet, tmp_path, restart="first")
    with pytest.raises(ValueError, match="compiled"):
        fewshot.FewShotSupernet(tiny_space().build_supernet(seed=0), tmp_path)
    trainer = fewshot.FewShotSupernet(supernet, tmp_path, split_epochs=[1])
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(epoch_data, epochs=1)
    tree = fewshot.PartitionTree(space)
    tree.split("0", "1<-0", [["none", "skip_connect"], ["nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]])
    child = tree.split("0.0", "1<-0", [["none"], ["skip_connect"]])[0]
    with pytest.raises(ValueError, match="at least 2 options"):
        tree.split(child["id"], "1<-0", [["none"]])
    with pytest.raises(ValueError, match="partitioning"):
        tree.split("0.1", "2<-0", [["none"], ["skip_connect"]])
    with pytest.raises(ValueError):
        tree.leaf_for({"1<-0": "conv_7x7"})


def test_ranking_scores_each_architecture_on_its_leaf(trained):
    from kerasnas.evaluation import rank_architectures

    trainer, _ = trained
    space = trainer.space
    archs = [space.sample(seed=s) for s in range(8)]
    _, _, data = tiny_data(num=16, batch_size=8, seed=9)
    scores = rank_architectures(trainer, archs, data, verbose=0, score="loss")
    leaves = {trainer.leaf_for(a)["id"] for a in archs}
    assert len(leaves) > 1
    for arch, score in zip(archs, scores):
        expected = trainer.evaluate_arch(arch, data)["loss"]
        assert -score == pytest.approx(expected, rel=1e-5)
    # the leaves hold different weights: scoring on another leaf differs
    other = next(n["id"] for n in trainer.tree.leaves() if n["id"] != trainer.leaf_for(archs[0])["id"])
    assert trainer.activate(other).evaluate_arch(archs[0], data)["loss"] != pytest.approx(-scores[0], rel=1e-4)


def test_search_scores_each_trial_on_its_leaf(trained, tmp_path):
    from kerasnas.search import OneShotTuner
    from kerasnas.search import RandomArchOracle

    trainer, _ = trained
    _, _, valid = tiny_data(num=16, batch_size=8, seed=9)
    oracle = RandomArchOracle(trainer.space, max_trials=6, seed=0)
    tuner = OneShotTuner(trainer, oracle, valid, directory=tmp_path, project_name="s")
    tuner.search(verbose=0)
    trials = tuner.oracle.get_best_trials(6)
    assert len(trials) == 6
    for trial in trials:
        arch = dict(trial.hyperparameters.values)
        expected = trainer.evaluate_arch(arch, valid)["accuracy"]
        assert trial.score == pytest.approx(expected, abs=1e-6)
    best = dict(trials[0].hyperparameters.values)
    child = tuner.load_model(trials[0])  # the child of the best, with its leaf's weights
    x = next(iter(valid))[0]
    with trainer.activate_for(best).fixed(best):
        expected = trainer.supernet(x, training=False)
    np.testing.assert_allclose(child(x, training=False), expected, rtol=1e-5, atol=1e-5)


class LearningRates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_fix_schedule_anneals_each_restarted_leaf_over_its_own_epochs(tmp_path):
    """GM-NAS' `--fix_sche`: a restarted leaf's cosine runs over its own
    epochs (here 2 of 4) to 0; the generations before it and the schedule
    outside the leaves are untouched."""
    schedule = fewshot.LeafCosineDecay(0.05, decay_steps=4 * STEPS)
    plain = keras.optimizers.schedules.CosineDecay(0.05, decay_steps=4 * STEPS)
    steps = np.arange(4 * STEPS + 2)
    np.testing.assert_array_equal([float(schedule(s)) for s in steps], [float(plain(s)) for s in steps])
    assert fewshot.LeafCosineDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()

    def tree(directory, fix, initial_from=None):
        keras.utils.set_random_seed(0)
        supernet = tiny_space().build_supernet(seed=5)
        supernet.compile(optimizer=keras.optimizers.SGD(fewshot.LeafCosineDecay(0.05, 4 * STEPS), momentum=0.9),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rates = LearningRates()
        if initial_from is not None:
            os.makedirs(os.path.join(directory, "nodes"), exist_ok=True)
            shutil.copytree(os.path.join(initial_from, "nodes", "initial"),
                            os.path.join(directory, "nodes", "initial"))
        trainer = fewshot.FewShotSupernet(supernet, directory, split_epochs=(1, 2), seed=3,
                                          matcher_options={"repeats": 2}, fix_schedule=fix)
        trainer.fit(epoch_data, epochs=4, split_data=split_data, callbacks=[rates])
        return trainer, rates.rates

    fixed, fixed_rates = tree(str(tmp_path / "fix"), True)
    quirk, quirk_rates = tree(str(tmp_path / "quirk"), False, initial_from=str(tmp_path / "fix"))
    # Root (1 epoch), 2 children (1 epoch each), 4 leaves (2 epochs each, restarted at step 0).
    leaf = slice(3 * STEPS, None)
    expected_leaf = [0.05 * 0.5 * (1 + np.cos(np.pi * t / (2 * STEPS))) for t in range(2 * STEPS)] * 4
    np.testing.assert_allclose(fixed_rates[leaf], expected_leaf, rtol=1e-6)
    assert quirk_rates[leaf] == [float(plain(t)) for t in range(2 * STEPS)] * 4  # the NB201 scripts' quirk
    assert fixed_rates[:3 * STEPS] == quirk_rates[:3 * STEPS]
    assert float(fixed.supernet.optimizer._learning_rate.decay_steps) == 4 * STEPS  # restored
    for node in ("0", "0.0", "0.1"):  # the same until the restart
        for (_, a), (_, b) in [(arrays(fixed, node, e), arrays(quirk, node, e)) for e in (1, 2) if node != "0" or e == 1]:
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
    _, a = arrays(fixed, "0.0.0", 4)
    _, b = arrays(quirk, "0.0.0", 4)
    assert any(not np.array_equal(a[k], b[k]) for k in a if k.startswith("model_"))  # the graph read it
    # A tree resumes only with the options it was made with.
    with pytest.raises(ValueError, match="fix_schedule"):
        fewshot.FewShotSupernet(fixed.supernet, fixed.directory, split_epochs=(1, 2), seed=3,
                                matcher_options={"repeats": 2}, fix_schedule=False)
    with pytest.raises(ValueError, match="LeafCosineDecay"):
        compile_sgd(quirk.supernet)
        fewshot.FewShotSupernet(quirk.supernet, str(tmp_path / "sgd"), split_epochs=(1,),
                                fix_schedule=True).fit(epoch_data, epochs=2)
