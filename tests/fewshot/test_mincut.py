"""GM-NAS' balanced min-cut rules on hand-made matrices with known answers."""

import itertools

import numpy as np
import pytest

from kerasnas import fewshot
from kerasnas.fewshot import mincut


def clustered(groups, n, near=0.1, far=1.0):
    """Distances `near` inside each group, `far` across."""
    d = np.full((n, n), far)
    for g in groups:
        for i, j in itertools.product(g, g):
            d[i, j] = near
    np.fill_diagonal(d, 0.0)
    return d


def brute_force(distance, sizes):
    """The min within-sum over every labelling of the options with group
    sizes `sizes` (no clever enumeration)."""
    n, k = len(distance), len(sizes)
    best = np.inf
    for labels in itertools.product(range(k), repeat=n):
        if sorted(np.bincount(labels, minlength=k)) != sorted(sizes):
            continue
        within = sum(distance[i, j] for i, j in itertools.combinations(range(n), 2) if labels[i] == labels[j])
        best = min(best, within)
    return best


def test_nb201_rule_two_plus_three_and_cut_score():
    d = clustered([(0, 3), (1, 2, 4)], 5)
    groups, score = fewshot.nb201_split(d)
    assert groups == ((0, 3), (1, 2, 4))
    # total upper triangle: 4 pairs inside at 0.1 + 6 across at 1.0; cut = 6.
    assert score == pytest.approx(6.0)


def test_nb201_rule_splits_the_edge_with_the_largest_cut():
    weak = clustered([(0, 1), (2, 3, 4)], 5, near=0.5, far=0.6)
    strong = clustered([(0, 4), (1, 2, 3)], 5, near=0.0, far=1.0)
    label, groups, scores = fewshot.choose_edge({"1<-0": weak, "2<-1": strong}, rule="nb201")
    assert label == "2<-1" and groups == ((0, 4), (1, 2, 3))
    assert scores["2<-1"] == pytest.approx(6.0) and scores["1<-0"] == pytest.approx(3.6)


def test_darts_rule_group_sizes_and_smallest_within_edge():
    # 7 options: sizes 2..3 vs the rest. {0, 6} is a tight pair: 2 + 5.
    pair = clustered([(0, 6), (1, 2, 3, 4, 5)], 7, near=0.0, far=1.0)
    groups, within = fewshot.darts_split(pair)
    assert groups == ((0, 6), (1, 2, 3, 4, 5)) and within == pytest.approx(0.0)
    triple = clustered([(1, 2, 5), (0, 3, 4, 6)], 7, near=0.2, far=1.0)
    groups, within = fewshot.darts_split(triple)
    assert groups == ((0, 3, 4, 6), (1, 2, 5)) and within == pytest.approx(0.2 * (3 + 6))
    # The DARTS rule picks the SMALLEST within sum (not the largest cut).
    label, _, scores = fewshot.choose_edge({"normal_2<-0": triple, "normal_3<-1": pair}, rule="darts")
    assert label == "normal_3<-1" and scores["normal_2<-0"] == pytest.approx(1.8)


def test_kway_split_into_three_pairs():
    d = clustered([(0, 5), (1, 4), (2, 3)], 6, near=0.05)
    groups, within = fewshot.balanced_mincut(d, num_groups=3)
    assert groups == ((0, 5), (1, 4), (2, 3)) and within == pytest.approx(0.15)
    label, groups, scores = fewshot.choose_edge({"e": d}, rule="kway", num_groups=3)
    assert groups == ((0, 5), (1, 4), (2, 3)) and 0 < scores["e"] < 1


@pytest.mark.parametrize("n,sizes", [(5, [3, 2]), (7, [5, 2]), (7, [4, 3]), (6, [2, 2, 2]), (7, [3, 2, 2])])
def test_exhaustive_search_is_exhaustive_and_optimal(n, sizes):
    found = list(mincut.partitions(n, sizes))
    assert len(found) == len(set(found)) == mincut.count_partitions(n, sizes)
    for groups in found:
        assert sorted(i for g in groups for i in g) == list(range(n))
    rng = np.random.default_rng(n + len(sizes))
    a = rng.random((n, n))
    d = a + a.T
    np.fill_diagonal(d, 0.0)
    _, within = fewshot.balanced_mincut(d, sizes=sizes)
    assert within == pytest.approx(brute_force(d, sizes))


def test_search_that_would_explode_is_refused():
    d = 1.0 - np.eye(20)
    with pytest.raises(ValueError, match="partitions, more than"):
        fewshot.balanced_mincut(d, num_groups=4)


def test_baseline_splits():
    assert fewshot.exhaustive_split(5) == ((0,), (1,), (2,), (3,), (4,))
    a = fewshot.random_split(5, np.random.default_rng(3))
    b = fewshot.random_split(5, np.random.default_rng(3))
    assert a == b and sorted(len(g) for g in a) == [2, 3]
    assert sorted(i for g in a for i in g) == list(range(5))
    seen = {fewshot.random_split(5, np.random.default_rng(s)) for s in range(20)}
    assert len(seen) > 3  # seeded, not constant


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: fewshot.nb201_split(np.zeros((3, 4))), "square matrix"),
        (lambda: fewshot.balanced_mincut(np.zeros((4, 4)), num_groups=5), "num_groups"),
        (lambda: fewshot.choose_edge({"e": np.zeros((5, 5))}, rule="best"), "rule"),
        (lambda: fewshot.darts_split(np.zeros((3, 3))), "at least 4 options"),
        (lambda: fewshot.nb201_split(np.full((5, 5), np.nan)), "finite"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_successive_halving_reference_average_and_phases():
    from kerasnas.fewshot.halving import reference_average

    # the reference's recurrence on two values: 0.9a, then (0.09a + 0.9b) / 2
    assert reference_average([0.5, 0.8]) == pytest.approx(0.045 * 0.5 + 0.45 * 0.8)
    epochs = 100
    curves = {
        "early": [0.9] * 30 + [0.1] * 70,          # best early, then collapses
        "steady": [0.6] * epochs,
        "late": [0.5] * 30 + [0.95] * 70,
        "bad": [0.2] * epochs,
        "worse": [0.1] * epochs,
        "mid": [0.55] * epochs,
    }
    result = fewshot.successive_halving(curves)
    assert result["kept"][0] == ["early", "steady", "mid", "late"]
    assert result["kept"][1] == ["late", "steady"] and result["best"] == "late"
    # epoch 30 is not used by the second phase, as in the reference
    spiked = dict(curves, bad=[0.2] * 30 + [1.0] + [0.2] * 69)
    assert fewshot.successive_halving(spiked)["kept"][0] == result["kept"][0]
    with pytest.raises(ValueError, match="average"):
        fewshot.successive_halving(curves, average="median")
    with pytest.raises(ValueError, match="too short"):
        fewshot.successive_halving({"a": [0.1] * 10})
