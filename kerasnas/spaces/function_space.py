"""A search space written as one function of ordinary functional Keras code.

```python
def small_cnn(b, images):
    x = keras.layers.Conv2D(16, 3, padding="same")(images)
    for i in range(3):
        x = b.choice(f"block{i}", {
            "conv3": lambda: keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            "conv5": lambda: keras.layers.Conv2D(16, 5, padding="same", activation="relu"),
            "skip": lambda: keras.layers.Identity(),
        }, x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(10)(x)

space = kerasnas.spaces.from_function(small_cnn, input_shape=(8, 8, 3))
supernet = space.build_supernet(seed=0)     # every candidate, single-path
child = supernet.extract({"block0": "conv5", "block1": "skip", "block2": "conv3"})
```

The function runs in three modes: once when the space is made, to find its
choices (labels and options, in call order); to build the supernet (every
candidate of a choice in one `kerasnas.layers.Choice`); and to build a
child (only the chosen candidates). Layer names are the library's job: the
function's own layers get Keras' automatic names counted afresh in every
build, so the supernet and each child name them alike, and the candidates
are named `<label>__<option>` (with their own counters, so that building
every candidate does not shift the names of the layers after them).
Weights transfer by those names (`Supernet.extract`).

A choice takes zero-argument functions that return a new layer (or any
callable Keras object such as a small functional model): the supernet and
every child each need their own. Two calls with the same label take the
same decision (with their own weights).
"""

import collections
import contextlib
import importlib
import re

import keras

from kerasnas.api_export import kerasnas_export
from kerasnas.spaces.builder import NetworkBuild
from kerasnas.spaces.search_space import SearchSpace


@contextlib.contextmanager
def _fresh_names(counters=None):
    """Keras' automatic layer names counted with `counters` (default: from
    scratch) inside the block (`keras.backend.get_uid`'s counters), the
    process' counters restored after it."""
    from keras.src.backend.common import global_state

    saved = global_state.get_global_attribute("object_name_uids")
    fresh = collections.defaultdict(int) if counters is None else counters
    global_state.set_global_attribute("object_name_uids", fresh)
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _layer_name(*parts):
    return "__".join(_SAFE.sub("_", str(p)) for p in parts)


class Builder:
    """What a space function receives: `choice` declares a choice point.

    Built by `FunctionSpace`; a user never makes one.
    """

    def __init__(self, mode, build=None, dense=False):
        self.mode = mode  # "discover", "supernet" or "child"
        self.build = build  # the `NetworkBuild` (supernet and child)
        self.arch = build.arch if build is not None else None
        self.dense = dense
        self.found = {}  # label -> options, in call order
        self._calls = {}
        self.sliced = False  # whether a value choice was made
        # The names of the supernet's choice layers and of the ops that feed
        # them their selections: counted apart from the function's own
        # layers, which a child has without them.
        self._plumbing = collections.defaultdict(int)

    def choice(self, label, candidates, inputs):
        """One decision among `candidates` applied to `inputs`.

        Args:
            label: the decision's name (a key of every architecture dict).
                Calls with the same label take the same decision.
            candidates: dict `{option name: function returning a new layer}`
                (e.g. `lambda: keras.layers.Conv2D(32, 3, padding="same")`),
                all mapping `inputs` to outputs of one shape.
            inputs: the input tensor.

        Returns:
            The output tensor: the chosen candidate's (child), or the
            `Choice` layer's over every candidate (supernet).
        """
        label, options = self._check(label, candidates)
        prefix = self._prefix(label)
        name = _layer_name(*prefix, "choice")
        if self.mode == "child":
            option = self.arch[label]
            with _fresh_names(self._plumbing):  # what the supernet folded for the child
                inputs = self.build.child_input(inputs, name)
            return self._candidate(prefix, option, candidates[option])(inputs)
        layers = [self._candidate(prefix, option, candidates[option]) for option in options]
        if self.mode == "discover":  # throwaway layers: the shapes are checked once
            return self._check_shapes(label, options, layers, inputs)
        with _fresh_names(self._plumbing):
            return self.build.choose(label, [l.layer for l in layers], inputs, name=name, dense=self.dense)

    def value_choice(self, label, values, factory, inputs):
        """A width (or any channel count) chosen among `values` for one
        layer whose candidates share weights: the narrower is a slice of
        the widest (see `kerasnas.layers.ValueChoice`).

        Args:
            label: the decision's name; its options are `str(value)`.
            values: distinct positive ints, e.g. `[16, 32]`.
            factory: `factory(value)` returns a new layer whose output has
                `value` channels (last axis), e.g. `lambda w: ConvBN(w, 1)`.
            inputs: the input tensor.

        Returns:
            The output tensor: `value` channels in a child; in the supernet
            `max(values)` channels, those past the selected value zero.
        """
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = list(values)
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ValueError(
                f"Invalid value for argument `values` of value choice {label!r}. Expected "
                f"positive ints (channel counts). Received: {values!r}"
            )
        if not callable(factory) or isinstance(factory, keras.layers.Layer):
            raise ValueError(
                f"Invalid value for argument `factory` of value choice {label!r}. Expected a "
                "function `factory(value)` returning a new layer with `value` output channels. "
                f"Received: {factory!r}"
            )
        label, _ = self._check(label, {str(v): factory for v in values})
        self.sliced = True
        prefix = self._prefix(label)
        widest = max(values)
        if self.mode == "child":
            value = int(self.arch[label])
            return self._candidate(prefix, "value", lambda: factory(value))(inputs)
        if self.mode == "discover":
            outputs = {}
            for v in values:
                outputs[v] = self._candidate(prefix, "value", lambda v=v: factory(v))(inputs)
            wrong = {v: tuple(y.shape) for v, y in outputs.items() if y.shape[-1] != v}
            if wrong:
                raise ValueError(
                    f"Invalid value for argument `factory` of value choice {label!r}. Expected "
                    f"layers whose output has `value` channels (last axis). Received output "
                    f"shapes {wrong}"
                )
            return outputs[widest]
        layer = self._candidate(prefix, "value", lambda: factory(widest)).layer
        with _fresh_names(self._plumbing):
            return self.build.choose_value(label, layer, values, inputs, name=_layer_name(*prefix, "choice"))

    def _prefix(self, label):
        """The name parts of this call of `label`: `(label,)` the first
        time, `(label, k)` for the k-th repeat (one decision, own weights)."""
        k = self._calls.get(label, 0)
        self._calls[label] = k + 1
        return (label,) if k == 0 else (label, k)

    def _check(self, label, candidates):
        if not isinstance(label, str) or not label:
            raise ValueError(
                "Invalid value for argument `label`. Expected a non-empty string. "
                f"Received: label={label!r}"
            )
        if not isinstance(candidates, dict) or not candidates:
            raise ValueError(
                f"Invalid value for argument `candidates` of choice {label!r}. Expected a "
                "non-empty dict {option name: function returning a new layer}. "
                f"Received: {candidates!r}"
            )
        for option, factory in candidates.items():
            if isinstance(factory, keras.layers.Layer) or not callable(factory):
                raise ValueError(
                    f"Invalid value for argument `candidates` of choice {label!r} at option "
                    f"{option!r}. Expected a function returning a new layer (e.g. `lambda: "
                    "keras.layers.Conv2D(32, 3)`): the supernet and every child each build "
                    f"their own. Received: {factory!r}"
                )
        options = tuple(str(o) for o in candidates)
        known = self.found.setdefault(label, options)
        if known != options:
            raise ValueError(
                f"Invalid value for argument `candidates` of choice {label!r}. Expected the "
                f"options of its first call, {list(known)}. Received: {list(options)}"
            )
        return label, options

    @staticmethod
    def _candidate(prefix, option, factory):
        with _fresh_names():
            layer = factory()
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"Invalid value for argument `candidates` of choice {prefix[0]!r} at option "
                f"{option!r}. Expected a function returning a Keras layer. Received: "
                f"{layer!r}"
            )
        if layer.built and layer.weights:  # (weightless layers are built when made)
            raise ValueError(
                f"Invalid value for argument `candidates` of choice {prefix[0]!r} at option "
                f"{option!r}. Expected a function returning a new (unbuilt) layer. "
                f"Received: the built layer {layer.name!r}"
            )
        layer.name = _layer_name(*prefix, option)
        return _Named(layer)

    @staticmethod
    def _check_shapes(label, options, layers, inputs):
        outputs = [layer(inputs) for layer in layers]
        shapes = {option: tuple(y.shape) for option, y in zip(options, outputs)}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f"Invalid value for argument `candidates` of choice {label!r}. Expected "
                "candidates whose outputs have one shape (a choice's output feeds the same "
                f"layers whatever is chosen). Received output shapes {shapes}"
            )
        return outputs[0]


class _Named:
    """A candidate layer, called within its own naming counters."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, inputs):
        with _fresh_names():
            return self.layer(inputs)


@kerasnas_export("kerasnas.spaces.FunctionSpace")
class FunctionSpace(SearchSpace):
    """A search space defined by one function `function(builder, images)`
    returning the logits (see the module's documentation and
    `from_function`).

    The function is saved by reference (its module and qualified name): a
    supernet of this space reloads where that module imports (the command
    line: `kerasnas --import MODULE ...`).

    Args:
        function: `function(b, images)`, ordinary functional Keras code in
            which each choice point is `b.choice(label, {option: factory},
            x)`; returns the output tensor.
        input_shape: `(height, width, channels)` of the images.
    """

    def __init__(self, function, input_shape):
        if isinstance(function, str):
            function = _import_function(function)
        if not callable(function):
            raise ValueError(
                "Invalid value for argument `function`. Expected a function "
                f"`function(builder, images)`. Received: function={function!r}"
            )
        input_shape = tuple(int(d) for d in input_shape)
        self.function = function
        self.input_shape = input_shape
        builder = Builder("discover")
        with _fresh_names():
            images = keras.Input(shape=input_shape, name="images")
            outputs = function(builder, images)
        if not builder.found:
            raise ValueError(
                "Invalid value for argument `function`. Expected a function that makes at "
                f"least one choice (`b.choice(label, candidates, x)`). Received: {function!r}, "
                "which made none"
            )
        self.num_classes = int(outputs.shape[-1]) if outputs.shape else None
        # A child of a value choice holds slices of the supernet's weights.
        self.sliced_weights = builder.sliced
        super().__init__(builder.found)

    def build_network(self, arch=None, dense_choices=None, choices=None, name=None):
        """The functional network of the supernet (`arch=None`; inputs
        `[images, architecture input]`) or of the child of `arch` (input:
        images), as `NasBench201.build_network`.

        Args:
            arch: None (the supernet) or an architecture dict.
            dense_choices: the supernet's choices run every candidate and
                select the output (see `kerasnas.layers.Choice`).
            choices: the method's `kerasnas.layers.ChoiceFactory` (default
                single-path), or a child's side of it (`Supernet.extract`).
            name: the model's name.
        """
        if arch is not None:
            arch = self.validate(arch)
        build = NetworkBuild(self, arch, choices)
        with _fresh_names():
            images = keras.Input(shape=self.input_shape, name="images")
            inputs = build.inputs(images)
            builder = Builder("supernet" if build.supernet else "child", build, dense=bool(dense_choices))
            outputs = self.function(builder, images)
        default = "function_supernet_network" if arch is None else "function_child"
        return keras.Model(inputs, outputs, name=name or default)

    def get_config(self):
        return {
            "function": f"{self.function.__module__}:{self.function.__qualname__}",
            "input_shape": list(self.input_shape),
        }


def _import_function(reference):
    module, _, qualname = reference.partition(":")
    try:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            "Invalid value for argument `function`. Expected 'module:function' of an "
            f"importable space function. Received: function={reference!r} "
            f"({type(error).__name__}: {error}). Import the module that defines it first "
            "(`kerasnas --import MODULE ...`)"
        ) from None
    return target


def from_function(function, input_shape):
    """The `FunctionSpace` of `function(b, images)` (see the module's
    documentation): a search space in ordinary functional Keras code."""
    return FunctionSpace(function, input_shape)
