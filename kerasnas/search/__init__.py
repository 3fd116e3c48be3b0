"""Architecture search over trained supernets with keras-tuner.

An oracle (`EvolutionOracle`, `RandomArchOracle`) proposes architectures,
whose trial values are the architecture dicts; a tuner scores them on a
supernet (`OneShotTuner`) or on a benchmark's ground truth
(`BenchmarkTuner`). `Constraints` bound parameters and FLOPs.
"""

from kerasnas.search.constraints import Constraints
from kerasnas.search.oracles import ArchOracle
from kerasnas.search.oracles import EvolutionOracle
from kerasnas.search.oracles import RandomArchOracle
from kerasnas.search.tuners import ArchTuner
from kerasnas.search.tuners import BenchmarkTuner
from kerasnas.search.tuners import OneShotTuner
