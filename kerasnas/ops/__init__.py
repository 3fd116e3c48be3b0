"""Candidate operations, each a small Layer, looked up by registry name."""

from kerasnas.ops.batch_norm import BatchNorm
from kerasnas.ops.mobilenet import InvertedResidual
from kerasnas.ops.nb201 import AvgPool3x3
from kerasnas.ops.nb201 import Identity
from kerasnas.ops.nb201 import ReLUConvBN
from kerasnas.ops.nb201 import ResNetBasicBlock
from kerasnas.ops.nb201 import Zero
from kerasnas.ops.registry import get
from kerasnas.ops.registry import names
from kerasnas.ops.registry import register
from kerasnas.ops.darts import DARTS_OPS
from kerasnas.ops.darts import DartsPool
from kerasnas.ops.darts import DartsReLUConvBN
from kerasnas.ops.darts import DilConv
from kerasnas.ops.darts import FactorizedReduce
from kerasnas.ops.darts import Noise
from kerasnas.ops.darts import SepConv
from kerasnas.ops.darts import darts_op
