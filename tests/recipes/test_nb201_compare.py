"""The comparison of every method: the smoke comparison end to end, its
report recomputed from the runs' own files, resume of a killed comparison,
the budget arithmetic and bad input refused before anything trains; and
the DARTS-PT recipe's table and selections, on the comparison's DARTS run."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import scipy.stats

from kerasnas import cli
from kerasnas.benchmarks import NasBench201
from kerasnas.recipes import nb201_compare
from kerasnas.recipes import nb201_darts_pt
from kerasnas.recipes import nb201_gmnas
from kerasnas.recipes import nb201_pada
from kerasnas.recipes import nb201_rank

ARGS = ["--preset", "smoke", "--verbose", "0"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    output = tmp_path_factory.mktemp("compare") / "smoke"
    table = nb201_compare.main(ARGS + ["--output", str(output)])
    return output, table


def _ranking(directory):
    with open(directory / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    return [r["arch"] for r in rows], np.array([float(r["predicted"]) for r in rows])


def _run_directory(output, method):
    if method in nb201_compare.DARTS_SELECTIONS:
        return output / "darts" / "seed_0"
    return output / method / "seed_0"


def test_smoke_comparison_runs_every_method_on_one_budget(smoke):
    output, table = smoke
    methods = set(nb201_compare.METHODS)
    assert set(table["rows"]) == methods | {"baseline: params", "baseline: flops"}
    for method in methods:
        row = table["rows"][method]
        # One budget: every method's weights took the same optimizer steps.
        assert row["train_steps"]["values"] == [12.0], method
        for dataset in nb201_compare.DATASETS:
            assert -1.0 <= row[dataset]["kendall_tau"]["mean"] <= 1.0
            assert 0.0 < row["best"][dataset]["mean"] < 100.0
    # A GM-NAS tree: fewer supernet epochs, every node-epoch counted.
    gm = json.loads((output / "gmnas" / "seed_0" / "result.json").read_text())["config"]
    assert gm["split_method"] == "gradient_matching"
    assert nb201_gmnas.tree_epochs(gm) == 12 and gm["epochs"] < 12
    # The DARTS family is one supernet: one ranking, three selections.
    kts = {table["rows"][m]["cifar10"]["kendall_tau"]["mean"] for m in nb201_compare.DARTS_SELECTIONS}
    assert len(kts) == 1
    assert table["rows"]["darts-pt"]["search_steps"]["values"][0] > 0  # PT tunes
    assert table["rows"]["darts"]["search_steps"]["values"] == [0.0]  # argmax α does not
    for name in ("table.json", "table.txt", "plan.json", "improvement.png", "best_vs_cost.png",
                 "kt_over_epochs.png"):
        assert (output / name).is_file(), name
    text = (output / "table.txt").read_text()
    assert "ImageNet16-120" in text and "held-out" in text and "Best architecture found" in text


def test_report_equals_what_the_runs_files_say(smoke, shared_data):
    output, table = smoke
    benchmarks = {d: NasBench201(shared_data / "nb201", dataset=d) for d in nb201_compare.DATASETS}
    for method in nb201_compare.METHODS:
        directory = _run_directory(output, method)
        ranked = directory / ("rank" if method in nb201_compare.DARTS_SELECTIONS else "")
        archs, predicted = _ranking(ranked)
        own = json.loads((ranked / "report.json").read_text())
        row = table["rows"][method]
        assert row["cifar10"]["kendall_tau"]["values"] == [pytest.approx(own["kendall_tau"])]
        for dataset, benchmark in benchmarks.items():
            true = benchmark.table(archs, "test_acc")
            tau = scipy.stats.kendalltau(predicted, true)[0]
            assert row[dataset]["kendall_tau"]["values"] == [pytest.approx(tau)], (method, dataset)
        result = json.loads((directory / "result.json").read_text())
        if method in nb201_compare.DARTS_SELECTIONS:  # its selection, not its ranking
            best = result["selections"][nb201_compare.DARTS_SELECTIONS[method]]["arch_string"]
        else:  # the top of its own ranking
            best = archs[int(np.argmax(predicted))]
        assert row["best"]["archs"] == [best]
        for dataset, benchmark in benchmarks.items():
            assert row["best"][dataset]["values"] == [pytest.approx(benchmark.query(best)["test_acc"])]
        assert row["train_seconds"]["values"] == [pytest.approx(result["train_seconds"])]
        if method != "spos":  # against spos, from the two runs' own reports
            spos = json.loads((output / "spos" / "seed_0" / "report.json").read_text())
            delta = table["versus"]["kendall_tau"][method]["delta"]["values"]
            assert delta == [pytest.approx(own["kendall_tau"] - spos["kendall_tau"])]
    # The parameter-count row, against CIFAR-100 too.
    with open(output / "spos" / "seed_0" / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    params = [float(r["params"]) for r in rows]
    expected = scipy.stats.kendalltau(params, benchmarks["cifar100"].table([r["arch"] for r in rows], "test_acc"))[0]
    assert table["rows"]["baseline: params"]["cifar100"]["kendall_tau"]["mean"] == pytest.approx(expected)
    # The Markdown table (the README's) holds the same numbers, a row per method.
    markdown = {line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")
                for line in (output / "table.md").read_text().splitlines()[2:]}
    assert set(markdown) == set(table["rows"])
    for method, cells in markdown.items():
        row = table["rows"][method]
        assert cells[1] == f"{row['cifar10']['kendall_tau']['mean']:.3f} ± {row['cifar10']['kendall_tau']['std']:.3f}"
        assert cells[6] == f"{row['ImageNet16-120']['kendall_tau']['mean']:.3f} ± 0.000"
        if "best" in row:
            assert cells[7] == f"{row['best']['cifar10']['mean']:.2f} ± 0.00"
            # Seconds: the median over seeds (here the one run's own).
            assert cells[9] == f"{row['train_seconds']['values'][0]:.0f}"


def test_seconds_are_the_median_over_seeds_steps_the_mean():
    # One run slowed tenfold (stopped, shared machine) does not move the
    # seconds a row reports; the steps are exact and averaged.
    stats = nb201_compare._stats([600.0, 6000.0, 640.0])
    assert stats["median"] == 640.0 and stats["mean"] == pytest.approx(2413.33, abs=0.01)


def test_resume_of_a_killed_comparison_adds_only_the_missing_runs(smoke, tmp_path, monkeypatch):
    source, table = smoke
    output = tmp_path / "smoke"
    shutil.copytree(source, output)
    shutil.rmtree(output / "pa" / "seed_0")  # killed before it started
    (output / "dcnas" / "seed_0" / "result.json").unlink()  # killed while ranking
    (output / "table.json").unlink()
    trained = []
    rank_run, darts_run = nb201_rank.run, nb201_darts_pt.run_one
    monkeypatch.setattr(nb201_rank, "run", lambda c, d, **k: trained.append(d.parent.name) or rank_run(c, d, **k))
    monkeypatch.setattr(nb201_darts_pt, "run_one", lambda c, d, **k: trained.append("darts") or darts_run(c, d, **k))
    plan = nb201_compare.main(ARGS + ["--output", str(output), "--dry-run"])
    status = {row["run"]: row["status"] for row in plan}
    assert status["pa"] == "to run" and status["dcnas"] == "partial (epoch 12 of 12)"
    assert {s for r, s in status.items() if r not in ("pa", "dcnas")} == {"complete"}
    assert trained == []  # a dry run trains nothing
    # Another live process holds pa: this one skips it and leaves the report to that one.
    lock = output / "pa" / "seed_0.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    assert nb201_compare.main(ARGS + ["--output", str(output), "--resume"]) is None
    assert trained == ["dcnas"] and lock.exists() and not (output / "table.json").exists()
    # Its process died: the lock is taken over, the run resumed, the lock removed.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    resumed = nb201_compare.main(ARGS + ["--output", str(output), "--resume"])
    assert trained == ["dcnas", "pa"] and not lock.exists()
    assert not list(output.rglob("*.lock"))
    # The runs it had are untouched, so their rows are the same.
    for method in ("spos", "gmnas", "darts-pt", "interchoice-split"):
        assert json.dumps(resumed["rows"][method]) == json.dumps(table["rows"][method])
    # Seconds survive the kill: every epoch's, from the checkpointed history.
    assert resumed["rows"]["dcnas"]["train_seconds"]["values"] == table["rows"]["dcnas"]["train_seconds"]["values"]
    assert (output / "table.json").is_file()


def test_reuse_copies_a_complete_run_of_the_same_config(smoke, tmp_path):
    source, _ = smoke
    output = tmp_path / "other"
    plan = nb201_compare.main(ARGS + ["--output", str(output), "--methods", "spos", "darts",
                                      "--reuse", str(source), "--dry-run"])
    assert [row["status"].split(" ")[0] for row in plan] == ["reusable", "reusable"]
    table = nb201_compare.main(ARGS + ["--output", str(output), "--methods", "spos", "darts",
                                       "--reuse", str(source)])
    assert (output / "spos" / "seed_0" / "reused_from.txt").read_text().strip() == str(source / "spos" / "seed_0")
    archs, predicted = _ranking(source / "spos" / "seed_0")
    assert table["rows"]["spos"]["best"]["archs"] == [archs[int(np.argmax(predicted))]]
    # A different config (another budget) is not reused.
    plan = nb201_compare.main(ARGS + ["--output", str(tmp_path / "third"), "--methods", "spos",
                                      "--budget-steps", "13", "--reuse", str(source), "--dry-run"])
    assert plan[0]["status"] == "to run"


def test_budget_arithmetic_follows_the_reference_schedules():
    # DCNAS: the reference 10, 8, 44 of 150 epochs, and T_w + 12 T + T_f = E.
    assert nb201_compare.dcnas_schedule(150) == (10, 8, 44)
    for epochs in range(12, 300):
        warmup, layer, final = nb201_compare.dcnas_schedule(epochs)
        assert warmup + 12 * layer + final == epochs and min(warmup, final) >= 0 and layer >= 1
    # GM-NAS: a tree whose node-epochs are exactly the budget.
    assert nb201_compare.gm_schedule(150) == (55, [14, 28])
    for budget in range(7, 300):
        epochs, splits = nb201_compare.gm_schedule(budget)
        config = dict(epochs=epochs, split_epochs=splits, exclude_ops=["none"])
        assert nb201_gmnas.tree_epochs(config, "gm") == budget
        assert 0 < splits[0] < splits[1] < epochs


def test_a_budget_a_method_cannot_meet_or_an_unknown_method_is_a_value_error(capsys):
    config = dict(nb201_compare.PRESETS["smoke"], preset="smoke")
    with pytest.raises(ValueError, match=r"methods.*enas"):
        nb201_compare.units(config, ["spos", "enas"], [0])
    with pytest.raises(ValueError, match="methods"):
        nb201_compare.units(config, [], [0])
    with pytest.raises(ValueError, match=r"budget_steps.*dcnas"):  # 11 epochs < 12 layers' worth
        nb201_compare.units(dict(config, budget_steps=11), ["spos", "dcnas"], [0])
    with pytest.raises(ValueError, match=r"budget_steps.*gmnas"):
        nb201_compare.units(dict(config, budget_steps=5), ["gmnas"], [0])
    assert len(nb201_compare.units(dict(config, budget_steps=5), ["spos", "darts"], [0])) == 2
    subset = dict(config, rank=dict(config["rank"], limit=128))  # 2 batches per epoch
    with pytest.raises(ValueError, match=r"budget_steps.*multiple of the 2 batches"):
        nb201_compare.units(dict(subset, budget_steps=25), ["spos"], [0])
    with pytest.raises(SystemExit):
        nb201_compare.main(ARGS + ["--methods", "enas", "--dry-run"])
    assert "enas" in capsys.readouterr().err


def test_paper_preset_prints_the_plan_with_gpu_hours(capsys, tmp_path):
    args = ["--preset", "paper", "--dry-run", "--output", str(tmp_path),
            "--methods", "spos", "pada", "gmnas", "darts-pt", "dcnas"]
    assert cli.main(["compare"] + args) == 0  # `kerasnas compare`
    out = capsys.readouterr().out
    assert "Estimated GPU-hours" in out and "darts (pt)" in out
    rows = nb201_compare.main(args)
    by_run = {row["run"]: row for row in rows}
    # Each method's reference schedule, not a common budget.
    assert by_run["spos"]["epochs"] == 250 and by_run["gmnas"]["epochs"] == 90
    assert by_run["darts"]["epochs"] == 100 and by_run["dcnas"]["epochs"] == 150
    assert by_run["pada"]["gpu_hours"] > by_run["spos"]["gpu_hours"] > 0
    assert not any(tmp_path.iterdir())  # nothing ran


# The DARTS-PT recipe (`nb201_darts_pt`), on the comparison's DARTS run.
def test_darts_pt_recipe_table_rows_are_the_runs_own_lookups(smoke, tmp_path, shared_data):
    source, _ = smoke
    output = tmp_path / "darts_pt"
    shutil.copytree(source / "darts" / "seed_0", output / "darts" / "seed_0")
    config = json.loads((output / "darts" / "seed_0" / "config.json").read_text())
    # The recipe resumes the finished run (nothing trains) and writes its table.
    table = nb201_darts_pt.run(config, ["darts"], [0], output, resume=True, verbose=0)
    assert set(table["rows"]) == {f"darts {m}" for m in nb201_darts_pt.SELECTIONS}
    result = json.loads((output / "darts" / "seed_0" / "result.json").read_text())
    for dataset in nb201_darts_pt.DATASETS:
        bench = NasBench201(shared_data / "nb201", dataset=dataset)
        for method, selection in result["selections"].items():
            expected = bench.query(selection["arch_string"])["test_acc"]
            assert selection["test_acc"][dataset] == expected
            assert table["rows"][f"darts {method}"][dataset]["values"] == [expected]
    assert json.loads((output / "table.json").read_text()) == table
    assert "CIFAR-100" in (output / "table.txt").read_text()


def test_darts_pt_selections_decide_every_edge_once_and_children_reload(smoke):
    output, _ = smoke
    run = output / "darts" / "seed_0"
    result = json.loads((run / "result.json").read_text())
    supernet = keras.saving.load_model(run / "supernet.keras")
    assert result["selections"]["argmax"]["arch"] == supernet.derive()
    for method in ("pt-mag", "pt"):
        selection = result["selections"][method]
        decisions = selection["decisions"]
        assert sorted(d["label"] for d in decisions) == sorted(supernet.space.labels)
        assert {d["label"]: d["option"] for d in decisions} == selection["arch"]
        if method == "pt":  # removal of the kept op hurts most
            for d in decisions:
                assert d["scores"][d["option"]] == max(d["scores"].values())
        child = keras.saving.load_model(run / f"child_{method}.keras")
        params = sum(int(np.prod(w.shape)) for w in child.trainable_weights)
        assert params == supernet.space.params(selection["arch"], bn="search")
        log = json.loads((run / f"select_{method}" / "selection.json").read_text())
        assert log["log"] == decisions


def test_versus_pairs_runs_by_seed():
    values = {"spos": [0.30, 0.20, 0.25], "pada": [0.40, 0.22, 0.20], "same": [0.30, 0.20, 0.25]}
    result = nb201_pada.versus(values, "spos")
    assert set(result) == {"pada", "same"}
    np.testing.assert_allclose(result["pada"]["delta"]["values"], [0.10, 0.02, -0.05], atol=1e-12)
    assert result["pada"]["wins"] == 2 and result["pada"]["n"] == 3
    expected = scipy.stats.ttest_rel(values["pada"], values["spos"]).pvalue
    assert result["pada"]["p_paired"] == pytest.approx(expected)
    assert result["same"]["wins"] == 0 and np.isnan(result["same"]["p_paired"])
    assert nb201_pada.versus({"pada": [0.1]}, "spos") == {}
    lines = nb201_pada.format_versus({"kendall_tau": result})
    assert lines[0].startswith("Against spos with the same seed, Kendall tau") and "2/3" in lines[1]
