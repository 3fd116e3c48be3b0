"""Helpers shared by the recipes and the `kerasnas` command."""

import json
import os
import re
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


def check_same_config(path, config, keys, what, lowerable=()):
    """Raises a ValueError naming the keys of `config` that differ from the
    config saved at `path` (a resumed run must repeat its arguments), but
    for the `lowerable` keys, which may go down (e.g. the learning rate of
    a run that diverged).

    Args:
        path: the saved `config.json` (nothing is checked if it is absent).
        config: the requested config dict.
        keys: the keys that must not change.
        what: the kind of configuration, for the message ("training").
        lowerable: keys of `keys` that may be lowered: to a smaller number,
            or from None (no limit, e.g. no gradient clipping) to a number.

    Returns:
        `[(key, saved, requested)]`: the lowered keys, in `keys` order
        (empty when nothing changed or `path` is absent).
    """
    path = Path(path)
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    changed = {
        key: (saved.get(key), config.get(key)) for key in keys if saved.get(key) != config.get(key)
    }

    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def is_lower(key, old, new):  # a saved None: no limit (a missing key is no value)
        return number(new) and ((old is None and key in saved) or (number(old) and new < old))

    lowered = [
        (key, old, new) for key, (old, new) in changed.items() if key in lowerable and is_lower(key, old, new)
    ]
    refused = {key: values for key, values in changed.items() if key not in {k for k, _, _ in lowered}}
    if refused:
        allowed = [f"`{key}`" for key in lowerable if key in keys]
        hint = f" ({', '.join(allowed)} may only be lowered)" if allowed else ""
        raise ValueError(
            f"Cannot resume with a different {what} configuration (key: "
            f"(saved, requested)): {refused}. Pass the same arguments as the "
            f"interrupted run{hint}."
        )
    return lowered


def _resumable(directory, listed):
    """The checkpoint of `directory` a resumed run goes on from: the latest
    readable one (the latest by name when none reads)."""
    from kerasnas.callbacks.epoch_checkpoint import latest_readable_checkpoint

    try:
        return latest_readable_checkpoint(directory)[0]
    except ValueError:
        return listed[-1]


def load_supernet(path):
    """Loads a `kerasnas.Supernet` saved as `.keras`, or the directory of a
    `kerasnas.fewshot.FewShotSupernet`; raises a clear error."""
    from kerasnas.data.loaders import not_a_zip
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
    problem = not_a_zip(path)  # a .keras file is a zip archive
    if problem:
        raise ValueError(
            "Invalid value for argument `checkpoint`. Expected a supernet saved as "
            f".keras (a zip archive). Received: checkpoint={str(path)!r} ({problem})"
        )
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # Keras raises many kinds for a broken archive
        detail = " ".join(str(error).split())
        missing = re.search(r"Could not locate class '([^']+)'", detail)
        if missing:  # a user's class (e.g. their space): its module is not imported
            detail = (
                f"Could not locate class {missing.group(1)!r}, which it needs. Import the "
                "module that defines it first (`kerasnas --import MODULE ...`)"
            )
        raise ValueError(
            "Invalid value for argument `checkpoint`. Expected a supernet saved as "
            f".keras that this kerasnas can load. Received: checkpoint={str(path)!r} "
            f"({type(error).__name__}: {detail[:300]})"
        ) from error
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


# === Archived runs ===
# A finished run archived without its weights (`archive_runs`) keeps, in
# each checkpoint directory, this record of the checkpoints it had.
ARCHIVED_CHECKPOINTS = "ARCHIVED.json"


def archived_checkpoint(directory):
    """Name of the last checkpoint an archived run's `directory` had (e.g.
    `"epoch_00150.npz"`), or None when it is not an archive."""
    path = Path(directory) / ARCHIVED_CHECKPOINTS
    if not path.is_file():
        return None
    return json.loads(path.read_text())["checkpoints"][-1]


def archive_runs(source, destination):
    """Copies the runs under `source` to `destination` small enough to keep
    in version control, so that a later machine continues or reports them.

    A finished run (a `result.json` in it or above) keeps every file but its
    weights: checkpoints become an `ARCHIVED.json` naming them (enough for
    `--resume` and `--reuse` to treat the run as finished), and `.keras`
    saves are dropped. An unfinished run keeps, per checkpoint directory,
    only its latest checkpoint (what `--resume` continues from) and its
    `.keras` saves (a few-shot tree rebuilds from one). TensorBoard logs,
    `*.log` files, plots (`*.png`: the reports draw them again) and
    comparison locks (`*.lock`) are never copied. Stale files of the
    destination's copy of each run (older checkpoints) are removed.

    Returns:
        `{"finished": [run directories], "unfinished": [...], "bytes": total}`
        of what `destination` now holds.
    """
    import re
    import shutil

    from kerasnas.callbacks.epoch_checkpoint import list_checkpoints

    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise ValueError(
            f"Invalid value for argument `source`. Expected a directory of runs. Received: source={str(source)!r}"
        )
    checkpoint = re.compile(r"^epoch_\d+\.npz$")
    runs = {path.parent for path in source.rglob("result.json")}

    def finished(path):
        return any(parent in runs for parent in path.parents)

    keep, latest, readable = set(), {}, {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or "tensorboard" in relative.parts or path.suffix in (".log", ".png", ".lock"):
            continue
        if checkpoint.match(path.name):
            listed = latest.setdefault(path.parent, list_checkpoints(path.parent))
            if finished(path):
                marker = relative.parent / ARCHIVED_CHECKPOINTS
                if marker not in keep:
                    keep.add(marker)
                    write_json(destination / marker, {"checkpoints": [Path(p).name for p in listed]})
                continue
            if str(path) != readable.setdefault(path.parent, _resumable(path.parent, listed)):
                continue  # an unfinished run keeps the checkpoint it resumes from
        elif path.suffix == ".keras" and finished(path):
            continue
        target = destination / relative
        keep.add(relative)
        if not target.exists() or target.stat().st_size != path.stat().st_size or (
            target.read_bytes() != path.read_bytes()
        ):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    # Older checkpoints and weights of runs that have moved on since the last archive.
    for path in sorted(destination.rglob("*")) if destination.exists() else []:
        relative = path.relative_to(destination)
        if path.is_file() and relative not in keep and (source / relative.parent).is_dir() and (
            checkpoint.match(path.name) or path.suffix == ".keras" or path.name == ARCHIVED_CHECKPOINTS
        ):
            path.unlink()
    total = sum(p.stat().st_size for p in destination.rglob("*") if p.is_file())
    return {
        "finished": sorted(str(r.relative_to(source)) for r in runs),
        "unfinished": sorted(
            str(p.parent.relative_to(source))
            for p in source.rglob("config.json")
            if not finished(p) and p.parent not in runs
        ),
        "bytes": total,
    }
