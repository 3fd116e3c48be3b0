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
