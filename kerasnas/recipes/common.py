"""Helpers shared by the recipes and the `kerasnas` command."""

import json
import os
from pathlib import Path

import keras

from kerasnas.callbacks.epoch_checkpoint import atomic_write
from kerasnas.export import save_child  # noqa: F401 (re-exported for recipes)


def write_json(path, content):
    """Writes `content` as indented JSON, atomically (temp file + rename);
    numpy numbers become Python numbers and NaN becomes null."""
    from kerasnas.evaluation.report import json_safe

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(content), indent=2) + "\n"
    atomic_write(str(path), lambda f: f.write(text.encode()))


def check_same_config(path, config, keys, what):
    """Raises a ValueError naming the keys of `config` that differ from the
    config saved at `path` (a resumed run must repeat its arguments).

    Args:
        path: the saved `config.json` (nothing is checked if it is absent).
        config: the requested config dict.
        keys: the keys that must not change.
        what: the kind of configuration, for the message ("training").
    """
    path = Path(path)
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    changed = {
        key: (saved.get(key), config.get(key)) for key in keys if saved.get(key) != config.get(key)
    }
    if changed:
        raise ValueError(
            f"Cannot resume with a different {what} configuration (key: "
            f"(saved, requested)): {changed}. Pass the same arguments as the "
            "interrupted run."
        )


def load_supernet(path):
    """Loads a `kerasnas.Supernet` saved as `.keras`, or the directory of a
    `kerasnas.fewshot.FewShotSupernet`; raises a clear error."""
    from kerasnas.supernet import Supernet

    if os.path.isfile(os.path.join(path, "tree.json")):  # a few-shot tree's directory
        from kerasnas.fewshot import FewShotSupernet

        return FewShotSupernet.load(path)
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


def scored_on(data, train_split, eval_split, num_images=None):
    """Which images score architectures, for reports and tables.

    Args:
        data: the dataset name or `.npz` path.
        train_split: the split the supernet trained on (`"train"` or
            `"search_train"`).
        eval_split: the split that scores architectures.
        num_images: how many of its images are used (default: all).

    Returns:
        `{"split", "images", "held_out", "label"}`: `held_out` is False when
        the supernet trained on some of the scoring images (`"train"`
        contains both search halves), and `label` says so in words, e.g.
        `"2543 held-out images (search_valid)"`.
    """
    from kerasnas import data as nas_data

    disjoint = {
        ("train", "test"), ("search_train", "test"), ("search_train", "search_valid"),
    }
    held_out = (train_split, eval_split) in disjoint
    total = nas_data.info(data)["num_examples"][eval_split]
    images = total if num_images is None else min(int(num_images), total)
    kind = "held-out" if held_out else "training"
    return {
        "split": eval_split,
        "images": images,
        "held_out": held_out,
        "label": f"{images} {kind} images ({eval_split})",
    }


def drop_option(parser, dest):
    """Removes the option whose destination is `dest` from an argparse
    `parser` built by another recipe (e.g. `--method` where the recipe
    chooses the methods itself)."""
    for action in list(parser._actions):
        if action.dest == dest:
            parser._remove_action(action)
            for option in action.option_strings:
                parser._option_string_actions.pop(option, None)
