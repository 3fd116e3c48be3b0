"""What a space builder needs to build a single-path or a mixed supernet."""

import keras

from kerasnas.layers.choice import Choice
from kerasnas.layers.interchoice import BiasChoice
from kerasnas.layers.interchoice import SplitChoice
from kerasnas.layers.interchoice import check_interchoice
from kerasnas.layers.local_share import LocalShareChoice
from kerasnas.layers.local_share import check_local_copies
from kerasnas.layers.mixed import MixedChoice


CHOICE_TYPES = ("single", "mixed")


def check_choice_type(choice_type):
    """Validates a space builder's `choice_type` argument."""
    if choice_type not in CHOICE_TYPES:
        raise ValueError(
            "Invalid value for argument `choice_type`. Expected one of "
            f"{list(CHOICE_TYPES)}. Received: choice_type={choice_type!r}"
        )
    return choice_type


def architecture_input(num_options, choice_type="single", local_copies=None):
    """The supernet network's architecture input and its per-choice rows.

    `"single"`: the int32 path, one option index per choice (label order);
    with `local_copies` (DCNAS), the path followed by the copy each choice
    uses (`2 * num_choices` entries, selectors in that order).
    `"mixed"`: the float `(num_choices, max_options)` matrix of architecture
    weights, one row per choice. Returns `(keras.Input, [selector per
    choice])`; a space builder passes each selector to its choice layer.
    """
    check_choice_type(choice_type)
    num_choices = len(num_options)
    if check_local_copies(local_copies) is not None:
        if choice_type != "single":
            raise ValueError(
                "Invalid value for argument `local_copies`. Local weight copies "
                "need single-path choices (`choice_type='single'`). Received: "
                f"local_copies={local_copies!r} with choice_type={choice_type!r}"
            )
        num_choices *= 2
    if choice_type == "single":
        tensor = keras.Input(batch_shape=(num_choices,), dtype="int32", name="path")
    else:
        tensor = keras.Input(
            batch_shape=(num_choices, max(num_options)), dtype="float32", name="arch_weights"
        )
    return tensor, [tensor[i] for i in range(num_choices)]


def make_choice(
    candidates, options, label, choice_type="single", dense=False, name=None,
    interchoice=None, priors=(), prior_sizes=(), interchoice_options=None, local_copies=None,
):
    """A `Choice` (`"single"`) or a `MixedChoice` (`"mixed"`) layer; with
    `interchoice` and at least one prior, a `BiasChoice` (`"bias"`,
    `"mul_bias"`, `"bias_sum"`) or a `SplitChoice` (`"split"`) that depends
    on the choices labelled `priors` (with `prior_sizes` options each).
    A choice without priors gets no inter-choice weights (the reference's
    rule). `interchoice_options`: more arguments of those layers (e.g.
    `bias_updates`, `max_depth`, `slots`). `local_copies=M`: a
    `LocalShareChoice` with M weight copies per candidate (DCNAS; not
    combined with `interchoice`)."""
    check_choice_type(choice_type)
    check_interchoice(interchoice)
    if check_local_copies(local_copies) is not None:
        if interchoice is not None:
            raise ValueError(
                "Invalid value for argument `local_copies`. Local weight copies "
                "and inter-choice weights do not combine. Received: "
                f"local_copies={local_copies!r} with interchoice={interchoice!r}"
            )
        return LocalShareChoice(
            candidates, options=options, label=label, dense=dense, name=name, copies=local_copies,
        )
    if interchoice is None or not priors:
        cls = Choice if choice_type == "single" else MixedChoice
        return cls(candidates, options=options, label=label, dense=dense, name=name)
    if choice_type != "single":
        raise ValueError(
            "Invalid value for argument `interchoice`. Inter-choice weights need "
            "single-path choices (`choice_type='single'`). Received: "
            f"interchoice={interchoice!r} with choice_type={choice_type!r}"
        )
    kwargs = dict(interchoice_options or {})
    cls = SplitChoice if interchoice == "split" else BiasChoice
    if cls is BiasChoice:
        kwargs["mode"] = interchoice
    allowed = {"bias_updates"} if cls is BiasChoice else {"max_depth", "slots"}
    unknown = sorted(set(kwargs) - allowed - {"mode"})
    if unknown:
        raise ValueError(
            "Invalid value for argument `interchoice_options`. Expected keys "
            f"among {sorted(allowed)} for interchoice={interchoice!r}. "
            f"Received: {sorted(interchoice_options)}"
        )
    return cls(
        candidates, options=options, label=label, dense=dense, name=name,
        prior_labels=priors, prior_sizes=prior_sizes, **kwargs,
    )


def call_choice(choice, inputs, selectors, labels):
    """Calls `choice` on `inputs` with its selector, and its priors'
    selectors stacked when it depends on earlier choices (`labels`: the
    space's labels, in the order of `selectors`)."""
    index = selectors[labels.index(choice.label)]
    if isinstance(choice, LocalShareChoice):
        return choice(inputs, index, copy=selectors[len(labels) + labels.index(choice.label)])
    prior_labels = getattr(choice, "prior_labels", ())
    if not prior_labels:
        return choice(inputs, index)
    priors = keras.ops.stack([selectors[labels.index(p)] for p in prior_labels])
    return choice(inputs, index, priors=priors)


def input_transform(inputs, name, transforms):
    """A child's input to the candidate of the choice layer `name`, with the
    supernet's folded inter-choice bias applied (`transforms`:
    `{choice layer name: (scale, offset)}` from `Supernet.extract`)."""
    if not transforms or name not in transforms:
        return inputs
    scale, offset = transforms[name]
    return keras.layers.Rescaling(scale, offset, name=f"{name}_input")(inputs)
