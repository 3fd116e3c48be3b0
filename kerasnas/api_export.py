"""The one decorator that gives a kerasnas symbol its public name.

As in keras-hub, exporting a class also registers it with Keras'
serialization registry, so everything that is exported reloads from a
`.keras` file without `custom_objects`.
"""

import inspect

import keras


def kerasnas_export(path):
    """Marks a class or function as public API under `path`.

    Args:
        path: the public name, e.g. `"kerasnas.layers.Choice"`.
    """

    def decorator(symbol):
        symbol._kerasnas_api_name = path
        if hasattr(symbol, "get_config") or inspect.isfunction(symbol):
            name = path.rsplit(".", 1)[-1]
            keras.saving.register_keras_serializable(
                package="kerasnas", name=name
            )(symbol)
        return symbol

    return decorator
