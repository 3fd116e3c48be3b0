import json
import os

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


USER_SPACE = '''
import keras
import kerasnas


@keras.saving.register_keras_serializable("user_space")
class SmallSpace(kerasnas.spaces.NasBench201):
    """A user's own space (here a small NAS-Bench-201, registered under its own name)."""
'''

TWO_RUNS = '''
from kerasnas import cli

def run(argv):
    try:
        return cli.main(argv)
    except SystemExit as exit_info:
        return exit_info.code

argv = ["export", "--checkpoint", "supernet.keras", "--arch", {arch!r}, "--output", "child"]
print("without", run(argv))
print("with", run(argv[:2] + ["--import", "user_space"] + argv[2:]))
'''


def test_import_option_loads_a_users_space(tmp_path):
    # Issue #34: a supernet of a user's space could not be loaded by the
    # command line ("Could not locate class"): `--import MODULE` imports it.
    import subprocess
    import sys

    (tmp_path / "user_space.py").write_text(USER_SPACE)
    sys.path.insert(0, str(tmp_path))
    try:
        import user_space

        space = user_space.SmallSpace(num_classes=10, channels=4, cells_per_stage=1, input_shape=(8, 8, 3))
        space.build_supernet(seed=0).save(tmp_path / "supernet.keras")
        arch = space.to_string(space.sample(0))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("user_space", None)
    code = TWO_RUNS.format(arch=arch)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert "without 2" in result.stdout and "with 0" in result.stdout, result.stdout + result.stderr[-3000:]
    assert ("Could not locate class 'SmallSpace', which it needs. Import the module "
            "that defines it first (`kerasnas --import MODULE ...`)") in result.stderr
    assert (tmp_path / "child" / "child.keras").is_file()


def test_import_option_refuses_a_missing_module(capsys):
    assert cli.main(["--import", "no_such_module_here", "train", "--recipe", "nb201-spos"]) == 2
    assert "argument `--import`. Expected an importable module" in capsys.readouterr().err
