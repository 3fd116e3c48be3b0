"""kerasnas: weight-sharing neural architecture search for Keras 3."""

__version__ = "0.1.0"

from kerasnas import benchmarks
from kerasnas import callbacks
from kerasnas import data
from kerasnas import evaluation
from kerasnas import export
from kerasnas import layers
from kerasnas import ops
from kerasnas import sampling
from kerasnas import search
from kerasnas import spaces
from kerasnas.supernet import Supernet
from kerasnas import darts
from kerasnas import fewshot
from kerasnas import dcnas
from kerasnas import methods
from kerasnas import timing
from kerasnas import recipes
