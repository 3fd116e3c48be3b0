"""Ranking architectures on a supernet and judging the ranking."""

from kerasnas.evaluation.ranking import ArchitectureScorer
from kerasnas.evaluation.ranking import rank_architectures
from kerasnas.evaluation.ranking import read_results
from kerasnas.evaluation.callbacks import GradientVarianceMonitor
from kerasnas.evaluation.callbacks import RankingMonitor
