"""The DCNAS supernet: local weight copies, a pool with sharing states, a
meta network per layer and op, and the pairwise training step (Eqs. 8, 12).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.dcnas.pool import nearest_members
from kerasnas.dcnas.pool import sample_pool
from kerasnas.layers import LocalCopies
from kerasnas.layers.factory import check_factory
from kerasnas.layers import moving_stats_gate
from kerasnas.supernet import Supernet

LAMBDA_SCALES = ("lr", "paper")
FEATURE_CHOICES = ("last", "first")
_FAR = 2**30
_COPY_SEED_KEY = "copy_seed_state"


@kerasnas_export("kerasnas.dcnas.DCNASSupernet")
class DCNASSupernet(Supernet):
    """A supernet with M local weight copies per candidate (DCNAS-style).

    Built by `space.build_supernet(supernet_class=DCNASSupernet,
    local_copies=M, ...)` (M = 2 by default, the paper's): its choice
    factory is `kerasnas.layers.LocalCopies(M)`, so every choice is a
    `kerasnas.layers.LocalShareChoice`. It holds:

    - a pool of `pool_size` distinct architectures (seeded) and their
      sharing states, an int32 `(N, L)` variable, -1 while a layer is not
      decided (a random copy per step is used then, as in the paper);
    - a meta network per layer and option: one dense unit and a sigmoid on
      the difference of two architectures' globally pooled inputs of the
      layer (paper: the output of layer l-1), giving the matching degree
      lambda_ij. Where a label has several choices (NAS-Bench-201's cells
      share one architecture) the input of the `feature_choice` one is
      used: `"last"` by default, since in the first cell the edges from
      node 0 see the stem's output, the same for every architecture, and a
      meta network could not tell architectures apart there;
    - the `phase`: -1 for ordinary single-path steps, l >= 0 while layer l
      is being decided (`kerasnas.dcnas.DCNASSchedule` sets it).

    An ordinary step samples a path with the path sampler (uniform, SPOS)
    and uses the copies of its sharing state (`sharing_state`). A pair step
    (phase l) draws an option k of layer l, then two pool members i and j
    that both take k, and updates a_i's weights by Eq. 8:
    `W_i <- W_i - gamma * g_i - lambda_ij * gamma * g_j` on the candidate k
    of layer l, the usual update elsewhere (`lambda_scale="lr"`, our reading:
    lambda scales a gradient step; `"paper"`: the literal
    `- lambda_ij * g_j`). Every `meta_interval` steps (tau) the meta network
    takes the Eq. 12 step: the gradient of `L(a_i; W^{t+1})` with respect to
    its weights, `-c * <grad_W L(a_i; W^{t+1}), g_j> * dlambda/dphi` (c =
    gamma, or 1 with `"paper"`), plain SGD with `meta_learning_rate`.
    Partner and look-ahead passes leave BN moving statistics unchanged.

    With M = 1 every step is the base class' (SPOS, bitwise).

    Args:
        space: the `SearchSpace`.
        local_copies: M, the weight copies per candidate (default 2, the
            paper's; or give `choices=kerasnas.layers.LocalCopies(M,
            slots=...)`).
        pool_size: N (paper: 10,000); at most the space's size.
        pool_seed: seed of the pool (default: `seed`).
        layer_order: the order in which layers are decided (labels or
            positions; default the space's label order).
        lambda_scale: `"lr"` or `"paper"` (see above).
        meta_learning_rate: eta of Eq. 12 (not given in the paper).
        meta_interval: tau, meta steps every tau optimizer steps (paper 20).
        pair_lambda: None (the meta network's lambda in Eq. 8), or a fixed
            float (ablations lambda = 0 and 1; the meta network still learns,
            for the clustering).
        feature_choice: `"last"` or `"first"` (see above).
        pool_options: `{label: [option, ...]}`: the pool is drawn from these
            options only, e.g. the ones the supernet trains (without
            NAS-Bench-201's 'none', which training masks: a pool from the
            whole space would train paths SPOS never trains); None, the
            whole space (kerasnas before issue #35).
        **kwargs: `kerasnas.Supernet`'s (`seed`, `weight_decay`, ...).
    """

    def __init__(
        self, space, local_copies=None, pool_size=10000, pool_seed=None, layer_order=None, lambda_scale="lr",
        meta_learning_rate=0.1, meta_interval=20, pair_lambda=None, feature_choice="last",
        pool_options=None, **kwargs,
    ):
        if isinstance(space, dict):
            space = keras.saving.deserialize_keras_object(space)
        choices = kwargs.get("choices")
        if choices is None:
            choices = type(self).default_choices() if local_copies is None else LocalCopies(local_copies)
        choices = check_factory(choices)
        if not isinstance(choices, LocalCopies) or (
            local_copies is not None and choices.copies != local_copies
        ):
            raise ValueError(
                "Invalid value for argument `choices`. A DCNASSupernet builds local weight "
                f"copies: expected kerasnas.layers.LocalCopies (with local_copies="
                f"{local_copies!r} if given). Received: choices={choices!r}"
            )
        kwargs["choices"] = choices
        copies = choices.copies
        if lambda_scale not in LAMBDA_SCALES:
            raise ValueError(
                "Invalid value for argument `lambda_scale`. Expected one of "
                f"{list(LAMBDA_SCALES)}. Received: lambda_scale={lambda_scale!r}"
            )
        if feature_choice not in FEATURE_CHOICES:
            raise ValueError(
                "Invalid value for argument `feature_choice`. Expected one of "
                f"{list(FEATURE_CHOICES)}. Received: feature_choice={feature_choice!r}"
            )
        if isinstance(meta_interval, bool) or not isinstance(meta_interval, int) or meta_interval < 1:
            raise ValueError(
                "Invalid value for argument `meta_interval`. Expected a positive "
                f"int (tau). Received: meta_interval={meta_interval!r}"
            )
        if pair_lambda is not None and not 0.0 <= float(pair_lambda) <= 1.0:
            raise ValueError(
                "Invalid value for argument `pair_lambda`. Expected None or a float "
                f"in [0, 1]. Received: pair_lambda={pair_lambda!r}"
            )
        labels = list(space.labels)
        order = _resolve_order(layer_order, labels)
        pool_options = None if pool_options is None else {k: list(v) for k, v in pool_options.items()}
        pool = sample_pool(space, pool_size, kwargs.get("seed") if pool_seed is None else pool_seed, pool_options)
        super().__init__(space, **kwargs)
        self.copies = int(copies)
        self.layer_order = order
        self.pool_size = int(pool_size)
        self.pool_seed = pool_seed
        self.pool_options = pool_options
        self.lambda_scale = lambda_scale
        self.meta_learning_rate = float(meta_learning_rate)
        self.meta_interval = meta_interval
        self.pair_lambda = None if pair_lambda is None else float(pair_lambda)
        self.feature_choice = feature_choice

        # One choice per label records its pooled input.
        self._recorders = {}
        # (`LocalCopies` makes every choice a `LocalShareChoice` and refuses
        # value choices, so every label has one.)
        for layer in self.choice_layers():
            if feature_choice == "last" or layer.label not in self._recorders:
                self._recorders[layer.label] = layer
        for layer in self._recorders.values():
            layer.record_input = True
        widths = [int(self._recorders[l].pooled.shape[0]) for l in labels]
        num_layers, max_options = len(labels), max(self.space.num_options)
        self._widths = widths

        weight = lambda shape, init, dtype="float32", name=None: self.add_weight(
            shape=shape, dtype=dtype, initializer=init, trainable=False, name=name
        )
        self.pool = weight(pool.shape, keras.initializers.Constant(pool), "int32", "pool")
        self.states = weight(pool.shape, keras.initializers.Constant(-1), "int32", "sharing_states")
        self.phase = weight((), keras.initializers.Constant(-1), "int32", "phase")
        self.active_copies = weight((num_layers,), "zeros", "int32", "active_copies")
        # The last pair step's partner (path + copies), option and lambda.
        self.partner = weight((2 * num_layers,), "zeros", "int32", "partner")
        self.pair_option = weight((), "zeros", "int32", "pair_option")
        self.last_lambda = weight((), "zeros", name="last_lambda")
        self.meta_kernel = weight((num_layers, max_options, max(widths)), "zeros", name="meta_kernel")
        self.meta_bias = weight((num_layers, max_options), "zeros", name="meta_bias")
        self.copy_seed_generator = keras.random.SeedGenerator(
            None if self.seed is None else self.seed + 1, name="copy_seed"
        )
        # Options of each layer that at least two pool members take.
        pairable = np.zeros((num_layers, max_options), "float32")
        for l in range(num_layers):
            counts = np.bincount(pool[:, l], minlength=max_options)
            pairable[l] = counts >= 2
        self._pairable = pairable
        self._pool_numpy = pool
        self._order_positions = np.asarray(self.layer_order, "int32")

    # === Sharing states ===
    def sharing_state(self, arch, undecided=0):
        """The copy per layer (label order) that `arch` uses outside
        training: its nearest pool member's state (`nearest_members`); a
        layer not decided yet gets `undecided`."""
        path = np.asarray(self.space.encode(arch) if isinstance(arch, dict) else arch)
        nearest = nearest_members(self._pool_numpy, path, self.layer_order)
        states = ops.convert_to_numpy(self.states)
        copies = np.full(len(path), int(undecided), "int32")
        for l, member in enumerate(nearest):
            if member >= 0 and states[member, l] >= 0:
                copies[l] = states[member, l]
        return copies

    def decided(self):
        """Per layer (label order), whether its sharing states are set."""
        return np.all(ops.convert_to_numpy(self.states) >= 0, axis=0)

    def _copies_in_graph(self, path):
        """The graph version of `sharing_state` for a training step: a
        random copy for an undecided layer."""
        pool = ops.convert_to_tensor(self.pool)
        num_layers = len(self.layer_order)
        same = ops.equal(pool, path[None, :])
        differ = ops.cast(ops.logical_not(same), "int32")
        ordered = ops.take(differ, self._order_positions, axis=1)
        before = ops.cumsum(ordered, axis=1) - ordered
        prefix = ops.take(before, np.argsort(self._order_positions).astype("int32"), axis=1)
        score = prefix * (num_layers + 1) + ops.sum(differ, axis=1, keepdims=True)
        score = ops.where(same, score, _FAR)
        nearest = ops.cast(ops.argmin(score, axis=0), "int32")
        found = ops.min(score, axis=0) < _FAR
        state = tf.gather_nd(self.states.value, ops.stack([nearest, ops.arange(num_layers, dtype="int32")], axis=1))
        random = keras.random.randint((num_layers,), 0, self.copies, dtype="int32", seed=self.copy_seed_generator)
        return ops.where(ops.logical_and(found, state >= 0), state, random)

    # === Paths ===
    @classmethod
    def default_choices(cls):
        return LocalCopies(2)

    def architecture_input(self):
        return ops.concatenate([ops.convert_to_tensor(self.active_path), ops.convert_to_tensor(self.active_copies)])

    def set_path(self, arch):
        super().set_path(arch)
        self.active_copies.assign(self.sharing_state(arch))

    def path_variables(self):
        return [self.active_path, self.active_copies]

    def _child_choices(self, arch):
        """Loads the copies of `arch`'s sharing state into the candidates'
        variables (what a child inherits), then as the base class."""
        indices = self.space.encode(arch)
        copies = self.sharing_state(arch)
        labels = list(self.space.labels)
        for layer in self.choice_layers():
            position = labels.index(layer.label)
            layer.load_copy(indices[position], copies[position])
        return super()._child_choices(arch)

    def pooled_features(self):
        """`(L, max width)`: each layer's recorded pooled input, zero-padded
        (this replica's; the step averages them across replicas)."""
        width = max(self._widths)
        rows = [
            ops.pad(ops.convert_to_tensor(self._recorders[label].pooled), [[0, width - w]])
            for label, w in zip(self.space.labels, self._widths)
        ]
        return ops.stack(rows)

    def matching_degree(self, layer, option, diff):
        """lambda_ij = sigmoid(w . (h_i - h_j) + b) of the meta network of
        (`layer`, `option`); `diff`: the zero-padded `h_i - h_j`, `(width,)`
        or `(n, width)`."""
        kernel = ops.take(ops.take(ops.convert_to_tensor(self.meta_kernel), layer, axis=0), option, axis=0)
        bias = ops.take(ops.take(ops.convert_to_tensor(self.meta_bias), layer, axis=0), option, axis=0)
        return ops.sigmoid(ops.sum(ops.convert_to_tensor(diff, "float32") * kernel, axis=-1) + bias)

    # === Training ===
    def train_step(self, data):
        if self.copies == 1:
            return super().train_step(data)
        x, y, sample_weight, index = self._unpack(data)
        phase = ops.convert_to_tensor(self.phase)
        pair = phase >= 0
        layer = ops.maximum(phase, 0)
        pool = ops.convert_to_tensor(self.pool)
        plain = self.path_sampler.sample(self.option_mask, self.seed_generator)

        # Pair draw: an option k of the layer, two pool members that take it.
        allowed = tf.gather(ops.convert_to_tensor(self._pairable) * ops.convert_to_tensor(self.option_mask), layer)
        option = _draw(allowed[None, :], self.copy_seed_generator)
        takes = ops.equal(pool[:, layer], option)
        first = _draw(ops.cast(takes, "float32")[None, :], self.copy_seed_generator)
        others = ops.logical_and(takes, ops.not_equal(ops.arange(self.pool_size, dtype="int32"), first))
        second = _draw(ops.cast(others, "float32")[None, :], self.copy_seed_generator)
        path_i = ops.where(pair, pool[first], plain)
        path_j = pool[second]
        copies_i, copies_j = self._copies_in_graph(path_i), self._copies_in_graph(path_j)
        self.active_path.assign(path_i)
        self.active_copies.assign(copies_i)
        self.partner.assign(ops.concatenate([path_j, copies_j]))
        self.pair_option.assign(option)
        variables = self.network_variables

        # The partner's pass comes first: a_i's pass then leaves a_i's
        # copies loaded for the update.
        def partner():
            return self._side_pass(x, y, sample_weight, ops.concatenate([path_j, copies_j]))

        def no_partner():
            return [tf.zeros_like(v) for v in variables], tf.zeros_like(self.pooled_features())

        g_j, h_j = tf.cond(pair, partner, no_partner)
        g_j = self._replica_sum(g_j, variables)
        h_j = _all_reduce(tf.distribute.ReduceOp.MEAN, h_j)
        selected = [self._selects(v, layer, option) for v in variables]
        learning_rate = ops.cast(self.optimizer.learning_rate, "float32")
        found = {}

        def eq8(gradients, variables):
            h_i = _all_reduce(tf.distribute.ReduceOp.MEAN, self.pooled_features())
            diff = h_i[layer] - h_j[layer]
            lam_meta = self.matching_degree(layer, option, diff)
            lam = lam_meta if self.pair_lambda is None else ops.convert_to_tensor(self.pair_lambda, "float32")
            lam = ops.where(pair, lam, 0.0)
            scale = lam if self.lambda_scale == "lr" else lam / learning_rate
            found.update(lam=lam_meta, diff=diff)
            self.last_lambda.assign(lam)
            return [
                g if s is None else g + ops.cast(scale * s, g.dtype) * gj
                for g, gj, s in zip(gradients, g_j, selected)
            ]

        logs = self._weight_step(
            x, y, sample_weight, index, self.architecture_input(), path_i, adjust_gradients=eq8
        )
        self._meta_step(x, y, sample_weight, pair, layer, option, g_j, selected, learning_rate, found)
        return logs

    def _side_pass(self, x, y, sample_weight, arch):
        """Gradients (zeros for None) and pooled features of one path's
        loss, BN moving statistics untouched: the partner's pass and the
        look-ahead. One `tf.function`, traced once and called twice per
        step (a network trace is the expensive part of a supernet step)."""
        function = getattr(self, "_side_function", None)
        if function is None:
            variables = self.network_variables

            def side(x, y, sample_weight, arch):
                with moving_stats_gate(tf.constant(0.0)):
                    with tf.GradientTape() as tape:
                        y_pred = self.network([x, arch], training=True)
                        loss = self._compute_loss(
                            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
                        )
                    grads = tape.gradient(loss, variables)
                grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, variables)]
                return grads, self.pooled_features()

            function = tf.function(side)
            object.__setattr__(self, "_side_function", function)
        return function(x, y, sample_weight, arch)

    def _selects(self, variable, layer, option):
        """Float scalar tensor: 1 if `variable` belongs to candidate `option`
        of layer `layer`, else 0; None for variables of no candidate."""
        owner = self.candidate_owner(variable)
        if owner is None:
            return None
        position, index = owner
        return ops.cast(ops.logical_and(ops.equal(layer, position), ops.equal(option, index)), "float32")

    def _meta_step(self, x, y, sample_weight, pair, layer, option, g_j, selected, learning_rate, found):
        """Eq. 12 every `meta_interval` steps of a pair phase: the meta
        network's gradient of L(a_i; W^{t+1}) through lambda_ij."""
        variables = self.network_variables
        due = ops.logical_and(pair, ops.equal(self.optimizer.iterations % self.meta_interval, 0))

        def lookahead():
            grads, _ = self._side_pass(x, y, sample_weight, self.architecture_input())
            total = tf.constant(0.0)
            for g, gj, s in zip(grads, g_j, selected):
                if s is not None and g is not None:
                    total += s * ops.sum(ops.cast(g, "float32") * ops.cast(gj, "float32"))
            return total

        inner = tf.cond(due, lookahead, lambda: tf.constant(0.0))
        inner = _all_reduce(tf.distribute.ReduceOp.SUM, inner)
        coefficient = learning_rate if self.lambda_scale == "lr" else 1.0
        d_lambda = -coefficient * inner  # dL(a_i; W^{t+1}) / dlambda
        lam = found["lam"]
        slope = d_lambda * lam * (1.0 - lam) * ops.cast(due, "float32")
        eta = self.meta_learning_rate
        index = ops.stack([layer, option])[None, :]
        self.meta_kernel.assign(
            tf.tensor_scatter_nd_sub(self.meta_kernel.value, index, (eta * slope * found["diff"])[None, :])
        )
        self.meta_bias.assign(tf.tensor_scatter_nd_sub(self.meta_bias.value, index, ops.reshape(eta * slope, (1,))))

    # === Saving ===
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_COPY_SEED_KEY] = ops.convert_to_numpy(self.copy_seed_generator.state)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if _COPY_SEED_KEY in keys:
            self.copy_seed_generator.state.assign(store[_COPY_SEED_KEY])
        super().load_own_variables({k: store[k] for k in keys if k != _COPY_SEED_KEY})

    # === Config ===
    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "pool_seed": self.pool_seed,
            "pool_options": self.pool_options,
            "layer_order": [self.space.labels[p] for p in self.layer_order],
            "lambda_scale": self.lambda_scale,
            "meta_learning_rate": self.meta_learning_rate,
            "meta_interval": self.meta_interval,
            "pair_lambda": self.pair_lambda,
            "feature_choice": self.feature_choice,
        }


def _resolve_order(layer_order, labels):
    if layer_order is None:
        return list(range(len(labels)))
    order = list(layer_order)
    positions = []
    for item in order:
        if isinstance(item, str) and item in labels:
            positions.append(labels.index(item))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 0 <= item < len(labels):
            positions.append(int(item))
        else:
            positions.append(None)
    if None in positions or sorted(positions) != list(range(len(labels))):
        raise ValueError(
            "Invalid value for argument `layer_order`. Expected every layer of the "
            f"space exactly once (labels {labels} or positions). Received: "
            f"layer_order={order!r}"
        )
    return positions


def _draw(weights, seed_generator):
    """One categorical draw (int32 scalar) from unnormalized 0/1 `weights`
    `(1, n)`."""
    logits = ops.where(weights > 0, 0.0, -1e9)
    return ops.cast(ops.reshape(keras.random.categorical(logits, 1, seed=seed_generator), ()), "int32")


def _all_reduce(op, value):
    """`value` reduced across replicas with `op` (itself on one device)."""
    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return tf.distribute.get_replica_context().all_reduce(op, value)
    return value
