"""The PA&DA recipe: its table, and every method's `supernet.keras` ranked
and searched by the `kerasnas` command (the PA supernets used to fail to
reload)."""

import csv
import json

import numpy as np
import pytest

from kerasnas import cli
from kerasnas.recipes import nb201_pada
from kerasnas.recipes import nb201_rank

METHODS = list(nb201_rank.METHODS)
# The smoke preset, smaller: 2 epochs of 4 steps on search_train, scored on
# 12 architectures of search_valid.
ARGS = ["--preset", "smoke", "--limit", "256", "--num-archs", "12", "--monitor-archs", "6",
        "--train-split", "search_train", "--eval-split", "search_valid", "--eval-limit", "256",
        "--fit-limit", "64", "--monitor-every", "2", "--verbose", "0"]


@pytest.fixture(scope="module")
def pada_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("pada")
    table = nb201_pada.main(ARGS + ["--methods", *METHODS, "--seeds", "0", "--output", str(output)])
    return output, table


def test_table_and_linear_schedule(pada_run):
    output, table = pada_run
    rows = table["rows"]
    assert set(rows) == {*METHODS, *(f"{m} [fit]" for m in METHODS), "baseline: params",
                         "baseline: flops"}
    # δ = epoch / epochs: the distribution set after epoch 0 is uniform, so
    # 2 epochs of PA are 2 epochs of SPOS, exactly.
    assert rows["pa"]["kendall_tau"] == rows["spos"]["kendall_tau"]
    assert rows["pada"]["kendall_tau"] != rows["spos"]["kendall_tau"]  # DA's draws differ
    history = json.loads((output / "pada" / "seed_0" / "history.json").read_text())
    assert history["data_tau"] == [0.0, 0.5] and history["path_p_none"][0] == pytest.approx(0.2)
    # ... and after epoch 1 (δ = 0.5) it is not: the saved PA state is not trivial.
    assert history["path_p_none"][1] != pytest.approx(0.2)
    assert "Kendall tau" in (output / "table.txt").read_text()
    assert (output / "kt_over_epochs.png").read_bytes()[:4] == b"\x89PNG"


def test_table_says_which_images_scored(pada_run):
    output, table = pada_run
    assert table["scored_on"]["label"] == "256 held-out images (search_valid)"
    assert table["fit_scored_on"]["label"] == "64 training images (search_train)"
    text = (output / "table.txt").read_text()
    assert "256 held-out images (search_valid)" in text
    assert "64 training images (search_train)" in text
    # Both rankings of every method, side by side.
    for method in METHODS:
        held_out = json.loads((output / method / "seed_0" / "report.json").read_text())
        fit = json.loads((output / method / "seed_0" / "fit_training_images" / "report.json").read_text())
        for row, report in ((method, held_out), (f"{method} [fit]", fit)):
            expected = np.nan if report["kendall_tau"] is None else report["kendall_tau"]
            np.testing.assert_allclose(table["rows"][row]["kendall_tau"]["values"], [expected])


@pytest.mark.parametrize("method", METHODS)
def test_cli_ranks_and_searches_a_recipe_supernet(pada_run, method, tmp_path, capsys):
    output, _ = pada_run
    run = output / method / "seed_0"
    supernet = str(run / "supernet.keras")
    data = nb201_rank.PRESETS["smoke"]["data"]
    assert cli.main([
        "rank", "--checkpoint", supernet, "--benchmark", nb201_rank.PRESETS["smoke"]["benchmark"],
        "--data", data, "--split", "search_valid", "--num-archs", "12", "--batch-size", "256",
        "--output", str(tmp_path / "rank"),
    ]) == 0
    assert "on" in capsys.readouterr().out
    # The command scores the recipe's architectures as the recipe did: the
    # same scores where both used the same images (the recipe's first 256).
    with open(run / "ranking.csv") as f:
        recipe = [r["arch"] for r in csv.DictReader(f)]
    with open(tmp_path / "rank" / "ranking.csv") as f:
        assert [r["arch"] for r in csv.DictReader(f)] == recipe
    report = json.loads((tmp_path / "rank" / "report.json").read_text())
    assert report["scored_on"] == {"split": "search_valid", "images": 2543}
    assert np.isfinite(report["kendall_tau"])

    assert cli.main([
        "search", "--checkpoint", supernet, "--data", data, "--split", "search_valid",
        "--limit", "128", "--max-trials", "4", "--population-size", "3", "--sample-size", "2",
        "--verbose", "0", "--output", str(tmp_path / "search"),
    ]) == 0
    found = json.loads((tmp_path / "search" / "search.json").read_text())
    assert len(found["trials"]) == 4


def test_pada_recipe_refuses_the_single_method_flag(tmp_path, capsys):
    # --method comes from nb201_rank's parser: here it used to be accepted
    # and ignored (every method of --methods ran).
    with pytest.raises(SystemExit):
        nb201_pada.main(["--preset", "smoke", "--method", "pa", "--output", str(tmp_path)])
    assert "use --methods pa" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
