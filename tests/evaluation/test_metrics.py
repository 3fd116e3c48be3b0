import math
from pathlib import Path

import numpy as np
import pytest

import kerasnas
from kerasnas.evaluation import metrics

NB201 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"

# Pairs (i < j) of PRED / TRUE: (0,1) discordant; (1,2) tied in pred only;
# (2,3) tied in true only; the 7 others concordant. n0 = 10 pairs.
PRED = [1, 2, 2, 3, 4]
TRUE = [2, 1, 3, 3, 5]


def test_kendall_tau_b_with_ties_by_hand():
    # tau-b = (C - D) / sqrt((n0 - n1) (n0 - n2)) = (7 - 1) / sqrt(9 * 9).
    assert metrics.kendall_tau(PRED, TRUE) == pytest.approx(6 / 9)
    assert metrics.kendall_tau(TRUE, PRED) == pytest.approx(6 / 9)
    assert metrics.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # One tie on each side only: (C - D) / sqrt((3 - 1) (3 - 0)) with C=2, D=0.
    assert metrics.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_spearman_and_pearson_by_hand():
    # Average ranks: pred (1, 2.5, 2.5, 4, 5), true (2, 1, 3.5, 3.5, 5);
    # centred: (-2, -.5, -.5, 1, 2) and (-1, -2, .5, .5, 2):
    # 7.25 / sqrt(9.5 * 9.5).
    assert metrics.spearman(PRED, TRUE) == pytest.approx(7.25 / 9.5)
    # Centred values: (-1.4, -.4, -.4, .6, 1.6) and (-.8, -1.8, .2, .2, 2.2).
    assert metrics.pearson(PRED, TRUE) == pytest.approx(5.4 / math.sqrt(5.2 * 8.8))
    # Monotone but not linear: rank correlations 1, Pearson below 1.
    x = [1, 2, 3, 4]
    assert metrics.spearman(x, [1, 4, 9, 100]) == pytest.approx(1.0)
    assert metrics.pearson(x, [1, 4, 9, 100]) < 0.9


def test_constant_input_gives_nan():
    for function in (metrics.kendall_tau, metrics.spearman, metrics.pearson):
        assert math.isnan(function([1, 1, 1], [1, 2, 3]))
        assert math.isnan(function([1, 2, 3], [5, 5, 5]))


def test_top_k_count_rounds_half_up_at_least_one():
    assert metrics.top_k_count(0.05, 15625) == 781  # 781.25
    assert metrics.top_k_count(0.3, 10) == 3  # 3.0000000000000004
    assert metrics.top_k_count(0.25, 10) == 3  # 2.5 rounds up
    assert metrics.top_k_count(0.24, 10) == 2
    assert metrics.top_k_count(0.01, 10) == 1  # at least one
    assert metrics.top_k_count(1, 10) == 10


def test_precision_at_top_k_by_hand():
    pred = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    true = [10, 1, 9, 2, 3, 8, 4, 5, 6, 7]  # true top 3: items 0, 2, 5
    # Predicted top 3: items 0, 1, 2 -> overlap {0, 2}.
    assert metrics.precision_at_top_k(pred, true, 0.3) == pytest.approx(2 / 3)
    assert metrics.precision_at_top_k(pred, true, 0.1) == 1.0  # item 0 both
    assert metrics.precision_at_top_k(pred, true, 0.2) == 0.5  # {0,1} vs {0,2}
    assert metrics.precision_at_top_k(pred, true, 1.0) == 1.0
    assert metrics.precision_at_top_k(true, true, 0.3) == 1.0


def test_precision_at_top_k_with_ties():
    pred = [5, 4, 4, 4, 1, 0]
    true = [6, 5, 1, 0, 4, 3]  # true top 3: items 0, 1, 4
    # k=0.5 -> 3 places: item 0, then 2 places for the tie {1, 2, 3}.
    # Expected overlap: item 0 (1) + item 1 (2/3) = 5/3, over 3 places.
    assert metrics.precision_at_top_k(pred, true, 0.5) == pytest.approx(5 / 9)
    # By index: the tie goes to items 1 and 2 -> overlap {0, 1}.
    assert metrics.precision_at_top_k(pred, true, 0.5, ties="index") == pytest.approx(2 / 3)
    # Moving the tied items does not change the expected value...
    order = [0, 3, 2, 1, 4, 5]
    permuted = metrics.precision_at_top_k(np.take(pred, order), np.take(true, order), 0.5)
    assert permuted == pytest.approx(5 / 9)
    # ...but does change the index-based one: the tie now goes to items 3, 2.
    by_index = metrics.precision_at_top_k(np.take(pred, order), np.take(true, order), 0.5, ties="index")
    assert by_index == pytest.approx(1 / 3)
    # Ties in the truth too: true top 2 = item 0 and half of {1, 2}.
    assert metrics.precision_at_top_k([3, 2, 1, 0], [5, 4, 4, 0], 0.5) == pytest.approx((1 + 0.5) / 2)


def test_top_k_membership():
    np.testing.assert_allclose(metrics.top_k_membership([5, 4, 4, 4, 1], 3), [1, 2 / 3, 2 / 3, 2 / 3, 0])
    np.testing.assert_allclose(metrics.top_k_membership([5, 4, 4, 4, 1], 3, "index"), [1, 1, 1, 0, 0])
    np.testing.assert_allclose(metrics.top_k_membership([1, 2, 3], 3), [1, 1, 1])
    with pytest.raises(ValueError, match=r"Expected one of \['expected', 'index'\]"):
        metrics.top_k_membership([1, 2], 1, ties="random")


def test_top_k_spearman_by_hand():
    true = [10, 9, 8, 7, 1, 2, 3, 4, 5, 6]  # true top 40%: items 0..3
    pred = [3, 4, 2, 1, 9, 9, 9, 9, 9, 9]  # right on the rest, wrong on top
    # On items 0..3: pred ranks (3, 4, 2, 1), true ranks (4, 3, 2, 1);
    # d = (-1, 1, 0, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    assert metrics.top_k_spearman(pred, true, 0.4) == pytest.approx(0.8)
    assert metrics.spearman(pred, true) < 0  # the whole ranking is poor
    # A tie at the boundary is kept whole: top 2 of (10, 9, 9, ...) is 3 items.
    # Items 0..2, pred (1, 2, 3), true (10, 9, 9): ranks (1,2,3) vs (3,1.5,1.5).
    value = metrics.top_k_spearman([1, 2, 3, 0, 0], [10, 9, 9, 1, 2], 0.4)
    assert value == pytest.approx(metrics.spearman([1, 2, 3], [10, 9, 9]))
    assert value == pytest.approx(-math.sqrt(3) / 2)
    # One architecture in the top: undefined.
    assert math.isnan(metrics.top_k_spearman([1, 2, 3], [3, 2, 1], 0.1))


def test_ranking_report_keys_and_baselines():
    pred = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    true = [10, 1, 9, 2, 3, 8, 4, 5, 6, 7]
    report = metrics.ranking_report(pred, true, baselines={"perfect": true, "reverse": [-t for t in true]},
                                    ks=(0.1, 0.3))
    assert set(report) == {
        "n", "kendall_tau", "spearman", "pearson",
        "precision_at_top_10%", "precision_at_top_30%",
        "spearman_at_top_10%", "spearman_at_top_30%", "baselines",
    }
    assert report["n"] == 10
    assert report["kendall_tau"] == pytest.approx(metrics.kendall_tau(pred, true))
    assert report["precision_at_top_30%"] == pytest.approx(2 / 3)
    assert math.isnan(report["spearman_at_top_10%"])
    assert report["spearman_at_top_30%"] == pytest.approx(metrics.top_k_spearman(pred, true, 0.3))
    perfect = report["baselines"]["perfect"]
    assert perfect["kendall_tau"] == perfect["spearman"] == pytest.approx(1.0)
    assert perfect["precision_at_top_30%"] == 1.0
    assert report["baselines"]["reverse"]["kendall_tau"] == pytest.approx(-1.0)
    assert set(perfect) == set(report) - {"baselines"}
    # Default fractions and percent formatting.
    keys = metrics.ranking_report(pred, true)
    assert "baselines" not in keys
    assert {"precision_at_top_1%", "precision_at_top_5%", "precision_at_top_10%",
            "precision_at_top_50%", "spearman_at_top_5%"} <= set(keys)
    assert "precision_at_top_0.5%" in metrics.ranking_report(pred, true, ks=(0.005,))


def test_input_errors():
    with pytest.raises(ValueError, match=r"Expected a fraction in \(0, 1\].*k=0"):
        metrics.precision_at_top_k([1, 2], [1, 2], 0)
    for k in (1.5, -0.1, True, "5%"):
        with pytest.raises(ValueError, match="Invalid value for argument `k`"):
            metrics.top_k_spearman([1, 2], [1, 2], k)
    with pytest.raises(ValueError, match="Invalid value for argument `k`"):
        metrics.ranking_report([1, 2], [1, 2], ks=(0.05, 5))
    with pytest.raises(ValueError, match=r"same length.*len\(pred\)=3, len\(true\)=2"):
        metrics.kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 architectures. Received: 1"):
        metrics.spearman([1], [1])
    with pytest.raises(ValueError, match=r"finite numbers. Received: pred\[1\]=nan"):
        metrics.pearson([1, float("nan"), 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"finite numbers. Received: true\[0\]=inf"):
        metrics.precision_at_top_k([1, 2], [float("inf"), 2], 0.5)
    with pytest.raises(ValueError, match="1-D sequence"):
        metrics.kendall_tau([[1, 2], [3, 4]], [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="1-D sequence of numbers"):
        metrics.kendall_tau(["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="Expected 3 scores for 'params'"):
        metrics.ranking_report([1, 2, 3], [1, 2, 3], baselines={"params": [1, 2]})
    with pytest.raises(ValueError, match=r"baselines\['flops'\]"):
        metrics.ranking_report([1, 2, 3], [1, 2, 3], baselines={"flops": [1, 2, float("nan")]})
    with pytest.raises(ValueError, match="argument `ties`"):
        metrics.ranking_report([1, 2, 3], [1, 2, 3], ties="random")


def test_baseline_scores_from_the_space():
    space = kerasnas.spaces.NasBench201()
    resnet = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    empty = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    scores = metrics.baseline_scores(space, [resnet, space.from_string(empty)])
    # Closed forms (millions): 0.073306 + 0.24304 n3 + 0.028 n1, FLOPs
    # 7.78305 + 35.38944 n3 + 3.93216 n1.
    np.testing.assert_allclose(scores["params"], [0.073306 + 2 * 0.24304, 0.073306], atol=1e-9)
    np.testing.assert_allclose(scores["flops"], [7.78305 + 2 * 35.38944, 7.78305], atol=1e-9)
    with pytest.raises(ValueError, match="NAS-Bench-201 architecture string"):
        metrics.baseline_scores(space, ["|nope|"])


@pytest.fixture(scope="module")
def cifar10():
    if not NB201.is_dir():
        pytest.skip(f"shared data not found at {NB201}")
    return kerasnas.benchmarks.NasBench201(NB201, "cifar10")


def test_param_count_baseline_on_all_of_nas_bench_201(cifar10):
    """Ranking the 15,625 cells by parameter count against CIFAR-10 test
    accuracy: Kendall's tau-b 0.5774 and P@Top5% 0.37 (0.3686 as the
    expected value over tie-breaks; 0.3713 when ties go to the earlier
    cell of the space's order). Checks the loader and the metrics at once."""
    archs = cifar10.archs()
    test = cifar10.table(archs, "test_acc")
    params = metrics.baseline_scores(cifar10.space, archs)["params"]
    np.testing.assert_allclose(params, cifar10.table(archs, "params"))
    assert metrics.kendall_tau(params, test) == pytest.approx(0.5774, abs=1e-4)
    assert metrics.precision_at_top_k(params, test, 0.05) == pytest.approx(0.3686, abs=1e-4)
    assert metrics.precision_at_top_k(params, test, 0.05, ties="index") == pytest.approx(0.3713, abs=1e-4)
    report = metrics.ranking_report(cifar10.table(archs, "val_acc"), test, baselines={"params": params})
    assert report["n"] == 15625
    assert report["baselines"]["params"]["kendall_tau"] == pytest.approx(0.5774, abs=1e-4)
    # The validation accuracy is a much better predictor than the size.
    assert report["kendall_tau"] > 0.85 and report["precision_at_top_5%"] > 0.65


def test_improvement_curve_on_a_hand_made_ranking():
    # True accuracies 10, 20, 30, 40, 100: mean 40, best 100, worst 10.
    true = [10, 20, 30, 40, 100]
    pred = [5, 1, 4, 2, 3]  # predicted order: 10, 30, 100, 40, 20
    curve = metrics.improvement_curve(pred, true)
    np.testing.assert_array_equal(curve["n"], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(curve["mean_true"], [10, 20, 140 / 3, 45, 40])
    # Above the mean: / (100 - 40); below: / (40 - 10).
    np.testing.assert_allclose(
        curve["improvement"], [-1.0, -20 / 30, (140 / 3 - 40) / 60, 5 / 60, 0.0]
    )
    perfect = metrics.improvement_curve(true, true)
    assert perfect["improvement"][0] == 1.0 and perfect["improvement"][-1] == 0.0
    flat = metrics.improvement_curve(pred, [7] * 5)
    np.testing.assert_array_equal(flat["improvement"], 0.0)


def test_average_curves_mean_and_std_over_runs():
    true = [10, 20, 30, 40, 100]
    a = metrics.improvement_curve([5, 4, 3, 2, 1], true)
    b = metrics.improvement_curve([1, 2, 3, 4, 5], true)
    average = metrics.average_curves([a, b])
    np.testing.assert_allclose(average["mean_true"], (a["mean_true"] + b["mean_true"]) / 2)
    np.testing.assert_allclose(average["improvement_std"], np.abs(a["improvement"] - b["improvement"]) / 2)
    with pytest.raises(ValueError, match="curves"):
        metrics.average_curves([a, metrics.improvement_curve([1, 2], [1, 2])])


def test_op_count_bias_separates_a_bias_from_a_bad_order():
    # 4 edges, options skip / conv: the truth rewards convolutions, the
    # "supernet" rewards skips, yet orders each group (same number of
    # convolutions) exactly like the truth.
    import itertools

    from scipy import stats

    archs, true, pred = [], [], []
    for k, ops in enumerate(itertools.product(["skip_connect", "nor_conv_3x3"], repeat=4)):
        arch = {f"e{i}": o for i, o in enumerate(ops)}
        convs = ops.count("nor_conv_3x3")
        within = (k * 7919) % 13  # a fixed order inside each group
        archs.append(arch)
        true.append(10 * convs + within)
        pred.append(-10 * convs + within)
    result = metrics.op_count_bias(archs, pred, true, group_ops=("nor_conv_3x3",), min_group=4)
    assert result["kendall_tau"] == pytest.approx(stats.kendalltau(pred, true)[0]) and result["kendall_tau"] < 0
    skips = [list(a.values()).count("skip_connect") for a in archs]
    assert result["options"]["skip_connect"]["predicted"] == pytest.approx(stats.kendalltau(skips, pred)[0])
    assert result["options"]["skip_connect"]["predicted"] > 0 > result["options"]["skip_connect"]["true"]
    assert result["options"]["group"]["true"] > 0.8
    # Groups of 1, 2 and 3 convolutions (4, 6, 4 architectures; 0 and 4 have one each, below
    # min_group), each ordered exactly like the truth.
    assert {n: g["archs"] for n, g in result["within_groups"].items()} == {1: 4, 2: 6, 3: 4}
    for group in result["within_groups"].values():
        assert group["kendall_tau"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="archs"):
        metrics.op_count_bias(archs[:-1], pred, true)
