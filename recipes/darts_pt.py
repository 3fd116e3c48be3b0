"""DARTS-PT on the DARTS space: search, perturbation-based selection, then
the selected genotype trained from scratch and exported.

A thin script over `kerasnas.recipes.darts_pt` (also available as
`kerasnas train --recipe darts-pt`). Run from the repository root:

    python recipes/darts_pt.py --preset smoke --output runs/darts_pt_smoke
    python recipes/darts_pt.py --preset paper --resume
    python recipes/darts_pt.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.darts_pt import main

if __name__ == "__main__":
    script(main)
