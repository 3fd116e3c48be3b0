"""Few-shot supernets: a partition tree of masks over one space, trained
generation by generation and split by gradient matching (GM-NAS), the
exhaustive one-option-per-child split (few-shot NAS) or a random split."""

import hashlib
import json
import os
import shutil
import zlib

import numpy as np
import tensorflow as tf
from keras import ops

from kerasnas.api_export import kerasnas_export
from kerasnas.callbacks.epoch_checkpoint import EpochCheckpoint
from kerasnas.callbacks.epoch_checkpoint import atomic_write
from kerasnas.callbacks.epoch_checkpoint import latest_checkpoint
from kerasnas.callbacks.epoch_checkpoint import latest_readable_checkpoint
from kerasnas.callbacks.epoch_checkpoint import load_checkpoint
from kerasnas.callbacks.epoch_checkpoint import save_checkpoint
from kerasnas.fewshot.matching import GradientMatcher
from kerasnas.fewshot.mincut import EDGE_RULES
from kerasnas.fewshot.mincut import choose_edge
from kerasnas.fewshot.mincut import exhaustive_split
from kerasnas.fewshot.mincut import random_split
from kerasnas.fewshot.schedule import LeafCosineDecay
from kerasnas.fewshot.schedule import StretchedSchedule
from kerasnas.timing import running_time

SPLIT_METHODS = ("gradient_matching", "exhaustive", "random")
RESTARTS = ("final", "none", "all")


@kerasnas_export("kerasnas.fewshot.PartitionTree")
class PartitionTree:
    """A tree of masks over a search space: the root allows every option,
    a node's children partition the options of one choice (its split
    label) and inherit its other restrictions. Every architecture of the
    space belongs to exactly one leaf.

    Nodes are dicts `{"id", "parent", "mask", "generation", "split",
    "children"}`; `mask` is `{label: [allowed options]}` over every label.
    Node ids are paths: `"0"`, `"0.1"`, `"0.1.0"`.
    """

    def __init__(self, space, nodes=None, mask=None):
        self.space = space
        if nodes is None:
            mask = mask or {}
            nodes = {
                "0": {
                    "id": "0",
                    "parent": None,
                    "mask": {k: list(mask.get(k, v)) for k, v in space.choices.items()},
                    "generation": 0,
                    "split": None,
                    "children": [],
                }
            }
        self.nodes = nodes

    @property
    def root(self):
        return self.nodes["0"]

    def leaves(self):
        """Leaf nodes in id order."""
        return _ordered(n for n in self.nodes.values() if not n["children"])

    def generation(self, generation):
        """The nodes of one generation (0: the root), in id order."""
        return _ordered(n for n in self.nodes.values() if n["generation"] == generation)

    def split(self, node_id, label, groups):
        """Splits node `node_id` on `label` into children allowing `groups`
        (lists of option names partitioning the node's options there).
        Returns the children."""
        node = self.nodes[node_id]
        if node["children"]:
            raise ValueError(f"Node {node_id!r} is already split.")
        allowed = node["mask"][label]
        if len(allowed) < 2:
            raise ValueError(
                f"Invalid value for argument `label`. Expected a choice with at "
                f"least 2 options left at node {node_id!r}. Received: {label!r} "
                f"allows only {allowed}"
            )
        flat = sorted(o for g in groups for o in g)
        if flat != sorted(allowed) or any(not g for g in groups):
            raise ValueError(
                "Invalid value for argument `groups`. Expected non-empty groups "
                f"partitioning {allowed}. Received: {groups}"
            )
        node["split"] = label
        for k, group in enumerate(groups):
            child_id = f"{node_id}.{k}"
            mask = {l: list(o) for l, o in node["mask"].items()}
            mask[label] = [o for o in allowed if o in group]
            self.nodes[child_id] = {
                "id": child_id,
                "parent": node_id,
                "mask": mask,
                "generation": node["generation"] + 1,
                "split": None,
                "children": [],
            }
            node["children"].append(child_id)
        return [self.nodes[c] for c in node["children"]]

    def leaf_for(self, arch):
        """The leaf of `arch` (a dict or the space's string): the one whose
        mask contains it. An option the root's mask excludes (never
        trained, e.g. NB201's 'none' in the CPU proxy) follows the first
        child of a split on its choice, so every architecture of the space
        has exactly one leaf."""
        if isinstance(arch, str):
            arch = self.space.from_string(arch)
        arch = self.space.validate(arch)
        node = self.root
        while node["children"]:
            label = node["split"]
            children = [self.nodes[c] for c in node["children"]]
            node = next((c for c in children if arch[label] in c["mask"][label]), children[0])
        return node

    def contains(self, node, arch):
        return all(arch[l] in node["mask"][l] for l in node["mask"])

    def to_json(self):
        return json.dumps({"nodes": self.nodes}, indent=1)

    @classmethod
    def from_json(cls, space, text):
        return cls(space, json.loads(text)["nodes"])


def _ordered(nodes):
    return sorted(nodes, key=lambda n: [int(p) for p in n["id"].split(".")])


@kerasnas_export("kerasnas.fewshot.FewShotSupernet")
class FewShotSupernet:
    """Trains a tree of sub-supernets on one compiled supernet.

    A sub-supernet is a *state* of `supernet`: its weights, BN statistics,
    optimizer slots and step count, path-sampler state, α (DARTS/SNAS) and
    α optimizer, and its option mask, i.e. everything an `EpochCheckpoint`
    holds. A child is its parent's state copied (bitwise) with its own mask;
    training a node restores its state into the one supernet, fits it, and
    checkpoints it. So one trace of the training step serves every
    sub-supernet (building and tracing a Keras model per node would cost
    minutes each), and the whole tree checkpoints to `directory`: a run
    killed at any point (mid-epoch, mid-split) continues where it stopped
    and ends as an uninterrupted one.

    Schedule: the root trains until `split_epochs[0]`; every leaf is then
    split (its candidate choices scored, one chosen, its options grouped,
    one child per group); the children train until the next split epoch in
    turn, and so on; after the last split the leaves train until `epochs`.
    `restart="final"` (reference) re-initialises the last generation
    (weights, optimizer state and step, α: the supernet's state at
    construction, with the leaf's mask), `"all"` every generation,
    `"none"` none. The learning-rate schedule of a restarted leaf starts
    again at step 0 (as the reference's NB201 scripts, whose new cosine
    schedule then runs only the remaining epochs).

    The tree starts from the supernet's state at construction (saved as
    `nodes/initial`; its mask is the root's, e.g. options never trained);
    afterwards the supernet holds whichever node was used last.

    Split methods:
        - `"gradient_matching"` (GM-NAS): every candidate choice of the node
          (one whose options are all still allowed; `split_labels` narrows
          them, e.g. DARTS' normal cell) gets a `GradientMatcher` distance
          matrix; `choose_edge(rule)` picks the choice and its groups.
        - `"exhaustive"`: one child per option (few-shot NAS, Zhao et al.),
          of a seeded random candidate choice.
        - `"random"`: a seeded random balanced split of a seeded random
          candidate choice.

    Args:
        supernet: a compiled `kerasnas.Supernet` or `DartsSupernet`.
        directory: where the tree, the node checkpoints and the split
            scores are written.
        split_epochs: increasing epochs at which every leaf splits.
        split_method: see above.
        rule: edge rule of `choose_edge`: `"nb201"`, `"darts"` or `"kway"`;
            default from the space (`space.split_rule`: `"kway"` unless the
            space says otherwise).
        num_groups: groups per split (`"kway"`, `"random"`).
        restart: see above.
        split_labels: the choices that may be split (default the space's
            `split_labels`, e.g. DARTS' normal cell, else all).
        matcher_options: keyword arguments of `GradientMatcher` (e.g.
            `repeats`, `metric`, `shared`).
        seed: seed of the random splits and of the children's path streams.
        fix_schedule: a restarted node's learning rate follows a cosine
            over its own epochs to the end of training, annealed to 0 (the
            reference's `--fix_sche`, which its DARTS-space scripts pass;
            its NB201 scripts do not, and their leaves stop near half the
            peak rate). Needs the supernet compiled with a
            `kerasnas.fewshot.LeafCosineDecay` learning rate.
    """

    def __init__(
        self,
        supernet,
        directory,
        split_epochs=(15, 30),
        split_method="gradient_matching",
        rule=None,
        num_groups=2,
        restart="final",
        split_labels=None,
        matcher_options=None,
        seed=0,
        fix_schedule=False,
    ):
        split_epochs = [int(e) for e in split_epochs]
        if not split_epochs or split_epochs[0] < 1 or any(b <= a for a, b in zip(split_epochs, split_epochs[1:])):
            raise ValueError(
                "Invalid value for argument `split_epochs`. Expected strictly "
                f"increasing positive epochs. Received: split_epochs={split_epochs}"
            )
        if split_method not in SPLIT_METHODS:
            raise ValueError(
                f"Invalid value for argument `split_method`. Expected one of "
                f"{SPLIT_METHODS}. Received: split_method={split_method!r}"
            )
        rule = rule or supernet.space.split_rule
        if rule not in EDGE_RULES:
            raise ValueError(
                f"Invalid value for argument `rule`. Expected one of {EDGE_RULES}. "
                f"Received: rule={rule!r}"
            )
        if restart not in RESTARTS:
            raise ValueError(
                f"Invalid value for argument `restart`. Expected one of {RESTARTS}. "
                f"Received: restart={restart!r}"
            )
        if getattr(supernet, "optimizer", None) is None:
            raise ValueError(
                "Invalid value for argument `supernet`. Expected a compiled "
                "supernet (its optimizer state is part of every node)."
            )
        labels = list(supernet.space.labels)
        if split_labels is None:
            split_labels = supernet.space.split_labels
        split_labels = list(split_labels)
        unknown = [l for l in split_labels if l not in labels]
        if unknown or not split_labels:
            raise ValueError(
                f"Invalid value for argument `split_labels`. Expected labels among {labels}. "
                f"Received: {split_labels}"
            )
        self.fix_schedule = bool(fix_schedule)
        self.supernet = supernet
        self.space = supernet.space
        self.directory = os.fspath(directory)
        self.split_epochs = split_epochs
        self.split_method = split_method
        self.rule = rule
        self.num_groups = int(num_groups)
        self.restart = restart
        self.split_labels = split_labels
        self.matcher = GradientMatcher(supernet, seed=seed, **dict(matcher_options or {}))
        self.seed = int(seed)
        self.active = None  # id of the node whose state the supernet holds
        os.makedirs(self.directory, exist_ok=True)
        initial = self._checkpoints("initial")
        options = {
            "split_epochs": split_epochs, "split_method": split_method, "rule": rule,
            "num_groups": self.num_groups, "restart": restart, "split_labels": split_labels,
            "matcher_options": dict(matcher_options or {}), "seed": self.seed,
        }
        if self.fix_schedule:  # absent from trees made before the option
            options["fix_schedule"] = True
        options_path = os.path.join(self.directory, "fewshot.json")
        if latest_checkpoint(initial) is None:
            save_checkpoint(supernet, initial, 0, {})
            # What `FewShotSupernet.load` rebuilds the tree from.
            supernet.save(os.path.join(self.directory, "supernet.keras"))
            text = json.dumps(options, indent=1)
            atomic_write(options_path, lambda f: f.write(text.encode()))
        else:  # resuming: the same options, from the state the tree started from
            if os.path.exists(options_path):
                with open(options_path) as f:
                    saved = json.load(f)
                requested = json.loads(json.dumps(options))
                changed = {k: (saved.get(k), requested.get(k)) for k in set(saved) | set(requested)
                           if saved.get(k) != requested.get(k)}
                if changed:
                    raise ValueError(
                        f"Cannot resume the few-shot tree in {self.directory} with other options "
                        f"(option: (saved, requested)): {changed}. Pass the options it was made "
                        "with, or use another directory."
                    )
            load_checkpoint(supernet, initial)
        tree_path = os.path.join(self.directory, "tree.json")
        if os.path.exists(tree_path):
            with open(tree_path) as f:
                self.tree = PartitionTree.from_json(self.space, f.read())
        else:  # the root: the initial mask (e.g. options never trained)
            self.tree = PartitionTree(self.space, mask=supernet.get_mask())

    # === Files ===
    def _checkpoints(self, node_id):
        return os.path.join(self.directory, "nodes", node_id)

    def _save_tree(self):
        text = self.tree.to_json()
        atomic_write(os.path.join(self.directory, "tree.json"), lambda f: f.write(text.encode()))

    def node_epoch(self, node_id):
        """Epochs completed by node `node_id` (0 if it has no checkpoint)."""
        return latest_readable_checkpoint(self._checkpoints(node_id))[1]

    # === Node states ===
    def activate(self, node_id):
        """Loads node `node_id`'s latest state into the supernet."""
        if self.active != node_id:
            if latest_checkpoint(self._checkpoints(node_id)) is None:
                raise ValueError(f"Node {node_id!r} has no state yet.")
            load_checkpoint(self.supernet, self._checkpoints(node_id))
            self.active = node_id
        return self.supernet

    def _create_child(self, parent_id, child, epoch, ordinal, restart):
        """Writes the child's first state: its parent's (or the initial one)
        with the child's mask and its own path-sampling stream."""
        directory = self._checkpoints(child["id"])
        if latest_checkpoint(directory) is not None:
            return
        source = self._checkpoints("initial" if restart else parent_id)
        _, history = load_checkpoint(self.supernet, self._checkpoints(parent_id))
        if restart:
            load_checkpoint(self.supernet, source)
        self.supernet.set_mask(child["mask"])
        generator = self.supernet.seed_generator
        state = ops.convert_to_numpy(generator.state).copy()
        state[0] = state[0] + np.asarray(ordinal + 1, state.dtype) * np.asarray(7919, state.dtype)
        generator.state.assign(state)
        save_checkpoint(self.supernet, directory, epoch, history)
        self.active = None

    # === Training ===
    def fit(self, train_data, epochs, split_data=None, callbacks=None, verbose=0, **fit_kwargs):
        """Trains the whole tree (resuming whatever `directory` holds).

        Args:
            train_data: a `tf.data.Dataset` for `supernet.fit` (with
                `steps_per_epoch` in `fit_kwargs` if it repeats), or a
                callable `(initial_epoch, epochs) -> dataset` or
                `-> (dataset, steps_per_epoch)` (e.g. the recipes'
                `train_dataset`, whose epoch `e` depends on `e` only: then a
                resumed run sees the data of an uninterrupted one).
            epochs: total epochs (after `split_epochs[-1]`).
            split_data: batches for gradient matching (at least `repeats`);
                default: the batches of the epoch after the split
                (`train_data(split, split + 1)`), or `train_data`.
            callbacks: extra callbacks for every node's `fit` (they see one
                node at a time).
            verbose: passed to `fit`.

        Returns:
            the `PartitionTree`.
        """
        if int(epochs) <= self.split_epochs[-1]:
            raise ValueError(
                "Invalid value for argument `epochs`. Expected more epochs than "
                f"the last split epoch ({self.split_epochs[-1]}). Received: epochs={epochs}"
            )
        schedule = getattr(self.supernet.optimizer, "_learning_rate", None)
        if self.fix_schedule and not isinstance(schedule, LeafCosineDecay):
            raise ValueError(
                "Invalid value for argument `fix_schedule`. Expected a supernet compiled with a "
                "kerasnas.fewshot.LeafCosineDecay learning rate (its length changes per leaf). "
                f"Received: learning rate {type(schedule).__name__}"
            )
        if latest_checkpoint(self._checkpoints("0")) is None:
            load_checkpoint(self.supernet, self._checkpoints("initial"))
            save_checkpoint(self.supernet, self._checkpoints("0"), 0, {})
            self.active = None
        bounds = [0] + self.split_epochs + [int(epochs)]
        for generation, (start, stop) in enumerate(zip(bounds, bounds[1:])):
            nodes = self.tree.generation(generation)
            extra = list(callbacks or [])
            if self.fix_schedule and self._restarted(generation):
                extra.append(StretchedSchedule(self.supernet.optimizer._learning_rate, bounds[-1] - start))
            for node in nodes:
                self._train_node(node, stop, train_data, extra, verbose, fit_kwargs)
            if generation < len(self.split_epochs):
                restart = self._restarted(generation + 1)
                for node in nodes:
                    self._split_node(node, stop, train_data, split_data, restart)
        return self.tree

    def _restarted(self, generation):
        """Whether the nodes of `generation` start from the initial state."""
        last = len(self.split_epochs)
        return generation > 0 and (self.restart == "all" or (self.restart == "final" and generation == last))

    def _train_node(self, node, stop, train_data, callbacks, verbose, fit_kwargs):
        node_id = node["id"]
        if self.node_epoch(node_id) >= stop:
            return
        checkpoint = EpochCheckpoint(self._checkpoints(node_id))
        initial = checkpoint.restore(self.supernet)
        self.active = node_id
        if initial >= stop:
            return
        kwargs = dict(fit_kwargs)
        kwargs.setdefault("shuffle", False)  # batches come shuffled, or in their epoch's order
        data = train_data
        if callable(train_data):
            data = train_data(initial, stop)
            if isinstance(data, tuple):
                data, kwargs["steps_per_epoch"] = data
        self.supernet.fit(
            data,
            epochs=stop,
            initial_epoch=initial,
            # The checkpoint last: it records what the callbacks add to the logs.
            callbacks=list(callbacks or []) + [checkpoint],
            verbose=verbose,
            **kwargs,
        )

    def _candidates(self, node):
        root = self.tree.root["mask"]
        return [l for l in self.split_labels if node["mask"][l] == root[l] and len(root[l]) > 1]

    def _split_node(self, node, epoch, train_data, split_data, restart):
        node_id = node["id"]
        if not node["children"]:
            candidates = self._candidates(node)
            if not candidates:
                raise ValueError(
                    f"Cannot split node {node_id!r}: no choice among {self.split_labels} "
                    "has all its options left."
                )
            rng = np.random.default_rng([self.seed, zlib.crc32(node_id.encode())])
            if self.split_method == "gradient_matching":
                label, groups = self._match(node, epoch, train_data, split_data, candidates)
            else:
                label = candidates[int(rng.integers(len(candidates)))]
                n = len(node["mask"][label])
                indices = exhaustive_split(n) if self.split_method == "exhaustive" else random_split(
                    n, rng, self.num_groups
                )
                groups = [[node["mask"][label][i] for i in g] for g in indices]
            self.tree.split(node_id, label, groups)
            self._save_tree()
        for ordinal, child_id in enumerate(node["children"]):
            self._create_child(node_id, self.tree.nodes[child_id], epoch, ordinal, restart)

    def _match(self, node, epoch, train_data, split_data, candidates):
        """Distance matrices of every candidate choice (each saved as soon as
        computed, so a killed split resumes with the choices it lacks),
        then the rule's choice and groups."""
        node_id = node["id"]
        path = os.path.join(self.directory, "splits", f"{node_id}.json")
        scores = {}
        if os.path.exists(path):
            with open(path) as f:
                scores = json.load(f)["distances"]
        data = split_data
        if data is None:
            data = train_data(epoch, epoch + 1) if callable(train_data) else train_data
            if isinstance(data, tuple):
                data = data[0]
        elif callable(data):
            data = data(node_id)
        for label in candidates:
            if label in scores:
                continue
            self.activate(node_id)
            start = running_time()
            options, matrix = self.matcher.distances(label, data, key=node_id)
            scores[label] = {
                "options": options, "matrix": matrix.tolist(), "seconds": running_time() - start,
            }
            os.makedirs(os.path.dirname(path), exist_ok=True)
            text = json.dumps({"node": node_id, "epoch": epoch, "distances": scores}, indent=1)
            atomic_write(path, lambda f: f.write(text.encode()))
        label, groups, edge_scores = choose_edge(
            {l: np.asarray(scores[l]["matrix"]) for l in candidates}, self.rule, self.num_groups
        )
        options = scores[label]["options"]
        text = json.dumps(
            {"node": node_id, "epoch": epoch, "distances": scores, "scores": edge_scores,
             "chosen": label, "groups": [[options[i] for i in g] for g in groups]},
            indent=1,
        )
        atomic_write(path, lambda f: f.write(text.encode()))
        return label, [[options[i] for i in g] for g in groups]

    def train_seconds(self, epochs):
        """Seconds the whole tree took to train, over every
        process that trained it: each node's own epochs (the `epoch_seconds`
        its history records when `fit` got a timer such as the recipes'
        `EpochTimer`) and each gradient-matching split. None when a node's
        epochs are not all timed."""
        bounds = [0] + list(self.split_epochs) + [int(epochs)]
        total = 0.0
        for node in self.tree.nodes.values():
            first, stop = bounds[node["generation"]], bounds[node["generation"] + 1]
            own = (self.history(node["id"]).get("epoch_seconds") or [])[first:stop]
            if len(own) != stop - first or any(s is None for s in own):
                return None
            total += float(sum(own))
        splits = os.path.join(self.directory, "splits")
        for name in sorted(os.listdir(splits)) if os.path.isdir(splits) else []:
            with open(os.path.join(splits, name)) as f:
                total += sum(d.get("seconds", 0.0) for d in json.load(f)["distances"].values())
        return total

    def history(self, node_id):
        """The per-epoch logs of node `node_id`, its ancestors' epochs first."""
        path = os.path.join(self._checkpoints(node_id), "history.json")
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)["history"]

    @classmethod
    def load(cls, directory):
        """The tree written to `directory` by an earlier run (its supernet
        rebuilt from `supernet.keras`, its options from `fewshot.json`)."""
        import keras

        directory = os.fspath(directory)
        files = [os.path.join(directory, n) for n in ("supernet.keras", "fewshot.json", "tree.json")]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise ValueError(
                "Invalid value for argument `directory`. Expected the directory of a "
                f"FewShotSupernet. Received: {directory!r} (missing {missing})"
            )
        supernet = keras.saving.load_model(files[0])
        with open(files[1]) as f:
            options = json.load(f)
        return cls(supernet, directory, **options)

    def fingerprint(self):
        """A SHA-256 hex digest of the tree and of every leaf's latest
        state (its checkpoint file): equal fingerprints score every
        architecture alike (see `Supernet.fingerprint`)."""
        digest = hashlib.sha256(self.tree.to_json().encode())
        for leaf in self.tree.leaves():
            path, _ = latest_readable_checkpoint(self._checkpoints(leaf["id"]))
            digest.update(f"{leaf['id']}:".encode())
            if path is not None:
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()

    # === Using the tree ===
    @property
    def network_options(self):
        return self.supernet.network_options

    def leaf_for(self, arch):
        return self.tree.leaf_for(arch)

    def extract(self, arch, **kwargs):
        """`Supernet.extract` with the weights of `arch`'s leaf."""
        return self.activate_for(arch).extract(arch, **kwargs)

    def activate_for(self, arch):
        """Loads the state of `arch`'s leaf; returns the supernet."""
        return self.activate(self.tree.leaf_for(arch)["id"])

    def evaluate_arch(self, arch, data, **kwargs):
        """`Supernet.evaluate_arch` on `arch`'s own leaf."""
        return self.activate_for(arch).evaluate_arch(arch, data, **kwargs)

    def group_by_leaf(self, archs):
        """`{leaf id: [indices into archs]}`, leaves in id order."""
        groups = {}
        for i, arch in enumerate(archs):
            groups.setdefault(self.tree.leaf_for(arch)["id"], []).append(i)
        order = [n["id"] for n in self.tree.leaves()]
        return {k: groups[k] for k in order if k in groups}
