"""DCNAS-style local weight sharing on the MobileNet chain space: train a
DCNAS supernet (or an ablation, or SPOS: `--variant`), search it with
evolution under a FLOPs budget, export the winner.

A thin script over `kerasnas.recipes.mobilenet_dcnas` (also available as
`kerasnas train --recipe mobilenet-dcnas`). Run from the repository root:

    python recipes/mobilenet_dcnas.py --preset smoke --output runs/mbv2_dcnas --overwrite
    python recipes/mobilenet_dcnas.py --preset paper --help
"""

from kerasnas.cli import script
from kerasnas.recipes.mobilenet_dcnas import main

if __name__ == "__main__":
    script(main)
