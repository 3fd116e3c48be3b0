"""The search recipes (nb201-search, mobilenet-search) and `kerasnas search`."""

import json
import shutil

import keras
import numpy as np
import pytest

from kerasnas import cli
from kerasnas import data as nas_data
from kerasnas.recipes import mobilenet_search
from kerasnas.recipes import nb201_search
from kerasnas.recipes import search_common
from kerasnas.search import OneShotTuner


def _accuracy(model, dataset):
    hits = total = 0
    for x, y in dataset:
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        hits += int(np.sum(np.argmax(logits, -1) == y.numpy()))
        total += len(y)
    return hits / total


def test_nb201_search_end_to_end(search_run):
    output, report = search_run
    assert json.loads((output / "search.json").read_text()) == report
    trials = report["trials"]
    assert report["num_trials"] == len(trials) == 10
    assert len({t["arch_string"] for t in trials}) == 10
    assert len(list((output / "search").glob("trial_*"))) == 10
    scores = [t["val_accuracy"] for t in report["top_k"]]
    assert scores == sorted(scores, reverse=True) == sorted(
        (t["val_accuracy"] for t in trials), reverse=True)[:len(scores)]
    assert report["best"] == report["top_k"][0] and report["arch"] == report["best"]["arch"]
    assert report["seconds_per_trial"] > 0
    assert report["best"]["arch_string"] in (output / "top.txt").read_text()
    for name in ("supernet.keras", "config.json", "history.json", "best/child.keras",
                 "best/saved_model", "best/architecture.json"):
        assert (output / name).exists(), name
    # Searched on the held-out half, never on the test split.
    assert report["validation"] == {
        "data": "digits search_valid", "num_examples": 128, "bn_calibration_steps": 2}
    # search.json is a valid `kerasnas export --arch`.
    assert cli.parse_arch(nb201_search.nb201_spos.build_space(report["config"])[0],
                          str(output / "search.json")) == report["arch"]


def test_exported_child_scores_what_its_trial_scored(search_run):
    output, report = search_run
    child = keras.saving.load_model(output / "best" / "child.keras")
    validation = nas_data.load("digits", "search_valid", batch_size=64, image_size=16, limit=128)
    # BN statistics recalibrated as in the trial, so any batching gives them.
    assert _accuracy(child, validation) == pytest.approx(report["best"]["val_accuracy"], abs=1e-9)
    record = json.loads((output / "best" / "architecture.json").read_text())
    assert record["arch"] == report["arch"]


def test_resume_after_a_finished_run_adds_no_trial(search_run, search_args, tmp_path):
    output, report = search_run
    shutil.copytree(output, tmp_path / "run")
    resumed = nb201_search.main(search_args + ["--output", str(tmp_path / "run"), "--resume"])
    assert [t["trial_id"] for t in resumed["trials"]] == [t["trial_id"] for t in report["trials"]]
    assert resumed["trials"] == report["trials"]
    assert resumed["seconds_per_trial"] == report["seconds_per_trial"]
    assert len(list((tmp_path / "run" / "search").glob("trial_*"))) == 10
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["loss"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--oracle", "darwin"], "argument --oracle: invalid choice"),
    (["--max-trials", "-3"], "argument --max-trials: expected a positive int"),
    (["--max-flops", "lots"], "argument --max-flops: expected a number"),
    (["--population-size", "4", "--sample-size", "5"], "Expected at most population_size=4"),
    (["--max-params", "10"], "Expected constraints that some architecture satisfies"),
    (["--search-split", "test"], "argument --search-split: invalid choice"),
])
def test_nb201_search_bad_arguments(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        nb201_search.main(["--output", str(tmp_path)] + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_refuses_to_mix_searches(search_run, search_args, capsys):
    output, _ = search_run
    with pytest.raises(SystemExit):
        nb201_search.main(search_args + ["--output", str(output), "--checkpoint",
                                         str(output / "supernet.keras")])
    assert "already holds a search" in capsys.readouterr().err


def test_mobilenet_search_respects_the_flops_budget(tmp_path):
    report = mobilenet_search.main([
        "--preset", "smoke", "--epochs", "1", "--limit", "128", "--max-trials", "8",
        "--population-size", "4", "--sample-size", "2", "--bn-calibration-steps", "2",
        "--verbose", "0", "--output", str(tmp_path),
    ])
    space, _ = mobilenet_search.build_space(report["config"])
    budget = search_common.resolve_budget(space, "median", "flops")
    assert report["constraints"]["max_flops"] == budget
    assert report["num_trials"] == 8
    for trial in report["trials"]:
        assert trial["flops"] == space.flops(trial["arch"]) <= budget
    # The budget binds: about half of the space is over it.
    flops = [space.flops(a) for a in space.enumerate()]
    assert 0.3 < np.mean(np.array(flops) > budget) < 0.7
    child = keras.saving.load_model(tmp_path / "best" / "child.keras")
    assert child.count_params() > 0


def test_search_command_and_its_resume(search_run, tmp_path, shared_data, monkeypatch):
    output, _ = search_run
    argv = [
        "search", "--checkpoint", str(output / "supernet.keras"), "--data", "digits",
        "--limit", "128", "--batch-size", "64", "--max-trials", "6",
        "--population-size", "4", "--sample-size", "2", "--max-params", "25K",
        "--bn-calibration-data", "digits", "--bn-calibration-split", "search_train",
        "--bn-calibration-steps", "2", "--benchmark", str(shared_data / "nb201"),
        "--top-k", "3", "--verbose", "0",
    ]
    assert cli.main(argv + ["--export", "--output", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "search.json").read_text())
    assert report["num_trials"] == 6 and len(report["top_k"]) == 3
    assert all(t["params"] <= 25_000 for t in report["trials"])
    assert all(0 < t["benchmark_test_acc"] < 100 for t in report["top_k"])
    assert "nb201_test" in (tmp_path / "a" / "top.txt").read_text()
    assert (tmp_path / "a" / "best" / "child.keras").is_file()

    # Killed right after its third trial was saved, then resumed: the same
    # six trials as the uninterrupted search.
    class Killed(Exception):
        pass

    end = OneShotTuner.on_trial_end

    def end_then_die(self, trial):
        end(self, trial)
        if len(self.oracle.end_order) == 3:
            raise Killed

    monkeypatch.setattr(OneShotTuner, "on_trial_end", end_then_die)
    with pytest.raises(Killed):
        cli.main(argv + ["--output", str(tmp_path / "b")])
    monkeypatch.undo()
    assert len(list((tmp_path / "b" / "search").glob("trial_*"))) == 3
    assert cli.main(argv + ["--output", str(tmp_path / "b"), "--resume"]) == 0
    resumed = json.loads((tmp_path / "b" / "search.json").read_text())
    assert [t["arch"] for t in resumed["trials"]] == [t["arch"] for t in report["trials"]]
    np.testing.assert_allclose(
        [t["val_accuracy"] for t in resumed["trials"]],
        [t["val_accuracy"] for t in report["trials"]], atol=1e-9,
    )


@pytest.mark.parametrize("argv, message", [
    (["--oracle", "darwin"], "argument --oracle: invalid choice"),
    (["--max-trials", "-3"], "argument --max-trials: expected a positive int"),
    (["--max-flops", "-1"], "argument --max-flops: expected a number >= 0"),
    (["--resume", "--overwrite"], "at most one of `--resume` and `--overwrite`"),
    (["--sample-size", "60"], "Expected at most population_size=50"),
    (["--bn-calibration-steps", "2"], "argument `--bn-calibration-data`"),
    (["--max-params", "10"], "Expected constraints that some architecture satisfies"),
    (["--checkpoint", "missing.keras"], "argument `checkpoint`"),
])
def test_search_command_bad_arguments(search_run, argv, message, tmp_path, capsys):
    output, _ = search_run
    base = ["search", "--checkpoint", str(output / "supernet.keras"), "--data", "digits",
            "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(base + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
