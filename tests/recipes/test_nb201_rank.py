import csv
import json

import numpy as np
import pytest
from scipy import stats

from kerasnas import cli
from kerasnas.recipes import nb201_rank

# The smoke preset, smaller still: 2 epochs of 4 steps, 24 architectures.
ARGS = ["--preset", "smoke", "--limit", "256", "--num-archs", "24", "--monitor-archs", "12",
        "--verbose", "0"]


@pytest.fixture(scope="module")
def rank_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("rank")
    return output, nb201_rank.main(ARGS + ["--output", str(output)])


def test_recipe_writes_a_consistent_report(rank_run, shared_data):
    output, result = rank_run
    with open(output / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and list(rows[0]) == ["arch", "predicted", "true", "params", "flops"]
    truth = json.loads((shared_data / "nb201" / "nasbench201_cifar10.json").read_text())
    predicted = np.array([float(r["predicted"]) for r in rows])
    true = np.array([float(r["true"]) for r in rows])
    np.testing.assert_allclose(true, [truth[r["arch"]]["test_acc_200"] for r in rows])
    report = json.loads((output / "report.json").read_text())
    assert report["kendall_tau"] == pytest.approx(stats.kendalltau(predicted, true)[0])
    params = np.array([float(r["params"]) for r in rows])
    assert report["baselines"]["params"]["kendall_tau"] == pytest.approx(stats.kendalltau(params, true)[0])
    # The monitor scored every epoch (smoke: monitor_every=1), as the history holds.
    assert result["curve"]["epoch"] == [1, 2]
    history = json.loads((output / "history.json").read_text())
    assert history["rank_kendall_tau"] == result["curve"]["kendall_tau"]
    for name in ("scatter.png", "kt_over_epochs.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The ranking's cost is its scores' seconds (whole across resumed processes).
    with open(output / "scores.csv") as f:
        seconds = sum(float(r["seconds"]) for r in csv.DictReader(f))
    assert seconds > 0 and result["rank_seconds"] == pytest.approx(seconds)


def test_cli_rank_matches_the_recipe_and_resumes(rank_run, tmp_path, capsys):
    output, _ = rank_run
    argv = [
        "rank", "--checkpoint", str(output / "supernet.keras"),
        "--benchmark", nb201_rank.PRESETS["smoke"]["benchmark"],
        "--data", nb201_rank.PRESETS["smoke"]["data"], "--num-archs", "24",
        "--batch-size", "256", "--output", str(tmp_path),
    ]
    assert cli.main(argv) == 0
    assert "baseline: params" in capsys.readouterr().out
    # Same architectures, same data and batches: the recipe's numbers (whose
    # evaluation used limit=256 images: compare the architectures only).
    with open(output / "ranking.csv") as f:
        recipe_archs = [r["arch"] for r in csv.DictReader(f)]
    with open(tmp_path / "ranking.csv") as f:
        cli_rows = list(csv.DictReader(f))
    assert [r["arch"] for r in cli_rows] == recipe_archs
    # A rerun finds every score in scores.csv and rewrites the same report.
    before = (tmp_path / "report.json").read_text()
    assert cli.main(argv) == 0
    assert (tmp_path / "report.json").read_text() == before
    assert json.loads(before)["classes"] == "exact"
    # Every architecture scored alone: the same scores (exact classes).
    assert cli.main(argv[:-1] + [str(tmp_path / "every"), "--classes", "none"]) == 0
    with open(tmp_path / "every" / "ranking.csv") as f:
        every = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["predicted"]) for r in every],
                               [float(r["predicted"]) for r in cli_rows], atol=1e-4)


@pytest.mark.parametrize("extra, message", [
    (["--num-archs", "0"], "argument `--num-archs`"),
    (["--num-archs", "99999"], "argument `num`"),
    (["--dataset", "mnist"], "argument `dataset`"),
    (["--bn-calibration-steps", "2"], "argument `--bn-calibration-data`"),
])
def test_cli_rank_bad_input(rank_run, tmp_path, capsys, extra, message):
    output, _ = rank_run
    argv = [
        "rank", "--checkpoint", str(output / "supernet.keras"),
        "--benchmark", nb201_rank.PRESETS["smoke"]["benchmark"],
        "--data", nb201_rank.PRESETS["smoke"]["data"], "--output", str(tmp_path),
    ] + extra
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("train_split, eval_split, held_out, images", [
    ("train", "test", True, 1017),
    ("search_train", "search_valid", True, 2543),
    ("search_train", "test", True, 1017),
    ("train", "search_valid", False, 2543),   # search_valid is half of train
    ("train", "train", False, 5085),
    ("search_train", "search_train", False, 2542),
])
def test_scored_on_says_whether_the_supernet_saw_the_images(
    train_split, eval_split, held_out, images, shared_data
):
    from kerasnas.recipes.common import scored_on

    data = str(shared_data / "cifar" / "cifar10_subset.npz")
    described = scored_on(data, train_split, eval_split)
    assert described["held_out"] is held_out and described["images"] == images
    kind = "held-out" if held_out else "training"
    assert described["label"] == f"{images} {kind} images ({eval_split})"
    assert scored_on(data, train_split, eval_split, 100)["images"] == 100


def test_a_finished_run_resumes_without_ranking_again(rank_run, monkeypatch):
    output, result = rank_run

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was ranked again")

    monkeypatch.setattr(nb201_rank, "rank_and_report", fail)
    again = nb201_rank.main(ARGS + ["--output", str(output), "--resume"])
    assert again["report"]["kendall_tau"] == result["report"]["kendall_tau"]
    assert again["curve"]["kendall_tau"] == result["curve"]["kendall_tau"]
    assert again == json.loads((output / "result.json").read_text())
    # A different ranking setting is not the finished run: it ranks.
    with pytest.raises(AssertionError, match="ranked again"):
        nb201_rank.main(ARGS + ["--output", str(output), "--resume", "--num-archs", "20"])


def test_an_archived_run_is_finished_without_its_weights(rank_run, tmp_path, monkeypatch):
    import shutil

    from kerasnas.recipes.common import archive_runs

    output, result = rank_run
    archive = tmp_path / "archive"
    summary = archive_runs(output.parent, archive)
    copy = archive / output.name
    assert summary["finished"] == [output.name]
    assert not list(copy.rglob("*.npz")) and not list(copy.rglob("*.keras"))
    assert not (copy / "tensorboard").exists() and not list(copy.rglob("*.png"))
    assert (copy / "ranking.csv").read_bytes() == (output / "ranking.csv").read_bytes()

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was ranked again")

    monkeypatch.setattr(nb201_rank, "rank_and_report", fail)
    again = nb201_rank.main(ARGS + ["--output", str(copy), "--resume"])
    assert again == json.loads((output / "result.json").read_text())
    # An archive of a different run length is not finished.
    config = dict(result["config"], epochs=result["config"]["epochs"] + 1)
    assert nb201_rank.completed_result(nb201_rank.nb201_spos.output_paths(copy), config) is None

    # An unfinished run keeps only its latest checkpoint, bitwise; archiving
    # again after it moved on replaces the older checkpoint.
    running = tmp_path / "runs" / "running"
    shutil.copytree(output, running)
    (running / "result.json").unlink()
    checkpoints = sorted((running / "checkpoints").glob("epoch_*.npz"))
    newest = checkpoints[-1]
    newest.rename(newest.with_name("moved.tmp"))
    summary = archive_runs(running.parent, tmp_path / "saved")
    kept = sorted((tmp_path / "saved" / "running" / "checkpoints").glob("*.npz"))
    assert summary["unfinished"] == ["running"] and [p.name for p in kept] == [checkpoints[-2].name]
    assert kept[0].read_bytes() == checkpoints[-2].read_bytes()
    newest.with_name("moved.tmp").rename(newest)
    archive_runs(running.parent, tmp_path / "saved")
    kept = sorted((tmp_path / "saved" / "running" / "checkpoints").glob("*.npz"))
    assert [p.name for p in kept] == [newest.name] and kept[0].read_bytes() == newest.read_bytes()
    # A truncated latest checkpoint is not what the run resumes from: the
    # archive keeps the last readable one.
    good = newest.read_bytes()
    newest.write_bytes(good[:100])
    archive_runs(running.parent, tmp_path / "truncated")
    kept = sorted((tmp_path / "truncated" / "running" / "checkpoints").glob("*.npz"))
    assert [p.name for p in kept] == [checkpoints[-2].name]
    newest.write_bytes(good)
    with pytest.raises(ValueError, match="source"):
        archive_runs(tmp_path / "missing", tmp_path / "x")
