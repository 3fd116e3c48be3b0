"""PA&DA on NAS-Bench-201: SPOS / PA / DA / PA&DA, ranked against the benchmark.

A thin script over `kerasnas.recipes.nb201_pada` (also available as
`kerasnas train --recipe nb201-pada`). Run from the repository root:

    python recipes/nb201_pada.py --preset cifar10-subset --seeds 0 1 2
    python recipes/nb201_pada.py --preset smoke --methods spos pada
    python recipes/nb201_pada.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_pada import main

if __name__ == "__main__":
    script(main)
