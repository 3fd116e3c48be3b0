"""Path and data samplers for supernet training."""

from kerasnas.sampling.path_sampler import PathSampler
from kerasnas.sampling.path_sampler import UniformPathSampler
from kerasnas.sampling.path_sampler import sample_from_probabilities
from kerasnas.sampling.importance_data import DataImportanceCallback
from kerasnas.sampling.importance_data import ImportanceDataSampler
from kerasnas.sampling.importance_path import ImportancePathSampler
from kerasnas.sampling.importance_path import PathImportanceCallback
from kerasnas.sampling.schedules import LinearSchedule
