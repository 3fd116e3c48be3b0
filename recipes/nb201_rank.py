"""How well does a SPOS supernet rank NAS-Bench-201 architectures?

A thin script over `kerasnas.recipes.nb201_rank` (also available as
`kerasnas train --recipe nb201-rank`). Run from the repository root, with
kerasnas installed or on `PYTHONPATH`:

    python recipes/nb201_rank.py --preset cifar10-subset
    python recipes/nb201_rank.py --preset cifar10-subset --seeds 0 1 2 --output runs/rank3
    python recipes/nb201_rank.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_rank import main

if __name__ == "__main__":
    script(main)
