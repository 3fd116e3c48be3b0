"""Per-epoch schedules of the samplers' smoothing parameters (PA&DA's δ, τ)."""

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.sampling.LinearSchedule")
class LinearSchedule:
    """`start + (end - start) * epoch / epochs`: PA&DA's δ and τ.

    The reference code sets `tau = epoch / epochs` at the start of epoch
    `epoch` (0-based), so the first epoch trains with uniform sampling and
    the last with `(epochs - 1) / epochs`.

    Args:
        epochs: the number of epochs of the run; None takes `fit`'s
            `epochs` when the sampler's callback starts.
        start: the value at epoch 0.
        end: the value `epochs` epochs later.
    """

    def __init__(self, epochs=None, start=0.0, end=1.0):
        if epochs is not None and int(epochs) < 1:
            raise ValueError(
                "Invalid value for argument `epochs`. Expected None or a positive "
                f"int. Received: epochs={epochs}"
            )
        self.epochs = None if epochs is None else int(epochs)
        self.start = float(start)
        self.end = float(end)

    def __call__(self, epoch):
        if self.epochs is None:
            raise ValueError(
                "LinearSchedule needs `epochs`: pass it, or let the sampler's "
                "callback take fit's `epochs`."
            )
        return self.start + (self.end - self.start) * epoch / self.epochs

    def get_config(self):
        return {"epochs": self.epochs, "start": self.start, "end": self.end}


def schedule_value(schedule, epoch, name):
    """The value of `schedule` (a number, a callable of the epoch, or a Keras
    schedule object) at `epoch`, checked to be in [0, 1]."""
    value = schedule(epoch) if callable(schedule) else schedule
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a number in [0, 1], "
            f"a callable of the epoch or a schedule. Received: {schedule!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected values in [0, 1]. "
            f"Received: {value} at epoch {epoch}"
        )
    return value


def with_epochs(schedule, epochs):
    """`schedule`, given `epochs` if it is a `LinearSchedule` without them."""
    if isinstance(schedule, LinearSchedule) and schedule.epochs is None and epochs:
        return LinearSchedule(epochs, schedule.start, schedule.end)
    return schedule
