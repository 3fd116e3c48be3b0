"""DCNAS-style local weight sharing on NAS-Bench-201: SPOS vs DCNAS
(M weight copies, pool, meta networks, layer-by-layer clustering) and its
ablations (random assignment, lambda fixed at 0 and 1), ranked against the
benchmark on images the supernets never trained on.

A thin script over `kerasnas.recipes.nb201_dcnas` (also available as
`kerasnas train --recipe nb201-dcnas`). Run from the repository root:

    python recipes/nb201_dcnas.py --preset cifar10-subset --seeds 0 1 2 --resume
    python recipes/nb201_dcnas.py --preset smoke --variants spos dcnas
    python recipes/nb201_dcnas.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_dcnas import main

if __name__ == "__main__":
    script(main)
