import json

import keras
import numpy as np
import pytest

import kerasnas
from kerasnas import cli
from kerasnas import data as nas_data
from kerasnas.recipes import nb201_spos


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_export_from_saved_supernet(smoke_run, tmp_path, capsys):
    output, result = smoke_run
    status = cli.main([
        "export", "--checkpoint", str(output / "supernet.keras"),
        "--arch", result["arch_string"], "--output", str(tmp_path),
    ])
    assert status == 0
    assert "child.keras" in capsys.readouterr().out
    assert (tmp_path / "saved_model").is_dir()
    exported = json.loads((tmp_path / "export.json").read_text())
    assert exported["arch"] == result["arch"]
    x = next(iter(nas_data.load("digits", "test", batch_size=16, image_size=16)))[0]
    np.testing.assert_array_equal(
        _outputs(keras.saving.load_model(tmp_path / "child.keras"), x),
        _outputs(keras.saving.load_model(output / "child.keras"), x),
    )


def test_export_arch_as_json_with_bn_calibration(smoke_run, tmp_path):
    output, result = smoke_run
    cli.main([
        "export", "--checkpoint", str(output / "supernet.keras"),
        "--arch", json.dumps(result["arch"]), "--output", str(tmp_path / "a"),
        "--bn-calibration-data", "digits", "--bn-calibration-steps", "2",
    ])
    assert (tmp_path / "a" / "child.keras").is_file()
    # A recipe's result.json is an accepted --arch too.
    space = kerasnas.spaces.NasBench201()
    assert cli.parse_arch(space, str(output / "result.json")) == result["arch"]


@pytest.mark.parametrize("argv, message", [
    (["export", "--checkpoint", "x.keras", "--output", "o"], "required: --arch"),
    (["export", "--checkpoint", "{supernet}", "--arch", "|conv~0|", "--output", "o"],
     "argument `--arch`"),
    (["export", "--checkpoint", "missing.keras", "--arch", "{{}}", "--output", "o"],
     "argument `checkpoint`"),
    (["export", "--checkpoint", "{supernet}", "--arch", "{arch}", "--output", "o",
      "--bn-calibration-steps", "3"], "argument `--bn-calibration-data`"),
    (["export", "--checkpoint", "{supernet}", "--arch", "{arch}", "--output", "o",
      "--epochs", "3"], "unrecognized arguments: --epochs 3"),
    (["train"], "required: --recipe"),
    (["train", "--recipe", "darts"], "argument --recipe: invalid choice"),
    (["fit"], "invalid choice: 'fit'"),
])
def test_bad_arguments(smoke_run, argv, message, capsys):
    output, result = smoke_run
    values = {"supernet": str(output / "supernet.keras"), "arch": result["arch_string"]}
    argv = [a.format(**values) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_delegates_to_the_recipe(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(nb201_spos, "main", lambda argv, prog: calls.append((argv, prog)))
    assert cli.main(["train", "--recipe", "nb201-spos", "--epochs", "3", "--resume"]) == 0
    assert calls == [(["--epochs", "3", "--resume"], "kerasnas train --recipe nb201-spos")]
    monkeypatch.undo()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--recipe", "nb201-spos", "--help"])
    assert exit_info.value.code == 0
    assert "--num-candidates" in capsys.readouterr().out
