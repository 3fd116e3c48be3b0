"""Image-classification datasets as `tf.data` pipelines, with sample indices.

Sources:

- `"digits"`: scikit-learn's bundled 8x8 digits (offline, 1,797 images,
  10 classes). Pixel values 0..16 are scaled to [0, 1] and repeated over
  3 channels. The train/test split is fixed: a permutation with
  `numpy.random.default_rng(0)`, whose first `n // 5` (359) samples form the
  test set and the other 1,438 the train set (each kept in original order).
- `"cifar10"`, `"cifar100"` and any other TensorFlow Datasets image
  classification dataset with `image` and `label` features (e.g.
  `"imagenet2012"`, which must be prepared in the TFDS data directory):
  `load` streams them from TFDS' files (nothing is held in memory beyond the
  shuffle buffer); `load_arrays` reads a split into NumPy.
- A path to a `.npz` file with keys `x_train`, `y_train`, `x_test`, `y_test`
  (images `(n, h, w[, c])`, uint8 in [0, 255] or float in [0, 1]) and,
  optionally, `label_names` (one per class) or `num_classes`. The file is
  checked when it is first read: images numeric, finite and in range, one
  label per image, every label an integer in [0, number of classes). The
  number of classes is the declared one, else `max(label) + 1` provided
  every class below it has an example (a stray label is refused, not taken
  for a new class).

Labels and indices are int64. Images are float32, channels last.
"""

import functools
import json
import os
import zipfile

import numpy as np
import tensorflow as tf

from kerasnas.data import augment as augment_lib

DATASET_NAMES = ("digits", "cifar10", "cifar100")
SPLITS = ("train", "test", "search_train", "search_valid")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_TFDS_INFO = {
    "cifar10": (10, augment_lib.CIFAR10_MEAN, augment_lib.CIFAR10_STD),
    "cifar100": (100, augment_lib.CIFAR100_MEAN, augment_lib.CIFAR100_STD),
}
_TFDS_SIZES = {"train": 50000, "test": 10000}
_DIGITS_SEED = 0
# Normalisation of other TFDS datasets: the ImageNet statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# A streamed split larger than this is shuffled with a buffer of this size.
STREAM_SHUFFLE_BUFFER = 100_000
# Sources `load` streams from TensorFlow Datasets' files.
_STREAMED_KINDS = ("cifar10", "cifar100", "tfds")


def _error(name, expected, value):
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {name}={value!r}"
    )


def _check_int(name, value, minimum, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _error(name, f"an int >= {minimum}", value)
    if value < minimum:
        raise _error(name, f"an int >= {minimum}", value)


def _resolve(name_or_path):
    """Returns `("digits"|"cifar10"|"cifar100"|"npz"|"tfds", path or TFDS
    name or None)`."""
    try:
        text = os.fspath(name_or_path)
    except TypeError:
        text = None
    if isinstance(text, str):
        if text.lower() in DATASET_NAMES:
            return text.lower(), None
        if text.endswith(".npz") and os.path.isfile(text):
            return "npz", text
        if text and not text.endswith(".npz") and os.sep not in text and _tfds_knows(text):
            return "tfds", text
    raise _error(
        "name_or_path",
        f"one of {DATASET_NAMES}, a TensorFlow Datasets image-classification "
        "name (e.g. 'imagenet2012') or the path to an existing .npz file",
        name_or_path,
    )


@functools.lru_cache(maxsize=None)
def _tfds_knows(name):
    try:
        import tensorflow_datasets as tfds

        return name.split(":")[0] in tfds.list_builders(with_community_datasets=False)
    except Exception:  # no tensorflow_datasets, or a broken catalog
        return False


def _tfds_name(kind, path):
    return path if kind == "tfds" else kind


def is_streamed(name_or_path):
    """Whether `load` streams this dataset from TensorFlow Datasets' files
    (True for every TFDS name) instead of holding it in memory."""
    return _resolve(name_or_path)[0] in _STREAMED_KINDS


def _check_split(split, allowed=SPLITS):
    if split not in allowed:
        raise _error("split", f"one of {allowed}", split)


def _npz_error(path, expected, problem):
    return ValueError(
        f"Invalid value for argument `name_or_path`. Expected {expected}. "
        f"Received: name_or_path={str(path)!r} ({problem})"
    )


_NPZ_EXPECTED = (
    f"an .npz file written by numpy.savez with keys {_NPZ_KEYS} (images "
    "(n, height, width[, channels]), uint8 in [0, 255] or float in [0, 1]; "
    "integer labels (n,)) and optionally `label_names` or `num_classes`"
)


def not_a_zip(path):
    """Why the file at `path` is no zip archive (an `.npz` or `.keras`
    file): "an empty file" or its first bytes; None for a zip archive."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):  # every zip archive does
        return None
    return "an empty file" if not head else f"its first bytes are {head!r}"


def _open_npz(path):
    """`numpy.load` of an `.npz` file; a file that is not one is refused by
    name (never numpy's advice to allow pickles)."""
    problem = not_a_zip(path)
    if problem:
        raise _npz_error(path, _NPZ_EXPECTED, f"not a zip archive: {problem}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _npz_error(path, _NPZ_EXPECTED, f"not a readable .npz archive: {error}") from None


def _npz_array(archive, path, key):
    try:
        return archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        # Object arrays (pickles) and truncated members.
        raise _npz_error(path, _NPZ_EXPECTED, f"key {key!r} cannot be read: {error}") from None


def _read_npz(path, split):
    """The images and labels of `split`, checked against the whole file
    (`_npz_meta`): a bad file is refused whichever split is read."""
    _npz_meta(path, *_stat(path))  # checks this version of the file once
    with _open_npz(path) as archive:
        x = _npz_array(archive, path, f"x_{split}")
        y = _npz_array(archive, path, f"y_{split}")
    return _images(x), y.reshape(-1).astype("int64")


def _stat(path):
    status = os.stat(path)
    return status.st_mtime_ns, status.st_size


@functools.lru_cache(maxsize=32)
def _npz_meta(path, mtime_ns, size):
    """Checks a whole `.npz` file once per version of it (keyed by its
    modification time and size); returns `{"num_classes", "classes_from",
    "image_shape"}`.

    Raises:
        ValueError naming the file, the key and, for labels and pixels, the
        first offending index and value.
    """
    del mtime_ns, size  # the cache key
    with _open_npz(path) as archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            raise _error(
                "name_or_path",
                f"an .npz file with keys {_NPZ_KEYS} (missing {missing})",
                path,
            )
        arrays = {key: _npz_array(archive, path, key) for key in _NPZ_KEYS}
        declared = _declared_classes(archive, path)
    meta = {"image_shape": None}
    for split in ("train", "test"):
        x = _checked_images(arrays[f"x_{split}"], path, split)
        shape = tuple(x.shape[1:])  # (h, w, c): `_images` adds a missing channel axis
        if len(x) and meta["image_shape"] not in (None, shape):
            raise _npz_error(
                path, "x_train and x_test images of one shape",
                f"x_train images are {meta['image_shape']}, x_test images {shape}",
            )
        if len(x):
            meta["image_shape"] = shape
    labels = {
        split: _integer_labels(arrays[f"y_{split}"], path, split, len(arrays[f"x_{split}"]))
        for split in ("train", "test")
    }
    if declared is not None:
        meta["num_classes"], meta["classes_from"] = declared
    else:
        meta["num_classes"], meta["classes_from"] = _inferred_classes(labels, path), "labels"
    for split, y in labels.items():
        _check_label_range(y, path, split, meta)
    if meta["image_shape"] is None:
        raise _npz_error(path, _NPZ_EXPECTED, "x_train and x_test hold no images")
    return meta


def _declared_classes(archive, path):
    """`(count, "label_names" | "num_classes")` the file declares, or None."""
    if "label_names" in archive.files:
        names = _npz_array(archive, path, "label_names")
        if names.ndim != 1 or not len(names):
            raise _npz_error(
                path, "`label_names` a non-empty 1-D array of class names",
                f"label_names of shape {names.shape}",
            )
        return len(names), "label_names"
    if "num_classes" in archive.files:
        value = _npz_array(archive, path, "num_classes")
        if value.shape != () or value.dtype.kind not in "iu" or int(value) < 1:
            raise _npz_error(
                path, "`num_classes` a positive integer scalar",
                f"num_classes={value!r}",
            )
        return int(value), "num_classes"
    return None


def _checked_images(x, path, split):
    """`_images(x)` of images that are integers in [0, 255], or floats
    finite and in [0, 1]; anything else is refused."""
    key = f"x_{split}"
    if x.ndim not in (3, 4):
        raise _npz_error(
            path, f"`{key}` of shape (n, height, width) or (n, height, width, channels)",
            f"{key} of shape {x.shape}",
        )
    kind = x.dtype.kind
    if kind in "iu" and x.dtype != np.uint8:
        if x.size and (x.min() < 0 or x.max() > 255):
            flat = int(np.flatnonzero((x < 0) | (x > 255))[0])
            raise _npz_error(
                path, f"`{key}` integer pixels in [0, 255]",
                f"{key} holds {x.flat[flat]} at flat index {flat}",
            )
    elif kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            image = int(np.argwhere(~finite)[0][0])
            raise _npz_error(
                path, f"`{key}` finite pixels",
                f"image {image} of {key} holds {x[image][~finite[image]].flat[0]}",
            )
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            image = int(np.argwhere((x < 0.0) | (x > 1.0))[0][0])
            raise _npz_error(
                path, f"`{key}` float pixels in [0, 1] (or uint8 in [0, 255])",
                f"image {image} of {key} has values in [{x[image].min():g}, "
                f"{x[image].max():g}]",
            )
    elif x.dtype != np.uint8:
        raise _npz_error(
            path, f"`{key}` numeric images (uint8 or float)", f"{key} of dtype {x.dtype}"
        )
    return _images(x)


def _images(x):
    """Checked images as the loaders return them: integers as uint8,
    `(n, h, w)` with a channel axis."""
    if x.dtype.kind in "iu" and x.dtype != np.uint8:
        x = x.astype(np.uint8)
    return x[..., None] if x.ndim == 3 else x


def _integer_labels(y, path, split, count):
    key = f"y_{split}"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _npz_error(
            path, f"`{key}` class indices of shape (n,) (not one-hot)", f"{key} of shape {y.shape}"
        )
    if len(y) != count:
        raise _npz_error(
            path, f"one label per image in `{key}`",
            f"{count} images in x_{split}, {len(y)} labels in {key}",
        )
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise _npz_error(path, f"`{key}` integer class indices", f"{key}[{index}] = {y[index]!r}")
    elif y.dtype.kind not in "iu":
        raise _npz_error(
            path, f"`{key}` integer class indices", f"{key} of dtype {y.dtype}"
        )
    return y.astype("int64")


def _inferred_classes(labels, path):
    """`max(label) + 1`, refused where classes below it have no example (a
    stray label would otherwise add classes)."""
    every = np.concatenate(list(labels.values()))
    if not every.size:
        raise _npz_error(path, _NPZ_EXPECTED, "y_train and y_test hold no labels")
    if every.min() < 0:
        return 1  # _check_label_range names the negative label
    count = int(every.max()) + 1
    seen = np.bincount(every, minlength=count)
    empty = np.flatnonzero(seen == 0)
    if empty.size:
        split, index = next(
            (s, int(np.flatnonzero(y == count - 1)[0]))
            for s, y in labels.items() if (y == count - 1).any()
        )
        raise _npz_error(
            path, "labels 0..n-1 with an example of every class, or the class count "
            "declared in the file (`label_names` or `num_classes`)",
            f"y_{split}[{index}] = {count - 1} makes {count} classes, but {empty.size} of "
            f"them have no example ({_ranges(empty)})",
        )
    return count


def _ranges(values):
    parts, start = [], None
    for k, v in enumerate(values):
        if start is None:
            start = v
        if k + 1 == len(values) or values[k + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}..{v}")
            start = None
    return ", ".join(parts[:5]) + (", ..." if len(parts) > 5 else "")


def _check_label_range(y, path, split, meta):
    classes = meta["num_classes"]
    bad = (y < 0) | (y >= classes)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise _npz_error(
            path, f"labels in [0, {classes}) ({classes} classes, from "
            f"{meta['classes_from']})", f"y_{split}[{index}] = {y[index]}",
        )


def _digits(split):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    x = np.repeat(x[..., None], 3, axis=-1)
    order = np.random.default_rng(_DIGITS_SEED).permutation(len(x))
    num_test = len(x) // 5
    rows = np.sort(order[:num_test] if split == "test" else order[num_test:])
    return x[rows], digits.target[rows]


def _tfds(name, split, data_dir):
    import tensorflow_datasets as tfds

    ds = tfds.load(
        name, split=_tfds_split(split, _tfds_splits(name, data_dir)), as_supervised=True,
        data_dir=data_dir,
    )
    xs, ys = [], []
    for x, y in tfds.as_numpy(ds.batch(4096)):
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def load_arrays(name_or_path, split="train", data_dir=None, indices_file=None):
    """Loads one split of a dataset as NumPy arrays (no pre-processing).

    Args:
        name_or_path: `"digits"`, `"cifar10"`, `"cifar100"`, or the path to
            an `.npz` file with keys `x_train`, `y_train`, `x_test`, `y_test`.
        split: `"train"`, `"test"`, or NAS-Bench-201's `"search_train"` /
            `"search_valid"` (the halves of `"train"`, `nb201_split`'s
            default seed 0, or `indices_file`'s).
        data_dir: Optional TensorFlow Datasets data directory.
        indices_file: the search halves' index file (see `load`).

    Returns:
        A tuple `(x, y)`: `x` of shape `(n, height, width, channels)`, uint8
        for CIFAR and uint8 `.npz` files, float32 in [0, 1] for `"digits"`;
        `y` int64 of shape `(n,)`.

    Example:

    ```python
    x, y = kerasnas.data.load_arrays("digits", "test")  # (359, 8, 8, 3)
    ```
    """
    kind, path = _resolve(name_or_path)
    _check_split(split)
    if split.startswith("search_"):
        x, y = load_arrays(name_or_path, "train", data_dir=data_dir)
        index = _search_half(split, len(x), indices_file)
        return x[index], y[index]
    if kind == "digits":
        x, y = _digits(split)
    elif kind == "npz":
        x, y = _read_npz(path, split)
    else:
        x, y = _tfds(_tfds_name(kind, path), split, data_dir)
    return x, np.asarray(y).astype("int64").reshape(-1)


def _to_unit(x):
    """Scales uint8 images to [0, 1] floats; leaves float images as they are."""
    if np.dtype(x.dtype) == np.uint8:
        return x.astype("float32") / 255.0
    return np.asarray(x, "float32")


def info(name_or_path, data_dir=None):
    """Describes a dataset without building a pipeline.

    Normalisation statistics are the NAS-Bench-201 constants for CIFAR-10/100
    and for `.npz` files that look like CIFAR-10 (32x32x3, 10 classes);
    otherwise the per-channel mean/std of the train split scaled to [0, 1].

    Args:
        name_or_path: A dataset name or `.npz` path, as in `load`.
        data_dir: Optional TensorFlow Datasets data directory (read for
            TFDS datasets other than CIFAR, whose sizes are known).

    Returns:
        A dict with `num_classes` (int), `image_shape` (native
        `(height, width, channels)`; None for sizes that vary, as
        ImageNet's), `num_examples` (a dict mapping each of
        `"train"`, `"test"`, `"search_train"`, `"search_valid"` to a count),
        `mean` and `std` (per-channel tuples used by `normalize=True`).

    Example:

    ```python
    kerasnas.data.info("cifar10")["num_examples"]["search_train"]  # 25000
    ```
    """
    kind, path = _resolve(name_or_path)
    if kind in _TFDS_INFO:
        classes, mean, std = _TFDS_INFO[kind]
        shape, sizes = (32, 32, 3), dict(_TFDS_SIZES)
    elif kind == "tfds":
        classes, shape, sizes = _tfds_info(path, data_dir)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        x_train, y_train = load_arrays(name_or_path, "train")
        _, y_test = load_arrays(name_or_path, "test")
        if kind == "npz":  # the count the file declares, or its checked labels'
            classes = _npz_meta(path, *_stat(path))["num_classes"]
        else:
            classes = int(max(y_train.max(initial=-1), y_test.max(initial=-1)) + 1)
        shape, sizes = tuple(x_train.shape[1:]), {
            "train": len(y_train),
            "test": len(y_test),
        }
        if kind == "npz" and shape == (32, 32, 3) and classes == 10:
            mean, std = augment_lib.CIFAR10_MEAN, augment_lib.CIFAR10_STD
        else:
            x_train = _to_unit(x_train)
            mean = tuple(float(v) for v in x_train.mean(axis=(0, 1, 2)))
            std = tuple(float(v) for v in x_train.std(axis=(0, 1, 2)))
    sizes["search_train"] = sizes["train"] // 2
    sizes["search_valid"] = sizes["train"] - sizes["train"] // 2
    return {
        "num_classes": classes,
        "image_shape": shape,
        "num_examples": sizes,
        "mean": mean,
        "std": std,
    }


def _tfds_info(name, data_dir):
    """`(num_classes, image_shape, {"train": n, "test": n})` of a TFDS
    dataset from its builder's metadata (no download). The "test" split is
    TFDS' "test", or "validation" where there is none (ImageNet)."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise _error("name_or_path", "a TFDS dataset with 'image' and 'label' features", name)
    splits = builder.info.splits
    sizes = {}
    for split in ("train", "test"):
        tfds_split = _tfds_split(split, splits)
        sizes[split] = int(splits[tfds_split].num_examples) if tfds_split in splits else 0
    shape = tuple(features["image"].shape)
    return int(features["label"].num_classes), shape, sizes


def _tfds_split(split, splits=None):
    if split == "test" and splits is not None and "test" not in splits and "validation" in splits:
        return "validation"
    return split


def stream(name_or_path, split="train", data_dir=None, limit=None, indices_file=None):
    """A split as an unbatched `tf.data.Dataset` of raw `(image, label,
    index)` in source order, streamed from a TFDS dataset's files (arrays
    for the other sources): `index` is the position in the source split
    (`"train"` for the search halves, which are selected by a membership
    table), `limit` keeps the first `limit` samples of the split."""
    kind, path = _resolve(name_or_path)
    _check_split(split)
    _check_int("limit", limit, 0)
    source = "test" if split == "test" else "train"
    if kind not in _STREAMED_KINDS:
        x, y = load_arrays(name_or_path, source, data_dir=data_dir)
        index = np.arange(len(x), dtype="int64")
        if split.startswith("search_"):
            index = _search_half(split, len(x), indices_file)
        if limit is not None:
            index = index[:limit]
        return tf.data.Dataset.from_tensor_slices((x[index], y[index].astype("int64"), index))
    import tensorflow_datasets as tfds

    name = _tfds_name(kind, path)
    ds = tfds.load(
        name, split=_tfds_split(source, _tfds_splits(name, data_dir)), as_supervised=True,
        shuffle_files=False, data_dir=data_dir,
    )
    # Read in order (TFDS interleaves files with cycle length 1 when not
    # shuffling them), so that the running count is the sample's position.
    ds = ds.enumerate().map(
        lambda i, example: (example[0], tf.cast(example[1], tf.int64), i),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
    )
    if split.startswith("search_"):
        size = info(name_or_path, data_dir)["num_examples"]["train"]
        member = np.zeros(size, bool)
        member[_search_half(split, size, indices_file)] = True
        member = tf.constant(member)
        ds = ds.filter(lambda x, y, i: tf.gather(member, tf.minimum(i, size - 1)) & (i < size))
    if limit is not None:
        ds = ds.take(limit)
    return ds


def random_access(name, split="train", data_dir=None):
    """A TensorFlow Datasets split as a random-access source
    (`tfds.data_source`: `len()`, `[i]` -> `{"image", "label", ...}`), read
    example by example from ArrayRecord files, never held in memory: the
    source of a `kerasnas.sampling.ImportanceDataSampler` at ImageNet scale.
    The dataset must be prepared with `file_format="array_record"`."""
    kind, path = _resolve(name)
    if kind not in _STREAMED_KINDS:
        raise _error("name", "a TensorFlow Datasets name (other sources are arrays: "
                     "pass them as (images, labels))", name)
    _check_split(split, ("train", "test"))
    import tensorflow_datasets as tfds

    tfds_name = _tfds_name(kind, path)
    tfds_split = _tfds_split(split, _tfds_splits(tfds_name, data_dir))
    try:
        return tfds.data_source(tfds_name, split=tfds_split, data_dir=data_dir)
    except Exception as error:
        raise ValueError(
            f"Invalid value for argument `name`. Expected a TFDS dataset prepared "
            f"with file_format='array_record' (random access). Received: name={name!r} "
            f"({type(error).__name__}: {error})"
        ) from None


def _tfds_splits(name, data_dir):
    if name in _TFDS_INFO:
        return None
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir).info.splits


def num_classes(name_or_path):
    """Returns the number of classes of a dataset (see `info`)."""
    return info(name_or_path)["num_classes"]


def _read_indices_file(indices_file, num_examples):
    try:
        with open(indices_file) as f:
            content = json.load(f)
        halves = []
        for key in ("train", "valid"):
            values = content[key]
            # xautodl's cifar-split.txt stores {"train": ["int", [...]], ...}.
            if len(values) == 2 and isinstance(values[1], list):
                values = values[1]
            halves.append(np.asarray(values, dtype="int64"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _error(
            "indices_file",
            'a JSON file {"train": [int, ...], "valid": [int, ...]} '
            f"(could not read it: {e})",
            indices_file,
        ) from None
    train, valid = halves
    everything = np.concatenate(halves)
    if everything.size and (
        everything.min() < 0 or everything.max() >= num_examples
    ):
        raise _error(
            "indices_file", f"indices in [0, {num_examples})", indices_file
        )
    if np.intersect1d(train, valid).size:
        raise _error(
            "indices_file", "disjoint train and valid indices", indices_file
        )
    return train, valid


def _search_half(split, num_examples, indices_file):
    """The indices of `"train"` in the search half `split`."""
    halves = _split_indices(num_examples, 0, indices_file)
    return halves[0] if split == "search_train" else halves[1]


def _split_indices(num_examples, seed, indices_file):
    if indices_file is not None:
        return _read_indices_file(indices_file, num_examples)
    order = np.random.default_rng(seed).permutation(num_examples)
    half = num_examples // 2
    return np.sort(order[:half]), np.sort(order[half:])


def nb201_split(
    name_or_path="cifar10", split="train", seed=0, indices_file=None
):
    """NAS-Bench-201's split of a train set into search-train/search-valid.

    NAS-Bench-201 searches on CIFAR-10's train set cut into two halves
    (25,000 / 25,000): weights train on one, architectures are selected on
    the other. The official index file (xautodl's `cifar-split.txt`) is not
    bundled; by default the split is a documented, deterministic stand-in:
    `numpy.random.default_rng(seed).permutation(n)`, first `n // 2` positions
    to `"search_train"`, the rest to `"search_valid"`, each half sorted.
    Pass `indices_file` to use the official split instead.

    Args:
        name_or_path: A dataset name or `.npz` path, as in `load`.
        split: The split that is cut in two, `"train"` (default) or `"test"`.
        seed: Int seed of the permutation. Keep it fixed across runs: it
            defines the split, not the training randomness.
        indices_file: Optional path to a JSON file
            `{"train": [...], "valid": [...]}` (xautodl's
            `{"train": ["int", [...]], ...}` format is accepted too).

    Returns:
        A tuple `(search_train_indices, search_valid_indices)` of int64 NumPy
        arrays: positions in the original split, disjoint.

    Example:

    ```python
    train_idx, valid_idx = kerasnas.data.nb201_split("cifar10")
    len(train_idx), len(valid_idx)  # (25000, 25000)
    ```
    """
    _check_split(split, ("train", "test"))
    _check_int("seed", seed, 0, allow_none=False)
    num_examples = info(name_or_path)["num_examples"][split]
    return _split_indices(num_examples, seed, indices_file)


def load(
    name_or_path,
    split="train",
    with_index=False,
    batch_size=None,
    shuffle=False,
    seed=None,
    augment=False,
    normalize=True,
    image_size=None,
    data_dir=None,
    limit=None,
    indices_file=None,
    shuffle_buffer=None,
):
    """Loads an image-classification split as a `tf.data.Dataset`.

    The pipeline is: select the split's samples (and `limit`), attach each
    sample's index, shuffle, then map (scale to [0, 1], resize, augment,
    normalise), batch and prefetch. Because the index is attached before
    shuffling, it always is the sample's position in its source split
    (`load_arrays(name_or_path, "train")` for the search splits).

    Args:
        name_or_path: `"digits"`, `"cifar10"`, `"cifar100"`, or the path to
            an `.npz` file with keys `x_train`, `y_train`, `x_test`, `y_test`.
        split: `"train"`, `"test"`, or NAS-Bench-201's `"search_train"` /
            `"search_valid"` halves of the train split (see `nb201_split`,
            seed 0, or `indices_file`).
        with_index: If `True`, elements are `(x, y, index)` with an int64
            scalar index; otherwise `(x, y)`.
        batch_size: Optional positive int. Batches (keeping the remainder)
            and prefetches.
        shuffle: If `True`, shuffles with a buffer of the whole split
            (streamed TFDS splits: at most `STREAM_SHUFFLE_BUFFER` samples),
            reshuffling every epoch.
        seed: Optional int seed of the shuffle and augmentation streams: the
            same seed gives the same sequence of epochs.
        augment: If `True`, applies the NAS-Bench-201 training augmentation
            (`random_crop_flip` with padding 4, before normalisation). Not
            allowed on `"test"`.
        normalize: If `True`, applies per-channel mean/std normalisation
            (statistics from `info`).
        image_size: Optional positive int; images are resized (bilinear) to
            `image_size x image_size`, e.g. 32 for `"digits"`.
        data_dir: Optional TensorFlow Datasets data directory.
        limit: Optional non-negative int; keeps only the first `limit`
            samples of the split (before shuffling).
        indices_file: Optional official NAS-Bench-201 split file for the
            search splits (see `nb201_split`).
        shuffle_buffer: Optional positive int, the shuffle buffer's size.

    TensorFlow Datasets sources are streamed from their files in order
    (`stream`): memory holds the shuffle buffer, not the split, so
    ImageNet-sized splits load (give `image_size`: their images vary in
    size).

    Returns:
        A `tf.data.Dataset` of `(x, y)` or `(x, y, index)`: `x` float32
        `(height, width, channels)`, `y` int64 scalar, `index` int64 scalar
        (with a leading batch dimension when `batch_size` is set).

    Example:

    ```python
    ds = kerasnas.data.load(
        "digits", image_size=16, with_index=True, batch_size=64,
        shuffle=True, seed=1, augment=True,
    )
    x, y, index = next(iter(ds))  # (64, 16, 16, 3), (64,), (64,)
    ```
    """
    kind, _ = _resolve(name_or_path)
    _check_split(split)
    _check_int("limit", limit, 0)
    _check_int("batch_size", batch_size, 1)
    _check_int("image_size", image_size, 1)
    if augment and split == "test":
        raise _error("augment", "False for split='test'", augment)

    _check_int("shuffle_buffer", shuffle_buffer, 1)
    streamed = kind in _STREAMED_KINDS
    stats = info(name_or_path, data_dir) if (normalize or streamed) else None
    if streamed:
        if image_size is None and batch_size is not None and None in stats["image_shape"]:
            raise _error(
                "image_size", f"an int: {name_or_path}'s images vary in size "
                f"({stats['image_shape']}) and cannot be batched as they are", image_size,
            )
        ds = stream(name_or_path, split, data_dir=data_dir, limit=limit, indices_file=indices_file)
        size = stats["num_examples"][split]
        size = min(size, limit) if limit is not None else size
        buffer = min(size, STREAM_SHUFFLE_BUFFER) if size else STREAM_SHUFFLE_BUFFER
        scale = 1.0 / 255.0  # TFDS images are uint8
    else:
        source = "test" if split == "test" else "train"
        x, y = load_arrays(name_or_path, source, data_dir=data_dir)
        if split.startswith("search_"):
            index = _search_half(split, len(x), indices_file)
        else:
            index = np.arange(len(x), dtype="int64")
        if limit is not None:
            index = index[:limit]
        if len(index) != len(x):
            x, y = x[index], y[index]
        ds = tf.data.Dataset.from_tensor_slices((x, y, index))
        buffer = max(len(index), 1)
        scale = 1.0 / 255.0 if np.dtype(x.dtype) == np.uint8 else 1.0
    if not normalize:
        stats = None
    if shuffle:
        ds = ds.shuffle(shuffle_buffer or buffer, seed=seed, reshuffle_each_iteration=True)

    def prepare(image, label, position, element_seed=None):
        image = tf.cast(image, tf.float32) * scale
        if image_size is not None:
            image = tf.image.resize(image, (image_size, image_size))
        if element_seed is not None:
            image = augment_lib.random_crop_flip(image, 4, seed=element_seed)
        if stats is not None:
            image = augment_lib.normalize(image, stats["mean"], stats["std"])
        return (image, label, position) if with_index else (image, label)

    if augment:
        # One stateless seed per element; deterministic for a given `seed`
        # and different every epoch.
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda element, s: prepare(*element, s),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return ds


def require_index(dataset, argument_name="dataset"):
    """Checks that a dataset yields `(x, y, index)` and returns it.

    Args:
        dataset: A `tf.data.Dataset`.
        argument_name: The argument name to report in the error message.

    Returns:
        `dataset`, unchanged.

    Raises:
        ValueError: if `dataset` is not a `tf.data.Dataset` whose elements
            are 3-tuples with an integer scalar (or batched integer vector)
            third element.

    Example:

    ```python
    ds = kerasnas.data.require_index(
        kerasnas.data.load("digits", with_index=True)
    )
    ```
    """
    spec = getattr(dataset, "element_spec", None)
    ok = (
        isinstance(dataset, tf.data.Dataset)
        and isinstance(spec, tuple)
        and len(spec) == 3
        and isinstance(spec[2], tf.TensorSpec)
        and spec[2].dtype.is_integer
        and spec[2].shape.rank in (0, 1, None)
    )
    if not ok:
        received = f"<Dataset {spec}>" if spec is not None else repr(dataset)
        raise ValueError(
            f"Invalid value for argument `{argument_name}`. Expected a "
            "tf.data.Dataset of (x, y, index) with an integer index per "
            "sample; call kerasnas.data.load(..., with_index=True). "
            f"Received: {argument_name}={received}"
        )
    return dataset
