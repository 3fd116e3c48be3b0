"""A cosine learning-rate schedule whose length a restarted few-shot leaf
can change after the training function is traced (GM-NAS' `fix_sche`)."""

import keras

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.fewshot.LeafCosineDecay")
class LeafCosineDecay(keras.optimizers.schedules.CosineDecay):
    """`keras.optimizers.schedules.CosineDecay` (no warm-up) whose
    `decay_steps` is a variable, read in the graph: equal to CosineDecay
    step for step, and `FewShotSupernet(fix_schedule=True)` stretches it to
    a restarted leaf's own epochs (the reference's `--fix_sche`: a new
    cosine over the remaining epochs, annealed to the end) and back.

    Args:
        initial_learning_rate, decay_steps, alpha, name: as `CosineDecay`.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="LeafCosineDecay"):
        super().__init__(initial_learning_rate, decay_steps, alpha=alpha, name=name)
        self.base_decay_steps = int(decay_steps)
        self.decay_steps = keras.Variable(
            float(decay_steps), dtype="float32", trainable=False, name="leaf_decay_steps"
        )

    def stretch(self, steps):
        """Decays over `steps` (None: back to the configured `decay_steps`)."""
        self.decay_steps.assign(float(self.base_decay_steps if steps is None else steps))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.base_decay_steps,
            "alpha": self.alpha,
            "name": self.name,
        }


class StretchedSchedule(keras.callbacks.Callback):
    """During one node's `fit`: the `LeafCosineDecay` decays over `epochs`
    epochs of `fit`'s steps (restored at the end)."""

    def __init__(self, schedule, epochs):
        super().__init__()
        self.schedule, self.epochs = schedule, int(epochs)

    def on_train_begin(self, logs=None):
        steps = (self.params or {}).get("steps")
        if not steps:
            raise ValueError(
                "Invalid value for argument `train_data`. Expected batches of known length "
                "(or `steps_per_epoch`): `fix_schedule` stretches the learning-rate schedule "
                "to a restarted leaf's steps. Received: a dataset of unknown length"
            )
        self.schedule.stretch(self.epochs * int(steps))

    def on_train_end(self, logs=None):
        self.schedule.stretch(None)
