"""Algorithm 1 of DCNAS as a callback: warm-up, layer-by-layer pair
training and clustering, final training."""

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.layers import moving_stats_gate

ASSIGNMENTS = ("cluster", "random")


@kerasnas_export("kerasnas.dcnas.DCNASSchedule")
class DCNASSchedule(keras.callbacks.Callback):
    """Drives a `DCNASSupernet` through Algorithm 1 (epochs, not steps).

    Epochs `[0, warmup_epochs)`: ordinary steps (every layer undecided, a
    random copy per step). Then for each layer of the supernet's
    `layer_order`: `layer_epochs` epochs of pair steps on it (Eq. 8, 12),
    the decision of its sharing states, `layer_epochs` ordinary epochs.
    Finally `final_epochs` ordinary epochs: `epochs(num_layers)` in all
    (paper, ImageNet: 10 + 16 * 2 * 3 + 44 = 150).

    The decision of layer l (`assignment="cluster"`, DCNAS-style reading):
    for each option k, the pool members taking k get their pooled layer
    inputs on `data` (`feature_steps` batches, BN in training mode, moving
    statistics untouched); the matching-degree matrix `lambda_ij` of the
    (l, k) meta network is clustered into M groups by K-means on its rows,
    columns standardized (scikit-learn, seeded); Eq. 7 gives each cluster one copy: the mean
    loss of `representatives` members of each cluster with each copy at
    layer l, and the assignment of distinct copies to clusters of least
    total loss (`scipy.optimize.linear_sum_assignment`; the paper does not
    say how ties are broken). `"random"` (ablation): no pair steps, and each
    member gets a random copy at the decision.

    The phase is recomputed from the epoch, and a decision that a resumed
    run missed (it is due before the current epoch and the layer is not
    decided in the restored states) is taken at the start of the epoch:
    resume is exact.

    Args:
        warmup_epochs: T_w.
        layer_epochs: T (pair epochs, then as many ordinary epochs).
        final_epochs: T_f.
        data: a `tf.data.Dataset` of training batches `(x, y, ...)` for the
            decisions.
        assignment: `"cluster"` or `"random"`.
        representatives: members per cluster whose losses decide Eq. 7.
        feature_steps: batches of `data` per feature and loss.
        seed: seed of K-means, the representatives and random assignments.
        verbose: print a line per decision.
        log_path: a file to which each decision is appended as a JSON line.
    """

    def __init__(
        self, warmup_epochs, layer_epochs, final_epochs, data, assignment="cluster",
        representatives=4, feature_steps=1, seed=0, verbose=1, log_path=None,
    ):
        super().__init__()
        for name, value, least in (
            ("warmup_epochs", warmup_epochs, 0), ("layer_epochs", layer_epochs, 1),
            ("final_epochs", final_epochs, 0), ("representatives", representatives, 1),
            ("feature_steps", feature_steps, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected an int >= {least}. "
                    f"Received: {name}={value!r}"
                )
        if assignment not in ASSIGNMENTS:
            raise ValueError(
                "Invalid value for argument `assignment`. Expected one of "
                f"{list(ASSIGNMENTS)}. Received: assignment={assignment!r}"
            )
        if assignment == "cluster" and data is None:
            raise ValueError(
                "Invalid value for argument `data`. Expected a tf.data.Dataset of "
                "training batches for the clustering decisions. Received: data=None"
            )
        self.warmup_epochs = int(warmup_epochs)
        self.layer_epochs = int(layer_epochs)
        self.final_epochs = int(final_epochs)
        self.data = data
        self.assignment = assignment
        self.representatives = int(representatives)
        self.feature_steps = int(feature_steps)
        self.seed = int(seed)
        self.verbose = verbose
        self.log_path = log_path
        self.decisions = []

    def epochs(self, num_layers):
        """Total epochs of Algorithm 1 for `num_layers` layers."""
        return self.warmup_epochs + 2 * self.layer_epochs * int(num_layers) + self.final_epochs

    def decision_epoch(self, step):
        """The epoch at whose start the `step`-th layer of the order is decided."""
        return self.warmup_epochs + 2 * self.layer_epochs * step + self.layer_epochs

    def phase_at(self, epoch, order):
        """The supernet's phase during `epoch`: the layer in pair training, or -1."""
        offset = epoch - self.warmup_epochs
        step, within = divmod(offset, 2 * self.layer_epochs)
        if self.assignment != "cluster" or offset < 0 or step >= len(order) or within >= self.layer_epochs:
            return -1
        return int(order[step])

    def on_train_begin(self, logs=None):
        supernet = self.model
        from kerasnas.dcnas.supernet import DCNASSupernet

        if not isinstance(supernet, DCNASSupernet):
            raise ValueError(
                "Invalid value for the model. Expected a kerasnas.dcnas.DCNASSupernet. "
                f"Received: {type(supernet).__name__}"
            )
        if supernet.copies > 1 and self.assignment == "cluster":
            stuck = [supernet.space.labels[l] for l in range(len(supernet.layer_order)) if not supernet._pairable[l].any()]
            if stuck:
                raise ValueError(
                    "Invalid value for argument `pool_size`. Expected a pool in which two "
                    f"members share an option at every layer; none do at {stuck}."
                )

    def on_epoch_begin(self, epoch, logs=None):
        supernet = self.model
        if supernet.copies == 1:  # global sharing: SPOS throughout
            supernet.phase.assign(-1)
            return
        order = supernet.layer_order
        decided = supernet.decided()
        for step, layer in enumerate(order):
            if epoch >= self.decision_epoch(step) and not decided[layer]:
                self.decide(layer)
        supernet.phase.assign(self.phase_at(epoch, order))

    # === Decisions ===
    def decide(self, layer):
        """Sets the sharing states of every pool member at `layer`."""
        supernet = self.model
        pool = supernet._pool_numpy
        states = ops.convert_to_numpy(supernet.states).copy()
        rng = np.random.default_rng([self.seed, int(layer)])
        if self.assignment == "random":
            states[:, layer] = rng.integers(supernet.copies, size=len(pool))
            supernet.states.assign(states)
            self._record({"layer": supernet.space.labels[layer], "assignment": "random"})
            return
        batches = list(self.data.take(self.feature_steps))
        features = self.pool_features(layer, batches)
        summary = {"layer": supernet.space.labels[layer], "options": {}}
        for option in range(supernet.space.num_options[layer]):
            members = np.flatnonzero(pool[:, layer] == option)
            if not len(members):
                continue
            clusters = self.cluster(layer, option, features[members], rng)
            copies = self.assign_copies(layer, members, clusters, batches, rng)
            states[members, layer] = copies[clusters]
            summary["options"][supernet.space.choices[supernet.space.labels[layer]][option]] = {
                "members": int(len(members)),
                "per_copy": np.bincount(copies[clusters], minlength=supernet.copies).tolist(),
            }
        supernet.states.assign(states)
        self._record(summary)
        if self.verbose:
            print(f"DCNAS: layer {summary['layer']} decided: {summary['options']}")

    def _record(self, summary):
        self.decisions.append(summary)
        if self.log_path is not None:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as f:
                f.write(json.dumps(summary) + "\n")

    def matching_matrix(self, layer, option, features):
        """`lambda_ij` of the (layer, option) meta network between the rows
        of `features` (`(n, width)` pooled inputs), in float64: a meta
        network early in training separates architectures by less than
        float32 resolves around 0.5."""
        supernet = self.model
        width = supernet._widths[layer]
        kernel = ops.convert_to_numpy(supernet.meta_kernel)[layer, option, :width].astype("float64")
        bias = float(ops.convert_to_numpy(supernet.meta_bias)[layer, option])
        score = np.asarray(features, "float64")[:, :width] @ kernel
        return 1.0 / (1.0 + np.exp(-(score[:, None] - score[None, :] + bias)))

    def cluster(self, layer, option, features, rng):
        """Cluster index (`[0, M)`) per member: K-means on the rows of the
        matching-degree matrix (each member its own cluster if fewer than M)."""
        count = len(features)
        copies = self.model.copies
        if count <= copies:
            return np.arange(count)
        matrix = self.matching_matrix(layer, option, features)
        # Columns standardized (DCNAS-style): the clusters then depend on how
        # the meta network orders members, not on how far it has learned.
        spread = matrix.std(axis=0)
        matrix = (matrix - matrix.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        from sklearn.cluster import KMeans  # imported here: kerasnas loads without it

        seed = int(rng.integers(2**31))
        # A meta network that does not tell members apart (e.g. one that
        # never trained) gives one cluster: they all share a copy.
        distinct = len(np.unique(np.round(matrix, 9), axis=0))
        if distinct == 1:
            return np.zeros(count, "int64")
        kmeans = KMeans(n_clusters=min(copies, distinct), n_init=10, random_state=seed)
        return kmeans.fit_predict(matrix)

    def assign_copies(self, layer, members, clusters, batches, rng):
        """Eq. 7: the copy of each cluster, distinct copies minimizing the
        representatives' summed mean loss."""
        supernet = self.model
        num_clusters = int(clusters.max()) + 1
        cost = np.zeros((num_clusters, supernet.copies))
        for c in range(num_clusters):
            group = members[clusters == c]
            chosen = rng.choice(group, size=min(self.representatives, len(group)), replace=False)
            for copy in range(supernet.copies):
                cost[c, copy] = np.mean([self.loss(member, layer, copy, batches) for member in chosen])
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost)
        assigned = np.zeros(num_clusters, "int64")
        assigned[rows] = cols
        return assigned

    def _arch_input(self, member, layer=None, copy=None):
        """Path + copies of pool `member` (`copy` at `layer` if given). A
        member's sharing state is its own row of the states (what
        `sharing_state` finds for it, without searching the pool); an
        undecided layer uses copy 0."""
        supernet = self.model
        path = supernet._pool_numpy[member]
        state = ops.convert_to_numpy(supernet.states[member])
        copies = np.where(state >= 0, state, 0).astype("int32")
        if layer is not None:
            copies[layer] = copy
        return np.concatenate([path, copies]).astype("int32")

    def pool_features(self, layer, batches):
        """`(N, width)`: every pool member's pooled input of `layer`."""
        function = self._function("_feature_function", features=True)
        width = self.model._widths[layer]
        rows = []
        for member in range(len(self.model._pool_numpy)):
            arch = tf.constant(self._arch_input(member))
            values = [ops.convert_to_numpy(function(b[0], b[1], arch))[layer, :width] for b in batches]
            rows.append(np.mean(values, axis=0))
        return np.asarray(rows)

    def loss(self, member, layer, copy, batches):
        """Mean training-mode loss of pool `member` with `copy` at `layer`."""
        function = self._function("_loss_function", features=False)
        arch = tf.constant(self._arch_input(member, layer, copy))
        return float(np.mean([float(function(b[0], b[1], arch)) for b in batches]))

    def _function(self, attribute, features):
        supernet = self.model
        function = getattr(self, attribute, None)
        if function is not None and function.supernet is supernet:
            return function

        def run(x, y, arch):
            with moving_stats_gate(tf.constant(0.0)):
                y_pred = supernet.network([x, arch], training=True)
            if features:
                return supernet.pooled_features()
            return supernet._compute_loss(x=x, y=y, y_pred=y_pred, training=False)

        run = supernet.graph_function(run)
        run.supernet = supernet
        setattr(self, attribute, run)
        return run
