"""Helpers shared by the recipes and the `kerasnas` command."""

import json
import os
from pathlib import Path

import keras

from kerasnas.callbacks.epoch_checkpoint import atomic_write


def save_child(child, directory):
    """Saves a child model as `child.keras` and a `saved_model/` export.

    The SavedModel has one serving endpoint, `serve` (Keras'
    `Model.export`), loadable with `tf.saved_model.load` or
    `keras.layers.TFSMLayer(path, call_endpoint="serve")`.

    Args:
        child: a `keras.Model`.
        directory: the output directory (created if needed).

    Returns:
        `{"child": path of child.keras, "saved_model": path of saved_model/}`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"child": directory / "child.keras", "saved_model": directory / "saved_model"}
    child.save(paths["child"])
    child.export(str(paths["saved_model"]), format="tf_saved_model", verbose=False)
    return {key: str(path) for key, path in paths.items()}


def write_json(path, content):
    """Writes `content` as indented JSON, atomically (temp file + rename);
    numpy numbers become Python numbers and NaN becomes null."""
    from kerasnas.evaluation.report import json_safe

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(content), indent=2) + "\n"
    atomic_write(str(path), lambda f: f.write(text.encode()))


def load_supernet(path):
    """Loads a `kerasnas.Supernet` saved as `.keras`; raises a clear error."""
    from kerasnas.supernet import Supernet

    if not os.path.isfile(path):
        raise ValueError(
            "Invalid value for argument `checkpoint`. Expected the path of a "
            f"supernet saved as .keras. Received: checkpoint={str(path)!r} "
            "(no such file)"
        )
    model = keras.saving.load_model(path)
    if not isinstance(model, Supernet):
        raise ValueError(
            "Invalid value for argument `checkpoint`. Expected a saved "
            f"kerasnas.Supernet. Received: a {type(model).__name__} from {str(path)!r}"
        )
    return model
