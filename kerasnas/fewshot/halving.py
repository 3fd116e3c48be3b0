"""Successive halving over candidate architectures from their training
logs (GM-NAS' `successive_halving.py`): how the reference picks among the
genotypes of its DARTS-space sub-supernets."""

import numpy as np

from kerasnas.api_export import kerasnas_export

AVERAGES = ("reference", "mean", "max")


def reference_average(values):
    """The reference's "moving average" of a curve, exactly:
    `avg = (avg * i * 0.1 + 0.9 * v_i) / (i + 1)` for i = 0, 1, ... (a
    recurrence that weights the latest epochs most; not a textbook
    exponential average)."""
    average = 0.0
    for i, value in enumerate(values):
        average = (average * i * 0.1 + float(value) * 0.9) / (i + 1)
    return average


@kerasnas_export("kerasnas.fewshot.successive_halving")
def successive_halving(curves, phases=((0, 30, 4), (31, 100, 2)), average="reference"):
    """Keeps the best candidates phase by phase.

    Args:
        curves: `{name: [validation accuracy per epoch]}` of each candidate
            (e.g. each sub-supernet's genotype trained from scratch).
        phases: `(start, stop, keep)` per phase: the candidates still in
            are scored on epochs `start:stop` of their curve and the best
            `keep` go on. The reference: epochs 0-29 keep 4, then 31-99
            (epoch 30 unused, as there) keep 2.
        average: `"reference"` (its recurrence, `reference_average`),
            `"mean"` or `"max"` of the phase's epochs.

    Returns:
        `{"kept": [names kept after each phase], "scores": [{name: score}
        per phase], "best": the top name of the last phase}`.
    """
    if average not in AVERAGES:
        raise ValueError(
            f"Invalid value for argument `average`. Expected one of {AVERAGES}. "
            f"Received: average={average!r}"
        )
    if not curves:
        raise ValueError("Invalid value for argument `curves`. Expected at least one candidate.")
    score = {"reference": reference_average, "mean": lambda v: float(np.mean(v)), "max": lambda v: float(np.max(v))}[average]
    alive = list(curves)
    kept, scores = [], []
    for start, stop, keep in phases:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(
                f"Invalid value for argument `phases`. Expected a positive number to keep. Received: {keep!r}"
            )
        short = [n for n in alive if len(curves[n]) <= start]
        if short:
            raise ValueError(
                f"Invalid value for argument `curves`. Expected curves longer than epoch {start}. "
                f"Received: {short} too short"
            )
        phase = {name: score(list(curves[name])[start:stop]) for name in alive}
        alive = sorted(alive, key=lambda n: -phase[n])[:keep]  # stable: ties keep the given order
        kept.append(list(alive))
        scores.append(phase)
    return {"kept": kept, "scores": scores, "best": alive[0]}
