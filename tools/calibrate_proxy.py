"""Calibration of the CPU ranking proxy: which cheap setting ranks well on
images the supernet never trained on?

Each named setting is a set of overrides of the `nb201_rank`
`cifar10-subset-train-images` preset (the proxy of issues #3 and #5). Every setting trains one SPOS supernet (seed 7 by
default, a seed no table uses) and ranks the same 1,000 architectures
(arch seed 11) on its held-out scoring images. Runs are resumable
(`nb201_rank`'s checkpoints and `scores.csv`): start the tool again with
`--resume` after a stop and it continues where it stopped; finished
settings are read from their `result.json`.

The table (`output/table.txt`, `output/table.json`) gives, per setting,
the Kendall tau and P@Top5% against NAS-Bench-201 CIFAR-10 test accuracy
of both scorings from one ranking pass (accuracy and negative loss, both
in `scores.csv`), the best KT of the monitored architectures over the
epochs, and the minutes of training and ranking.

Usage:

```shell
python tools/calibrate_proxy.py --settings base-st aug-st --output runs/calib --resume
python tools/calibrate_proxy.py --list
```
"""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from kerasnas.benchmarks import NasBench201
from kerasnas.benchmarks import sample_archs
from kerasnas.evaluation import ranking_report
from kerasnas.recipes import nb201_rank

HALVES = dict(train_split="search_train", eval_split="search_valid", eval_limit=None)
FULL = dict(train_split="train", eval_split="test", eval_limit=None)

SETTINGS = {
    # The #3 preset (no augmentation, 150 epochs), trained on one half and
    # scored on the other.
    "base-st": dict(HALVES),
    # The #3 preset trained on all 5,085 images, scored on the 1,017 test images.
    "base-full": dict(FULL),
    # Crop (padding 2 at 16 px) + flip.
    "aug-st": dict(HALVES, augment=True, crop_padding=2),
    "aug-full": dict(FULL, augment=True, crop_padding=2),
    # Flips only.
    "flip-st": dict(HALVES, augment=True, crop_padding=0),
    # Fewer epochs.
    "aug-st-60": dict(HALVES, augment=True, crop_padding=2, epochs=60),
    "noaug-st-40": dict(HALVES, epochs=40),
    # Larger images / more channels.
    "aug-st-32px": dict(HALVES, augment=True, crop_padding=4, image_size=32, epochs=60),
    "aug-st-c16": dict(HALVES, augment=True, crop_padding=2, channels=16, epochs=60),
    "noaug-st-60": dict(HALVES, epochs=60),
    "noaug-full-60": dict(FULL, epochs=60),
    "aug-full-60": dict(FULL, augment=True, crop_padding=2, epochs=60),
    "flip-full": dict(FULL, augment=True, crop_padding=0),
    "aug-full-250": dict(FULL, augment=True, crop_padding=2, epochs=250),
    "aug-full-c16-60": dict(FULL, augment=True, crop_padding=2, channels=16, epochs=60),
    # Stronger coupled weight decay.
    "aug-st-wd": dict(HALVES, augment=True, crop_padding=2, weight_decay=2e-3, epochs=60),
    # BN recalibration with standard BN instead of batch statistics.
    "aug-st-standard-bn": dict(HALVES, augment=True, crop_padding=2, bn="standard",
                               bn_calibration_steps=10),
    # 'none' sampled in training too.
    "aug-st-none": dict(HALVES, augment=True, crop_padding=2, exclude_ops=[]),
}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arg = parser.add_argument
    arg("--settings", nargs="+", default=list(SETTINGS), help="names of SETTINGS to run")
    arg("--seed", type=int, default=7)
    arg("--arch-seed", type=int, default=11)
    arg("--output", default="runs/calib")
    arg("--resume", action="store_true")
    arg("--list", action="store_true", help="print the settings and exit")
    return parser


def rescore(run_dir, benchmark, archs):
    """Both scorings of a finished run, from its `scores.csv`."""
    with open(run_dir / "scores.csv") as f:
        rows = {r["arch"]: r for r in csv.DictReader(f)}
    truth = benchmark.table(archs, "test_acc")
    reports = {}
    for score in ("accuracy", "loss"):
        values = np.array([float(rows[a][score]) for a in archs])
        reports[score] = ranking_report(values if score == "accuracy" else -values, truth)
    return reports


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list:
        for name, overrides in SETTINGS.items():
            print(f"{name:<22} {overrides}")
        return
    unknown = [s for s in args.settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; see --list")
    output = Path(args.output)
    rows = {}
    table_path = output / "table.json"
    if table_path.exists():
        rows = json.loads(table_path.read_text())
    base = nb201_rank.PRESETS["cifar10-subset-train-images"]
    benchmark = NasBench201(base["benchmark"], dataset="cifar10")
    archs = sample_archs(benchmark, base["num_archs"], args.arch_seed)
    for name in args.settings:
        config = dict(
            nb201_rank.PRESETS["cifar10-subset-train-images"], **SETTINGS[name],
            seed=args.seed, arch_seed=args.arch_seed,
        )
        run_dir = output / name
        result_path = run_dir / "result.json"
        if result_path.exists():
            result = json.loads(result_path.read_text())
        else:
            start = time.perf_counter()
            result = nb201_rank.run(config, run_dir, resume=args.resume and run_dir.exists(), verbose=0)
            result["wall_seconds"] = time.perf_counter() - start
        reports = rescore(run_dir, benchmark, archs)
        curve = result.get("curve", {})
        kts = curve.get("kendall_tau") or [float("nan")]
        best = int(np.nanargmax(kts)) if curve.get("epoch") else 0
        if table_path.exists():  # another process may have added settings
            rows = json.loads(table_path.read_text())
        rows[name] = {
            "overrides": SETTINGS[name],
            "scored_on": result["report"].get("scored_on", {}).get("label"),
            "kt_accuracy": reports["accuracy"]["kendall_tau"],
            "p5_accuracy": reports["accuracy"]["precision_at_top_5%"],
            "kt_loss": reports["loss"]["kendall_tau"],
            "p5_loss": reports["loss"]["precision_at_top_5%"],
            "params_kt": result["report"]["baselines"]["params"]["kendall_tau"],
            "monitor_best_kt": kts[best],
            "monitor_best_epoch": curve.get("epoch", [0])[best] if curve.get("epoch") else None,
            "train_minutes": result["train_seconds"] / 60,
            "rank_minutes": result["rank_seconds"] / 60,
        }
        write_table(rows, output)
    print((output / "table.txt").read_text())


def write_table(rows, output):
    output.mkdir(parents=True, exist_ok=True)
    (output / "table.json").write_text(json.dumps(rows, indent=2, default=float) + "\n")
    header = (f"{'setting':<20}{'KT acc':>8}{'P@5 acc':>9}{'KT loss':>9}{'P@5 loss':>10}"
              f"{'params':>8}{'mon. best KT (ep)':>20}{'train min':>11}{'rank min':>10}  scored on")
    lines = [header]
    for name, r in rows.items():
        lines.append(
            f"{name:<20}{r['kt_accuracy']:>8.3f}{r['p5_accuracy']:>9.2f}{r['kt_loss']:>9.3f}"
            f"{r['p5_loss']:>10.2f}{r['params_kt']:>8.3f}"
            f"{r['monitor_best_kt']:>13.3f} ({r['monitor_best_epoch']})"
            f"{r['train_minutes']:>11.1f}{r['rank_minutes']:>10.1f}  {r['scored_on']}"
        )
    (output / "table.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
