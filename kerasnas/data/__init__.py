"""Datasets for kerasnas: `tf.data` pipelines with per-sample indices."""

from kerasnas.data.augment import CIFAR10_MEAN
from kerasnas.data.augment import CIFAR10_STD
from kerasnas.data.augment import CIFAR100_MEAN
from kerasnas.data.augment import CIFAR100_STD
from kerasnas.data.augment import cutout
from kerasnas.data.augment import normalize
from kerasnas.data.augment import random_crop_flip
from kerasnas.data.loaders import DATASET_NAMES
from kerasnas.data.loaders import SPLITS
from kerasnas.data.loaders import STREAM_SHUFFLE_BUFFER
from kerasnas.data.loaders import IMAGENET_MEAN
from kerasnas.data.loaders import IMAGENET_STD
from kerasnas.data.loaders import info
from kerasnas.data.loaders import is_streamed
from kerasnas.data.loaders import load
from kerasnas.data.loaders import load_arrays
from kerasnas.data.loaders import nb201_split
from kerasnas.data.loaders import num_classes
from kerasnas.data.loaders import random_access
from kerasnas.data.loaders import require_index
from kerasnas.data.loaders import stream
