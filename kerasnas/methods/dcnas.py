"""DCNAS (distribution-consistent local weight sharing): M local copies of
each layer's weights, pool architectures assigned to copies by matching
their gradients (`kerasnas.dcnas`)."""

from kerasnas.api_export import kerasnas_export
from kerasnas.methods.base import Method
from kerasnas.methods.base import register

# T_w, T, T_f of the reference 150 epochs (ImageNet, 6 layers:
# 10 + 8 * 2 * 6 + 44 = 150, `nb201_dcnas`), scaled to other budgets.
REFERENCE_SCHEDULE = (10, 8, 44)
REFERENCE_EPOCHS = 150


@kerasnas_export("kerasnas.methods.DCNAS")
@register("dcnas")
class DCNAS(Method):
    """`kerasnas.dcnas.DCNASSupernet` (choice factory `LocalCopies(copies)`)
    driven by `kerasnas.dcnas.DCNASSchedule` (Algorithm 1).

    Args:
        copies: M, local copies per layer.
        schedule: `(T_w, T, T_f)` epochs; None: the reference's 10, 8, 44
            of 150 scaled to the epochs `train` runs (`dcnas_schedule`).
        pool_size: architectures in the pool.
        assignment: `"cluster"` (the paper) or `"random"` (ablation).
        representatives: pool members per cluster deciding Eq. 7.
        feature_steps: batches per feature and loss at a decision.
        **supernet_options: more of `DCNASSupernet` (`lambda_scale`,
            `meta_learning_rate`, `meta_interval`, `pair_lambda`,
            `feature_choice`, `layer_order`, `pool_seed`).
    """

    combines = False  # its own training; the others' parts are not defined in it
    step_cost = 1.6  # pair and meta steps, decisions (tools/bench_dcnas.py, CPU)

    def __init__(self, copies=2, schedule=None, pool_size=10000, assignment="cluster",
                 representatives=4, feature_steps=1, **supernet_options):
        from kerasnas.dcnas import DCNASSupernet

        self.copies, self.pool_size = int(copies), int(pool_size)
        self.schedule = None if schedule is None else [int(e) for e in schedule]
        if self.schedule is not None and len(self.schedule) != 3:
            raise ValueError(
                "Invalid value for argument `schedule`. Expected None or (T_w, T, T_f). "
                f"Received: schedule={schedule!r}"
            )
        self.assignment, self.representatives, self.feature_steps = assignment, representatives, feature_steps
        self._options = dict(supernet_options)
        self.supernet_class = DCNASSupernet

    def choices(self):
        from kerasnas.layers import LocalCopies

        return LocalCopies(self.copies)

    def supernet_options(self):
        return dict(super().supernet_options(), pool_size=self.pool_size)

    def callbacks(self, supernet, epochs, data, seed):
        from kerasnas.dcnas import DCNASSchedule

        layers = len(supernet.layer_order)
        schedule = self.schedule or dcnas_schedule(epochs, layers)
        return [DCNASSchedule(*schedule, data, assignment=self.assignment,
                              representatives=self.representatives,
                              feature_steps=self.feature_steps, seed=seed, verbose=0)]


def dcnas_schedule(epochs, num_layers=6, argument="epochs"):
    """`(T_w, T, T_f)` of `epochs` (T_w + 2 T L + T_f), scaled from the
    reference 10, 8, 44 of 150."""
    warmup, layer, final = REFERENCE_SCHEDULE
    total = warmup + 2 * layer * num_layers + final
    layer = max(1, round(epochs * layer / total))
    warmup = round(epochs * warmup / total)
    while layer > 1 and warmup + 2 * layer * num_layers > epochs:
        layer -= 1
    warmup = min(warmup, epochs - 2 * layer * num_layers)
    if warmup < 0:
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected at least "
            f"{2 * num_layers} epochs for dcnas (one pair and one ordinary epoch per "
            f"layer of {num_layers}). Received: {epochs} epochs"
        )
    return warmup, layer, epochs - warmup - 2 * layer * num_layers
