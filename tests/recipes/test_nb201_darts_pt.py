"""The DARTS-PT recipe on NAS-Bench-201, end to end on a tiny budget."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasnas.benchmarks import NasBench201
from kerasnas.recipes import nb201_darts_pt

ARGS = ["--preset", "smoke", "--epochs", "1", "--limit", "128", "--interval", "1",
        "--tune-epochs", "1", "--variants", "darts", "--verbose", "0"]


@pytest.fixture(scope="module")
def darts_pt_run(tmp_path_factory, shared_data_dir):
    output = tmp_path_factory.mktemp("darts_pt")
    table = nb201_darts_pt.main(ARGS + ["--output", str(output), "--benchmark", str(shared_data_dir / "nb201")])
    return output, table


@pytest.fixture(scope="module")
def shared_data_dir():
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip(f"shared data not found at {shared}")
    return shared


def test_table_rows_are_the_runs_own_lookups(darts_pt_run, shared_data_dir):
    output, table = darts_pt_run
    assert set(table["rows"]) == {f"darts {m}" for m in nb201_darts_pt.SELECTIONS}
    result = json.loads((output / "darts" / "seed_0" / "result.json").read_text())
    for dataset in nb201_darts_pt.DATASETS:
        bench = NasBench201(shared_data_dir / "nb201", dataset=dataset)
        for method, selection in result["selections"].items():
            expected = bench.query(selection["arch_string"])["test_acc"]
            assert selection["test_acc"][dataset] == expected
            assert table["rows"][f"darts {method}"][dataset]["values"] == [expected]
    assert json.loads((output / "table.json").read_text()) == table
    assert "CIFAR-100" in (output / "table.txt").read_text()


def test_selections_decide_every_edge_once_and_children_reload(darts_pt_run):
    output, _ = darts_pt_run
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
