"""The `Supernet` model."""

from kerasnas.supernet.supernet import Supernet
from kerasnas.supernet.supernet import clip_by_global_norm
from kerasnas.supernet.supernet import transfer_weights
