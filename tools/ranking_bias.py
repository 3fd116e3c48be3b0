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

from kerasnas.evaluation import op_count_bias
from kerasnas.spaces import NasBench201

def op_bias(path, min_group=20):
    """`kerasnas.evaluation.op_count_bias` of one `ranking.csv`, with its path."""
    space = NasBench201()
    with open(path) as f:
        rows = list(csv.DictReader(f))
    archs = [space.from_string(r["arch"]) for r in rows]
    result = op_count_bias(
        archs, [float(r["predicted"]) for r in rows], [float(r["true"]) for r in rows], min_group=min_group
    )
    return dict(result, path=str(path))


def format_bias(result):
    lines = [f"{result['path']}: Kendall tau {result['kendall_tau']:+.3f}",
             f"  {'edges using':<16}{'KT with score':>14}{'KT with truth':>14}"]
    for op, taus in result["options"].items():
        name = "convolutions" if op == "group" else op
        lines.append(f"  {name:<16}{taus['predicted']:>+14.3f}{taus['true']:>+14.3f}")
    groups = "  ".join(
        f"{n}: {g['kendall_tau']:+.3f} ({g['archs']})" for n, g in result["within_groups"].items()
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
