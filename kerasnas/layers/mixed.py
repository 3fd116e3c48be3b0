"""The mixed (weighted) choice layer: the supernet module of DARTS-style
differentiable search."""

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.layers.choice import Choice
from kerasnas.ops.batch_norm import moving_stats_gate


@kerasnas_export("kerasnas.layers.MixedChoice")
class MixedChoice(Choice):
    """Runs every candidate of a decision and sums them, weighted.

    `output = sum_o w_o * candidate_o(inputs)`, where `w` is a float vector
    passed at call time (the supernet's architecture weights of this
    choice's label: a softmax of its α, a Gumbel-softmax sample, or a
    one-hot projection). A candidate whose weight is exactly 0 is not
    computed (the DARTS reference's `if w != 0`): the test is made in the
    graph with `keras.ops.cond`, so one trace serves every weight vector,
    and the skipped candidate gets no gradient, updates no BN statistics
    and costs no compute. Masked options and PT's perturbations are such
    zeros; the other weights are used as given (no renormalisation).

    With `dense=True` no `cond` is used: every candidate runs, a zero-weight
    candidate's output is discarded with `where` and its BN moving
    statistics stay unchanged (`moving_stats_gate`). This is the form that
    allows cross-replica reductions inside candidates (synchronized BN).

    Args:
        candidates: list of layers, one per option, all mapping the input to
            outputs of the same shape.
        options: list of option names, one per candidate.
        label: the decision's name; choices with the same label share their
            weights.
        dense: see above.

    Call arguments:
        inputs: the input tensor.
        weights: float vector with at least one entry per candidate (extra
            trailing entries are ignored: the supernet pads every row of its
            weight matrix to the largest number of options).
        training: Python boolean or None, passed to the candidates.

    Example:

    ```python
    choice = kerasnas.layers.MixedChoice(
        [kerasnas.ops.get("nor_conv_3x3", channels=16),
         kerasnas.ops.get("skip_connect", channels=16)],
        options=["nor_conv_3x3", "skip_connect"],
        label="edge",
    )
    y = choice(x, weights=keras.ops.convert_to_tensor([0.3, 0.7]))
    ```
    """

    runs_every_candidate = True

    def call(self, inputs, weights, training=None):
        outputs = None
        for k, candidate in enumerate(self.candidates):
            w = weights[k]
            if self.dense:
                active = ops.not_equal(w, 0)
                with moving_stats_gate(ops.cast(active, "float32")):
                    y = candidate(inputs, training=training)
                # Discard first, then weight: a non-finite output of a
                # skipped candidate must reach neither the sum nor d/dw.
                term = ops.cast(w, y.dtype) * ops.where(active, y, ops.zeros_like(y))
            else:
                term = ops.cond(
                    ops.not_equal(w, 0),
                    lambda c=candidate, w=w: _weighted(c, inputs, w, training),
                    lambda c=candidate: _zeros(c, inputs),
                )
            outputs = term if outputs is None else outputs + term
        return outputs


def _weighted(candidate, inputs, w, training):
    y = candidate(inputs, training=training)
    return ops.cast(w, y.dtype) * y


def _zeros(candidate, inputs):
    try:
        shape = candidate.compute_output_shape(tuple(inputs.shape))
    except NotImplementedError:
        spec = keras.KerasTensor(tuple(inputs.shape), dtype=inputs.dtype)
        shape = candidate.compute_output_spec(spec).shape
    shape = (ops.shape(inputs)[0],) + tuple(shape[1:])
    return ops.zeros(shape, dtype=candidate.compute_dtype)
