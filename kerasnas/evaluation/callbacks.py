"""Callbacks that watch a supernet while it trains."""

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from kerasnas.callbacks.observer import SupernetObserver
from kerasnas.evaluation.ranking import rank_architectures


class GradientVarianceMonitor(SupernetObserver):
    """The supernet gradient variance of PA&DA (Appendix A), per epoch.

    During an epoch, for every parameter (scalar weight) `w` it accumulates
    the gradients `d_w` of the steps whose path contains `w` (S_w of them;
    a parameter outside every choice is in every path), and at the end of
    the epoch computes `σ_w² = 1/S_w Σ_s (d_w,s − μ_w)²` and their mean over
    all parameters with `S_w ≥ 1`: `σ_N² = E_w[σ_w²]` (Eqs. 14-15). The
    gradients are those of back-propagation (summed over replicas, before
    clipping and weight decay) and are accumulated in the graph, in
    variables; the cost is three element-wise operations per parameter and
    step.

    The value is logged as `gradient_variance` in the epoch's `logs` (so in
    the `History` and in a `TensorBoard` callback placed after this one) and
    kept in `self.history` (`{"epoch": [...], "gradient_variance": [...]}`).

    Args:
        relative: also log `gradient_variance_relative`, σ_N² divided by the
            mean squared mean gradient E_w[μ_w²] (scale-free).
    """

    def __init__(self, relative=False):
        super().__init__()
        self.relative = bool(relative)
        self.history = {"epoch": [], "gradient_variance": []}
        if self.relative:
            self.history["gradient_variance_relative"] = []

    def _make_state(self, model):
        def local(shape, name, dtype="float32"):
            # On-read: every replica updates its own copy with the (already
            # all-reduced, so identical) gradients; reads give their mean.
            return keras.Variable(
                initializer="zeros", shape=shape, dtype=dtype, trainable=False,
                synchronization="on_read", aggregation="mean", name=name,
            )

        variables = model.trainable_variables
        return {
            "sum": [local(v.shape, "gv_sum") for v in variables],
            "sum_sq": [local(v.shape, "gv_sum_sq") for v in variables],
            "count": local((len(variables),), "gv_count"),
        }

    def _observe(self, supernet, path, gradients, variables):
        state = self._state
        active = []
        for variable in variables:
            owner = supernet.candidate_owner(variable)
            if owner is None:
                active.append(tf.constant(1.0))
            else:
                active.append(tf.cast(tf.equal(path[owner[0]], owner[1]), "float32"))
        for g, total, total_sq, a in zip(gradients, state["sum"], state["sum_sq"], active):
            g = tf.cast(g, "float32") * a
            total.assign_add(g)
            total_sq.assign_add(g * g)
        state["count"].assign_add(tf.stack(active))

    def on_epoch_begin(self, epoch, logs=None):
        for v in self._state["sum"] + self._state["sum_sq"] + [self._state["count"]]:
            v.assign(ops.zeros_like(v))

    def on_epoch_end(self, epoch, logs=None):
        variance, relative = self.result()
        self.history["epoch"].append(epoch + 1)
        self.history["gradient_variance"].append(variance)
        if logs is not None:
            logs["gradient_variance"] = variance
        if self.relative:
            self.history["gradient_variance_relative"].append(relative)
            if logs is not None:
                logs["gradient_variance_relative"] = relative

    def result(self):
        """`(σ_N², σ_N² / E_w[μ_w²])` of the steps accumulated so far."""
        counts = ops.convert_to_numpy(self._state["count"]).astype("float64")
        squares, means, size = 0.0, 0.0, 0
        for total, total_sq, count in zip(self._state["sum"], self._state["sum_sq"], counts):
            if count < 1:
                continue
            mean = ops.convert_to_numpy(total).astype("float64") / count
            variance = np.maximum(ops.convert_to_numpy(total_sq).astype("float64") / count - mean**2, 0.0)
            squares += variance.sum()
            means += (mean**2).sum()
            size += mean.size
        if not size:
            return float("nan"), float("nan")
        return squares / size, (squares / means if means else float("nan"))



class RankingMonitor(keras.callbacks.Callback):
    """Scores a fixed set of architectures every `every` epochs and logs how
    well the supernet ranks them: Kendall tau and precision at top 5 %
    against the true accuracies (e.g. NAS-Bench-201's).

    The metrics are added to the epoch's `logs` under `prefix` + name
    (default `rank_kendall_tau`, `rank_precision_at_top_5%`, ...), so they
    reach a `TensorBoard` callback placed after this one, and are kept in
    `self.history` (`{"epoch": [...], "kendall_tau": [...], ...}`), which
    `kerasnas.evaluation.plot_metric_over_epochs` draws. With `log_dir` they
    are also written as TensorBoard scalars there.

    Args:
        archs: architectures to score (dicts or strings of the space).
        true_scores: their true accuracies (same order), or a benchmark with
            a `table(archs, key)` method (`kerasnas.benchmarks.NasBench201`),
            from which `key` is read.
        data: evaluation dataset (finite, batched).
        every: score every that many epochs (and after the last epoch).
        bn_calibration_data, bn_calibration_steps: as `rank_architectures`.
        key: the benchmark column used as truth (default "test_acc").
        prefix: prefix of the names in `logs`.
        log_dir: optional directory for TensorBoard scalars.
        score: what ranks the architectures, `"accuracy"` or `"loss"` (see
            `rank_architectures`).
    """

    def __init__(
        self,
        archs,
        true_scores,
        data,
        every=1,
        bn_calibration_data=None,
        bn_calibration_steps=0,
        key="test_acc",
        prefix="rank_",
        log_dir=None,
        score="accuracy",
    ):
        super().__init__()
        from kerasnas.evaluation.ranking import check_score

        self.score = check_score(score)
        if int(every) < 1:
            raise ValueError(
                "Invalid value for argument `every`. Expected a positive int. "
                f"Received: every={every}"
            )
        archs = list(archs)
        if hasattr(true_scores, "table"):
            true_scores = true_scores.table(archs, key)
        true_scores = np.asarray(true_scores, dtype="float64")
        if true_scores.shape != (len(archs),):
            raise ValueError(
                "Invalid value for argument `true_scores`. Expected one value per "
                f"architecture ({len(archs)}). Received: shape {true_scores.shape}"
            )
        self.archs = archs
        self.true_scores = true_scores
        self.data = data
        self.every = int(every)
        self.bn_calibration_data = bn_calibration_data
        self.bn_calibration_steps = bn_calibration_steps
        self.prefix = prefix
        self.log_dir = log_dir
        self.history = {"epoch": []}
        self.last_scores = None
        self._writer = None
        self._names = self._metric_names()

    def _metric_names(self):
        from kerasnas.evaluation.metrics import ranking_report

        probe = np.arange(4.0)
        names = [
            k for k, v in ranking_report(probe, probe).items()
            if isinstance(v, (int, float, np.floating)) and k != "n"
        ]
        return names + [f"mean_{self.score}"]

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and self.params.get("epochs") == epoch + 1
        if (epoch + 1) % self.every and not last:
            if logs is not None:
                # NaN on the epochs not scored keeps every `History` list
                # one value per epoch (TensorBoard leaves a gap).
                for name in self._names:
                    logs[self.prefix + name] = float("nan")
            return
        from kerasnas.evaluation.metrics import ranking_report

        scores = rank_architectures(
            self.model,
            self.archs,
            self.data,
            bn_calibration_data=self.bn_calibration_data,
            bn_calibration_steps=self.bn_calibration_steps,
            verbose=0,
            score=self.score,
        )
        self.last_scores = scores
        full = ranking_report(scores, self.true_scores)
        full[f"mean_{self.score}"] = float(np.mean(scores) * (1 if self.score == "accuracy" else -1))
        report = {name: full[name] for name in self._names}
        self.history["epoch"].append(epoch + 1)
        for name, value in report.items():
            self.history.setdefault(name, []).append(float(value))
            if logs is not None:
                logs[self.prefix + name] = float(value)
        if self.log_dir:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self.log_dir))
            with self._writer.as_default():
                for name, value in report.items():
                    tf.summary.scalar(self.prefix + name, float(value), step=epoch + 1)
            self._writer.flush()
