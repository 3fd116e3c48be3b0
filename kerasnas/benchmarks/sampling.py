"""Fixed, seeded samples of architectures for ranking experiments, and the
check that a benchmark covers a supernet's space."""

import numpy as np


def sample_archs(bench_or_space, num=None, seed=0):
    """A fixed random sample of distinct architectures, as strings.

    The population is `bench.archs()` for a benchmark, or every
    architecture of a search space in its enumeration order (NAS-Bench-201
    strings for spaces with `to_string()`, otherwise the architecture dict
    as JSON with sorted keys, as in result files). The sample is a prefix of
    a seeded permutation of the population, so that with one seed a smaller
    sample is the beginning of a larger one.

    Args:
        bench_or_space: a benchmark (anything with `archs()`, e.g.
            `kerasnas.benchmarks.NasBench201`) or a search space small
            enough to enumerate.
        num: how many architectures (1 to the population's size), or
            `None` / `"all"` for the whole population in its own order.
        seed: seed of the permutation (an int or a numpy `Generator`).

    Returns:
        A list of `num` distinct architecture strings.
    """
    if hasattr(bench_or_space, "archs"):
        population = list(bench_or_space.archs())
    elif hasattr(bench_or_space, "enumerate"):
        from kerasnas.evaluation.ranking import arch_key

        space = bench_or_space
        population = [arch_key(space, arch) for arch in space.enumerate()]
    else:
        raise ValueError(
            "Invalid value for argument `bench_or_space`. Expected a benchmark "
            "with `archs()` or a search space. "
            f"Received: bench_or_space={bench_or_space!r}"
        )
    if num is None or (isinstance(num, str) and num == "all"):
        return population
    if (
        not isinstance(num, (int, np.integer))
        or isinstance(num, bool)
        or not 1 <= num <= len(population)
    ):
        raise ValueError(
            "Invalid value for argument `num`. Expected None, 'all' or an int "
            f"in [1, {len(population)}]. Received: num={num!r}"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(len(population))[: int(num)]
    return [population[i] for i in order]


def check_benchmark(benchmark, space, argument="benchmark"):
    """Raises a ValueError (naming `argument`) unless `benchmark` (or None)
    covers `space`: a supernet of another space cannot be ranked or searched
    against it."""
    if benchmark is not None and getattr(benchmark, "space", None) is not None:
        if getattr(space, "choices", None) != benchmark.space.choices:
            if argument == "benchmark":
                raise ValueError(
                    "Invalid value for argument `benchmark`. Expected the ground truth of "
                    f"the supernet's space {space!r}. Received: a benchmark of {benchmark.space!r}"
                )
            raise ValueError(
                f"Invalid value for argument `{argument}`. Expected a supernet of the "
                f"benchmark's space {benchmark.space!r}. Received: a supernet of {space!r}"
            )
