"""The DARTS cell space (Liu et al., ICLR 2019) and RobustDARTS' S1-S4."""

import ast
import re

import keras
import numpy as np

from kerasnas.api_export import kerasnas_export
from kerasnas.ops.policy import logits_policy
from kerasnas.layers import BatchNorm
from kerasnas.ops.darts import DartsReLUConvBN
from kerasnas.ops.darts import FactorizedReduce
from kerasnas.ops.darts import darts_op
from kerasnas.spaces.builder import NetworkBuild
from kerasnas.spaces.search_space import SearchSpace

CELL_TYPES = ("normal", "reduce")
STEPS = 4  # intermediate nodes per cell: nodes 2..5, inputs 0 and 1

_DARTS_PT = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
    "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
# RobustDARTS' S1: two ops per edge, per cell type, in edge order (the table
# of darts-pt `sota/cnn/spaces.py`).
_S1 = {
    "normal": [
        ("skip_connect", "dil_conv_3x3"), ("skip_connect", "dil_conv_5x5"),
        ("skip_connect", "dil_conv_5x5"), ("skip_connect", "sep_conv_3x3"),
        ("skip_connect", "dil_conv_3x3"), ("max_pool_3x3", "skip_connect"),
        ("skip_connect", "sep_conv_3x3"), ("skip_connect", "sep_conv_3x3"),
        ("skip_connect", "dil_conv_3x3"), ("skip_connect", "sep_conv_3x3"),
        ("max_pool_3x3", "skip_connect"), ("skip_connect", "dil_conv_3x3"),
        ("dil_conv_3x3", "dil_conv_5x5"), ("dil_conv_3x3", "dil_conv_5x5"),
    ],
    "reduce": [
        ("max_pool_3x3", "avg_pool_3x3"), ("max_pool_3x3", "dil_conv_3x3"),
        ("max_pool_3x3", "avg_pool_3x3"), ("max_pool_3x3", "avg_pool_3x3"),
        ("skip_connect", "dil_conv_5x5"), ("max_pool_3x3", "avg_pool_3x3"),
        ("max_pool_3x3", "sep_conv_3x3"), ("skip_connect", "dil_conv_3x3"),
        ("skip_connect", "dil_conv_5x5"), ("max_pool_3x3", "avg_pool_3x3"),
        ("max_pool_3x3", "avg_pool_3x3"), ("skip_connect", "dil_conv_5x5"),
        ("skip_connect", "dil_conv_5x5"), ("skip_connect", "dil_conv_5x5"),
    ],
}

# Op set name -> ops of every edge (or, for "s1", per cell type and edge).
OP_SETS = {
    "darts": ("none",) + _DARTS_PT,  # DARTS' 8 ops
    "s5": _DARTS_PT,  # DARTS-PT's DARTS space: no 'none'
    "s1": _S1,
    "s2": ("skip_connect", "sep_conv_3x3"),
    "s3": ("none", "skip_connect", "sep_conv_3x3"),
    "s4": ("noise", "sep_conv_3x3"),
}

# Published genotypes (DARTS' own and DARTS-PT's, darts-pt `genotypes.py`).
GENOTYPES = {
    "DARTS_V1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
    "DARTS_V2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
    "DARTS_PT_S5_0": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), "
    "('dil_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 2), ('skip_connect', 0), "
    "('max_pool_3x3', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), "
    "('avg_pool_3x3', 1), ('dil_conv_5x5', 1), ('dil_conv_3x3', 2), ('avg_pool_3x3', 0), "
    "('max_pool_3x3', 2), ('sep_conv_3x3', 2), ('skip_connect', 4)], reduce_concat=range(2, 6))",
}


def edge_labels(cell_type):
    """The 14 edge labels of a cell type, in DARTS' edge order:
    `"{cell_type}_{node}<-{input}"`, nodes 2..5, inputs 0..node-1."""
    return [f"{cell_type}_{node}<-{j}" for node in range(2, 2 + STEPS) for j in range(node)]


def _parse_label(label):
    cell_type, edge = label.split("_", 1)
    node, j = edge.split("<-")
    return cell_type, int(node), int(j)


@kerasnas_export("kerasnas.spaces.Darts")
class Darts(SearchSpace):
    """The DARTS cell space: a normal and a reduction cell, 14 edges each.

    Each cell has two inputs (the outputs of the two previous cells, nodes 0
    and 1) and 4 intermediate nodes (2..5); node `k` sums one op on each of
    its chosen inputs, the cell outputs the concatenation of nodes 2..5. The
    choices are the 28 edges `"{normal|reduce}_{node}<-{input}"`. An
    architecture keeps exactly two inputs per node: its dict maps every
    edge to an op, or to `"none"` for an edge that is not kept (`validate`
    enforces it). The search network (`build_network`, the supernet and the
    children that inherit its weights) is DARTS' `Network`: a 3x3 stem of
    `3C` channels, `layers` cells with reductions at 1/3 and 2/3 of the
    depth, global pooling and a classifier; `build_child` builds DARTS'
    evaluation network `NetworkCIFAR` (C=36, 20 cells, auxiliary head).

    Op sets (REFERENCE_NOTES §0.2): `"darts"` (8 ops, with 'none'), `"s5"`
    (DARTS-PT's 7, without 'none'), RobustDARTS' `"s1"` (two ops per edge),
    `"s2"` {skip, sep3}, `"s3"` {none, skip, sep3}, `"s4"` {noise, sep3}.

    Args:
        num_classes: classes of the classifier.
        channels: C of the search network (DARTS: 16).
        layers: cells of the search network (DARTS: 8).
        input_shape: `(height, width, channels)` of the images.
        op_set: a name of `OP_SETS`.
    """

    # GM-NAS on the DARTS space (`kerasnas.fewshot`): the DARTS edge rule,
    # normal-cell edges only, the option forced with its softmax weight.
    split_rule = "darts"
    matching_hard = False

    @property
    def split_labels(self):
        return edge_labels("normal")

    def __init__(self, num_classes=10, channels=16, layers=8, input_shape=(32, 32, 3), op_set="s5"):
        for name, value in (("num_classes", num_classes), ("channels", channels), ("layers", layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected a positive int. "
                    f"Received: {name}={value!r}"
                )
        if layers < 3:
            raise ValueError(
                "Invalid value for argument `layers`. Expected at least 3 cells "
                f"(two reductions and a normal cell). Received: layers={layers}"
            )
        if op_set not in OP_SETS:
            raise ValueError(
                f"Invalid value for argument `op_set`. Expected one of {sorted(OP_SETS)}. "
                f"Received: op_set={op_set!r}"
            )
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3 or input_shape[0] % 4 or input_shape[1] % 4:
            raise ValueError(
                "Invalid value for argument `input_shape`. Expected (height, width, "
                f"channels) with height and width divisible by 4. Received: {input_shape}"
            )
        self.num_classes = num_classes
        self.channels = channels
        self.layers = layers
        self.input_shape = input_shape
        self.op_set = op_set
        choices = {}
        for cell_type in CELL_TYPES:
            for e, label in enumerate(edge_labels(cell_type)):
                ops = OP_SETS[op_set]
                choices[label] = ops[cell_type][e] if isinstance(ops, dict) else ops
        super().__init__(choices)

    # === Architectures ===
    def validate(self, arch):
        """Checks a DARTS architecture: every edge maps to one of its ops or
        to `"none"` (not kept), and every node keeps exactly 2 inputs."""
        if not isinstance(arch, dict):
            raise ValueError(
                "Invalid value for argument `arch`. Expected a dict {edge: op}. "
                f"Received: arch={arch!r}"
            )
        missing = [k for k in self.labels if k not in arch]
        extra = [k for k in arch if k not in self.choices]
        if missing or extra:
            raise ValueError(
                "Invalid value for argument `arch`. Expected exactly the 28 edge "
                f"labels. Received: arch={arch!r} (missing: {missing}, unknown: {extra})"
            )
        for label, options in self.choices.items():
            if arch[label] != "none" and arch[label] not in options:
                raise ValueError(
                    f"Invalid value for argument `arch` at edge {label!r}. Expected "
                    f"one of {list(options)} or 'none'. Received: {arch[label]!r}"
                )
        for cell_type in CELL_TYPES:
            for node in range(2, 2 + STEPS):
                kept = [j for j in range(node) if arch[f"{cell_type}_{node}<-{j}"] != "none"]
                if len(kept) != 2:
                    raise ValueError(
                        f"Invalid value for argument `arch`: node {node} of the "
                        f"{cell_type} cell keeps inputs {kept}. Expected exactly 2 "
                        "inputs per node (DARTS)."
                    )
        return {label: str(arch[label]) for label in self.labels}

    def sample(self, seed=None):
        """A uniformly random DARTS architecture: 2 distinct inputs per node,
        a random non-'none' op on each."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        arch = {}
        for cell_type in CELL_TYPES:
            for node in range(2, 2 + STEPS):
                inputs = set(rng.choice(node, size=2, replace=False).tolist())
                for j in range(node):
                    label = f"{cell_type}_{node}<-{j}"
                    ops = [o for o in self.choices[label] if o != "none"]
                    arch[label] = ops[rng.integers(len(ops))] if j in inputs else "none"
        return arch

    def enumerate(self):
        raise ValueError("The DARTS space (about 10^18 architectures) cannot be enumerated.")

    def derive(self, weights):
        """DARTS' genotype rule: per node keep the 2 inputs whose strongest
        non-'none' op weighs most (ties: the earlier input), then on each
        the strongest non-'none' op (ties: the first)."""
        arch = {}
        for cell_type in CELL_TYPES:
            for node in range(2, 2 + STEPS):
                labels = [f"{cell_type}_{node}<-{j}" for j in range(node)]
                best = {}
                for label in labels:
                    row = weights[label]
                    ops = [o for o in self.choices[label] if o != "none"]
                    best[label] = max(ops, key=lambda o: (row[o], -ops.index(o)))
                strength = {label: weights[label][best[label]] for label in labels}
                kept = sorted(labels, key=lambda l: -strength[l])[:2]
                for label in labels:
                    arch[label] = best[label] if label in kept else "none"
        return arch

    def selection_groups(self, rng):
        """PT's decision events: one normal and one reduce edge per event
        (seeded random order), then (topology) one node of each cell type
        per event."""
        order = {c: [edge_labels(c)[i] for i in rng.permutation(14)] for c in CELL_TYPES}
        groups = [[order["normal"][k], order["reduce"][k]] for k in range(14)]
        nodes = {c: [f"{c}:{n}" for n in (2 + rng.permutation(STEPS - 1) + 1)] for c in CELL_TYPES}
        groups += [[nodes["normal"][k], nodes["reduce"][k]] for k in range(STEPS - 1)]
        return groups

    # === Genotypes ===
    def to_genotype(self, arch):
        """Architecture dict -> DARTS' `Genotype(...)` text (inputs of a
        node in increasing order)."""
        arch = self.validate(arch)
        parts = []
        for cell_type in CELL_TYPES:
            pairs = [
                (arch[f"{cell_type}_{node}<-{j}"], j)
                for node in range(2, 2 + STEPS)
                for j in range(node)
                if arch[f"{cell_type}_{node}<-{j}"] != "none"
            ]
            parts.append(f"{cell_type}={pairs!r}, {cell_type}_concat=[2, 3, 4, 5]")
        return f"Genotype({parts[0]}, {parts[1]})"

    def from_genotype(self, genotype):
        """DARTS' `Genotype` (its text, the namedtuple, or a dict with keys
        normal / reduce [/ *_concat]) -> architecture dict."""
        fields = _genotype_fields(genotype)
        arch = {label: "none" for label in self.labels}
        for cell_type in CELL_TYPES:
            pairs = fields.get(cell_type)
            concat = fields.get(f"{cell_type}_concat", list(range(2, 2 + STEPS)))
            if list(concat) != list(range(2, 2 + STEPS)):
                raise _genotype_error(genotype, f"{cell_type}_concat must be [2, 3, 4, 5]")
            if not isinstance(pairs, (list, tuple)) or len(pairs) != 2 * STEPS:
                raise _genotype_error(genotype, f"{cell_type} must list 8 (op, input) pairs")
            for k, pair in enumerate(pairs):
                node = 2 + k // 2
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise _genotype_error(genotype, f"{pair!r} is not an (op, input) pair")
                op, j = pair
                if not isinstance(j, int) or not 0 <= j < node:
                    raise _genotype_error(genotype, f"input {j!r} of node {node}")
                label = f"{cell_type}_{node}<-{j}"
                if arch[label] != "none":
                    raise _genotype_error(genotype, f"node {node} takes input {j} twice")
                arch[label] = op
        return self.validate(arch)

    # === Builders ===
    def build_network(
        self,
        arch=None,
        bn="search",
        synchronized_bn=False,
        virtual_batch_size=None,
        dense_choices=None,
        choices=None,
        name=None,
    ):
        """DARTS' search network: the supernet's (`arch=None`) or the child
        of `arch` inside it (the same layers, only the chosen ops, so
        weights transfer by name).

        Args:
            bn: `"search"` (DARTS: cells without BN affine parameters) or
                `"standard"` (affine everywhere).
            choices: the method's `kerasnas.layers.ChoiceFactory` (DARTS:
                `kerasnas.layers.MixedChoices()`, what a
                `kerasnas.darts.DartsSupernet` passes; default single-path).
        """
        if bn not in ("search", "standard"):
            raise ValueError(
                "Invalid value for argument `bn`. Expected 'search' or 'standard'. "
                f"Received: bn={bn!r}"
            )
        if arch is not None:
            arch = self.validate(arch)
        build = NetworkBuild(self, arch, choices)
        dense = bool(synchronized_bn) if dense_choices is None else bool(dense_choices)
        bn_options = dict(synchronized=bool(synchronized_bn) and dense, virtual_batch_size=virtual_batch_size)
        cell_affine = bn == "standard"
        images = keras.Input(shape=self.input_shape, name="images")
        inputs = build.inputs(images)
        c = self.channels
        x = keras.layers.Conv2D(3 * c, 3, padding="same", use_bias=False, name="stem_conv")(images)
        x = BatchNorm(name="stem_bn", synchronized=bool(synchronized_bn))(x)
        s0 = s1 = x
        reduction_prev = False
        for i in range(self.layers):
            reduction = i in (self.layers // 3, 2 * self.layers // 3)
            if reduction:
                c *= 2
            cell = _Cell(self, f"cell{i}", c, reduction, reduction_prev, cell_affine, bn_options, build, dense)
            s0, s1 = s1, cell(s0, s1)
            reduction_prev = reduction
        x = keras.layers.GlobalAveragePooling2D(name="pool")(s1)
        outputs = keras.layers.Dense(self.num_classes, name="classifier", dtype=logits_policy())(x)
        if name is None:
            name = "darts_supernet_network" if arch is None else "darts_child"
        return keras.Model(inputs, outputs, name=name)

    def build_child(self, arch, channels=36, layers=20, auxiliary=True, name="darts_eval_network"):
        """DARTS' evaluation network (`NetworkCIFAR`) of `arch`: see
        `kerasnas.spaces.darts_eval.build_eval_network`."""
        from kerasnas.spaces.darts_eval import build_eval_network

        return build_eval_network(self, self.validate(arch), channels, layers, auxiliary, name)

    def params(self, arch, channels=36, layers=20, auxiliary=False):
        """Trainable parameters of `build_child(arch, channels, layers)`
        (without the auxiliary head by default, as DARTS'
        `count_parameters_in_MB`), in closed form."""
        arch = self.validate(arch)
        c = channels
        total = 27 * 3 * c + 2 * 3 * c  # stem conv + BN
        c_pp, c_p = 3 * c, 3 * c
        reduction_prev = False
        aux_channels = None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            total += (c_pp * c if not reduction_prev else c_pp * c) + 2 * c  # preprocess0
            total += c_p * c + 2 * c  # preprocess1
            cell_type = "reduce" if reduction else "normal"
            for label in edge_labels(cell_type):
                op = arch[label]
                _, _, j = _parse_label(label)
                stride = 2 if reduction and j < 2 else 1
                total += _op_params(op, c, stride)
            c_pp, c_p = c_p, STEPS * c
            reduction_prev = reduction
            if i == 2 * layers // 3:
                aux_channels = c_p
        total += c_p * self.num_classes + self.num_classes
        if auxiliary:
            total += aux_channels * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768
            total += 768 * self.num_classes + self.num_classes
        return int(total)

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "channels": self.channels,
            "layers": self.layers,
            "input_shape": list(self.input_shape),
            "op_set": self.op_set,
        }


def _op_params(op, c, stride):
    if op.startswith("sep_conv_"):
        k = int(op[-1])
        return 2 * (k * k * c + c * c + 2 * c)
    if op.startswith("dil_conv_"):
        k = int(op[-1])
        return k * k * c + c * c + 2 * c
    if op == "skip_connect" and stride == 2:
        return c * c + 2 * c  # FactorizedReduce
    return 0


class _Cell:
    """Builds one cell of the search network in the functional graph."""

    def __init__(self, space, name, c, reduction, reduction_prev, affine, bn_options, build, dense):
        self.space, self.name, self.c = space, name, c
        self.reduction, self.reduction_prev, self.affine = reduction, reduction_prev, affine
        self.bn_options, self.build, self.dense = bn_options, build, dense

    def __call__(self, s0, s1):
        c, affine, bn = self.c, self.affine, self.bn_options
        if self.reduction_prev:
            p0 = FactorizedReduce(c, affine=affine, bn_options=bn, name=f"{self.name}_pre0")
        else:
            p0 = DartsReLUConvBN(c, 1, affine=affine, bn_options=bn, name=f"{self.name}_pre0")
        p1 = DartsReLUConvBN(c, 1, affine=affine, bn_options=bn, name=f"{self.name}_pre1")
        states = [p0(s0), p1(s1)]
        cell_type = "reduce" if self.reduction else "normal"
        build, arch = self.build, self.build.arch
        for node in range(2, 2 + STEPS):
            terms = []
            for j in range(node):
                label = f"{cell_type}_{node}<-{j}"
                stride = 2 if self.reduction and j < 2 else 1
                layer_name = f"{self.name}_e{node}{j}"
                make = lambda op: darts_op(
                    op, c, stride, affine=affine, search=True, bn_options=bn,
                    layer_name=f"{layer_name}_{op}",
                )
                if build.supernet:
                    candidates = [make(op) for op in self.space.choices[label]]
                    terms.append(build.choose(label, candidates, states[j], name=layer_name, dense=self.dense))
                elif arch[label] != "none":
                    terms.append(make(arch[label])(build.child_input(states[j], layer_name)))
            states.append(
                terms[0] if len(terms) == 1 else keras.layers.Add(name=f"{self.name}_node{node}")(terms)
            )
        return keras.layers.Concatenate(name=f"{self.name}_concat")(states[2:])


_GENOTYPE = re.compile(r"^\s*Genotype\s*\((.*)\)\s*$", re.S)


def _genotype_fields(genotype):
    if isinstance(genotype, dict):
        return dict(genotype)
    if hasattr(genotype, "_asdict"):
        return {k: list(v) if isinstance(v, range) else v for k, v in genotype._asdict().items()}
    if not isinstance(genotype, str):
        raise _genotype_error(genotype, "expected text, a namedtuple or a dict")
    match = _GENOTYPE.match(genotype)
    if match is None:
        raise _genotype_error(genotype, "expected 'Genotype(normal=..., reduce=...)'")
    body = re.sub(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)", lambda m: str(list(range(int(m[1]), int(m[2])))), match[1])
    body = re.sub(r"(^|,)\s*(\w+)\s*=", lambda m: f"{m[1]} '{m[2]}':", body)
    try:
        fields = ast.literal_eval("{" + body + "}")
    except (ValueError, SyntaxError) as error:
        raise _genotype_error(genotype, f"unparsable ({error})") from None
    return fields


def _genotype_error(genotype, why):
    return ValueError(
        "Invalid value for argument `genotype`. Expected a DARTS Genotype with 8 "
        "(op, input) pairs per cell type and concat [2, 3, 4, 5]: "
        f"{why}. Received: {genotype!r}"
    )
