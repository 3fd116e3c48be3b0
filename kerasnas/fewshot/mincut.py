"""Balanced min-cut partitions of a choice's options (GM-NAS' split rules)
and the few-shot baselines (exhaustive and random splits).

A split of one choice (an edge) assigns its allowed options to groups; each
group becomes a sub-supernet. All functions work on option *indices* into
a distance matrix (`distance[i, j]`: how much options i and j disagree,
symmetric, zero diagonal) and return groups as sorted tuples of indices.
"""

import itertools
import math

import numpy as np

from kerasnas.api_export import kerasnas_export

# Exhaustive enumeration stops with an error above this many partitions.
MAX_PARTITIONS = 2_000_000

EDGE_RULES = ("nb201", "darts", "kway")


def _check_distance(distance):
    distance = np.asarray(distance, "float64")
    if distance.ndim != 2 or distance.shape[0] != distance.shape[1] or distance.shape[0] < 2:
        raise ValueError(
            "Invalid value for argument `distance`. Expected a square matrix "
            f"of at least 2 options. Received: shape={distance.shape}"
        )
    if not np.all(np.isfinite(distance)):
        raise ValueError(
            "Invalid value for argument `distance`. Expected finite values. "
            f"Received: {distance}"
        )
    return distance


def within_sum(distance, groups):
    """Sum of the pairwise distances inside each group (each pair once)."""
    distance = np.asarray(distance, "float64")
    return float(sum(distance[i, j] for g in groups for i, j in itertools.combinations(g, 2)))


def count_partitions(n, sizes):
    """Number of distinct partitions of `n` items into unlabelled groups of
    the given sizes (groups of equal size are interchangeable)."""
    if sum(sizes) != n:
        raise ValueError(f"Group sizes {sizes} do not add up to {n} options.")
    count = math.factorial(n)
    for s in sizes:
        count //= math.factorial(s)
    for repeats in _multiplicities(sizes):
        count //= math.factorial(repeats)
    return count


def _multiplicities(sizes):
    return [sizes.count(s) for s in set(sizes)]


def partitions(n, sizes):
    """Yields every partition of `range(n)` into groups of `sizes` once
    (groups sorted, equal-size groups in canonical order)."""
    sizes = sorted(sizes, reverse=True)

    def rest(items, sizes):
        if not sizes:
            yield ()
            return
        size, others = sizes[0], sizes[1:]
        # The group of the smallest remaining item comes first when equal
        # sizes follow, so that interchangeable groups are counted once.
        if others and others[0] == size:
            first, remaining = items[0], items[1:]
            for tail in itertools.combinations(remaining, size - 1):
                group = (first,) + tail
                left = tuple(i for i in items if i not in group)
                for more in rest(left, others):
                    yield (group,) + more
        else:
            for group in itertools.combinations(items, size):
                left = tuple(i for i in items if i not in group)
                for more in rest(left, others):
                    yield (group,) + more

    yield from rest(tuple(range(n)), sizes)


def _check_size(n, sizes):
    count = count_partitions(n, sizes)
    if count > MAX_PARTITIONS:
        raise ValueError(
            f"A balanced split of {n} options into groups of {sizes} has "
            f"{count:,} partitions, more than the exhaustive search allows "
            f"({MAX_PARTITIONS:,}). Use fewer groups or fewer options."
        )


def balanced_sizes(n, num_groups):
    """Group sizes as equal as possible (larger groups first)."""
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or not 2 <= num_groups <= n:
        raise ValueError(
            "Invalid value for argument `num_groups`. Expected an int in "
            f"[2, {n}] (the number of options). Received: num_groups={num_groups!r}"
        )
    base, extra = divmod(n, num_groups)
    return [base + 1] * extra + [base] * (num_groups - extra)


@kerasnas_export("kerasnas.fewshot.balanced_mincut")
def balanced_mincut(distance, num_groups=2, sizes=None):
    """The partition of the options into balanced groups with the smallest
    within-group distance (equivalently the largest cut), by exhaustive
    search.

    Args:
        distance: `(n, n)` symmetric distance matrix.
        num_groups: number of groups (sizes as equal as possible).
        sizes: explicit group sizes instead (summing to n).

    Returns:
        `(groups, within)`: tuple of sorted index tuples and their
        within-group distance sum. Ties go to the first partition in
        enumeration order.
    """
    distance = _check_distance(distance)
    n = distance.shape[0]
    sizes = list(sizes) if sizes is not None else balanced_sizes(n, num_groups)
    _check_size(n, sizes)
    best, best_within = None, np.inf
    for groups in partitions(n, sizes):
        within = within_sum(distance, groups)
        if within < best_within - 1e-12:
            best, best_within = groups, within
    return tuple(sorted(best)), best_within


@kerasnas_export("kerasnas.fewshot.nb201_split")
def nb201_split(distance):
    """The reference's NAS-Bench-201 rule (`mincut_split_201`): two groups of
    ⌊n/2⌋ and ⌈n/2⌉ options (2 + 3 for NB201's 5), the partition with the
    smallest within-group sum. The edge's score is the cut value, total
    upper-triangle sum minus within; the edge with the LARGEST score is
    split.

    Returns:
        `(groups, score)`.
    """
    distance = _check_distance(distance)
    n = distance.shape[0]
    groups, within = balanced_mincut(distance, sizes=[n - n // 2, n // 2])
    total = float(np.triu(distance, 1).sum())
    return groups, total - within


@kerasnas_export("kerasnas.fewshot.darts_split")
def darts_split(distance):
    """The reference's DARTS-space rule (`mincut_split_darts`): one group of
    2..⌊n/2⌋ options and its complement, the partition with the smallest
    within-group sum. The edge's score is that within sum, and the edge
    with the SMALLEST score is split (not normalised by the total).

    Returns:
        `(groups, score)`.
    """
    distance = _check_distance(distance)
    n = distance.shape[0]
    if n < 4:
        raise ValueError(
            "The DARTS split rule needs at least 4 options (groups of 2..n/2). "
            f"Received: {n} options"
        )
    best, best_within = None, np.inf
    for size in range(2, n // 2 + 1):
        groups, within = balanced_mincut(distance, sizes=[n - size, size])
        if within < best_within - 1e-12:
            best, best_within = groups, within
    return best, best_within


@kerasnas_export("kerasnas.fewshot.kway_split")
def kway_split(distance, num_groups=2):
    """General balanced k-way rule: `balanced_mincut` into `num_groups`; the
    edge's score is the cut (total minus within) divided by the total, and
    the edge with the largest score is split."""
    distance = _check_distance(distance)
    groups, within = balanced_mincut(distance, num_groups)
    total = float(np.triu(distance, 1).sum())
    return groups, (total - within) / total if total > 0 else 0.0


@kerasnas_export("kerasnas.fewshot.choose_edge")
def choose_edge(distances, rule="nb201", num_groups=2):
    """Picks the edge to split and its groups from per-edge distance
    matrices.

    Args:
        distances: `{label: (n, n) matrix}` over the allowed options of each
            candidate edge.
        rule: `"nb201"` (largest cut), `"darts"` (smallest within sum) or
            `"kway"` (largest normalised cut into `num_groups`).
        num_groups: groups of the `"kway"` rule.

    Returns:
        `(label, groups, scores)`: the chosen edge, its groups (index tuples
        into that edge's matrix) and `{label: score}` of every edge. Ties go
        to the first edge in the order given.
    """
    if rule not in EDGE_RULES:
        raise ValueError(
            f"Invalid value for argument `rule`. Expected one of {EDGE_RULES}. "
            f"Received: rule={rule!r}"
        )
    if not distances:
        raise ValueError("Invalid value for argument `distances`. Expected at least one edge.")
    results = {}
    for label, matrix in distances.items():
        if rule == "nb201":
            results[label] = nb201_split(matrix)
        elif rule == "darts":
            results[label] = darts_split(matrix)
        else:
            results[label] = kway_split(matrix, num_groups)
    scores = {label: score for label, (_, score) in results.items()}
    pick = min if rule == "darts" else max
    label = pick(scores, key=lambda k: scores[k])
    return label, results[label][0], scores


@kerasnas_export("kerasnas.fewshot.exhaustive_split")
def exhaustive_split(num_options):
    """Few-shot NAS' split (Zhao et al.): one option per group."""
    return tuple((i,) for i in range(num_options))


@kerasnas_export("kerasnas.fewshot.random_split")
def random_split(num_options, rng, num_groups=2):
    """A seeded random balanced split (the GM-NAS paper's random baseline):
    options shuffled by `rng` (a `numpy.random.Generator`) and cut into
    groups of `balanced_sizes`."""
    order = rng.permutation(num_options)
    groups, start = [], 0
    for size in balanced_sizes(num_options, num_groups):
        groups.append(tuple(sorted(int(i) for i in order[start : start + size])))
        start += size
    return tuple(sorted(groups))
