"""GM-NAS (Hu et al., ICLR 2022): a few-shot tree of supernets, split by
gradient matching and a balanced min-cut (`kerasnas.fewshot`)."""

from kerasnas.api_export import kerasnas_export
from kerasnas.methods.base import Method
from kerasnas.methods.base import register

# Split epochs as fractions of the tree's epochs when none are given
# (GM-NAS' cifar10-subset preset: 15 and 30 of 60).
SPLIT_FRACTIONS = (0.25, 0.5)


@kerasnas_export("kerasnas.methods.GMNAS")
@register("gmnas")
class GMNAS(Method):
    """Trains a `kerasnas.fewshot.FewShotSupernet` tree from the supernet:
    split at `split_epochs`, each split chosen by `split_method`, the last
    generation restarted (`restart`). `train` returns the tree (under
    `directory`), which ranks, searches and extracts like a supernet.

    Args:
        split_epochs: the epochs of the splits; None: `SPLIT_FRACTIONS` of
            the epochs `train` runs.
        split_method: `"gradient_matching"` (the paper), `"random"` or
            `"exhaustive"` (Few-Shot NAS).
        num_groups: children per split.
        restart: which generation starts from fresh weights (the paper's
            `"final"`).
        matcher_options: options of the gradient matching (`repeats`,
            `metric`).
        fix_schedule: anneal each restarted leaf's learning rate over its
            own epochs (the reference's `--fix_sche`; needs the optimizer's
            learning rate to be a `kerasnas.fewshot.LeafCosineDecay`).
    """

    combines = False  # its own training; the others' parts are not defined in it
    def __init__(self, split_epochs=None, split_method="gradient_matching", num_groups=2,
                 restart="final", matcher_options=None, fix_schedule=False):
        self.split_epochs = None if split_epochs is None else [int(e) for e in split_epochs]
        self.split_method, self.num_groups, self.restart = split_method, int(num_groups), restart
        self.matcher_options = None if matcher_options is None else dict(matcher_options)
        self.fix_schedule = bool(fix_schedule)

    def splits(self, epochs):
        """The split epochs of a tree trained `epochs` epochs."""
        if self.split_epochs is not None:
            return list(self.split_epochs)
        splits = sorted({min(max(1, round(f * epochs)), epochs - 1) for f in SPLIT_FRACTIONS})
        if len(splits) < len(SPLIT_FRACTIONS) or epochs < 3:
            raise ValueError(
                "Invalid value for argument `epochs`. Expected at least 3 for a tree of two "
                f"splits (or give `split_epochs`). Received: epochs={epochs}"
            )
        return splits

    def fit(self, supernet, data, epochs, callbacks=(), verbose=0, directory=None):
        from kerasnas.fewshot import FewShotSupernet

        if directory is None:
            raise ValueError(
                "Invalid value for argument `directory`. Expected a folder for the tree "
                "of supernets GM-NAS trains (every node is saved there). Received: None"
            )
        tree = FewShotSupernet(
            supernet, str(directory), split_epochs=self.splits(epochs), split_method=self.split_method,
            num_groups=self.num_groups, restart=self.restart, matcher_options=self.matcher_options,
            seed=int(supernet.seed or 0), fix_schedule=self.fix_schedule,
        )
        # The matching's `repeats` batches (the reference's 100) are drawn
        # from the training batches, passing over them again when an epoch
        # has fewer.
        tree.fit(data, epochs=epochs, split_data=data.repeat(), callbacks=list(callbacks), verbose=verbose)
        return tree

    def node_epochs(self, epochs):
        """Supernet-epochs of a tree trained `epochs` epochs (each node
        counted; binary splits double the nodes)."""
        bounds = [0] + self.splits(epochs) + [int(epochs)]
        return int(sum((self.num_groups ** g) * (b - a) for g, (a, b) in enumerate(zip(bounds, bounds[1:]))))

    def scale(self, budget_epochs, space):
        """The tree whose node-epochs are `budget_epochs` (equal optimizer
        steps to a one-shot supernet of that many epochs)."""
        epochs, splits = gm_schedule(budget_epochs)
        scaled = type(self)(**dict(self.get_config()["options"], split_epochs=splits))
        return scaled, epochs


def gm_schedule(budget_epochs, fractions=SPLIT_FRACTIONS, argument="epochs"):
    """`(epochs, [split 1, split 2])` of a two-split binary tree whose
    node-epochs (4 E - 2 s2 - s1) are exactly `budget_epochs`, its splits
    as near `fractions` of E as can be."""
    best = None
    for epochs in range(3, budget_epochs + 1):
        for first in range(1, epochs - 1):
            twice = 4 * epochs - first - budget_epochs
            if twice % 2:
                continue
            second = twice // 2
            if not first < second < epochs:
                continue
            cost = abs(first - fractions[0] * epochs) + abs(second - fractions[1] * epochs)
            if best is None or cost < best[0]:
                best = (cost, epochs, [first, second])
    if best is None:
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected at least 7 epochs "
            f"of node training for gmnas (a tree of two splits). Received: {budget_epochs} epochs"
        )
    return best[1], best[2]
