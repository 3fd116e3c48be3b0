"""NAS-Bench-201's ground truth: accuracies and costs of its 15,625 cells."""

import bz2
import json
import os
import pickle
import re

import numpy as np

from kerasnas.spaces.nas_bench_201 import NasBench201 as NasBench201Space

# Canonical (official) spelling of each dataset, by lower-case name.
DATASETS = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet16-120": "ImageNet16-120",
}
# Names of the JSON tables of a benchmark directory.
JSON_FILES = {
    "cifar10": "nasbench201_cifar10.json",
    "cifar100": "nasbench201_cifar100.json",
    "ImageNet16-120": "nasbench201_imagenet.json",
}
KEYS = ("val_acc", "test_acc", "params", "flops")

# Where the official records keep each dataset's numbers: the (dataset,
# evaluation set) of the validation and test accuracies and the dataset
# whose compute costs are reported. CIFAR-10's validation accuracy comes
# from the model trained on the train split (`cifar10-valid`), its test
# accuracy from the model trained on train + valid (`cifar10`).
_OFFICIAL = {
    "cifar10": (("cifar10-valid", "x-valid"), ("cifar10", "ori-test"), "cifar10"),
    "cifar100": (("cifar100", "x-valid"), ("cifar100", "x-test"), "cifar100"),
    "ImageNet16-120": (
        ("ImageNet16-120", "x-valid"),
        ("ImageNet16-120", "x-test"),
        "ImageNet16-120",
    ),
}
# Keys of the 200-epoch results: NAS-Bench-201 `.pth` files call them
# "full", NATS-Bench's topology files "200".
_HP_KEYS = ("200", "full")
_PICKLE_EXT = ".pickle.pbz2"
_FAST_MODE_META = "meta" + _PICKLE_EXT
_FAST_MODE_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")


def nas_bench_201_space(dataset="cifar10"):
    """The benchmark's network space (C=16, N=5) for `dataset`.

    Args:
        dataset: `"cifar10"`, `"cifar100"` or `"ImageNet16-120"` (any case).

    Returns:
        A `kerasnas.spaces.NasBench201` with the dataset's classes and image
        size (32x32, or 16x16 for ImageNet16-120).
    """
    dataset = canonical_dataset(dataset)
    num_classes = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}[dataset]
    size = 16 if dataset == "ImageNet16-120" else 32
    return NasBench201Space(
        num_classes=num_classes,
        channels=16,
        cells_per_stage=5,
        input_shape=(size, size, 3),
    )


def canonical_dataset(dataset):
    """The official spelling of a NAS-Bench-201 dataset name (any case)."""
    name = DATASETS.get(dataset.lower()) if isinstance(dataset, str) else None
    if name is None:
        raise ValueError(
            "Invalid value for argument `dataset`. Expected one of "
            f"{list(DATASETS.values())} (any case). Received: dataset={dataset!r}"
        )
    return name


class NasBench201:
    """The NAS-Bench-201 benchmark: ground truth of every cell of the space.

    Each architecture has a validation and a test accuracy (200 epochs, mean
    over the benchmark's seeds, in percent) and the parameters and FLOPs of
    its stand-alone network (in millions). For CIFAR-10 the validation
    accuracy is that of the `cifar10-valid` model (trained on the train
    split, evaluated on the held-out half of the train set) and the test
    accuracy that of the model trained on the full train set; for CIFAR-100
    and ImageNet16-120 they are the benchmark's `x-valid` and `x-test`.

    `source` may be:

    - a JSON table `{arch_string: {"val_acc_200": float, "test_acc_200":
      float, ...}}` of one dataset; the costs are then computed by
      `self.space` (`params()` / `flops()`, which equal the benchmark's);
    - a directory holding `nasbench201_cifar10.json`,
      `nasbench201_cifar100.json` and `nasbench201_imagenet.json`: the file
      of `dataset` is read;
    - the official benchmark, read only for what is needed here (the
      200-epoch accuracies and the costs; never the training curves'
      details beyond the last epoch), in one of the formats of the
      `nas-bench-201` / NATS-Bench APIs:
      - a NATS-Bench topology "fast mode" directory
        (`NATS-tss-v1_0-3ffb9-simple`: `meta.pickle.pbz2` and one
        `{index:06d}.pickle.pbz2` per architecture). Nothing is read but the
        list of architectures until an architecture is queried, and each
        file is read once. Needs nothing but Python.
      - a NAS-Bench-201 `.pth` file (`NAS-Bench-201-v1_1-096897.pth`). This
        is a PyTorch pickle: it needs `torch` and loads the whole file
        into memory while the table is extracted (about 25 GB for v1.1).
      - a NATS-Bench topology `.pickle.pbz2` file (the whole benchmark in
        one file), loaded whole as well.
      Costs are the benchmark's own (mean over seeds of the records of
      `dataset`, which is what `NASBench201API.get_cost_info` returns).
      To read a large file once only, `to_json()` writes the table as JSON.
      Like the official APIs, this unpickles the files: read only
      benchmark files from a source you trust.

    Args:
        source: path of a JSON file, of a directory of JSON files, of an
            official benchmark file or of a fast-mode directory.
        dataset: `"cifar10"`, `"cifar100"` or `"ImageNet16-120"` (any case).

    Example:

    ```python
    bench = kerasnas.benchmarks.NasBench201("shared/data/nb201", "cifar10")
    bench.query("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|"
                "+|skip_connect~0|none~1|skip_connect~2|")
    # {'val_acc': 90.86, 'test_acc': 93.91, 'params': 0.559386, 'flops': 78.56193}
    accuracies = bench.table(bench.archs(), "test_acc")
    ```
    """

    def __init__(self, source, dataset="cifar10"):
        self.dataset = canonical_dataset(dataset)
        self.space = nas_bench_201_space(self.dataset)
        self.source = os.fspath(source)
        self._cost_cache = {}
        self._fast_mode_files = None
        path = self.source
        if os.path.isdir(path):
            if os.path.isfile(os.path.join(path, _FAST_MODE_META)):
                self._open_fast_mode(path)
            elif os.path.isfile(os.path.join(path, JSON_FILES[self.dataset])):
                self._read_json(os.path.join(path, JSON_FILES[self.dataset]))
            else:
                raise ValueError(
                    "Invalid value for argument `source`. Expected a directory "
                    f"holding {JSON_FILES[self.dataset]!r} (dataset "
                    f"{self.dataset!r}) or a NATS-Bench fast-mode directory "
                    f"holding {_FAST_MODE_META!r}. Received: source={path!r}"
                )
        elif os.path.isfile(path):
            if path.endswith(".json"):
                self._read_json(path)
            elif path.endswith(".pth"):
                self._read_official(_torch_load(path), path)
            elif path.endswith(".pbz2"):
                self._read_official(_pickle_load(path), path)
            else:
                raise ValueError(
                    "Invalid value for argument `source`. Expected a `.json` "
                    "table, a NAS-Bench-201 `.pth` file, a NATS-Bench "
                    "`.pickle.pbz2` file or a directory. "
                    f"Received: source={path!r}"
                )
        else:
            raise ValueError(
                "Invalid value for argument `source`. Expected an existing file "
                f"or directory. Received: source={path!r}"
            )

    # === Loading ===
    def _set_archs(self, strings, expected=None):
        """Orders the architectures (the space's enumeration order) and
        allocates the table, every row not yet loaded; with `expected` (the
        message of a file's format), a key that is not an architecture
        string is refused with it."""
        arch_of = {}
        for string in strings:
            try:
                arch_of[string] = self.space.from_string(string)
            except ValueError:
                if expected is None:
                    raise
                raise ValueError(
                    f"{expected} (the key {string!r} is not a NAS-Bench-201 architecture string)"
                ) from None
        order = sorted(arch_of, key=lambda s: self.space.encode(arch_of[s]))
        self._archs = tuple(order)
        self._row = {s: i for i, s in enumerate(order)}
        self._columns = {key: np.full(len(order), np.nan) for key in KEYS}
        self._loaded = np.zeros(len(order), dtype=bool)
        return arch_of

    def _read_json(self, path):
        holds = [name for name, file in JSON_FILES.items() if file == os.path.basename(path)]
        if holds and holds[0] != self.dataset:
            raise ValueError(
                f"Invalid value for argument `dataset`. The file {path!r} holds "
                f"the {holds[0]!r} table. Received: dataset={self.dataset!r}"
            )
        expected = (
            "Invalid value for argument `source`. Expected a JSON object "
            '{arch_string: {"val_acc_200": float, "test_acc_200": float}}. '
            f"Received: source={path!r}"
        )
        try:
            with open(path, encoding="utf-8") as f:
                table = json.load(f)
        except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError too
            raise ValueError(f"{expected} (not UTF-8 JSON: {error})") from None
        if not isinstance(table, dict) or not table:
            what = "an empty object" if isinstance(table, dict) else f"a JSON {type(table).__name__}"
            raise ValueError(f"{expected} ({what})")
        arch_of = self._set_archs(table, expected)
        for string, entry in table.items():
            try:
                val, test = float(entry["val_acc_200"]), float(entry["test_acc_200"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"Invalid value for argument `source`. Expected the entry of "
                    f"{string!r} in {path!r} to hold numbers 'val_acc_200' and "
                    f"'test_acc_200'. Received: {entry!r}"
                ) from None
            params, flops = self._space_costs(arch_of[string])
            self._set_row(string, val, test, params, flops)

    def _space_costs(self, arch):
        # Parameters and FLOPs depend only on the numbers of 3x3 and 1x1
        # convolutions of the cell (the other operations have no weights).
        key = tuple(sum(op == name for op in arch.values()) for name in ("nor_conv_3x3", "nor_conv_1x1"))
        if key not in self._cost_cache:
            self._cost_cache[key] = (self.space.params(arch) / 1e6, self.space.flops(arch) / 1e6)
        return self._cost_cache[key]

    def _set_row(self, string, val, test, params, flops):
        row = self._row[string]
        for key, value in zip(KEYS, (val, test, params, flops)):
            self._columns[key][row] = value
        self._loaded[row] = True

    def _read_official(self, data, path):
        try:
            meta_archs = list(data["meta_archs"])
            infos = data["arch2infos"]
        except (KeyError, TypeError):
            raise ValueError(
                "Invalid value for argument `source`. Expected an official "
                "NAS-Bench-201 / NATS-Bench topology benchmark (a dict with "
                f"'meta_archs' and 'arch2infos'). Received: source={path!r}"
            ) from None
        self._set_archs(meta_archs[int(index)] for index in infos)
        for index in list(infos):
            string = meta_archs[int(index)]
            # Drop each record once read, so that memory goes down as we go.
            record = infos.pop(index)
            self._set_row(string, *_official_row(record, self.dataset, f"{path}[{index}]"))

    def _open_fast_mode(self, path):
        meta = _pickle_load(os.path.join(path, _FAST_MODE_META))
        try:
            meta_archs = list(meta["meta_archs"])
        except (KeyError, TypeError):
            raise ValueError(
                "Invalid value for argument `source`. Expected the NATS-Bench "
                f"fast-mode file {_FAST_MODE_META!r} to hold 'meta_archs'. "
                f"Received: source={path!r}"
            ) from None
        files = {}
        for name in os.listdir(path):
            match = _FAST_MODE_FILE.match(name)
            if match and int(match.group(1)) < len(meta_archs):
                files[meta_archs[int(match.group(1))]] = os.path.join(path, name)
        self._set_archs(files)
        self._fast_mode_files = files

    def _load_rows(self, rows):
        if self._fast_mode_files is None:
            return
        for row in rows[~self._loaded[rows]]:
            string = self._archs[row]
            file = self._fast_mode_files[string]
            if not self._loaded[row]:
                self._set_row(string, *_official_row(_pickle_load(file), self.dataset, file))

    # === Queries ===
    def archs(self):
        """Every architecture of the benchmark, as NAS-Bench-201 strings.

        Returns:
            A list in the space's enumeration order (option indices in
            lexicographic order), whatever the order of the source.
        """
        return list(self._archs)

    def _rows(self, archs):
        rows = np.empty(len(archs), dtype=np.int64)
        for i, arch in enumerate(archs):
            rows[i] = self._row_of(arch)
        self._load_rows(rows)
        return rows

    def _row_of(self, arch):
        if isinstance(arch, str):
            row = self._row.get(arch)
            if row is not None:
                return row
            string = self.space.to_string(self.space.from_string(arch))
        else:
            string = self.space.to_string(arch)
        row = self._row.get(string)
        if row is None:
            raise ValueError(
                f"Invalid value for argument `arch`. The architecture {string!r} "
                f"is not in the benchmark (source {self.source!r}, dataset "
                f"{self.dataset!r}). Received: arch={arch!r}"
            )
        return row

    def query(self, arch):
        """The ground truth of one architecture.

        Args:
            arch: a dict `{label: op}` of `self.space` or a NAS-Bench-201
                string.

        Returns:
            `{"val_acc": float, "test_acc": float, "params": float,
            "flops": float}`: accuracies in percent, costs in millions.

        Raises:
            ValueError: if `arch` is malformed (the space's error) or not in
                the benchmark.
        """
        row = self._rows([arch])[0]
        return {key: float(self._columns[key][row]) for key in KEYS}

    def table(self, archs=None, key="test_acc"):
        """One column of the benchmark for many architectures, vectorized.

        Args:
            archs: architectures (dicts or strings); default: `self.archs()`.
            key: `"val_acc"`, `"test_acc"`, `"params"` or `"flops"`.

        Returns:
            A float64 numpy array, one value per architecture of `archs`.
            From a fast-mode directory, the first look-up of an
            architecture reads its file (the whole benchmark: minutes);
            later ones are lookups in memory.
        """
        if key not in KEYS:
            raise ValueError(
                f"Invalid value for argument `key`. Expected one of {list(KEYS)}. "
                f"Received: key={key!r}"
            )
        rows = np.arange(len(self._archs)) if archs is None else self._rows(list(archs))
        if archs is None:
            self._load_rows(rows)
        return self._columns[key][rows].copy()

    def to_json(self, path):
        """Writes the benchmark as a JSON table that `NasBench201` reads back.

        The format is `{arch_string: {"val_acc_200", "test_acc_200", "rank"}}`
        (rank 1 = best test accuracy, ties in the order of `archs()`), the
        format of the tables kerasnas' tests use. Useful to read a large
        official file once only.

        Args:
            path: the `.json` file to write.

        Returns:
            `path`.
        """
        val, test = self.table(None, "val_acc"), self.table(None, "test_acc")
        order = np.argsort(-test, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        table = {
            s: {"val_acc_200": float(v), "test_acc_200": float(t), "rank": int(r)}
            for s, v, t, r in zip(self._archs, val, test, rank)
        }
        with open(path, "w") as f:
            json.dump(table, f)
        return path

    def __len__(self):
        return len(self._archs)

    def __iter__(self):
        return iter(self._archs)

    def __contains__(self, arch):
        try:
            self._row_of(arch)
        except ValueError:
            return False
        return True

    def __repr__(self):
        return (
            f"NasBench201(source={self.source!r}, dataset={self.dataset!r}, "
            f"archs={len(self)})"
        )


# === Official formats ===
def _torch_load(path):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading the NAS-Bench-201 file {path!r} needs PyTorch (it is a "
            "torch pickle): `pip install torch` (the CPU build is enough). "
            "The NATS-Bench fast-mode directory (NATS-tss-v1_0-3ffb9-simple) "
            "or a JSON table need no PyTorch."
        ) from None
    # The file is a pickle of plain Python records, not of tensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def _pickle_load(path):
    try:
        with bz2.open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(
            "Invalid value for argument `source`. Expected a bz2-compressed "
            f"pickle at {path!r}; reading it failed: {e!r}"
        ) from None


def _official_row(record, dataset, where):
    """(val_acc, test_acc, params_M, flops_M) of one architecture's record.

    `record` maps the training schedules to `ArchResults` state dicts
    (`{"dataset_seed": {dataset: [seeds]}, "all_results": {(dataset, seed):
    ResultsCount state}}`); the 200-epoch one is read. Accuracies are the
    mean over seeds at the last epoch, costs the mean over seeds, as
    `ArchResults.get_metrics(..., is_random=False)` and
    `ArchResults.get_compute_costs` compute them.
    """
    (val_data, val_set), (test_data, test_set), cost_data = _OFFICIAL[dataset]
    hp = next((k for k in _HP_KEYS if isinstance(record, dict) and k in record), None)
    try:
        results = record[hp]
        val = _mean_over_seeds(results, val_data, lambda r: _last_accuracy(r, val_set))
        test = _mean_over_seeds(results, test_data, lambda r: _last_accuracy(r, test_set))
        params = _mean_over_seeds(results, cost_data, lambda r: r["params"])
        flops = _mean_over_seeds(results, cost_data, lambda r: r["flop"])
    except (KeyError, TypeError, IndexError) as e:
        raise ValueError(
            "Invalid value for argument `source`. Expected 200-epoch results "
            f"(keys {list(_HP_KEYS)}) of dataset {dataset!r} in the official "
            f"format at {where!r}; missing or malformed: {e!r}"
        ) from None
    return val, test, params, flops


def _mean_over_seeds(results, dataset, value):
    seeds = results["dataset_seed"][dataset]
    values = [float(value(results["all_results"][(dataset, seed)])) for seed in seeds]
    if not values:
        raise KeyError(f"no seed of {dataset}")
    return float(np.mean(values))


def _last_accuracy(result, eval_set):
    return result["eval_acc1es"][f"{eval_set}@{int(result['epochs']) - 1}"]
