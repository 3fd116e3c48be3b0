import csv

import numpy as np
import pytest

import kerasnas
from kerasnas.evaluation import ranking
from nas_helpers import compile_sgd, tiny_data, tiny_space


@pytest.fixture(scope="module")
def trained():
    space = tiny_space()
    supernet = compile_sgd(space.build_supernet(seed=0, bn="standard"))
    _, _, data = tiny_data(num=64, batch_size=16, seed=1)
    supernet.fit(data, epochs=2, verbose=0)
    archs = [space.to_string(space.sample(seed)) for seed in range(8)]
    return supernet, data, archs


def test_scores_equal_evaluate_arch_with_and_without_calibration(trained):
    supernet, data, archs = trained
    before = [v.numpy().copy() for v in supernet._bn_statistics()]
    for steps in (0, 2):
        kwargs = dict(bn_calibration_data=data, bn_calibration_steps=steps)
        scores = kerasnas.evaluation.rank_architectures(supernet, archs[:4], data, verbose=0, **kwargs)
        expected = [
            supernet.evaluate_arch(supernet.space.from_string(a), data, **kwargs)["accuracy"]
            for a in archs[:4]
        ]
        np.testing.assert_allclose(scores, expected, atol=1e-6)
    # Calibration changes the scores of this moving-statistics supernet
    # (otherwise the equality above would not test calibration).
    plain = kerasnas.evaluation.rank_architectures(supernet, archs, data, verbose=0)
    calibrated = kerasnas.evaluation.rank_architectures(
        supernet, archs, data, bn_calibration_data=data, bn_calibration_steps=2, verbose=0
    )
    assert not np.allclose(plain, calibrated)
    for a, b in zip(before, supernet._bn_statistics()):
        np.testing.assert_array_equal(a, b.numpy())  # the supernet's own statistics are back


def test_one_trace_for_all_architectures(trained):
    supernet, data, archs = trained
    with ranking.ArchitectureScorer(supernet, data, data, 2) as scorer:
        for arch in archs:
            scorer.score(supernet.space.from_string(arch))
        assert scorer._evaluate().experimental_get_tracing_count() == 1
        assert supernet._make_calibration_function().experimental_get_tracing_count() == 1


def test_results_file_resumes_to_the_same_file(trained, tmp_path, monkeypatch):
    supernet, data, archs = trained
    full = tmp_path / "full.csv"
    expected = kerasnas.evaluation.rank_architectures(supernet, archs, data, results_path=full, verbose=0)

    killed = tmp_path / "killed.csv"
    original = ranking.ArchitectureScorer.score
    calls = []

    def dying_score(self, arch):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(arch)
        return original(self, arch)

    monkeypatch.setattr(ranking.ArchitectureScorer, "score", dying_score)
    with pytest.raises(KeyboardInterrupt):
        kerasnas.evaluation.rank_architectures(supernet, archs, data, results_path=killed, verbose=0)
    monkeypatch.setattr(ranking.ArchitectureScorer, "score", original)
    with open(killed) as f:
        assert len(list(csv.reader(f))) == 1 + 3
    with open(killed, "a") as f:
        f.write(archs[3][:10])  # a partial line, as a kill mid-write leaves

    scored = []
    monkeypatch.setattr(
        ranking.ArchitectureScorer, "score", lambda self, arch: scored.append(arch) or original(self, arch)
    )
    resumed = kerasnas.evaluation.rank_architectures(supernet, archs, data, results_path=killed, verbose=0)
    assert len(scored) == len(archs) - 3  # the first three were not scored again
    np.testing.assert_array_equal(resumed, expected)
    assert killed.read_bytes() == full.read_bytes()


def test_bad_inputs(trained, tmp_path):
    supernet, data, archs = trained
    with pytest.raises(ValueError, match="bn_calibration_data"):
        kerasnas.evaluation.rank_architectures(supernet, archs, data, bn_calibration_steps=2)
    with pytest.raises(ValueError, match="finite"):
        kerasnas.evaluation.rank_architectures(supernet, archs, data.repeat())
    with pytest.raises(ValueError, match="at least one"):
        kerasnas.evaluation.rank_architectures(supernet, [], data)
    with pytest.raises(ValueError, match="nor_conv_5x5"):
        kerasnas.evaluation.rank_architectures(supernet, [archs[0].replace("none", "nor_conv_5x5")], data)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="results_path"):
        kerasnas.evaluation.rank_architectures(supernet, archs, data, results_path=other)


def test_loss_score_ranks_by_the_negative_mean_loss(trained):
    supernet, data, archs = trained
    losses = kerasnas.evaluation.rank_architectures(supernet, archs[:4], data, verbose=0, score="loss")
    expected = [
        -supernet.evaluate_arch(supernet.space.from_string(a), data)["loss"] for a in archs[:4]
    ]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="argument `score`"):
        kerasnas.evaluation.rank_architectures(supernet, archs[:1], data, verbose=0, score="auc")
