"""How well does a SPOS supernet rank NAS-Bench-201 architectures?

Trains the SPOS supernet of `nb201_spos` (same presets, same training),
watches its ranking while it trains (Kendall tau and P@Top5% of a fixed
sample of architectures every `monitor_every` epochs: `RankingMonitor`),
then scores a fixed seeded sample of `num_archs` architectures (1,000 by
default: P@Top5% over 200 architectures is 10 architectures, too noisy) and
compares the ranking with NAS-Bench-201's CIFAR-10 test accuracies, next to
the training-free baselines (parameter count, FLOPs).

Architectures are scored on images the supernet never trained on
(`eval_split`, with `train_split` the images it trains on); reports,
plots and tables say which images scored the ranking (`scored_on`), and
say "training images" when the two overlap. `fit_limit` adds the same
ranking on training images beside it (`fit_training_images/`).

The `cifar10-subset` preset is the CPU proxy, calibrated to rank on
held-out images as well as it can in under 25 minutes on a 2-core CPU (see
`PRESETS` for the measurements behind it);
`cifar10-subset-train-images` is the earlier proxy that ranked on training
images. With `--seeds 0 1 2` each seed runs in
`output/seed_<s>/` and a mean ± std table and one KT-over-epochs plot of
all seeds are written to `output/`.

Outputs, under `output/` (per seed): everything `nb201_spos` writes during
training (`config.json`, `checkpoints/`, `tensorboard/`, `history.*`,
`supernet.keras`), and `scores.csv`, `ranking.csv`, `report.json`,
`scatter.png` (`kerasnas.evaluation.rank_and_report`), `kt_over_epochs.png`,
`result.json` and, with `fit_limit`, `fit_training_images/`.

Usage:

```shell
python recipes/nb201_rank.py --preset cifar10-subset --output runs/rank
python recipes/nb201_rank.py --preset cifar10-subset --seeds 0 1 2 --output runs/rank3
kerasnas train --recipe nb201-rank --preset smoke
```
"""

import argparse
import json
import math
import types
from pathlib import Path

import keras
import numpy as np

import kerasnas
from kerasnas import data as nas_data
from kerasnas.benchmarks import NasBench201 as NasBench201Benchmark
from kerasnas.benchmarks import sample_archs
from kerasnas.callbacks import SplitWeights
from kerasnas.callbacks import latest_checkpoint
from kerasnas.evaluation import RankingMonitor
from kerasnas.evaluation import format_report
from kerasnas.evaluation import plot_metric_over_epochs
from kerasnas.evaluation import rank_and_report
from kerasnas.evaluation import ranking_report
from kerasnas.evaluation import ranking_seconds
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import archived_checkpoint
from kerasnas.recipes.common import scored_on
from kerasnas.recipes.common import write_json
from kerasnas.timing import running_time

_SHARED = Path(__file__).resolve().parents[2].parent / "shared"

_RANK = dict(
    benchmark=str(_SHARED / "data" / "nb201"),
    num_archs=1000,
    arch_seed=0,
    train_split="train",
    eval_split="test",
    eval_limit=None,
    # What ranks an architecture on the scoring images: its top-1 accuracy
    # or its (negative) mean cross-entropy.
    score="accuracy",
    # With an int N, the architectures are also ranked on the first N
    # training images (`fit_training_images/`, `result["fit_report"]`).
    fit_limit=None,
    eval_batch_size=256,
    # Score in this dtype policy (None: the supernet's own); e.g.
    # "mixed_bfloat16" on CPUs with AVX512-BF16 (tools/bench_rank.py).
    score_dtype_policy=None,
    bn_calibration_steps=0,
    monitor_every=25,
    monitor_archs=200,
    exclude_ops=[],
    # PA&DA (kerasnas.recipes.nb201_pada): "spos", "pa", "da" or "pada";
    # δ and τ None = linear epoch / epochs, as the reference.
    method="spos",
    delta=None,
    tau=None,
    path_floor=None,
    path_shared=True,
    importance_weighted_loss=False,
    # Few-shot (kerasnas.recipes.nb201_gmnas): None (one-shot) or a
    # `kerasnas.fewshot` split method, with its schedule.
    split_method=None,
    # RSWS' uniform paths that redraw a path cutting the output off
    # (GM-NAS' `check_connect`).
    reject_disconnected=False,
    split_epochs=None,
    split_repeats=100,
    split_metric="cos",
    restart="final",
    # Inter-choice weights (kerasnas.recipes.nb201_interchoice): None,
    # "bias", "mul_bias", "bias_sum" or "split" (split at the epochs of
    # `split_milestones`), with the layers' `interchoice_options`.
    interchoice=None,
    interchoice_options=None,
    split_milestones=None,
    # Rank only architectures without `exclude_ops` (the trained space).
    rank_trained_space=False,
    # DCNAS (kerasnas.recipes.nb201_dcnas): None, or the options of
    # `kerasnas.recipes.nb201_dcnas.DCNAS` (copies, pool, schedule, meta
    # network).
    dcnas=None,
)

PRESETS = {
    # Plumbing only (a minute): too short to rank anything.
    "smoke": dict(
        nb201_spos.PRESETS["cifar10-subset"], **dict(
            _RANK, image_size=16, epochs=2, limit=512, num_archs=40,
            monitor_every=1, monitor_archs=20,
        ),
    ),
    # The CPU proxy: trains on the 5,085 training images of the CIFAR-10
    # subset and ranks on the 1,017 test images it never trained on, by
    # the (negative) mean loss. 8 channels, one cell per stage, 16x16
    # images, batch statistics in every BN, crop (padding 2) + flip, 'none'
    # never sampled in training, SGD lr 0.1 cosine, 150 epochs (12.6
    # minutes of training and 2.9 of ranking, measured on a 2-core machine
    # shared with other jobs: an upper bound). The same
    # architectures are also ranked on the first 1,024 training images
    # (`fit_limit`, the "[fit]" rows of the tables): that measures how well
    # subnets fit what the supernet saw, not how they generalise.
    #
    # Calibration (`python tools/calibrate_proxy.py`, SPOS, seed 7, 1,000
    # architectures of arch seed 11, KT / P@Top5% against NAS-Bench-201
    # CIFAR-10 test accuracy, 2026-12-04; minutes under a loaded 2-core
    # machine, so upper bounds):
    #   setting (overrides of cifar10-subset-train-images) KT acc  KT loss  P@5 loss  train min
    #   search_train -> search_valid (2,543), no aug      0.155   0.109    0.00      12.5
    #   search_train -> search_valid, crop 2 + flip       0.090   0.185    0.04      11.7
    #   train -> test (1,017), crop 2 + flip (chosen)     0.302   0.424    0.38      12.6
    #   train -> test, crop 2 + flip, 60 epochs           0.132   0.244    0.10       6.2
    #   train -> test, flips only                         0.319   0.251    0.16       9.5
    #   parameter count on the same architectures         0.584
    # The supernets' KT on the held-out images peaks early and falls as they
    # overfit (monitored 200 architectures, search_train, no aug: 0.23 at
    # epoch 50, 0.14 at 150); twice the training images and augmentation
    # move it most, and with them 150 epochs beat 60. Single-seed numbers:
    # differences under ~0.05 are within a seed's noise. Stand-alone ceiling (`tools/standalone_ceiling.py`: 40
    # architectures of arch seed 11 trained alone 30 epochs on
    # search_train with crop 2 + flip, standard BN): KT 0.596 on
    # search_valid by accuracy (0.527 by loss), 0.450 on the test images,
    # 0.688 by their final training accuracy; parameter count 0.469 on
    # those 40. Trained alone on all 5,085 training images (the chosen
    # proxy's data): 0.574 by accuracy and 0.648 by loss on the test images.
    "cifar10-subset": dict(
        nb201_spos.PRESETS["cifar10-subset"], **dict(
            _RANK, image_size=16, epochs=150, augment=True, crop_padding=2,
            learning_rate=0.1, exclude_ops=["none"], train_split="train",
            eval_split="test", eval_limit=None, score="loss", fit_limit=1024,
        ),
    ),
    # The proxy of #3 and #5, kept to reproduce their tables: no
    # augmentation, architectures ranked by accuracy on the first 1,024
    # *training* images. On 5k images the supernet overfits, and how well a
    # subnet fits the training images follows its capacity: this measures
    # fit (KT 0.43 for SPOS), and on held-out images the same supernets rank
    # at KT 0.14-0.16 (issue #12).
    "cifar10-subset-train-images": dict(
        nb201_spos.PRESETS["cifar10-subset"], **dict(
            _RANK, image_size=16, epochs=150, augment=False, learning_rate=0.1,
            exclude_ops=["none"], eval_split="train", eval_limit=1024,
        ),
    ),
    # PA&DA's evaluation (REFERENCE_NOTES §1): every architecture, on the
    # CIFAR-10 test set, batch 512, batch statistics.
    "paper": dict(
        nb201_spos.PRESETS["paper"], **dict(
            _RANK, num_archs="all", eval_batch_size=512, monitor_every=10,
        ),
    ),
}

_TRAINING_KEYS = nb201_spos._TRAINING_KEYS + (
    "train_split", "exclude_ops", "method", "delta", "tau", "path_floor", "path_shared",
    "importance_weighted_loss", "reject_disconnected", "split_method", "split_epochs", "split_repeats", "split_metric",
    "restart", "fix_schedule", "interchoice", "interchoice_options", "split_milestones", "dcnas",
)
METHODS = ("spos", "pa", "da", "pada")
# Options that only act when their gate key is set.
_GATED = {
    "split_method": ("split_epochs", "split_repeats", "split_metric", "restart", "fix_schedule"),
    "interchoice": ("interchoice_options", "split_milestones"),
}


def run(config, output, resume=False, overwrite=False, verbose=2):
    """Trains, monitors and ranks one seed; returns `result.json`'s content."""
    output = Path(output)
    paths = nb201_spos.output_paths(output)
    nb201_spos._prepare_output(config, paths, resume, overwrite, _TRAINING_KEYS)
    if resume:
        done = completed_result(paths, config)
        if done is not None:
            print(f"Already complete: {paths['result']} (trained and ranked with this config).")
            return done
    benchmark = NasBench201Benchmark(config["benchmark"], dataset="cifar10")
    archs = ranked_archs(benchmark, config)

    keras.utils.set_random_seed(config["seed"])
    space, steps_per_epoch = nb201_spos.build_space(config)
    path_sampler, data_sampler, sampler_callbacks = samplers(config)
    if config.get("interchoice") == "split":
        sampler_callbacks.append(SplitWeights(config["split_milestones"]))
    supernet = nb201_spos.build_supernet(space, config, steps_per_epoch, path_sampler)
    if config.get("dcnas"):
        from kerasnas.recipes import nb201_dcnas

        sampler_callbacks.append(nb201_dcnas.schedule(config, output))
    if config["exclude_ops"]:
        supernet.set_mask({
            label: [o for o in options if o not in config["exclude_ops"]]
            for label, options in space.choices.items()
        })
    evaluation, scoring = evaluation_data(config)
    calibration = None
    if config["bn_calibration_steps"]:
        calibration = nas_data.load(
            config["data"], config["train_split"], batch_size=config["batch_size"],
            image_size=config["image_size"], limit=config["limit"],
        )
    monitored = archs[: config["monitor_archs"]]
    monitor = RankingMonitor(
        monitored, benchmark, evaluation, every=config["monitor_every"],
        bn_calibration_data=calibration,
        bn_calibration_steps=config["bn_calibration_steps"],
        score=config["score"],
    )
    start = running_time()
    ranked = supernet
    if config.get("split_method"):  # a few-shot tree, its leaves scored
        from kerasnas.recipes import nb201_gmnas

        ranked, history, train_steps = nb201_gmnas.train_tree(
            supernet, config, output, resume, overwrite, verbose, steps_per_epoch,
        )
    else:
        history = nb201_spos.train(
            supernet, config, paths, resume, verbose,
            callbacks=sampler_callbacks + [monitor], data_sampler=data_sampler,
        )
        train_steps = steps_per_epoch * config["epochs"]
        supernet.save(paths["supernet"])
    train_seconds = running_time() - start
    # Every epoch's (and split's), resumed ones included.
    if config.get("split_method"):
        train_seconds = ranked.train_seconds(config["epochs"]) or train_seconds
    else:
        train_seconds = nb201_spos.train_seconds(history, train_seconds)
    nb201_spos._write_history(history, paths["history"], paths["history_csv"])

    start = running_time()
    report = rank_and_report(
        ranked, benchmark, archs, evaluation, output,
        bn_calibration_data=calibration,
        bn_calibration_steps=config["bn_calibration_steps"],
        title=f"{config['method'].upper()} supernet, seed {config['seed']}, {scoring['label']}",
        verbose=1 if verbose == 1 else 0,
        score=config["score"],
        scored_on=scoring,
        dtype_policy=config.get("score_dtype_policy"),
    )
    # Every process's scoring, a resumed ranking included (else this one's).
    rank_seconds = ranking_seconds(output / "scores.csv") or (running_time() - start)
    fit = None
    if config.get("fit_limit"):
        # The same ranking scored on training images: how well each subnet
        # fits what the supernet trained on (not a measure of
        # generalisation; kept beside the held-out one for comparison).
        fit_data, fit_scoring = evaluation_data(dict(
            config, eval_split=config["train_split"], eval_limit=config["fit_limit"],
        ))
        fit = rank_and_report(
            ranked, benchmark, archs, fit_data, output / "fit_training_images",
            bn_calibration_data=calibration,
            bn_calibration_steps=config["bn_calibration_steps"],
            title=f"{config['method'].upper()} supernet, seed {config['seed']}, {fit_scoring['label']}",
            verbose=1 if verbose == 1 else 0, score=config["score"], scored_on=fit_scoring,
            dtype_policy=config.get("score_dtype_policy"),
        )
    curve = monitoring_curve(history)
    monitored_params = ranking_report(
        benchmark.table(monitored, "params"), benchmark.table(monitored, "test_acc")
    )
    if curve["epoch"]:  # a few-shot tree is not monitored while it trains
        plot_metric_over_epochs(
            {f"seed {config['seed']}": curve}, output / "kt_over_epochs.png",
            baselines={"params": monitored_params},
            title=f"Kendall tau of {len(monitored)} monitored architectures",
        )
    result = {
        "report": report,
        "curve": curve,
        "monitored_archs": len(monitored),
        "monitored_params_baseline": monitored_params,
        "train_seconds": train_seconds,
        "train_steps": int(train_steps),
        "rank_seconds": rank_seconds,
        "config": config,
    }
    if fit is not None:
        result["fit_report"] = fit
    write_json(paths["result"], result)
    print(f"\nRanking of {report['n']} architectures by {config['score']} on "
          f"{scoring['label']}, against NAS-Bench-201 CIFAR-10 test accuracy:")
    print(format_report(report))
    if fit is not None:
        print(f"The same ranking by {config['score']} on {fit['scored_on']['label']} (fit, not generalisation):")
        print(format_report(fit))
    print(f"(trained in {train_seconds:.0f} s, ranked in {rank_seconds:.0f} s; files in {output})")
    return result


def ranked_archs(benchmark, config):
    """The architectures a run ranks: `num_archs` of the benchmark's, a
    seeded sample (`arch_seed`); with `rank_trained_space`, of those that
    use none of `exclude_ops` (e.g. all 64 of the conv-only space)."""
    if not config.get("rank_trained_space") or not config["exclude_ops"]:
        return sample_archs(benchmark, config["num_archs"], config["arch_seed"])
    excluded = set(config["exclude_ops"])
    space = kerasnas.spaces.NasBench201()
    population = [a for a in benchmark.archs() if not excluded & set(space.from_string(a).values())]
    num = config["num_archs"]
    num = None if num == "all" or num is None or num >= len(population) else num
    # `sample_archs` draws from anything with `archs()` (a plain list is
    # refused there, as a likely mistake).
    return sample_archs(types.SimpleNamespace(archs=lambda: population), num, config["arch_seed"])


def completed_result(paths, config):
    """The saved `result.json` of a run that finished with exactly `config`
    (its last checkpoint, or the last one an archive of it records, is the
    final epoch), or None: a resumed finished run is not ranked again."""
    if not paths["result"].exists():
        return None
    if not config.get("split_method"):  # a few-shot tree writes no checkpoints here
        last = latest_checkpoint(paths["checkpoints"])
        name = Path(last).name if last else archived_checkpoint(paths["checkpoints"])
        if name != f"epoch_{config['epochs']:05d}.npz":
            return None
    result = json.loads(paths["result"].read_text())
    saved = result.get("config") or {}
    # Keys added to the recipe since the run, left at their off values
    # (None, False), do not make a finished run unfinished.
    requested = {
        k: v for k, v in json.loads(json.dumps(config)).items() if k in saved or v not in (None, False)
    }
    # Options of a feature that is off (e.g. the few-shot schedule without
    # `split_method`) are inactive: missing from an older run, they do not
    # make it unfinished either.
    for gate, options in _GATED.items():
        if not requested.get(gate):
            for key in options:
                if key not in saved:
                    requested.pop(key, None)
    if saved != requested:
        return None
    return result


def evaluation_data(config):
    """`(dataset, scored_on)`: the batches that score architectures
    (`eval_split`, at most `eval_limit` images; `limit` applies when the
    split is the training one) and the description of those images
    (`kerasnas.recipes.common.scored_on`)."""
    train_split = config.get("train_split", "train")
    limits = [config["eval_limit"]]
    if config["eval_split"] == train_split:
        limits.append(config["limit"])
    limits = [v for v in limits if v is not None]
    limit = min(limits) if limits else None
    dataset = nas_data.load(
        config["data"], config["eval_split"], batch_size=config["eval_batch_size"],
        image_size=config["image_size"], limit=limit,
    )
    return dataset, scored_on(config["data"], train_split, config["eval_split"], limit)


def samplers(config):
    """`(path sampler or None, data sampler or None, their callbacks)` of
    `config["method"]`: SPOS (uniform), PA (path importance), DA (data
    importance) or PA&DA (both)."""
    from kerasnas.sampling import ImportanceDataSampler
    from kerasnas.sampling import ImportancePathSampler

    method = config["method"]
    if method not in METHODS:
        raise ValueError(
            f"Invalid value for argument `method`. Expected one of {list(METHODS)}. "
            f"Received: method={method!r}"
        )
    path, data, callbacks = None, None, []
    if config.get("reject_disconnected"):
        if method != "spos":
            raise ValueError(
                "Invalid value for argument `reject_disconnected`. Expected it only "
                f"with method='spos' (uniform paths). Received: method={method!r}"
            )
        from kerasnas.sampling import UniformPathSampler

        path = UniformPathSampler(reject_disconnected=True, name="path_sampler")
    if method in ("pa", "pada"):
        path = ImportancePathSampler(
            shared=config["path_shared"], parameter_free_floor=config["path_floor"],
            name="path_sampler",
        )
        callbacks.append(path.callback(delta=config["delta"]))
    if method in ("da", "pada"):
        x, y = nb201_spos.split_arrays(config["data"], config.get("train_split", "train"))
        data = ImportanceDataSampler(
            (x, y), config["batch_size"],
            map_fn=nb201_spos.make_preprocess(
                config["data"], x.dtype, config["augment"], config["image_size"],
                config.get("crop_padding", 4),
            ),
            tau=config["tau"], seed=config["seed"], limit=config["limit"],
            importance_weighted_loss=config["importance_weighted_loss"],
        )
        callbacks.append(data.callback())
    return path, data, callbacks


def monitoring_curve(history, prefix="rank_"):
    """`{"epoch": [...], metric: [...]}` of the epochs the monitor scored."""
    key = prefix + "kendall_tau"
    values = history.get(key, [])
    scored = [i for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    curve = {"epoch": [i + 1 for i in scored]}
    for name, series in history.items():
        if name.startswith(prefix):
            curve[name[len(prefix):]] = [series[i] for i in scored]
    return curve


def run_seeds(config, seeds, output, resume=False, overwrite=False, verbose=2):
    """`run` for every seed, then a mean ± std summary of all of them."""
    output = Path(output)
    results = {}
    for seed in seeds:
        results[seed] = run(
            dict(config, seed=seed), output / f"seed_{seed}",
            resume=resume, overwrite=overwrite, verbose=verbose,
        )
    summary = summarize(results)
    write_json(output / "summary.json", summary)
    plot_metric_over_epochs(
        {f"seed {s}": r["curve"] for s, r in results.items()},
        output / "kt_over_epochs.png",
        baselines={"params": next(iter(results.values()))["monitored_params_baseline"]},
        title="Kendall tau of the monitored architectures, every seed",
    )
    print(f"\nOver seeds {list(seeds)} (mean ± std):")
    for name, stats in summary["metrics"].items():
        print(f"  {name:<24} {stats['mean']:.3f} ± {stats['std']:.3f}")
    for name, values in summary["baselines"].items():
        print(f"  baseline {name:<15} KT {values['kendall_tau']:.3f}  "
              f"P@Top5% {values['precision_at_top_5%']:.3f}")
    return summary


def summarize(results):
    """Mean and standard deviation over seeds of the main metrics."""
    names = ("kendall_tau", "spearman", "precision_at_top_5%", "precision_at_top_10%")
    metrics = {}
    for name in names:
        values = [r["report"][name] for r in results.values() if name in r["report"]]
        if values:
            metrics[name] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "values": [float(v) for v in values],
            }
    first = next(iter(results.values()))["report"]
    return {
        "seeds": list(results),
        "metrics": metrics,
        "baselines": first.get("baselines", {}),
    }


# === Command line ===
def _num_archs(text):
    if text == "all":
        return text
    return nb201_spos._positive_int(text)


def build_parser(prog="nb201_rank"):
    """The recipe's `argparse.ArgumentParser` (nb201_spos' flags and more)."""
    parser = nb201_spos.build_parser(prog)
    parser.description = (
        "Train a SPOS supernet on NAS-Bench-201 and measure how well it ranks "
        "architectures against the benchmark."
    )
    for action in parser._actions:
        if action.dest == "preset":
            action.choices = sorted(PRESETS)
        if action.dest == "num_candidates":
            action.help = argparse.SUPPRESS
    arg = parser.add_argument
    arg("--benchmark", help="NAS-Bench-201 ground truth: JSON file or directory, or official file")
    arg("--num-archs", type=_num_archs, help="architectures to rank (an int or 'all')")
    arg("--arch-seed", type=int, help="seed of the architecture sample")
    arg("--train-split", choices=("train", "search_train"),
        help="split the supernet trains on (search_train: NAS-Bench-201's half of train)")
    arg("--eval-split", choices=("test", "train", "search_valid"),
        help="split that scores architectures (held out unless the supernet trained on it)")
    arg("--score", choices=("accuracy", "loss"), help="what ranks an architecture on those images")
    arg("--fit-limit", type=nb201_spos._positive_int,
        help="also rank on the first N training images (fit, beside the held-out ranking)")
    arg("--eval-batch-size", type=nb201_spos._positive_int)
    arg("--score-dtype-policy", choices=("float32", "mixed_bfloat16"),
        help="score architectures in this dtype policy (default: the supernet's)")
    arg("--eval-limit", type=nb201_spos._positive_int, help="score on the first N images of the split")
    arg("--bn-calibration-steps", type=int, help="BN recalibration batches per architecture")
    arg("--monitor-every", type=nb201_spos._positive_int, help="monitor the ranking every N epochs")
    arg("--monitor-archs", type=nb201_spos._positive_int, help="architectures monitored")
    arg("--exclude-ops", nargs="*", help="options never sampled in training (e.g. none)")
    arg("--seeds", type=int, nargs="+", help="run every seed and summarize (mean ± std)")
    arg("--method", choices=METHODS, help="sampling: spos (uniform), pa, da or pada (PA&DA)")
    arg("--delta", type=_fraction, help="constant δ of path importance (default: epoch / epochs)")
    arg("--tau", type=_fraction, help="constant τ of data importance (default: epoch / epochs)")
    arg("--path-floor", type=_fraction, help="lower bound of parameter-free ops' probability")
    return parser


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], received {text!r}")
    return value


def config_from_args(args):
    """The preset of `args.preset` updated with the flags that were given."""
    return nb201_spos.config_from_args(args, PRESETS)


def main(argv=None, prog="nb201_rank"):
    """Command-line entry point; returns the result (or summary) dict."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = config_from_args(args)
    output = Path(args.output or Path("runs") / "nb201_rank" / args.preset)
    try:
        if args.seeds:
            return run_seeds(config, args.seeds, output, args.resume, args.overwrite, args.verbose)
        return run(config, output, resume=args.resume, overwrite=args.overwrite, verbose=args.verbose)
    except ValueError as error:
        parser.error(str(error))
