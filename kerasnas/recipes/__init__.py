"""Recipes: complete, reproducible experiments behind a `main(argv)`.

Each recipe is a module of this package so that the `kerasnas` command can
run it (`kerasnas train --recipe NAME ...`); `recipes/<name>.py` at the
repository root are thin scripts calling the same `main`.
"""

import importlib

# Recipe name on the command line -> module.
RECIPES = {
    "nb201-spos": "kerasnas.recipes.nb201_spos",
    "nb201-rank": "kerasnas.recipes.nb201_rank",
    "nb201-pada": "kerasnas.recipes.nb201_pada",
    "nb201-darts-pt": "kerasnas.recipes.nb201_darts_pt",
    "nb201-gmnas": "kerasnas.recipes.nb201_gmnas",
    "nb201-interchoice": "kerasnas.recipes.nb201_interchoice",
    "nb201-dcnas": "kerasnas.recipes.nb201_dcnas",
    "nb201-compare": "kerasnas.recipes.nb201_compare",
    "darts-pt": "kerasnas.recipes.darts_pt",
    "nb201-search": "kerasnas.recipes.nb201_search",
    "mobilenet-search": "kerasnas.recipes.mobilenet_search",
    "mobilenet-dcnas": "kerasnas.recipes.mobilenet_dcnas",
}


def get(name):
    """The module of the recipe `name` (see `RECIPES`)."""
    if name not in RECIPES:
        raise ValueError(
            f"Invalid value for argument `recipe`. Expected one of "
            f"{sorted(RECIPES)}. Received: recipe={name!r}"
        )
    return importlib.import_module(RECIPES[name])
