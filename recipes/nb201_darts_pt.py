"""DARTS-PT on NAS-Bench-201: DARTS argmax, PT-Mag and PT from DARTS and
fixed-α supernets, looked up in the benchmark.

A thin script over `kerasnas.recipes.nb201_darts_pt` (also available as
`kerasnas train --recipe nb201-darts-pt`). Run from the repository root:

    python recipes/nb201_darts_pt.py --preset cifar10-subset --seeds 0 1 2
    python recipes/nb201_darts_pt.py --preset smoke
    python recipes/nb201_darts_pt.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_darts_pt import main

if __name__ == "__main__":
    script(main)
