"""Search spaces: choices, codecs, and supernet / child builders."""

from kerasnas.spaces.mobilenet import MOBILENET_BN_MODES
from kerasnas.spaces.mobilenet import MobileNetSpace
from kerasnas.spaces.nas_bench_201 import BN_MODES
from kerasnas.spaces.nas_bench_201 import NB201_EDGES
from kerasnas.spaces.nas_bench_201 import NB201_OPS
from kerasnas.spaces.nas_bench_201 import NasBench201
from kerasnas.spaces.search_space import SearchSpace
from kerasnas.spaces.function_space import Builder
from kerasnas.spaces.function_space import FunctionSpace
from kerasnas.spaces.function_space import from_function
from kerasnas.spaces.darts import GENOTYPES
from kerasnas.spaces.darts import OP_SETS
from kerasnas.spaces.darts import Darts
from kerasnas.spaces.darts_eval import strip_auxiliary
from kerasnas.spaces.flops import count_flops
