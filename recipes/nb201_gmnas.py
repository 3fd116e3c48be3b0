"""GM-NAS on NAS-Bench-201: one-shot vs random, exhaustive and
gradient-matching splits, ranked against the benchmark.

A thin script over `kerasnas.recipes.nb201_gmnas` (also available as
`kerasnas train --recipe nb201-gmnas`). Run from the repository root:

    python recipes/nb201_gmnas.py --preset cifar10-subset --seeds 0 1 2 --resume
    python recipes/nb201_gmnas.py --preset smoke --methods one-shot gm
    python recipes/nb201_gmnas.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_gmnas import main

if __name__ == "__main__":
    script(main)
