import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerasnas import data

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CIFAR_NPZ = SHARED / "cifar" / "cifar10_subset.npz"


@pytest.fixture
def cifar_npz():
    if not CIFAR_NPZ.is_file():
        pytest.skip(f"shared data not found at {CIFAR_NPZ}")
    return str(CIFAR_NPZ)


def _expected(name, split, index, **kwargs):
    """The pre-processed image at `index` of `load_arrays`, computed eagerly."""
    x, _ = data.load_arrays(name, split)
    image = tf.constant(x[index])
    image = tf.cast(image, tf.float32) / (255.0 if x.dtype == np.uint8 else 1)
    stats = data.info(name)
    return data.normalize(image, stats["mean"], stats["std"]).numpy()


def _stream(ds):
    return [tuple(t.numpy() for t in element) for element in ds]


# --- digits -----------------------------------------------------------------


def test_digits_shapes_and_dtypes():
    x, y = data.load_arrays("digits", "train")
    assert x.shape == (1438, 8, 8, 3) and x.dtype == np.float32
    assert y.dtype == np.int64 and set(y) == set(range(10))
    assert data.load_arrays("digits", "test")[0].shape == (359, 8, 8, 3)

    image, label = next(iter(data.load("digits")))
    assert image.shape == (8, 8, 3) and image.dtype == tf.float32
    assert label.shape == () and label.dtype == tf.int64

    ds = data.load("digits", "test", with_index=True, batch_size=32,
                   image_size=16)
    batches = list(ds)
    assert len(batches) == 12  # 359 = 11 * 32 + 7, remainder kept
    image, label, index = batches[0]
    assert image.shape == (32, 16, 16, 3)
    assert index.dtype == tf.int64 and label.shape == (32,)
    assert batches[-1][0].shape[0] == 7
    assert data.num_classes("digits") == 10


def test_digits_normalization():
    images = np.concatenate([x.numpy() for x, _ in data.load("digits",
                                                             batch_size=512)])
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    raw = np.concatenate([x.numpy() for x, _ in data.load(
        "digits", batch_size=512, normalize=False)])
    assert raw.min() == 0.0 and raw.max() == 1.0


def test_index_matches_position_even_when_shuffled():
    x, y = data.load_arrays("digits", "train")
    ds = data.load("digits", with_index=True, shuffle=True, seed=3)
    elements = _stream(ds)
    indices = [int(i) for _, _, i in elements]
    assert sorted(indices) == list(range(len(x)))
    assert indices != sorted(indices)  # it did shuffle
    for image, label, i in elements[:20]:
        np.testing.assert_allclose(image, _expected("digits", "train", i),
                                   atol=1e-6)
        assert label == y[i]


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    def order(ds):
        return [int(i) for _, _, i in ds]

    ds = data.load("digits", with_index=True, shuffle=True, seed=5, limit=64)
    first, second = order(ds), order(ds)
    assert first != second
    again = data.load("digits", with_index=True, shuffle=True, seed=5,
                      limit=64)
    assert order(again) == first and sorted(first) == list(range(64))


# --- npz --------------------------------------------------------------------


def test_npz_cifar_subset(cifar_npz):
    x, y = data.load_arrays(cifar_npz, "train")
    assert x.shape == (5085, 32, 32, 3) and x.dtype == np.uint8
    assert data.load_arrays(cifar_npz, "test")[0].shape == (1017, 32, 32, 3)
    described = data.info(cifar_npz)
    assert described["num_examples"]["train"] == 5085
    assert described["num_examples"]["test"] == 1017
    assert described["num_classes"] == 10
    assert described["mean"] == data.CIFAR10_MEAN  # looks like CIFAR-10

    ds = data.load(cifar_npz, "test", with_index=True, limit=10)
    elements = _stream(ds)
    assert len(elements) == 10
    image, label, index = elements[3]
    assert image.shape == (32, 32, 3) and index == 3
    assert label == data.load_arrays(cifar_npz, "test")[1][3]
    np.testing.assert_allclose(image, _expected(cifar_npz, "test", 3),
                               atol=1e-5)


def test_npz_other_shapes_use_train_statistics(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "small.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 6, 6), dtype=np.uint8),
             y_train=np.arange(20) % 3, x_test=np.zeros((4, 6, 6), np.uint8),
             y_test=np.zeros(4))
    described = data.info(str(path))
    assert described["num_classes"] == 3
    assert described["image_shape"] == (6, 6, 1)
    images = np.stack([x.numpy() for x, _ in data.load(str(path))])
    np.testing.assert_allclose(images.mean(), 0.0, atol=1e-5)


# --- tfds (mocked: nothing is downloaded) -------------------------------------


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_tfds_cifar_mocked(name, classes):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        x, y = data.load_arrays(name, "train")
        assert x.shape == (12, 32, 32, 3) and x.dtype == np.uint8
        ds = data.load(name, with_index=True, batch_size=5, augment=True,
                       shuffle=True, seed=0)
        batches = list(ds)
        image, label, index = batches[0]
        assert image.shape == (5, 32, 32, 3) and image.dtype == tf.float32
        assert label.dtype == tf.int64 and index.dtype == tf.int64
        got = sorted(int(i) for b in batches for i in b[2])
        assert got == list(range(12))
        # Streamed: the search half is NAS-Bench-201's split of the 50,000
        # CIFAR training images (the mock has 12 of them).
        halves = _stream(data.load(name, "search_valid", with_index=True))
        valid = data.nb201_split(name)[1]
        assert [int(h[2]) for h in halves] == [int(i) for i in valid if i < 12]
    assert data.info(name)["num_classes"] == classes
    assert data.info(name)["num_examples"]["search_train"] == 25000


# --- augmentation -------------------------------------------------------------


def test_augment_same_seed_same_stream_different_seed_differs():
    def stream(seed):
        ds = data.load("digits", augment=True, seed=seed, limit=32,
                       image_size=16, batch_size=32)
        return next(iter(ds))[0].numpy()

    a, b, c = stream(1), stream(1), stream(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    plain = next(iter(data.load("digits", limit=32, image_size=16,
                                batch_size=32)))[0].numpy()
    assert a.shape == plain.shape and not np.array_equal(a, plain)
    # A new epoch draws new crops.
    ds = data.load("digits", augment=True, seed=1, limit=32, batch_size=32)
    first, second = [batch[0].numpy() for batch in ds.repeat(2)]
    assert not np.array_equal(first, second)


def test_random_crop_flip_values_come_from_padded_image():
    image = tf.fill((8, 8, 3), 0.5)
    outputs = [data.random_crop_flip(image, padding=2, seed=[s, 7]).numpy()
               for s in range(20)]
    for out in outputs:
        assert out.shape == (8, 8, 3)
        assert set(np.unique(out)) <= {0.0, 0.5}
        np.testing.assert_array_equal(out[2:6, 2:6], 0.5)  # interior constant
    assert len({out.tobytes() for out in outputs}) > 1
    np.testing.assert_array_equal(
        data.random_crop_flip(image, seed=tf.constant([3, 4])),
        data.random_crop_flip(image, seed=tf.constant([3, 4])))
    # Flip only: with no padding the crop is the identity.
    ramp = tf.reshape(tf.range(12, dtype=tf.float32), (1, 12, 1))
    flips = {tuple(data.random_crop_flip(ramp, 0, seed=[s, 0]).numpy().ravel())
             for s in range(10)}
    assert flips == {tuple(range(12)), tuple(range(11, -1, -1))}
    assert data.random_crop_flip(image).shape == (8, 8, 3)  # stateful path


def test_normalize():
    out = data.normalize(tf.ones((2, 2, 3)), [0.5, 0.5, 0.0], [0.5, 0.25, 2.0])
    np.testing.assert_allclose(out[0, 0], [1.0, 2.0, 0.5])
    np.testing.assert_allclose(data.CIFAR10_MEAN[0], 125.3 / 255)
    np.testing.assert_allclose(data.CIFAR100_STD[2], 70.4 / 255)


# --- NAS-Bench-201 search split ---------------------------------------------


def test_nb201_split_halves(cifar_npz):
    train, valid = data.nb201_split(cifar_npz)
    assert (len(train), len(valid)) == (2542, 2543)
    assert not np.intersect1d(train, valid).size
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])),
                                  np.arange(5085))
    again = data.nb201_split(cifar_npz)
    np.testing.assert_array_equal(train, again[0])
    assert not np.array_equal(train, data.nb201_split(cifar_npz, seed=1)[0])
    assert [len(h) for h in data.nb201_split("cifar10")] == [25000, 25000]


def test_search_splits_through_load():
    train, valid = data.nb201_split("digits")
    for split, expected in (("search_train", train), ("search_valid", valid)):
        elements = _stream(data.load("digits", split, with_index=True,
                                     shuffle=True, seed=0))
        indices = sorted(int(i) for _, _, i in elements)
        np.testing.assert_array_equal(indices, expected)
        image, _, i = elements[0]
        np.testing.assert_allclose(image, _expected("digits", "train", i),
                                   atol=1e-6)
    limited = _stream(data.load("digits", "search_valid", with_index=True,
                                limit=5))
    assert [int(i) for _, _, i in limited] == list(valid[:5])


def test_nb201_split_indices_file(tmp_path):
    path = tmp_path / "split.json"
    # xautodl's cifar-split.txt format: {"train": ["int", [...]], ...}.
    path.write_text(json.dumps({"train": ["int", [0, 2, 4]],
                                "valid": ["int", [1, 3]]}))
    train, valid = data.nb201_split("digits", indices_file=str(path))
    assert list(train) == [0, 2, 4] and list(valid) == [1, 3]
    ds = data.load("digits", "search_train", with_index=True,
                   indices_file=str(path))
    assert [int(i) for _, _, i in ds] == [0, 2, 4]
    path.write_text(json.dumps({"train": [0, 1], "valid": [1]}))
    with pytest.raises(ValueError, match="`indices_file`.*disjoint"):
        data.nb201_split("digits", indices_file=str(path))
    path.write_text(json.dumps({"train": [0, 99999], "valid": [1]}))
    with pytest.raises(ValueError, match="`indices_file`"):
        data.nb201_split("digits", indices_file=str(path))
    with pytest.raises(ValueError, match="`indices_file`"):
        data.nb201_split("digits", indices_file=str(tmp_path / "missing"))


# --- require_index ----------------------------------------------------------


def test_require_index():
    with_index = data.load("digits", with_index=True, limit=4)
    assert data.require_index(with_index) is with_index
    assert data.require_index(with_index.batch(2)) is not None
    with pytest.raises(ValueError, match="`dataset`.*with_index=True"):
        data.require_index(data.load("digits", limit=4))
    with pytest.raises(ValueError, match="`train_data`"):
        data.require_index(data.load("digits", limit=4), "train_data")
    floats = tf.data.Dataset.from_tensor_slices(([1.0], [1], [0.5]))
    with pytest.raises(ValueError, match="`dataset`"):
        data.require_index(floats)
    with pytest.raises(ValueError, match="`dataset`"):
        data.require_index(np.zeros((3, 3)))


# --- argument validation ------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(name_or_path="no_such_dataset"), "name_or_path"),
        (dict(name_or_path="/nonexistent/file.npz"), "name_or_path"),
        (dict(name_or_path="digits", split="valid"), "split"),
        (dict(name_or_path="digits", limit=-1), "limit"),
        (dict(name_or_path="digits", batch_size=0), "batch_size"),
        (dict(name_or_path="digits", batch_size=-3), "batch_size"),
        (dict(name_or_path="digits", image_size=0), "image_size"),
        (dict(name_or_path="digits", image_size=16.0), "image_size"),
        (dict(name_or_path="digits", image_size=(16, 16)), "image_size"),
        (dict(name_or_path="digits", split="test", augment=True), "augment"),
    ],
)
def test_load_invalid_arguments(kwargs, argument):
    with pytest.raises(ValueError,
                       match=f"Invalid value for argument `{argument}`.*"
                             f"Expected .*Received: {argument}="):
        data.load(**kwargs)


def test_invalid_npz_and_splits(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4, 3)), y_train=np.zeros(2))
    with pytest.raises(ValueError, match="`name_or_path`.*x_test"):
        data.load(str(path))
    with pytest.raises(ValueError, match="`name_or_path`"):
        data.info("imagenet")
    with pytest.raises(ValueError, match="`split`"):
        data.load_arrays("digits", "valid")
    with pytest.raises(ValueError, match="`split`"):
        data.nb201_split("digits", split="valid")
    with pytest.raises(ValueError, match="`padding`"):
        data.random_crop_flip(tf.zeros((4, 4, 3)), padding=-1)


def test_search_halves_as_arrays_are_the_loaders_samples():
    x, y = data.load_arrays("digits", "train")
    halves = data.nb201_split("digits")
    for split, index in zip(("search_train", "search_valid"), halves):
        xs, ys = data.load_arrays("digits", split)
        loaded = list(data.load("digits", split, with_index=True, normalize=False).as_numpy_iterator())
        np.testing.assert_array_equal(np.array([i for _, _, i in loaded]), index)
        np.testing.assert_array_equal(xs, np.stack([image for image, _, _ in loaded]))
        np.testing.assert_array_equal(ys, y[index])
    assert len(halves[0]) + len(halves[1]) == len(x)


def test_tfds_splits_stream_without_reading_into_memory(monkeypatch):
    # ImageNet-sized data: `load` and the recipes' training pipeline read
    # TFDS' files as a stream; nothing goes through load_arrays (NumPy).
    tfds = pytest.importorskip("tensorflow_datasets")
    from kerasnas.data import loaders
    from kerasnas.recipes import nb201_spos

    def refuse(*args, **kwargs):
        raise AssertionError("read into memory")

    monkeypatch.setattr(loaders, "load_arrays", refuse)
    monkeypatch.setattr(nb201_spos.nas_data, "load_arrays", refuse)
    with tfds.testing.mock_data(num_examples=10):
        assert data.is_streamed("imagenet2012") and not data.is_streamed("digits")
        described = data.info("imagenet2012")
        assert described["num_classes"] == 1000 and described["image_shape"] == (None, None, 3)
        assert described["mean"] == data.IMAGENET_MEAN
        ds = data.load("imagenet2012", with_index=True, batch_size=4, image_size=16,
                       shuffle=True, seed=0, augment=True)
        batches = _stream(ds)
        assert [b[0].shape for b in batches] == [(4, 16, 16, 3)] * 2 + [(2, 16, 16, 3)]
        assert sorted(int(i) for b in batches for i in b[2]) == list(range(10))
        assert len(_stream(data.load("imagenet2012", "test", image_size=8))) == 10  # validation
        with pytest.raises(ValueError, match="image_size.*vary in size"):
            data.load("imagenet2012", batch_size=4)
        # The recipes' epoch-seeded pipeline: each epoch a permutation,
        # different epochs differ, an epoch does not depend on the ones before.
        ds, _ = nb201_spos.train_dataset("imagenet2012", 5, seed=3, epochs=2, image_size=8,
                                         augment=True)
        batches = _stream(ds)
        epochs = [np.concatenate([y for _, y in batches[k:k + 2]]) for k in (0, 2)]
        labels = sorted(int(y) for _, y, _ in _stream(data.stream("imagenet2012")))
        assert all(sorted(e.tolist()) == labels for e in epochs)
        assert not np.array_equal(epochs[0], epochs[1])
        again, _ = nb201_spos.train_dataset("imagenet2012", 5, seed=3, epochs=2, initial_epoch=1,
                                            image_size=8, augment=True)
        second = _stream(ds)[2:]
        for (x1, y1), (x2, y2) in zip(second, _stream(again), strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
