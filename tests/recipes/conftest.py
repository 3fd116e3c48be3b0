import pytest

from kerasnas.recipes import nb201_spos

# The smoke preset, smaller: 4 steps per epoch, 3 candidates.
SMOKE_ARGS = ["--preset", "smoke", "--epochs", "2", "--limit", "256",
              "--num-candidates", "3", "--verbose", "0"]


@pytest.fixture
def smoke_args():
    return list(SMOKE_ARGS)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """`(output directory, result dict)` of one uninterrupted smoke run."""
    output = tmp_path_factory.mktemp("smoke")
    result = nb201_spos.main(SMOKE_ARGS + ["--output", str(output)])
    return output, result


# nb201_search's smoke, smaller: 2 epochs of 4 steps, 10 architectures
# scored on 128 validation images.
SEARCH_ARGS = ["--preset", "smoke", "--epochs", "2", "--limit", "128",
               "--max-trials", "10", "--population-size", "5", "--sample-size", "2",
               "--bn-calibration-steps", "2", "--verbose", "0"]


@pytest.fixture
def search_args():
    return list(SEARCH_ARGS)


@pytest.fixture(scope="session")
def search_run(tmp_path_factory):
    """`(output directory, search.json dict)` of one reduced nb201_search run."""
    from kerasnas.recipes import nb201_search

    output = tmp_path_factory.mktemp("search")
    report = nb201_search.main(SEARCH_ARGS + ["--output", str(output)])
    return output, report
