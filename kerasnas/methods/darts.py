"""DARTS (Liu et al., 2019) and SNAS: a continuous relaxation trained by
bilevel optimization; DARTS-PT (Wang et al., 2021) selects from it by
perturbation (`kerasnas.darts.PerturbationSelector`)."""

from kerasnas.api_export import kerasnas_export
from kerasnas.methods.base import Method
from kerasnas.methods.base import alias
from kerasnas.methods.base import register


@kerasnas_export("kerasnas.methods.DARTS")
@register("darts")
class DARTS(Method):
    """The mixed-choice supernet (`kerasnas.darts.DartsSupernet`, whose
    choice factory is `MixedChoices`) with α's optimizer. Each training step
    also takes a batch of `arch_data` for α (first order).

    Args:
        arch_optimizer: α's optimizer (default the reference's Adam(3e-4,
            beta_1=0.5)); a config dict or an optimizer.
        **supernet_options: of `DartsSupernet` (`relaxation="snas"`,
            `weight_decay`, `clip_norm`, `arch_weight_decay`, `fix_alpha`,
            ...).
    """

    combines = False  # its own training; the others' parts are not defined in it
    needs_arch_data = True
    step_cost = 10.0  # every candidate and an α step (tools/bench_darts.py, CPU; an upper bound on GPU)

    def __init__(self, arch_optimizer=None, **supernet_options):
        from kerasnas.darts import DartsSupernet

        unknown = sorted(set(supernet_options) - set(_darts_options(DartsSupernet)))
        if unknown:
            raise ValueError(
                f"Invalid value for argument `{unknown[0]}`. Expected options of "
                f"DartsSupernet ({_darts_options(DartsSupernet)}). Received: {sorted(supernet_options)}"
            )
        self.arch_optimizer = arch_optimizer
        self._options = dict(supernet_options)
        self.supernet_class = DartsSupernet
        if supernet_options.get("relaxation", "darts") != "darts":
            self.name = supernet_options["relaxation"]

    def compile(self, supernet, optimizer, loss, metrics=None):
        import keras

        arch = self.arch_optimizer
        if isinstance(arch, dict):
            arch = keras.optimizers.deserialize(arch)
        supernet.compile(optimizer=optimizer, loss=loss, metrics=metrics, arch_optimizer=arch)


def _darts_options(cls):
    import inspect

    return [p for p in inspect.signature(cls.__init__).parameters
            if p not in ("self", "space", "network_options", "seed", "kwargs")]


alias("snas", DARTS, relaxation="snas")
