"""Perturbation-based architecture selection (DARTS-PT) and its baselines."""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.callbacks.epoch_checkpoint import EpochCheckpoint
from kerasnas.callbacks.epoch_checkpoint import atomic_write
from kerasnas.darts.supernet import DartsSupernet
from kerasnas.darts.supernet import paired
from kerasnas.timing import running_time

CRITERIA = ("accuracy", "loss")
METHODS = ("pt", "magnitude")


@kerasnas_export("kerasnas.darts.argmax_architecture")
def argmax_architecture(supernet):
    """Plain DARTS selection: the space's argmax rule on α, no tuning."""
    return supernet.derive()


@kerasnas_export("kerasnas.darts.PerturbationSelector")
class PerturbationSelector:
    """DARTS-PT's progressive selection on a trained `DartsSupernet`.

    At each decision event an undecided choice (edge) is picked (seeded
    random order, the reference's `edge_decision='random'`) and decided:
    `method="pt"` masks each allowed op in turn (its weight exactly 0, the
    others unchanged), evaluates the supernet on the whole `valid_data` with
    training-mode BN (batch statistics; the moving statistics are updated
    as a side effect, as in the reference) and keeps the op whose removal
    hurts most (`criterion="accuracy"`: lowest accuracy; `"loss"`: highest
    loss; ties keep the first op); `method="magnitude"` (PT-Mag, the
    ablation) keeps the op of largest α instead. The decision becomes a
    one-hot projection. Between events the supernet is tuned on
    `train_data` (weights, and α unless the supernet fixes it) with the
    reference's constant SGD lr 0.0025, momentum 0.9, and the supernet's
    coupled weight decay.

    Schedule (reference `pt_project`): events at the tuning epochs `e` with
    `e % interval == 0` or `e == tune_epochs - 1`, one per undecided choice;
    default `tune_epochs = interval * (num_choices - 1)` (NAS-Bench-201:
    25 epochs for 6 edges, the last decided at epoch 24 and tuned one more
    epoch). Spaces with a topology step (DARTS) add it through
    `space.selection_groups()`.

    One trace serves every perturbation (masks are variables). With
    `directory` the selection checkpoints after every tuning epoch and
    `run()` resumes after a kill with the same result as an uninterrupted
    run.

    Args:
        supernet: a trained, compiled `kerasnas.darts.DartsSupernet`.
        valid_data: dataset of `(x, y)` batches: the whole split is
            evaluated for every candidate op.
        train_data: dataset of `(x, y)` batches for the tuning, or a
            callable `epoch -> dataset` (e.g. an epoch-seeded augmentation,
            which a resumed run reproduces).
        alpha_data: the batches of α's updates during the tuning (dataset
            or callable, like `train_data`); default `valid_data`.
        method: `"pt"` or `"magnitude"`.
        criterion: `"accuracy"` or `"loss"` (PT only).
        interval: tuning epochs between decisions (reference 5).
        tune_epochs: total tuning epochs (default from `interval`).
        learning_rate, momentum: the tuning SGD (reference 0.0025, 0.9).
        seed: seed of the edge order.
        directory: checkpoint directory, or None.
        callbacks: extra callbacks of the tuning `fit` calls.
        verbose: print each decision.
    """

    def __init__(
        self,
        supernet,
        valid_data,
        train_data=None,
        alpha_data=None,
        method="pt",
        criterion="accuracy",
        interval=5,
        tune_epochs=None,
        learning_rate=0.0025,
        momentum=0.9,
        seed=0,
        directory=None,
        callbacks=None,
        verbose=False,
    ):
        if not isinstance(supernet, DartsSupernet):
            raise ValueError(
                "Invalid value for argument `supernet`. Expected a "
                f"kerasnas.darts.DartsSupernet. Received: {type(supernet).__name__}"
            )
        if method not in METHODS:
            raise ValueError(
                f"Invalid value for argument `method`. Expected one of {list(METHODS)}. "
                f"Received: method={method!r}"
            )
        if criterion not in CRITERIA:
            raise ValueError(
                f"Invalid value for argument `criterion`. Expected one of "
                f"{list(CRITERIA)}. Received: criterion={criterion!r}"
            )
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(
                "Invalid value for argument `interval`. Expected a positive int. "
                f"Received: interval={interval!r}"
            )
        self.supernet = supernet
        self.valid_data = valid_data
        self.train_data = train_data
        self.alpha_data = valid_data if alpha_data is None else alpha_data
        self.method = method
        self.criterion = criterion
        self.interval = interval
        self.seed = seed
        self.groups = self._groups()
        events = len(self.groups)
        self.tune_epochs = interval * (events - 1) if tune_epochs is None else tune_epochs
        if not isinstance(self.tune_epochs, int) or self.tune_epochs < 0:
            raise ValueError(
                "Invalid value for argument `tune_epochs`. Expected an int >= 0. "
                f"Received: tune_epochs={tune_epochs!r}"
            )
        if self.tune_epochs and train_data is None:
            raise ValueError(
                "Invalid value for argument `train_data`. Expected a dataset for "
                f"the {self.tune_epochs} tuning epochs. Received: None"
            )
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.directory = None if directory is None else os.fspath(directory)
        self.callbacks = list(callbacks or [])
        self.verbose = verbose
        self.log = []
        # Running seconds of each tuning epoch (its decisions and its fit)
        # and of the decisions after the last one, over every process
        # that worked on this selection (saved beside the log).
        self.epoch_seconds = []
        self.final_seconds = None
        self._eval_function = None

    # === Schedule ===
    def _groups(self):
        """The decision events in order: each a list of labels decided
        together (seeded random order; DARTS decides a normal and a reduce
        edge in one event)."""
        space = self.supernet.space
        rng = np.random.default_rng(self.seed)
        groups = space.selection_groups(rng)
        if groups is not None:
            return groups
        decided = ops.convert_to_numpy(self.supernet.decided)
        labels = [l for i, l in enumerate(space.labels) if decided[i] == 0]
        return [[labels[i]] for i in rng.permutation(len(labels))]

    def _event_epochs(self):
        epochs = [
            e for e in range(self.tune_epochs)
            if e % self.interval == 0 or e == self.tune_epochs - 1
        ]
        return epochs[: len(self.groups)]

    # === Evaluation of a perturbation ===
    def _make_eval_function(self):
        supernet = self.supernet
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

        def evaluate(x, y):
            logits = supernet.network([x, supernet.mixing_weights()], training=True)
            y = tf.cast(tf.reshape(y, (-1,)), "int64")
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), y), "float32"))
            return correct, loss_fn(y, logits), tf.cast(tf.shape(y)[0], "float32")

        return supernet.graph_function(evaluate)

    def evaluate(self):
        """`(accuracy, mean loss)` of the current weights and masks on the
        whole validation split, training-mode BN."""
        if self._eval_function is None:
            self._eval_function = self._make_eval_function()
        correct = total = count = 0.0
        for batch in self.valid_data:
            c, l, n = self._eval_function(batch[0], batch[1])
            correct, total, count = correct + float(c), total + float(l), count + float(n)
        return correct / count, total / count

    def _score(self, perturbation):
        self.supernet.perturbation.assign(perturbation)
        try:
            accuracy, loss = self.evaluate()
        finally:
            self.supernet.perturbation.assign(np.ones_like(perturbation))
        # Higher = removing it hurts more.
        return -accuracy if self.criterion == "accuracy" else loss

    def select_op(self, label):
        """Decides `label`: returns `(option, {option: score})`."""
        supernet = self.supernet
        i = supernet.space.labels.index(label)
        options = supernet.space.choices[label]
        mask = supernet.get_mask()[label]
        allowed = [k for k, o in enumerate(options) if o in mask]
        if self.method == "magnitude":
            weights = supernet.alphas()[label]
            scores = {options[k]: weights[options[k]] for k in allowed}
        else:
            base = np.ones(supernet.perturbation.shape, "float32")
            scores = {}
            for k in allowed:
                perturbation = base.copy()
                perturbation[i, k] = 0.0
                scores[options[k]] = self._score(perturbation)
        best = max(scores, key=lambda o: (scores[o], -options.index(o)))
        supernet.set_projection(label, best)
        return best, scores

    def select_edges(self, group):
        """Topology selection of node `group` (`"{cell_type}:{node}"`):
        while the node has more than 2 inputs, prunes the one whose removal
        hurts least (PT: highest accuracy / lowest loss with its whole row
        zeroed, ties to the later edge as the reference's `project_edge`;
        magnitude: the smallest softmax(α) of its decided op). Returns
        `(kept labels, [{label: score} per round])`."""
        supernet = self.supernet
        cell_type, node = group.split(":")
        labels = [f"{cell_type}_{int(node)}<-{j}" for j in range(int(node))]
        weights = ops.convert_to_numpy(supernet.mixing_weights())
        index = {l: supernet.space.labels.index(l) for l in labels}
        remaining = [l for l in labels if weights[index[l]].any()]
        if self.method == "magnitude":
            alpha = ops.convert_to_numpy(supernet.alpha_weights())
        rounds = []
        while len(remaining) > 2:
            scores = {}
            for label in remaining:
                i = index[label]
                if self.method == "magnitude":
                    scores[label] = float(alpha[i, int(np.argmax(weights[i]))])
                else:
                    perturbation = np.ones(supernet.perturbation.shape, "float32")
                    perturbation[i] = 0.0
                    scores[label] = self._score(perturbation)
            # Least harmful (PT) or weakest (magnitude); ties: the later edge.
            removed = min(reversed(remaining), key=lambda l: scores[l])
            supernet.set_projection(removed, None)
            remaining.remove(removed)
            rounds.append(scores)
        return remaining, rounds

    # === The loop ===
    def run(self):
        """Runs (or resumes) the selection; returns the architecture."""
        supernet = self.supernet
        start = self._restore()
        if start == 0:
            self._compile_for_tuning()
        event_epochs = self._event_epochs()
        events = dict(zip(event_epochs, self.groups))
        checkpoint = None if self.directory is None else EpochCheckpoint(
            os.path.join(self.directory, "checkpoints")
        )
        for epoch in range(start, self.tune_epochs):
            began = running_time()
            if epoch in events:
                self._decide(events[epoch], epoch)
            callbacks = list(self.callbacks) + ([checkpoint] if checkpoint else [])
            data = _at_epoch(self.train_data, epoch)
            if not supernet.fix_alpha:
                data = paired(data, _at_epoch(self.alpha_data, epoch))
            supernet.fit(data, epochs=epoch + 1, initial_epoch=epoch, verbose=0, callbacks=callbacks)
            self.epoch_seconds.append(running_time() - began)
            self._save_log()
        began = running_time()
        for group in self.groups[len(event_epochs):]:
            self._decide(group, self.tune_epochs)
        self.final_seconds = running_time() - began
        self._save_log()
        return supernet.derive()

    @property
    def seconds(self):
        """Running seconds of the whole selection, resumed processes
        included (its tuning epochs with their decisions, and the decisions
        after them); None for a selection resumed from files that lack
        them, or not finished."""
        seconds = self.epoch_seconds
        if self.final_seconds is None or len(seconds) != self.tune_epochs or None in seconds:
            return None
        return float(sum(seconds) + self.final_seconds)

    def _decide(self, group, epoch):
        for label in group:
            if ":" in label:  # a node: topology selection
                kept, rounds = self.select_edges(label)
                entry = {"epoch": epoch, "label": label, "kept": kept, "scores": rounds}
                self.log.append(entry)
                if self.verbose:
                    print(f"[{self.method}] epoch {epoch}: node {label} keeps {kept}")
                continue
            option, scores = self.select_op(label)
            entry = {"epoch": epoch, "label": label, "option": option, "scores": scores}
            self.log.append(entry)
            if self.verbose:
                print(f"[{self.method}] epoch {epoch}: {label} -> {option}  {scores}")

    def _compile_for_tuning(self):
        supernet = self.supernet
        supernet.compile(
            optimizer=keras.optimizers.SGD(self.learning_rate, momentum=self.momentum),
            loss=supernet.loss,
            arch_optimizer=supernet.arch_optimizer,
        )

    def _log_path(self):
        return os.path.join(self.directory, "selection.json")

    def _save_log(self):
        if self.directory is None:
            return
        text = json.dumps(
            {"method": self.method, "criterion": self.criterion, "log": self.log,
             "epoch_seconds": self.epoch_seconds, "final_seconds": self.final_seconds},
            indent=1,
        )
        atomic_write(self._log_path(), lambda f: f.write(text.encode()))

    def _restore(self):
        """The first tuning epoch to run (0 without a checkpoint)."""
        if self.directory is None or not os.path.exists(self._log_path()):
            return 0
        self._compile_for_tuning()
        checkpoint = EpochCheckpoint(os.path.join(self.directory, "checkpoints"))
        epoch = checkpoint.restore(self.supernet)
        with open(self._log_path()) as f:
            saved = json.load(f)
        self.log = [e for e in saved["log"] if e["epoch"] < epoch]
        seconds = saved.get("epoch_seconds") or []
        # Files from before the seconds were saved: unknown (`seconds` None).
        self.epoch_seconds = list(seconds[:epoch]) if len(seconds) >= epoch else [None] * epoch
        return epoch


def _at_epoch(data, epoch):
    return data(epoch) if callable(data) else data

