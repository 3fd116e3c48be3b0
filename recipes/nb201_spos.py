"""SPOS on NAS-Bench-201: train a supernet, pick an architecture, export it.

A thin script over `kerasnas.recipes.nb201_spos`, which holds the recipe
(presets, data pipeline, training, selection, export) so that it is also
available as `kerasnas train --recipe nb201-spos`. Run from the repository
root, with kerasnas installed or on `PYTHONPATH`:

    python recipes/nb201_spos.py --preset smoke
    python recipes/nb201_spos.py --preset cifar10-subset --resume
    python recipes/nb201_spos.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.nb201_spos import main

if __name__ == "__main__":
    script(main)
