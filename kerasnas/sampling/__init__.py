"""Path (and, later, data) samplers for supernet training."""

from kerasnas.sampling.path_sampler import PathSampler
from kerasnas.sampling.path_sampler import UniformPathSampler
from kerasnas.sampling.path_sampler import sample_from_probabilities
