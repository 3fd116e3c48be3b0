"""Few-shot NAS: sub-supernets split by gradient matching and balanced
min-cut (GM-NAS), with the exhaustive and random splits as baselines."""

from kerasnas.fewshot.matching import GradientMatcher
from kerasnas.fewshot.matching import pairwise as pairwise_distances
from kerasnas.fewshot.mincut import balanced_mincut
from kerasnas.fewshot.mincut import choose_edge
from kerasnas.fewshot.mincut import darts_split
from kerasnas.fewshot.mincut import exhaustive_split
from kerasnas.fewshot.mincut import kway_split
from kerasnas.fewshot.mincut import nb201_split
from kerasnas.fewshot.mincut import random_split
from kerasnas.fewshot.schedule import LeafCosineDecay
from kerasnas.fewshot.tree import FewShotSupernet
from kerasnas.fewshot.tree import PartitionTree
from kerasnas.fewshot.halving import successive_halving
