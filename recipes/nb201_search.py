"""SPOS on NAS-Bench-201, whole: train a supernet, search it with evolution,
export the best architecture.

A thin script over `kerasnas.recipes.nb201_search` (also available as
`kerasnas train --recipe nb201-search`). Run from the repository root, with
kerasnas installed or on `PYTHONPATH`:

    python recipes/nb201_search.py --preset smoke --output runs/smoke --overwrite
    python recipes/nb201_search.py --preset cifar10-subset --output runs/search
    python recipes/nb201_search.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_search import main

if __name__ == "__main__":
    script(main)
