"""Every method side by side on NAS-Bench-201: one space, one data set, one
budget, one harness.

Trains the supernets of SPOS, PA, DA, PA&DA (`nb201_pada`), GM-NAS
(`nb201_gmnas`, gradient-matching splits), DARTS with its three selections
(`nb201_darts_pt`: argmax α, PT-Mag, PT), inter-choice bias and split
weights (`nb201_interchoice`) and DCNAS (`nb201_dcnas`), each with its own
recipe's run function, and reports them in one table:

- the ranking of the same `num_archs` architectures (Kendall tau, Spearman,
  P@Top5%, Spearman of the top 1 %), scored on images no supernet trained
  on, against NAS-Bench-201's CIFAR-10 test accuracy and, for transfer,
  CIFAR-100 and ImageNet16-120's; the parameter-count and FLOPs predictors
  as rows; a "[fit]" row (training images) beside a method when its runs
  have one. The DARTS family's ranking is the DARTS supernet's (one
  supernet, three selections: the same ranking);
- the best architecture each method finds by its own procedure, never by
  the benchmark: the top of its ranking (the supernet's score of
  `num_archs` random architectures, a random search), or DARTS' argmax α,
  PT-Mag's and PT's selection; with its NB201 test accuracy on the three
  data sets;
- cost: optimizer steps and seconds of training (every node of a few-shot
  tree counted) and of the search or selection. Seconds are running time
  (`kerasnas.timing`: wall-clock less any time the process was stopped);
  the tables give their median over seeds, since on a shared machine one
  run may still be slowed by others (every run's own seconds are in
  `table.json`).

**One budget.** With `budget_steps` (the `smoke` and `cifar10-subset`
presets) every method's supernet weights take that many optimizer steps:
epochs = budget / batches per epoch (a DARTS step also updates α on a
validation batch: its seconds say what a step costs), a GM-NAS tree's
supernet epochs and split epochs are chosen so that its node-epochs (every
leaf counted) are the budget, DCNAS' schedule (T_w + 12 T + T_f) and the
split weights' milestone are scaled to it. A budget a method cannot meet
(not whole epochs, too short for its schedule) is a ValueError before
anything trains. The steps are equal; seconds are reported beside them
because step costs differ (DARTS evaluates every candidate). The `paper`
preset runs every method's reference schedule on full CIFAR-10
(`budget_steps` None) and prints its estimated GPU-hours first
(`estimate_gpu_hours`); `--dry-run` prints the plan of any preset
(what is complete, partial, reusable or still to run) and stops.

**Resume.** Every run resumes from its checkpoints (`--resume`); a
complete run is not trained or ranked again, so a killed comparison
continues with the runs it lacks. `--reuse DIR` copies a complete run of
exactly the same config found under DIR (e.g. `runs/pada_heldout`) instead
of training it again (`reused_from.txt` records where from).

Outputs: `output/<method>/seed_<s>/` (each run as its recipe writes it;
the DARTS family shares `output/darts/seed_<s>/`, its ranking in
`rank/`), `output/plan.json`, `output/table.json`, `output/table.txt`,
`output/kt_over_epochs.png`, `output/improvement.png`,
`output/best_vs_cost.png`.

Usage:

```shell
kerasnas compare --preset cifar10-subset --seeds 0 1 2 --resume --reuse runs
kerasnas compare --preset paper --dry-run
python recipes/nb201_compare.py --preset smoke --methods spos pada darts-pt
```
"""

import argparse
import contextlib
import csv
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np

from kerasnas.recipes import nb201_darts_pt
from kerasnas.recipes import nb201_dcnas
from kerasnas.recipes import nb201_gmnas
from kerasnas.recipes import nb201_interchoice
from kerasnas.recipes import nb201_pada
from kerasnas.recipes import nb201_rank
from kerasnas.recipes import nb201_spos
from kerasnas.recipes.common import write_json
from kerasnas.timing import running_time

METHODS = (
    "spos", "pa", "da", "pada", "gmnas", "darts", "darts-pt", "pt-mag",
    "interchoice-bias", "interchoice-split", "dcnas",
)
# The DARTS family: one DARTS supernet per seed, selected three ways.
DARTS_SELECTIONS = {"darts": "argmax", "darts-pt": "pt", "pt-mag": "pt-mag"}
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
METRICS = ("kendall_tau", "spearman", "precision_at_top_5%", "spearman_at_top_1%")

# What the DARTS family takes from the comparison's data and network (its
# optimizer, α and PT settings stay its recipe's).
_SHARED_GEOMETRY = ("data", "image_size", "channels", "cells", "batch_size", "limit", "augment",
                    "crop_padding", "benchmark")


PRESETS = {
    # Plumbing, every method in a few minutes: 64 images, 12 epochs of one
    # step (the shortest DCNAS schedule), 20 architectures on 64 test images.
    "smoke": dict(
        rank=dict(
            nb201_rank.PRESETS["smoke"], limit=64, channels=4, num_archs=20, eval_limit=64,
            monitor_every=12, monitor_archs=5, exclude_ops=["none"],
        ),
        budget_steps=12,
        darts=dict(nb201_darts_pt.PRESETS["smoke"], interval=1, tune_epochs=1),
        split_repeats=1,
        dcnas=dict(nb201_dcnas.DCNAS, pool_size=20),
    ),
    # The held-out CPU proxy of `nb201_rank` (5,085 training images, 1,000
    # architectures ranked by loss on the 1,017 test images), 12,000 steps
    # each: 150 epochs for the single-path methods, as `nb201_pada`'s and
    # `nb201_dcnas`' tables (their runs are reused with `--reuse`).
    "cifar10-subset": dict(
        rank=dict(nb201_rank.PRESETS["cifar10-subset"]),
        budget_steps=12000,
        darts=dict(nb201_darts_pt.PRESETS["cifar10-subset"]),
        split_repeats=nb201_gmnas.PRESETS["cifar10-subset"]["split_repeats"],
        dcnas=dict(nb201_dcnas.DCNAS, pool_size=1000),
    ),
    # Every method's reference schedule on full CIFAR-10 (each recipe's
    # `paper` preset), all 15,625 architectures ranked: no common budget.
    "paper": dict(
        rank=dict(nb201_rank.PRESETS["paper"]),
        budget_steps=None,
        darts=dict(nb201_darts_pt.PRESETS["paper"]),
        split_repeats=nb201_gmnas.PRESETS["paper"]["split_repeats"],
        dcnas=dict(nb201_dcnas.DCNAS),
    ),
}


# === The runs of a comparison ===
def check_methods(methods):
    """Raises a ValueError naming any unknown method (or none given)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"Invalid value for argument `methods`. Expected any of {list(METHODS)}. "
            f"Received: {list(methods) if methods else methods!r}"
            + (f" (unknown: {unknown})" if unknown else "")
        )


def _epochs(budget, steps_per_epoch, method):
    if budget % steps_per_epoch:
        raise ValueError(
            f"Invalid value for argument `budget_steps`. Expected a multiple of the "
            f"{steps_per_epoch} batches per epoch of {method} (whole epochs; e.g. "
            f"{budget - budget % steps_per_epoch} or {budget - budget % steps_per_epoch + steps_per_epoch}). "
            f"Received: budget_steps={budget}"
        )
    return budget // steps_per_epoch


def gm_schedule(budget_epochs):
    """`(epochs, [split 1, split 2])` of the GM-NAS tree whose node-epochs
    are `budget_epochs` (`kerasnas.methods.GMNAS.scale`)."""
    from kerasnas.methods.gmnas import gm_schedule as schedule

    return schedule(budget_epochs, argument="budget_steps")


def dcnas_schedule(epochs, num_layers=6):
    """DCNAS' `(T_w, T, T_f)` scaled to `epochs` (`kerasnas.methods.dcnas`)."""
    from kerasnas.methods.dcnas import dcnas_schedule as schedule

    return schedule(epochs, num_layers, argument="budget_steps")


def darts_config(config):
    """The `nb201_darts_pt` run config of a comparison (its data and
    network, the DARTS recipe's optimizer, α and PT settings)."""
    darts = dict(config["darts"], fix_alpha=False)
    if config["budget_steps"] is not None:
        darts.update({key: config["rank"][key] for key in _SHARED_GEOMETRY})
        _, steps = nb201_spos.build_space(darts)
        darts["epochs"] = _epochs(config["budget_steps"], steps, "darts (search_train)")
    return darts


def method_config(config, method):
    """The run config of `method`: `nb201_rank`'s for every method but the
    DARTS family (`nb201_darts_pt`'s)."""
    check_methods([method])
    if method in DARTS_SELECTIONS:
        return darts_config(config)
    budget, base = config["budget_steps"], dict(config["rank"])
    if budget is None:  # each method's reference (its recipe's preset)
        preset = config["preset"]
        if method == "gmnas":
            return nb201_gmnas.method_config(nb201_gmnas.PRESETS[preset], "gm")
        if method.startswith("interchoice-"):
            run = nb201_interchoice.variant_config(
                nb201_interchoice.PRESETS[preset], "no-none", method.split("-")[1]
            )
            return dict(run, rank_trained_space=False)
        if method == "dcnas":
            return nb201_dcnas.variant_config(nb201_dcnas.PRESETS[preset], "dcnas")
        return dict(base, method=method)
    _, steps = nb201_spos.build_space(base)
    epochs = _epochs(budget, steps, method)
    if method in nb201_rank.METHODS:
        return dict(base, method=method, epochs=epochs)
    if method == "gmnas":
        tree, splits = gm_schedule(epochs)
        run = nb201_gmnas.method_config(
            dict(base, epochs=tree, split_epochs=splits, split_repeats=config["split_repeats"]), "gm"
        )
        assert nb201_gmnas.tree_epochs(run) == epochs
        return run
    if method.startswith("interchoice-"):
        variant = method.split("-")[1]
        from kerasnas.methods.interchoice import split_milestone

        milestone = split_milestone(epochs)
        run = nb201_interchoice.variant_config(
            dict(base, epochs=epochs, split_milestones=[milestone], interchoice_options=None),
            "no-none", variant,
        )
        # The comparison's architectures and trained space, not the recipe's.
        return dict(run, exclude_ops=list(base["exclude_ops"]), rank_trained_space=False)
    warmup, layer, final = dcnas_schedule(epochs)
    options = dict(config["dcnas"], warmup_epochs=warmup, layer_epochs=layer, final_epochs=final)
    return nb201_dcnas.variant_config(dict(base, epochs=epochs, dcnas=options), "dcnas")


def units(config, methods, seeds):
    """The runs a comparison needs: `[{"name", "seed", "config", "kind",
    "selections"}]`, the DARTS family as one run per seed."""
    check_methods(methods)
    darts = [DARTS_SELECTIONS[m] for m in methods if m in DARTS_SELECTIONS]
    result = []
    for seed in seeds:
        for method in methods:
            if method in DARTS_SELECTIONS:
                if DARTS_SELECTIONS[method] != darts[0]:
                    continue  # one DARTS run for the whole family
                result.append(dict(
                    name="darts", seed=seed, kind="darts", selections=darts,
                    config=dict(method_config(config, method), seed=seed),
                ))
            else:
                result.append(dict(
                    name=method, seed=seed, kind="rank", selections=None,
                    config=dict(method_config(config, method), seed=seed),
                ))
    return result


def _directory(output, unit):
    return Path(output) / unit["name"] / f"seed_{unit['seed']}"


def _complete(unit, directory):
    """The saved result of a complete run of `unit` in `directory`, or None."""
    paths = nb201_spos.output_paths(directory)
    if unit["kind"] == "rank":
        return nb201_rank.completed_result(paths, unit["config"])
    if not (paths["result"].exists() and (directory / "rank" / "report.json").exists()):
        return None
    result = json.loads(paths["result"].read_text())
    if result.get("config") != json.loads(json.dumps(unit["config"])):
        return None
    if any(s not in result["selections"] for s in unit["selections"]):
        return None
    return result


def train_steps(unit):
    """The optimizer steps of the weights a unit's training takes."""
    config = unit["config"]
    _, steps = nb201_spos.build_space(config)
    if unit["kind"] == "rank" and config.get("split_method"):
        return nb201_gmnas.tree_epochs(config, "gm") * steps
    return config["epochs"] * steps


def status(unit, directory, reuse=()):
    """`"complete"`, `"partial (epoch k of E)"`, `"reusable (PATH)"` or `"to run"`."""
    from kerasnas.callbacks import latest_checkpoint

    if _complete(unit, directory) is not None:
        return "complete"
    last = latest_checkpoint(directory / "checkpoints") if directory.exists() else None
    if last is not None:
        return f"partial (epoch {int(Path(last).stem.split('_')[1])} of {unit['config']['epochs']})"
    source = find_reusable(unit, reuse, exclude=directory)
    if source is not None:
        return f"reusable ({source})"
    return "to run"


def find_reusable(unit, roots, exclude=None):
    """A complete run of exactly `unit`'s config under `roots` (searched for
    `result.json` files), or None."""
    for root in roots:
        for path in sorted(Path(root).rglob("result.json")):
            candidate = path.parent
            if exclude is not None and candidate.resolve() == Path(exclude).resolve():
                continue
            if _complete(unit, candidate) is not None:
                return candidate
    return None


def plan(config, methods, seeds, output, reuse=()):
    """Every run of the comparison with its steps and status (and, for the
    `paper` preset, estimated GPU-hours); written to `output/plan.json`."""
    rows = []
    for unit in units(config, methods, seeds):
        directory = _directory(output, unit)
        row = {
            "run": unit["name"], "seed": unit["seed"], "directory": str(directory),
            "epochs": unit["config"]["epochs"], "train_steps": train_steps(unit),
            "status": status(unit, directory, reuse),
        }
        if unit["kind"] == "darts":
            row["selections"] = list(unit["selections"])
        if config["budget_steps"] is None:
            row["gpu_hours"] = estimate_gpu_hours(unit, config["rank"])
        rows.append(row)
    return rows


def format_plan(rows, config):
    budget = config["budget_steps"]
    lines = [
        f"Plan: {len(rows)} runs, " + (
            f"a budget of {budget} optimizer steps each" if budget is not None
            else "each method's reference schedule"
        ),
        f"{'run':<28}{'seed':>5}{'epochs':>8}{'steps':>10}" + ("  GPU-h" if budget is None else "") + "  status",
    ]
    for row in rows:
        name = row["run"] + (f" ({', '.join(row['selections'])})" if "selections" in row else "")
        hours = f"{row['gpu_hours']:7.1f}" if "gpu_hours" in row else ""
        lines.append(f"{name:<28}{row['seed']:>5}{row['epochs']:>8}{row['train_steps']:>10}{hours}  {row['status']}")
    if budget is None:
        total = sum(r["gpu_hours"] for r in rows if r["status"] != "complete")
        lines.append(f"Estimated GPU-hours still to spend: {total:.1f} (see estimate_gpu_hours)")
    return "\n".join(lines)


# Seconds per training image of a SPOS step on NAS-Bench-201 at C=16, N=5,
# 32x32: PA&DA's Table 1 trains SPOS 250 epochs of CIFAR-10's 50,000
# images in 1.6 GPU-hours.
_GPU_SECONDS_PER_IMAGE = 1.6 * 3600 / (250 * 50000)
# Cost of a training image relative to SPOS: each method module's
# `step_cost` (`kerasnas.methods`; the DARTS family's is DARTS').


def _step_cost(name):
    from kerasnas import methods

    return methods.get("darts" if name in DARTS_SELECTIONS else name).step_cost


def estimate_gpu_hours(unit, rank_config):
    """Rough GPU-hours of a unit at paper scale: its training images times
    the method's `step_cost` times `_GPU_SECONDS_PER_IMAGE` (scaled by channels and
    cells relative to C=16, N=5), plus ranking (a forward pass, a third of
    a step, of every scoring image per architecture) or PT's tuning."""
    from kerasnas import data as nas_data

    config = unit["config"]
    _, steps = nb201_spos.build_space(config)
    scale = (config["channels"] / 16) ** 2 * config["cells"] / 5
    per_image = _GPU_SECONDS_PER_IMAGE * scale
    seconds = train_steps(unit) * config["batch_size"] * per_image * _step_cost(unit["name"])
    if unit["kind"] == "darts":
        tune = config["tune_epochs"] if config.get("tune_epochs") is not None else config["interval"] * 5
        seconds += len([s for s in unit["selections"] if s != "argmax"]) * tune * steps * config["batch_size"] * per_image * _step_cost("darts")
    num_archs = (rank_config if unit["kind"] == "darts" else config)["num_archs"]
    images = nas_data.info(rank_config["data"])["num_examples"][rank_config["eval_split"]]
    if num_archs == "all":
        num_archs = 15625
    seconds += num_archs * images * per_image / 3
    return seconds / 3600


# === Running ===
def run_unit(unit, directory, rank_config, resume=False, overwrite=False, verbose=2, reuse=()):
    """Runs (or resumes, or reuses) one unit; returns its saved result."""
    done = _complete(unit, directory) if resume else None
    if done is not None:
        print(f"Already complete: {directory}")
        return done
    if reuse and not directory.exists():
        source = find_reusable(unit, reuse, exclude=directory)
        if source is not None:
            shutil.copytree(source, directory)
            (directory / "reused_from.txt").write_text(f"{source}\n")
            print(f"Reused {source} for {directory} (same config).")
            return _complete(unit, directory)
    if unit["kind"] == "rank":
        return nb201_rank.run(unit["config"], directory, resume=resume, overwrite=overwrite, verbose=verbose)
    result = nb201_darts_pt.run_one(
        unit["config"], directory, resume=resume, overwrite=overwrite, verbose=verbose,
        selections=unit["selections"],
    )
    rank_darts(directory, rank_config, verbose)
    return result


def rank_darts(directory, rank_config, verbose=0):
    """Ranks the comparison's architectures on a DARTS supernet (the
    discrete subnets of its weights, `DartsSupernet.set_path`), on the
    comparison's scoring images: `directory/rank/`."""
    import keras

    from kerasnas.benchmarks import NasBench201 as NasBench201Benchmark
    from kerasnas.evaluation import rank_and_report

    benchmark = NasBench201Benchmark(rank_config["benchmark"], dataset="cifar10")
    archs = nb201_rank.ranked_archs(benchmark, rank_config)
    evaluation, scoring = nb201_rank.evaluation_data(rank_config)
    supernet = keras.saving.load_model(directory / "supernet.keras")
    start = running_time()
    report = rank_and_report(
        supernet, benchmark, archs, evaluation, directory / "rank",
        title=f"DARTS supernet, {scoring['label']}", verbose=1 if verbose == 1 else 0,
        score=rank_config["score"], scored_on=scoring,
    )
    write_json(directory / "rank" / "rank.json", {"seconds": running_time() - start})
    return report


def run(config, methods, seeds, output, resume=False, overwrite=False, verbose=2, reuse=()):
    """Runs every method for every seed (seed by seed), then writes the
    report; returns the table dict.

    Several processes may run one comparison (e.g. one per core, with the
    seeds in opposite orders): each run is claimed with a lock file
    (`<run directory>.lock`) and a run another live process holds is
    skipped. The process that finds every run complete writes the report;
    the others return None."""
    output = Path(output)
    todo = units(config, methods, seeds)  # every config checked before anything trains
    rows = plan(config, methods, seeds, output, reuse)
    if config["budget_steps"] is None:  # the reference schedules' GPU-hours, before they start
        print(format_plan(rows, config))
    write_json(output / "plan.json", rows)
    elsewhere = []
    for i, unit in enumerate(todo):
        directory = _directory(output, unit)
        print(f"[{i + 1}/{len(todo)}] {unit['name']}, seed {unit['seed']}")
        with claim(directory) as holder:
            if holder is not None:
                print(f"Running in another process ({holder}): skipped here.")
                elsewhere.append(unit)
                continue
            run_unit(unit, directory, config["rank"], resume, overwrite, verbose, reuse)
    missing = [u for u in elsewhere if _complete(u, _directory(output, u)) is None]
    if missing:
        print(f"{len(missing)} run(s) still running in other processes: the report is written "
              "by the process that finishes last (or rerun with --resume).")
        return None
    return report(config, methods, seeds, output)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def claim(directory):
    """Claims the run in `directory` for this process while the block runs.

    Yields None when claimed (the lock file `<directory>.lock` is removed on
    exit), or a description of the live process holding it. A lock left by
    a process of this host that no longer runs is taken over; one of
    another host is honoured (delete it by hand if that process died).
    """
    lock = Path(f"{directory}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1))):
                lock.unlink(missing_ok=True)  # its process died: take it over
                continue
            yield f"pid {holder.get('pid')} on {holder.get('host')}"
            return
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        try:
            yield None
        finally:
            lock.unlink(missing_ok=True)
        return
    yield "a process that keeps recreating the lock"


# === The report ===
def _read_ranking(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return (
        [r["arch"] for r in rows],
        np.array([float(r["predicted"]) for r in rows]),
        {k: np.array([float(r[k]) for r in rows]) for k in ("params", "flops")},
    )


def entry(method, directory, benchmarks):
    """One run of `method` read back from its files: `{"rankings": {dataset:
    ranking_report}, "scored_on", "fit", "best", "train_steps",
    "train_seconds", "search_steps", "search_seconds", "curve",
    "improvement": (supernet's, parameter count's)}`."""
    from kerasnas.evaluation import improvement_curve
    from kerasnas.evaluation import ranking_report

    directory = Path(directory)
    result = json.loads((directory / "result.json").read_text())
    darts = method in DARTS_SELECTIONS
    ranked = directory / "rank" if darts else directory
    archs, predicted, baselines = _read_ranking(ranked / "ranking.csv")
    true = {dataset: benchmark.table(archs, "test_acc") for dataset, benchmark in benchmarks.items()}
    rankings = {
        dataset: ranking_report(predicted, true[dataset], baselines=baselines) for dataset in benchmarks
    }
    if darts:
        selection = result["selections"][DARTS_SELECTIONS[method]]
        best = selection["arch_string"]
        search = (selection.get("steps"), selection.get("seconds"))
        curve = None
    else:
        best = archs[int(np.argmax(predicted))]  # the top of its own ranking
        search = (0, result.get("rank_seconds"))
        curve = result.get("curve") if result.get("curve", {}).get("epoch") else None
    train = (result.get("train_steps"), result.get("train_seconds"))
    fit = result.get("fit_report") if not darts else None
    return {
        "directory": str(directory),
        "rankings": rankings,
        "scored_on": json.loads((ranked / "report.json").read_text()).get("scored_on"),
        "fit": fit,
        "best": {
            "arch": best,
            "test_acc": {d: float(b.query(best)["test_acc"]) for d, b in benchmarks.items()},
        },
        "train_steps": train[0], "train_seconds": train[1],
        "search_steps": search[0], "search_seconds": search[1],
        "curve": curve,
        "improvement": (
            improvement_curve(predicted, true["cifar10"]),
            improvement_curve(baselines["params"], true["cifar10"]),
        ),
    }


def _stats(values):
    values = [float("nan") if v is None else float(v) for v in values]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)),
            "median": float(np.median(values)), "values": values}


def make_table(entries, seeds):
    """`entries[method][seed]` (`entry`) -> the table dict: per method and
    data set, mean ± std of every metric; baselines as rows; the best
    architectures and the costs."""
    first = next(iter(next(iter(entries.values())).values()))
    table = {"seeds": list(seeds), "metrics": list(METRICS), "datasets": list(DATASETS), "rows": {}}
    for method, by_seed in entries.items():
        runs = list(by_seed.values())
        row = {
            dataset: {m: _stats([r["rankings"][dataset].get(m) for r in runs]) for m in METRICS}
            for dataset in DATASETS
        }
        if all(r["fit"] for r in runs):
            row["fit"] = {m: _stats([r["fit"].get(m) for r in runs]) for m in METRICS}
        row["best"] = {d: _stats([r["best"]["test_acc"][d] for r in runs]) for d in DATASETS}
        row["best"]["archs"] = [r["best"]["arch"] for r in runs]
        for key in ("train_steps", "train_seconds", "search_steps", "search_seconds"):
            row[key] = _stats([r[key] for r in runs])
        table["rows"][method] = row
    for name in ("params", "flops"):
        table["rows"][f"baseline: {name}"] = {
            dataset: {m: _stats([first["rankings"][dataset]["baselines"][name].get(m)]) for m in METRICS}
            for dataset in DATASETS
        }
    table["num_archs"] = first["rankings"]["cifar10"]["n"]
    # Each method against spos with the same seed, on CIFAR-10.
    table["versus"] = {
        m: nb201_pada.versus(
            {n: r["cifar10"][m]["values"] for n, r in table["rows"].items() if not n.startswith("baseline:")}
        )
        for m in nb201_pada.VERSUS_METRICS if m in METRICS
    }
    return table


HEADERS = {"kendall_tau": "KT", "spearman": "Spearman", "precision_at_top_5%": "P@Top5%",
           "spearman_at_top_1%": "Sp top1%"}


def format_table(table, scored_on=None):
    """The table as text: one block per data set, then best found and cost."""
    lines = []
    for dataset in DATASETS:
        where = f" on {scored_on}" if scored_on else ""
        lines.append(
            f"Ranking of {table['num_archs']} architectures{where}, against NAS-Bench-201 "
            f"{dataset} test accuracy (mean ± std over seeds {table['seeds']})"
            + ("" if dataset == "cifar10" else ": transfer, the supernets trained on CIFAR-10")
        )
        lines.append(f"{'':<20}" + "".join(f"{HEADERS[m]:>16}" for m in METRICS))
        for name, row in table["rows"].items():
            cells = "".join(f"{row[dataset][m]['mean']:>9.3f} ± {row[dataset][m]['std']:.3f}" for m in METRICS)
            lines.append(f"{name:<20}{cells}")
            if dataset == "cifar10" and "fit" in row:
                cells = "".join(f"{row['fit'][m]['mean']:>9.3f} ± {row['fit'][m]['std']:.3f}" for m in METRICS)
                lines.append(f"{name + ' [fit]':<20}{cells}")
        lines.append("")
    lines += nb201_pada.format_versus(table.get("versus", {}), "CIFAR-10 ", HEADERS)
    lines.append("Best architecture found by each method's own procedure (top of its ranking; DARTS: its "
                 "selection), NB201 test accuracy, mean ± std; cost per run: steps (mean), "
                 "seconds (median over seeds, so that one disturbed run does not move the row)")
    lines.append(f"{'':<20}" + "".join(f"{d:>16}" for d in DATASETS)
                 + f"{'train steps':>13}{'train s':>9}{'search steps':>14}{'search s':>10}")
    for name, row in table["rows"].items():
        if "best" not in row:
            continue
        cells = "".join(f"{row['best'][d]['mean']:>9.2f} ± {row['best'][d]['std']:<4.2f}" for d in DATASETS)
        cost = (f"{row['train_steps']['mean']:>13.0f}{row['train_seconds']['median']:>9.0f}"
                f"{row['search_steps']['mean']:>14.0f}{row['search_seconds']['median']:>10.0f}")
        lines.append(f"{name:<20}{cells}{cost}")
    return "\n".join(lines)


def format_markdown(table):
    """The table as one Markdown table (the README's Results section): per
    method mean ± std over seeds of every metric against CIFAR-10, Kendall
    tau against the transfer data sets, the best found architecture's
    CIFAR-10 test accuracy and the training cost."""
    def cell(stats, digits=3):
        return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"

    transfer = [d for d in DATASETS if d != "cifar10"]
    header = (["method"] + [HEADERS[m] for m in METRICS] + [f"KT {d}" for d in transfer]
              + ["best found (CIFAR-10 test %)", "train steps", "train s (median)"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table["rows"].items():
        cells = [name] + [cell(row["cifar10"][m]) for m in METRICS]
        cells += [cell(row[d]["kendall_tau"]) for d in transfer]
        if "best" in row:
            cells += [cell(row["best"]["cifar10"], 2), f"{row['train_steps']['mean']:.0f}",
                      f"{row['train_seconds']['median']:.0f}"]
        else:
            cells += ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(config, methods, seeds, output):
    """Reads every run's files back, writes `table.json`, `table.txt`, `table.md` and
    the plots; returns the table dict."""
    from kerasnas.benchmarks import NasBench201 as NasBench201Benchmark
    from kerasnas.evaluation import plot_improvement
    from kerasnas.evaluation import plot_metric_over_epochs
    from kerasnas.evaluation import plot_best_vs_cost

    output = Path(output)
    benchmarks = {d: NasBench201Benchmark(config["rank"]["benchmark"], dataset=d) for d in DATASETS}
    entries = {}
    for method in methods:
        name = "darts" if method in DARTS_SELECTIONS else method
        entries[method] = {
            seed: entry(method, output / name / f"seed_{seed}", benchmarks) for seed in seeds
        }
    table = make_table(entries, seeds)
    # Every run scored the same images: its report says which.
    scoring = next(iter(next(iter(entries.values())).values()))["scored_on"]
    table["scored_on"] = scoring
    table["budget_steps"] = config["budget_steps"]
    write_json(output / "table.json", table)
    text = format_table(table, scoring["label"] if scoring else None)
    (output / "table.txt").write_text(text + "\n")
    (output / "table.md").write_text(format_markdown(table) + "\n")

    curves = {
        f"{method} seed {seed}": e["curve"]
        for method, by_seed in entries.items() for seed, e in by_seed.items() if e["curve"]
    }
    if curves:
        plot_metric_over_epochs(curves, output / "kt_over_epochs.png",
                                title="Kendall tau of the monitored architectures")
    improvements = {
        method: [e["improvement"][0] for e in by_seed.values()] for method, by_seed in entries.items()
    }
    # Every run ranks the same architectures: one parameter-count curve.
    improvements["params"] = [next(iter(next(iter(entries.values())).values()))["improvement"][1]]
    plot_improvement(improvements, output / "improvement.png",
                     title=f"Improvement on {table['num_archs']} architectures",
                     ylabel="NB201 CIFAR-10 test accuracy, mean of top n")
    plot_best_vs_cost(
        {m: (np.add(row["train_seconds"]["values"], row["search_seconds"]["values"]),
             row["best"]["cifar10"]["values"])
         for m, row in table["rows"].items() if "best" in row},
        output / "best_vs_cost.png", xlabel="seconds per run: training + search (or selection)",
        ylabel="NB201 CIFAR-10 test accuracy of the best found",
    )
    print("\n" + text)
    return table


# === Command line ===
def build_parser(prog="nb201_compare"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Every weight-sharing method on NAS-Bench-201: one data set, one budget, one report.",
    )
    arg = parser.add_argument
    arg("--preset", choices=sorted(PRESETS), default="smoke",
        help="smoke, cifar10-subset (the CPU proxy) or paper (each method's reference schedule)")
    arg("--methods", nargs="+", default=list(METHODS), metavar="METHOD",
        help=f"methods to compare (default all): {', '.join(METHODS)}")
    arg("--seeds", nargs="+", type=int, default=[0], help="seeds (default 0)")
    arg("--budget-steps", type=nb201_spos._positive_int,
        help="optimizer steps of every method's supernet weights (default: the preset's)")
    arg("--reuse", nargs="+", default=[], metavar="DIR",
        help="copy complete runs of exactly the same config found under DIR instead of training them")
    arg("--dry-run", action="store_true", help="print the plan (and GPU-hour estimate) and stop")
    nb201_spos.add_run_arguments(parser, "runs/nb201_compare/<preset>")
    return parser


def config_from_args(args):
    config = dict(PRESETS[args.preset], preset=args.preset)
    if args.budget_steps is not None:
        config["budget_steps"] = args.budget_steps
    return config


def main(argv=None, prog="nb201_compare"):
    """Command-line entry point; returns the table dict (or the plan with
    `--dry-run`)."""
    parser = build_parser(prog)
    args = nb201_spos.parse_args(parser, argv)
    config = config_from_args(args)
    output = Path(args.output or Path("runs") / "nb201_compare" / args.preset)
    try:
        if args.dry_run:
            rows = plan(config, args.methods, args.seeds, output, args.reuse)
            print(format_plan(rows, config))
            return rows
        return run(config, args.methods, args.seeds, output, args.resume, args.overwrite,
                   args.verbose, args.reuse)
    except ValueError as error:
        parser.error(str(error))
