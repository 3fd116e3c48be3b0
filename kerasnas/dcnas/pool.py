"""The architecture pool of DCNAS and the nearest-member rule."""

import numpy as np

_MAX_ENUMERATED = 10**7


def sample_pool(space, size, seed=None, options=None):
    """`size` distinct architectures of `space` drawn uniformly (seeded), as
    an int32 `(size, num_choices)` matrix of option indices.

    Args:
        space: the `SearchSpace`.
        size: N.
        seed: the draw's seed.
        options: `{label: [option, ...]}`: draw only from these options of
            the labels given (e.g. the options the supernet trains); None,
            the whole space.

    Raises:
        ValueError: `size` < 1 or larger than the space (or `options`' part
            of it), or an option `space` does not have.
    """
    if options is not None:
        allowed = _allowed(space, options)
        sub = sample_pool(_Sizes([len(a) for a in allowed]), size, seed)
        return np.asarray([[allowed[c][i] for c, i in enumerate(row)] for row in sub], "int32")
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


class _Sizes:
    """What `sample_pool` reads of a space: its options per choice."""

    def __init__(self, sizes):
        self.num_options = tuple(int(n) for n in sizes)

    def __len__(self):
        return int(np.prod(self.num_options, dtype=np.int64))


def _allowed(space, options):
    """Per choice (label order), the indices of the options `options` keeps."""
    unknown = sorted(set(options) - set(space.labels))
    result = []
    for label, names in space.choices.items():
        keep = list(options.get(label, names))
        bad = [o for o in keep if o not in names]
        if unknown or bad or not keep:
            raise ValueError(
                "Invalid value for argument `pool_options`. Expected {label: [option, ...]} with "
                f"labels of the space and at least one of each label's options. Received: "
                f"{dict(options)!r} (unknown labels {unknown}, options {bad})"
            )
        result.append([list(names).index(o) for o in keep])
    return result


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
