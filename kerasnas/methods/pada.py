"""PA&DA (Lu et al., CVPR 2023): path importance (PA) and data importance
(DA) sampling; either alone or both (`PADA`, which is `PA() + DA()`)."""

from kerasnas.api_export import kerasnas_export
from kerasnas.methods.base import Combined
from kerasnas.methods.base import Method
from kerasnas.methods.base import register


@kerasnas_export("kerasnas.methods.PA")
@register("pa")
class PA(Method):
    """Path importance sampling: each choice's options drawn in proportion
    to their gradient norms of the last epoch
    (`kerasnas.sampling.ImportancePathSampler` and its callback).

    Args:
        shared: one distribution over the options for every choice (the
            reference, NAS-Bench-201). None: shared when every choice has
            the same options, else one distribution per choice.
        parameter_free_floor: a floor on the probability of options without
            weights (None: the reference, no floor).
        delta: the smoothing schedule (None: the reference's linear one).
    """

    step_cost = 1.1  # PA&DA's Table 1 (1.8 / 1.6 GPU-hours for both)

    def __init__(self, shared=None, parameter_free_floor=None, delta=None):
        self.shared = shared
        self.parameter_free_floor = parameter_free_floor
        self.delta = delta

    def path_sampler(self, space):
        from kerasnas.sampling import ImportancePathSampler

        shared = self.shared
        if shared is None:
            options = list(space.choices.values())
            shared = all(o == options[0] for o in options)
        return ImportancePathSampler(
            shared=shared, parameter_free_floor=self.parameter_free_floor, name="path_sampler"
        )

    def callbacks(self, supernet, epochs, data, seed):
        return [supernet.path_sampler.callback(delta=self.delta)]


@kerasnas_export("kerasnas.methods.DA")
@register("da")
class DA(Method):
    """Data importance sampling: each epoch's batches drawn in proportion to
    the examples' gradient-norm scores (`kerasnas.sampling.ImportanceDataSampler`).
    Needs the training data as arrays `(x, y)`.

    Args:
        tau: the smoothing schedule (None: the reference's).
        importance_weighted_loss: weight each example's loss by
            1 / (N p) (unbiased; the reference does not).
        map_fn: `(image, label, seed) -> (image, label)` applied per
            example (augmentation).
    """

    step_cost = 1.1

    def __init__(self, tau=None, importance_weighted_loss=False, map_fn=None):
        self.tau = tau
        self.importance_weighted_loss = bool(importance_weighted_loss)
        self.map_fn = map_fn

    def get_config(self):
        if self.map_fn is not None:
            raise ValueError(
                "Invalid value for argument `map_fn`. Expected None for a DA method saved "
                f"as a config (a function is not data). Received: map_fn={self.map_fn!r}"
            )
        return super().get_config()

    def data_sampler(self, data, batch_size, seed):
        from kerasnas.sampling import ImportanceDataSampler

        if batch_size is None:
            raise ValueError(
                "Invalid value for argument `batch_size`. Expected a positive int: DA "
                "draws batches from the arrays. Received: batch_size=None"
            )
        return ImportanceDataSampler(
            tuple(data), batch_size, map_fn=self.map_fn, tau=self.tau, seed=seed,
            importance_weighted_loss=self.importance_weighted_loss,
        )


@kerasnas_export("kerasnas.methods.PADA")
@register("pada")
class PADA(Combined):
    """PA and DA together (the paper's method): `PA(**path) + DA(**data)`.

    Args:
        path: `PA`'s options.
        data: `DA`'s options.
    """

    step_cost = 1.125

    def __init__(self, path=None, data=None):
        self.path, self.data = dict(path or {}), dict(data or {})
        super().__init__(PA(**self.path), DA(**self.data))
        self.name = "pada"
        self.step_cost = type(self).step_cost

    def get_config(self):
        return Method.get_config(self)
