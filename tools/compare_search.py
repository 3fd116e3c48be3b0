"""Evolution vs random search on NAS-Bench-201 ground truth (no training).

Each search queries the benchmark's validation accuracy (`BenchmarkTuner`)
for `--queries` architectures; the architecture it returns (best
validation accuracy) is judged by its test accuracy. Repeated over
`--seeds` seeds per algorithm; prints mean ± std and writes a plot of the
test accuracy of the best-so-far architecture against the number of
queries (mean over seeds) and a JSON of every run.

Usage:

```
PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=2 python tools/compare_search.py --output runs/compare_search
```
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NB201 = ROOT.parent / "shared" / "data" / "nb201"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", default=str(NB201))
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--population-size", type=int, default=10)
    parser.add_argument("--sample-size", type=int, default=3)
    parser.add_argument("--output", default="runs/compare_search")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import kerasnas
    from kerasnas.search import BenchmarkTuner, EvolutionOracle, RandomArchOracle

    bench = kerasnas.benchmarks.NasBench201(args.benchmark, args.dataset)
    runs = {"evolution": [], "random": []}
    for seed in range(args.seeds):
        for kind in runs:
            if kind == "evolution":
                oracle = EvolutionOracle(bench.space, population_size=args.population_size,
                                         sample_size=args.sample_size, max_trials=args.queries, seed=seed)
            else:
                oracle = RandomArchOracle(bench.space, max_trials=args.queries, seed=seed)
            tuner = BenchmarkTuner(oracle, bench, directory=tempfile.mkdtemp(), project_name="search")
            tuner.search(verbose=0)
            results = tuner.results()
            runs[kind].append({
                "val": [100 * r["metrics"]["val_accuracy"] for r in results],
                "test": [100 * r["metrics"]["test_accuracy"] for r in results],
            })
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    summary = {}
    curves = {}
    for kind, seeds in runs.items():
        final = [run["test"][int(np.argmax(run["val"]))] for run in seeds]
        summary[kind] = {"mean": float(np.mean(final)), "std": float(np.std(final)), "runs": final}
        # Test accuracy of the best-so-far (by validation) architecture, mean over seeds.
        best_so_far = np.mean([
            [run["test"][int(np.argmax(run["val"][:t]))] for t in range(1, len(run["val"]) + 1)]
            for run in seeds
        ], axis=0)
        curves[kind] = best_so_far
        print(f"{kind:<10} final test accuracy {summary[kind]['mean']:.3f} ± {summary[kind]['std']:.3f} "
              f"({args.seeds} seeds x {args.queries} queries)")
    best = float(np.max(bench.table(key="test_acc")))
    print(f"(best test accuracy in the benchmark: {best:.4f})")
    from kerasnas.evaluation.plots import _figure

    figure = _figure(5.5, 3.8)
    axis = figure.subplots()
    for kind, curve in curves.items():
        axis.plot(np.arange(1, len(curve) + 1), curve, label=kind)
    axis.axhline(best, color="gray", linestyle=":", label="best in the benchmark")
    axis.set_xlabel("queries")
    axis.set_ylabel(f"test accuracy (%), mean of {args.seeds} seeds")
    axis.set_ylim(max(axis.get_ylim()[0], best - 3), best + 0.3)
    axis.set_title(f"NAS-Bench-201 {args.dataset}: test accuracy of the best-so-far architecture", fontsize=9)
    axis.legend(fontsize=8)
    figure.savefig(output / "search_progress.png")
    (output / "compare_search.json").write_text(json.dumps({"config": vars(args), "summary": summary}, indent=2))
    return summary


if __name__ == "__main__":
    main()
