"""Bad inputs on the command line: one line each, naming what is wrong.

Every case of `CASES` is one bad input (issue #33's probes, and each new
input a command reads): the command must exit non-zero with one line on
standard error that holds the expected fragment, no traceback, and no
output directory left behind. The silent wrong results of the issue (stale
scores, a stray label) have tests of their own below.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import kerasnas
from kerasnas import cli
from kerasnas.recipes.common import load_supernet
from nas_helpers import compile_sgd

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NB201 = dict(num_classes=10, channels=4, cells_per_stage=1, input_shape=(8, 8, 3))


def _digits_npz(path, **changes):
    """The digits as an `.npz` file (uint8), with `changes` to its keys."""
    arrays = {}
    for split in ("train", "test"):
        x, y = kerasnas.data.load_arrays("digits", split)
        arrays[f"x_{split}"] = np.round(x * 255).astype("uint8")[:200]
        arrays[f"y_{split}"] = y[:200]
    arrays["label_names"] = np.array([str(k) for k in range(10)])
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("bad_inputs")
    space = kerasnas.spaces.NasBench201(**NB201)
    supernet = compile_sgd(space.build_supernet(seed=0))
    supernet.save(root / "supernet.keras")
    diverged = compile_sgd(space.build_supernet(seed=0))
    kernel = next(v for v in diverged.network_variables if v.path.endswith("classifier/kernel"))
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    diverged.save(root / "nan_weights.keras")
    from nas_helpers import tiny_mobilenet

    mobile = compile_sgd(tiny_mobilenet(input_shape=(8, 8, 3), stage_strides=(1, 1)).build_supernet(seed=0))
    mobile.save(root / "mobilenet.keras")
    (root / "garbage.keras").write_bytes(b"this is not a keras file" * 10)
    (root / "empty.keras").write_bytes(b"")
    (root / "garbage.npz").write_bytes(b"\x80\x04garbage" * 10)
    (root / "garbage.json").write_bytes(bytes(range(256)))
    (root / "not_archs.json").write_text(json.dumps({"foo": {"val_acc_200": 1, "test_acc_200": 2}}))
    (root / "a_file").write_text("I am a file\n")
    x, y = kerasnas.data.load_arrays("digits", "train")
    stray = y[:200].copy()
    stray[17] = 57
    negative = y[:200].copy()
    negative[3] = -1
    nan = np.round(x[:200] * 255) / 255
    nan[5, 1, 1, 1] = np.nan
    paths = {
        "root": str(root),
        "supernet": str(root / "supernet.keras"),
        "nan_weights": str(root / "nan_weights.keras"),
        "mobilenet": str(root / "mobilenet.keras"),
        "benchmark": str(SHARED_DATA / "nb201"),
        "good": _digits_npz(root / "good.npz"),
        "stray": _digits_npz(root / "stray.npz", y_train=stray),
        "stray_undeclared": _digits_npz(root / "stray_undeclared.npz", y_train=stray, label_names=None),
        "negative": _digits_npz(root / "negative.npz", y_train=negative),
        "strings": _digits_npz(root / "strings.npz", x_test=np.full((200, 8, 8, 3), "a")),
        "lengths": _digits_npz(root / "lengths.npz", y_test=y[:150]),
        "nan": _digits_npz(root / "nan.npz", x_train=nan.astype("float32")),
        "gray28": _digits_npz(root / "gray28.npz", x_train=np.zeros((200, 28, 28, 1), "uint8"),
                              x_test=np.zeros((200, 28, 28, 1), "uint8")),
        "many_classes": _digits_npz(root / "many_classes.npz",
                                    label_names=np.array([str(k) for k in range(20)])),
        "empty_test": _digits_npz(root / "empty_test.npz", x_test=np.zeros((0, 8, 8, 3), "uint8"),
                                  y_test=np.zeros((0,), "int64")),
    }
    return paths


def _run(argv, capsys):
    """`(exit status, standard error)` of `kerasnas ARGV`."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    return status, capsys.readouterr().err


RANK = ["rank", "--benchmark", "{benchmark}", "--num-archs", "3", "--batch-size", "64"]

# (argv, expected fragment of the one-line message); {name} is a file of
# the fixture, {out} a fresh output directory.
CASES = [
    # Files that are not what they claim to be.
    (RANK + ["--checkpoint", "{root}/garbage.keras", "--data", "{good}", "--output", "{out}"],
     "Expected a supernet saved as .keras (a zip archive). Received: "
     "checkpoint='{root}/garbage.keras' (its first bytes are b'this')"),
    (RANK + ["--checkpoint", "{root}/empty.keras", "--data", "{good}", "--output", "{out}"],
     "(an empty file)"),
    (RANK + ["--checkpoint", "{root}/missing.keras", "--data", "{good}", "--output", "{out}"],
     "(no such file)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{root}/garbage.npz", "--output", "{out}"],
     "not a zip archive"),
    (RANK[:2] + ["{root}/garbage.json"] + RANK[3:]
     + ["--checkpoint", "{supernet}", "--data", "{good}", "--output", "{out}"],
     "not UTF-8 JSON"),
    (RANK[:2] + ["{root}/not_archs.json"] + RANK[3:]
     + ["--checkpoint", "{supernet}", "--data", "{good}", "--output", "{out}"],
     "the key 'foo' is not a NAS-Bench-201 architecture string"),
    # Data that would train or score the wrong thing.
    (RANK + ["--checkpoint", "{supernet}", "--data", "{stray}", "--output", "{out}"],
     "Expected labels in [0, 10) (10 classes, from label_names)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{stray_undeclared}", "--output", "{out}"],
     "y_train[17] = 57 makes 58 classes, but 47 of them have no example (10..56)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{negative}", "--output", "{out}"],
     "(y_train[3] = -1)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{strings}", "--output", "{out}"],
     "Expected `x_test` numeric images (uint8 or float)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{lengths}", "--output", "{out}"],
     "(200 images in x_test, 150 labels in y_test)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{nan}", "--output", "{out}"],
     "Expected `x_train` finite pixels"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{gray28}", "--output", "{out}"],
     "Expected images with 3 channels (the supernet's input is (8, 8, 3))"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{many_classes}", "--output", "{out}"],
     "Expected at most 10 classes (the supernet's classifier has 10 outputs)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{empty_test}", "--output", "{out}"],
     "Expected a non-empty dataset"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{good}", "--output", "{out}",
             "--bn-calibration-data", "{gray28}", "--bn-calibration-steps", "1"],
     "argument `--bn-calibration-data`. Expected images with 3 channels"),
    # The wrong supernet, the wrong output.
    (RANK + ["--checkpoint", "{mobilenet}", "--data", "{good}", "--output", "{out}"],
     "Expected a supernet of the benchmark's space"),
    (RANK + ["--checkpoint", "{nan_weights}", "--data", "{good}", "--output", "{out}"],
     "The supernet's weights are not finite"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{good}", "--output", "{root}/a_file"],
     "Expected a directory (new or existing). Received: '{root}/a_file' (an existing file)"),
    (RANK + ["--checkpoint", "{supernet}", "--data", "{good}", "--output", "{root}/a_file/sub"],
     "is a file)"),
    (["export", "--checkpoint", "{supernet}", "--arch", "{{\"1<-0\": \"conv9\"}}",
      "--output", "{out}"], "argument `--arch`"),
    (["search", "--checkpoint", "{supernet}", "--data", "{stray}", "--output", "{out}"],
     "y_train[17] = 57"),
    (["train", "--recipe", "nb201-spos", "--preset", "smoke", "--data", "{stray}",
      "--output", "{out}"], "y_train[17] = 57"),
]


@pytest.mark.parametrize("argv, fragment", CASES, ids=[f"case{k}" for k in range(len(CASES))])
def test_bad_input_gets_one_clear_line(files, argv, fragment, tmp_path, capsys):
    out = tmp_path / "out"
    values = dict(files, out=str(out))
    argv = [a.format(**values) for a in argv]
    status, err = _run(argv, capsys)
    assert status not in (0, None), err
    assert fragment.format(**values) in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing half-written left behind


def test_a_diverged_supernet_exits_1(files, tmp_path, capsys):
    status, err = _run([a.format(**files) for a in RANK] + [
        "--checkpoint", files["nan_weights"],
        "--data", files["good"], "--output", str(tmp_path / "out")], capsys)
    assert status == 1 and err.count("\n") == 1


def test_rank_never_reports_stale_scores(files, tmp_path, capsys):
    # Issue #33, silent wrong result 1: a rerun into the same folder with
    # other data (or another checkpoint) reported the old scores.
    out = str(tmp_path / "ranked")
    rank = [a.format(**files) for a in RANK] + ["--output", out]
    assert _run(rank + ["--checkpoint", files["supernet"], "--data", files["good"]], capsys)[0] == 0
    status, err = _run(rank + ["--checkpoint", files["supernet"], "--data", "digits"], capsys)
    assert status == 2 and "other evaluation images" in err and "--overwrite" in err
    report = json.loads(open(os.path.join(out, "report.json")).read())
    assert report["scored_with"]["described"]["checkpoint"] == files["supernet"]
    assert report["scored_with"]["weights"] == load_supernet(
        files["supernet"]).fingerprint()
    other = os.path.join(files["root"], "other.keras")
    space = kerasnas.spaces.NasBench201(**NB201)
    compile_sgd(space.build_supernet(seed=1)).save(other)
    status, err = _run(rank + ["--checkpoint", other, "--data", files["good"]], capsys)
    assert status == 2 and "other weights (checkpoint)" in err

    # --overwrite scores again: the report is the fresh one of another folder.
    assert _run(rank + ["--checkpoint", files["supernet"], "--data", "digits", "--overwrite"],
                capsys)[0] == 0
    fresh = str(tmp_path / "fresh")
    assert _run([a if a != out else fresh for a in rank]
                + ["--checkpoint", files["supernet"], "--data", "digits"], capsys)[0] == 0
    with open(os.path.join(out, "ranking.csv")) as a, open(os.path.join(fresh, "ranking.csv")) as b:
        assert a.read() == b.read()


def test_a_stray_label_never_changes_the_class_count(files):
    # Issue #33, silent wrong result 2: one label 57 among ten classes made
    # a 58-class dataset (and network).
    for name in ("stray", "stray_undeclared", "negative"):
        with pytest.raises(ValueError, match=r"y_train\[\d+\] = (57|-1)"):
            kerasnas.data.info(files[name])
        with pytest.raises(ValueError, match=r"y_train\[\d+\] = (57|-1)"):
            kerasnas.data.load(files[name], "test")  # whichever split is read
    assert kerasnas.data.info(files["good"])["num_classes"] == 10
    # A declared class count wins over the labels seen (classes 10..19 unused).
    assert kerasnas.data.info(files["many_classes"])["num_classes"] == 20


def test_recipe_scripts_report_errors_in_one_line(files, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, os.path.join(root, "recipes", "nb201_spos.py"), "--data", files["stray"],
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 2
    assert "nb201_spos.py: error: Invalid value for argument `name_or_path`" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unwritable_output_is_one_line(files, tmp_path, capsys, monkeypatch):
    # As root (CI) a read-only folder is still writable: the failure of the
    # first write is simulated, as a read-only file system gives it.
    from kerasnas.evaluation import report

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro" / "scores.csv"))

    monkeypatch.setattr(report, "rank_architectures", refuse)
    status, err = _run([a.format(**files) for a in RANK] + [
        "--checkpoint", files["supernet"], "--data", files["good"],
        "--output", str(tmp_path / "ro")], capsys)
    assert status == 2 and "Traceback" not in err
    assert err.strip().endswith(f"PermissionError: [Errno 13] Permission denied: '{tmp_path}/ro/scores.csv'")
    assert not (tmp_path / "ro").exists()


def test_the_api_refuses_another_space_before_writing(files, tmp_path):
    benchmark = kerasnas.benchmarks.NasBench201(files["benchmark"])
    mobile = load_supernet(files["mobilenet"])
    data = kerasnas.data.load(files["good"], "test", batch_size=64)
    with pytest.raises(ValueError, match="argument `supernet`. Expected a supernet of the benchmark"):
        kerasnas.evaluation.rank_and_report(mobile, benchmark, benchmark.archs()[:2], data, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_changed_configuration_on_resume_is_one_line(tmp_path, capsys):
    from kerasnas.recipes import nb201_spos
    from kerasnas.recipes.common import write_json

    out = tmp_path / "run"
    saved = nb201_spos.config_from_args(nb201_spos.build_parser().parse_args(["--preset", "smoke"]))
    write_json(out / "config.json", saved)
    status, err = _run(["train", "--recipe", "nb201-spos", "--preset", "smoke", "--output", str(out),
                        "--resume", "--seed", "5"], capsys)
    assert status == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "Cannot resume with a different training configuration" in err and "'seed': (0, 5)" in err
    assert (out / "config.json").exists()  # the run's own folder is left alone
