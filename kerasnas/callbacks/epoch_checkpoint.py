"""Complete, atomic per-epoch training checkpoints for exact resumption."""

import json
import os
import re
import warnings
import weakref

import keras
import numpy as np

from kerasnas.api_export import kerasnas_export

_FORMAT = "kerasnas.EpochCheckpoint/1"
_FILE = re.compile(r"^epoch_(\d+)\.npz$")
# The `EpochCheckpoint` of each model's running `fit` (see `fit_checkpoint`).
_FIT_CHECKPOINTS = weakref.WeakKeyDictionary()


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
    recent checkpoints are kept. `restore` skips, with a warning, a
    checkpoint it cannot read (truncated or damaged by a copy) and goes on
    from the last readable one.

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

    def on_epoch_begin(self, epoch, logs=None):
        # Lets the same fit's `StopOnNonFiniteLoss` name the last checkpoint.
        _FIT_CHECKPOINTS[self.model] = self

    def on_train_end(self, logs=None):
        if _FIT_CHECKPOINTS.get(self.model) is self:
            del _FIT_CHECKPOINTS[self.model]

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(_to_json_number(value))
        save_checkpoint(self.model, self.directory, epoch + 1, self.history, self._state_variables())
        if is_chief(self.model):
            for path in list_checkpoints(self.directory)[: -self.keep]:
                os.remove(path)

    def restore(self, model):
        """Restores the latest checkpoint of `directory` into `model`.

        Call it after `compile()`. Also restores `self.history`. A
        checkpoint that cannot be read (truncated, damaged) is skipped with
        a warning naming it: the one before it is restored.

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
    """Path of the most recent checkpoint of `directory`, or None (the file
    is not opened: see `latest_readable_checkpoint`)."""
    paths = list_checkpoints(directory)
    return paths[-1] if paths else None


def latest_readable_checkpoint(directory):
    """The checkpoint `restore` would go on from, without restoring it.

    Reads every checkpoint from the latest back to the first readable one
    (the whole file: a damaged one fails here as it would in `restore`),
    silently.

    Args:
        directory: the checkpoint directory.

    Returns:
        `(path, epoch)` of the latest readable checkpoint, or `(None, 0)`
        when `directory` holds no checkpoint.

    Raises:
        ValueError: `directory` holds checkpoints but none is readable.
    """
    found = _read_latest(directory, warn=False)
    if found is None:
        return None, 0
    return found[0], found[1]["epoch"]


def fit_checkpoint(model):
    """The `EpochCheckpoint` that saves the running `fit` of `model`, or
    None: the callback registers itself at each epoch's beginning (a
    `StopOnNonFiniteLoss` forgets an earlier fit's at the training's
    beginning, see `forget_fit_checkpoint`)."""
    return _FIT_CHECKPOINTS.get(model)


def forget_fit_checkpoint(model):
    """Forgets the `EpochCheckpoint` registered for `model` (a fit that
    stopped on an error leaves its own registered)."""
    _FIT_CHECKPOINTS.pop(model, None)


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
    """Restores the latest readable checkpoint of `directory` into the
    compiled `model`.

    Variables are matched by position in `model.variables` and
    `optimizer.variables` (their paths may differ between processes); the
    counts and shapes must agree, or nothing is restored. A checkpoint that
    cannot be read (a truncated or damaged file) is skipped with a warning
    naming it, and the one before it is restored, its own history with it
    (`history.json` is rewritten to match).

    Returns:
        `(epoch, history)`: the number of completed epochs and the history
        dict; `(0, {})` if the directory holds no checkpoint.

    Raises:
        ValueError: the checkpoint does not fit `model`, or `directory`
            holds checkpoints but none is readable.
    """
    optimizer = _optimizer(model)
    found = _read_latest(directory)
    if found is None:
        return 0, {}
    path, meta, contents, skipped = found
    if not optimizer.built:
        optimizer.build(getattr(model, "network_variables", model.trainable_variables))
    groups = (
        ("model", model.variables),
        ("optimizer", optimizer.variables),
        ("state", list(state_variables) + _training_state(model)),
    )
    values = {}
    for prefix, variables in groups:
        saved = meta[f"{prefix}_variables"]
        values[prefix] = [contents[f"{prefix}_{k:05d}"] for k in range(len(saved))]
        _check_compatible(path, prefix, saved, values[prefix], variables)
    for prefix, variables in groups:
        for variable, value in zip(variables, values[prefix]):
            variable.assign(value)
    if skipped and is_chief(model):
        # The skipped checkpoint's history.json is not the restored state's.
        text = json.dumps({"epoch": meta["epoch"], "history": meta["history"]}, indent=1)
        atomic_write(os.path.join(directory, "history.json"), lambda f: f.write(text.encode()))
    return meta["epoch"], meta["history"]


def _read_latest(directory, warn=True):
    """`(path, meta, arrays, skipped)` of the latest checkpoint of
    `directory` that reads whole, with the later ones that do not (a
    warning names them, if `warn`); None when there is no checkpoint.
    Raises a ValueError when no checkpoint reads."""
    paths = list_checkpoints(directory)
    skipped = []
    for path in reversed(paths):
        try:
            meta, arrays = _read(path)
        except _Unreadable as error:
            skipped.append(f"{path} ({error})")
            continue
        if skipped and warn:
            warnings.warn(
                f"Cannot read the checkpoint{'s' if len(skipped) > 1 else ''} "
                f"{', '.join(skipped)}: restoring {path} (after epoch {meta['epoch']}) instead.",
                stacklevel=3,
            )
        return path, meta, arrays, skipped
    if not paths:
        return None
    raise ValueError(
        "Invalid value for argument `directory`. Expected a directory holding "
        f"a readable checkpoint. Received: directory={os.fspath(directory)!r}, "
        f"where no checkpoint reads: {', '.join(skipped)}. Restore them from a "
        "copy, or start the run again (remove them; a recipe: `--overwrite`)."
    )


class _Unreadable(Exception):
    """A checkpoint file that cannot be read whole (its message says why)."""


def _read(path):
    """`(meta, arrays)` of the checkpoint file `path`, every array read.

    Raises `_Unreadable` for a file that numpy, zipfile or json cannot read
    whole (or whose meta lacks what a checkpoint holds), a ValueError for a
    readable checkpoint of an unknown format."""
    try:
        # numpy leaves the file open when it is no zip archive.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as contents:
            meta = json.loads(str(contents["meta"]))
            if meta.get("format") != _FORMAT:
                raise _UnknownFormat(f"Unknown checkpoint format in {path}: {meta.get('format')!r}.")
            meta["epoch"], meta["history"] = int(meta["epoch"]), dict(meta["history"])
            arrays = {}
            for prefix in ("model", "optimizer", "state"):
                saved = meta.setdefault(f"{prefix}_variables", [])
                for k in range(len(saved)):
                    arrays[f"{prefix}_{k:05d}"] = contents[f"{prefix}_{k:05d}"]
    except (_UnknownFormat, MemoryError):
        raise
    # A truncated or overwritten file raises many kinds: zipfile.BadZipFile,
    # zlib.error, EOFError, OSError, ValueError (numpy, json), KeyError...
    except Exception as error:
        detail = " ".join(str(error).split()) or "no detail"
        raise _Unreadable(f"{type(error).__name__}: {detail[:200]}") from error
    return meta, arrays


class _UnknownFormat(ValueError):
    """A readable checkpoint of another format: not damage, not skipped."""


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
