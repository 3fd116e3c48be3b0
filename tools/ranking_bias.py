"""Where a NAS-Bench-201 supernet's ranking goes wrong: op-count bias.

For each `ranking.csv` (written by `nb201_rank` and every recipe built on
it), prints Kendall tau between the supernet's score and how many edges
use each op, next to the same for the benchmark's accuracy, then the
supernet's Kendall tau within groups of architectures with the same number
of convolutions. A supernet that scores skip connections up while the
benchmark scores them down ranks badly overall even when it orders the
architectures of each group well: a bias, not noise.

```
python tools/ranking_bias.py runs/interchoice_proxy/no-none/spos/seed_*/ranking.csv
python tools/ranking_bias.py --json bias.json runs/.../ranking.csv
```
"""

import argparse
import csv
import json

import numpy as np
from scipy import stats

from kerasnas.spaces import NasBench201

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
CONVS = ("nor_conv_1x1", "nor_conv_3x3")


def op_bias(path, min_group=20):
    """`{"kendall_tau", "ops": {op: {"predicted", "true"}}, "within_conv_groups":
    {n: {"archs", "kendall_tau"}}}` of one `ranking.csv`."""
    space = NasBench201()
    with open(path) as f:
        rows = list(csv.DictReader(f))
    predicted = np.array([float(r["predicted"]) for r in rows])
    true = np.array([float(r["true"]) for r in rows])
    counts = {op: [] for op in OPS}
    for row in rows:
        options = list(space.from_string(row["arch"]).values())
        for op in OPS:
            counts[op].append(options.count(op))
    counts = {op: np.array(v) for op, v in counts.items() if np.ptp(v) > 0}
    convs = sum(counts.get(op, 0) for op in CONVS)

    def tau(a, b):
        return float(stats.kendalltau(a, b)[0])

    result = {
        "path": str(path), "kendall_tau": tau(predicted, true),
        "ops": {op: {"predicted": tau(predicted, v), "true": tau(true, v)} for op, v in counts.items()},
        "within_conv_groups": {},
    }
    result["ops"]["convolutions"] = {"predicted": tau(predicted, convs), "true": tau(true, convs)}
    for n in sorted(set(convs.tolist())):
        group = convs == n
        if group.sum() >= min_group:
            result["within_conv_groups"][int(n)] = {
                "archs": int(group.sum()), "kendall_tau": tau(predicted[group], true[group]),
            }
    return result


def format_bias(result):
    lines = [f"{result['path']}: Kendall tau {result['kendall_tau']:+.3f}",
             f"  {'edges using':<16}{'KT with score':>14}{'KT with truth':>14}"]
    for op, taus in result["ops"].items():
        lines.append(f"  {op:<16}{taus['predicted']:>+14.3f}{taus['true']:>+14.3f}")
    groups = "  ".join(
        f"{n}: {g['kendall_tau']:+.3f} ({g['archs']})" for n, g in result["within_conv_groups"].items()
    )
    lines.append(f"  KT within groups by number of convolutions: {groups}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rankings", nargs="+", help="ranking.csv files")
    parser.add_argument("--json", metavar="OUT", help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    results = [op_bias(path) for path in args.rankings]
    print("\n".join(format_bias(r) for r in results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
