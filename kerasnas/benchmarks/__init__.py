"""Tabular NAS benchmarks: the ground truth that rankings are judged on."""

from kerasnas.benchmarks.nas_bench_201 import DATASETS
from kerasnas.benchmarks.nas_bench_201 import NasBench201
from kerasnas.benchmarks.nas_bench_201 import canonical_dataset
from kerasnas.benchmarks.nas_bench_201 import nas_bench_201_space
from kerasnas.benchmarks.sampling import check_benchmark
from kerasnas.benchmarks.sampling import sample_archs
