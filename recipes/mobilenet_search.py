"""SPOS on the MobileNet (ProxylessNAS) chain space: train a supernet,
search it with evolution under a FLOPs budget, export the best architecture.

A thin script over `kerasnas.recipes.mobilenet_search` (also available as
`kerasnas train --recipe mobilenet-search`). Run from the repository root,
with kerasnas installed or on `PYTHONPATH`:

    python recipes/mobilenet_search.py --preset smoke --output runs/mbv2 --overwrite
    python recipes/mobilenet_search.py --preset cifar10-subset --max-flops 20M
    python recipes/mobilenet_search.py --help
"""

from kerasnas.cli import script
from kerasnas.recipes.mobilenet_search import main

if __name__ == "__main__":
    script(main)
