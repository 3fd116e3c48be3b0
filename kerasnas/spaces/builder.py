"""One build of a space's network: the supernet's or a child's.

Every space builder (the built-in ones and `FunctionSpace`) writes its
network once and asks a `NetworkBuild` at each choice point; the build
knows whether it makes the supernet (every candidate, in the layer the
method's `kerasnas.layers.ChoiceFactory` makes) or a child (the chosen
candidate only, with what the supernet folded for it). A space never sees
which method it is built for.
"""

from kerasnas.layers.factory import check_factory


class NetworkBuild:
    """The state of one `build_network` call.

    Args:
        space: the `kerasnas.spaces.SearchSpace` being built.
        arch: None (the supernet) or a validated architecture dict (a child).
        choices: the method's `kerasnas.layers.ChoiceFactory` (supernet; the
            single-path default when None), or the child's side of it
            (`factory.for_child(...)`, from `Supernet.extract`).
    """

    def __init__(self, space, arch=None, choices=None):
        self.space = space
        self.arch = arch
        self.choices = check_factory(choices)
        self.labels = list(space.labels)
        self.selectors = None

    @property
    def supernet(self):
        """Whether this build makes the supernet (every candidate)."""
        return self.arch is None

    def inputs(self, images):
        """The network's inputs: `[images, architecture input]` for the
        supernet (the factory's), `images` for a child."""
        if not self.supernet:
            return images
        tensor, self.selectors = self.choices.architecture_input(self.space.num_options)
        return [images, tensor]

    def choose(self, label, candidates, inputs, *, name, dense=False):
        """The supernet's output of the choice point `label` on `inputs`:
        its `candidates` (one layer per option, in the space's option order)
        in the factory's choice layer named `name`."""
        layer = self.choices.make(
            candidates, list(self.space.choices[label]), label, name=name, dense=dense, space=self.space,
        )
        return layer.select(inputs, self.selectors, self.labels)

    def choose_value(self, label, layer, values, inputs, *, name):
        """The supernet's output of the value choice `label`: `layer` (built
        at the widest of `values`) in the factory's value-choice layer."""
        choice = self.choices.make_value(layer, values, label, name=name, space=self.space)
        return choice.select(inputs, self.selectors, self.labels)

    def child_input(self, inputs, name):
        """A child's input to the candidate of the choice layer `name` (what
        the supernet folded for it applied; `inputs` in the supernet)."""
        return inputs if self.supernet else self.choices.child_input(inputs, name)
