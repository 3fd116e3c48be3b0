"""Complete, atomic per-epoch training checkpoints for exact resumption."""

import json
import os
import re

import keras
import numpy as np

from kerasnas.api_export import kerasnas_export

_FORMAT = "kerasnas.EpochCheckpoint/1"
_FILE = re.compile(r"^epoch_(\d+)\.npz$")


@kerasnas_export("kerasnas.callbacks.EpochCheckpoint")
class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the complete training state at the end of every epoch.

    A checkpoint holds every model variable (`model.variables`: weights, BN
    statistics, non-trainable state such as a supernet's `active_path` and
    the state of every `SeedGenerator`), every optimizer variable (slots and
    `iterations`, hence the position in a learning-rate schedule), the
    number of completed epochs and the history of the epoch logs so far.
    Restoring it into the same, freshly compiled model continues training
    bit-identically, provided the data of each epoch only depends on the
    epoch number (see `kerasnas.recipes.nb201_spos.train_dataset`).

    Each checkpoint is one file `epoch_{N:05d}.npz` (N = completed epochs)
    written to a temporary file and renamed into place, so an interrupted
    run never leaves a truncated checkpoint. `history.json` (the same
    history, human-readable) is replaced the same way. Only the `keep` most
    recent checkpoints are kept.

    Args:
        directory: the checkpoint directory (created if needed).
        keep: positive int, the number of checkpoints to keep.
        state: more objects whose `variables` belong in the checkpoint,
            e.g. a `kerasnas.sampling.ImportanceDataSampler` (its drawn
            indices live outside the model).

    Example:

    ```python
    checkpoint = kerasnas.callbacks.EpochCheckpoint("runs/x/checkpoints")
    model.compile(...)
    initial_epoch = checkpoint.restore(model)  # 0 if there is none yet
    model.fit(ds, epochs=10, initial_epoch=initial_epoch,
              callbacks=[checkpoint])
    checkpoint.history  # {"loss": [...10 values], ...}
    ```
    """

    def __init__(self, directory, keep=2, state=()):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(
                "Invalid value for argument `keep`. Expected a positive int. "
                f"Received: keep={keep!r}"
            )
        super().__init__()
        self.directory = os.fspath(directory)
        self.keep = keep
        self.state = list(state)
        self.history = {}

    def _state_variables(self):
        return [v for owner in self.state for v in owner.variables]

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(_to_json_number(value))
        save_checkpoint(self.model, self.directory, epoch + 1, self.history, self._state_variables())
        if is_chief(self.model):
            for path in list_checkpoints(self.directory)[: -self.keep]:
                os.remove(path)

    def restore(self, model):
        """Restores the latest checkpoint of `directory` into `model`.

        Call it after `compile()`. Also restores `self.history`.

        Args:
            model: the compiled model to restore into.

        Returns:
            The number of completed epochs, i.e. the `initial_epoch` to pass
            to `fit` (0 when the directory holds no checkpoint).
        """
        epoch, self.history = load_checkpoint(model, self.directory, self._state_variables())
        return epoch

    def get_config(self):
        return {"directory": self.directory, "keep": self.keep}


@kerasnas_export("kerasnas.callbacks.restore_checkpoint")
def restore_checkpoint(model, directory):
    """Restores the latest `EpochCheckpoint` of `directory` into `model`.

    Args:
        model: a compiled model, the same architecture as the one saved.
        directory: the checkpoint directory of an `EpochCheckpoint`.

    Returns:
        The number of completed epochs (the `initial_epoch` to pass to
        `fit`), or 0 if `directory` holds no checkpoint.
    """
    return load_checkpoint(model, directory)[0]


def list_checkpoints(directory):
    """Paths of the checkpoints of `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), m.group(0)) for m in map(_FILE.match, os.listdir(directory)) if m]
    return [os.path.join(directory, name) for _, name in sorted(found)]


def latest_checkpoint(directory):
    """Path of the most recent checkpoint of `directory`, or None."""
    paths = list_checkpoints(directory)
    return paths[-1] if paths else None


def save_checkpoint(model, directory, epoch, history, state_variables=()):
    """Writes `epoch_{epoch:05d}.npz` (and `history.json`) atomically.

    Under `tf.distribute.MultiWorkerMirroredStrategy` every worker calls it
    (reading the variables takes part in collectives) and only the chief
    writes: `directory` must be one every worker reads (a shared file
    system), as `restore` reads it on every worker.

    Returns:
        The path of the checkpoint.
    """
    if is_chief(model):
        os.makedirs(directory, exist_ok=True)
    optimizer = _optimizer(model)
    model_variables, optimizer_variables = model.variables, optimizer.variables
    state_variables = list(state_variables) + _training_state(model)
    meta = {
        "format": _FORMAT,
        "epoch": int(epoch),
        "history": history,
        "model_variables": [v.path for v in model_variables],
        "optimizer_variables": [v.path for v in optimizer_variables],
        "state_variables": [_name(v) for v in state_variables],
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    groups = (("model", model_variables), ("optimizer", optimizer_variables), ("state", state_variables))
    for prefix, variables in groups:
        for k, variable in enumerate(variables):
            arrays[f"{prefix}_{k:05d}"] = variable.numpy()
    path = os.path.join(directory, f"epoch_{epoch:05d}.npz")
    if not is_chief(model):
        # Multi-worker training: every worker read the variables above (reads
        # of on-read variables are collectives), only the chief writes.
        return path
    atomic_write(path, lambda f: np.savez(f, **arrays))
    text = json.dumps({"epoch": int(epoch), "history": history}, indent=1)
    atomic_write(os.path.join(directory, "history.json"), lambda f: f.write(text.encode()))
    return path


def is_chief(model):
    """Whether this process writes checkpoints: always, except on the
    non-chief workers of a multi-worker strategy."""
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None:
        return True
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def _training_state(model):
    """Training state a model keeps outside its variables and optimizer
    (`Supernet.training_state_variables`, e.g. DARTS' α optimizer)."""
    hook = getattr(model, "training_state_variables", None)
    return list(hook()) if hook is not None else []


def _name(variable):
    return getattr(variable, "path", None) or variable.name


def load_checkpoint(model, directory, state_variables=()):
    """Restores the latest checkpoint of `directory` into the compiled `model`.

    Variables are matched by position in `model.variables` and
    `optimizer.variables` (their paths may differ between processes); the
    counts and shapes must agree, or nothing is restored.

    Returns:
        `(epoch, history)`: the number of completed epochs and the history
        dict; `(0, {})` if the directory holds no checkpoint.
    """
    optimizer = _optimizer(model)
    path = latest_checkpoint(directory)
    if path is None:
        return 0, {}
    if not optimizer.built:
        optimizer.build(getattr(model, "network_variables", model.trainable_variables))
    groups = (
        ("model", model.variables),
        ("optimizer", optimizer.variables),
        ("state", list(state_variables) + _training_state(model)),
    )
    with np.load(path, allow_pickle=False) as contents:
        meta = json.loads(str(contents["meta"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"Unknown checkpoint format in {path}: {meta.get('format')!r}.")
        values = {}
        for prefix, variables in groups:
            saved = meta.get(f"{prefix}_variables", [])
            values[prefix] = [contents[f"{prefix}_{k:05d}"] for k in range(len(saved))]
            _check_compatible(path, prefix, saved, values[prefix], variables)
    for prefix, variables in groups:
        for variable, value in zip(variables, values[prefix]):
            variable.assign(value)
    return int(meta["epoch"]), meta["history"]


def _optimizer(model):
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "Invalid value for argument `model`. Expected a compiled model "
            "(the optimizer state is part of a checkpoint): call `compile()` "
            f"first. Received: model={getattr(model, 'name', model)!r}"
        )
    return model.optimizer


def _check_compatible(path, prefix, saved_paths, values, variables):
    problem = None
    if len(values) != len(variables):
        problem = f"{len(values)} {prefix} variables saved, the model has {len(variables)}"
    else:
        for name, value, variable in zip(saved_paths, values, variables):
            if tuple(value.shape) != tuple(variable.shape):
                problem = (
                    f"{prefix} variable {_name(variable)!r} has shape {tuple(variable.shape)}, "
                    f"the checkpoint's {name!r} has shape {value.shape}"
                )
                break
    if problem:
        raise ValueError(
            f"Cannot restore {path}: {problem}. Build and compile the model "
            "exactly as the run that wrote the checkpoint."
        )


def atomic_write(path, write):
    """Calls `write(binary file)` on a temporary file, then renames it."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _to_json_number(value):
    value = np.asarray(value)
    return value.item() if value.size == 1 else value.tolist()
