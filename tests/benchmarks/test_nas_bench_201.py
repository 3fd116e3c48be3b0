import bz2
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import kerasnas
from kerasnas.benchmarks import NasBench201
from kerasnas.benchmarks import sample_archs

NB201 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def cifar10():
    if not NB201.is_dir():
        pytest.skip(f"shared data not found at {NB201}")
    return NasBench201(NB201, "cifar10")


def _closed_form(n3, n1, dataset="cifar10"):
    """The README's closed forms (C=16, N=5), in millions."""
    extra = {"cifar10": 0.0, "cifar100": 0.00585, "ImageNet16-120": 0.00715}[dataset]
    return 0.073306 + 0.243040 * n3 + 0.028000 * n1 + extra, 7.78305 + 35.38944 * n3 + 3.93216 * n1


# --- the shared JSON tables -------------------------------------------------


def test_resnet_cell_and_best_architecture(cifar10):
    result = cifar10.query(RESNET)
    assert set(result) == {"val_acc", "test_acc", "params", "flops"}
    assert result["test_acc"] == pytest.approx(93.91, abs=1e-6)
    params, flops = _closed_form(n3=2, n1=0)
    assert result["params"] == pytest.approx(params, abs=1e-6)
    assert result["flops"] == pytest.approx(flops, abs=1e-5)

    test = cifar10.table(cifar10.archs(), "test_acc")
    assert test.max() == pytest.approx(94.3733, abs=1e-4)
    assert np.sum(test == test.max()) == 2  # the README's tie
    assert cifar10.query(BEST)["test_acc"] == test.max()
    assert cifar10.table(cifar10.archs(), "val_acc").max() == pytest.approx(91.6067, abs=1e-4)


def test_dict_and_string_queries_agree(cifar10):
    arch = cifar10.space.from_string(RESNET)
    assert cifar10.query(arch) == cifar10.query(RESNET)
    archs = [RESNET, cifar10.space.from_string(BEST), BEST]
    np.testing.assert_array_equal(
        cifar10.table(archs, "test_acc"),
        [cifar10.query(a)["test_acc"] for a in archs],
    )
    assert arch in cifar10 and RESNET in cifar10
    assert "|bogus|" not in cifar10 and {"1<-0": "none"} not in cifar10


def test_archs_table_and_costs_of_all_15625(cifar10):
    archs = cifar10.archs()
    assert len(archs) == len(cifar10) == 15625 == len(set(archs))
    # The space's enumeration order, whatever the order of the JSON file.
    assert archs[:2] == [cifar10.space.to_string(a) for a, _ in zip(cifar10.space.enumerate(), range(2))]
    assert list(cifar10) == archs
    n3 = np.array([a.count("nor_conv_3x3") for a in archs])
    n1 = np.array([a.count("nor_conv_1x1") for a in archs])
    params, flops = _closed_form(n3, n1)
    np.testing.assert_allclose(cifar10.table(archs, "params"), params, atol=1e-6)
    np.testing.assert_allclose(cifar10.table(archs, "flops"), flops, atol=1e-5)
    with open(NB201 / "nasbench201_cifar10.json") as f:
        raw = json.load(f)
    np.testing.assert_array_equal(
        cifar10.table(archs, "val_acc"), [raw[a]["val_acc_200"] for a in archs]
    )
    np.testing.assert_array_equal(cifar10.table(None, "test_acc"), [raw[a]["test_acc_200"] for a in archs])
    assert cifar10.space == kerasnas.spaces.NasBench201(num_classes=10, channels=16, cells_per_stage=5)
    assert cifar10.dataset == "cifar10"


@pytest.mark.parametrize(
    "dataset, canonical, classes, size, best",
    [
        ("CIFAR100", "cifar100", 100, 32, 73.5133),
        ("ImageNet16-120", "ImageNet16-120", 120, 16, 47.3111),
        ("imagenet16-120", "ImageNet16-120", 120, 16, 47.3111),
    ],
)
def test_other_datasets(dataset, canonical, classes, size, best):
    if not NB201.is_dir():
        pytest.skip(f"shared data not found at {NB201}")
    bench = NasBench201(NB201, dataset)
    assert bench.dataset == canonical and len(bench) == 15625
    assert bench.space.num_classes == classes and bench.space.input_shape == (size, size, 3)
    assert bench.table(None, "test_acc").max() == pytest.approx(best, abs=1e-4)
    params, _ = _closed_form(n3=2, n1=0, dataset=canonical)
    assert bench.query(RESNET)["params"] == pytest.approx(params, abs=1e-6)
    # A single file of the directory reads the same.
    single = NasBench201(NB201 / kerasnas.benchmarks.nas_bench_201.JSON_FILES[canonical], dataset)
    assert single.query(RESNET) == bench.query(RESNET)


def test_table_is_fast(cifar10):
    import time

    archs = cifar10.archs()[::-1]
    start = time.perf_counter()
    for key in ("val_acc", "test_acc", "params", "flops"):
        cifar10.table(archs, key)
    assert time.perf_counter() - start < 2.0


def _small_json(tmp_path):
    table = {
        RESNET: {"val_acc_200": 90.0, "test_acc_200": 93.0, "rank": 2},
        BEST: {"val_acc_200": 91.5, "test_acc_200": 94.5, "rank": 1},
    }
    path = tmp_path / "small.json"
    path.write_text(json.dumps(table))
    return path


def test_errors(tmp_path):
    bench = NasBench201(_small_json(tmp_path))
    missing = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(ValueError, match=r"\|none~0\|\+.*is not in the benchmark"):
        bench.query(missing)
    with pytest.raises(ValueError, match="is not in the benchmark"):
        bench.table([RESNET, bench.space.from_string(missing)], "test_acc")
    with pytest.raises(ValueError, match="NAS-Bench-201 architecture string"):
        bench.query("|nor_conv_3x3~0|+|none~0|")
    with pytest.raises(ValueError, match="at label '1<-0'"):
        bench.query("|conv_9x9~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
    with pytest.raises(ValueError, match="Expected exactly the labels"):
        bench.query({"1<-0": "none"})
    with pytest.raises(ValueError, match=r"Expected one of \['val_acc'.*Received: key='accuracy'"):
        bench.table([RESNET], "accuracy")
    for dataset in ("cifar-10", "imagenet", None):
        with pytest.raises(ValueError, match=r"Expected one of \['cifar10', 'cifar100', 'ImageNet16-120'\]"):
            NasBench201(_small_json(tmp_path), dataset)
    with pytest.raises(ValueError, match="Expected an existing file"):
        NasBench201(tmp_path / "nothing.json")
    with pytest.raises(ValueError, match="nasbench201_cifar100.json"):
        NasBench201(tmp_path, "cifar100")  # a directory without the table
    (tmp_path / "table.csv").write_text("arch,acc\n")
    with pytest.raises(ValueError, match="Expected a `.json` table"):
        NasBench201(tmp_path / "table.csv")
    (tmp_path / "bad.json").write_text(json.dumps({RESNET: {"test_acc_200": 93.0}}))
    with pytest.raises(ValueError, match="'val_acc_200'"):
        NasBench201(tmp_path / "bad.json")
    (tmp_path / "nasbench201_cifar100.json").write_text((tmp_path / "small.json").read_text())
    with pytest.raises(ValueError, match="holds the 'cifar100' table"):
        NasBench201(tmp_path / "nasbench201_cifar100.json", "cifar10")


def test_to_json_round_trip(tmp_path):
    bench = NasBench201(_small_json(tmp_path))
    path = bench.to_json(tmp_path / "copy.json")
    written = json.loads(Path(path).read_text())
    assert written[BEST] == {"val_acc_200": 91.5, "test_acc_200": 94.5, "rank": 1}
    assert written[RESNET]["rank"] == 2
    again = NasBench201(path)
    assert again.archs() == bench.archs()
    for arch in bench.archs():
        assert again.query(arch) == bench.query(arch)


def test_sample_archs(cifar10):
    sample = sample_archs(cifar10, 100, seed=3)
    assert len(sample) == len(set(sample)) == 100
    assert all(a in cifar10 for a in sample)
    assert sample == sample_archs(cifar10, 100, seed=3)
    assert sample != sample_archs(cifar10, 100, seed=4)
    assert sample_archs(cifar10, 1000, seed=3)[:100] == sample  # nested
    # A complete benchmark and its space give the same population.
    assert sample_archs(cifar10.space, 100, seed=3) == sample
    assert sample_archs(cifar10, "all") == sample_archs(cifar10, None) == cifar10.archs()
    for num in (0, 15626, 2.5, True, "some"):
        with pytest.raises(ValueError, match="Invalid value for argument `num`"):
            sample_archs(cifar10, num)
    with pytest.raises(ValueError, match="bench_or_space"):
        sample_archs([RESNET], 1)


def test_sample_archs_of_a_generic_space():
    space = kerasnas.spaces.SearchSpace({"a": ("x", "y"), "b": ("p", "q", "r")})
    everything = sample_archs(space)
    assert everything[0] == '{"a": "x", "b": "p"}' and len(everything) == 6
    assert sorted(sample_archs(space, 6, seed=0)) == sorted(everything)


# --- the official formats ---------------------------------------------------

# Architectures of the tiny official benchmark (index -> string); the
# benchmark holds results for the first three only.
META_ARCHS = [
    RESNET,
    BEST,
    "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
SEEDS = (777, 888)


def _expected(index, dataset):
    """The numbers the tiny benchmark holds (the mean over its seeds)."""
    offset = {"cifar10": 0.0, "cifar100": 20.0, "ImageNet16-120": 40.0}[dataset]
    return {
        "val_acc": 70.0 - offset + index,
        "test_acc": 75.0 - offset + index,
        "params": 0.5 + 0.1 * index + offset / 1000,
        "flops": 60.0 + 10 * index + offset,
    }


def _results_count(dataset, seed, index, epochs, shift):
    """A ResultsCount state dict: accuracy curves whose last epoch holds the
    expected number, seeds 777 / 888 at -0.5 / +0.5 around it, and a peak
    in the middle of training above the final value."""
    name = dataset.split("-valid")[0]
    expected = _expected(index, name)
    delta = -0.5 if seed == SEEDS[0] else 0.5
    finals = {}
    if dataset == "cifar10-valid":
        finals = {"x-valid": expected["val_acc"], "ori-test": expected["val_acc"] - 3}
    elif dataset == "cifar10":
        finals = {"ori-test": expected["test_acc"]}
    else:
        finals = {"x-valid": expected["val_acc"], "x-test": expected["test_acc"],
                  "ori-test": expected["test_acc"] - 2}
    eval_acc1es, eval_losses = {}, {}
    for eval_name, final in finals.items():
        for epoch in range(epochs):
            value = final + shift + delta - 5 * (epoch < epochs - 1) + 10 * (epoch == epochs // 2)
            eval_acc1es[f"{eval_name}@{epoch}"] = value
            eval_losses[f"{eval_name}@{epoch}"] = 1.0 / (1 + epoch)
    cost_offset = 0.0 if dataset != "cifar10-valid" else 1000.0  # not the cost to read
    return {
        "name": dataset,
        "net_state_dict": None,
        "train_acc1es": {e: 50.0 + e / epochs for e in range(epochs)},
        "train_acc5es": None,
        "train_losses": {e: 1.0 for e in range(epochs)},
        "train_times": None,
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": META_ARCHS[index],
                        "class_num": {"cifar100": 100, "ImageNet16-120": 120}.get(name, 10)},
        "params": expected["params"] + shift + cost_offset,
        "flop": expected["flops"] + shift + cost_offset,
        "seed": seed,
        "epochs": epochs,
        "latency": [0.01],
        "eval_names": list(finals),
        "eval_acc1es": eval_acc1es,
        "eval_times": {},
        "eval_losses": eval_losses,
    }


def _arch_results(index, epochs, shift=0.0):
    """An ArchResults state dict for every dataset of NAS-Bench-201."""
    all_results, dataset_seed = {}, {}
    for dataset in ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"):
        dataset_seed[dataset] = list(SEEDS)
        for seed in SEEDS:
            all_results[(dataset, seed)] = _results_count(dataset, seed, index, epochs, shift)
    return {
        "arch_index": index,
        "arch_str": META_ARCHS[index],
        "all_results": all_results,
        "dataset_seed": dataset_seed,
        "clear_net_done": True,
    }


def _record(index, short_key, long_key):
    # The 12-epoch schedule holds other numbers: reading it would show.
    return {short_key: _arch_results(index, 12, shift=-30.0), long_key: _arch_results(index, 200)}


def _pbz2(path, obj):
    with bz2.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def _fast_mode_dir(root):
    """A NATS-Bench topology fast-mode directory (NATS-tss-v1_0-3ffb9-simple)."""
    root.mkdir()
    _pbz2(root / "meta.pickle.pbz2", {"meta_archs": META_ARCHS, "evaluated_indexes": [0, 1, 2]})
    for index in range(3):
        _pbz2(root / f"{index:06d}.pickle.pbz2", _record(index, "12", "200"))
    return root


def _official_dict(short_key, long_key):
    return {
        "meta_archs": META_ARCHS,
        "arch2infos": {index: _record(index, short_key, long_key) for index in range(3)},
        "evaluated_indexes": [0, 1, 2],
    }


def _check_tiny(bench, dataset):
    assert len(bench) == 3
    assert set(bench.archs()) == set(META_ARCHS[:3])
    for index in range(3):
        result = bench.query(META_ARCHS[index])
        for key, value in _expected(index, dataset).items():
            assert result[key] == pytest.approx(value, abs=1e-9), (index, key)
    table = bench.table([META_ARCHS[2], META_ARCHS[0]], "test_acc")
    np.testing.assert_allclose(table, [_expected(2, dataset)["test_acc"], _expected(0, dataset)["test_acc"]])
    with pytest.raises(ValueError, match="is not in the benchmark"):
        bench.query(META_ARCHS[3])
    assert META_ARCHS[4] not in bench


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_fast_mode_directory(tmp_path, dataset):
    bench = NasBench201(_fast_mode_dir(tmp_path / "NATS-tss-v1_0-3ffb9-simple"), dataset)
    _check_tiny(bench, dataset)


def test_fast_mode_reads_lazily(tmp_path):
    root = _fast_mode_dir(tmp_path / "simple")
    (root / "000002.pickle.pbz2").write_bytes(b"not a bz2 file")
    bench = NasBench201(root)  # reads no architecture's file yet
    assert bench.query(RESNET)["test_acc"] == pytest.approx(75.0)
    with pytest.raises(ValueError, match="000002.pickle.pbz2"):
        bench.query(META_ARCHS[2])


def test_single_pbz2_file(tmp_path):
    _pbz2(tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2", _official_dict("12", "200"))
    _check_tiny(NasBench201(tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2", "cifar100"), "cifar100")


def test_pth_needs_torch(tmp_path, monkeypatch):
    (tmp_path / "NAS-Bench-201-v1_1-096897.pth").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
    with pytest.raises(ImportError, match="needs PyTorch.*pip install torch"):
        NasBench201(tmp_path / "NAS-Bench-201-v1_1-096897.pth")


def test_pth_file_agrees_with_the_official_api(tmp_path):
    torch = pytest.importorskip("torch")
    api_module = pytest.importorskip("nas_201_api")
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(_official_dict("less", "full"), path)
    api = api_module.NASBench201API(str(path), verbose=False)
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        bench = NasBench201(path, dataset)
        _check_tiny(bench, dataset)
        for index in range(3):
            result = bench.query(META_ARCHS[index])
            if dataset == "cifar10":
                valid = api.get_more_info(index, "cifar10-valid", hp="200", is_random=False)
                test = api.get_more_info(index, "cifar10", hp="200", is_random=False)
            else:
                valid = test = api.get_more_info(index, dataset, hp="200", is_random=False)
            cost = api.get_cost_info(index, dataset, hp="200")
            assert result["val_acc"] == pytest.approx(valid["valid-accuracy"])
            assert result["test_acc"] == pytest.approx(test["test-accuracy"])
            assert result["params"] == pytest.approx(cost["params"])
            assert result["flops"] == pytest.approx(cost["flops"])


def test_official_format_errors(tmp_path):
    _pbz2(tmp_path / "wrong.pickle.pbz2", {"archs": []})
    with pytest.raises(ValueError, match="'meta_archs' and 'arch2infos'"):
        NasBench201(tmp_path / "wrong.pickle.pbz2")
    data = _official_dict("12", "90")  # no 200-epoch results
    _pbz2(tmp_path / "no200.pickle.pbz2", data)
    with pytest.raises(ValueError, match="200-epoch results"):
        NasBench201(tmp_path / "no200.pickle.pbz2")
