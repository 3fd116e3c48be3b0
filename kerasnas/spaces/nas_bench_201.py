"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020)."""

import re

import keras

from kerasnas import ops as nas_ops
from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import logits_policy
from kerasnas.layers import BatchNorm
from kerasnas.spaces.builder import NetworkBuild
from kerasnas.spaces.search_space import SearchSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")

# BN switches (affine, track_running_stats) per part of the network.
BN_MODES = {
    # The benchmark's stand-alone ("infer") network.
    "standard": dict(stem=(True, True), cell=(True, True), block=(True, True), head=(True, True)),
    # xautodl search models (DARTS, RSPS, SETN...), DARTS-PT and GM-NAS.
    "search": dict(stem=(True, True), cell=(False, True), block=(True, True), head=(True, True)),
    # PA&DA's supernet: batch statistics everywhere, no affine parameters.
    "batch": dict(stem=(False, False), cell=(False, False), block=(False, False), head=(False, False)),
}

_STRING = re.compile(r"^\|(.+)\|\+\|(.+)\|\+\|(.+)\|$")


@kerasnas_export("kerasnas.spaces.NasBench201")
class NasBench201(SearchSpace):
    """The NAS-Bench-201 cell space: 6 edges, 5 operations, 15,625 cells.

    The macro network is xautodl's: a 3x3 stem conv + BN, three stages of
    `cells_per_stage` cells (all sharing one architecture) separated by
    stride-2 residual blocks doubling the channels, then BN + ReLU, global
    average pooling and a linear classifier. The choices are the 6 edges of
    the cell, labelled `"i<-j"` in NAS-Bench-201's order.

    Reference:
        Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible
        Neural Architecture Search", ICLR 2020.

    Args:
        num_classes: number of classes of the classifier.
        channels: channels C of the first stage (C, 2C, 4C).
        cells_per_stage: N, cells per stage (NAS-Bench-201: 5).
        input_shape: (height, width, channels) of the images; height and
            width must be divisible by 4.
        ops: the operations of every edge (default: the 5 NAS-Bench-201 ops
            in the benchmark's order); a subset restricts the space, e.g.
            `ops=("nor_conv_1x1", "nor_conv_3x3")`.

    Example:

    ```python
    space = kerasnas.spaces.NasBench201(num_classes=10, channels=16)
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    child = space.build_child(arch)
    ```
    """

    # Layers outside the choices whose weights count as shared in GM-NAS'
    # gradient matching (the reference's ResNet reduction blocks).
    matching_shared_layers = ("reduction",)
    # GM-NAS' NB201 edge rule (`kerasnas.fewshot.nb201_split`).
    split_rule = "nb201"

    def __init__(
        self,
        num_classes=10,
        channels=16,
        cells_per_stage=5,
        input_shape=(32, 32, 3),
        ops=None,
    ):
        for name, value in (
            ("num_classes", num_classes),
            ("channels", channels),
            ("cells_per_stage", cells_per_stage),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected a positive "
                    f"int. Received: {name}={value!r}"
                )
        input_shape = tuple(input_shape)
        if (
            len(input_shape) != 3
            or any(not isinstance(d, int) or d < 1 for d in input_shape)
            or input_shape[0] % 4
            or input_shape[1] % 4
        ):
            raise ValueError(
                "Invalid value for argument `input_shape`. Expected (height, "
                "width, channels) with height and width divisible by 4. "
                f"Received: input_shape={input_shape}"
            )
        ops = tuple(NB201_OPS if ops is None else ops)
        unknown = [o for o in ops if o not in NB201_OPS]
        if not ops or unknown:
            raise ValueError(
                "Invalid value for argument `ops`. Expected a non-empty subset "
                f"of {list(NB201_OPS)}. Received: ops={list(ops)}"
            )
        self.num_classes = num_classes
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.input_shape = input_shape
        self.ops = ops
        super().__init__({edge: ops for edge in NB201_EDGES})

    # === Codecs ===
    def path_connected(self, path):
        """Boolean tensor: whether the int32 `path` (option indices in label
        order) connects the cell's output node to its input through ops
        other than 'none' (GM-NAS' `check_connect`)."""
        from keras import ops

        none = self.ops.index("none") if "none" in self.ops else -1
        reach = {0: ops.convert_to_tensor(True)}
        for node in range(1, 4):
            terms = [
                ops.logical_and(reach[j], ops.not_equal(path[self.labels.index(f"{node}<-{j}")], none))
                for j in range(node)
            ]
            reach[node] = terms[0]
            for term in terms[1:]:
                reach[node] = ops.logical_or(reach[node], term)
        return reach[3]

    def default_priors(self):
        """The reference's NAS-Bench-201 map (`mixed_priors = [[], [], [-2],
        [], [-4], [-4, -3]]`): each edge depends on the edges that produce
        its input node; edges from node 0 depend on nothing."""
        return {
            label: tuple(f"{j}<-{k}" for k in range(int(j))) if (j := label.split("<-")[1]) != "0" else ()
            for label in NB201_EDGES
        }

    # "exact": 12,205 classes of the 15,625 cells; "isomorphic": 6,466.
    equivalence_rules = ("exact", "isomorphic")

    def equivalence_key(self, arch, rule="exact"):
        """A key equal for cells that compute the same function.

        `"exact"` (12,205 classes in the full space): the ops of edges that
        cannot reach the output node (through ops other than 'none') are
        ignored. Exact in a supernet, where every edge has its own weights:
        nothing downstream reads those ops, so scores are equal to the last
        bit (BN recalibration included: each BN has its own statistics).

        `"isomorphic"` (6,466 classes; NAS-Bench-201's count, xautodl's
        `to_unique_str(consider_zero=True)`): also merges cells equal up to
        the order of a node's inputs, skip connections and zero (none)
        inputs, e.g. conv on 1<-0 vs on 2<-0 when both feed the output the
        same way. Exact for stand-alone networks trained from scratch, where
        such cells are the same network up to a relabelling of weights, but
        NOT in a supernet, whose edges hold different weights: there a class
        is scored by one member, an approximation.
        """
        self.check_equivalence_rule(rule)
        arch = self.validate(arch)
        if rule == "isomorphic":
            nodes = {0: "0"}
            for i in (1, 2, 3):
                terms = []
                for j in range(i):
                    op = arch[f"{i}<-{j}"]
                    if op == "none" or nodes[j] == "#":
                        terms.append("#")
                    elif op == "skip_connect":
                        terms.append(nodes[j])
                    else:
                        terms.append(f"({nodes[j]})@{op}")
                nodes[i] = "+".join(sorted(terms))
            return nodes[3]
        live = {3}
        for node in (2, 1):
            if any(arch[f"{i}<-{node}"] != "none" for i in live if i > node):
                live.add(node)
        return tuple(op if int(label[0]) in live else "none" for label, op in arch.items())

    def to_string(self, arch):
        """Architecture dict -> NAS-Bench-201 string `|op~0|+|op~0|op~1|+...`."""
        arch = self.validate(arch)
        nodes = []
        for i in (1, 2, 3):
            nodes.append("|" + "|".join(f"{arch[f'{i}<-{j}']}~{j}" for j in range(i)) + "|")
        return "+".join(nodes)

    def display_string(self, arch):
        return self.to_string(arch)

    def from_string(self, string):
        """NAS-Bench-201 string -> architecture dict."""
        match = _STRING.match(string) if isinstance(string, str) else None
        error = ValueError(
            "Invalid value for argument `string`. Expected a NAS-Bench-201 "
            "architecture string like '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|"
            f"+|skip_connect~0|none~1|skip_connect~2|'. Received: string={string!r}"
        )
        if match is None:
            raise error
        arch = {}
        for i, group in enumerate(match.groups(), start=1):
            tokens = group.split("|")
            if len(tokens) != i:
                raise error
            for j, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if src != str(j):
                    raise error
                arch[f"{i}<-{j}"] = op
        return self.validate(arch)

    # === Cost model of the stand-alone child ("standard" BN) ===
    def _stage_shapes(self):
        height, width = self.input_shape[:2]
        return [(height >> s, width >> s, self.channels << s) for s in range(3)]

    def params(self, arch, bn="standard"):
        """Trainable parameters of `build_child(arch, bn=bn)`."""
        arch = self.validate(arch)
        modes = _bn_mode(bn)
        stem_affine, cell_affine, block_affine, head_affine = (
            modes[k][0] for k in ("stem", "cell", "block", "head")
        )
        c0 = self.channels
        total = 9 * self.input_shape[2] * c0 + 2 * c0 * stem_affine
        # conv (+ bias when BN is not affine) + BN affine = conv + 2C or conv + C.
        relu_conv_bn = lambda k, cin, cout, affine: k * k * cin * cout + (2 * cout if affine else cout)
        for s, (_, _, c) in enumerate(self._stage_shapes()):
            if s:
                total += relu_conv_bn(3, c // 2, c, block_affine)
                total += relu_conv_bn(3, c, c, block_affine) + (c // 2) * c
            per_cell = sum(
                relu_conv_bn(int(arch[e][-1]), c, c, cell_affine)
                for e in NB201_EDGES
                if arch[e].startswith("nor_conv")
            )
            total += self.cells_per_stage * per_cell
        c_last = 4 * c0
        total += 2 * c_last * head_affine + c_last * self.num_classes + self.num_classes
        return int(total)

    def flops(self, arch):
        """Multiply-accumulates of the stand-alone child (xautodl convention).

        Convolutions count `k*k*Cin*Cout*Hout*Wout` (plus `Cout*Hout*Wout`
        with a bias), the classifier `in*out + out`; pooling, BN and
        additions count nothing.
        """
        arch = self.validate(arch)
        (h0, w0, c0), *_ = stages = self._stage_shapes()
        total = 9 * self.input_shape[2] * c0 * h0 * w0
        for s, (h, w, c) in enumerate(stages):
            if s:
                total += (9 * (c // 2) * c + 9 * c * c + (c // 2) * c) * h * w
            per_cell = sum(
                int(arch[e][-1]) ** 2 * c * c * h * w
                for e in NB201_EDGES
                if arch[e].startswith("nor_conv")
            )
            total += self.cells_per_stage * per_cell
        return int(total + 4 * c0 * self.num_classes + self.num_classes)

    # === Builders ===
    def build_child(self, arch, name="nb201_child", **options):
        """The stand-alone network of `arch`: a plain functional `keras.Model`.

        With the default `bn="standard"` it is NAS-Bench-201's "infer"
        network (affine BN with moving statistics, convolutions without bias),
        whose parameter count equals the benchmark's.
        """
        return self.build_network(arch=self.validate(arch), name=name, **options)

    def build_supernet(
        self,
        path_sampler=None,
        seed=None,
        weight_decay=0.0,
        clip_norm=None,
        bn="batch",
        synchronized_bn=False,
        virtual_batch_size=None,
        dense_choices=None,
        **kwargs,
    ):
        """The weight-sharing supernet of the space, a `kerasnas.Supernet`.

        Args:
            path_sampler: a `kerasnas.sampling.PathSampler` (default uniform).
            seed: seed of the path sampling.
            weight_decay: coupled L2 weight decay (added to the gradients).
            clip_norm: global gradient-norm clipping (reference: 5).
            bn: `"batch"` (PA&DA: batch statistics always, no affine),
                `"search"` (xautodl search models) or `"standard"`.
            synchronized_bn: batch moments over the global batch under a
                distribution strategy, in every BN layer, so that results
                do not depend on the number of replicas. TF forbids
                cross-replica reductions inside a `switch`, so the choices
                then run every candidate and select the output
                (`Choice(dense=True)`): each step costs the whole supernet's
                compute (about 3x a sampled path's on NAS-Bench-201). Use it
                when per-replica batches are small enough to hurt BN (say
                under 32 samples) or when results must not depend on the
                number of devices; otherwise per-replica statistics are
                cheaper and, with "batch" BN, are what the reference code
                computes on each GPU.
            virtual_batch_size: "ghost" BN groups (see
                `kerasnas.ops.BatchNorm`).
            dense_choices: force the choices' selection: True runs every
                candidate, False only the selected one (then
                `synchronized_bn` applies outside the choices only). Default:
                dense exactly when `synchronized_bn`.
            **kwargs: passed to `kerasnas.Supernet`.
        """
        return super().build_supernet(
            path_sampler=path_sampler,
            seed=seed,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            bn=bn,
            synchronized_bn=synchronized_bn,
            virtual_batch_size=virtual_batch_size,
            dense_choices=dense_choices,
            **kwargs,
        )

    def build_network(
        self,
        arch=None,
        bn="standard",
        synchronized_bn=False,
        virtual_batch_size=None,
        dense_choices=None,
        choices=None,
        name=None,
    ):
        """The functional network: the supernet's (`arch=None`) or a child's.

        The supernet network takes `[images, architecture input]`, whose
        form and choice layers are those of `choices`, the method's
        `kerasnas.layers.ChoiceFactory` (default: the int32 path of option
        indices in label order, single-path `kerasnas.layers.Choice`s); a
        child takes images. Both are built by this one function, so their
        layers carry the same names and weights transfer by name
        (`Supernet.extract`, which passes the child's side of the factory).
        """
        build = NetworkBuild(self, arch, choices)
        modes = _bn_mode(bn)
        dense = bool(synchronized_bn) if dense_choices is None else bool(dense_choices)
        bn_opts = {
            part: dict(
                affine=a,
                track_running_stats=t,
                synchronized=bool(synchronized_bn) and (dense or part != "cell"),
                virtual_batch_size=virtual_batch_size,
            )
            for part, (a, t) in modes.items()
        }
        images = keras.Input(shape=self.input_shape, name="images")
        inputs = build.inputs(images)
        x = keras.layers.Conv2D(
            self.channels, 3, padding="same", use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(), name="stem_conv",
        )(images)
        x = BatchNorm(name="stem_bn", **bn_opts["stem"])(x)
        for s in range(3):
            channels = self.channels << s
            if s:
                x = nas_ops.ResNetBasicBlock(channels, name=f"reduction{s}", **bn_opts["block"])(x)
            for i in range(self.cells_per_stage):
                x = self._cell(build, x, channels, f"cell{s}_{i}", bn_opts["cell"], dense)
        x = BatchNorm(name="lastact_bn", **bn_opts["head"])(x)
        x = keras.layers.ReLU(name="lastact_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        outputs = keras.layers.Dense(self.num_classes, name="classifier", dtype=logits_policy())(x)
        if name is None:
            name = "nb201_supernet_network" if arch is None else "nb201_child"
        return keras.Model(inputs, outputs, name=name)

    def _cell(self, build, x, channels, cell_name, bn, dense):
        arch = build.arch
        nodes = [x]
        for i in (1, 2, 3):
            terms = []
            for j in range(i):
                label = f"{i}<-{j}"
                name = f"{cell_name}_e{i}{j}"
                if build.supernet:
                    candidates = [nas_ops.get(op, channels, name=f"{name}_{op}", **bn) for op in self.ops]
                    terms.append(build.choose(label, candidates, nodes[j], name=name, dense=dense))
                elif arch[label] == "none":
                    # A node whose every outgoing edge is 'none' still holds
                    # the benchmark's parameters: keep it in the graph.
                    if j and i == 3 and all(arch[f"{k}<-{j}"] == "none" for k in range(j + 1, 4)):
                        terms.append(nas_ops.Zero(name=f"{name}_none")(nodes[j]))
                elif arch[label] == "skip_connect":
                    terms.append(build.child_input(nodes[j], name))
                else:
                    op = arch[label]
                    source = build.child_input(nodes[j], name)
                    terms.append(nas_ops.get(op, channels, name=f"{name}_{op}", **bn)(source))
            if not terms:
                nodes.append(nas_ops.Zero(name=f"{cell_name}_node{i}_zero")(x))
            elif len(terms) == 1:
                nodes.append(terms[0])
            else:
                nodes.append(keras.layers.Add(name=f"{cell_name}_node{i}")(terms))
        return nodes[3]

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "input_shape": list(self.input_shape),
            "ops": list(self.ops),
        }


def _bn_mode(bn):
    if bn not in BN_MODES:
        raise ValueError(
            f"Invalid value for argument `bn`. Expected one of {list(BN_MODES)}. "
            f"Received: bn={bn!r}"
        )
    return BN_MODES[bn]
