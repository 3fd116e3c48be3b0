"""SPOS (Guo et al., 2020): one uniformly sampled path per step."""

from kerasnas.api_export import kerasnas_export
from kerasnas.methods.base import Method
from kerasnas.methods.base import register


@kerasnas_export("kerasnas.methods.SPOS")
@register("spos")
class SPOS(Method):
    """Single path one-shot: every part is the core's default (uniform
    paths, `kerasnas.Supernet`, plain `fit`).

    Args:
        reject_disconnected: resample paths whose cell has no connection
            from input to output (NAS-Bench-201's all-'none' routes;
            `kerasnas.sampling.UniformPathSampler`).
    """

    def __init__(self, reject_disconnected=False):
        self.reject_disconnected = bool(reject_disconnected)

    def path_sampler(self, space):
        if not self.reject_disconnected:
            return None
        from kerasnas.sampling import UniformPathSampler

        return UniformPathSampler(reject_disconnected=True, name="path_sampler")
