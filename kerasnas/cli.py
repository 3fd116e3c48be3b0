"""The `kerasnas` command.

```shell
kerasnas train --recipe nb201-spos --preset smoke --output runs/smoke
kerasnas train --recipe nb201-spos --help          # the recipe's own flags
kerasnas export --checkpoint runs/smoke/supernet.keras \\
    --arch runs/smoke/result.json --output exported/
kerasnas export --checkpoint runs/smoke/supernet.keras --output exported/ \\
    --arch '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|' \\
    --bn-calibration-data digits --bn-calibration-steps 10
kerasnas compare --preset cifar10-subset --seeds 0 1 2 --resume --dry-run
kerasnas rank --checkpoint runs/rank/supernet.keras --benchmark ../shared/data/nb201 \\
    --data ../shared/data/cifar/cifar10_subset.npz --num-archs 1000 --output runs/rank/again
kerasnas search --checkpoint runs/smoke/supernet.keras --data digits --max-trials 50 \\
    --population-size 20 --sample-size 5 --max-params 30K --bn-calibration-data digits \\
    --bn-calibration-split search_train --bn-calibration-steps 4 --export --output runs/smoke/again
```

`train` hands every argument after `--recipe NAME` to the recipe's `main`
(`kerasnas.recipes`). `export` loads a supernet saved as `.keras`, extracts
the child of an architecture (optionally recalibrating its BN statistics)
and writes `child.keras`, a SavedModel `saved_model/` and `export.json`.
`rank` scores architectures on a saved supernet against NAS-Bench-201 and
writes `ranking.csv` (arch, predicted, true, params, flops), `report.json`
(with the parameter-count and FLOPs baselines) and `scatter.png`
(`kerasnas.evaluation.rank_and_report`; rerun to resume an interrupted run).
`compare` trains every method on one budget and reports them side by side
(`kerasnas.recipes.nb201_compare`; `--dry-run` prints the plan).
`search` runs an evolutionary (or random) search on a saved supernet and
writes `search.json`, `top.txt` and, with `--export`, the winner to
`OUTPUT/best` (`kerasnas.recipes.search_common`; `--resume` continues an
interrupted search).
"""

import argparse
import json
import os
import sys

from kerasnas import recipes


def build_parser():
    """The `argparse.ArgumentParser` of the `kerasnas` command."""
    parser = argparse.ArgumentParser(
        prog="kerasnas", description="Weight-sharing neural architecture search for Keras.",
        epilog="--import MODULE (anywhere, repeatable) imports a module first, e.g. the one "
        "that defines your own search space, so that its saved supernets load.",
    )
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import MODULE before the command (your space's module; the current "
        "directory is searched too)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", add_help=False, allow_abbrev=False,
        help="run a training recipe",
        description="Runs a recipe; the arguments after `--recipe NAME` go to the recipe "
        "(see `kerasnas train --recipe NAME --help`).",
    )
    train.add_argument("--recipe", choices=sorted(recipes.RECIPES), help="the recipe to run")
    train.add_argument("-h", "--help", action="store_true", help="show this help (or the recipe's)")

    export = commands.add_parser(
        "export", help="extract a child from a saved supernet and export it",
        description="Extracts the child of ARCH from a supernet saved as .keras and writes "
        "child.keras, saved_model/ and export.json to OUTPUT.",
    )
    export.add_argument("--checkpoint", required=True, help="the supernet, a .keras file")
    export.add_argument(
        "--arch", required=True,
        help="the architecture: a NAS-Bench-201 string, a JSON dict {label: option}, or "
        "a JSON file holding such a dict or an 'arch' key (e.g. a recipe's result.json)",
    )
    export.add_argument("--output", required=True, help="the output directory")
    export.add_argument(
        "--bn-calibration-data",
        help="dataset name or .npz path to recalibrate the child's BN statistics on",
    )
    export.add_argument(
        "--bn-calibration-steps", type=int, default=0,
        help="number of calibration batches (default 0: no recalibration)",
    )
    export.add_argument("--batch-size", type=int, default=64, help="calibration batch size")
    export.add_argument(
        "--image-size", type=int,
        help="resize calibration images (default: the supernet's input size)",
    )

    rank = commands.add_parser(
        "rank", help="rank architectures on a saved supernet against NAS-Bench-201",
        description="Scores architectures on a supernet saved as .keras and compares the "
        "ranking with NAS-Bench-201 (and the parameter-count and FLOPs baselines). Writes "
        "ranking.csv, report.json, scatter.png and scores.csv to OUTPUT; a rerun skips the "
        "architectures already in scores.csv when scores.json shows they were scored on the "
        "same weights, images and settings (else it refuses: see --overwrite).",
    )
    rank.add_argument("--checkpoint", required=True, help="the supernet, a .keras file")
    rank.add_argument(
        "--benchmark", required=True,
        help="NAS-Bench-201 ground truth: a JSON table or a directory of them, or the official file",
    )
    rank.add_argument(
        "--dataset", default="cifar10", help="benchmark dataset: cifar10, cifar100, imagenet16-120"
    )
    rank.add_argument("--data", required=True, help="dataset name or .npz path that scores architectures")
    rank.add_argument("--split", default="test", choices=("test", "search_valid", "search_train", "train"),
                      help="its split (default: test); pick one the supernet never trained on")
    rank.add_argument("--score", default="accuracy", choices=("accuracy", "loss"),
                      help="what ranks an architecture on those images (default: accuracy)")
    rank.add_argument("--num-archs", default="1000", help="how many architectures (an int or 'all')")
    rank.add_argument("--classes", default="exact", choices=("exact", "isomorphic", "none"),
                      help="score each equivalence class once: exact (default; cells equal "
                      "up to ops that cannot reach the output, the same scores), isomorphic "
                      "(NAS-Bench-201's 6,466 classes, approximate in a supernet) or none")
    rank.add_argument("--arch-seed", type=int, default=0, help="seed of the architecture sample")
    rank.add_argument("--batch-size", type=int, default=256, help="evaluation batch size")
    rank.add_argument("--image-size", type=int, help="resize images (default: the supernet's input size)")
    rank.add_argument("--bn-calibration-data", help="dataset name or .npz path to recalibrate BN on")
    rank.add_argument("--bn-calibration-steps", type=int, default=0, help="calibration batches")
    rank.add_argument("--output", required=True, help="the output directory")
    rank.add_argument(
        "--overwrite", action="store_true",
        help="discard the scores already in OUTPUT (they are reused only when the "
        "checkpoint's weights, the images and the settings are those that produced them)",
    )
    compare = commands.add_parser(
        "compare", add_help=False,
        help="compare every method on NAS-Bench-201 (one budget, one report)",
        description="Runs kerasnas.recipes.nb201_compare (see `kerasnas compare --help`).",
    )
    compare.add_argument("-h", "--help", action="store_true", help="show the comparison's help")
    parser.commands = {
        "train": train, "export": export, "rank": rank, "search": _search_parser(commands),
        "compare": compare,
    }
    return parser


def _search_parser(commands):
    from kerasnas.recipes import search_common
    from kerasnas.recipes.nb201_spos import _positive_int as _positive

    search = commands.add_parser(
        "search", help="search a saved supernet with evolution (or random search)",
        description="Searches a supernet saved as .keras: regularized evolution (or random "
        "search) over its space, each architecture scored on a validation split after BN "
        "recalibration, under parameter/FLOPs budgets. Writes search.json, top.txt and the "
        "tuner's trials (search/) to OUTPUT and, with --export, the best architecture's "
        "child.keras, saved_model/ and architecture.json to OUTPUT/best.",
    )
    arg = search.add_argument
    arg("--checkpoint", required=True, help="the supernet, a .keras file")
    arg("--data", required=True, help="dataset name or .npz path that scores architectures")
    arg("--split", default="search_valid", choices=("search_valid", "search_train", "train", "test"),
        help="its split (default: search_valid, NAS-Bench-201's held-out half of train)")
    arg("--limit", type=_positive, help="score on the first LIMIT images of the split")
    arg("--batch-size", type=_positive, default=256, help="evaluation and calibration batch size")
    arg("--image-size", type=_positive, help="resize images (default: the supernet's input size)")
    arg("--oracle", choices=search_common.ORACLES, default="evolution",
        help="evolution (regularized, mutation + crossover; default) or random")
    arg("--max-trials", type=_positive, default=100, help="architectures to evaluate (default 100)")
    arg("--population-size", type=_positive, default=50, help="evolution's population (default 50)")
    arg("--sample-size", type=_positive, default=10, help="evolution's tournament size (default 10)")
    arg("--mutation-prob", type=search_common._probability, default=0.1,
        help="per-choice mutation probability (default 0.1)")
    arg("--crossover", action=argparse.BooleanOptionalAction, default=True,
        help="also cross parents (default: yes)")
    arg("--seed", type=search_common._non_negative_int, default=0, help="seed of the search")
    arg("--max-params", type=search_common.budget,
        help="parameter budget: a number (2.5e5, 250K) or 'median' of 100 random architectures")
    arg("--max-flops", type=search_common.budget,
        help="FLOPs budget: a number (3e7, 30M) or 'median' of 100 random architectures")
    arg("--bn-calibration-data", help="dataset name or .npz path to recalibrate BN on")
    arg("--bn-calibration-split", default="train",
        choices=("train", "search_train", "search_valid"),
        help="its split (default: train)")
    arg("--bn-calibration-steps", type=int, default=0,
        help="calibration batches per architecture (default 0: none)")
    arg("--benchmark", help="NAS-Bench-201 ground truth (directory or file) for the table")
    arg("--dataset", default="cifar10", help="benchmark dataset: cifar10, cifar100, imagenet16-120")
    arg("--top-k", type=_positive, default=10, help="architectures in the table (default 10)")
    arg("--export", action="store_true", help="export the best architecture to OUTPUT/best")
    arg("--resume", action="store_true", help="continue the search in OUTPUT")
    arg("--overwrite", action="store_true", help="discard a previous search in OUTPUT")
    arg("--verbose", type=int, choices=(0, 1), default=1, help="0: silent")
    arg("--output", required=True, help="the output directory")
    return search





# Errors a command reports in one line (the input, a file, the run's state),
# with the exit status; anything else is a bug and keeps its traceback.
_REPORTED = ((ValueError, 2), (OSError, 2), (FloatingPointError, 1))


def main(argv=None):
    """Runs the `kerasnas` command; returns the exit status.

    Bad input, unusable files and a diverged run end in one line on
    standard error, `kerasnas COMMAND: error: ...` naming the argument or
    file, what was expected and what was received, with status 2 (1 for a
    run whose loss diverged; 130 when interrupted); an output directory
    the command created is removed again if nothing but a run's
    configuration was written to it.
    `KERASNAS_TRACEBACK=1` re-raises the error instead (for debugging)."""
    parser = build_parser()
    argv, imports = _take_imports(sys.argv[1:] if argv is None else list(argv))
    args, rest = parser.parse_known_args(argv)
    prog = f"kerasnas {args.command}"
    try:
        _import_modules(imports)  # (`--import` is in the parser for its help only)
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    output = _output_argument(args, rest)
    created = output is not None and not os.path.exists(output)

    def run():
        if output is not None:
            _check_output(output)
        return _dispatch(parser, args, rest)

    return _reporting(prog, run, cleanup=lambda: _remove_if_empty(output, created))


def _reporting(prog, function, cleanup=None):
    """`function()`'s exit status; an error of `_REPORTED` (and an
    interruption) is printed in one line, after `cleanup()`, and gives its
    status instead."""
    try:
        return function()
    except KeyboardInterrupt:
        if cleanup is not None:
            cleanup()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except tuple(kind for kind, _ in _REPORTED) as error:
        if cleanup is not None:
            cleanup()
        if os.environ.get("KERASNAS_TRACEBACK"):
            raise
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return next(status for kind, status in _REPORTED if isinstance(error, kind))


def _take_imports(argv):
    """`(argv without the --import options, their modules)`: `--import
    MODULE` may stand anywhere, also after the command or among a
    recipe's flags."""
    rest, modules, k = [], [], 0
    while k < len(argv):
        item = argv[k]
        if item == "--import" and k + 1 < len(argv):
            modules.append(argv[k + 1])
            k += 2
            continue
        if item.startswith("--import="):
            modules.append(item.split("=", 1)[1])
        else:
            rest.append(item)
        k += 1
    return rest, modules


def _import_modules(modules):
    """Imports each module (the current directory first on the path), so
    that the classes it registers with Keras deserialize."""
    import importlib

    if modules and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(
                "Invalid value for argument `--import`. Expected an importable module "
                f"(a name on the Python path or in the current directory). Received: "
                f"{module!r} ({type(error).__name__}: {error})"
            ) from None


def script(main_function):
    """Runs a recipe script's `main` with the `kerasnas` command's error
    reporting (one line, a non-zero exit status); exits the process."""
    def run():
        main_function()
        return 0

    sys.exit(_reporting(os.path.basename(sys.argv[0]), run))


def _one_line(error):
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}" if isinstance(error, OSError) else text


def _output_argument(args, rest):
    """The `--output` directory of the command, if it names one."""
    output = getattr(args, "output", None)
    if output is None:  # `train` and `compare` hand --output to the recipe
        for k, item in enumerate(rest):
            if item == "--output" and k + 1 < len(rest):
                output = rest[k + 1]
            elif item.startswith("--output="):
                output = item.split("=", 1)[1]
    if output is None or "--help" in rest or getattr(args, "help", False):
        return None
    return os.path.abspath(output)


def _check_output(output):
    """Refuses an `--output` that is a file or lies under one."""
    path = output
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            "Invalid value for argument `--output`. Expected a directory (new or "
            f"existing). Received: {output!r} ("
            + ("an existing file" if path == output else f"{path!r} is a file") + ")"
        )


def _remove_if_empty(output, created):
    """Removes `output` if this command created it and wrote nothing there
    but a run's `config.json` (a run that stopped before its first result:
    nothing to resume)."""
    if not created or output is None or not os.path.isdir(output):
        return
    if any(name != "config.json" for _, _, files in os.walk(output) for name in files):
        return
    import shutil

    shutil.rmtree(output, ignore_errors=True)


def _dispatch(parser, args, rest):
    if args.command == "train":
        train = parser.commands["train"]
        if args.recipe is None:
            if args.help:
                train.print_help()
                return 0
            train.error("the following arguments are required: --recipe")
        recipe = recipes.get(args.recipe)
        recipe.main(
            ["--help"] + rest if args.help else rest,
            prog=f"kerasnas train --recipe {args.recipe}",
        )
        return 0
    if args.command == "compare":
        from kerasnas.recipes import nb201_compare

        nb201_compare.main(["--help"] + rest if args.help else rest, prog="kerasnas compare")
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "rank":
        return rank_command(args, parser.commands["rank"])
    if args.command == "search":
        return search_command(args, parser.commands["search"])
    export = parser.commands["export"]
    try:
        supernet, arch, calibration = _resolve_export(args)
    except ValueError as error:
        export.error(str(error))
    paths = export_child(supernet, arch, args.output, calibration, args.bn_calibration_steps)
    print(f"Exported {args.arch} to {args.output}:")
    for name, path in paths.items():
        print(f"  {name:<12} {path}")
    return 0


def export_child(supernet, arch, output, bn_calibration_data=None, bn_calibration_steps=0):
    """Extracts the child of `arch` and writes it to `output`.

    Args:
        supernet: a `kerasnas.Supernet`.
        arch: architecture dict.
        output: the output directory.
        bn_calibration_data: dataset of training batches, or None.
        bn_calibration_steps: number of BN recalibration batches (0: none).

    Returns:
        `{"child", "saved_model", "export"}` paths.
    """
    from kerasnas.recipes.common import save_child
    from kerasnas.recipes.common import write_json

    child = supernet.extract(
        arch, bn_calibration_data=bn_calibration_data, bn_calibration_steps=bn_calibration_steps
    )
    paths = save_child(child, output)
    space = supernet.space
    paths["export"] = os.path.join(output, "export.json")
    write_json(paths["export"], {
        "arch": space.validate(arch),
        "arch_string": space.to_string(arch),
        "bn_calibration_steps": bn_calibration_steps,
        "paths": dict(paths),
    })
    return paths


def rank_command(args, parser):
    """`kerasnas rank`: ranks and writes the report; returns 0."""
    from kerasnas import data as nas_data
    from kerasnas.benchmarks import NasBench201
    from kerasnas.benchmarks import sample_archs
    from kerasnas.evaluation import format_report
    from kerasnas.evaluation import rank_and_report
    from kerasnas.recipes.common import load_supernet
    from kerasnas.benchmarks import check_benchmark

    try:
        num = args.num_archs if args.num_archs == "all" else _int_argument("--num-archs", args.num_archs)
        if args.batch_size < 1:
            raise _argument_error("--batch-size", "a positive int", args.batch_size)
        steps = _calibration_steps(args)
        # The cheap checks first: the data files and the benchmark.
        for data in (args.data, args.bn_calibration_data if steps else None):
            if data is not None:
                nas_data.info(data)
        benchmark = NasBench201(args.benchmark, dataset=args.dataset)
        supernet = load_supernet(args.checkpoint)
        check_benchmark(benchmark, supernet.space, "checkpoint")
        archs = sample_archs(benchmark, num, args.arch_seed)
        evaluation = nas_data.load(
            args.data, args.split, batch_size=args.batch_size,
            image_size=_image_size(supernet, args.data, args.image_size),
        )
        calibration = None
        if steps:
            calibration = nas_data.load(
                args.bn_calibration_data, "train", batch_size=args.batch_size, shuffle=True,
                seed=0, image_size=_image_size(
                    supernet, args.bn_calibration_data, args.image_size, "bn_calibration_data"
                ),
            )
    except ValueError as error:
        parser.error(str(error))
    described = {
        "checkpoint": os.path.abspath(args.checkpoint), "data": str(args.data),
        "split": args.split, "bn_calibration_data": args.bn_calibration_data,
    }
    report = rank_and_report(
        supernet, benchmark, archs, evaluation, args.output,
        bn_calibration_data=calibration, bn_calibration_steps=steps,
        title=f"{os.path.basename(args.checkpoint)} on {args.data} {args.split}",
        score=args.score,
        classes=None if args.classes == "none" else args.classes,
        scored_on={"split": args.split, "images": nas_data.info(args.data)["num_examples"][args.split]},
        overwrite=args.overwrite, described=described,
    )
    print(f"Ranking of {report['n']} architectures by {args.score} on {args.data} "
          f"{args.split} ({report['scored_on']['images']} images), against NAS-Bench-201 "
          f"{benchmark.dataset}:")
    print(format_report(report))
    print(f"Files in {args.output}: ranking.csv, report.json, scatter.png, scores.csv")
    return 0


def search_command(args, parser):
    """`kerasnas search`: searches, reports, optionally exports; returns 0."""
    from kerasnas import data as nas_data
    from kerasnas.recipes import search_common
    from kerasnas.recipes.common import load_supernet

    config = dict(
        search_common.SEARCH_DEFAULTS,
        checkpoint=os.path.abspath(args.checkpoint), data=args.data, oracle=args.oracle,
        population_size=args.population_size, sample_size=args.sample_size,
        mutation_prob=args.mutation_prob, crossover=args.crossover,
        max_trials=args.max_trials, search_seed=args.seed, max_params=args.max_params,
        max_flops=args.max_flops, search_split=args.split, search_limit=args.limit,
        search_batch_size=args.batch_size, bn_calibration_steps=args.bn_calibration_steps,
        bn_calibration_data=args.bn_calibration_data,
        bn_calibration_split=args.bn_calibration_split, top_k=args.top_k,
        benchmark=args.benchmark, benchmark_dataset=args.dataset,
    )
    try:
        if args.resume and args.overwrite:
            raise ValueError("Pass at most one of `--resume` and `--overwrite`.")
        steps = _calibration_steps(args)
        for data in (args.data, args.bn_calibration_data if steps else None):
            if data is not None:  # the data files first: cheaper than the supernet
                nas_data.info(data)
        supernet = load_supernet(args.checkpoint)
        space = supernet.space
        benchmark = search_common.load_benchmark(config)
        search_common.check_benchmark(benchmark, space)
        oracle = search_common.make_oracle(
            space, config, search_common.make_constraints(space, config)[0]
        )
        validation = nas_data.load(
            args.data, args.split, batch_size=args.batch_size, limit=args.limit,
            image_size=_image_size(supernet, args.data, args.image_size),
        )
        calibration = None
        if steps:
            calibration = search_common.calibration_data(
                args.bn_calibration_data, args.batch_size, steps,
                split=args.bn_calibration_split, seed=0,
                image_size=_image_size(
                    supernet, args.bn_calibration_data, args.image_size, "bn_calibration_data"
                ),
            )
        search_common.prepare_output(
            args.output, config, args.resume, args.overwrite,
            search_common.SEARCH_KEYS + ("checkpoint", "data", "bn_calibration_data"),
        )
    except ValueError as error:
        parser.error(str(error))
    if args.split == "test" and args.verbose:
        print("Note: searching on the test split makes its accuracy an optimistic estimate.")
    search_common.search_and_report(
        supernet, validation, args.output, config, oracle=oracle,
        bn_calibration_data=calibration, benchmark=benchmark, export=args.export,
        description=f"{os.path.basename(str(args.data))} {args.split}", verbose=args.verbose,
    )
    return 0


def _int_argument(name, text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise _argument_error(name, "a positive int or 'all'", text)
    return value


def _calibration_steps(args):
    steps = args.bn_calibration_steps
    if steps < 0:
        raise _argument_error("--bn-calibration-steps", "an int >= 0", steps)
    if steps and not args.bn_calibration_data:
        raise _argument_error(
            "--bn-calibration-data", "a dataset when --bn-calibration-steps > 0", None
        )
    if args.bn_calibration_data and not steps:
        raise _argument_error(
            "--bn-calibration-steps", "a positive int when --bn-calibration-data is given", steps
        )
    return steps


def _image_size(supernet, data, image_size, argument="data"):
    from kerasnas.recipes.search_common import supernet_image_size

    return supernet_image_size(supernet, data, image_size, argument, labels=argument == "data")


def _resolve_export(args):
    """`(supernet, arch, calibration dataset or None)`; ValueError on bad input."""
    from kerasnas import data as nas_data
    from kerasnas.recipes.common import load_supernet

    steps = _calibration_steps(args)
    if args.batch_size < 1:
        raise _argument_error("--batch-size", "a positive int", args.batch_size)
    supernet = load_supernet(args.checkpoint)
    arch = parse_arch(supernet.space, args.arch)
    calibration = None
    if steps:
        calibration = nas_data.load(
            args.bn_calibration_data, "train", batch_size=args.batch_size, shuffle=True,
            seed=0, image_size=_image_size(
                supernet, args.bn_calibration_data, args.image_size, "bn_calibration_data"
            ),
        )
    return supernet, arch, calibration


def parse_arch(space, text):
    """An architecture from a string: a file, a JSON dict or the space's codec.

    Args:
        space: the `kerasnas.spaces.SearchSpace`.
        text: a path to a JSON file (a dict `{label: option}`, or a dict
            with an `"arch"` key such as a recipe's `result.json`), a JSON
            dict, or a string the space decodes with `from_string` (e.g. a
            NAS-Bench-201 string).

    Returns:
        The validated architecture dict.
    """
    try:
        if os.path.isfile(text):
            with open(text) as f:
                arch = json.load(f)
            if isinstance(arch, dict) and isinstance(arch.get("arch"), dict):
                arch = arch["arch"]
        elif text.lstrip().startswith("{"):
            arch = json.loads(text)
        else:
            arch = space.from_string(text)
        return space.validate(arch)
    except ValueError as error:  # json.JSONDecodeError is a ValueError.
        raise _argument_error(
            "--arch", "an architecture string, a JSON dict or a JSON file", text,
            detail=str(error),
        ) from None


def _argument_error(name, expected, value, detail=None):
    message = f"Invalid value for argument `{name}`. Expected {expected}. Received: {value!r}"
    return ValueError(message + (f" ({detail})" if detail else ""))


if __name__ == "__main__":
    sys.exit(main())
