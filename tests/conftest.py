"""Shared fixtures. Splits the CPU into 2 logical devices (as Keras'
`distribute_test.py` does) before TensorFlow initializes its devices, so
MirroredStrategy tests run without GPUs."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Under pytest-xdist the workers share the cores: each gets its share of
# intra-op threads (on CI's 2 cores, one each), so that they do not oversubscribe
# the machine and every kernel sums in the same order run after run.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = max(1, (os.cpu_count() or 1) // _workers)
    tf.config.threading.set_intra_op_parallelism_threads(_threads)

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

import kerasnas  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


# The files that take longest (`--durations`, worker-seconds on CI's 2 cores),
# longest first: pytest-xdist's `--dist loadfile` hands files out in
# collection order, so starting these first keeps both workers busy to the
# end instead of one finishing a long file alone.
_LONGEST_FIRST = (
    "tests/test_round_trip.py",
    "tests/test_distribute.py",
    "tests/recipes/test_nb201_compare.py",
    "tests/test_supernet.py",
    "tests/test_readme_examples.py",
    "tests/test_function_space.py",
    "tests/test_interchoice.py",
    "tests/recipes/test_darts_pt.py",
    "tests/darts/test_darts_supernet.py",
    "tests/recipes/test_saved_supernets.py",
    "tests/recipes/test_search_recipes.py",
    "tests/sampling/test_pada.py",
    "tests/fewshot/test_darts_base.py",
    "tests/darts/test_selection.py",
    "tests/callbacks/test_non_finite.py",
    "tests/dcnas/test_dcnas.py",
    "tests/test_multi_worker.py",
)


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parents[1]

    def rank(item):
        path = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        return _LONGEST_FIRST.index(path) if path in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file is unchanged
