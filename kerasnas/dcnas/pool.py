"""The architecture pool of DCNAS and the nearest-member rule."""

import numpy as np

_MAX_ENUMERATED = 10**7


def sample_pool(space, size, seed=None):
    """`size` distinct architectures of `space` drawn uniformly (seeded), as
    an int32 `(size, num_choices)` matrix of option indices.

    Raises:
        ValueError: `size` < 1 or larger than the space.
    """
    total = len(space)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size > total:
        raise ValueError(
            "Invalid value for argument `pool_size`. Expected an int in [1, "
            f"{total}] (the space holds {total} architectures). Received: pool_size={size!r}"
        )
    rng = np.random.default_rng(seed)
    sizes = np.asarray(space.num_options, np.int64)
    if total <= _MAX_ENUMERATED:
        flat = rng.choice(total, size=int(size), replace=False)
        # Mixed-radix digits, first label most significant.
        digits = np.zeros((int(size), len(sizes)), np.int64)
        for c in range(len(sizes) - 1, -1, -1):
            digits[:, c] = flat % sizes[c]
            flat = flat // sizes[c]
        return digits.astype("int32")
    rows, seen = [], set()
    while len(rows) < size:
        row = tuple(int(rng.integers(n)) for n in sizes)
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return np.asarray(rows, "int32")


def nearest_members(pool, path, order=None):
    """Per layer, the pool member whose sharing state an architecture uses.

    DCNAS-style rule (not in the paper): at layer l, among the members that
    take the same option at l, the one that differs from `path` on the
    fewest layers decided before l (in `order`), then on the fewest layers
    overall, then the lowest index. A member of the pool gets itself.

    Args:
        pool: int `(N, L)` option indices.
        path: int `(L,)` option indices.
        order: the layers in the order they are decided (default: label
            order).

    Returns:
        int `(L,)`: a pool index per layer, -1 where no member takes the
        option.
    """
    pool = np.asarray(pool)
    path = np.asarray(path).reshape(-1)
    num_layers = pool.shape[1]
    order = np.arange(num_layers) if order is None else np.asarray(order)
    same = pool == path[None, :]
    differ = (~same).astype(np.int64)
    ordered = differ[:, order]
    before = np.cumsum(ordered, axis=1) - ordered
    prefix = np.empty_like(before)
    prefix[:, order] = before
    score = prefix * (num_layers + 1) + differ.sum(axis=1, keepdims=True)
    score = np.where(same, score, np.iinfo(np.int64).max)
    nearest = np.argmin(score, axis=0)
    return np.where(same.any(axis=0), nearest, -1)
