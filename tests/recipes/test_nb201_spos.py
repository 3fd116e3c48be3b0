import importlib.util
import json

import keras
import numpy as np
import pytest

import kerasnas
from kerasnas import data as nas_data
from kerasnas.callbacks import EpochCheckpoint
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import load_supernet


def _test_batch():
    return next(iter(nas_data.load("digits", "test", batch_size=32, image_size=16)))[0]


def test_smoke_run_outputs(smoke_run):
    output, result = smoke_run
    for name in ("supernet.keras", "child.keras", "saved_model", "result.json",
                 "config.json", "history.json", "history.csv"):
        assert (output / name).exists(), name
    assert json.loads((output / "result.json").read_text()) == result
    assert set(result) >= {"arch", "arch_string", "accuracy", "params", "flops", "paths"}
    assert len(result["candidates"]) == 3
    assert result["accuracy"] == max(c["accuracy"] for c in result["candidates"])
    history = json.loads((output / "history.json").read_text())
    assert len(history["loss"]) == len(history["accuracy"]) == 2
    if importlib.util.find_spec("tensorboard") is not None:
        assert list((output / "tensorboard" / "train").glob("events.out.tfevents.*"))


def test_exported_children_match_extracted_child(smoke_run):
    output, result = smoke_run
    supernet = load_supernet(output / "supernet.keras")
    child = supernet.extract(result["arch"])
    x = _test_batch()
    expected = keras.ops.convert_to_numpy(child(x, training=False))
    # The saved supernet reloads with the same path output as its child.
    supernet.set_path(result["arch"])
    np.testing.assert_allclose(supernet.predict(x, verbose=0), expected, atol=1e-5)
    reloaded = keras.saving.load_model(output / "child.keras")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(reloaded(x, training=False)), expected
    )
    serving = keras.layers.TFSMLayer(str(output / "saved_model"), call_endpoint="serve")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(serving(x)), expected, atol=1e-5)


def test_resume_is_bit_identical(smoke_run, smoke_args, tmp_path, monkeypatch):
    straight, straight_result = smoke_run

    class Killed(Exception):
        pass

    save = EpochCheckpoint.on_epoch_end

    def save_then_die(self, epoch, logs=None):
        save(self, epoch, logs)
        raise Killed  # The process dies right after epoch 1 was saved.

    argv = smoke_args + ["--output", str(tmp_path)]
    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", save_then_die)
    with pytest.raises(Killed):
        nb201_spos.main(argv)
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "checkpoints").glob("*.npz")] == ["epoch_00001.npz"]
    result = nb201_spos.main(argv + ["--resume"])

    with np.load(straight / "checkpoints" / "epoch_00002.npz") as a, \
            np.load(tmp_path / "checkpoints" / "epoch_00002.npz") as b:
        assert a.files == b.files
        for key in a.files:
            if key != "meta":
                assert np.array_equal(a[key], b[key]), key
        history_a, history_b = (json.loads(str(m["meta"]))["history"] for m in (a, b))
    # Every logged value is identical but the wall-clock seconds, kept for
    # both epochs across the kill.
    assert len(history_a.pop("epoch_seconds")) == len(history_b.pop("epoch_seconds")) == 2
    assert history_a == history_b
    straight_json, resumed_json = (
        json.loads((d / "history.json").read_text()) for d in (straight, tmp_path)
    )
    for content in (straight_json, resumed_json):
        content.pop("epoch_seconds")
    assert straight_json == resumed_json
    assert result["arch"] == straight_result["arch"]
    assert result["candidates"] == straight_result["candidates"]


def test_train_dataset_depends_only_on_seed_and_epoch():
    kwargs = dict(batch_size=50, seed=3, augment=True, image_size=16, limit=100)
    full, steps = nb201_spos.train_dataset("digits", epochs=3, **kwargs)
    tail, _ = nb201_spos.train_dataset("digits", epochs=3, initial_epoch=2, **kwargs)
    assert steps == 2
    batches = [x.numpy() for x, _ in full]
    assert len(batches) == 6
    for a, b in zip(batches[4:], [x.numpy() for x, _ in tail], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(batches[0], batches[2])  # another order each epoch

    # Without augmentation an epoch is a permutation of `kerasnas.data.load`.
    plain, _ = nb201_spos.train_dataset(
        "digits", epochs=1, batch_size=100, seed=0, image_size=16, limit=100
    )
    x, y = next(iter(plain))
    reference = nas_data.load("digits", batch_size=100, image_size=16, limit=100)
    x_ref, y_ref = next(iter(reference))
    order = np.lexsort(x.numpy().reshape(100, -1).T)
    order_ref = np.lexsort(x_ref.numpy().reshape(100, -1).T)
    np.testing.assert_allclose(x.numpy()[order], x_ref.numpy()[order_ref], atol=1e-6)
    np.testing.assert_array_equal(y.numpy()[order], y_ref.numpy()[order_ref])


def test_refuses_to_mix_runs(smoke_run, smoke_args):
    output, _ = smoke_run
    with pytest.raises(ValueError, match="already holds checkpoints"):
        nb201_spos.main(smoke_args + ["--output", str(output)])
    with pytest.raises(ValueError, match="different training configuration.*epochs"):
        nb201_spos.main(smoke_args + ["--output", str(output), "--resume", "--epochs", "3"])


@pytest.mark.parametrize("argv, message", [
    (["--preset", "tiny"], "argument --preset: invalid choice"),
    (["--epochs", "0"], "argument --epochs: expected a positive int"),
    (["--bn", "group"], "argument --bn: invalid choice"),
    (["--resume", "--overwrite"], "--overwrite: not allowed with argument --resume"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        nb201_spos.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
