"""keras-tuner tuners that score architectures without training them."""

import json
import os
import time

import keras
import keras_tuner
import tensorflow as tf
from keras_tuner.engine import base_tuner
from keras_tuner.engine import trial as trial_module

from kerasnas.api_export import kerasnas_export
from kerasnas.search.oracles import ArchOracle

COMPLETED = trial_module.TrialStatus.COMPLETED


class ArchTuner(base_tuner.BaseTuner):
    """Base class: a `BaseTuner` whose trials are architectures.

    There is no hypermodel and nothing is built per trial (keras-tuner's
    `Tuner` would clear the session and rebuild a model for every trial).
    Subclasses implement `evaluate(arch) -> {metric: value}`.

    Args:
        oracle: a `kerasnas.search` oracle (`EvolutionOracle`,
            `RandomArchOracle`).
        objective: the metric to optimize, one of `objectives`; it becomes
            the oracle's objective. None keeps the oracle's.
        directory, project_name, overwrite: as `keras_tuner` tuners: trials
            and the oracle's state are saved under
            `directory/project_name`, and with `overwrite=False` an
            interrupted search resumes from there.
        **kwargs: passed to `keras_tuner.engine.base_tuner.BaseTuner`.
    """

    #: Metric names `evaluate` reports (the objective must be one of them).
    objectives = ()

    def __init__(self, oracle, objective=None, directory=None, project_name=None, overwrite=False, **kwargs):
        if not isinstance(oracle, ArchOracle):
            raise ValueError(
                "Invalid value for argument `oracle`. Expected a kerasnas.search "
                "oracle (EvolutionOracle, RandomArchOracle). "
                f"Received: oracle={oracle!r}"
            )
        if objective is not None:
            oracle.objective = _objective(objective, self.objectives)
        else:
            _objective(oracle.objective, self.objectives)
        self.space = oracle.space
        self.trial_seconds = []
        self._progress = None
        super().__init__(
            oracle=oracle,
            hypermodel=None,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite,
            **kwargs,
        )

    # === Search ===
    def search(self, verbose=1):
        """Runs the search until the oracle stops.

        Args:
            verbose: 0 silent, 1 a progress bar, 2 keras-tuner's per-trial
                display.
        """
        if not self._is_worker():
            self.oracle.verbose = 1 if verbose >= 2 else 0
        self._verbose = verbose
        try:
            super().search()
        finally:
            self._close()
            if self._progress is not None:
                self._progress = None

    def on_search_begin(self):
        super().on_search_begin()
        self._open()
        if self._verbose == 1 and not self._is_worker():
            total = self.oracle.max_trials
            if total is None and self.oracle.feasible_count is not None:
                total = self.oracle.feasible_count
            self._progress = keras.utils.Progbar(total, unit_name="trial", stateful_metrics=["best"])
            self._progress.update(len(self.oracle.end_order))

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self._progress is not None:
            best = self.oracle.get_best_trials(1)
            values = [("best", best[0].score)] if best and best[0].score is not None else None
            self._progress.update(len(self.oracle.end_order), values=values)

    def run_trial(self, trial, *args, **kwargs):
        start = time.perf_counter()
        metrics = self.evaluate(self.space.validate(dict(trial.hyperparameters.values)))
        self.trial_seconds.append(time.perf_counter() - start)
        return {name: float(value) for name, value in metrics.items()}

    def evaluate(self, arch):
        """`{metric: value}` of one architecture."""
        raise NotImplementedError

    def _open(self):
        """Acquires what trials need (called when a search begins)."""

    def _close(self):
        """Releases it (called when a search ends, also on errors)."""

    # === Results ===
    def get_best_architectures(self, num_archs=1):
        """The best architectures found so far, best first (dicts)."""
        trials = self.oracle.get_best_trials(num_archs)
        return [
            self.space.validate(dict(t.hyperparameters.values))
            for t in trials
            if t.status == COMPLETED
        ]

    def results(self):
        """Every completed trial as `{"trial_id", "arch", "score", "metrics"}`,
        in the order trials ended."""
        out = []
        for trial in self.oracle.completed_trials():
            out.append(
                {
                    "trial_id": trial.trial_id,
                    "arch": self.space.validate(dict(trial.hyperparameters.values)),
                    "score": trial.score,
                    "metrics": {
                        name: trial.metrics.get_last_value(name)
                        for name in trial.metrics.metrics
                    },
                }
            )
        return out

    def save_model(self, trial_id, model, step=0):
        """Nothing is trained per trial: nothing to save."""

    def load_model(self, trial):
        raise NotImplementedError(f"{type(self).__name__} trains no model per trial")


@kerasnas_export("kerasnas.search.OneShotTuner")
class OneShotTuner(ArchTuner):
    """Searches a trained supernet: each trial scores one architecture
    with the supernet's weights, without training and without retracing.

    A trial fixes the supernet's path to the trial's architecture,
    recalibrates the BN statistics on `bn_calibration_steps` batches of
    `bn_calibration_data` (the SPOS protocol; the supernet's own statistics
    are restored when the search ends) and evaluates on `validation_data`,
    kept in memory. One traced function serves every trial, also under
    `tf.distribute.MirroredStrategy` (build and compile the supernet in the
    strategy's scope). In keras-tuner's chief/worker mode
    (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`)
    the chief serves the oracle and each worker scores architectures on its
    own copy of the supernet.

    Args:
        supernet: a trained `kerasnas.Supernet`, or a
            `kerasnas.fewshot.FewShotSupernet` (each trial is scored on its
            architecture's leaf).
        oracle: a `kerasnas.search` oracle over `supernet.space`.
        validation_data: a finite, batched `tf.data.Dataset` of `(x, y)`.
        bn_calibration_data: a dataset of training batches, or None.
        bn_calibration_steps: calibration batches per trial (0: none).
        objective: `"val_accuracy"` (default) or `"val_loss"`.
        directory, project_name, overwrite: see `ArchTuner`.

    Example:

    ```python
    oracle = kerasnas.search.EvolutionOracle(space, max_trials=500, seed=0,
        constraints=kerasnas.search.Constraints(max_flops=100e6))
    tuner = kerasnas.search.OneShotTuner(supernet, oracle, valid_ds,
        bn_calibration_data=train_ds, bn_calibration_steps=20,
        directory="runs/search", project_name="nb201")
    tuner.search()
    best = tuner.get_best_architectures(5)
    tuner.export_best("runs/search/best")   # child.keras + saved_model/
    ```
    """

    objectives = ("val_accuracy", "val_loss")

    def __init__(
        self,
        supernet,
        oracle,
        validation_data,
        bn_calibration_data=None,
        bn_calibration_steps=0,
        objective="val_accuracy",
        directory=None,
        project_name=None,
        overwrite=False,
        **kwargs,
    ):
        from kerasnas.fewshot import FewShotSupernet
        from kerasnas.supernet import Supernet

        few_shot = supernet if isinstance(supernet, FewShotSupernet) else None
        if few_shot is not None:
            supernet = few_shot.supernet
        if not isinstance(supernet, Supernet):
            raise ValueError(
                "Invalid value for argument `supernet`. Expected a kerasnas.Supernet. "
                f"Received: supernet={type(supernet).__name__}"
            )
        if isinstance(oracle, ArchOracle) and oracle.space.choices != supernet.space.choices:
            raise ValueError(
                "Invalid value for argument `oracle`. Expected an oracle over the "
                f"supernet's space {supernet.space!r}. Received: an oracle over {oracle.space!r}"
            )
        if not isinstance(validation_data, tf.data.Dataset):
            raise ValueError(
                "Invalid value for argument `validation_data`. Expected a finite, "
                f"batched tf.data.Dataset. Received: {type(validation_data).__name__}"
            )
        steps = bn_calibration_steps
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(
                "Invalid value for argument `bn_calibration_steps`. Expected an int "
                f">= 0. Received: bn_calibration_steps={steps!r}"
            )
        if steps and not isinstance(bn_calibration_data, tf.data.Dataset):
            raise ValueError(
                "Invalid value for argument `bn_calibration_data`. Expected a "
                "tf.data.Dataset of training batches when bn_calibration_steps > 0. "
                f"Received: {type(bn_calibration_data).__name__}"
            )
        self.supernet = supernet
        self.few_shot = few_shot
        self.validation_data = validation_data
        self.bn_calibration_data = bn_calibration_data
        self.bn_calibration_steps = steps
        self._scorer = None
        self._scorer_object = None
        super().__init__(
            oracle,
            objective=objective,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite,
            **kwargs,
        )

    def _open(self):
        from kerasnas.evaluation.ranking import ArchitectureScorer

        if self._scorer is not None:
            return
        if self._scorer_object is None:
            # Made once: its batches and traced functions serve every search.
            self._scorer_object = ArchitectureScorer(
                self.supernet,
                self.validation_data,
                bn_calibration_data=self.bn_calibration_data,
                bn_calibration_steps=self.bn_calibration_steps,
            )
        self._scorer = self._scorer_object.__enter__()

    def _close(self):
        if self._scorer is not None:
            self._scorer.__exit__(None, None, None)
            self._scorer = None
        if self.few_shot is not None:
            self.few_shot.active = None  # the scorer restored another leaf's statistics

    def evaluate(self, arch):
        if self._scorer is None:
            self._open()
        if self.few_shot is not None:
            self.few_shot.activate_for(arch)  # each trial on its own leaf
        accuracy, loss = self._scorer.score(arch)
        return {"val_accuracy": accuracy, "val_loss": loss}

    def load_model(self, trial):
        """The child of a trial's architecture with the supernet's weights
        (a few-shot tree's: those of the architecture's leaf)."""
        if self.few_shot is not None:
            self.few_shot.activate_for(dict(trial.hyperparameters.values))
        return self.supernet.extract(
            self.space.validate(dict(trial.hyperparameters.values)),
            bn_calibration_data=self.bn_calibration_data,
            bn_calibration_steps=self.bn_calibration_steps,
        )

    def export_best(
        self,
        path,
        rank=0,
        retrain_epochs=0,
        train_data=None,
        validation_data=None,
        optimizer=None,
        loss=None,
        verbose=0,
        **child_options,
    ):
        """Exports the best architecture as `child.keras` + `saved_model/`.

        By default the child carries the supernet's weights (BN statistics
        recalibrated as in the search). With `retrain_epochs > 0` it is
        built from scratch (`space.build_child(arch, **child_options)`) and
        trained on `train_data` for that many epochs — the standard final
        step of a one-shot search.

        Args:
            path: output directory; also gets `architecture.json` (the
                architecture, its search metrics and, with retraining, the
                training history).
            rank: 0 exports the best architecture, 1 the second best, ...
            retrain_epochs: epochs of training from scratch (0: none).
            train_data: training dataset (needed when retraining).
            validation_data: optional validation dataset for the retraining.
            optimizer: retraining optimizer (default SGD 0.025, momentum
                0.9, cosine decay when the dataset's length is known).
            loss: retraining loss (default sparse categorical
                cross-entropy on logits).
            verbose: `fit`'s verbosity.
            **child_options: passed to `space.build_child` when retraining.

        Returns:
            `{"child", "saved_model", "architecture", "arch"}`.
        """
        from kerasnas.evaluation.ranking import arch_key
        from kerasnas.export import save_child
        from kerasnas.recipes.common import write_json

        if not isinstance(rank, int) or rank < 0:
            raise ValueError(
                f"Invalid value for argument `rank`. Expected an int >= 0. Received: rank={rank!r}"
            )
        best = self.get_best_architectures(rank + 1)
        if len(best) <= rank:
            raise ValueError(
                f"Invalid value for argument `rank`. Expected less than the {len(best)} "
                f"completed trials (run `search` first). Received: rank={rank}"
            )
        arch = best[rank]
        if not isinstance(retrain_epochs, int) or retrain_epochs < 0:
            raise ValueError(
                "Invalid value for argument `retrain_epochs`. Expected an int >= 0. "
                f"Received: retrain_epochs={retrain_epochs!r}"
            )
        record = {"arch": arch, "arch_key": arch_key(self.space, arch)}
        trial = self.oracle.get_best_trials(rank + 1)[rank]
        record["search_metrics"] = {
            name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics
        }
        if retrain_epochs:
            if not isinstance(train_data, tf.data.Dataset):
                raise ValueError(
                    "Invalid value for argument `train_data`. Expected a tf.data.Dataset "
                    f"when retrain_epochs > 0. Received: {type(train_data).__name__}"
                )
            child = self.space.build_child(arch, **child_options)
            child.compile(
                optimizer=optimizer or _default_optimizer(train_data, retrain_epochs),
                loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            history = child.fit(
                train_data, epochs=retrain_epochs, validation_data=validation_data, verbose=verbose
            )
            record["retrain_epochs"] = retrain_epochs
            record["retrain_history"] = history.history
        else:
            child = self.load_model(trial)
        paths = save_child(child, path)
        paths["architecture"] = os.path.join(os.fspath(path), "architecture.json")
        write_json(paths["architecture"], record)
        paths["arch"] = arch
        return paths


@kerasnas_export("kerasnas.search.BenchmarkTuner")
class BenchmarkTuner(ArchTuner):
    """Scores architectures by a benchmark's ground truth instead of a
    supernet, so that search algorithms can be compared in seconds.

    Reports `val_accuracy` (the benchmark's validation accuracy, as a
    fraction) and `test_accuracy`; search on the first and judge by the
    second, as the NAS-Bench-201 paper does.

    Args:
        oracle: a `kerasnas.search` oracle over the benchmark's space.
        benchmark: a `kerasnas.benchmarks.NasBench201` (anything with
            `query(arch) -> {"val_acc", "test_acc", ...}` in percent and a
            `space`).
        objective: `"val_accuracy"` (default) or `"test_accuracy"`.
        directory, project_name, overwrite: see `ArchTuner`.
    """

    objectives = ("val_accuracy", "test_accuracy")

    def __init__(self, oracle, benchmark, objective="val_accuracy", directory=None, project_name=None, overwrite=False, **kwargs):
        if not hasattr(benchmark, "query"):
            raise ValueError(
                "Invalid value for argument `benchmark`. Expected a "
                "kerasnas.benchmarks.NasBench201 (with `query(arch)`). "
                f"Received: benchmark={benchmark!r}"
            )
        space = getattr(benchmark, "space", None)
        if isinstance(oracle, ArchOracle) and space is not None and space.choices != oracle.space.choices:
            raise ValueError(
                "Invalid value for argument `oracle`. Expected an oracle over the "
                f"benchmark's space {space!r}. Received: an oracle over {oracle.space!r}"
            )
        self.benchmark = benchmark
        super().__init__(
            oracle, objective=objective, directory=directory,
            project_name=project_name, overwrite=overwrite, **kwargs,
        )

    def evaluate(self, arch):
        truth = self.benchmark.query(arch)
        return {"val_accuracy": truth["val_acc"] / 100.0, "test_accuracy": truth["test_acc"] / 100.0}


def _objective(objective, allowed):
    name = getattr(objective, "name", objective)
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(
            f"Invalid value for argument `objective`. Expected one of {list(allowed)}. "
            f"Received: objective={name!r}"
        )
    if isinstance(objective, keras_tuner.Objective):
        return objective
    return keras_tuner.Objective(name, "min" if name.endswith("loss") else "max")


def _default_optimizer(train_data, epochs):
    steps = int(train_data.cardinality())
    learning_rate = 0.025
    if steps > 0:
        learning_rate = keras.optimizers.schedules.CosineDecay(0.025, decay_steps=steps * epochs)
    return keras.optimizers.SGD(learning_rate, momentum=0.9)
