"""Export of searched architectures as stand-alone models."""

from pathlib import Path

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.export.save_child")
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
