"""The split milestones of inter-choice split weights."""

import keras

from kerasnas.api_export import kerasnas_export
from kerasnas.layers import SplitChoice


@kerasnas_export("kerasnas.callbacks.SplitWeights")
class SplitWeights(keras.callbacks.Callback):
    """Splits the candidates' weights of every `kerasnas.layers.SplitChoice`
    at the milestone epochs (Laube & Zell's split weights).

    At the start of epoch `e` the split depth of every `SplitChoice` is the
    number of milestones `<= e` (each milestone keys the copies by one more
    prior, at most the layer's `max_depth`; the reference's
    `SplitWeightsMixedOpCallback`). The depth follows from the epoch, so a
    resumed run gets the same depth as an uninterrupted one.

    Args:
        milestones: epochs at which the depth grows by one (ints in
            `[1, epochs)`; the reference's default is 100).

    Example:

    ```python
    supernet = space.build_supernet(choices=kerasnas.layers.InterChoices("split"))
    supernet.fit(ds, epochs=250, callbacks=[kerasnas.callbacks.SplitWeights([100])])
    ```
    """

    def __init__(self, milestones):
        super().__init__()
        try:
            milestones = sorted(int(m) for m in milestones)
        except (TypeError, ValueError):
            milestones = None
        if not milestones or milestones[0] < 1:
            raise ValueError(
                "Invalid value for argument `milestones`. Expected a non-empty "
                f"list of epochs >= 1. Received: milestones={milestones!r}"
            )
        self.milestones = milestones

    def _layers(self):
        layers = [l for l in self.model._flatten_layers(include_self=False) if isinstance(l, SplitChoice)]
        if not layers:
            raise ValueError(
                "SplitWeights needs a supernet with split weights (built with "
                "`choices=InterChoices('split')`): the model has no SplitChoice layer."
            )
        return layers

    def on_train_begin(self, logs=None):
        epochs = (self.params or {}).get("epochs")
        if epochs is not None and self.milestones[-1] >= epochs:
            raise ValueError(
                "Invalid value for argument `milestones`. Expected epochs within "
                f"training, in [1, {epochs}). Received: milestones={self.milestones}"
            )
        self._layers()

    def depth_at(self, epoch):
        """The split depth at the start of `epoch`."""
        return sum(m <= epoch for m in self.milestones)

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self._layers():
            layer.set_depth(self.depth_at(epoch))

    def get_config(self):
        return {"milestones": list(self.milestones)}
