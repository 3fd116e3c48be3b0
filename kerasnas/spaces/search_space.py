"""The search-space base class: choices, architectures and their codecs."""

import inspect
import itertools
import json

import numpy as np

from kerasnas.api_export import kerasnas_export
from kerasnas.config_value import ConfigValue


@kerasnas_export("kerasnas.spaces.SearchSpace")
class SearchSpace(ConfigValue):
    """A description from which a supernet and its children are built.

    An architecture is a plain dict `{label: option_name}` with one entry per
    choice. Subclasses define `choices` (ordered `{label: options}`) and the
    builders `build_network(path_or_arch, ...)`; everything else (sampling,
    validation, index codecs, enumeration) lives here.

    Args:
        choices: ordered mapping `{label: tuple of option names}`.
    """

    def __init__(self, choices):
        choices = {str(k): tuple(str(o) for o in v) for k, v in choices.items()}
        for label, options in choices.items():
            if not options:
                raise ValueError(
                    "Invalid value for argument `choices`. Expected at least "
                    f"one option per choice. Received: {label}={options}"
                )
            if len(set(options)) != len(options):
                raise ValueError(
                    "Invalid value for argument `choices`. Expected distinct "
                    f"option names. Received: {label}={options}"
                )
        self._choices = choices

    @property
    def choices(self):
        """Ordered `{label: tuple_of_option_names}`."""
        return dict(self._choices)

    @property
    def labels(self):
        return tuple(self._choices)

    @property
    def num_options(self):
        """Number of options of each choice, in label order."""
        return tuple(len(o) for o in self._choices.values())

    def __len__(self):
        return int(np.prod(self.num_options, dtype=np.int64))

    # === Hooks of the methods (defaults; a space overrides what it knows) ===
    # One example's shape and the classifier's classes, checked on inputs
    # and labels when known.
    input_shape = None
    num_classes = None
    # GM-NAS (`kerasnas.fewshot`): the edge-selection rule of a split, and
    # whether an option is forced as a hard one-hot.
    split_rule = "kway"
    matching_hard = True

    @property
    def split_labels(self):
        """The choices GM-NAS may split (default: all)."""
        return list(self._choices)

    def selection_groups(self, rng):
        """DARTS-PT's decision events (lists of labels decided together), or
        None: one undecided label per event in a seeded random order."""
        return None

    def params(self, arch):
        """Parameters of the stand-alone child of `arch`, counted on the built
        child (spaces with a closed form override it)."""
        return int(self.build_network(arch=self.validate(arch)).count_params())

    def flops(self, arch):
        """Multiply-accumulates of one example through the child of `arch`,
        counted on the built child (`kerasnas.spaces.count_flops`; spaces
        with a closed form override it)."""
        from kerasnas.spaces.flops import count_flops

        return count_flops(self.build_network(arch=self.validate(arch)))

    def to_string(self, arch):
        """The string that names `arch` in files and on the command line:
        its JSON, keys sorted (NAS-Bench-201: the benchmark's string)."""
        return json.dumps(self.validate(arch), sort_keys=True)

    def from_string(self, string):
        """The architecture dict of a `to_string` string."""
        try:
            arch = json.loads(string) if isinstance(string, str) else None
        except ValueError:
            arch = None
        if not isinstance(arch, dict):
            raise ValueError(
                "Invalid value for argument `string`. Expected a JSON dict "
                f"{{label: option}} with labels {list(self._choices)}. Received: string={string!r}"
            )
        return self.validate(arch)

    def display_string(self, arch):
        """A short readable name of `arch` for tables: its options in label
        order joined by "-"."""
        arch = self.validate(arch)
        return "-".join(str(arch[label]) for label in self._choices)

    def validate(self, arch):
        """Checks `arch` and returns it as a plain `{label: option}` dict.

        Raises:
            ValueError: naming the missing, extra or invalid label and the
                allowed options.
        """
        if not isinstance(arch, dict):
            raise ValueError(
                "Invalid value for argument `arch`. Expected a dict "
                f"{{label: option}} with labels {list(self._choices)}. "
                f"Received: arch={arch!r}"
            )
        missing = [k for k in self._choices if k not in arch]
        extra = [k for k in arch if k not in self._choices]
        if missing or extra:
            raise ValueError(
                "Invalid value for argument `arch`. Expected exactly the labels "
                f"{list(self._choices)}. Received: arch={arch!r} "
                f"(missing: {missing}, unknown: {extra})"
            )
        for label, options in self._choices.items():
            if str(arch[label]) not in options:
                raise ValueError(
                    f"Invalid value for argument `arch` at label {label!r}. "
                    f"Expected one of {list(options)}. "
                    f"Received: {label}={arch[label]!r}"
                )
        return {label: str(arch[label]) for label in self._choices}

    def encode(self, arch):
        """Architecture dict -> list of option indices, in label order."""
        arch = self.validate(arch)
        return [self._choices[k].index(arch[k]) for k in self._choices]

    def decode(self, indices):
        """List of option indices, in label order -> architecture dict."""
        indices = [int(i) for i in np.asarray(indices).reshape(-1)]
        if len(indices) != len(self._choices):
            raise ValueError(
                "Invalid value for argument `indices`. Expected "
                f"{len(self._choices)} option indices. Received: indices={indices}"
            )
        arch = {}
        for (label, options), i in zip(self._choices.items(), indices):
            if not 0 <= i < len(options):
                raise ValueError(
                    f"Invalid value for argument `indices` at label {label!r}. "
                    f"Expected an index in [0, {len(options)}). Received: {i}"
                )
            arch[label] = options[i]
        return arch

    def sample(self, seed=None):
        """A uniformly random architecture (`seed`: int or numpy Generator)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return {k: v[rng.integers(len(v))] for k, v in self._choices.items()}

    def derive(self, weights):
        """The discrete architecture of a mixed supernet's weights
        `{label: {option: weight}}`: the strongest option of each choice
        (ties: the first, as `argmax`). Spaces with topology rules (DARTS:
        two inputs per node) override it."""
        arch = {}
        for label, options in self._choices.items():
            row = weights.get(label) if isinstance(weights, dict) else None
            if not isinstance(row, dict) or any(o not in row for o in options):
                raise ValueError(
                    f"Invalid value for argument `weights` at label {label!r}. "
                    f"Expected {{option: weight}} for options {list(options)}. "
                    f"Received: {row!r}"
                )
            arch[label] = max(options, key=lambda o: (row[o], -options.index(o)))
        return arch

    # Whether a child holds slices of the supernet's weights (a space with
    # value choices, `FunctionSpace`); `Supernet.extract` then slices.
    sliced_weights = False

    # Rules of `equivalence_key` this space implements.
    equivalence_rules = ("exact",)

    def equivalence_key(self, arch, rule="exact"):
        """A hashable key equal for architectures that compute the same
        function in a supernet, so that scoring can compute one per class.

        `"exact"`: architectures that differ only in options that cannot
        change the output, whatever the weights (here: none; NAS-Bench-201
        ignores ops on edges that cannot reach the output). Spaces may offer
        more rules (`equivalence_rules`).
        """
        self.check_equivalence_rule(rule)
        return tuple(self.encode(arch))

    def check_equivalence_rule(self, rule):
        if rule not in self.equivalence_rules:
            raise ValueError(
                f"Invalid value for argument `rule`. Expected one of "
                f"{list(self.equivalence_rules)} for {type(self).__name__}. "
                f"Received: rule={rule!r}"
            )
        return rule

    # === Inter-choice priors ===
    def default_priors(self):
        """`{label: prior labels}` of inter-choice weights when none are
        given: each choice depends on the one before it (the reference's
        default offset -1)."""
        labels = self.labels
        return {label: (labels[i - 1],) if i else () for i, label in enumerate(labels)}

    def resolve_priors(self, priors=None):
        """The choices each choice depends on, as `{label: tuple of labels}`.

        Args:
            priors: None (`default_priors()`), a dict `{label: [prior
                labels]}` (labels not given depend on nothing), or the
                reference's form: one list of negative offsets per choice,
                in label order (e.g. NAS-Bench-201's `[[], [], [-2], [],
                [-4], [-4, -3]]`).

        Raises:
            ValueError: a prior that does not exist or does not come before
                its choice, or a malformed argument.
        """
        labels = list(self.labels)
        if priors is None:
            return {k: tuple(v) for k, v in self.default_priors().items()}
        if isinstance(priors, dict):
            unknown = [k for k in priors if k not in labels]
            if unknown:
                raise ValueError(
                    "Invalid value for argument `priors`. Expected labels of "
                    f"this space {labels}. Received unknown labels: {unknown}"
                )
            resolved = {label: tuple(str(p) for p in priors.get(label, ())) for label in labels}
        else:
            priors = list(priors)
            if len(priors) != len(labels):
                raise ValueError(
                    "Invalid value for argument `priors`. Expected a dict or one "
                    f"list of offsets per choice ({len(labels)}). Received: "
                    f"priors={priors}"
                )
            resolved = {}
            for i, (label, offsets) in enumerate(zip(labels, priors)):
                bad = [o for o in offsets if isinstance(o, bool) or not isinstance(o, int) or not -i <= o < 0]
                if bad:
                    raise ValueError(
                        f"Invalid value for argument `priors` at label {label!r}. "
                        f"Expected negative offsets to earlier choices, in [{-i}, -1]. "
                        f"Received: {list(offsets)}"
                    )
                resolved[label] = tuple(labels[i + o] for o in offsets)
        for label, prior_labels in resolved.items():
            for p in prior_labels:
                if p not in labels:
                    raise ValueError(
                        f"Invalid value for argument `priors` at label {label!r}. "
                        f"Expected labels of this space {labels}. Received: {p!r}"
                    )
                if labels.index(p) >= labels.index(label):
                    raise ValueError(
                        f"Invalid value for argument `priors` at label {label!r}. "
                        "Expected choices that come before it. Received: "
                        f"{p!r} (position {labels.index(p)} >= {labels.index(label)})"
                    )
            if len(set(prior_labels)) != len(prior_labels):
                raise ValueError(
                    f"Invalid value for argument `priors` at label {label!r}. "
                    f"Expected distinct labels. Received: {list(prior_labels)}"
                )
        return resolved

    def enumerate(self):
        """Every architecture of the space, in lexicographic index order."""
        labels = list(self._choices)
        for combo in itertools.product(*self._choices.values()):
            yield dict(zip(labels, combo))

    def split_options(self, options):
        """`(network_options, other_options)`: the keyword arguments of
        `build_network` among `options` (every one of them, with
        `build_network`'s defaults for those not given; not `choices`,
        which the supernet passes) and the rest."""
        options = dict(options)
        parameters = inspect.signature(self.build_network).parameters
        network_options = {
            name: options.pop(name, parameter.default)
            for name, parameter in parameters.items()
            if name not in ("arch", "name", "choices") and parameter.default is not inspect.Parameter.empty
        }
        return network_options, options

    def build_supernet(self, *, supernet_class=None, **options):
        """The weight-sharing supernet of the space.

        Args:
            supernet_class: the `kerasnas.Supernet` subclass to build, e.g.
                `kerasnas.darts.DartsSupernet`; default `kerasnas.Supernet`
                (single path, SPOS).
            **options: the options of `build_network` (e.g. `bn`,
                `synchronized_bn`; their defaults are the supernet class'
                `network_defaults`, then `build_network`'s)
                become the supernet's `network_options`; the others go to
                the supernet class (e.g. `choices`, the method's
                `kerasnas.layers.ChoiceFactory`; `path_sampler`, `seed`,
                `weight_decay`, `clip_norm`).
        """
        supernet_class = supernet_class or _DEFAULT_SUPERNET.get("class")
        if supernet_class is None:  # pragma: no cover - kerasnas registers it on import
            raise RuntimeError("kerasnas.supernet is not imported.")
        options = {**getattr(supernet_class, "network_defaults", {}), **options}
        network_options, options = self.split_options(options)
        unknown = sorted(set(options) - _accepted_options(supernet_class))
        if unknown:
            raise ValueError(
                f"Invalid value for argument `{unknown[0]}`. Expected options of "
                f"{type(self).__name__}.build_network ({sorted(network_options)}) or of "
                f"{supernet_class.__name__}: this space does not build the choices that "
                f"option asks for. Received: {', '.join(f'{k}={options[k]!r}' for k in unknown)}"
            )
        return supernet_class(self, network_options=network_options, **options)

    def get_config(self):
        return {"choices": {k: list(v) for k, v in self._choices.items()}}



def _accepted_options(supernet_class):
    """The keyword arguments a supernet class takes: those of the
    `__init__` of every class of its MRO that lists them, and Keras
    models' own (`name`, `trainable`, `dtype`)."""
    accepted = {"name", "trainable", "dtype"}
    for cls in supernet_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        accepted |= {n for n, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return accepted - {"self"}


# The supernet package registers `kerasnas.Supernet` here when imported, so
# that `SearchSpace.build_supernet` needs no import from the layer above.
_DEFAULT_SUPERNET = {}


def register_default_supernet(cls):
    """Sets the class `SearchSpace.build_supernet` builds by default."""
    _DEFAULT_SUPERNET["class"] = cls
    return cls
