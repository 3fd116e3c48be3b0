"""Base of the callbacks that observe a supernet's training step."""

import keras


class SupernetObserver(keras.callbacks.Callback):
    """A callback whose `_observe` runs inside the supernet's training step.

    On `set_model` it checks that the model is a `kerasnas.Supernet`, creates
    its state with `_make_state(model)` under the model's distribution
    strategy (once per model) and registers `_observe` as a gradient
    (`observes = "gradients"`) or batch (`"batches"`) observer. The observer
    stays registered after `fit`: registering again would retrace the step.
    """

    observes = "gradients"

    def __init__(self):
        super().__init__()
        self._state = None
        self._supernet = None

    def _make_state(self, model):
        return None

    def _observe(self, supernet, *args):
        raise NotImplementedError

    def set_model(self, model):
        super().set_model(model)
        kind = "gradient" if self.observes == "gradients" else "batch"
        if not hasattr(model, f"add_{kind}_observer"):
            raise ValueError(
                "Invalid value for argument `model`. Expected a kerasnas.Supernet "
                f"({type(self).__name__} observes its training steps). "
                f"Received: {type(model).__name__}"
            )
        if self._supernet is not model:
            if self._supernet is not None:
                getattr(self._supernet, f"remove_{kind}_observer")(self._observe)
            self._supernet, self._state = model, None
        if self._state is None:
            with model.distribute_strategy.scope():
                self._state = self._make_state(model)
        getattr(model, f"add_{kind}_observer")(self._observe)
