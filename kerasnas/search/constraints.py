"""Resource constraints on architectures (parameters, FLOPs, any predicate)."""

import numbers

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.search.Constraints")
class Constraints:
    """Limits an architecture must satisfy to be proposed by a search.

    Costs come from the search space (`space.params(arch)`,
    `space.flops(arch)`), in the space's units: the NAS-Bench-201 and
    MobileNet spaces count parameters and multiply-accumulates of the
    stand-alone child (not millions).

    Args:
        max_params: the largest parameter count allowed, or None.
        max_flops: the largest FLOPs (multiply-accumulates) allowed, or None.
        min_params, min_flops: lower bounds, or None (e.g. to search a
            band of model sizes).
        predicate: a callable `predicate(arch) -> bool` for anything else
            (e.g. "no `none` edge"), or None.

    Example:

    ```python
    constraints = kerasnas.search.Constraints(max_flops=400e6)
    constraints.is_satisfied(space, arch)      # -> bool
    constraints.violations(space, arch)        # -> ["flops 412.3M > 400M"]
    ```
    """

    def __init__(self, max_params=None, max_flops=None, min_params=None, min_flops=None, predicate=None):
        for name, value in (
            ("max_params", max_params),
            ("max_flops", max_flops),
            ("min_params", min_params),
            ("min_flops", min_flops),
        ):
            if value is not None and (
                not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected None or a "
                    f"number >= 0. Received: {name}={value!r}"
                )
        for low, high, what in ((min_params, max_params, "params"), (min_flops, max_flops, "flops")):
            if low is not None and high is not None and low > high:
                raise ValueError(
                    f"Invalid value for argument `min_{what}`. Expected at most "
                    f"max_{what}={high}. Received: min_{what}={low}"
                )
        if predicate is not None and not callable(predicate):
            raise ValueError(
                "Invalid value for argument `predicate`. Expected None or a "
                f"callable predicate(arch) -> bool. Received: predicate={predicate!r}"
            )
        self.max_params = max_params
        self.max_flops = max_flops
        self.min_params = min_params
        self.min_flops = min_flops
        self.predicate = predicate

    @property
    def empty(self):
        """True when nothing is constrained."""
        return all(
            v is None
            for v in (self.max_params, self.max_flops, self.min_params, self.min_flops, self.predicate)
        )

    def _cost(self, space, arch, what):
        return float(space.params(arch) if what == "params" else space.flops(arch))

    def violations(self, space, arch):
        """The constraints `arch` violates, as readable strings (empty: ok)."""
        out = []
        for what, low, high in (
            ("params", self.min_params, self.max_params),
            ("flops", self.min_flops, self.max_flops),
        ):
            if low is None and high is None:
                continue
            value = self._cost(space, arch, what)
            if high is not None and value > high:
                out.append(f"{what} {_human(value)} > {_human(high)}")
            if low is not None and value < low:
                out.append(f"{what} {_human(value)} < {_human(low)}")
        if self.predicate is not None and not self.predicate(dict(arch)):
            out.append(f"predicate {getattr(self.predicate, '__name__', 'predicate')}(arch) is false")
        return out

    def is_satisfied(self, space, arch):
        """True when `arch` satisfies every constraint."""
        return not self.violations(space, arch)

    def __repr__(self):
        parts = [
            f"{k}={v!r}"
            for k, v in (
                ("max_params", self.max_params),
                ("max_flops", self.max_flops),
                ("min_params", self.min_params),
                ("min_flops", self.min_flops),
                ("predicate", self.predicate),
            )
            if v is not None
        ]
        return f"Constraints({', '.join(parts)})"


def _human(value):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"
