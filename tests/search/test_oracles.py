"""Oracles, constraints and the benchmark tuner (no supernet needed)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kerasnas
from kerasnas.search import BenchmarkTuner
from kerasnas.search import Constraints
from kerasnas.search import EvolutionOracle
from kerasnas.search import RandomArchOracle

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"  # beside the checkout, as tests/conftest.py finds it


@pytest.fixture(scope="module")
def bench():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return kerasnas.benchmarks.NasBench201(SHARED_DATA / "nb201", "cifar10")


def small_space():
    # 2 options per edge: 64 architectures.
    return kerasnas.spaces.NasBench201(ops=("nor_conv_1x1", "nor_conv_3x3"))


class TableTuner(kerasnas.search.ArchTuner):
    """Scores an architecture by a fixed function of its options."""

    objectives = ("val_accuracy",)

    def __init__(self, oracle, score, **kwargs):
        self.score = score
        super().__init__(oracle, **kwargs)

    def evaluate(self, arch):
        return {"val_accuracy": self.score(arch)}


def n3(arch):
    return sum(op == "nor_conv_3x3" for op in arch.values()) / 6.0


def trial_archs(tuner):
    return [r["arch"] for r in tuner.results()]


def keys(archs):
    return [json.dumps(a, sort_keys=True) for a in archs]


def test_trial_values_are_architectures(tmp_path):
    space = kerasnas.spaces.NasBench201()
    oracle = RandomArchOracle(space, max_trials=5, seed=0)
    assert [hp.name for hp in oracle.get_space().space] == list(space.labels)
    tuner = TableTuner(oracle, n3, directory=tmp_path, project_name="p")
    tuner.search(verbose=0)
    archs = trial_archs(tuner)
    assert len(archs) == 5
    for arch in archs:
        assert space.validate(arch) == arch


@pytest.mark.parametrize("kind", ["random", "evolution"])
def test_search_never_repeats_and_stops_when_the_space_is_exhausted(tmp_path, kind):
    space = small_space()
    if kind == "random":
        oracle = RandomArchOracle(space, seed=1)
    else:
        oracle = EvolutionOracle(space, population_size=8, sample_size=3, seed=1)
    tuner = TableTuner(oracle, n3, directory=tmp_path, project_name="p")
    tuner.search(verbose=0)
    archs = keys(trial_archs(tuner))
    assert len(archs) == len(space) == 64
    assert len(set(archs)) == 64


def test_constraints_are_never_violated(tmp_path):
    space = kerasnas.spaces.NasBench201()
    resnet = space.from_string(
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    )
    limit = space.params(resnet)
    no_none = lambda arch: "none" not in arch.values()  # noqa: E731
    constraints = Constraints(max_params=limit, predicate=no_none)
    feasible = [a for a in space.enumerate() if space.params(a) <= limit and no_none(a)]
    oracle = EvolutionOracle(space, population_size=10, sample_size=3, constraints=constraints, max_trials=60, seed=0)
    assert oracle.feasible_count == len(feasible)
    tuner = TableTuner(oracle, n3, directory=tmp_path, project_name="p")
    tuner.search(verbose=0)
    archs = trial_archs(tuner)
    assert len(archs) == 60
    assert all(space.params(a) <= limit and no_none(a) for a in archs)
    assert constraints.violations(space, {k: "nor_conv_3x3" for k in space.labels})[0].startswith("params")


def test_bad_input_gets_clear_errors(tmp_path, bench):
    space = small_space()
    with pytest.raises(ValueError, match="constraints.*satisfies"):
        RandomArchOracle(space, constraints=Constraints(max_params=10))
    with pytest.raises(ValueError, match="population_size.*at most.*64"):
        EvolutionOracle(space, population_size=100)
    # Only 2 architectures satisfy these constraints.
    two = Constraints(max_params=space.params({k: "nor_conv_1x1" for k in space.labels}) + 1e9,
                      predicate=lambda a: list(a.values()).count("nor_conv_3x3") >= 5 and a["1<-0"] == "nor_conv_3x3")
    with pytest.raises(ValueError, match="population_size.*satisfying the constraints"):
        EvolutionOracle(space, population_size=10, constraints=two)
    with pytest.raises(ValueError, match="sample_size"):
        EvolutionOracle(space, population_size=4, sample_size=5)
    with pytest.raises(ValueError, match="mutation_prob"):
        EvolutionOracle(space, mutation_prob=1.5, population_size=4, sample_size=2)
    with pytest.raises(ValueError, match="max_params"):
        Constraints(max_params=-1)
    with pytest.raises(ValueError, match="objective.*val_accuracy.*Received: objective='top5'"):
        BenchmarkTuner(RandomArchOracle(bench.space), bench, objective="top5",
                       directory=tmp_path, project_name="p")
    with pytest.raises(ValueError, match="oracle"):
        BenchmarkTuner("random", bench, directory=tmp_path, project_name="p")
    with pytest.raises(ValueError, match="benchmark's space"):
        BenchmarkTuner(RandomArchOracle(space), bench, directory=tmp_path, project_name="p")


def test_mutation_changes_labels_of_the_tournament_winner(tmp_path):
    space = kerasnas.spaces.NasBench201()
    oracle = EvolutionOracle(space, population_size=12, sample_size=12, mutation_prob=0.0,
                             crossover=False, max_trials=30, seed=0)
    unique = lambda arch: float(np.dot(space.encode(arch), 5 ** np.arange(6)))  # noqa: E731 (no ties)
    tuner = TableTuner(oracle, unique, directory=tmp_path, project_name="p")
    tuner.search(verbose=0)
    population = oracle.population()
    # Ageing: the population is the last `population_size` completed trials.
    assert [t.trial_id for t in population] == oracle.end_order[-12:]
    best = max(population, key=lambda t: t.score).hyperparameters.values
    rng = np.random.default_rng(0)
    for _ in range(20):
        child = oracle._propose(rng)  # the whole population is the tournament
        assert sum(child[k] != best[k] for k in space.labels) == 1
    oracle.mutation_prob = 1.0
    child = oracle.mutate(best, rng)
    assert all(child[k] != best[k] for k in space.labels)


def test_evolution_finds_better_architectures_than_random_on_nb201(tmp_path, bench):
    # 20 seeds x 100 queries of NAS-Bench-201 CIFAR-10 ground truth: search on
    # the validation accuracy, judge the best trial by its test accuracy.
    found = {"evolution": [], "random": []}
    for seed in range(20):
        for kind in found:
            if kind == "evolution":
                oracle = EvolutionOracle(bench.space, population_size=10, sample_size=3,
                                         max_trials=100, seed=seed)
            else:
                oracle = RandomArchOracle(bench.space, max_trials=100, seed=seed)
            tuner = BenchmarkTuner(oracle, bench, directory=tmp_path, project_name=f"{kind}{seed}")
            tuner.search(verbose=0)
            assert len(tuner.results()) == 100
            best = tuner.oracle.get_best_trials(1)[0]
            found[kind].append(best.metrics.get_last_value("test_accuracy"))
    evolution, random = np.mean(found["evolution"]), np.mean(found["random"])
    print(f"evolution {100 * evolution:.3f} vs random {100 * random:.3f}")
    assert evolution > random


SEARCH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import kerasnas
    from kerasnas.search import EvolutionOracle, BenchmarkTuner

    bench = kerasnas.benchmarks.NasBench201(sys.argv[1], "cifar10")
    kill_at = int(sys.argv[3])

    class Tuner(BenchmarkTuner):
        def evaluate(self, arch):
            if len(self.oracle.trials) == kill_at:
                os._exit(9)  # killed in the middle of a trial
            return super().evaluate(arch)

    oracle = EvolutionOracle(bench.space, population_size=6, sample_size=2, max_trials=16, seed=3)
    tuner = Tuner(oracle, bench, directory=sys.argv[2], project_name="search", overwrite=False)
    tuner.search(verbose=0)
    """
)


def test_killed_search_resumes_without_losing_or_repeating_trials(tmp_path, bench):
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))

    def run(directory, kill_at):
        return subprocess.run(
            [sys.executable, str(script), bench.source, str(directory), str(kill_at)],
            env=env, capture_output=True, text=True, timeout=300,
        )

    killed = run(tmp_path / "resumed", kill_at=9)
    assert killed.returncode == 9, killed.stderr[-2000:]
    resumed = run(tmp_path / "resumed", kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # The same search, uninterrupted, in this process.
    oracle = EvolutionOracle(bench.space, population_size=6, sample_size=2, max_trials=16, seed=3)
    BenchmarkTuner(oracle, bench, directory=tmp_path / "whole", project_name="search").search(verbose=0)

    def trials(directory):
        out = {}
        for path in sorted((directory / "search").glob("trial_*/trial.json")):
            trial = json.loads(path.read_text())
            out[trial["trial_id"]] = (trial["status"], json.dumps(trial["hyperparameters"]["values"], sort_keys=True))
        return out

    resumed_trials, whole_trials = trials(tmp_path / "resumed"), trials(tmp_path / "whole")
    assert len(resumed_trials) == 16
    assert all(status == "COMPLETED" for status, _ in resumed_trials.values())
    assert len({arch for _, arch in resumed_trials.values()}) == 16
    # The interrupted trial ran again; the search then went on as if never killed.
    assert resumed_trials == whole_trials
