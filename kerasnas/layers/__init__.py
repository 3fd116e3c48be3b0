"""Choice layers (the supernet modules) and re-exported building blocks."""

from kerasnas.layers.choice import Choice
from kerasnas.layers.factory import ChoiceFactory
from kerasnas.layers.factory import MixedChoices
from kerasnas.layers.drop_path import DropPath
from kerasnas.layers.interchoice import BiasChoice
from kerasnas.layers.interchoice import INTERCHOICE
from kerasnas.layers.interchoice import InterChoices
from kerasnas.layers.interchoice import SplitChoice
from kerasnas.layers.local_share import LocalCopies
from kerasnas.layers.local_share import LocalShareChoice
from kerasnas.layers.mixed import MixedChoice
from kerasnas.layers.value_choice import ValueChoice
from kerasnas.ops.batch_norm import BatchNorm
from kerasnas.ops.batch_norm import calibration_scope
from kerasnas.ops.batch_norm import moving_stats_gate
