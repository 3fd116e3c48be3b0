"""OneShotTuner: architectures scored on a trained supernet, and export."""

import json

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.search import OneShotTuner
from kerasnas.search import RandomArchOracle
from nas_helpers import compile_sgd, tiny_data, tiny_space


@pytest.fixture(scope="module")
def trained():
    space = tiny_space()
    supernet = space.build_supernet(seed=0, bn="standard")
    compile_sgd(supernet, learning_rate=0.05)
    _, _, train = tiny_data(num=64, batch_size=16, seed=1)
    supernet.fit(train, epochs=2, verbose=0)
    _, _, valid = tiny_data(num=48, batch_size=16, seed=2)
    return space, supernet, train, valid


def make_tuner(trained, path, max_trials=6, objective="val_accuracy", **kwargs):
    space, supernet, train, valid = trained
    oracle = RandomArchOracle(space, max_trials=max_trials, seed=0)
    return OneShotTuner(
        supernet, oracle, valid, bn_calibration_data=train, bn_calibration_steps=2,
        objective=objective, directory=path, project_name="search", **kwargs,
    )


def state(supernet):
    return [v.numpy().copy() for v in [supernet.active_path] + supernet._bn_statistics()]


def test_trials_score_archs_with_inherited_weights_and_one_trace(trained, tmp_path):
    space, supernet, train, valid = trained
    before = state(supernet)
    calls = []
    network_call = supernet.network.call
    supernet.network.call = lambda *a, **k: calls.append(1) or network_call(*a, **k)
    try:
        tuner = make_tuner(trained, tmp_path, max_trials=4)
        tuner.search(verbose=0)
        tuner.oracle.max_trials = 6  # a second search goes on with the same traces
        tuner.search(verbose=0)
    finally:
        del supernet.network.call
    results = tuner.results()
    assert len(results) == 6
    # One trace of the evaluation and one of the BN calibration serve all 6
    # trials of both searches.
    assert len(calls) == 2
    # The search leaves the supernet's path and BN statistics as they were.
    for a, b in zip(before, state(supernet)):
        np.testing.assert_array_equal(a, b)
    for result in results[:3]:
        expected = supernet.evaluate_arch(result["arch"], valid, bn_calibration_data=train, bn_calibration_steps=2)
        np.testing.assert_allclose(result["metrics"]["val_loss"], expected["loss"], rtol=1e-5)
    scores = sorted((r["score"] for r in results), reverse=True)
    best = tuner.get_best_architectures(3)
    by_arch = {json.dumps(r["arch"], sort_keys=True): r["score"] for r in results}
    assert [by_arch[json.dumps(a, sort_keys=True)] for a in best] == scores[:3]
    assert len(tuner.trial_seconds) == 6


def test_loss_objective_is_minimized(trained, tmp_path):
    tuner = make_tuner(trained, tmp_path, max_trials=4, objective="val_loss")
    tuner.search(verbose=0)
    losses = {json.dumps(r["arch"], sort_keys=True): r["metrics"]["val_loss"] for r in tuner.results()}
    best = json.dumps(tuner.get_best_architectures(1)[0], sort_keys=True)
    assert losses[best] == min(losses.values())


def test_export_best_writes_the_child_the_search_scored(trained, tmp_path):
    space, supernet, train, valid = trained
    tuner = make_tuner(trained, tmp_path / "search")
    with pytest.raises(ValueError, match="rank"):
        tuner.export_best(tmp_path / "none")
    tuner.search(verbose=0)
    paths = tuner.export_best(tmp_path / "best")
    record = json.loads(open(paths["architecture"]).read())
    assert record["arch"] == tuner.get_best_architectures(1)[0] == paths["arch"]
    child = keras.saving.load_model(paths["child"])
    x = np.concatenate([b[0].numpy() for b in valid])
    y = np.concatenate([b[1].numpy() for b in valid])
    logits = child.predict(x, verbose=0)
    # The exported child (BN recalibrated like the trials) scores what the trial scored.
    accuracy = np.mean(np.argmax(logits, -1) == y)
    loss = np.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    np.testing.assert_allclose(accuracy, record["search_metrics"]["val_accuracy"], atol=1e-6)
    np.testing.assert_allclose(loss, record["search_metrics"]["val_loss"], rtol=1e-5)
    loaded = tf.saved_model.load(paths["saved_model"])  # keep a reference while serving
    served = loaded.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), logits, rtol=1e-5, atol=1e-5)

    with pytest.raises(ValueError, match="train_data"):
        tuner.export_best(tmp_path / "retrained", retrain_epochs=1)
    paths = tuner.export_best(tmp_path / "retrained", retrain_epochs=1, train_data=train)
    record = json.loads(open(paths["architecture"]).read())
    assert record["retrain_epochs"] == 1 and len(record["retrain_history"]["loss"]) == 1
    retrained = keras.saving.load_model(paths["child"])
    assert not np.allclose(retrained.predict(x, verbose=0), logits)


def test_one_shot_tuner_rejects_bad_input(trained, tmp_path):
    space, supernet, train, valid = trained
    with pytest.raises(ValueError, match="objective.*'val_accuracy', 'val_loss'.*Received: objective='f1'"):
        make_tuner(trained, tmp_path, objective="f1")
    other = kerasnas.spaces.NasBench201(ops=("nor_conv_3x3", "skip_connect"))
    with pytest.raises(ValueError, match="supernet's space"):
        OneShotTuner(supernet, RandomArchOracle(other), valid, directory=tmp_path)
    with pytest.raises(ValueError, match="validation_data"):
        OneShotTuner(supernet, RandomArchOracle(space), (np.zeros(3), np.zeros(3)), directory=tmp_path)
    with pytest.raises(ValueError, match="bn_calibration_data"):
        OneShotTuner(supernet, RandomArchOracle(space), valid, bn_calibration_steps=2, directory=tmp_path)
    with pytest.raises(ValueError, match="supernet"):
        OneShotTuner(keras.Sequential(), RandomArchOracle(space), valid, directory=tmp_path)


def test_a_search_whose_scores_are_all_nan_stops(tmp_path):
    # Weights fine, validation images NaN: every trial scores NaN (accuracy
    # too: NaN logits would still "hit" the labels argmax lands on). A space
    # without 'none' so that no cell can cut the NaN off.
    space = tiny_space(ops=("skip_connect", "nor_conv_3x3"))
    supernet = compile_sgd(space.build_supernet(seed=0, bn="standard"))
    x = np.full((16, 8, 8, 3), np.nan, "float32")
    valid = tf.data.Dataset.from_tensor_slices((x, np.zeros(16, "int64"))).batch(8)
    oracle = RandomArchOracle(space, max_trials=12, seed=0)
    tuner = OneShotTuner(supernet, oracle, valid, directory=tmp_path, project_name="nan")
    with pytest.raises(FloatingPointError, match=r"last 3 trials in a row scored nan \(val_accuracy\)"):
        tuner.search(verbose=0)
    assert len(oracle.end_order) == 3  # stopped at once, not after 12


def test_a_diverged_supernet_is_refused_before_any_trial(trained, tmp_path):
    space, supernet, train, valid = trained
    variable = supernet.network_variables[0]
    saved = variable.numpy()
    try:
        variable.assign(np.full(saved.shape, np.nan, saved.dtype))
        tuner = make_tuner(trained, tmp_path)
        with pytest.raises(FloatingPointError, match="weights are not finite.*diverged"):
            tuner.search(verbose=0)
        assert not tuner.oracle.end_order
        with pytest.raises(FloatingPointError, match="weights are not finite"):
            kerasnas.evaluation.rank_architectures(supernet, [space.sample(0)], valid, verbose=0)
    finally:
        variable.assign(saved)
