"""Supernets saved before choice factories: their methods' options."""

from kerasnas.layers.factory import MixedChoices
from kerasnas.layers.interchoice import InterChoices
from kerasnas.layers.local_share import LocalCopies


def legacy_choices(network_options):
    """`(network_options, choice factory or None)` of a supernet saved when
    the spaces' builders took the methods' options (`choice_type`,
    `interchoice`, `priors`, `interchoice_options`, `local_copies`; before
    kerasnas stored `choices`)."""
    options = dict(network_options or {})
    choice_type = options.pop("choice_type", None)
    interchoice = options.pop("interchoice", None)
    priors = options.pop("priors", None)
    interchoice_options = options.pop("interchoice_options", None)
    copies = options.pop("local_copies", None)
    options.pop("input_transforms", None)
    if copies is not None:
        return options, LocalCopies(copies)
    if interchoice is not None:
        if interchoice == "split":  # as they were made (kerasnas.layers.SplitChoice)
            interchoice_options = {"untrained": "split_state", **(interchoice_options or {})}
        return options, InterChoices(interchoice, priors=priors, options=interchoice_options)
    if choice_type == "mixed":
        return options, MixedChoices()
    return options, None
