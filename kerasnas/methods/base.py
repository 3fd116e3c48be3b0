"""What a method is: the parts it declares, how parts combine, and one
`train` that runs any method (or combination) on any space."""

import copy
import inspect

import keras
import numpy as np
import tensorflow as tf

from kerasnas.api_export import kerasnas_export

# Method name -> (class, preset options); filled by `register` and `alias`
# (each method's module, or a user's, imported with `kerasnas --import`).
_REGISTRY = {}


def register(name):
    """Class decorator: makes a `Method` subclass available by `name` to
    `kerasnas.methods.get` (and so to the command line and presets)."""

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise ValueError(
                "Invalid value for argument `cls`. Expected a kerasnas.methods.Method "
                f"subclass. Received: {cls!r}"
            )
        _claim(name, cls, {})
        cls.name = name
        return cls

    return decorator


def alias(name, cls, **options):
    """Registers `name` for `cls(**options)` (e.g. `"interchoice-split"`
    for `InterChoice(mode="split")`)."""
    _claim(name, cls, options)


def _claim(name, cls, options):
    if not isinstance(name, str) or not name or "+" in name:
        raise ValueError(
            "Invalid value for argument `name`. Expected a non-empty string without "
            f"'+'. Received: name={name!r}"
        )
    if name in _REGISTRY and _REGISTRY[name] != (cls, options):
        raise ValueError(
            f"Invalid value for argument `name`. Expected a method name not yet "
            f"registered ({_REGISTRY[name][0].__name__} has it). Received: name={name!r}"
        )
    _REGISTRY[name] = (cls, options)


@kerasnas_export("kerasnas.methods.names")
def names():
    """The registered method names, in registration order."""
    return list(_REGISTRY)


@kerasnas_export("kerasnas.methods.get")
def get(identifier, **options):
    """A method from its name (`"pada"`, or `"pa+interchoice-bias"` for a
    combination), its `get_config()` dict, or a `Method` (returned as is).

    `options` go to the method's constructor (one name only)."""
    if isinstance(identifier, Method):
        if options:
            raise ValueError(
                "Invalid value for argument `options`. Expected none with a Method "
                f"instance. Received: {sorted(options)}"
            )
        return identifier
    if isinstance(identifier, dict):
        if "parts" in identifier:
            return Combined(*[get(part) for part in identifier["parts"]])
        return get(identifier.get("name"), **{**identifier.get("options", {}), **options})
    if isinstance(identifier, str) and "+" in identifier:
        if options:
            raise ValueError(
                "Invalid value for argument `options`. Expected none with a combination "
                f"({identifier!r}): pass each part as a Method. Received: {sorted(options)}"
            )
        return Combined(*[get(part) for part in identifier.split("+")])
    if identifier not in _REGISTRY:
        raise ValueError(
            f"Invalid value for argument `identifier`. Expected a method name, one of "
            f"{names()} (or several joined by '+'), a config dict or a Method. "
            f"Received: {identifier!r}"
        )
    cls, preset = _REGISTRY[identifier]
    return cls(**{**preset, **options})


@kerasnas_export("kerasnas.methods.Method")
class Method:
    """One NAS method, declared as the parts it contributes to training a
    supernet. Every part has a neutral default (SPOS'); a method overrides
    the parts it changes, and methods on different axes combine with `+`
    (`PA() + InterChoice("bias")`).

    Parts (override in a subclass):
        supernet_class: the `kerasnas.Supernet` subclass it trains, or None
            (`kerasnas.Supernet`); the subclass overrides `train_step` only.
        choices(): the `kerasnas.layers.ChoiceFactory` that makes its choice
            layers in any space, or None (the supernet class' default).
        supernet_options(): more keyword arguments of the supernet class.
        path_sampler(space): a `kerasnas.sampling.PathSampler`, or None.
        data_sampler(data, batch_size, seed): a sampler with `dataset()`
            and `callback()` (`kerasnas.sampling.ImportanceDataSampler`)
            drawing the training batches from arrays `(x, y)`, or None;
            `train` adds its callback.
        needs_arch_data: True when each step also takes a batch of other
            data (DARTS' α step): `train` then pairs `arch_data` with the
            training batches.
        compile(supernet, optimizer, loss, metrics): compiles the supernet.
        callbacks(supernet, epochs, data, seed): its Keras callbacks (after
            the path and data samplers' own).
        fit(supernet, data, epochs, callbacks, verbose, directory): trains;
            returns the trained object (a supernet, or a few-shot tree).
        scale(budget_epochs, space): `(method, epochs)`: the method with its
            schedule fitted to a budget of `budget_epochs` supernet epochs,
            and the epochs to pass to `fit`.
        node_epochs(epochs): the supernet-epochs a `fit` of `epochs` trains.
        step_cost: cost of a training image relative to SPOS' (GPU-hour
            estimates).
        combines: whether it may be combined with other methods (False
            where the combination is not defined, e.g. GM-NAS' tree).
    """

    name = None
    supernet_class = None
    needs_arch_data = False
    step_cost = 1.0
    combines = True
    # More keyword arguments of the supernet class a method was given
    # (`**supernet_options`); part of its config.
    _options = {}

    # --- configuration ---
    def get_config(self):
        """The constructor's arguments (`get(method.get_config())` is an
        equal method)."""
        config = {}
        for parameter in inspect.signature(type(self).__init__).parameters.values():
            if parameter.name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            config[parameter.name] = getattr(self, parameter.name)
        config.update(self._options)  # a subclass' **supernet_options
        return {"name": type(self).name, "options": _plain(config)}

    def __eq__(self, other):
        return isinstance(other, Method) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config()["options"].items())
        return f"{type(self).__name__}({options})"

    def __add__(self, other):
        return Combined(self, other)

    @property
    def parts(self):
        return [self]

    # --- the parts ---
    def choices(self):
        return None

    def supernet_options(self):
        return dict(self._options)

    def path_sampler(self, space):
        return None

    def data_sampler(self, data, batch_size, seed):
        return None

    def compile(self, supernet, optimizer, loss, metrics=None):
        supernet.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    def callbacks(self, supernet, epochs, data, seed):
        return []

    def fit(self, supernet, data, epochs, callbacks=(), verbose=0, directory=None):
        supernet.fit(data, epochs=epochs, callbacks=list(callbacks), verbose=verbose, shuffle=False)
        return supernet

    def scale(self, budget_epochs, space):
        return self, int(budget_epochs)

    def node_epochs(self, epochs):
        return int(epochs)

    # --- assembled ---
    def build(self, space, seed=None, **options):
        """The (uncompiled) supernet of `space` this method trains.

        `options` go to the supernet (e.g. `weight_decay`, `clip_norm`, the
        space's `build_network` options); they may not set a part the
        method declares."""
        declared = {}
        if self.supernet_class is not None:
            declared["supernet_class"] = self.supernet_class
        choices = self.choices()
        if choices is not None:
            declared["choices"] = choices
        sampler = self.path_sampler(space)
        if sampler is not None:
            declared["path_sampler"] = sampler
        declared.update(self.supernet_options())
        clash = sorted(set(declared) & set(options))
        if clash:
            raise ValueError(
                f"Invalid value for argument `{clash[0]}`. Expected it from the method "
                f"{self.name!r} (which sets it), not as an option of build/train. "
                f"Received: {clash[0]}={options[clash[0]]!r}"
            )
        return space.build_supernet(seed=seed, **declared, **options)

    def train(
        self, space, data, epochs, *, optimizer, loss=None, metrics=None, arch_data=None,
        batch_size=None, seed=0, directory=None, callbacks=(), verbose=0, **options,
    ):
        """Builds, compiles and trains this method's supernet of `space`.

        Args:
            space: a `kerasnas.spaces.SearchSpace` (e.g. `from_function`).
            data: arrays `(x, y)` (batched by `batch_size`, reshuffled every
                epoch with `seed`; required by a data sampler), or a
                `tf.data.Dataset` of batches (one epoch per iteration).
            epochs: epochs of `fit` (a method that schedules by epochs,
                e.g. DCNAS or split weights, fits its schedule to them).
            optimizer: a Keras optimizer (one per supernet: make a new one
                for every call).
            loss: default sparse categorical cross-entropy on logits.
            metrics: compiled metrics.
            arch_data: the other data of a bilevel method (DARTS' α step):
                arrays or a dataset, like `data`.
            batch_size: the batch size of array data.
            seed: the supernet's, the sampler's and the shuffling seed.
            directory: where a method keeps what it trains (GM-NAS' tree).
            callbacks: more Keras callbacks.
            verbose: `fit` verbosity.
            **options: the supernet's options (see `build`).

        Returns:
            the trained supernet (a `kerasnas.fewshot.FewShotSupernet` for
            GM-NAS), ready for ranking, search and `extract`.
        """
        supernet = self.build(space, seed=seed, **options)
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.compile(supernet, optimizer, loss, metrics)
        sampler = self.data_sampler(data, batch_size, seed) if _is_arrays(data) else None
        if sampler is None and _is_sampling(self):
            raise ValueError(
                f"Invalid value for argument `data`. Expected arrays (x, y): {self.name!r} "
                f"draws its batches from the examples themselves. Received: {type(data).__name__}"
            )
        dataset = sampler.dataset() if sampler is not None else batches(data, batch_size, seed, "data")
        if self.needs_arch_data:
            if arch_data is None:
                raise ValueError(
                    f"Invalid value for argument `arch_data`. Expected arrays (x, y) or a "
                    f"dataset for {self.name!r}' architecture step (e.g. a validation "
                    "split). Received: arch_data=None"
                )
            from kerasnas.darts import paired

            dataset = paired(dataset, batches(arch_data, batch_size, seed + 1, "arch_data"))
        elif arch_data is not None:
            raise ValueError(
                f"Invalid value for argument `arch_data`. Expected None: {self.name!r} "
                f"has no architecture step. Received: {type(arch_data).__name__}"
            )
        own = [sampler.callback()] if sampler is not None else []
        own += self.callbacks(supernet, epochs, dataset, seed)
        return self.fit(supernet, dataset, epochs, own + list(callbacks), verbose, directory)


def _is_sampling(method):
    return any(_declares(part, "data_sampler") for part in method.parts)


@kerasnas_export("kerasnas.methods.Combined")
class Combined(Method):
    """Methods on different axes trained together (`PA() + InterChoice("bias")`).

    Each part (supernet class, choice factory, path sampler, data sampler,
    a `fit` of its own) may come from one method only; callbacks, supernet
    options and the need for architecture data are merged.
    """

    _SINGLE = ("supernet_class", "choices", "path_sampler", "data_sampler", "fit", "compile")

    def __init__(self, *methods):
        parts = []
        for method in methods:
            parts += get(method).parts
        if len(parts) < 2:
            raise ValueError(
                "Invalid value for argument `methods`. Expected at least two methods to "
                f"combine. Received: {parts}"
            )
        alone = [m.name for m in parts if not m.combines]
        if alone:
            raise ValueError(
                f"Invalid value for argument `methods`. {alone[0]!r} trains alone: its "
                "training is not defined with another method's parts (not combinable). "
                f"Received: {[m.name for m in parts]}"
            )
        for part in self._SINGLE:
            owners = [m.name for m in parts if _declares(m, part)]
            if len(owners) > 1:
                raise ValueError(
                    f"Invalid value for argument `methods`. {owners[0]!r} and {owners[1]!r} "
                    f"both set the {part.replace('_', ' ')}: they are not on different "
                    f"axes and cannot be combined. Received: {[m.name for m in parts]}"
                )
        self._parts = parts
        self.name = "+".join(m.name for m in parts)
        self.needs_arch_data = any(m.needs_arch_data for m in parts)
        self.step_cost = 1.0 + sum(m.step_cost - 1.0 for m in parts)
        classes = [m.supernet_class for m in parts if m.supernet_class is not None]
        self.supernet_class = classes[0] if classes else None

    @property
    def parts(self):
        return list(self._parts)

    def get_config(self):
        return {"parts": [m.get_config() for m in self._parts]}

    def __repr__(self):
        return " + ".join(repr(m) for m in self._parts)

    def _owner(self, part):
        return next((m for m in self._parts if _declares(m, part)), Method())

    def choices(self):
        return self._owner("choices").choices()

    def supernet_options(self):
        options = {}
        for m in self._parts:
            options.update(m.supernet_options())
        return options

    def path_sampler(self, space):
        return self._owner("path_sampler").path_sampler(space)

    def data_sampler(self, data, batch_size, seed):
        return self._owner("data_sampler").data_sampler(data, batch_size, seed)

    def compile(self, supernet, optimizer, loss, metrics=None):
        return self._owner("compile").compile(supernet, optimizer, loss, metrics)

    def callbacks(self, supernet, epochs, data, seed):
        return [c for m in self._parts for c in m.callbacks(supernet, epochs, data, seed)]

    def fit(self, supernet, data, epochs, callbacks=(), verbose=0, directory=None):
        return self._owner("fit").fit(supernet, data, epochs, callbacks, verbose, directory)

    def scale(self, budget_epochs, space):
        parts, epochs = [], int(budget_epochs)
        for m in self._parts:
            scaled, fit_epochs = m.scale(budget_epochs, space)
            parts.append(scaled)
            if fit_epochs != budget_epochs:
                epochs = fit_epochs
        return Combined(*parts), epochs

    def node_epochs(self, epochs):
        return self._owner("fit").node_epochs(epochs)


def _declares(method, part):
    """Whether `method` sets `part` itself (not Method's neutral default)."""
    if part == "supernet_class":
        return method.supernet_class is not None
    if part == "choices":
        return method.choices() is not None
    return getattr(type(method), part) is not getattr(Method, part)


def batches(data, batch_size, seed, argument="data"):
    """A dataset of batches from arrays `(x, y)` (reshuffled every epoch
    with `seed`) or a `tf.data.Dataset` (as is)."""
    if isinstance(data, tf.data.Dataset):
        if batch_size is not None:
            raise ValueError(
                f"Invalid value for argument `batch_size`. Expected None with a dataset "
                f"`{argument}` (it is batched already). Received: batch_size={batch_size!r}"
            )
        return data
    if not _is_arrays(data):
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected arrays (x, y) of equal "
            f"length or a tf.data.Dataset. Received: {type(data).__name__}"
        )
    if batch_size is None or isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(
            f"Invalid value for argument `batch_size`. Expected a positive int with array "
            f"`{argument}`. Received: batch_size={batch_size!r}"
        )
    x, y = data
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
        .batch(int(batch_size))
    )


def _is_arrays(data):
    return (
        isinstance(data, (tuple, list)) and len(data) == 2
        and all(hasattr(a, "shape") and len(a.shape) >= 1 for a in data)
        and data[0].shape[0] == data[1].shape[0]
    )


def _plain(value):
    """JSON-like copy of a config value (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "get_config") and not isinstance(value, type):
        return keras.saving.serialize_keras_object(value)
    return copy.deepcopy(value)
