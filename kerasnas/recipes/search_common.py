"""Architecture search on a trained supernet, and its report: what the
search recipes (`nb201_search`, `mobilenet_search`) and `kerasnas search`
share.

A search is `kerasnas.search.OneShotTuner` driven by an `EvolutionOracle`
(or a `RandomArchOracle`) under `kerasnas.search.Constraints`: each trial
recalibrates the BN statistics of one architecture on training batches and
scores it on a validation split (the SPOS protocol). It writes, under
`output/`:

- `search/`: the keras-tuner project (trials and oracle state). A search
  started again with `resume` continues from it; a finished one adds no
  trial.
- `search.json`: the best architecture (`"arch"`, so the file is a valid
  `kerasnas export --arch`), the top-k, every trial, the mean seconds per
  trial, the constraints, the oracle and, with a benchmark, the ground
  truth of the top-k.
- `top.txt`: the top-k table, as printed.
- `best/`: the winner's `child.keras`, `saved_model/` and
  `architecture.json` (`OneShotTuner.export_best`: the supernet's weights,
  BN statistics recalibrated as in its trial, or trained from scratch
  with `retrain_epochs`).

A config dict holds the search's keys (`SEARCH_DEFAULTS`).
"""

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np

from kerasnas.benchmarks import check_benchmark
from kerasnas.recipes.common import check_same_config
from kerasnas.recipes.common import write_json
from kerasnas.timing import running_time

#: The search's config keys and their defaults (SPOS: population 50,
#: parents from the top fifth, 1,000 architectures).
SEARCH_DEFAULTS = dict(
    oracle="evolution",
    population_size=50,
    sample_size=10,
    mutation_prob=0.1,
    crossover=True,
    max_trials=1000,
    search_seed=0,
    # A number, "median" (of 100 random architectures of the space) or None.
    max_params=None,
    max_flops=None,
    # The split that scores architectures (never the test split) and its size.
    search_split="search_valid",
    search_limit=None,
    search_batch_size=256,
    # BN recalibration batches per architecture (training batches; a no-op
    # for supernets without moving statistics, e.g. bn="batch").
    bn_calibration_steps=20,
    top_k=10,
    # Epochs of training the winner from scratch before its export (0: the
    # supernet's weights).
    retrain_epochs=0,
    # NAS-Bench-201 ground truth (a directory or file) reported for the top-k.
    benchmark=None,
    benchmark_dataset="cifar10",
)

#: Keys that must not change when a search is resumed (`max_trials` may grow).
SEARCH_KEYS = (
    "oracle", "population_size", "sample_size", "mutation_prob", "crossover",
    "search_seed", "max_params", "max_flops", "search_split", "search_limit",
    "bn_calibration_steps",
)
ORACLES = ("evolution", "random")
PROJECT = "search"


# === Building blocks ===
def resolve_budget(space, value, what, num_archs=100, seed=0):
    """A constraint value: None, a number, or `"median"`: the median
    `space.<what>(arch)` of `num_archs` random architectures (seeded)."""
    if value is None:
        return None
    if value == "median":
        rng = np.random.default_rng(seed)
        method = getattr(space, what)
        return float(np.median([method(space.sample(rng)) for _ in range(num_archs)]))
    if isinstance(value, str):
        raise ValueError(
            f"Invalid value for argument `max_{what}`. Expected None, a number or "
            f"'median'. Received: max_{what}={value!r}"
        )
    return float(value)


def make_constraints(space, config):
    """`(Constraints or None, {"max_params": number or None, "max_flops": ...})`."""
    from kerasnas.search import Constraints

    budgets = {
        f"max_{what}": resolve_budget(space, config.get(f"max_{what}"), what)
        for what in ("params", "flops")
    }
    if all(value is None for value in budgets.values()):
        return None, budgets
    return Constraints(**budgets), budgets


def make_oracle(space, config, constraints=None):
    """The `EvolutionOracle` or `RandomArchOracle` of `config["oracle"]`."""
    from kerasnas.search import EvolutionOracle
    from kerasnas.search import RandomArchOracle

    name = config["oracle"]
    if name == "evolution":
        return EvolutionOracle(
            space,
            population_size=config["population_size"],
            sample_size=config["sample_size"],
            mutation_prob=config["mutation_prob"],
            crossover=config["crossover"],
            constraints=constraints,
            max_trials=config["max_trials"],
            seed=config["search_seed"],
        )
    if name == "random":
        return RandomArchOracle(
            space, constraints=constraints, max_trials=config["max_trials"],
            seed=config["search_seed"],
        )
    raise ValueError(
        f"Invalid value for argument `oracle`. Expected one of {list(ORACLES)}. "
        f"Received: oracle={name!r}"
    )


def calibration_data(data, batch_size, steps, split="train", image_size=None, limit=None, seed=0):
    """`steps` training batches for BN recalibration, the same ones on every
    iteration (a seeded permutation of `split`, no augmentation), so that
    the export recalibrates exactly as the search did."""
    from kerasnas import data as nas_data
    from kerasnas.recipes import nb201_spos

    size = nas_data.info(data)["num_examples"][split]  # nothing read into memory
    if limit is not None:
        size = min(size, limit)
    epochs = max(1, math.ceil(steps / max(1, math.ceil(size / batch_size))))
    dataset, _ = nb201_spos.train_dataset(
        data, batch_size, seed, epochs, image_size=image_size, limit=limit, split=split,
    )
    return dataset.take(steps)


def human(value):
    """1234567 -> "1.23M"."""
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


# === Output directory ===
def prepare_output(output, config, resume=False, overwrite=False, keys=SEARCH_KEYS, training=None):
    """Refuses to mix searches in one directory and records the config.

    With `overwrite` the previous search (project, `best/`) is removed;
    without `resume` an existing search is an error; with `resume`, `keys`
    must equal those of the recorded `config.json`.

    Args:
        output: the output directory.
        config: the config dict, written to `output/config.json`.
        resume, overwrite: see above (at most one).
        keys: the config keys a resumed run must keep.
        training: None, or the `nb201_spos.output_paths` of a run that also
            trains its supernet: the training checkpoints are then checked
            the `nb201_spos` way (which also writes `config.json`).
    """
    from kerasnas.recipes import nb201_spos

    if resume and overwrite:
        raise ValueError("Pass at most one of `--resume` and `--overwrite`.")
    output = Path(output)
    project = output / PROJECT
    if overwrite:
        shutil.rmtree(project, ignore_errors=True)
        shutil.rmtree(output / "best", ignore_errors=True)
    elif project.is_dir() and not resume:
        raise ValueError(
            f"The output directory {output} already holds a search ({project}). "
            "Pass `--resume` to continue it, `--overwrite` to start again, or "
            "choose another `--output`."
        )
    if training is not None:
        nb201_spos._prepare_output(config, training, resume, overwrite, keys)
        return
    path = output / "config.json"
    if resume:
        check_same_config(path, config, keys, "search")
    write_json(path, config)


# === The search recipes ===
def run(config, output, build_space, resume=False, overwrite=False, verbose=2, training_keys=()):
    """Trains a supernet as `nb201_spos` does (or loads `config["checkpoint"]`),
    then searches it (`search_and_report`).

    Args:
        config: the recipe's config: `nb201_spos`'s training keys (with
            `train_split`), the keys of `SEARCH_DEFAULTS` and `checkpoint`.
        output: the output directory: `nb201_spos`'s files (`config.json`,
            `checkpoints/`, `history.*`, `supernet.keras`, ...) and the
            search's (`search/`, `search.json`, `top.txt`, `best/`).
        build_space: `build_space(config) -> (space, steps_per_epoch)`.
        resume: continue the supernet's training from its last checkpoint,
            then the search from `output/search`.
        overwrite: discard a previous run's checkpoints, logs and search.
        verbose: `fit` verbosity (0, 1 or 2); 0 also silences the search.
        training_keys: config keys a resumed training must keep.

    Returns:
        The content of `output/search.json`.
    """
    import keras

    from kerasnas import data as nas_data
    from kerasnas.recipes import nb201_spos
    from kerasnas.recipes.common import load_supernet
    from kerasnas.recipes.common import scored_on

    output = Path(output)
    paths = nb201_spos.output_paths(output)
    checkpoint = config.get("checkpoint")
    train_split = config.get("train_split", "train")
    if checkpoint:
        supernet = load_supernet(checkpoint)
        space = supernet.space
    else:
        space, steps_per_epoch = build_space(config)
    # Bad search arguments fail now rather than after the training.
    benchmark = load_benchmark(config)
    check_benchmark(benchmark, space)
    oracle = make_oracle(space, config, make_constraints(space, config)[0])
    if checkpoint:
        prepare_output(output, config, resume, overwrite, SEARCH_KEYS + ("checkpoint", "data"))
    else:
        prepare_output(output, config, resume, overwrite, tuple(training_keys) + SEARCH_KEYS, paths)
    if checkpoint:
        print(f"Searching the supernet {checkpoint}.")
    else:
        # The recipe owns the process: the seed fixes the initial weights.
        keras.utils.set_random_seed(config["seed"])
        supernet = nb201_spos.build_supernet(space, config, steps_per_epoch)
        print(f"Training the supernet on {config['data']} {train_split} "
              f"({config['epochs']} epochs of {steps_per_epoch} steps).")
        start = running_time()
        callbacks = []
        if config.get("dcnas"):  # kerasnas.recipes.mobilenet_dcnas
            from kerasnas.recipes import nb201_dcnas

            callbacks.append(nb201_dcnas.schedule(config, output))
        history = nb201_spos.train(supernet, config, paths, resume, verbose, callbacks=callbacks)
        nb201_spos._write_history(history, paths["history"], paths["history_csv"])
        supernet.save(paths["supernet"])
        print(f"Trained in {running_time() - start:.0f} s: {paths['supernet']}")
    image_size = supernet_image_size(supernet, config["data"], config["image_size"])
    limits = [v for v in (config["limit"], config["search_limit"]) if v is not None]
    validation = nas_data.load(
        config["data"], config["search_split"], batch_size=config["search_batch_size"],
        image_size=image_size, limit=min(limits) if limits else None,
    )
    if not scored_on(config["data"], train_split, config["search_split"])["held_out"]:
        print(f"Note: the supernet trained on {train_split}, which holds the "
              f"{config['search_split']} images that score architectures.")
    calibration = None
    if config["bn_calibration_steps"]:
        calibration = calibration_data(
            config["data"], config["batch_size"], config["bn_calibration_steps"],
            split=train_split, image_size=image_size, limit=config["limit"], seed=config["seed"],
        )
    train_data = test_data = None
    if config["retrain_epochs"]:
        train_data = nas_data.load(
            config["data"], "train", batch_size=config["batch_size"], shuffle=True,
            seed=config["seed"], augment=config["augment"], image_size=image_size,
            limit=config["limit"],
        )
        test_data = nas_data.load(
            config["data"], "test", batch_size=config["search_batch_size"],
            image_size=image_size, limit=config["limit"],
        )
    return search_and_report(
        supernet, validation, output, config, oracle=oracle, bn_calibration_data=calibration,
        benchmark=benchmark, train_data=train_data, test_data=test_data,
        description=f"{Path(str(config['data'])).name} {config['search_split']}",
        verbose=1 if verbose else 0,
    )


def load_benchmark(config):
    """The `kerasnas.benchmarks.NasBench201` of `config["benchmark"]`, or None."""
    if not config.get("benchmark"):
        return None
    from kerasnas.benchmarks import NasBench201

    return NasBench201(config["benchmark"], dataset=config.get("benchmark_dataset", "cifar10"))


def supernet_image_size(supernet, data, image_size=None, argument="data", labels=True):
    """`image_size`, or the supernet's input size when `data`'s differs.

    Raises:
        ValueError (naming `argument`) when `data` cannot go through the
        supernet: its images have another number of channels, or (when its
        `labels` are used) it has more classes than the supernet's
        classifier has outputs.
    """
    from kerasnas import data as nas_data

    space = supernet.space
    input_shape = getattr(space, "input_shape", None)
    described = nas_data.info(data)
    native = described["image_shape"]
    if input_shape is not None and native is not None and native[-1] != input_shape[-1]:
        raise ValueError(
            f"Invalid value for argument `--{argument.replace('_', '-')}`. Expected images "
            f"with {input_shape[-1]} channels (the supernet's input is "
            f"{tuple(input_shape)}). Received: {data!r}, images of shape {tuple(native)}"
        )
    classes = getattr(space, "num_classes", None)
    if labels and classes is not None and described["num_classes"] > classes:
        raise ValueError(
            f"Invalid value for argument `--{argument.replace('_', '-')}`. Expected at most "
            f"{classes} classes (the supernet's classifier has {classes} outputs). "
            f"Received: {data!r}, {described['num_classes']} classes"
        )
    if image_size is None and input_shape is not None:
        if tuple(native[:2]) != tuple(input_shape[:2]):
            image_size = input_shape[0]
    return image_size


def add_search_arguments(parser):
    """Adds the search's flags (`SEARCH_DEFAULTS`' keys, `--checkpoint`) to
    a recipe's parser."""
    from kerasnas.recipes.nb201_spos import _positive_int

    group = parser.add_argument_group("search")
    arg = group.add_argument
    arg("--checkpoint", help="search this supernet (.keras) instead of training one")
    arg("--train-split", choices=("search_train", "train"),
        help="split the supernet trains on (default: search_train, the half of train "
        "that the validation split is not)")
    arg("--oracle", choices=ORACLES, help="evolution (regularized) or random search")
    arg("--population-size", type=_positive_int, help="evolution's population")
    arg("--sample-size", type=_positive_int, help="evolution's tournament size")
    arg("--mutation-prob", type=_probability, help="per-choice mutation probability")
    arg("--crossover", action=argparse.BooleanOptionalAction, help="also cross parents")
    arg("--max-trials", type=_positive_int, help="architectures to evaluate")
    arg("--search-seed", type=_non_negative_int, help="seed of the search")
    arg("--max-params", type=budget, help="parameter budget: a number (2.5e5, 250K, 1.2M) or 'median'")
    arg("--max-flops", type=budget, help="FLOPs budget: a number (3e7, 30M) or 'median'")
    arg("--search-split", choices=("search_valid", "search_train", "train"),
        help="split that scores architectures (default: search_valid)")
    arg("--search-limit", type=_positive_int, help="score on the first N images of that split")
    arg("--search-batch-size", type=_positive_int)
    arg("--bn-calibration-steps", type=_non_negative_int,
        help="BN recalibration batches per architecture (0: none)")
    arg("--top-k", type=_positive_int, help="architectures in the table")
    arg("--retrain-epochs", type=_non_negative_int,
        help="train the winner from scratch for E epochs before exporting it")
    arg("--benchmark", help="NAS-Bench-201 ground truth (directory or file) for the table")
    arg("--benchmark-dataset", choices=("cifar10", "cifar100", "imagenet16-120"))
    return parser


def budget(text):
    """argparse type of `--max-params` / `--max-flops`: 'median', or a
    number with an optional K/M/G suffix."""
    if text == "median":
        return text
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:].upper(), None)
    try:
        value = float(text[:-1]) * scale if scale else float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0 (e.g. 3e7, 30M) or 'median', received {text!r}"
        )
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, received {text!r}")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], received {text!r}")
    return value


# === Search and report ===
def search_and_report(
    supernet,
    validation_data,
    output,
    config,
    oracle=None,
    bn_calibration_data=None,
    benchmark=None,
    export=True,
    train_data=None,
    test_data=None,
    description=None,
    verbose=1,
):
    """Searches `supernet`, writes the report and exports the winner.

    Args:
        supernet: a trained `kerasnas.Supernet`.
        validation_data: the batched `(x, y)` dataset that scores
            architectures (a validation split, not the test split).
        output: the output directory (see the module docstring); the search
            resumes from `output/search` when it exists (the caller decides,
            see `prepare_output`).
        config: a dict with the keys of `SEARCH_DEFAULTS`.
        oracle: the oracle (default `make_oracle(space, config,
            make_constraints(space, config)[0])`; pass it to check the
            search's arguments before a long training).
        bn_calibration_data: training batches for BN recalibration (needed
            when `config["bn_calibration_steps"] > 0`; see
            `calibration_data`).
        benchmark: None or a `kerasnas.benchmarks.NasBench201` of the
            supernet's space: its ground truth is reported for the top-k.
        export: export the winner to `output/best`.
        train_data, test_data: the datasets of the retraining when
            `config["retrain_epochs"] > 0` (`test_data` optional).
        description: what `validation_data` is, for the printout
            (e.g. "digits search_valid").
        verbose: 0 silent, 1 a progress bar and the report.

    Returns:
        The content of `output/search.json`.
    """
    from kerasnas.evaluation import kendall_tau
    from kerasnas.search import OneShotTuner

    output = Path(output)
    space = supernet.space
    check_benchmark(benchmark, space)
    if oracle is None:
        oracle = make_oracle(space, config, make_constraints(space, config)[0])
    constraints = None if oracle.constraints.empty else oracle.constraints
    budgets = {"max_params": oracle.constraints.max_params,
               "max_flops": oracle.constraints.max_flops}
    steps = int(config["bn_calibration_steps"] or 0)
    tuner = OneShotTuner(
        supernet, oracle, validation_data,
        bn_calibration_data=bn_calibration_data if steps else None,
        bn_calibration_steps=steps, directory=str(output), project_name=PROJECT,
        overwrite=False,
    )
    num_images = sum(int(batch[0].shape[0]) for batch in validation_data)
    done = len(oracle.end_order)
    say = print if verbose else (lambda *a, **k: None)
    for what in ("params", "flops"):
        if config.get(f"max_{what}") == "median":
            say(f"max_{what}: the median of 100 random architectures, {human(budgets[f'max_{what}'])}")
    say(
        f"Searching {config['max_trials']} architectures ({_describe_oracle(config)}"
        f"{', ' + repr(constraints) if constraints else ''}) on {num_images} images"
        f"{' of ' + description if description else ''}, BN recalibrated on "
        f"{steps} training batches per architecture"
        + (f"; resuming after {done} trials" if done else "")
        + f". Trials in {output / PROJECT}"
    )
    start = running_time()
    tuner.search(verbose=1 if verbose else 0)
    search_seconds = running_time() - start

    rows = {}
    for result in tuner.results():
        arch = result["arch"]
        row = {
            "trial_id": result["trial_id"],
            "arch": arch,
            "arch_string": space.display_string(arch),
            "val_accuracy": result["metrics"]["val_accuracy"],
            "val_loss": result["metrics"]["val_loss"],
            "params": space.params(arch) if hasattr(space, "params") else None,
            "flops": space.flops(arch) if hasattr(space, "flops") else None,
        }
        if benchmark is not None:
            truth = benchmark.query(arch)
            row["benchmark_val_acc"] = truth["val_acc"]
            row["benchmark_test_acc"] = truth["test_acc"]
        rows[result["trial_id"]] = row
    if not rows:
        raise ValueError("The search completed no trial: nothing to report.")
    top = [rows[t.trial_id] for t in tuner.oracle.get_best_trials(config["top_k"]) if t.trial_id in rows]
    best = top[0]
    previous = _read_json(output / "search.json")
    if tuner.trial_seconds:
        seconds_per_trial = float(np.mean(tuner.trial_seconds))
    else:  # a finished search resumed: no trial ran in this process
        seconds_per_trial = previous.get("seconds_per_trial")
    report = {
        "arch": best["arch"],
        "arch_string": best["arch_string"],
        "best": best,
        "objective": "val_accuracy",
        "num_trials": len(rows),
        "seconds_per_trial": seconds_per_trial,
        "search_seconds": search_seconds,
        "validation": {"data": description, "num_examples": num_images,
                       "bn_calibration_steps": steps},
        "constraints": budgets,
        "oracle": {key: config[key] for key in (
            "oracle", "population_size", "sample_size", "mutation_prob", "crossover",
            "max_trials", "search_seed")},
        "top_k": top,
        "trials": list(rows.values()),
    }
    if benchmark is not None:
        trials = list(rows.values())
        report["benchmark"] = {
            "source": getattr(benchmark, "source", None),
            "dataset": getattr(benchmark, "dataset", None),
            "best_test_acc": best["benchmark_test_acc"],
            "best_test_acc_of_trials": max(r["benchmark_test_acc"] for r in trials),
            "kendall_tau_of_trials": kendall_tau(
                [r["val_accuracy"] for r in trials], [r["benchmark_test_acc"] for r in trials]
            ) if len(trials) > 1 else None,
        }
    table = format_table(top, len(rows), benchmark is not None, description)
    (output / "top.txt").write_text(table + "\n")
    if export:
        shutil.rmtree(output / "best", ignore_errors=True)
        retrain = int(config.get("retrain_epochs") or 0)
        say(f"Exporting the best architecture to {output / 'best'}"
            + (f" (trained from scratch for {retrain} epochs)" if retrain else ""))
        paths = tuner.export_best(
            output / "best", retrain_epochs=retrain, train_data=train_data,
            validation_data=test_data, verbose=2 if verbose and retrain else 0,
        )
        report["export"] = {key: str(value) for key, value in paths.items() if key != "arch"}
        if retrain:
            history = json.loads(Path(paths["architecture"]).read_text())["retrain_history"]
            report["retrained"] = {
                "epochs": retrain,
                "test_accuracy": (history.get("val_accuracy") or [None])[-1],
                "history": history,
            }
    report["config"] = config
    write_json(output / "search.json", report)
    say("\n" + table)
    if benchmark is not None:
        summary = report["benchmark"]
        say(f"NAS-Bench-201 {summary['dataset']} test accuracy of the best: "
            f"{summary['best_test_acc']:.2f}% (best of the {len(rows)} trials: "
            f"{summary['best_test_acc_of_trials']:.2f}%)")
    say(f"{len(rows)} architectures searched, {seconds_per_trial or float('nan'):.3f} s per "
        f"trial; best {best['arch_string']} (validation accuracy {best['val_accuracy']:.4f})")
    if "retrained" in report and report["retrained"]["test_accuracy"] is not None:
        say(f"Trained from scratch: test accuracy {report['retrained']['test_accuracy']:.4f}")
    say("Files:")
    files = {"search.json": output / "search.json", "top.txt": output / "top.txt",
             "trials": output / PROJECT}
    if export:
        files["best"] = output / "best"
    for name, path in files.items():
        say(f"  {name:<12} {path}")
    return report


def format_table(rows, num_trials, with_benchmark=False, description=None):
    """The top-k table: rank, validation accuracy, params, FLOPs, ground
    truth (with a benchmark) and the architecture."""
    head = f"Top {len(rows)} of {num_trials} architectures (supernet accuracy"
    head += f" on {description})" if description else " on the validation split)"
    columns = f"{'rank':>4}  {'val_acc':>7}  {'params':>7}  {'FLOPs':>7}"
    if with_benchmark:
        columns += f"  {'nb201_val':>9}  {'nb201_test':>10}"
    lines = [head, columns + "  architecture"]
    for rank, row in enumerate(rows, start=1):
        line = (f"{rank:>4}  {row['val_accuracy']:>7.4f}  {human(row['params']):>7}  "
                f"{human(row['flops']):>7}")
        if with_benchmark:
            line += f"  {row['benchmark_val_acc']:>9.2f}  {row['benchmark_test_acc']:>10.2f}"
        lines.append(line + "  " + row["arch_string"])
    return "\n".join(lines)


def _describe_oracle(config):
    if config["oracle"] == "evolution":
        return (f"evolution: population {config['population_size']}, tournaments of "
                f"{config['sample_size']}, seed {config['search_seed']}")
    return f"random, seed {config['search_seed']}"


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
