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
    # The same file as an uninterrupted run's, but for the seconds column.
    def without_seconds(path):
        with open(path) as f:
            return [row[:3] for row in csv.reader(f)]

    assert without_seconds(killed) == without_seconds(full)


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


def _dead_edge_family(space):
    """Architectures that differ only in ops on edges that cannot reach the
    output (node 2 feeds nothing: 3<-2 is none), plus one that differs on a
    live edge."""
    base = {"1<-0": "nor_conv_3x3", "2<-0": "none", "2<-1": "none", "3<-0": "skip_connect",
            "3<-1": "nor_conv_1x1", "3<-2": "none"}
    family = [dict(base, **{"2<-0": a, "2<-1": b}) for a, b in
              [("none", "none"), ("nor_conv_3x3", "avg_pool_3x3"), ("nor_conv_1x1", "skip_connect")]]
    live = dict(base, **{"3<-1": "nor_conv_3x3"})
    return [space.to_string(a) for a in family + [live]]


def test_equivalence_classes_score_once_and_equal_every_member(trained, tmp_path, monkeypatch):
    supernet, data, archs = trained
    space = supernet.space
    family = _dead_edge_family(space)
    mixed = family[:2] + archs[:3] + family[2:]
    kwargs = dict(bn_calibration_data=data, bn_calibration_steps=2, verbose=0)
    every = kerasnas.evaluation.rank_architectures(supernet, mixed, data, classes=None, **kwargs)

    original = ranking.ArchitectureScorer.score
    scored = []
    monkeypatch.setattr(ranking.ArchitectureScorer, "score",
                        lambda self, arch: scored.append(space.to_string(arch)) or original(self, arch))
    merged = kerasnas.evaluation.rank_architectures(
        supernet, mixed, data, classes="exact", results_path=tmp_path / "s.csv", **kwargs)
    np.testing.assert_allclose(merged, every, rtol=0, atol=1e-7)
    assert scored == [family[0]] + archs[:3] + [family[3]]  # the 3 dead-edge variants once
    assert len(set(every[[0, 1, 5]])) == 1  # ... and they do tie
    assert sorted(ranking.read_results(tmp_path / "s.csv")) == sorted(mixed)  # every member reported
    # Each scoring's seconds on its first member only; their sum is the cost.
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    timed = [float(r["seconds"]) for r in rows]
    assert sum(t > 0 for t in timed) == len(scored)
    assert ranking.ranking_seconds(tmp_path / "s.csv") == pytest.approx(sum(timed))

    # The live-edge variant does not tie with them (by loss: on 64 images accuracies may).
    live_vs_dead = kerasnas.evaluation.rank_architectures(
        supernet, [family[0], family[3]], data, classes=None, score="loss", **kwargs)
    assert live_vs_dead[0] != live_vs_dead[1]

    # Resume: a member already in the file gives its class's score unscored.
    scored.clear()
    again = kerasnas.evaluation.rank_architectures(
        supernet, [family[2], family[1]], data, results_path=tmp_path / "s.csv", **kwargs)
    assert scored == [] and again[0] == merged[0]
    partial = tmp_path / "partial.csv"
    partial.write_text(f"arch,accuracy,loss\n{family[1]},0.5,1.25\n")
    (tmp_path / "partial.json").write_text((tmp_path / "s.json").read_text())  # same inputs
    again = kerasnas.evaluation.rank_architectures(
        supernet, [family[1], family[2]], data, results_path=partial, **kwargs)
    assert scored == [] and list(again) == [0.5, 0.5]
    # A file from before the seconds column keeps its three columns.
    assert all(len(line.split(",")) == 3 for line in partial.read_text().splitlines())
    assert ranking.ranking_seconds(partial) is None

    # NAS-Bench-201's isomorphism classes: fewer computations, an approximation.
    scored.clear()
    # A skip on 1<-0 makes node 1 the input: conv3 on 3<-0 + conv1 on 3<-1
    # is conv1 on 3<-0 + conv3 on 3<-1 with the weights relabelled.
    swapped = {"1<-0": "skip_connect", "2<-0": "none", "2<-1": "none",
               "3<-0": "nor_conv_3x3", "3<-1": "nor_conv_1x1", "3<-2": "none"}
    twin = dict(swapped, **{"3<-0": "nor_conv_1x1", "3<-1": "nor_conv_3x3"})
    pair = [space.to_string(swapped), space.to_string(twin)]
    assert space.equivalence_key(swapped) != space.equivalence_key(twin)
    iso = kerasnas.evaluation.rank_architectures(supernet, pair, data, classes="isomorphic", **kwargs)
    assert scored == pair[:1] and iso[0] == iso[1]
    with pytest.raises(ValueError, match="rule.*'exact', 'isomorphic'.*Received: rule='graph'"):
        kerasnas.evaluation.rank_architectures(supernet, pair, data, classes="graph", verbose=0)


def test_bfloat16_scoring_matches_float32_and_leaves_the_supernet_alone(trained):
    supernet, data, archs = trained
    before = [v.numpy().copy() for v in supernet.variables]
    kwargs = dict(bn_calibration_data=data, bn_calibration_steps=2, verbose=0, score="loss")
    float32 = kerasnas.evaluation.rank_architectures(supernet, archs, data, **kwargs)
    bfloat16 = kerasnas.evaluation.rank_architectures(supernet, archs, data, dtype_policy="mixed_bfloat16", **kwargs)
    # bfloat16 has 8 bits of mantissa: losses agree to about 1 %, not bitwise.
    np.testing.assert_allclose(bfloat16, float32, rtol=3e-2)
    assert not np.array_equal(bfloat16, float32)  # it really computed in bfloat16
    for a, b in zip(before, supernet.variables):
        np.testing.assert_array_equal(a, b.numpy())
    with ranking.ArchitectureScorer(supernet, data, data, 2, dtype_policy="mixed_bfloat16") as scorer:
        twin = scorer.model
        assert twin is not supernet and twin.network_dtype_policy == "mixed_bfloat16"
        assert all(v.dtype == "float32" for v in twin.network_variables)
        assert all(v.dtype == "float32" for v in twin._bn_statistics())
        scorer.score(supernet.space.from_string(archs[0]))
    # The supernet's own policy needs no twin.
    assert ranking.ArchitectureScorer(supernet, data, dtype_policy="float32").twin is None
    with pytest.raises(ValueError, match="dtype_policy"):
        ranking.ArchitectureScorer(supernet, data, dtype_policy="int3")


def test_cached_scores_are_reused_only_for_the_inputs_that_produced_them(trained, tmp_path, monkeypatch):
    # Issue #33: scores.csv was reused by architecture alone, so a rerun on
    # other data or another checkpoint reported the old scores.
    supernet, data, archs = trained
    rank = kerasnas.evaluation.rank_architectures
    path = tmp_path / "scores.csv"
    rank(supernet, archs[:4], data, results_path=path, verbose=0,
                 described={"checkpoint": "a.keras"})
    record = ranking.record_path(path)
    assert record.endswith("scores.json")
    assert ranking.read_results(path) and '"a.keras"' in open(record).read()

    _, _, other_data = tiny_data(num=64, batch_size=16, seed=7)
    with pytest.raises(ValueError, match=r"4 scores .* other evaluation images.*a\.keras.*overwrite"):
        rank(supernet, archs[:4], other_data, results_path=path, verbose=0)
    with pytest.raises(ValueError, match="other evaluation images"):  # the batch size too
        rank(supernet, archs[:4], data.unbatch().batch(32), results_path=path, verbose=0)
    with pytest.raises(ValueError, match="BN calibration images, BN calibration steps"):
        rank(supernet, archs[:4], data, results_path=path, verbose=0,
             bn_calibration_data=data, bn_calibration_steps=1)
    fresh = rank(supernet, archs[:4], other_data, verbose=0)
    again = rank(supernet, archs[:4], other_data, results_path=path, verbose=0, overwrite=True)
    np.testing.assert_array_equal(again, fresh)
    assert sorted(ranking.read_results(path)) == sorted(archs[:4])

    # Other weights: the same space, one kernel changed.
    clone = compile_sgd(supernet.space.build_supernet(seed=0, bn="standard"))
    clone.set_weights(supernet.get_weights())
    assert clone.fingerprint() == supernet.fingerprint()
    kernel = next(v for v in clone.network_variables if v.path.endswith("classifier/kernel"))
    kernel.assign(kernel.numpy() + 1e-3)
    assert clone.fingerprint() != supernet.fingerprint()
    with pytest.raises(ValueError, match=r"other weights \(checkpoint\)"):
        rank(clone, archs[:4], other_data, results_path=path, verbose=0)

    # A file that records nothing (an older kerasnas's) is refused, not trusted.
    import os
    os.remove(record)
    with pytest.raises(ValueError, match="nothing records what produced them"):
        rank(supernet, archs[:4], other_data, results_path=path, verbose=0)


def test_non_finite_scores_are_never_cached(trained, tmp_path, monkeypatch):
    supernet, data, archs = trained
    original = ranking.ArchitectureScorer.score
    bad = supernet.space.from_string(archs[1])

    def score(self, arch):
        return (float("nan"), float("nan")) if arch == bad else original(self, arch)

    monkeypatch.setattr(ranking.ArchitectureScorer, "score", score)
    path = tmp_path / "scores.csv"
    values = kerasnas.evaluation.rank_architectures(
        supernet, archs[:3], data, results_path=path, verbose=0, classes=None)
    assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all()
    assert sorted(ranking.read_results(path)) == sorted([archs[0], archs[2]])
    monkeypatch.setattr(ranking.ArchitectureScorer, "score", original)
    values = kerasnas.evaluation.rank_architectures(
        supernet, archs[:3], data, results_path=path, verbose=0, classes=None)
    assert np.isfinite(values).all()  # scored again, with the good scorer


def test_a_reloaded_supernet_has_the_same_fingerprint(trained, tmp_path):
    supernet = trained[0]
    supernet.save(tmp_path / "s.keras")
    import keras

    assert keras.saving.load_model(tmp_path / "s.keras").fingerprint() == supernet.fingerprint()
