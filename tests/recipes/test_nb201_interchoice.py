"""The inter-choice weights recipe: variants x spaces, one table, the
improvement curves recomputed from the runs' own files."""

import json

import numpy as np
import pytest

from kerasnas.evaluation import improvement_curve
from kerasnas.recipes import nb201_interchoice

# The smoke preset, smaller: 256 training images (4 steps per epoch), split
# at epoch 1 of 2, every architecture of the conv-only space (64).
ARGS = ["--preset", "smoke", "--limit", "256", "--num-archs", "all", "--monitor-archs", "6",
        "--train-split", "search_train", "--eval-split", "search_valid", "--eval-limit", "128",
        "--monitor-every", "2", "--verbose", "0", "--spaces", "conv-only"]


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("interchoice")
    table = nb201_interchoice.main(ARGS + ["--variants", "split", "--output", str(output)])
    return output, table


def test_table_and_improvement_equal_the_runs_files(split_run):
    output, table = split_run
    space = table["spaces"]["conv-only"]
    run = output / "conv-only" / "split" / "seed_0"
    result = json.loads((run / "result.json").read_text())
    assert result["report"]["n"] == 64  # every conv-only cell, nothing else
    assert result["config"]["interchoice"] == "split" and result["config"]["split_milestones"] == [1]
    for metric in nb201_interchoice.METRICS:
        assert space["rows"]["split"][metric]["values"] == [pytest.approx(result["report"][metric])]
    assert "baseline: params" in space["rows"]
    ranking = np.genfromtxt(run / "ranking.csv", delimiter=",", names=True, dtype=None, encoding=None)
    expected = improvement_curve(ranking["predicted"], ranking["true"])
    np.testing.assert_allclose(space["improvement"]["split"]["improvement"], expected["improvement"])
    assert (output / "conv-only" / "improvement.png").stat().st_size > 0
    text = (output / "table.txt").read_text()
    assert "conv-only" in text and "Improvement of the top-n" in text


def test_bad_input_is_refused_before_training(tmp_path):
    config = dict(nb201_interchoice.PRESETS["smoke"])
    with pytest.raises(ValueError, match="variants"):
        nb201_interchoice.variant_config(config, "conv-only", "dense")
    with pytest.raises(ValueError, match="split_milestones"):  # outside training
        nb201_interchoice.variant_config(dict(config, split_milestones=[2]), "conv-only", "split")
    with pytest.raises(SystemExit):
        nb201_interchoice.main(ARGS + ["--variants", "split", "--split-milestones", "5",
                                       "--output", str(tmp_path)])
    assert not list(tmp_path.iterdir())


def test_split_runs_record_what_an_untrained_key_gives():
    # Issue #35: new split runs use the copy trained last (uninas); a
    # config from before the option (no `untrained`) builds what it was
    # made with, and so does a factory or a saved layer without it.
    from kerasnas.layers import InterChoices
    from kerasnas.recipes import nb201_compare
    from kerasnas.recipes import nb201_spos

    smoke = nb201_interchoice.PRESETS["smoke"]
    split = nb201_interchoice.variant_config(smoke, "no-none", "split")
    assert split["interchoice_options"] == {"untrained": "last_trained"} and "split_untrained" not in split
    old = nb201_interchoice.variant_config(dict(smoke, split_untrained="split_state"), "no-none", "split")
    assert old["interchoice_options"] == {"untrained": "split_state"}
    assert nb201_interchoice.variant_config(smoke, "no-none", "bias")["interchoice_options"] is None
    config = dict(nb201_compare.PRESETS["smoke"], preset="smoke")
    assert nb201_compare.method_config(config, "interchoice-split")["interchoice_options"] == {
        "untrained": "last_trained"}
    made_before = nb201_spos._interchoice_choices({"interchoice": "split", "interchoice_options": None})
    assert made_before["choices"].options["untrained"] == "split_state"
    assert InterChoices.from_config({"mode": "split", "priors": None, "options": {}}).options == {
        "untrained": "split_state"}
    assert InterChoices.from_config(InterChoices("split").get_config()) == InterChoices("split")
    assert InterChoices("split").options == {"untrained": "last_trained"}
