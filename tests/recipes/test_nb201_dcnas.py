"""The DCNAS recipe: a DCNAS run end to end (every layer decided), its
table equal to the run's own files; bad input refused before training."""

import csv
import json

import pytest

from kerasnas.recipes import nb201_dcnas

# The smoke preset, smaller: 128 training images (2 steps per epoch), a pool
# of 20, T_w = 0, T = 1, T_f = 1 (13 epochs), 12 architectures ranked.
ARGS = ["--preset", "smoke", "--limit", "128", "--num-archs", "12", "--monitor-archs", "4",
        "--train-split", "search_train", "--eval-split", "search_valid", "--eval-limit", "128",
        "--monitor-every", "13", "--verbose", "0", "--pool-size", "20", "--warmup-epochs", "0",
        "--layer-epochs", "1", "--final-epochs", "1", "--epochs", "13"]


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
