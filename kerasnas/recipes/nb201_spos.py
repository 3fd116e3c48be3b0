"""SPOS on NAS-Bench-201: train a supernet, pick an architecture, export it.

The training follows the SPOS baseline of PA&DA's code (REFERENCE_NOTES
§0.3): one uniformly sampled path per step, SGD with momentum 0.9, coupled
L2 weight decay 2.5e-4, global gradient-norm clipping at 5, learning rate
0.05 with cosine decay to 0, batch statistics in every BN (`bn="batch"`),
crop + flip augmentation. (The reference steps its cosine schedule once per
epoch; here it decays per step over all steps.)

Architecture selection is, for now, the best of `num_candidates` random
architectures scored by `Supernet.evaluate_arch` on the test split. That is
a smoke-level stand-in: NAS-Bench-201 selects on a held-out half of the
train split, as `nb201_search` does (evolution, BN recalibration, export).

Outputs, under `output/`: `config.json`, `checkpoints/` (one
`kerasnas.callbacks.EpochCheckpoint` per epoch), `tensorboard/` (if TensorBoard is installed),
`history.json` and `history.csv`, `supernet.keras`, `child.keras`,
`saved_model/` and `result.json`.

Usage:

```shell
python recipes/nb201_spos.py --preset smoke
python recipes/nb201_spos.py --preset cifar10-subset --output runs/c10s
python recipes/nb201_spos.py --preset cifar10-subset --output runs/c10s --resume
kerasnas train --recipe nb201-spos --preset paper
```

`--resume` refuses a changed training argument, but for a lower
`--learning-rate` (after the loss diverged): it holds from the resumed
epoch on, and `config.json`'s `resumed_changes` records it.
"""

import argparse
import csv
import importlib.util
import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import kerasnas
from kerasnas import data as nas_data
from kerasnas.callbacks import EpochCheckpoint
from kerasnas.callbacks import list_checkpoints
from kerasnas.callbacks.epoch_checkpoint import latest_readable_checkpoint
from kerasnas.recipes.common import check_same_config
from kerasnas.recipes.common import save_child
from kerasnas.recipes.common import write_json
from kerasnas.timing import running_time

_SHARED = Path(__file__).resolve().parents[2].parent / "shared"

_SPOS = dict(
    momentum=0.9,
    weight_decay=2.5e-4,
    clip_norm=5.0,
    bn="batch",
    seed=0,
    num_candidates=20,
    limit=None,
    crop_padding=4,
    # None: Keras' global policy (float32 by default); "mixed_bfloat16"
    # computes in bfloat16 with float32 variables, logits, losses and BN
    # statistics (`kerasnas.Supernet(dtype_policy=...)`).
    dtype_policy=None,
)

PRESETS = {
    # A few seconds of compute per epoch on 2 CPU cores (plus tracing).
    # Digits are 8x8 images upscaled to 16x16: crop augmentation hurts them.
    "smoke": dict(
        _SPOS, data="digits", image_size=16, channels=8, cells=1,
        batch_size=64, epochs=10, learning_rate=0.2, augment=False,
    ),
    "cifar10-subset": dict(
        _SPOS, data=str(_SHARED / "data" / "cifar" / "cifar10_subset.npz"),
        image_size=None, channels=8, cells=1, batch_size=64, epochs=30,
        learning_rate=0.05, augment=True,
    ),
    # REFERENCE_NOTES §0.3 (PA&DA, `train_baselines_201.py --method spos`).
    "paper": dict(
        _SPOS, data="cifar10", image_size=None, channels=16, cells=5,
        batch_size=256, epochs=250, learning_rate=0.05, augment=True,
    ),
}

# Config keys that must not change when a run is resumed.
_TRAINING_KEYS = (
    "data", "image_size", "channels", "cells", "batch_size", "epochs",
    "learning_rate", "momentum", "weight_decay", "clip_norm", "bn",
    "augment", "seed", "limit", "crop_padding", "dtype_policy",
)
# Training keys a resumed run may lower, so that a run which diverged goes
# on more gently (`kerasnas.callbacks.StopOnNonFiniteLoss` advises it): the
# learning-rate schedule and the clipping are built from the config, not
# restored from the checkpoint, so the lower values hold for the remaining
# steps. `config.json`'s `resumed_changes` records each change.
_LOWERABLE_KEYS = ("learning_rate", "clip_norm")


def train_dataset(
    data,
    batch_size,
    seed,
    epochs,
    initial_epoch=0,
    augment=False,
    image_size=None,
    limit=None,
    crop_padding=4,
    split="train",
    cutout=0,
):
    """The training batches of epochs `initial_epoch, ..., epochs - 1`.

    Epoch `e` is a permutation of the train split and, with `augment`, a
    crop + flip per image, all drawn with stateless random ops seeded by
    `(seed, e)` only. So the batches of an epoch do not depend on how many
    epochs ran before in this process: a run resumed at epoch `e` sees
    exactly the data of an uninterrupted one. The pre-processing is that of
    `kerasnas.data.load(..., augment=augment, image_size=image_size)`:
    scale to [0, 1], resize, augment, normalise.

    Args:
        data: a dataset name or `.npz` path (see `kerasnas.data.load`).
        batch_size: positive int; the last batch of an epoch may be smaller.
        seed: int seed of the order and the augmentation.
        epochs: the number of the last epoch plus one.
        initial_epoch: the first epoch.
        augment: apply `kerasnas.data.random_crop_flip`.
        image_size: optional int, resize images to `image_size` squared.
        limit: optional int, keep the first `limit` training examples.
        crop_padding: the crop's zero padding (NB201: 4; 0: flips only).
        split: the split to train on (`split_arrays`), `"train"` or e.g.
            NAS-Bench-201's `"search_train"` half of it; `limit` applies
            after.
        cutout: side of DARTS' cutout square (0: none).

    Returns:
        `(dataset, steps_per_epoch)`: a `tf.data.Dataset` of `(x, y)`
        batches, `steps_per_epoch` batches for each epoch in turn.
    """
    fold_in = tf.random.experimental.stateless_fold_in
    if nas_data.is_streamed(data):
        return _streamed_train_dataset(
            data, batch_size, seed, epochs, initial_epoch, augment, image_size, limit,
            crop_padding, split, cutout,
        )
    x, y = split_arrays(data, split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    preprocess = make_preprocess(data, x.dtype, augment, image_size, crop_padding, cutout)
    images, labels = tf.constant(x), tf.constant(y)

    def example(position, image_seed):
        return preprocess(tf.gather(images, position), tf.gather(labels, position), image_seed)

    def epoch_batches(epoch):
        epoch_seed = fold_in(tf.constant([seed, 0], tf.int64), epoch)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(y), dtype=tf.int64), seed=epoch_seed
        )
        examples = tf.data.Dataset.from_tensor_slices(order).enumerate()
        examples = examples.map(
            lambda k, position: example(position, fold_in(epoch_seed, k + 1)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return examples.batch(batch_size)

    dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    return dataset.prefetch(tf.data.AUTOTUNE), math.ceil(len(y) / batch_size)


def _streamed_train_dataset(
    data, batch_size, seed, epochs, initial_epoch, augment, image_size, limit, crop_padding,
    split, cutout,
):
    """`train_dataset` of a TensorFlow Datasets source, streamed from its
    files (ImageNet does not fit in memory): epoch `e` shuffles the stream
    with a buffer (`kerasnas.data.STREAM_SHUFFLE_BUFFER` samples at most)
    seeded by `(seed, e)` and augments with stateless seeds of `(seed, e,
    position)`, so a resumed epoch is the uninterrupted one."""
    info = nas_data.info(data)
    size = info["num_examples"][split]
    size = min(size, limit) if limit is not None else size
    source = nas_data.stream(data, split, limit=limit)
    preprocess = make_preprocess(data, np.uint8, augment, image_size, crop_padding, cutout)
    buffer = min(size, nas_data.STREAM_SHUFFLE_BUFFER) if size else nas_data.STREAM_SHUFFLE_BUFFER
    fold_in = tf.random.experimental.stateless_fold_in

    def epoch_batches(epoch):
        epoch_seed = fold_in(tf.constant([seed, 0], tf.int64), epoch)
        shuffle_seed = tf.random.stateless_uniform(
            (), seed=epoch_seed, minval=0, maxval=2**62, dtype=tf.int64
        )
        examples = source.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False).enumerate()
        examples = examples.map(
            lambda k, example: preprocess(example[0], example[1], fold_in(epoch_seed, k + 1)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )
        return examples.batch(batch_size)

    dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    return dataset.prefetch(tf.data.AUTOTUNE), max(math.ceil(size / batch_size), 1)


def split_arrays(data, split="train"):
    """`(x, y)` of `"train"`, `"test"`, `"search_train"` or `"search_valid"`
    (the halves of `kerasnas.data.nb201_split`, as `kerasnas.data.load`
    selects them), without pre-processing."""
    if split not in nas_data.SPLITS:
        raise ValueError(
            f"Invalid value for argument `split`. Expected one of {nas_data.SPLITS}. "
            f"Received: split={split!r}"
        )
    x, y = nas_data.load_arrays(data, "test" if split == "test" else "train")
    if split.startswith("search_"):
        halves = nas_data.nb201_split(data, "train")
        rows = halves[0] if split == "search_train" else halves[1]
        x, y = x[rows], y[rows]
    return x, y


def make_preprocess(data, dtype, augment=False, image_size=None, crop_padding=4, cutout=0):
    """The per-example training pre-processing `(image, label, seed) ->
    (image, label)`: scale to [0, 1], resize, crop + flip with the stateless
    `seed` (if `augment`), normalise with the dataset's statistics, then
    (if `cutout`) zero a `cutout`-pixel square (DARTS' evaluation
    training)."""
    stats = nas_data.info(data)
    scale = 1.0 / 255.0 if np.dtype(dtype) == np.uint8 else 1.0

    def preprocess(image, label, seed):
        image = tf.cast(image, tf.float32) * scale
        if image_size is not None:
            image = tf.image.resize(image, (image_size, image_size))
        if augment:
            image = nas_data.random_crop_flip(image, crop_padding, seed=seed)
        image = nas_data.normalize(image, stats["mean"], stats["std"])
        if cutout:
            image = nas_data.cutout(image, cutout, seed=tf.random.experimental.stateless_fold_in(seed, 7))
        return image, label

    return preprocess


def build_space(config):
    """`(space, steps_per_epoch)`: the NAS-Bench-201 space of `config` (its
    data's classes and image shape, `channels`, `cells`) and the number of
    training batches per epoch."""
    num_classes, input_shape, steps_per_epoch = data_geometry(config)
    space = kerasnas.spaces.NasBench201(
        num_classes=num_classes,
        channels=config["channels"],
        cells_per_stage=config["cells"],
        input_shape=input_shape,
    )
    return space, steps_per_epoch


def data_geometry(config):
    """`(num_classes, input_shape, steps_per_epoch)` of `config`'s training
    data: its classes, its `(height, width, channels)` after the resize to
    `image_size`, and its batches per epoch (`train_split`, `limit`,
    `batch_size`)."""
    info = nas_data.info(config["data"])
    height, width, channels = info["image_shape"]
    if config["image_size"] is not None:
        height = width = config["image_size"]
    num_examples = info["num_examples"][config.get("train_split", "train")]
    if config["limit"] is not None:
        num_examples = min(num_examples, config["limit"])
    return info["num_classes"], (height, width, channels), math.ceil(num_examples / config["batch_size"])


def build_supernet(space, config, steps_per_epoch, path_sampler=None):
    """The compiled SPOS supernet of `space` for `config` (uniform paths
    unless another `path_sampler` is given)."""
    options = {}
    if config.get("dcnas"):  # kerasnas.recipes.nb201_dcnas
        from kerasnas.recipes import nb201_dcnas

        options = nb201_dcnas.supernet_options(config)
    supernet = space.build_supernet(
        path_sampler=path_sampler,
        seed=config["seed"],
        weight_decay=config["weight_decay"],
        clip_norm=config["clip_norm"],
        bn=config["bn"],
        # Inter-choice weights (kerasnas.recipes.nb201_interchoice).
        **_interchoice_choices(config),
        dtype_policy=config.get("dtype_policy"),
        **options,
    )
    # A few-shot tree with `fix_schedule` stretches the cosine per restarted
    # leaf (`kerasnas.fewshot.LeafCosineDecay`: the same values otherwise).
    cosine = keras.optimizers.schedules.CosineDecay
    if config.get("fix_schedule"):
        from kerasnas.fewshot import LeafCosineDecay as cosine
    schedule = cosine(config["learning_rate"], decay_steps=config["epochs"] * steps_per_epoch, alpha=0.0)
    supernet.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=config["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return supernet


def select_architecture(supernet, data, num_candidates, seed):
    """The best of `num_candidates` distinct random architectures.

    Args:
        supernet: a trained `kerasnas.Supernet`.
        data: the batches that score an architecture (`evaluate_arch`).
        num_candidates: positive int.
        seed: int seed of the sampling.

    Returns:
        `(arch, candidates)`: the best architecture (highest accuracy, the
        first one on ties) and `[{"arch_string", "accuracy", "loss"}, ...]`
        in sampling order.
    """
    space = supernet.space
    rng = np.random.default_rng(seed)
    archs = {}
    for _ in range(100 * num_candidates):
        if len(archs) == num_candidates:
            break
        arch = space.sample(rng)
        archs.setdefault(space.to_string(arch), arch)
    candidates = []
    for string, arch in archs.items():
        metrics = supernet.evaluate_arch(arch, data)
        candidates.append(
            {"arch_string": string, "accuracy": metrics["accuracy"], "loss": metrics["loss"]}
        )
    best = max(range(len(candidates)), key=lambda k: candidates[k]["accuracy"])
    return archs[candidates[best]["arch_string"]], candidates


def run(config, output, resume=False, overwrite=False, verbose=2):
    """Runs the recipe: trains, selects, extracts and exports.

    Args:
        config: a dict with the keys of a `PRESETS` entry.
        output: the output directory.
        resume: continue from the last checkpoint in `output/checkpoints`.
        overwrite: discard the checkpoints and logs of a previous run.
        verbose: `fit` verbosity (0, 1 or 2).

    Returns:
        The content of `output/result.json`.
    """
    paths = output_paths(output)
    _prepare_output(config, paths, resume, overwrite)

    # The recipe owns the process: seeding the global RNGs fixes the
    # initial weights (the data and the paths have their own seeds).
    keras.utils.set_random_seed(config["seed"])
    space, steps_per_epoch = build_space(config)
    supernet = build_supernet(space, config, steps_per_epoch)

    history = train(supernet, config, paths, resume, verbose)
    _write_history(history, paths["history"], paths["history_csv"])
    supernet.save(paths["supernet"])

    test = nas_data.load(
        config["data"], "test", batch_size=config["batch_size"],
        image_size=config["image_size"], limit=config["limit"],
    )
    arch, candidates = select_architecture(
        supernet, test, config["num_candidates"], config["seed"]
    )
    paths.update(save_child(supernet.extract(arch), output))
    arch_string = space.to_string(arch)
    result = {
        "arch": arch,
        "arch_string": arch_string,
        "accuracy": next(c["accuracy"] for c in candidates if c["arch_string"] == arch_string),
        "accuracy_split": "test",
        "params": space.params(arch),
        "flops": space.flops(arch),
        "candidates": candidates,
        "paths": {name: str(path) for name, path in paths.items()},
    }
    write_json(paths["result"], result)
    print(f"Selected {arch_string} (one-shot test accuracy {result['accuracy']:.4f}).")
    for name in ("supernet", "child", "saved_model", "result", "checkpoints", "tensorboard"):
        if name in paths:
            print(f"  {name:<12} {paths[name]}")
    return result


def output_paths(output):
    """`{name: path}` of a run's files under `output` (no "tensorboard" when
    TensorBoard is not installed)."""
    output = Path(output)
    paths = {
        name: output / file
        for name, file in (
            ("config", "config.json"), ("checkpoints", "checkpoints"),
            ("tensorboard", "tensorboard"), ("history", "history.json"),
            ("history_csv", "history.csv"), ("supernet", "supernet.keras"),
            ("result", "result.json"),
        )
    }
    if importlib.util.find_spec("tensorboard") is None:
        print("TensorBoard is not installed (`pip install tensorboard`): no logs.")
        del paths["tensorboard"]
    return paths


def train(
    supernet, config, paths, resume=False, verbose=2, callbacks=(), data_sampler=None,
    valid_split=None,
):
    """Trains the compiled `supernet`, checkpointing every epoch.

    Args:
        supernet: the compiled supernet (`build_supernet`).
        config: the recipe's config dict.
        paths: output paths: `"checkpoints"` and, if present,
            `"tensorboard"`.
        resume: restore the last checkpoint first and continue after it.
        verbose: `fit` verbosity.
        callbacks: more Keras callbacks, run before the checkpoint (so that
            what they add to the epoch's logs is checkpointed too).
        data_sampler: optional `kerasnas.sampling.ImportanceDataSampler`
            that replaces the epoch-seeded pipeline; its state goes into the
            checkpoints (its callback must be among `callbacks`).
        valid_split: for bilevel training (`kerasnas.darts`): the split
            whose epoch-seeded batches (seed + 1) are paired with the
            training batches, `(train_batch, valid_batch)`.

    Returns:
        The history of every epoch, `{metric: [value per epoch]}`,
        including the epochs of the interrupted run when resuming.
    """
    checkpoint = EpochCheckpoint(
        paths["checkpoints"], state=[data_sampler] if data_sampler is not None else ()
    )
    initial_epoch = checkpoint.restore(supernet) if resume else 0
    epochs = config["epochs"]
    if resume:
        print(f"Resuming after epoch {initial_epoch} of {epochs}.")
    if initial_epoch >= epochs:
        return checkpoint.history
    if data_sampler is not None:
        # One epoch per iteration: Keras re-reads the sampler's draw each epoch.
        dataset, steps_per_epoch = data_sampler.dataset(), None
    else:
        dataset, steps_per_epoch = train_dataset(
            config["data"], config["batch_size"], config["seed"], epochs,
            initial_epoch=initial_epoch, augment=config["augment"],
            image_size=config["image_size"], limit=config["limit"],
            crop_padding=config.get("crop_padding", 4),
            split=config.get("train_split", "train"),
        )
        if valid_split is not None:
            valid, _ = train_dataset(
                config["data"], config["batch_size"], config["seed"] + 1, epochs,
                initial_epoch=initial_epoch, augment=config["augment"],
                image_size=config["image_size"], limit=config["limit"],
                crop_padding=config.get("crop_padding", 4), split=valid_split,
            )
            dataset = kerasnas.darts.paired(dataset, valid)
    # First: an epoch's seconds exclude what later callbacks (monitoring)
    # spend, and go into the checkpointed history (`train_seconds`).
    callbacks = [EpochTimer()] + list(callbacks) + [checkpoint]
    if "tensorboard" in paths:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(paths["tensorboard"]), write_graph=False)
        )
    supernet.fit(
        dataset, epochs=epochs, initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch, shuffle=False, callbacks=callbacks,
        verbose=verbose,
    )
    return checkpoint.history


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to each epoch's logs: the seconds of its
    training steps (the first epoch's include tracing), wall-clock less any
    time the process was stopped (`kerasnas.timing.running_time`)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = running_time()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = running_time() - self._start


def train_seconds(history, fallback):
    """Training seconds of every epoch of a run, resumed ones included
    (`epoch_seconds` of its history), or `fallback` for a history without
    them (a run from before `EpochTimer`)."""
    seconds = history.get("epoch_seconds") or []
    epochs = max((len(v) for v in history.values()), default=0)
    if seconds and len(seconds) == epochs and all(s is not None for s in seconds):
        return float(sum(seconds))
    return fallback


def _prepare_output(config, paths, resume, overwrite, training_keys=_TRAINING_KEYS):
    if resume and overwrite:
        raise ValueError("Pass at most one of `--resume` and `--overwrite`.")
    if overwrite:
        for name in ("checkpoints", "tensorboard"):
            shutil.rmtree(paths[name], ignore_errors=True)
    elif list_checkpoints(paths["checkpoints"]) and not resume:
        raise ValueError(
            f"The output directory {paths['config'].parent} already holds "
            "checkpoints. Pass `--resume` to continue that run, "
            "`--overwrite` to start again, or choose another `--output`."
        )
    if resume:
        config = _resumed_config(config, paths, training_keys)
    write_json(paths["config"], config)


def _resumed_config(config, paths, training_keys):
    """`config` as a resumed run records it, refusing any change of
    `training_keys` but lowering one of `_LOWERABLE_KEYS`.

    Each lowered key is printed and added to `config.json`'s
    `resumed_changes` (those of earlier resumptions kept): `{"epoch",
    "key", "old", "new"}`, where `epoch` is the number of completed epochs
    of the checkpoint the run goes on from, the last one trained with
    `old`. Without a checkpoint the run starts again: nothing is recorded
    (and earlier records are dropped).
    """
    # A few-shot tree (`nb201_rank`'s `split_method`) resumes from
    # checkpoints of its own, whose epoch is not known here: nothing may
    # change.
    lowerable = () if config.get("split_method") else _LOWERABLE_KEYS
    lowered = check_same_config(paths["config"], config, training_keys, "training", lowerable)
    saved = json.loads(paths["config"].read_text()) if paths["config"].is_file() else {}
    changes = list(saved.get("resumed_changes") or [])
    if not (lowered or changes):
        return config
    _, epoch = latest_readable_checkpoint(paths["checkpoints"])
    if epoch == 0:
        for key, old, new in lowered:
            print(f"No checkpoint to resume from: the run starts again with {key} {new} (was {old}).")
        return config
    for key, old, new in lowered:
        print(
            f"Resuming with {key} {new} (was {old}): the run differs from an "
            f"uninterrupted one after epoch {epoch}."
        )
        changes.append({"epoch": epoch, "key": key, "old": old, "new": new})
    return dict(config, resumed_changes=changes)


def _write_history(history, json_path, csv_path):
    write_json(json_path, history)
    names = list(history)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch"] + names)
        for epoch, values in enumerate(zip(*(history[n] for n in names))):
            writer.writerow([epoch] + list(values))


# === Command line ===
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, received {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive float, received {text!r}")
    return value


def build_parser(prog="nb201_spos"):
    """The recipe's `argparse.ArgumentParser`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="SPOS supernet training on NAS-Bench-201, then selection and export.",
    )
    arg = parser.add_argument
    arg("--preset", choices=sorted(PRESETS), default="smoke",
        help="default settings (default: smoke); the flags below override them")
    arg("--data", help="dataset name (digits, cifar10, cifar100) or .npz path")
    arg("--epochs", type=_positive_int)
    arg("--batch-size", type=_positive_int)
    arg("--learning-rate", type=_positive_float)
    arg("--seed", type=int)
    arg("--bn", choices=("batch", "search", "standard"))
    arg("--channels", type=_positive_int, help="channels C of the first stage")
    arg("--cells", type=_positive_int, help="cells per stage N")
    arg("--image-size", type=_positive_int, help="resize images to this size")
    arg("--augment", action=argparse.BooleanOptionalAction, help="crop + flip")
    arg("--crop-padding", type=int, help="zero padding of the random crop (0: flips only)")
    arg("--limit", type=_positive_int, help="keep the first LIMIT examples of each split")
    arg("--num-candidates", type=_positive_int, help="random architectures to compare")
    arg("--dtype-policy", choices=("float32", "mixed_bfloat16"),
        help="compute dtype of the supernet (default: Keras' global policy)")
    add_run_arguments(parser, "runs/nb201_spos/<preset>")
    return parser


def add_run_arguments(parser, default_output):
    """`--output`, `--resume`, `--overwrite` and `--verbose`: where a recipe
    writes and how it treats a previous run there."""
    arg = parser.add_argument
    arg("--output", help=f"output directory (default: {default_output})")
    arg("--resume", action="store_true", help="continue from the last checkpoint")
    arg("--overwrite", action="store_true", help="discard a previous run's checkpoints")
    arg("--verbose", type=int, choices=(0, 1, 2), default=2, help="fit verbosity")


def config_from_args(args, presets=None):
    """The preset of `args.preset` (in `presets`, default this recipe's)
    updated with the flags that were given."""
    config = dict((PRESETS if presets is None else presets)[args.preset])
    for key in config:
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    return config


def parse_args(parser, argv):
    """`parser.parse_args(argv)`, refusing `--resume` with `--overwrite`."""
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.error("argument --overwrite: not allowed with argument --resume")
    return args


def main(argv=None, prog="nb201_spos"):
    """Command-line entry point; returns the result dict."""
    args = parse_args(build_parser(prog), argv)
    output = args.output or Path("runs") / "nb201_spos" / args.preset
    return run(
        config_from_args(args), output, resume=args.resume,
        overwrite=args.overwrite, verbose=args.verbose,
    )


def _interchoice_choices(config):
    """`{"choices": InterChoices}` for a run with inter-choice weights."""
    if not config.get("interchoice"):
        return {}
    from kerasnas.layers import InterChoices

    options = config.get("interchoice_options")
    if config["interchoice"] == "split":  # a config without the option: runs made before it
        options = {"untrained": "split_state", **(options or {})}
    return {"choices": InterChoices(config["interchoice"], options=options)}
