"""After a divergence, `--resume` goes on with a lower learning rate (what
`NonFiniteLossError` advises), says so and records it in `config.json`;
any other change is still refused."""

import json
import shutil

import pytest

from kerasnas.callbacks import EpochCheckpoint
from kerasnas.recipes import nb201_spos
from tests.recipes.conftest import SMOKE_ARGS

# The smoke preset of the other recipe tests, smaller: 2 steps per epoch, 1
# candidate.
ARGS = SMOKE_ARGS + ["--limit", "128", "--num-candidates", "1"]


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """The output directory of a smoke run (learning rate 0.2, 2 epochs of 2
    steps) killed right after epoch 1 was saved."""
    output = tmp_path_factory.mktemp("interrupted")
    save = EpochCheckpoint.on_epoch_end

    def save_then_die(self, epoch, logs=None):
        save(self, epoch, logs)
        raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EpochCheckpoint, "on_epoch_end", save_then_die)
        with pytest.raises(Killed):
            nb201_spos.main(ARGS + ["--output", str(output)])
    assert [p.name for p in (output / "checkpoints").glob("*.npz")] == ["epoch_00001.npz"]
    return output


def _copy(interrupted, tmp_path):
    output = tmp_path / "run"
    shutil.copytree(interrupted, output)
    return output


def _config(*flags):
    return nb201_spos.config_from_args(nb201_spos.build_parser().parse_args(ARGS + list(flags)))


def test_resume_with_a_lower_learning_rate(interrupted, tmp_path, monkeypatch, capsys):
    output = _copy(interrupted, tmp_path)
    built, rates = [], []
    build_supernet = nb201_spos.build_supernet
    monkeypatch.setattr(
        nb201_spos, "build_supernet", lambda *a, **k: built.append(build_supernet(*a, **k)) or built[-1]
    )
    begin = nb201_spos.EpochTimer.on_epoch_begin

    def record_rate(self, epoch, logs=None):
        rates.append(float(self.model.optimizer.learning_rate))
        begin(self, epoch, logs)

    monkeypatch.setattr(nb201_spos.EpochTimer, "on_epoch_begin", record_rate)
    nb201_spos.main(ARGS + ["--output", str(output), "--resume", "--learning-rate", "0.1"])

    printed = capsys.readouterr().out
    assert (
        "Resuming with learning_rate 0.1 (was 0.2): the run differs from an "
        "uninterrupted one after epoch 1.\nResuming after epoch 1 of 2."
    ) in printed
    config = json.loads((output / "config.json").read_text())
    assert config["learning_rate"] == 0.1
    assert config["resumed_changes"] == [{"epoch": 1, "key": "learning_rate", "old": 0.2, "new": 0.1}]
    # The cosine schedule is the new rate's, the restored step count its
    # position: epoch 2 starts at step 2 of 4, 0.1 * (1 + cos(pi / 2)) / 2.
    optimizer = built[0].optimizer
    assert optimizer._learning_rate.initial_learning_rate == 0.1
    assert int(optimizer.iterations.numpy()) == 4
    assert rates == [pytest.approx(0.05)]

    # A later resumption keeps the record, and adds its own lowering.
    paths = nb201_spos.output_paths(output)
    nb201_spos._prepare_output(_config("--learning-rate", "0.1"), paths, True, False)
    assert json.loads((output / "config.json").read_text())["resumed_changes"] == config["resumed_changes"]
    nb201_spos._prepare_output(_config("--learning-rate", "0.05"), paths, True, False)
    assert json.loads((output / "config.json").read_text())["resumed_changes"] == [
        {"epoch": 1, "key": "learning_rate", "old": 0.2, "new": 0.1},
        {"epoch": 2, "key": "learning_rate", "old": 0.1, "new": 0.05},
    ]


def test_resume_refuses_a_higher_learning_rate_or_another_change(interrupted):
    saved = (interrupted / "config.json").read_text()
    argv = ARGS + ["--output", str(interrupted), "--resume"]
    with pytest.raises(ValueError) as error:
        nb201_spos.main(argv + ["--learning-rate", "0.4"])
    assert str(error.value) == (
        "Cannot resume with a different training configuration (key: (saved, requested)): "
        "{'learning_rate': (0.2, 0.4)}. Pass the same arguments as the interrupted run "
        "(`learning_rate`, `clip_norm` may only be lowered)."
    )
    with pytest.raises(ValueError, match=r"\{'batch_size': \(64, 32\)\}\. Pass the same"):
        nb201_spos.main(argv + ["--learning-rate", "0.1", "--batch-size", "32"])
    assert (interrupted / "config.json").read_text() == saved


def test_resume_records_the_epoch_of_the_checkpoint_it_goes_on_from(interrupted, tmp_path, capsys):
    output = _copy(interrupted, tmp_path)
    checkpoints = output / "checkpoints"
    # A damaged later checkpoint: the run goes on from epoch 1.
    (checkpoints / "epoch_00002.npz").write_bytes((checkpoints / "epoch_00001.npz").read_bytes()[:100])
    paths = nb201_spos.output_paths(output)
    nb201_spos._prepare_output(_config("--learning-rate", "0.1"), paths, True, False)
    assert "the run differs from an uninterrupted one after epoch 1." in capsys.readouterr().out
    assert json.loads((output / "config.json").read_text())["resumed_changes"][0]["epoch"] == 1

    # Without any checkpoint the run starts again: no change to record.
    shutil.rmtree(checkpoints)
    nb201_spos._prepare_output(_config("--learning-rate", "0.05"), paths, True, False)
    assert "No checkpoint to resume from: the run starts again with learning_rate 0.05 (was 0.1)." in (
        capsys.readouterr().out
    )
    config = json.loads((output / "config.json").read_text())
    assert config["learning_rate"] == 0.05
    assert "resumed_changes" not in config
