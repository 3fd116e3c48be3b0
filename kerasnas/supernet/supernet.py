"""The weight-sharing supernet: a `keras.Model` trained SPOS-style by `fit`."""

import contextlib
import hashlib

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.callbacks.non_finite import StopOnNonFiniteLoss
from kerasnas.layers import BatchNorm
from kerasnas.layers import Choice
from kerasnas.layers import ChoiceFactory
from kerasnas.layers.factory import check_factory
from kerasnas.layers.legacy import legacy_choices
from kerasnas.layers import calibration_scope
from kerasnas.ops.policy import dtype_policy_scope
from kerasnas.ops.policy import policy_name
from kerasnas.sampling import PathSampler
from kerasnas.sampling import UniformPathSampler
from kerasnas.spaces import SearchSpace
from kerasnas.spaces.search_space import register_default_supernet
from kerasnas.supernet.graph import ScopedFunction
from kerasnas.supernet.graph import grappler_mode
from kerasnas.supernet.graph import validate_grappler


@register_default_supernet
@kerasnas_export("kerasnas.Supernet")
class Supernet(keras.Model):
    """A weight-sharing supernet that trains one sampled path per step.

    Every `train_step` samples an architecture *in the graph* with the path
    sampler and the model's `SeedGenerator`, writes it to the int32 `path`
    variable read by every `Choice` layer, runs and updates only that path.
    One trace serves a whole `fit`. A candidate that was not sampled is left
    exactly unchanged: its weights, its optimizer slots (e.g. momentum) and
    weight decay, as in the PyTorch reference code where its gradient is
    `None` (the optimizer's per-variable update is skipped in the graph).

    Gradients are, in this order, reduced across replicas, clipped to a global
    norm (`clip_norm`, PyTorch's `clip_grad_norm_`), given the coupled L2
    weight decay `weight_decay * w` (PyTorch SGD's `weight_decay`), then
    applied. Set weight decay here, not on the optimizer: an optimizer's own
    (decoupled) weight decay would also decay unsampled candidates.

    Options can be restricted per choice with `set_mask` (few-shot
    sub-supernets, restricted spaces).

    Args:
        space: the `kerasnas.spaces.SearchSpace`.
        path_sampler: a `kerasnas.sampling.PathSampler`; default uniform
            (SPOS).
        network_options: keyword arguments of `space.build_network`, e.g.
            `{"bn": "batch", "synchronized_bn": False}`.
        choices: the method's `kerasnas.layers.ChoiceFactory`: which choice
            layer each choice point becomes (default `default_choices()`:
            single-path `Choice`s; e.g. `kerasnas.layers.InterChoices("bias")`
            for inter-choice weights on top of any path sampler).
        seed: seed of the path sampling (int or None).
        weight_decay: coupled L2 weight decay.
        clip_norm: global gradient-norm clipping, or None.
        dtype_policy: the network's Keras dtype policy, e.g.
            `"mixed_bfloat16"` (default: the global policy when built).
            Logits, losses, BN statistics and moments, α and every variable
            stay float32 (see `kerasnas.ops.policy`); children extracted
            inherit it unless `extract(..., dtype_policy=...)` says otherwise.
        grappler: TensorFlow's graph optimizer for the supernet's own
            functions (training, evaluation, prediction, BN calibration,
            scoring): "auto" (default: "lean" on a CPU for a supernet that
            runs one path per step; "on" for mixed choices, where every
            candidate runs, and wherever a GPU is visible), "on"
            (TensorFlow's full optimizer), "lean" (without the memory
            optimizer, remapper and layout passes) or "off". On CPU, "lean"
            cuts a single-path supernet's first step by about 17 %, its step
            time by about 9 % and its peak memory by about 21 %,
            bit-reproducibly; "off" saves about as much time for 1.3x the
            memory, and without constant folding identical runs may differ
            in the last bits (`kerasnas.supernet.graph`).

    Example:

    ```python
    space = kerasnas.spaces.NasBench201(num_classes=10, channels=16)
    supernet = space.build_supernet(seed=0, weight_decay=2.5e-4, clip_norm=5.0)
    supernet.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                     loss="sparse_categorical_crossentropy")
    supernet.fit(train_ds, epochs=250)
    child = supernet.extract(arch)
    ```
    """

    # Options of `space.build_network` that `space.build_supernet` uses for
    # this class unless given (e.g. DARTS' mixed choices).
    network_defaults = {}

    def __init__(
        self,
        space,
        path_sampler=None,
        network_options=None,
        choices=None,
        seed=None,
        weight_decay=0.0,
        clip_norm=None,
        dtype_policy=None,
        grappler="auto",
        **kwargs,
    ):
        if isinstance(space, dict):
            space = keras.saving.deserialize_keras_object(space)
        if not isinstance(space, SearchSpace):
            raise ValueError(
                "Invalid value for argument `space`. Expected a "
                f"kerasnas.spaces.SearchSpace. Received: space={space!r}"
            )
        if isinstance(path_sampler, dict):
            path_sampler = keras.saving.deserialize_keras_object(path_sampler)
        if path_sampler is None:
            path_sampler = UniformPathSampler(name="path_sampler")
        if not isinstance(path_sampler, PathSampler):
            raise ValueError(
                "Invalid value for argument `path_sampler`. Expected a "
                f"kerasnas.sampling.PathSampler. Received: {path_sampler!r}"
            )
        if weight_decay < 0:
            raise ValueError(
                "Invalid value for argument `weight_decay`. Expected a float "
                f">= 0. Received: weight_decay={weight_decay}"
            )
        if clip_norm is not None and clip_norm <= 0:
            raise ValueError(
                "Invalid value for argument `clip_norm`. Expected None or a "
                f"float > 0. Received: clip_norm={clip_norm}"
            )
        grappler = validate_grappler(grappler)
        super().__init__(**kwargs)
        self.space = space
        self.grappler = grappler
        self.network_options = dict(network_options or {})
        self.choices = check_factory(self.default_choices() if choices is None else choices)
        self.network_dtype_policy = policy_name(dtype_policy)
        with dtype_policy_scope(self.network_dtype_policy):
            self.network = space.build_network(arch=None, choices=self.choices, **self.network_options)
        self.path_sampler = path_sampler
        self.path_sampler.bind(space)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="path_seed")
        self.weight_decay = float(weight_decay)
        self.clip_norm = None if clip_norm is None else float(clip_norm)

        num_options = space.num_options
        valid = np.zeros((len(num_options), max(num_options)), "float32")
        for i, n in enumerate(num_options):
            valid[i, :n] = 1.0
        self._valid_options = valid
        self.active_path = self.add_weight(
            shape=(len(num_options),),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="active_path",
        )
        self.option_mask = self.add_weight(
            shape=valid.shape,
            initializer=keras.initializers.Constant(valid),
            trainable=False,
            name="option_mask",
        )
        self._owner_by_id = self._candidate_owners()
        self._guarded_optimizer = None
        self._calibration_function = None
        self._gradient_observers = []
        self._batch_observers = []
        self.built = True

    @classmethod
    def default_choices(cls):
        """The choice factory of this class when none is given: single path."""
        return ChoiceFactory()

    # === Structure ===
    def _candidate_owners(self):
        """`{id(variable): (choice position, option index)}` of candidates."""
        owners = {}
        labels = list(self.space.labels)
        for layer in self.choice_layers():
            position = labels.index(layer.label)
            options = self.space.choices[layer.label]
            for name, candidate in zip(layer.options, layer.candidates):
                for variable in candidate.trainable_variables:
                    owners[id(variable)] = (position, options.index(name))
        return owners

    def choice_layers(self):
        """All `Choice` layers of the supernet network."""
        return [
            l for l in self.network._flatten_layers(include_self=False) if isinstance(l, Choice)
        ]

    def candidate_owner(self, variable):
        """`(choice position, option index)` owning `variable`, or None if the
        variable is shared by every path (stem, reductions, head)."""
        return self._owner_by_id.get(id(variable))

    def call(self, inputs, training=None):
        expected = None if self.space.input_shape is None else tuple(self.space.input_shape)
        if expected is not None and tuple(inputs.shape[1:]) != expected:
            raise ValueError(
                "Invalid value for argument `inputs`. Expected images of shape "
                f"(batch, {', '.join(map(str, expected))}) for this space. "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        return self.network([inputs, self.architecture_input()], training=training)

    def architecture_input(self):
        """The tensor the network's choice layers read: the int32 path here;
        a subclass whose choice factory reads another input (DARTS) returns
        its architecture weights."""
        return ops.convert_to_tensor(self.active_path)

    @property
    def arch_variables(self):
        """The architecture parameters (DARTS' α): none for a single-path
        supernet. They are trained by their own rule, never by the weight
        optimizer."""
        return []

    def training_state_variables(self):
        """Variables of the training state outside `model.variables` and
        `model.optimizer.variables` that checkpoints must carry (DARTS'
        α optimizer; the optimizer slots of split weight copies kept per
        copy, `kerasnas.layers.SplitChoice(slots="per_copy")`)."""
        return list(getattr(self, "_slot_bank_variables", []))

    @property
    def network_variables(self):
        """The trainable variables the weight optimizer updates: every
        trainable variable except `arch_variables`."""
        arch = {id(v) for v in self.arch_variables}
        return [v for v in self.trainable_variables if id(v) not in arch]

    # === Paths and masks ===
    def set_path(self, arch):
        """Fixes the path to `arch` (dict) for `predict`/`evaluate`."""
        self.active_path.assign(np.asarray(self.space.encode(arch), "int32"))

    def path_variables(self):
        """The variables `set_path` writes (saved and restored around
        evaluations of single architectures)."""
        return [self.active_path]

    @contextlib.contextmanager
    def fixed(self, arch):
        """Within the block the supernet computes `arch` (`set_path`); the
        `path_variables` are restored after."""
        saved = [ops.convert_to_numpy(v) for v in self.path_variables()]
        self.set_path(arch)
        try:
            yield self
        finally:
            for variable, value in zip(self.path_variables(), saved):
                variable.assign(value)

    def get_path(self):
        """The architecture currently in the `path` variable."""
        return self.space.decode(ops.convert_to_numpy(self.active_path))

    def set_mask(self, allowed):
        """Restricts the options the path sampler may draw.

        Args:
            allowed: `{label: [option names]}`; labels not given keep all their
                options. `None` lifts every restriction.
        """
        mask = self._valid_options.copy()
        choices = self.space.choices
        for label, options in (allowed or {}).items():
            if label not in choices:
                raise ValueError(
                    "Invalid value for argument `allowed`. Expected labels among "
                    f"{list(choices)}. Received: label={label!r}"
                )
            options = [options] if isinstance(options, str) else list(options)
            unknown = [o for o in options if o not in choices[label]]
            if not options or unknown:
                raise ValueError(
                    f"Invalid value for argument `allowed` at label {label!r}. "
                    f"Expected a non-empty subset of {list(choices[label])}. "
                    f"Received: {options}"
                )
            mask[self.space.labels.index(label)] = 0.0
            for o in options:
                mask[self.space.labels.index(label), choices[label].index(o)] = 1.0
        self.option_mask.assign(mask)

    def get_mask(self):
        """`{label: [allowed option names]}`."""
        mask = ops.convert_to_numpy(self.option_mask)
        return {
            label: [o for k, o in enumerate(options) if mask[i, k] > 0]
            for i, (label, options) in enumerate(self.space.choices.items())
        }

    def add_gradient_observer(self, observer):
        """Calls `observer(supernet, path, gradients, variables)` in every
        training step, in the graph, with the step's sampled path and the
        gradients of back-propagation (summed across replicas, before
        clipping and weight decay). Monitors (e.g. the gradient variance of
        `kerasnas.evaluation.GradientVarianceMonitor`) use it; the observer
        runs inside the traced step, so it must use TF/Keras ops and keep its
        state in variables. The training function is rebuilt on the next
        `fit` (so a callback registers its observer once and leaves it: a
        rebuilt function is traced again).
        """
        self._add_observer(self._gradient_observers, observer)

    def remove_gradient_observer(self, observer):
        """Stops calling `observer` (see `add_gradient_observer`)."""
        self._remove_observer(self._gradient_observers, observer)

    def add_batch_observer(self, observer):
        """Calls `observer(supernet, x, y, y_pred, index)` in every training
        step, in the graph, after the forward pass (`index`: the samples'
        dataset indices, or None when the batches carry none). Data samplers
        (PA&DA's `ImportanceDataSampler`) use it; the same rules as
        `add_gradient_observer` apply.
        """
        self._add_observer(self._batch_observers, observer)

    def remove_batch_observer(self, observer):
        """Stops calling `observer` (see `add_batch_observer`)."""
        self._remove_observer(self._batch_observers, observer)

    def _add_observer(self, observers, observer):
        if observer not in observers:
            observers.append(observer)
            self.train_function = None  # the next fit traces with it

    def _remove_observer(self, observers, observer):
        if observer in observers:
            observers.remove(observer)
            self.train_function = None

    # === Training ===
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """`keras.Model.compile`, with `metrics=["accuracy"]` by default.

        The optimizer's per-variable update is wrapped so that a candidate
        outside the step's path is skipped. Its own `weight_decay` must be
        None (use the supernet's coupled `weight_decay`).
        """
        if metrics is None:
            metrics = ["accuracy"]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        if getattr(self.optimizer, "weight_decay", None):
            raise ValueError(
                "Invalid value for argument `optimizer`. Expected an optimizer "
                "without `weight_decay`: it would decay candidates that were "
                "not sampled. Pass `weight_decay=` to the supernet instead "
                "(coupled L2, as the reference code). Received: "
                f"weight_decay={self.optimizer.weight_decay}"
            )
        if not self.optimizer.built:
            # Built now, not in the first traced step: a tf.function that
            # creates variables is traced twice.
            self.optimizer.build(self.network_variables)
        self._guard_optimizer(self.optimizer)

    def compile_from_config(self, config):
        """Recompiles a reloaded supernet (the optimizer is guarded again)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)

    def _guard_optimizer(self, optimizer):
        """Makes `optimizer` leave the candidates outside the path unchanged.

        In graph mode an unsampled candidate gets a zero gradient, not None,
        and a plain update would still apply momentum (or Adam's moments) to
        it. The optimizer's per-variable `update_step` is wrapped: for a
        candidate variable it keeps the variable's and its slots' values
        from before the update unless the candidate is on the current path
        (`tf.where` on the `active_path` variable; no branching, so tracing
        stays cheap).
        """
        if self._guarded_optimizer is optimizer:
            return
        original = optimizer.update_step
        key = optimizer._var_key
        candidates = [v for v in self.trainable_variables if id(v) in self._owner_by_id]
        owner_by_key = {key(v): self._owner_by_id[id(v)] for v in candidates}
        # Choice layers' own variables that a path uses in part (inter-choice
        # biases): `{key: (mask_fn, choice position, prior positions)}`.
        labels = list(self.space.labels)
        masked = {}
        for layer in self.choice_layers():
            for variable, mask_fn in layer.guarded_variables():
                masked[key(variable)] = (
                    mask_fn,
                    labels.index(layer.label),
                    [labels.index(p) for p in layer.prior_labels],
                )
        slots_by_key = _optimizer_slots(
            optimizer, candidates + [v for v in self.trainable_variables if key(v) in masked]
        )
        # Split weight copies with their own optimizer slots.
        slot_swaps, banks = {}, []
        for layer in self.choice_layers():
            by_id = {
                id(v): slots_by_key.get(key(v), ())
                for c in layer.candidates for v in c.trainable_variables
            }
            banks += layer.bind_slots(by_id)
            # Only variables whose slots got banks swap them (not
            # with shared slots: no op is added to their update).
            for c in layer.candidates:
                for v in c.trainable_variables:
                    if id(v) in (layer.slot_banks or {}):
                        slot_swaps[key(v)] = (layer, v)

        # Not tracked as model variables: checkpoints carry them as state.
        object.__setattr__(self, "_slot_bank_variables", banks)

        def update_step(gradient, variable, learning_rate):
            k = key(variable)
            owner = owner_by_key.get(k)
            if owner is None and k not in masked:
                return original(gradient, variable, learning_rate)
            if owner is None:
                mask_fn, position, priors = masked[k]
                path = self.active_path.value
                active = mask_fn(path[position], tf.gather(path, tf.constant(priors, "int32")))
            else:
                active = self._candidate_active(*owner)
                if k in slot_swaps:
                    layer, v = slot_swaps[k]
                    tf.cond(active, lambda: _swapped(layer, v), lambda: tf.constant(False))
            state = [variable] + [s.value for s in slots_by_key.get(k, ())]
            before = [tf.identity(v) for v in state]
            original(gradient, variable, learning_rate)
            for v, old in zip(state, before):
                v.assign(tf.where(active, v, old))

        optimizer.update_step = update_step
        self._guarded_optimizer = optimizer

    def _candidate_active(self, position, option):
        """Boolean tensor: whether the candidate `option` of choice
        `position` took part in the current step (read by the guarded
        optimizer in the graph). Here: it is on the sampled path."""
        return tf.equal(self.active_path.value[position], option)

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`; a loss that turns NaN or infinite stops it
        with a `kerasnas.callbacks.NonFiniteLossError` naming the epoch, step
        and path (a `StopOnNonFiniteLoss` is added unless the callbacks hold
        one or a `keras.callbacks.TerminateOnNaN`)."""
        self._check_labels(x, y)
        callbacks = kwargs.get("callbacks")
        if not isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = list(callbacks or [])
            if not any(isinstance(c, (StopOnNonFiniteLoss, keras.callbacks.TerminateOnNaN)) for c in callbacks):
                # First: it raises before any later callback sees the step.
                callbacks.insert(0, StopOnNonFiniteLoss())
            kwargs["callbacks"] = callbacks
        return super().fit(x, y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self._check_labels(x, y)
        return super().evaluate(x, y, **kwargs)

    def _check_labels(self, x, y):
        """Rejects labels that cannot belong to the space's classifier."""
        num_classes = self.space.num_classes
        if num_classes is None:
            return
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            label = spec[1] if isinstance(spec, (tuple, list)) and len(spec) > 1 else None
            if isinstance(label, tf.TensorSpec) and label.shape.rank == 2 and label.shape[-1] not in (None, 1, num_classes):
                raise ValueError(
                    "Invalid value for argument `x`. Expected one-hot labels "
                    f"with num_classes={num_classes} (the space's). Received: "
                    f"labels of shape {label.shape}"
                )
        elif y is not None and np.ndim(y) == 1 and np.size(y):
            top = int(np.max(y))
            if top >= num_classes or int(np.min(y)) < 0:
                raise ValueError(
                    "Invalid value for argument `y`. Expected class indices in "
                    f"[0, {num_classes}) (the space's num_classes). Received: "
                    f"labels in [{int(np.min(y))}, {top}]"
                )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Without a distribution strategy Keras builds the compiled metrics
        # inside the first traced step, and a tf.function that creates
        # variables is traced twice. Building them symbolically first halves
        # the time to the first step (a supernet trace is expensive).
        if data_batch is None and iterator is not None:
            for _, _, data_iterator in iterator:
                data_batch = next(data_iterator)
                break
        if data_batch is None:
            return
        if self._distribute_strategy is None:
            self._symbolic_build(data_batch=data_batch)
            return
        # Under a strategy the batch holds per-replica values (Keras' own
        # version fails on MultiWorkerMirroredStrategy's): the build only
        # needs their structure, shapes and dtypes, one replica's do.
        strategy = self._distribute_strategy
        local = lambda v: (
            strategy.experimental_local_results(v)[0]
            if isinstance(v, tf.distribute.DistributedValues) else v
        )
        with strategy.scope():
            self._symbolic_build(data_batch=tf.nest.map_structure(local, data_batch))

    def _unpack(self, data):
        """`(x, y, sample_weight, index)`; an integer third element of the
        batch is the samples' dataset index, not a sample weight, and a
        fourth element is the index after a sample weight."""
        index = None
        if isinstance(data, (tuple, list)) and len(data) == 4:
            return data[0], data[1], data[2], data[3]
        if isinstance(data, (tuple, list)) and len(data) == 3 and data[2] is not None:
            if not isinstance(data[2], dict) and data[2].dtype.is_integer:
                index = data[2]
                data = (data[0], data[1])
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return x, y, sample_weight, index

    def train_step(self, data):
        x, y, sample_weight, index = self._unpack(data)
        path = self.path_sampler.sample(self.option_mask, self.seed_generator)
        self.active_path.assign(path)
        return self._weight_step(x, y, sample_weight, index, self.architecture_input(), path)

    def _weight_step(self, x, y, sample_weight, index, arch_input, path, adjust_gradients=None):
        """One update of the network weights on a batch, the network reading
        `arch_input` (the path, or a mixed supernet's weights); `path` is
        what samplers and observers see. Gradients are reduced across
        replicas, changed by `adjust_gradients(gradients, variables)` if
        given (a subclass' update rule, e.g. DCNAS' Eq. 8), observed,
        clipped, given to the path sampler, decayed and applied by the
        guarded optimizer; returns the metrics."""
        with tf.GradientTape() as tape:
            y_pred = self.network([x, arch_input], training=True)
            loss = self._compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
        self._track_loss(loss, x)
        for observer in self._batch_observers:
            observer(self, x, y, y_pred, index)
        variables = self.network_variables
        gradients = self._replica_sum(tape.gradient(loss, variables), variables)
        if adjust_gradients is not None:
            gradients = adjust_gradients(gradients, variables)
        for observer in self._gradient_observers:
            observer(self, path, gradients, variables)
        if self.clip_norm is not None:
            gradients = clip_by_global_norm(gradients, self.clip_norm)
        self.path_sampler.update(self, path, gradients, variables)
        self._apply(self.optimizer, gradients, variables, self.weight_decay)
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            self._average_bn_statistics_across_replicas()
        return _global_logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    @staticmethod
    def _replica_sum(gradients, variables):
        """Gradients (None -> zeros) summed across replicas: the gradient of
        the global batch's loss (Keras scales each replica's loss by 1/R),
        so that clipping and observers see the global gradient."""
        gradients = [g if g is not None else tf.zeros_like(v) for g, v in zip(gradients, variables)]
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            gradients = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, gradients
            )
        return gradients

    @staticmethod
    def _apply(optimizer, gradients, variables, weight_decay=0.0):
        """Adds coupled L2 decay and applies global `gradients` (from
        `_replica_sum`) with `optimizer`: divided by the number of replicas,
        since the optimizer sums the replicas' copies again."""
        if weight_decay:
            gradients = [g + weight_decay * ops.cast(v, g.dtype) for g, v in zip(gradients, variables)]
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if num_replicas > 1:
            gradients = [g / num_replicas for g in gradients]
        optimizer.apply(gradients, variables)

    def _average_bn_statistics_across_replicas(self):
        """Keeps every replica's BN moving statistics equal (their mean).

        Moving statistics are on-read variables updated per replica inside
        the choice branches (no cross-replica reduction is allowed there).
        Averaging them after each step, outside control flow, makes R
        replicas compute what one device computes with ghost batches of the
        per-replica size, and inference on every replica use the same
        statistics.
        """
        statistics = self._bn_statistics()
        if not statistics:
            return
        context = tf.distribute.get_replica_context()
        if context is None:  # cross-replica: reads are already the mean
            for v in statistics:
                v.assign(ops.convert_to_tensor(v))
            return
        local = [ops.convert_to_tensor(v) for v in statistics]  # this replica's copy
        averaged = context.all_reduce(tf.distribute.ReduceOp.MEAN, local)
        for v, value in zip(statistics, averaged):
            v.assign(value)

    def test_step(self, data):
        x, y, sample_weight, _ = self._unpack(data)
        y_pred = self(x, training=False)
        loss = self._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
        self._track_loss(loss, x)
        return _global_logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def predict_step(self, data):
        x, _, _, _ = self._unpack(data)
        return self(x, training=False)

    def _track_loss(self, loss, x):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self._loss_tracker.update_state(
            loss * replicas, sample_weight=tf.shape(x)[0]
        )

    # === Evaluation of one architecture ===
    def _tracking_batch_norms(self):
        return [
            l
            for l in self.network._flatten_layers(include_self=False)
            if isinstance(l, BatchNorm) and l.track_running_stats
        ]

    def check_recalibration(self):
        """Raises a ValueError when BN recalibration would leave statistics
        alone: Keras' own `BatchNormalization` layers keep their training
        statistics whatever the path (only `kerasnas.layers.BatchNorm`
        recomputes them), so a recalibrated score would silently not be
        one."""
        foreign = [
            l.name for l in self.network._flatten_layers(include_self=False)
            if isinstance(l, keras.layers.BatchNormalization)
        ]
        if foreign:
            raise ValueError(
                "Invalid value for argument `bn_calibration_steps`. Expected a supernet "
                "whose BN layers recalibrate: kerasnas.layers.BatchNorm (e.g. "
                "`kerasnas.layers.BatchNorm()` in place of `keras.layers.BatchNormalization()` "
                f"in the candidates). Received: {len(foreign)} keras.layers.BatchNormalization "
                f"layers ({', '.join(repr(n) for n in foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}), whose statistics recalibration "
                "cannot recompute"
            )

    def calibrate_bn(self, data, steps):
        """BN recalibration of the current path (SPOS protocol).

        Resets the moving statistics and sets them to the plain mean of the
        batch statistics of `steps` batches of `data` (training-mode forward
        passes; no weight changes). Only the BN layers on the current path
        change. A no-op for BN layers without moving statistics.
        """
        steps = int(steps)
        if steps <= 0:
            raise ValueError(
                "Invalid value for argument `bn_calibration_steps`. Expected a "
                f"positive int. Received: bn_calibration_steps={steps}"
            )
        if data is None:
            raise ValueError(
                "Invalid value for argument `bn_calibration_data`. Expected a "
                "tf.data.Dataset of training batches when bn_calibration_steps "
                "> 0. Received: bn_calibration_data=None"
            )
        self.check_recalibration()
        if not self._tracking_batch_norms():
            return
        strategy = self.distribute_strategy
        dataset = data.take(steps)
        if strategy.num_replicas_in_sync > 1:
            dataset = strategy.experimental_distribute_dataset(dataset)
        self._recalibrate(dataset)

    def _recalibrate(self, batches):
        """Resets the tracking BN layers' statistics and sets them to the
        mean of their statistics on `batches` (batches as `fit` takes them,
        already distributed under a multi-replica strategy)."""
        for bn in self._tracking_batch_norms():
            bn.reset_moving_stats()
        function = self._make_calibration_function()
        for k, batch in enumerate(batches):
            function(batch, tf.constant(1.0 / (k + 1), "float32"))
        strategy = self.distribute_strategy
        if strategy.num_replicas_in_sync > 1:
            with strategy.scope():
                self._average_bn_statistics_across_replicas()

    # === Compiled functions ===
    def graph_function(self, python_function, **kwargs):
        """`tf.function(python_function, **kwargs)` run with this supernet's
        `grappler` setting. Methods and callbacks that compile their own
        functions over the supernet use this."""
        return self._scoped(tf.function(python_function, **kwargs))

    def _scoped(self, function):
        if function is None or isinstance(function, ScopedFunction):
            return function
        every = any(layer.runs_every_candidate for layer in self.choice_layers())
        return ScopedFunction(function, grappler_mode(self.grappler, runs_every_candidate=every))

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=force)
        self.train_function = self._scoped(self.train_function)
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        super().make_test_function(force=force)
        self.test_function = self._scoped(self.test_function)
        return self.test_function

    def make_predict_function(self, force=False):
        if self.predict_function is not None and not force:
            return self.predict_function
        super().make_predict_function(force=force)
        self.predict_function = self._scoped(self.predict_function)
        return self.predict_function

    def _make_calibration_function(self):
        if self._calibration_function is None:
            strategy = self.distribute_strategy

            def step(batch, weight):
                x, _, _, _ = self._unpack(batch)
                with calibration_scope(weight):
                    self(x, training=True)
                return weight

            def function(batch, weight):
                return strategy.run(step, args=(batch, weight))

            self._calibration_function = self.graph_function(function)
        return self._calibration_function

    def _bn_statistics(self):
        return [v for bn in self._tracking_batch_norms() for v in (bn.moving_mean, bn.moving_variance)]

    def evaluate_arch(
        self,
        arch,
        data,
        bn_calibration_data=None,
        bn_calibration_steps=0,
        **kwargs,
    ):
        """Metrics of one architecture with the supernet's weights.

        The path is fixed to `arch` (no retracing across architectures). With
        `bn_calibration_steps > 0` the subnet's BN statistics are first
        recalibrated on that many batches of `bn_calibration_data`; the
        supernet's own statistics are restored afterwards.

        Args:
            arch: architecture dict.
            data: dataset of `(x, y)` or `(x, y, index)` batches.
            bn_calibration_data: dataset of training batches.
            bn_calibration_steps: number of calibration batches (0: none).
            **kwargs: passed to `evaluate` (e.g. `steps`).

        Returns:
            `{metric_name: value}` as `evaluate(..., return_dict=True)`.
        """
        self.set_path(arch)
        saved = None
        if bn_calibration_steps:
            statistics = self._bn_statistics()
            saved = [ops.convert_to_numpy(v) for v in statistics]
            self.calibrate_bn(bn_calibration_data, bn_calibration_steps)
        try:
            kwargs.setdefault("verbose", 0)
            return self.evaluate(data, return_dict=True, **kwargs)
        finally:
            if saved is not None:
                for variable, value in zip(statistics, saved):
                    variable.assign(value)

    def fingerprint(self):
        """A SHA-256 hex digest of everything that scores an architecture:
        every variable's value (weights, BN statistics, α, masks; in order,
        names aside: they vary between processes) except the
        path `set_path` writes and the random streams' states. Two supernets
        with equal fingerprints score every architecture alike; cached
        scores record it (`kerasnas.evaluation.rank_architectures`)."""
        skip = {id(v) for v in self.path_variables()}
        digest = hashlib.sha256()
        for variable in self.variables:
            if id(variable) in skip or variable.path.endswith("seed_generator_state"):
                continue
            value = np.ascontiguousarray(ops.convert_to_numpy(variable))
            digest.update(f"{value.dtype}:{value.shape};".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()

    # === Children ===
    def extract(
        self, arch, bn_calibration_data=None, bn_calibration_steps=0, name=None,
        dtype_policy=None,
    ):
        """The stand-alone child of `arch` carrying the supernet's weights.

        The child is `space.build_network(arch, **network_options)` (same BN
        flavour as the supernet) with the child's side of the choice factory
        (what the path's choice layers fold for it, e.g. inter-choice
        biases), so its outputs equal the supernet's on that path. With
        `bn_calibration_steps`, the child's BN statistics are recalibrated
        on `bn_calibration_data` first. `dtype_policy`: the child's
        (default: the supernet's network's), e.g. `"float32"` for a float32
        child of a bfloat16-trained supernet (the weights are float32 either
        way).

        The supernet is left exactly as it was (every variable: the BN
        statistics the calibration recomputes, split weights the path
        loads), as `evaluate_arch` leaves it.
        """
        arch = self.space.validate(arch)
        policy = self.network_dtype_policy if dtype_policy is None else policy_name(dtype_policy)
        saved = [(v, ops.convert_to_numpy(v)) for v in self.variables]
        try:
            with dtype_policy_scope(policy):
                child = self.space.build_network(
                    arch=arch, name=name, choices=self._child_choices(arch), **self.network_options
                )
            sliced = self.space.sliced_weights
            transfer_weights(self.network, child, sliced)
            if bn_calibration_steps:
                with self.fixed(arch):
                    self.calibrate_bn(bn_calibration_data, bn_calibration_steps)
                    transfer_weights(self.network, child, sliced)
        finally:
            for variable, value in saved:
                variable.assign(value)
        return child

    def _child_choices(self, arch):
        """The child's side of the choice factory: what each choice layer
        folds for the path of `arch` (`Choice.fold`), after loading what
        the path uses (`Choice.load_path`, e.g. split weight copies)."""
        indices = dict(zip(self.space.labels, self.space.encode(arch)))
        folded = {}
        for layer in self.choice_layers():
            priors = [indices[p] for p in layer.prior_labels]
            layer.load_path(indices[layer.label], priors)
            folded[layer.name] = layer.fold(indices[layer.label], priors)
        return self.choices.for_child(folded)

    # === Saving ===
    def save_own_variables(self, store):
        """Keras' own variables of the model, plus the path-sampling seed
        state (a `SeedGenerator`'s state is not a layer variable, and
        without it a reloaded supernet would restart its path sequence)."""
        super().save_own_variables(store)
        store[_SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)
        for i, variable in enumerate(getattr(self, "_slot_bank_variables", [])):
            store[f"{_SLOT_BANK_KEY}{i:05d}"] = ops.convert_to_numpy(variable)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if _SEED_STATE_KEY in keys:  # absent from files saved before it was
            self.seed_generator.state.assign(store[_SEED_STATE_KEY])
        banks = sorted(k for k in keys if k.startswith(_SLOT_BANK_KEY))
        for key, variable in zip(banks, getattr(self, "_slot_bank_variables", [])):
            variable.assign(store[key])
        store = {k: store[k] for k in keys if k != _SEED_STATE_KEY and k not in banks}
        super().load_own_variables(store)

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "space": keras.saving.serialize_keras_object(self.space),
            "path_sampler": keras.saving.serialize_keras_object(self.path_sampler),
            "network_options": dict(self.network_options),
            "choices": keras.saving.serialize_keras_object(self.choices),
            "seed": self.seed,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
            "dtype_policy": self.network_dtype_policy,
            "grappler": self.grappler,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["space"] = keras.saving.deserialize_keras_object(config["space"])
        config["path_sampler"] = keras.saving.deserialize_keras_object(config["path_sampler"])
        if "choices" not in config:  # saved before choice factories
            config["network_options"], config["choices"] = legacy_choices(config.get("network_options"))
        return cls(**config)


_SEED_STATE_KEY = "path_seed_state"
# The optimizer slots of split weight copies kept per copy (`SplitChoice`).
_SLOT_BANK_KEY = "split_slot_bank_"


def is_multi_worker(strategy):
    """Whether `strategy` spans several workers
    (`tf.distribute.MultiWorkerMirroredStrategy` with more than one)."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def _global_logs(logs):
    """Under a multi-worker strategy, each log as a 1-element vector: Keras
    reduces a step's logs across workers with `strategy.reduce("MEAN", v,
    axis=0)`, which fails on scalars and averages these over every replica
    of every worker (what it computes for the replicas of one worker)."""
    if not is_multi_worker(tf.distribute.get_strategy()):
        return logs
    return {k: tf.reshape(tf.cast(v, "float32"), (1,)) for k, v in logs.items()}


def _optimizer_slots(optimizer, variables):
    """`{optimizer var key: [slot variables]}` for `variables`.

    Keras names a slot `<variable path with / as _>_<slot name>`
    (`add_variable_from_reference`).
    """
    prefixes = {v.path.replace("/", "_"): optimizer._var_key(v) for v in variables}
    slots = {}
    for slot in optimizer.variables:
        name = slot.name
        cut = name.rfind("_")
        while cut > 0:
            if name[:cut] in prefixes:
                slots.setdefault(prefixes[name[:cut]], []).append(slot)
                break
            cut = name.rfind("_", 0, cut)
    return slots


def _swapped(layer, variable):
    layer.swap_slots(variable)
    return tf.constant(True)


def clip_by_global_norm(gradients, clip_norm):
    """PyTorch's `clip_grad_norm_`: scale by `clip / (norm + 1e-6)` if < 1."""
    norm = tf.linalg.global_norm(gradients)
    scale = tf.minimum(1.0, clip_norm / (norm + 1e-6))
    return [g * tf.cast(scale, g.dtype) for g in gradients]


def transfer_weights(source, target, sliced=False):
    """Copies weights from `source` into `target` layer by layer, by name.

    Every layer of `target` that owns weights takes them from the layer of
    `source` with the same name (searched recursively, so a candidate inside
    a `Choice` is found; where names repeat at several depths, the
    shallowest wins, as a space function's own layers and those inside its
    candidates are named with separate counters). `BatchNorm` layers of
    different flavours copy what both have. With `sliced` (a child of a
    space with value choices), a target weight smaller than its source
    takes the source's leading slice (the first channels, rows, ...).
    """
    by_name, level = {}, list(source._flatten_layers(include_self=False, recursive=False))
    while level:
        for layer in level:
            by_name.setdefault(layer.name, layer)
        level = [l for layer in level for l in layer._flatten_layers(include_self=False, recursive=False)]
    for layer in target._flatten_layers(include_self=False, recursive=False):
        if not layer.weights:
            continue
        if layer.name not in by_name:
            raise ValueError(
                f"Cannot transfer weights: layer {layer.name!r} of {target.name!r} "
                f"has no counterpart in {source.name!r}."
            )
        _transfer_layer(by_name[layer.name], layer, sliced)


def _leaves(layer):
    return [l for l in layer._flatten_layers(include_self=True) if l.weights and not l._layers]


def _transfer_layer(source, target, sliced=False):
    sources, targets = _leaves(source), _leaves(target)
    if len(sources) != len(targets):
        raise ValueError(f"Cannot transfer weights of {source.name!r}: structures differ.")
    for s, t in zip(sources, targets):
        if isinstance(t, BatchNorm) and isinstance(s, BatchNorm):
            pairs = [
                (getattr(t, attr), getattr(s, attr))
                for attr in ("gamma", "beta", "moving_mean", "moving_variance")
                if hasattr(s, attr) and hasattr(t, attr)
            ]
        else:
            if len(s.weights) != len(t.weights):
                raise ValueError(f"Cannot transfer weights of {s.name!r}: structures differ.")
            pairs = list(zip(t.weights, s.weights))
        for t_var, s_var in pairs:
            t_var.assign(_leading_slice(s_var, t_var) if sliced else _same_shape(s_var, t_var))


def _same_shape(source, target):
    if tuple(source.shape) != tuple(target.shape):
        raise ValueError(
            f"Cannot transfer weights: {source.path} has shape {tuple(source.shape)}, "
            f"{target.path} {tuple(target.shape)}."
        )
    return source


def _leading_slice(source, target):
    """`source`'s value cut to `target`'s shape along each axis (a value
    choice's narrower candidate: the first channels, rows, ...)."""
    value = ops.convert_to_numpy(source)
    shape = tuple(int(d) for d in target.shape)
    if shape != value.shape and len(shape) == value.ndim and all(a <= b for a, b in zip(shape, value.shape)):
        value = value[tuple(slice(0, d) for d in shape)]
    if shape != value.shape:
        raise ValueError(
            f"Cannot transfer weights: {source.path} has shape {value.shape}, "
            f"{target.path} {shape}."
        )
    return value
