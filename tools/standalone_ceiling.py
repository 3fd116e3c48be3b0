"""The stand-alone ceiling of a ranking proxy.

Trains a seeded sample of NAS-Bench-201 architectures *alone* (each its own
child network, from scratch) at a proxy's scale and data, scores each on
held-out images, and reports the Kendall tau of those scores against the
benchmark. No supernet trained at that scale can be expected to rank
better than its architectures do when trained alone on the same data: this
is the ceiling that a proxy's supernet KT is read against.

Every architecture is one row of `output/standalone.csv` (written as soon as
it is done), so `--resume` continues an interrupted run where it stopped.
At the end `output/report.json` holds the ranking reports (one per scored
split and metric) and the parameter-count baseline on the same sample.

Usage:

```shell
python tools/standalone_ceiling.py --output runs/ceiling --resume
python tools/standalone_ceiling.py --train-split train --eval-splits test --output runs/ceiling_full
```
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

from kerasnas import data as nas_data
from kerasnas.benchmarks import NasBench201
from kerasnas.benchmarks import sample_archs
from kerasnas.evaluation import format_report
from kerasnas.evaluation import ranking_report
from kerasnas.recipes import nb201_spos

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arg = parser.add_argument
    arg("--data", default=str(SHARED / "cifar" / "cifar10_subset.npz"))
    arg("--benchmark", default=str(SHARED / "nb201"))
    arg("--num-archs", type=int, default=40)
    arg("--arch-seed", type=int, default=11)
    arg("--seed", type=int, default=0, help="seed of the weights and the data order")
    arg("--train-split", default="search_train", choices=("train", "search_train"))
    arg("--eval-splits", nargs="+", default=["search_valid", "test"])
    arg("--image-size", type=int, default=16)
    arg("--channels", type=int, default=8)
    arg("--cells", type=int, default=1)
    arg("--epochs", type=int, default=40)
    arg("--batch-size", type=int, default=64)
    arg("--learning-rate", type=float, default=0.1)
    arg("--weight-decay", type=float, default=5e-4)
    arg("--augment", action=argparse.BooleanOptionalAction, default=True)
    arg("--crop-padding", type=int, default=2)
    arg("--bn", default="standard", choices=("standard", "batch"))
    arg("--output", default="runs/standalone_ceiling")
    arg("--resume", action="store_true")
    return parser


def train_and_score(arch_string, space, config, evaluations):
    """Trains `arch_string` alone; returns `{split_metric: value}`."""
    keras.utils.set_random_seed(config["seed"])
    arch = space.from_string(arch_string)
    child = space.build_network(arch=arch, bn=config["bn"])
    dataset, steps = nb201_spos.train_dataset(
        config["data"], config["batch_size"], config["seed"], config["epochs"],
        augment=config["augment"], image_size=config["image_size"],
        crop_padding=config["crop_padding"], split=config["train_split"],
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        config["learning_rate"], decay_steps=config["epochs"] * steps, alpha=0.0
    )
    child.compile(
        optimizer=keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True, weight_decay=config["weight_decay"]
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = child.fit(dataset, epochs=config["epochs"], steps_per_epoch=steps, verbose=0)
    row = {"train_accuracy": float(history.history["accuracy"][-1])}
    for split, data in evaluations.items():
        metrics = child.evaluate(data, return_dict=True, verbose=0)
        row[f"{split}_accuracy"] = float(metrics["accuracy"])
        row[f"{split}_loss"] = float(metrics["loss"])
    return row


def main(argv=None):
    args = build_parser().parse_args(argv)
    config = {k: v for k, v in vars(args).items() if k not in ("output", "resume")}
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    config_path = output / "config.json"
    if args.resume and config_path.exists():
        previous = json.loads(config_path.read_text())
        if previous != config:
            sys.exit(f"--resume: {config_path} holds another configuration: {previous}")
    config_path.write_text(json.dumps(config, indent=2))

    benchmark = NasBench201(args.benchmark, dataset="cifar10")
    archs = sample_archs(benchmark, args.num_archs, args.arch_seed)
    space, _ = nb201_spos.build_space(dict(
        data=args.data, image_size=args.image_size, channels=args.channels,
        cells=args.cells, limit=None, batch_size=args.batch_size,
    ))
    evaluations = {
        split: nas_data.load(args.data, split, batch_size=256, image_size=args.image_size)
        for split in args.eval_splits
    }
    table = output / "standalone.csv"
    rows = {}
    if args.resume and table.exists():
        with open(table) as f:
            rows = {r["arch"]: r for r in csv.DictReader(f)}
    elif table.exists():
        table.unlink()
    for k, arch in enumerate(archs):
        if arch in rows:
            continue
        start = time.perf_counter()
        row = {"arch": arch, **train_and_score(arch, space, config, evaluations)}
        row["seconds"] = time.perf_counter() - start
        new = not table.exists()
        with open(table, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        rows[arch] = row
        print(f"[{k + 1}/{len(archs)}] {arch} " + " ".join(
            f"{name}={float(v):.3f}" for name, v in row.items() if name != "arch"
        ), flush=True)

    truth = benchmark.table(archs, "test_acc")
    baselines = {"params": benchmark.table(archs, "params")}
    reports = {}
    for split in args.eval_splits:
        for metric in ("accuracy", "loss"):
            scores = np.array([float(rows[a][f"{split}_{metric}"]) for a in archs])
            if metric == "loss":
                scores = -scores
            reports[f"{split}_{metric}"] = ranking_report(scores, truth, baselines=baselines)
    train_scores = np.array([float(rows[a]["train_accuracy"]) for a in archs])
    reports["train_accuracy"] = ranking_report(train_scores, truth)
    seconds = [float(rows[a]["seconds"]) for a in archs]
    summary = {"config": config, "num_archs": len(archs), "mean_seconds": float(np.mean(seconds)),
               "reports": reports}
    (output / "report.json").write_text(json.dumps(summary, indent=2, default=float))
    for name, report in reports.items():
        print(f"\n{name} (stand-alone, {len(archs)} archs, vs NAS-Bench-201 CIFAR-10 test accuracy):")
        print(format_report(report))
    print(f"\nmean {np.mean(seconds):.0f} s per architecture")


if __name__ == "__main__":
    main()
