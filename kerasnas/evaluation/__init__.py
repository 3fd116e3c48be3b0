"""Ranking architectures on a supernet and judging the ranking."""

from kerasnas.evaluation.ranking import ArchitectureScorer
from kerasnas.evaluation.ranking import rank_architectures
from kerasnas.evaluation.ranking import ranking_seconds
from kerasnas.evaluation.ranking import read_results
from kerasnas.evaluation.ranking import record_path
from kerasnas.evaluation.ranking import scoring_record
from kerasnas.evaluation.callbacks import GradientVarianceMonitor
from kerasnas.evaluation.callbacks import RankingMonitor
from kerasnas.evaluation.metrics import average_curves
from kerasnas.evaluation.metrics import baseline_scores
from kerasnas.evaluation.metrics import improvement_curve
from kerasnas.evaluation.metrics import kendall_tau
from kerasnas.evaluation.metrics import op_count_bias
from kerasnas.evaluation.metrics import pearson
from kerasnas.evaluation.metrics import precision_at_top_k
from kerasnas.evaluation.metrics import ranking_report
from kerasnas.evaluation.metrics import spearman
from kerasnas.evaluation.metrics import top_k_count
from kerasnas.evaluation.metrics import top_k_spearman
from kerasnas.evaluation.plots import plot_best_vs_cost
from kerasnas.evaluation.plots import plot_improvement
from kerasnas.evaluation.plots import plot_metric_over_epochs
from kerasnas.evaluation.plots import plot_ranking_scatter
from kerasnas.evaluation.plots import plot_search_progress
from kerasnas.evaluation.report import format_report
from kerasnas.evaluation.report import rank_and_report
