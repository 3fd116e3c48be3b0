"""Scoring many architectures on one trained supernet."""

import csv
import hashlib
import json
import os

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from kerasnas.callbacks.epoch_checkpoint import atomic_write
from kerasnas.ops.policy import policy_name
from kerasnas.timing import running_time



def arch_key(space, arch):
    """The string that names `arch` in result files (`space.to_string`:
    NB201's string, else the sorted JSON)."""
    return space.to_string(arch)


def parse_arch(space, arch):
    """An architecture dict from a dict or a string of `space`."""
    if isinstance(arch, str):
        try:
            return space.from_string(arch)
        except ValueError as error:
            raise ValueError(
                "Invalid value for argument `archs`. Expected architecture dicts "
                f"or strings of the space. Received: {arch!r} ({error})"
            ) from None
    return space.validate(arch)


def rank_architectures(
    supernet,
    archs,
    data,
    bn_calibration_data=None,
    bn_calibration_steps=0,
    results_path=None,
    verbose=1,
    score="accuracy",
    classes="exact",
    dtype_policy=None,
    overwrite=False,
    described=None,
):
    """Top-1 accuracy (or another `score`) of every architecture in `archs`
    with the supernet's weights: the supernet's predicted ranking.

    The evaluation and calibration batches are read once and kept in memory;
    each architecture then costs one assignment of the supernet's `path`
    variable, `bn_calibration_steps` calibration passes (reset and recompute
    its BN statistics, SPOS protocol) and one forward pass over the batches,
    all through functions traced once (no retrace per architecture). The
    supernet's own BN statistics are restored at the end. With a
    batch-statistics supernet (`bn="batch"`, the reference setting)
    evaluation normalizes with each evaluation batch's moments, so scores
    depend on the batch size (the reference code uses 512), and calibration
    is unnecessary.

    With `results_path`, a CSV file (`arch,accuracy,loss,seconds`; the
    seconds of each scoring, summed over processes by `ranking_seconds`;
    files from before that column are still read), every result is
    appended as soon as it is computed, and architectures already in the
    file are not scored again: a run killed half way and started again ends
    with the file an uninterrupted run writes. Those scores are reused only
    when they were computed on the same weights, images, calibration and
    settings: a record of what produced them is written beside the file
    (`scoring_record`, `<results_path stem>.json`) and a file whose record
    differs (or that has none) is refused with a ValueError naming what
    changed, unless `overwrite=True` discards it. Non-finite scores are
    never written. Under a
    `tf.distribute` strategy (the supernet built in its scope) the batches
    are split across replicas.

    Args:
        supernet: a trained `kerasnas.Supernet`, or a
            `kerasnas.fewshot.FewShotSupernet`: each architecture is then
            scored on its own leaf (leaf by leaf).
        archs: architectures (dicts or strings of `supernet.space`).
        data: finite `tf.data.Dataset` of `(x, y)` or `(x, y, index)` batches,
            labels as class indices or one-hot.
        bn_calibration_data: dataset of training batches for recalibration.
        bn_calibration_steps: calibration batches per architecture (0: none).
        results_path: CSV file to append results to and resume from.
        verbose: 1 shows a progress bar, 0 nothing.
        score: `"accuracy"` (top-1, in [0, 1]) or `"loss"` (the negative
            mean cross-entropy, so that higher is better either way).
        classes: architectures of one class of
            `space.equivalence_key(arch, classes)` are scored once and every
            member reported with that score (and written to `results_path`).
            `"exact"` (default) merges only architectures that compute the
            same function in the supernet (NAS-Bench-201: ops on edges that
            cannot reach the output ignored; 12,205 of 15,625 cells), so the
            scores are those of scoring every member; `"isomorphic"`
            (NAS-Bench-201's 6,466 classes) is an approximation in a
            supernet (see `NasBench201.equivalence_key`); None scores every
            architecture.
        dtype_policy: score in this Keras dtype policy, e.g.
            `"mixed_bfloat16"` (None: the supernet's own). Scoring then runs
            on a twin of the supernet built with that policy and holding its
            weights (float32 variables, BN statistics and logits; the
            convolutions in bfloat16); the supernet itself is untouched.
            `tools/bench_rank.py --dtype-policy` measures the speed and the
            Kendall tau between the two dtypes' scores.
        overwrite: discard the scores already in `results_path` (and their
            record) instead of reusing them.
        described: optional JSON-able dict naming the inputs for people
            (e.g. `{"checkpoint": path, "data": name, "split": "test"}`):
            kept in the record and quoted when a file is refused, never
            compared.

    Returns:
        numpy float array, the score of each architecture, in the order of
        `archs`.
    """
    check_score(score)
    from kerasnas.fewshot import FewShotSupernet

    few_shot = supernet if isinstance(supernet, FewShotSupernet) else None
    if few_shot is not None:
        supernet = few_shot.supernet
    space = supernet.space
    archs = [parse_arch(space, a) for a in archs]
    if not archs:
        raise ValueError(
            "Invalid value for argument `archs`. Expected at least one "
            "architecture. Received: archs=[]"
        )
    keys = [arch_key(space, a) for a in archs]
    scorer = ArchitectureScorer(
        supernet, data, bn_calibration_data, bn_calibration_steps, dtype_policy=dtype_policy
    )
    done = {}
    if results_path:
        record = scoring_record(
            few_shot or supernet, scorer, classes=classes, dtype_policy=dtype_policy,
            described=described,
        )
        done = _reusable_results(results_path, record, overwrite)
    todo = [i for i, k in enumerate(keys) if k not in done]
    if few_shot is not None:  # leaf by leaf: each leaf's state loaded once
        todo = [i for group in few_shot.group_by_leaf([archs[i] for i in todo]).values() for i in (todo[j] for j in group)]
    groups = _classes(space, archs, keys, todo, done, classes, few_shot)
    progress = keras.utils.Progbar(len(archs), unit_name="arch") if verbose else None
    count = len(archs) - len(todo)
    if progress is not None and count:
        progress.update(count)
    writer = _ResultWriter(results_path) if results_path else None
    try:
        with scorer:
            for members, known in groups:
                seconds = 0.0
                if known is None:
                    start = running_time()
                    if few_shot is not None:
                        leaf = few_shot.active
                        few_shot.activate_for(archs[members[0]])
                        if few_shot.active != leaf:
                            scorer.sync()  # a twin takes the new leaf's weights
                    known = scorer.score(archs[members[0]])
                    seconds = running_time() - start
                finite = bool(np.all(np.isfinite(known)))
                for n, i in enumerate(members):
                    done[keys[i]] = known
                    if writer is not None and finite:  # a NaN is scored again
                        writer.append(keys[i], *known, seconds=seconds if n == 0 else 0.0)
                count += len(members)
                if progress is not None:
                    progress.update(count, [("accuracy", known[0])])
    finally:
        if writer is not None:
            writer.close()
        if few_shot is not None:
            few_shot.active = None  # the scorer restored another leaf's statistics
    column = SCORES.index(score)
    values = np.array([done[k][column] for k in keys], dtype="float64")
    return values if score == "accuracy" else -values


SCORES = ("accuracy", "loss")


def _classes(space, archs, keys, todo, done, rule, few_shot):
    """`[(member indices, known (accuracy, loss) or None)]` covering `todo`:
    one entry per equivalence class (within a few-shot leaf), in order of
    first appearance; `known` is the score of a member already done."""
    if rule is None:
        return [([i], None) for i in todo]
    space.check_equivalence_rule(rule)

    def class_key(i):
        leaf = few_shot.leaf_for(archs[i])["id"] if few_shot is not None else None
        return leaf, space.equivalence_key(archs[i], rule)

    pending = set(todo)
    known = {}
    for i, key in enumerate(keys):
        if i not in pending and key in done:
            known.setdefault(class_key(i), done[key])
    groups = {}
    for i in todo:
        groups.setdefault(class_key(i), []).append(i)
    return [(members, known.get(key)) for key, members in groups.items()]


def check_score(score):
    """Validates a ranking `score` name (`"accuracy"` or `"loss"`)."""
    if score not in SCORES:
        raise ValueError(
            f"Invalid value for argument `score`. Expected one of {list(SCORES)}. "
            f"Received: score={score!r}"
        )
    return score


class ArchitectureScorer:
    """Scores architectures on a supernet with batches kept in memory.

    Use as a context manager: the supernet's path and BN statistics are
    restored on exit. `score(arch)` returns `(accuracy, mean loss)`. With
    `dtype_policy` other than the supernet's, scoring runs on a twin built
    with that policy (see `rank_architectures`); `sync()` copies the
    supernet's weights into it again (done on entering).
    """

    def __init__(
        self, supernet, data, bn_calibration_data=None, bn_calibration_steps=0, dtype_policy=None
    ):
        steps = int(bn_calibration_steps or 0)
        if steps < 0:
            raise ValueError(
                "Invalid value for argument `bn_calibration_steps`. Expected an "
                f"int >= 0. Received: bn_calibration_steps={bn_calibration_steps}"
            )
        if steps and bn_calibration_data is None:
            raise ValueError(
                "Invalid value for argument `bn_calibration_data`. Expected a "
                "tf.data.Dataset of training batches when bn_calibration_steps "
                "> 0. Received: bn_calibration_data=None"
            )
        if not isinstance(data, tf.data.Dataset):
            raise ValueError(
                "Invalid value for argument `data`. Expected a finite, batched "
                f"tf.data.Dataset. Received: data={type(data).__name__}"
            )
        if data.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                "Invalid value for argument `data`. Expected a finite dataset "
                "(an evaluation set). Received: an infinite dataset (use .take(n))"
            )
        check_finite_weights(supernet)
        self.supernet = supernet
        self.twin = _twin(supernet, dtype_policy)
        self.strategy = supernet.distribute_strategy
        self.replicas = self.strategy.num_replicas_in_sync
        # SHA-256 of the batches read (values, dtypes, batch shapes), by role.
        self.fingerprints = {"data": None, "calibration": None}
        self.batches = self._materialize(data)
        if not self.batches:
            raise ValueError(
                "Invalid value for argument `data`. Expected a non-empty dataset. "
                "Received: an empty dataset"
            )
        self.calibration = []
        if steps:
            supernet.check_recalibration()
        self.bns = self.model._tracking_batch_norms() if steps else []
        if self.bns:
            self.calibration = self._materialize(bn_calibration_data.take(steps), "calibration")
            if len(self.calibration) < steps:
                raise ValueError(
                    "Invalid value for argument `bn_calibration_data`. Expected "
                    f"at least bn_calibration_steps={steps} batches. Received: "
                    f"{len(self.calibration)}"
                )
        self._eval_function = None
        self._saved = None

    def _materialize(self, dataset, name="data"):
        def strip(*batch):
            x, y = batch[0], batch[1]
            return x, y

        dataset = dataset.map(strip)
        digest = hashlib.sha256()
        for x, y in dataset:  # what is scored, batch by batch
            for value in (x, y):
                value = np.ascontiguousarray(value.numpy())
                digest.update(f"{value.dtype}:{value.shape};".encode())
                digest.update(value.tobytes())
        self.fingerprints[name] = digest.hexdigest()
        if self.replicas > 1:
            dataset = self.strategy.experimental_distribute_dataset(dataset)
        return list(dataset)

    @property
    def model(self):
        """The network scored: the supernet, or its twin in another dtype."""
        return self.supernet if self.twin is None else self.twin

    def sync(self):
        """Copies the supernet's variables into the twin (if any)."""
        if self.twin is not None:
            for target, source in zip(self.twin.variables, self.supernet.variables):
                target.assign(source)

    def __enter__(self):
        supernet = self.supernet
        self._saved = (
            [ops.convert_to_numpy(v) for v in supernet.path_variables()],
            [ops.convert_to_numpy(v) for v in supernet._bn_statistics()],
        )
        self.sync()
        return self

    def __exit__(self, *exc):
        path, statistics = self._saved
        for variable, value in zip(self.supernet.path_variables(), path):
            variable.assign(value)
        for variable, value in zip(self.supernet._bn_statistics(), statistics):
            variable.assign(value)
        return False

    def score(self, arch):
        """`(top-1 accuracy, mean cross-entropy)` of `arch` on the data."""
        supernet = self.model
        supernet.set_path(arch)
        if self.bns:
            supernet._recalibrate(self.calibration)
        function = self._evaluate()
        totals = np.zeros(3)
        for x, y in self.batches:
            totals += np.asarray(function(x, y), dtype="float64")
        correct, loss, count = totals
        if not np.isfinite(loss):
            # Non-finite logits: argmax would still "hit" some labels.
            return float("nan"), float(loss / count)
        return float(correct / count), float(loss / count)

    def _evaluate(self):
        if self._eval_function is None:
            supernet, strategy = self.model, self.strategy

            def step(x, y):
                logits = ops.cast(supernet(x, training=False), "float32")
                if len(y.shape) == len(logits.shape):
                    labels = ops.argmax(y, axis=-1)
                else:
                    labels = ops.reshape(y, (-1,))
                labels = ops.cast(labels, "int32")
                hit = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels), "float32")
                loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
                count = ops.cast(ops.shape(labels)[0], "float32")
                return ops.stack([ops.sum(hit), ops.sum(loss), count])

            def function(x, y):
                values = strategy.run(step, args=(x, y))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

            self._eval_function = supernet.graph_function(function, reduce_retracing=True)
        return self._eval_function


def _twin(supernet, dtype_policy):
    """A copy of `supernet` built with `dtype_policy` (its weights copied
    by `ArchitectureScorer.sync`), or None when that is its own policy."""
    if dtype_policy is None:
        return None
    wanted = policy_name(dtype_policy)
    own = supernet.network_dtype_policy or keras.config.dtype_policy().name
    if wanted == own:
        return None
    config = {**supernet.get_config(), "dtype_policy": wanted}
    with supernet.distribute_strategy.scope():
        twin = type(supernet).from_config(config)
    if [tuple(v.shape) for v in twin.variables] != [tuple(v.shape) for v in supernet.variables]:
        raise ValueError(
            f"Invalid value for argument `dtype_policy`. A {type(supernet).__name__} "
            f"rebuilt with dtype_policy={wanted!r} does not hold the same variables "
            "as the supernet, so it cannot score with its weights. Received: "
            f"dtype_policy={dtype_policy!r}"
        )
    return twin


def check_finite_weights(supernet):
    """Raises `FloatingPointError` when any weight or BN statistic of
    `supernet` is NaN or infinite (its training diverged): every score
    would be meaningless."""
    variables = list(supernet.network_variables) + list(supernet._bn_statistics())
    bad = [v for v in variables if not np.all(np.isfinite(ops.convert_to_numpy(v)))]
    if bad:
        raise FloatingPointError(
            f"The supernet's weights are not finite ({len(bad)} of {len(variables)} "
            f"variables, e.g. {bad[0].path!r}): its training diverged, and every "
            "architecture would score NaN. Restore a checkpoint from before the "
            "divergence (training stops at the first non-finite loss and keeps it)."
        )


def scoring_record(supernet, scorer, classes="exact", dtype_policy=None, described=None):
    """What produced a file of scores: the fingerprints of the weights
    (`Supernet.fingerprint`), of the evaluation and calibration batches
    (values and batch shapes: source, split, image size, normalisation and
    batch size all change them), the number of calibration batches, the
    scoring dtype and equivalence classes; `described` is kept for
    people and never compared."""
    return {
        "format": _RECORD_FORMAT,
        "weights": supernet.fingerprint(),
        "data": scorer.fingerprints["data"],
        "calibration": scorer.fingerprints["calibration"],
        "bn_calibration_steps": len(scorer.calibration),
        "dtype_policy": policy_name(dtype_policy),
        "classes": classes,
        "described": dict(described or {}),
    }


_RECORD_FORMAT = 1
_COMPARED = ("format", "weights", "data", "calibration", "bn_calibration_steps", "dtype_policy", "classes")


def record_path(results_path):
    """The record of a results file: `scores.csv` -> `scores.json`."""
    root, _ = os.path.splitext(os.fspath(results_path))
    return root + ".json"


def _reusable_results(results_path, record, overwrite):
    """The results of `results_path` that `record` may reuse (all or none),
    after writing the record of a new file; ValueError when the file's own
    record differs or is missing, unless `overwrite`."""
    results_path, meta = os.fspath(results_path), record_path(results_path)
    if overwrite:
        for path in (results_path, meta):
            if os.path.exists(path):
                os.remove(path)
    done = _read_results(results_path)
    saved = None
    if os.path.exists(meta):
        try:
            with open(meta) as f:
                saved = json.load(f)
        except ValueError:
            saved = {"format": "unreadable"}
    if done and saved is None:
        raise ValueError(
            f"Cannot reuse the {len(done)} scores in {results_path}: nothing records what "
            "produced them (no record beside them, e.g. written by an older kerasnas). "
            "Rank into another output, or discard them (overwrite=True; `kerasnas rank "
            "--overwrite`)."
        )
    if saved is not None:
        changed = [key for key in _COMPARED if saved.get(key) != record.get(key)]
        if changed and done:  # (no scores yet: the record is simply rewritten)
            was = saved.get("described") or {}
            raise ValueError(
                f"Cannot reuse the {len(done)} scores in {results_path}: they were computed "
                f"with other {', '.join(_WHAT[k] for k in changed)}"
                + (f" (recorded: {json.dumps(was, sort_keys=True)})" if was else "")
                + ". Rank into another output, or discard them (overwrite=True; "
                "`kerasnas rank --overwrite`)."
            )
    if saved != record:  # a new file, or the same inputs described anew
        directory = os.path.dirname(os.path.abspath(meta))
        os.makedirs(directory, exist_ok=True)
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        atomic_write(meta, lambda f: f.write(text.encode()))
    return done


_WHAT = {
    "format": "record format", "weights": "weights (checkpoint)",
    "data": "evaluation images (data, split, image size or batch size)",
    "calibration": "BN calibration images", "bn_calibration_steps": "BN calibration steps",
    "dtype_policy": "scoring dtype policy", "classes": "equivalence classes",
}


def read_results(path):
    """`{arch string: (accuracy, loss)}` from a `results_path` CSV file."""
    return _read_results(path)


def _read_results(path):
    results = {}
    if not os.path.exists(path):
        return results
    with open(path, newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        # A run killed mid-write leaves a partial last line: drop it.
        text = text[: text.rfind("\n") + 1]
        with open(path, "w", newline="") as f:
            f.write(text)
    rows = _checked_rows(path, text)
    for row in rows[1:]:
        results[row[0]] = (float(row[1]), float(row[2]))
    return results


def _checked_rows(path, text):
    rows = list(csv.reader(text.splitlines()))
    if rows and tuple(rows[0]) not in (_HEADER, _HEADER[:3]):
        raise ValueError(
            "Invalid value for argument `results_path`. Expected a CSV file with "
            f"header {','.join(_HEADER)} (written by rank_architectures). "
            f"Received: {path} with header {rows[0]}"
        )
    return rows


def ranking_seconds(path):
    """Seconds spent scoring the architectures of a `results_path` CSV file,
    summed over every process that wrote to it (a resumed ranking's cost is
    whole); None for a file from before the `seconds` column."""
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = _checked_rows(path, f.read())
    if not rows or len(rows[0]) < len(_HEADER):
        return None
    return float(sum(float(row[3]) for row in rows[1:] if len(row) > 3))


# `seconds`: the running time (`kerasnas.timing`) of the row's scoring (0
# for the other members of an equivalence class, scored once).
_HEADER = ("arch", "accuracy", "loss", "seconds")


class _ResultWriter:
    def __init__(self, path):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self.columns = len(_HEADER)
        if not new:  # a file from before the seconds column keeps its three
            with open(path, newline="") as f:
                self.columns = len(next(csv.reader(f)))
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(_HEADER)
            self.file.flush()

    def append(self, key, accuracy, loss, seconds=0.0):
        row = [key, repr(float(accuracy)), repr(float(loss)), repr(float(seconds))]
        self.writer.writerow(row[: self.columns])
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self):
        self.file.close()
