"""DARTS-PT on the DARTS space: search, perturbation-based selection, then
the selected genotype trained from scratch and exported.

1. Search: a `DartsSupernet` on `kerasnas.spaces.Darts` (first-order
   DARTS, or fixed α with `--blank`), α updated on the `search_valid` half.
2. Selection: DARTS-PT's progressive loop on the final supernet (one
   normal and one reduce edge per event, then the topology of nodes 3-5),
   with PT-Mag (`--selection magnitude`) as the ablation; the argmax
   genotype is reported beside it.
3. Evaluation: DARTS' `NetworkCIFAR` of the selected genotype trained from
   scratch on the full training split (auxiliary head 0.4, drop-path ramped
   linearly, cutout), scored on the test split, exported as `.keras` and
   SavedModel without the auxiliary head.

Presets: `smoke` (digits upscaled to 32 px, a 3-cell supernet of RobustDARTS'
S3 ops and a 3-cell evaluation network; minutes), `paper` (REFERENCE_NOTES
§0.2 / §3 and §7: full CIFAR-10, C=16, 8 cells, 50 epochs, batch 64, PT
every 5 epochs over 81 tuning epochs; evaluation C=36, 20 cells, 600
epochs, batch 96, lr 0.025 cosine, wd 3e-4, auxiliary 0.4, drop-path 0.2,
cutout 16). Every stage checkpoints and `--resume` continues it.

Usage:

```shell
python recipes/darts_pt.py --preset smoke --output runs/darts_pt_smoke
kerasnas train --recipe darts-pt --preset paper --output runs/darts_pt
```
"""

import argparse
import shutil
from pathlib import Path

import keras

from kerasnas import data as nas_data
from kerasnas.callbacks import DropPathSchedule
from kerasnas.callbacks import EpochCheckpoint
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import write_json
from kerasnas.recipes.nb201_darts_pt import build_supernet
from kerasnas.recipes.nb201_darts_pt import make_selector
from kerasnas.spaces import Darts
from kerasnas.spaces import strip_auxiliary

_SEARCH = dict(
    momentum=0.9, weight_decay=3e-4, clip_norm=5.0, bn="search", seed=0, limit=None,
    crop_padding=4, min_learning_rate=0.001, order=1, arch_learning_rate=3e-4,
    arch_weight_decay=1e-3, train_split="search_train", valid_split="search_valid",
    interval=5, tune_learning_rate=0.0025, criterion="accuracy", selection="pt",
    fix_alpha=False, augment=True,
)
_EVAL = dict(
    eval_learning_rate=0.025, eval_weight_decay=3e-4, auxiliary_weight=0.4,
    drop_path=0.2, cutout=16, eval_clip_norm=5.0,
)

PRESETS = {
    "smoke": dict(
        _SEARCH, **dict(_EVAL, cutout=8), data="digits", image_size=32, op_set="s3", channels=4, layers=3,
        batch_size=64, epochs=1, learning_rate=0.05, interval=1, tune_epochs=1,
        eval_channels=4, eval_layers=3, eval_batch_size=64, eval_epochs=1, augment=False,
    ),
    "paper": dict(
        _SEARCH, **_EVAL, data="cifar10", image_size=None, op_set="s5", channels=16, layers=8,
        batch_size=64, epochs=50, learning_rate=0.025, tune_epochs=81,
        eval_channels=36, eval_layers=20, eval_batch_size=96, eval_epochs=600,
    ),
}

_TRAINING_KEYS = nb201_spos._TRAINING_KEYS + (
    "op_set", "layers", "min_learning_rate", "order", "arch_learning_rate",
    "arch_weight_decay", "train_split", "valid_split", "fix_alpha",
)


def build_space(config):
    num_classes, input_shape, steps = nb201_spos.data_geometry(config)
    space = Darts(
        num_classes=num_classes, channels=config["channels"], layers=config["layers"],
        input_shape=input_shape, op_set=config["op_set"],
    )
    return space, steps


def search(config, output, resume, verbose):
    """Trains the supernet; returns it (saved as `supernet.keras`)."""
    paths = nb201_spos.output_paths(output)
    keras.utils.set_random_seed(config["seed"])
    space, steps = build_space(config)
    supernet = build_supernet(space, config, steps)
    history = nb201_spos.train(
        supernet, config, paths, resume, verbose,
        valid_split=None if config["fix_alpha"] else config["valid_split"],
    )
    nb201_spos._write_history(history, paths["history"], paths["history_csv"])
    supernet.save(paths["supernet"])
    return supernet, paths


def select(config, paths, output, verbose):
    """PT (or PT-Mag) on a fresh copy of the saved supernet."""
    supernet = keras.saving.load_model(paths["supernet"])
    method = "magnitude" if config["selection"] == "magnitude" else "pt"
    selector = make_selector(config, supernet, method, output / "selection", verbose)
    return selector.run(), selector.log


def evaluate(config, space, arch, output, resume, verbose):
    """Trains `arch`'s evaluation network from scratch; returns its test
    accuracy and the export paths."""
    keras.utils.set_random_seed(config["seed"])
    auxiliary = config["auxiliary_weight"] > 0
    model = space.build_child(
        arch, channels=config["eval_channels"], layers=config["eval_layers"], auxiliary=auxiliary
    )
    steps = nb201_spos.data_geometry(
        dict(config, batch_size=config["eval_batch_size"], train_split="train")
    )[2]
    schedule = keras.optimizers.schedules.CosineDecay(
        config["eval_learning_rate"], decay_steps=config["eval_epochs"] * steps, alpha=0.0
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Keras' SGD `weight_decay` is decoupled (w -= lr * wd * w); the
    # reference's PyTorch SGD adds wd * w to the gradient before momentum.
    model.compile(
        optimizer=keras.optimizers.SGD(
            schedule, momentum=0.9, weight_decay=config["eval_weight_decay"],
            global_clipnorm=config["eval_clip_norm"],
        ),
        loss=[loss, loss] if auxiliary else loss,
        loss_weights=[1.0, config["auxiliary_weight"]] if auxiliary else None,
    )
    checkpoint = EpochCheckpoint(output / "checkpoints")
    initial_epoch = checkpoint.restore(model) if resume else 0
    if initial_epoch < config["eval_epochs"]:
        train, _ = nb201_spos.train_dataset(
            config["data"], config["eval_batch_size"], config["seed"], config["eval_epochs"],
            initial_epoch=initial_epoch, augment=True, image_size=config["image_size"],
            limit=config["limit"], crop_padding=config["crop_padding"], split="train",
            cutout=config["cutout"],
        )
        if auxiliary:  # the same labels for both heads
            train = train.map(lambda x, y: (x, (y, y)))
        model.fit(
            train, epochs=config["eval_epochs"], initial_epoch=initial_epoch,
            steps_per_epoch=steps, verbose=verbose,
            callbacks=[DropPathSchedule(config["drop_path"], config["eval_epochs"]), checkpoint],
        )
    inference = strip_auxiliary(model)
    inference.compile(loss=loss, metrics=["accuracy"])
    test = nas_data.load(
        config["data"], "test", batch_size=256, image_size=config["image_size"], limit=config["limit"],
    )
    accuracy = inference.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    inference.save(output / "child.keras")
    inference.export(str(output / "saved_model"), verbose=False)
    return float(accuracy), {"child": str(output / "child.keras"), "saved_model": str(output / "saved_model")}


def run(config, output, resume=False, overwrite=False, verbose=2):
    """All three stages; returns the content of `output/result.json`."""
    output = Path(output)
    paths = nb201_spos.output_paths(output / "search")
    nb201_spos._prepare_output(config, paths, resume, overwrite, _TRAINING_KEYS)
    if overwrite:
        for name in ("selection", "evaluation"):
            shutil.rmtree(output / name, ignore_errors=True)
    supernet, paths = search(config, output / "search", resume, verbose)
    argmax = supernet.derive()
    arch, log = select(config, paths, output, verbose)
    space = supernet.space
    accuracy, exported = evaluate(config, space, arch, output / "evaluation", resume, verbose)
    result = {
        "genotype": space.to_genotype(arch),
        "arch": arch,
        "argmax_genotype": space.to_genotype(argmax),
        "params": space.params(arch, config["eval_channels"], config["eval_layers"]),
        "test_accuracy": accuracy,
        "selection": config["selection"],
        "decisions": log,
        "paths": exported,
    }
    write_json(output / "result.json", result)
    print(f"Selected {result['genotype']}")
    print(f"  {result['params'] / 1e6:.2f} M parameters, test accuracy {accuracy:.4f}")
    return result


def build_parser(prog="darts_pt"):
    parser = argparse.ArgumentParser(
        prog=prog, description="DARTS-PT on the DARTS space: search, PT, from-scratch training."
    )
    arg = parser.add_argument
    arg("--preset", choices=sorted(PRESETS), default="smoke")
    arg("--data", help="dataset name or .npz path")
    arg("--op-set", choices=("darts", "s1", "s2", "s3", "s4", "s5"))
    arg("--epochs", type=nb201_spos._positive_int, help="search epochs")
    arg("--eval-epochs", type=nb201_spos._positive_int, help="from-scratch epochs")
    arg("--limit", type=nb201_spos._positive_int, help="keep the first LIMIT examples of each split")
    arg("--seed", type=int)
    arg("--selection", choices=("pt", "magnitude"))
    arg("--blank", dest="fix_alpha", action="store_const", const=True, help="fixed α (DARTS-PT's blank)")
    arg("--output", help="output directory (default: runs/darts_pt/<preset>)")
    arg("--resume", action="store_true")
    arg("--overwrite", action="store_true")
    arg("--verbose", type=int, choices=(0, 1, 2), default=2)
    return parser


def main(argv=None, prog="darts_pt"):
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = nb201_spos.config_from_args(args, PRESETS)
    output = Path(args.output or Path("runs") / "darts_pt" / args.preset)
    try:
        return run(config, output, args.resume, args.overwrite, args.verbose)
    except ValueError as error:
        parser.error(str(error))
