"""Inter-choice dependent supernet weights (Laube & Zell, 2021): a choice's
weights depend on the options taken by the choices before it."""

from kerasnas.api_export import kerasnas_export
from kerasnas.methods.base import Method
from kerasnas.methods.base import alias
from kerasnas.methods.base import register

# Split weights' milestone as a fraction of the epochs when none is given
# (`nb201_interchoice`: 40 of 100).
SPLIT_FRACTION = 0.4


@kerasnas_export("kerasnas.methods.InterChoice")
@register("interchoice")
class InterChoice(Method):
    """Inter-choice weights on any single-path training: the choice factory
    `kerasnas.layers.InterChoices(mode, priors, options)` and, for split
    weights, the `kerasnas.callbacks.SplitWeights` milestones. Combines
    with a path or data sampler (`PA() + InterChoice("bias")`).

    Args:
        mode: `"bias"`, `"mul_bias"`, `"bias_sum"` or `"split"`.
        priors: the choices each choice depends on (default the space's).
        options: more arguments of the layers (see `InterChoices`).
        milestones: split weights' milestone epochs; None: one milestone at
            `SPLIT_FRACTION` of the epochs `train` runs.
    """

    step_cost = 1.3  # the paper's Table 1: +18-38 %

    def __init__(self, mode="bias", priors=None, options=None, milestones=None):
        from kerasnas.layers import InterChoices

        self._factory = InterChoices(mode, priors=priors, options=options)  # checks them
        self.mode, self.priors, self.options = mode, priors, options
        if milestones is not None and mode != "split":
            raise ValueError(
                "Invalid value for argument `milestones`. Expected None unless "
                f"mode='split' (biases have no milestones). Received: milestones={milestones!r}"
            )
        self.milestones = None if milestones is None else [int(m) for m in milestones]
        self.name = f"interchoice-{mode}"

    def choices(self):
        return self._factory

    def callbacks(self, supernet, epochs, data, seed):
        if self.mode != "split":
            return []
        from kerasnas.callbacks import SplitWeights

        return [SplitWeights(self.milestones or [split_milestone(epochs)])]


def split_milestone(epochs):
    """The milestone at `SPLIT_FRACTION` of `epochs` (in `[1, epochs)`)."""
    epochs = int(epochs)
    if epochs < 2:
        raise ValueError(
            "Invalid value for argument `epochs`. Expected at least 2 for split weights "
            f"(a milestone inside training). Received: epochs={epochs}"
        )
    return min(max(1, round(SPLIT_FRACTION * epochs)), epochs - 1)


for _mode in ("bias", "mul_bias", "bias_sum", "split"):
    alias(f"interchoice-{_mode}", InterChoice, mode=_mode)
