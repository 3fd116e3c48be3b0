"""How well a predicted ranking of architectures matches the true one.

Every function takes `pred` (the scores a supernet or a proxy gives) and
`true` (the ground truth, e.g. a benchmark's test accuracy) for the same
architectures in the same order; higher is better for both.

"Top k" is a fraction `k` in (0, 1] of the `n` architectures: the top
`m = max(1, floor(k * n + 0.5))` of them (`k * n` rounded half up, at
least one), e.g. 781 of NAS-Bench-201's 15,625 for k = 5%.

Ties: rank correlations use average ranks (Kendall's tau-b, Spearman's rho
on average ranks). `precision_at_top_k` counts, by default, the expected
overlap when ties are broken uniformly at random (`ties="expected"`), which
does not depend on the order of the architectures; `ties="index"` breaks them
by position instead (the earlier architecture ranks higher).
"""

import math
import warnings

import numpy as np
import scipy.stats

TIES = ("expected", "index")
DEFAULT_KS = (0.01, 0.05, 0.1, 0.5)


def _vector(values, name):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a 1-D sequence of "
            f"numbers. Received: {name}={values!r}"
        ) from None
    if array.ndim != 1:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a 1-D sequence of "
            f"numbers. Received: {name} with shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array))
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected finite numbers. "
            f"Received: {name}[{bad[0]}]={array[bad[0]]} ({bad.size} non-finite)"
        )
    return array


def _pair(pred, true):
    pred, true = _vector(pred, "pred"), _vector(true, "true")
    if pred.shape != true.shape:
        raise ValueError(
            "Invalid value for arguments `pred` and `true`. Expected the same "
            f"length. Received: len(pred)={pred.size}, len(true)={true.size}"
        )
    if pred.size < 2:
        raise ValueError(
            "Invalid value for arguments `pred` and `true`. Expected at least "
            f"2 architectures. Received: {pred.size}"
        )
    return pred, true


def _check_k(k):
    if (
        not isinstance(k, (int, float, np.integer, np.floating))
        or isinstance(k, bool)
        or not 0 < k <= 1
    ):
        raise ValueError(
            "Invalid value for argument `k`. Expected a fraction in (0, 1], "
            f"e.g. 0.05 for the top 5%. Received: k={k!r}"
        )
    return float(k)


def top_k_count(k, n):
    """How many of `n` architectures the top fraction `k` holds.

    Args:
        k: a fraction in (0, 1].
        n: the number of architectures.

    Returns:
        `max(1, floor(k * n + 0.5))`: `k * n` rounded half up, at least 1.
    """
    k = _check_k(k)
    # Rounding k * n to 9 decimals first keeps 0.3 * 10 at 3.
    return max(1, int(math.floor(round(k * n, 9) + 0.5)))


def _constant(*arrays):
    return any(np.all(a == a[0]) for a in arrays)


def _correlation(function, pred, true):
    if _constant(pred, true):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function(pred, true).statistic)


def kendall_tau(pred, true):
    """Kendall's tau-b between the predicted and the true scores.

    Args:
        pred: predicted scores.
        true: true scores.

    Returns:
        A float in [-1, 1] (tau-b: ties in either ranking reduce the
        denominator), NaN when either side is constant.
    """
    return _correlation(scipy.stats.kendalltau, *_pair(pred, true))


def spearman(pred, true):
    """Spearman's rho (Pearson's correlation of the average ranks).

    Returns:
        A float in [-1, 1], NaN when either side is constant.
    """
    return _correlation(scipy.stats.spearmanr, *_pair(pred, true))


def pearson(pred, true):
    """Pearson's linear correlation of the scores themselves.

    Returns:
        A float in [-1, 1], NaN when either side is constant.
    """
    return _correlation(scipy.stats.pearsonr, *_pair(pred, true))


def top_k_membership(scores, m, ties="expected"):
    """How much each architecture belongs to the top `m` of `scores`.

    Args:
        scores: 1-D scores, higher is better.
        m: how many architectures the top holds.
        ties: `"expected"`: a group of equal scores that straddles the
            boundary shares the remaining places, each member getting
            (places left) / (group size), its probability of being in the
            top under uniformly random tie-breaking; `"index"`: the earlier
            architecture wins a tie.

    Returns:
        A float array in [0, 1] summing to `m`.
    """
    if ties not in TIES:
        raise ValueError(
            f"Invalid value for argument `ties`. Expected one of {list(TIES)}. "
            f"Received: ties={ties!r}"
        )
    scores = np.asarray(scores, dtype=np.float64)
    if ties == "index":
        membership = np.zeros(scores.size)
        membership[np.argsort(-scores, kind="stable")[:m]] = 1.0
        return membership
    ascending = np.sort(scores)
    better = scores.size - np.searchsorted(ascending, scores, side="right")
    equal = np.searchsorted(ascending, scores, side="right") - np.searchsorted(
        ascending, scores, side="left"
    )
    return np.clip((m - better) / equal, 0.0, 1.0)


def precision_at_top_k(pred, true, k, ties="expected"):
    """The share of the true top-k architectures among the predicted top k.

    `|top_k(pred) ∩ top_k(true)| / m` with `m = top_k_count(k, n)`.

    Args:
        pred: predicted scores.
        true: true scores.
        k: the fraction in (0, 1], e.g. 0.05 for "P@Top5%".
        ties: how ties in either ranking are broken at the boundary of the
            top: `"expected"` (default) gives the expected overlap under
            uniformly random tie-breaking, so the result does not depend on
            the order of the architectures; `"index"` lets the earlier
            architecture win.

    Returns:
        A float in [0, 1].
    """
    pred, true = _pair(pred, true)
    m = top_k_count(k, pred.size)
    overlap = np.dot(top_k_membership(pred, m, ties), top_k_membership(true, m, ties))
    return float(overlap / m)


def top_k_spearman(pred, true, k):
    """Spearman's rho restricted to the truly best architectures.

    The subset is the true top-k fraction: every architecture whose true
    score is at least the `m`-th best (`m = top_k_count(k, n)`), so a tie
    at the boundary is kept whole. This is how well the predictor orders the
    good architectures (GM-NAS, Table 7).

    Args:
        pred: predicted scores.
        true: true scores.
        k: the fraction in (0, 1].

    Returns:
        A float in [-1, 1]; NaN when the subset has fewer than 2
        architectures or either side is constant on it.
    """
    pred, true = _pair(pred, true)
    m = top_k_count(k, pred.size)
    subset = top_k_membership(true, m, "expected") > 0
    if subset.sum() < 2:
        return float("nan")
    return _correlation(scipy.stats.spearmanr, pred[subset], true[subset])


def _percent(k):
    return f"{k * 100:g}%"


def _metrics(pred, true, ks, ties):
    report = {
        "n": int(pred.size),
        "kendall_tau": _correlation(scipy.stats.kendalltau, pred, true),
        "spearman": _correlation(scipy.stats.spearmanr, pred, true),
        "pearson": _correlation(scipy.stats.pearsonr, pred, true),
    }
    for k in ks:
        report[f"precision_at_top_{_percent(k)}"] = precision_at_top_k(pred, true, k, ties)
    for k in ks:
        report[f"spearman_at_top_{_percent(k)}"] = top_k_spearman(pred, true, k)
    return report


def ranking_report(pred, true, baselines=None, ks=DEFAULT_KS, ties="expected"):
    """Every ranking metric of `pred` against `true`, and of baselines.

    Args:
        pred: predicted scores (e.g. the supernet's accuracies).
        true: true scores of the same architectures.
        baselines: optional `{name: scores}` of other predictors of the
            same architectures (e.g. `baseline_scores(space, archs)`), each
            reported like `pred`.
        ks: the top fractions of the precision and top-k Spearman entries.
        ties: tie handling of the precision (see `precision_at_top_k`).

    Returns:
        A dict with `"n"`, `"kendall_tau"`, `"spearman"`, `"pearson"`, and
        for each k (e.g. 0.05) `"precision_at_top_5%"` and
        `"spearman_at_top_5%"`; with baselines, `"baselines"`: `{name: dict
        of the same metrics}`. Undefined correlations are NaN.
    """
    pred, true = _pair(pred, true)
    ks = [_check_k(k) for k in ks]
    if ties not in TIES:
        raise ValueError(
            f"Invalid value for argument `ties`. Expected one of {list(TIES)}. "
            f"Received: ties={ties!r}"
        )
    report = _metrics(pred, true, ks, ties)
    if baselines:
        report["baselines"] = {}
        for name, scores in baselines.items():
            scores = _vector(scores, f"baselines[{name!r}]")
            if scores.shape != true.shape:
                raise ValueError(
                    f"Invalid value for argument `baselines`. Expected "
                    f"{true.size} scores for {name!r}, one per architecture. "
                    f"Received: {scores.size}"
                )
            report["baselines"][name] = _metrics(scores, true, ks, ties)
    return report


def baseline_scores(space, archs):
    """Training-free predictors computed from the search space alone.

    Args:
        space: a search space with `params(arch)` and `flops(arch)` (e.g.
            `kerasnas.spaces.NasBench201`).
        archs: architectures, dicts or strings of the space.

    Returns:
        `{"params": array, "flops": array}`: parameters and FLOPs of each
        architecture's stand-alone network, in millions.
    """
    params, flops = [], []
    for arch in archs:
        if isinstance(arch, str):
            arch = space.from_string(arch)
        params.append(space.params(arch))
        flops.append(space.flops(arch))
    return {
        "params": np.asarray(params, dtype=np.float64) / 1e6,
        "flops": np.asarray(flops, dtype=np.float64) / 1e6,
    }


def op_count_bias(archs, pred, true, group_ops=("nor_conv_1x1", "nor_conv_3x3"), min_group=20):
    """Where a ranking goes wrong: how scores follow the number of decisions
    that take each option, in the supernet's ranking and in the true one.

    A supernet that scores architectures up for every skip connection while
    the benchmark scores them down ranks badly overall even when it orders
    architectures alike in that count well: a bias, not noise. The
    within-group Kendall tau (architectures with the same number of
    `group_ops`, e.g. convolutions) tells the two apart.

    Args:
        archs: architecture dicts (`{label: option}`).
        pred: predicted scores, higher is better.
        true: true scores (e.g. benchmark accuracy).
        group_ops: the options whose count defines the groups (its count is
            also reported, as `"group"`).
        min_group: smallest group reported.

    Returns:
        `{"kendall_tau", "options": {option: {"predicted", "true"}},
        "within_groups": {count: {"archs", "kendall_tau"}}}`: Kendall tau of
        the count of each option (and of `group_ops` together, `"group"`)
        with the predicted and with the true scores; options whose count
        never varies are left out.
    """
    pred, true = _pair(pred, true)
    if len(archs) != len(pred):
        raise ValueError(
            "Invalid value for argument `archs`. Expected one architecture per "
            f"score ({len(pred)}). Received: {len(archs)} architectures"
        )
    options = sorted({o for arch in archs for o in arch.values()})
    counts = {o: np.array([list(arch.values()).count(o) for arch in archs]) for o in options}
    counts = {o: c for o, c in counts.items() if np.ptp(c) > 0}
    group = np.array([sum(list(arch.values()).count(o) for o in group_ops) for arch in archs])
    result = {
        "kendall_tau": kendall_tau(pred, true),
        "options": {o: {"predicted": kendall_tau(c, pred), "true": kendall_tau(c, true)} for o, c in counts.items()},
        "within_groups": {},
    }
    if np.ptp(group) > 0:
        result["options"]["group"] = {"predicted": kendall_tau(group, pred), "true": kendall_tau(group, true)}
    for n in sorted(set(group.tolist())):
        members = group == n
        if members.sum() >= min_group:
            result["within_groups"][int(n)] = {
                "archs": int(members.sum()), "kendall_tau": kendall_tau(pred[members], true[members]),
            }
    return result


def improvement_curve(pred, true):
    """How good the top-n predicted architectures are, for every n.

    The reference's `ImprovementNasMetric` (Laube & Zell): architectures
    sorted by `pred` (best first; ties keep their order); for n = 1..N,
    `mean_true[n-1]` is the mean `true` of the top n, and `improvement[n-1]`
    normalises it: 1 = the best architecture evaluated, 0 = the mean of all,
    -1 = the worst (above the mean it is scaled by `max - mean`, below by
    `mean - min`, as the reference plots the two halves on their own
    scales).

    Returns:
        `{"n": int array 1..N, "mean_true": array, "improvement": array}`.
    """
    pred, true = _pair(pred, true)
    order = np.argsort(-pred, kind="stable")
    n = np.arange(1, pred.size + 1)
    mean_true = np.cumsum(true[order]) / n
    mean, best, worst = true.mean(), true.max(), true.min()
    with np.errstate(divide="ignore", invalid="ignore"):
        above = (mean_true - mean) / (best - mean)
        below = (mean_true - mean) / (mean - worst)
    improvement = np.where(mean_true >= mean, above, below)
    # All true scores equal: every top-n is the mean.
    improvement = np.where(np.isfinite(improvement), improvement, 0.0)
    return {"n": n, "mean_true": mean_true, "improvement": improvement}


def average_curves(curves):
    """Mean and standard deviation over runs of `improvement_curve`s of the
    same architectures: `{"n", "mean_true", "mean_true_std", "improvement",
    "improvement_std"}`."""
    curves = list(curves)
    if not curves or any(len(c["n"]) != len(curves[0]["n"]) for c in curves):
        raise ValueError(
            "Invalid value for argument `curves`. Expected one or more "
            "improvement curves of the same number of architectures. Received: "
            f"{[len(c['n']) for c in curves]}"
        )
    result = {"n": np.asarray(curves[0]["n"])}
    for key in ("mean_true", "improvement"):
        values = np.stack([np.asarray(c[key], dtype=np.float64) for c in curves])
        result[key] = values.mean(axis=0)
        result[f"{key}_std"] = values.std(axis=0)
    return result
