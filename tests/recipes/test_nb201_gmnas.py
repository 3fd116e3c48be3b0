"""The GM-NAS recipe: one-shot vs few-shot trees, one table, resumable."""

import csv
import json

import numpy as np
import pytest

from kerasnas.benchmarks import NasBench201
from kerasnas.recipes import nb201_gmnas

# The smoke preset, smaller: 256 training images (4 steps per epoch), splits
# at epochs 1 and 2 of 3, 12 architectures of search_valid.
ARGS = ["--preset", "smoke", "--limit", "256", "--num-archs", "12", "--monitor-archs", "6",
        "--train-split", "search_train", "--eval-split", "search_valid", "--eval-limit", "256",
        "--monitor-every", "3", "--verbose", "0"]
METHODS = ["one-shot", "gm"]


@pytest.fixture(scope="module")
def gm_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("gmnas")
    table = nb201_gmnas.main(ARGS + ["--methods", *METHODS, "--output", str(output)])
    return output, table


def test_table_equals_the_runs_files_and_costs_are_fair(gm_run, shared_data):
    output, table = gm_run
    rows = table["rows"]
    for method in METHODS:
        result = json.loads((output / method / "seed_0" / "result.json").read_text())
        for metric in ("kendall_tau", "spearman", "precision_at_top_5%"):
            assert rows[method][metric]["values"] == [pytest.approx(result["report"][metric])]
        assert rows[method]["train_steps"] == result["train_steps"]
    steps = 4  # 256 images of search_train, batch 64
    assert rows["one-shot"]["train_steps"] == 3 * steps
    assert rows["gm"]["train_steps"] == (1 + 2 + 4) * steps
    # one-shot-equal trains one supernet for the tree's node-epochs
    equal = nb201_gmnas.method_config(dict(nb201_gmnas.PRESETS["smoke"]), "one-shot-equal")
    assert equal["epochs"] * steps == rows["gm"]["train_steps"] and equal["split_method"] is None
    assert "baseline: params" in rows
    tree = json.loads((output / "gm" / "seed_0" / "fewshot" / "tree.json").read_text())["nodes"]
    assert len([n for n in tree.values() if not n["children"]]) == 4
    # Its cost is every node's own epochs and every split, from the files
    # (so a tree resumed on another machine still reports its whole cost).
    fewshot = output / "gm" / "seed_0" / "fewshot"
    bounds = [0, 1, 2, 3]
    seconds = 0.0
    for node_id, node in tree.items():
        history = json.loads((fewshot / "nodes" / node_id / "history.json").read_text())["history"]
        own = history["epoch_seconds"][bounds[node["generation"]]:bounds[node["generation"] + 1]]
        assert len(own) == 1 and own[0] > 0
        seconds += own[0]
    splits = [json.loads(p.read_text()) for p in (fewshot / "splits").glob("*.json")]
    assert len(splits) == 3  # the root, then its two children
    seconds += sum(d["seconds"] for s in splits for d in s["distances"].values())
    result = json.loads((output / "gm" / "seed_0" / "result.json").read_text())
    assert result["train_seconds"] == pytest.approx(seconds)
    # the best architecture is the top of the run's own scores, with its truth
    best = table["best_found"]["gm"]
    with open(output / "gm" / "seed_0" / "scores.csv") as f:
        scores = list(csv.DictReader(f))
    top = max(scores, key=lambda r: float(r["accuracy"]))["arch"]
    truth = NasBench201(shared_data / "nb201", dataset="cifar100").query(top)["test_acc"]
    assert best["cifar100"]["mean"] == pytest.approx(truth)
    assert "Best architecture found" in (output / "table.txt").read_text()


def test_leaf_metrics_on_one_leaf_are_the_global_ones(gm_run, shared_data):
    # Issue #35: within-leaf Kendall tau and the per-leaf best, on the gm
    # run's partition for every method. With the whole space as one leaf
    # they are the global tau (result.json, computed by nb201_rank) and the
    # test accuracy of the run's own top architecture.
    output, table = gm_run
    benchmark = NasBench201(shared_data / "nb201", dataset="cifar10")
    for method in METHODS:
        result = json.loads((output / method / "seed_0" / "result.json").read_text())
        result["output"] = str(output / method / "seed_0")
        whole = {"all": {label: list(options) for label, options in benchmark.space.choices.items()}}
        report = nb201_gmnas.leaf_report(result, whole, benchmark)
        assert report["leaf_kendall_tau"] == pytest.approx(result["report"]["kendall_tau"])
        best = nb201_gmnas.best_found(result, {"cifar10": benchmark})
        assert report["leaf_best_test_acc"] == pytest.approx(best["test_acc"]["cifar10"])
        for metric in nb201_gmnas.LEAF_METRICS:
            assert len(table["rows"][method][metric]["values"]) == 1
    leaves = json.loads((output / "gm" / "seed_0" / "fewshot" / "leaves.json").read_text())
    assert len(leaves) == 4
    assert "KT in leaves" in (output / "table.txt").read_text()


def test_resume_reuses_finished_runs(gm_run, capsys):
    output, table = gm_run
    again = nb201_gmnas.main(ARGS + ["--methods", "gm", "--output", str(output), "--resume"])
    assert "Already complete" in capsys.readouterr().out
    assert again["rows"]["gm"]["kendall_tau"] == table["rows"]["gm"]["kendall_tau"]


def test_tree_cost_and_bad_input(tmp_path):
    config = dict(nb201_gmnas.PRESETS["cifar10-subset"])
    # The reference's NB201 split schedule: 15 and 30 of 60 epochs.
    assert nb201_gmnas.tree_epochs(config, "gm") == 15 + 2 * 15 + 4 * 30
    assert nb201_gmnas.tree_epochs(config, "exhaustive") == 15 + 4 * 45  # 'none' excluded
    with pytest.raises(ValueError, match="methods"):
        nb201_gmnas.method_config(config, "darts")
    with pytest.raises(SystemExit):
        nb201_gmnas.main(ARGS + ["--split-epochs", "2", "1", "--output", str(tmp_path)])
    with pytest.raises(SystemExit):  # the last split must leave epochs to train
        nb201_gmnas.main(ARGS + ["--split-epochs", "1", "3", "--output", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_cli_ranks_searches_and_exports_a_tree(gm_run, tmp_path):
    from kerasnas import cli
    from kerasnas.recipes import nb201_rank

    output, _ = gm_run
    run = output / "gm" / "seed_0"
    tree = str(run / "fewshot")
    data = nb201_rank.PRESETS["smoke"]["data"]
    assert cli.main([
        "rank", "--checkpoint", tree, "--benchmark", nb201_rank.PRESETS["smoke"]["benchmark"],
        "--data", data, "--split", "search_valid", "--num-archs", "12", "--batch-size", "256",
        "--output", str(tmp_path / "rank"),
    ]) == 0
    with open(run / "ranking.csv") as f:
        recipe = [r["arch"] for r in csv.DictReader(f)]
    with open(tmp_path / "rank" / "ranking.csv") as f:
        assert [r["arch"] for r in csv.DictReader(f)] == recipe
    assert cli.main([
        "search", "--checkpoint", tree, "--data", data, "--split", "search_valid",
        "--limit", "128", "--max-trials", "4", "--population-size", "3", "--sample-size", "2",
        "--verbose", "0", "--output", str(tmp_path / "search"), "--export",
    ]) == 0
    found = json.loads((tmp_path / "search" / "search.json").read_text())
    assert len(found["trials"]) == 4
