"""Every weight-sharing method side by side on NAS-Bench-201: SPOS, PA, DA,
PA&DA, GM-NAS, DARTS (argmax, PT-Mag, PT), inter-choice bias and split
weights, DCNAS; one data set, one budget of optimizer steps, one report.

A thin script over `kerasnas.recipes.nb201_compare` (also available as
`kerasnas compare`). Run from the repository root:

    python recipes/nb201_compare.py --preset cifar10-subset --seeds 0 1 2 --resume --reuse runs
    python recipes/nb201_compare.py --preset paper --dry-run
    python recipes/nb201_compare.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_compare import main

if __name__ == "__main__":
    script(main)
