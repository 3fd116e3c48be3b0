"""Inter-choice dependent supernet weights on NAS-Bench-201: SPOS vs
additive bias, multiplicative bias and split weights, in the full space
without 'none' and in the conv-only space, ranked against the benchmark.

A thin script over `kerasnas.recipes.nb201_interchoice` (also available as
`kerasnas train --recipe nb201-interchoice`). Run from the repository root:

    python recipes/nb201_interchoice.py --preset cifar10-subset --seeds 0 1 2 --resume
    python recipes/nb201_interchoice.py --preset smoke --spaces conv-only
    python recipes/nb201_interchoice.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_interchoice import main

if __name__ == "__main__":
    script(main)
