"""The DCNAS recipe: a DCNAS run end to end (every layer decided), its
table equal to the run's own files; bad input refused before training."""

import csv
import json

import pytest

from kerasnas.recipes import nb201_dcnas

# The smoke preset, smaller: 64 training images (1 step per epoch), a pool
# of 20, T_w = 0, T = 1, T_f = 0 (12 epochs), 8 architectures ranked.
ARGS = ["--preset", "smoke", "--limit", "64", "--num-archs", "8", "--monitor-archs", "4",
        "--train-split", "search_train", "--eval-split", "search_valid", "--eval-limit", "64",
        "--monitor-every", "12", "--verbose", "0", "--pool-size", "20", "--warmup-epochs", "0",
        "--layer-epochs", "1", "--final-epochs", "0", "--epochs", "12"]


def test_dcnas_run_table_equals_the_runs_files(tmp_path):
    table = nb201_dcnas.main(ARGS + ["--variants", "dcnas", "--output", str(tmp_path)])
    run = tmp_path / "dcnas" / "seed_0"
    result = json.loads((run / "result.json").read_text())
    options = result["config"]["dcnas"]
    assert options["pool_size"] == 20 and options["assignment"] == "cluster" and options["copies"] == 2
    for metric in nb201_dcnas.METRICS:
        assert table["rows"]["dcnas"][metric]["values"] == [pytest.approx(result["report"][metric])]
    decisions = [json.loads(line) for line in (run / "dcnas_decisions.jsonl").read_text().splitlines()]
    assert [d["layer"] for d in decisions] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    for decision in decisions:  # every pool member got a copy at every layer
        assert sum(sum(o["per_copy"]) for o in decision["options"].values()) == 20
    with open(run / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    first = max(rows, key=lambda r: float(r["predicted"]))  # ranked first
    assert table["best"]["dcnas"]["0"] == {"arch": first["arch"], "true": float(first["true"])}
    assert "Best architecture found" in (tmp_path / "table.txt").read_text()


def test_bad_input_is_refused_before_training(tmp_path):
    config = dict(nb201_dcnas.PRESETS["smoke"])
    with pytest.raises(ValueError, match="variants"):
        nb201_dcnas.variant_config(config, "dense")
    with pytest.raises(ValueError, match="epochs"):  # schedule != epochs
        nb201_dcnas.variant_config(dict(config, epochs=10), "dcnas")
    with pytest.raises(SystemExit):
        nb201_dcnas.main(ARGS[:-1] + ["20", "--variants", "spos", "dcnas", "--output", str(tmp_path)])
    assert not list(tmp_path.iterdir())


def test_mobilenet_presets_fill_their_schedules():
    # The paper's ImageNet setting: L = 16 layers of K = 6 MBConv options,
    # T_w 10 + 16 x 2 x T 3 + T_f 44 = 150 epochs, N = 10,000, M = 2, tau 20.
    from kerasnas.recipes import mobilenet_dcnas

    paper = mobilenet_dcnas.PRESETS["paper"]
    assert sum(paper["stage_depths"]) == 16 and not paper["skip"]
    assert len(paper["kernel_sizes"]) * len(paper["expansions"]) == 6
    options = nb201_dcnas.variant_config(paper, "dcnas", num_layers=16)["dcnas"]
    assert (options["pool_size"], options["copies"], options["meta_interval"]) == (10000, 2, 20)
    for name, preset in mobilenet_dcnas.PRESETS.items():
        layers = sum(preset["stage_depths"])
        for variant in nb201_dcnas.VARIANTS:
            nb201_dcnas.variant_config(preset, variant, num_layers=layers)  # epochs match
