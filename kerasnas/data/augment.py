"""NAS-Bench-201 image pre-processing: normalisation constants and augmentation.

Everything here is plain TensorFlow and runs inside a `tf.data` pipeline.
"""

import tensorflow as tf

# NAS-Bench-201 (xautodl) constants, on images scaled to [0, 1].
CIFAR10_MEAN = tuple(x / 255 for x in (125.3, 123.0, 113.9))
CIFAR10_STD = tuple(x / 255 for x in (63.0, 62.1, 66.7))
CIFAR100_MEAN = tuple(x / 255 for x in (129.3, 124.1, 112.4))
CIFAR100_STD = tuple(x / 255 for x in (68.2, 65.4, 70.4))


def random_crop_flip(image, padding=4, seed=None):
    """Zero-pads, randomly crops back to size and randomly flips an image.

    This is torchvision's `RandomCrop(size, padding=4)` followed by
    `RandomHorizontalFlip()`, the NAS-Bench-201 CIFAR training augmentation.
    Apply it to the raw image (before `normalize`), as torchvision does: the
    padding is black.

    Args:
        image: A `(height, width, channels)` image tensor (one image, not a
            batch).
        padding: Non-negative int, the number of zero pixels added on each
            side before cropping.
        seed: A stateless seed, i.e. a shape `(2,)` int32/int64 tensor, or
            `None` to use TensorFlow's stateful random ops. The same seed
            always gives the same crop and flip.

    Returns:
        A tensor with the shape and dtype of `image`.

    Example:

    ```python
    image = tf.zeros((32, 32, 3))
    out = kerasnas.data.random_crop_flip(image, seed=tf.constant([1, 2]))
    ```
    """
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(
            "Invalid value for argument `padding`. Expected a non-negative "
            f"int. Received: padding={padding!r}"
        )
    image = tf.convert_to_tensor(image)
    size = tf.shape(image)
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    if seed is None:
        cropped = tf.image.random_crop(padded, size)
        return tf.image.random_flip_left_right(cropped)
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    cropped = tf.image.stateless_random_crop(padded, size, seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)


def cutout(image, length=16, seed=None):
    """Zeroes a `length` x `length` square of an image (DARTS' `Cutout`).

    The square's centre is uniform over the image and the square is clipped
    at the borders, as in DeVries & Taylor's reference and DARTS'
    `utils.Cutout`. Apply it after `normalize`, as DARTS does (the square is
    0 in normalised units).

    Args:
        image: a `(height, width, channels)` image tensor.
        length: positive int, the side of the square.
        seed: a stateless seed (shape `(2,)` int tensor) or None.

    Returns:
        A tensor with the shape and dtype of `image`.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(
            "Invalid value for argument `length`. Expected a positive int. "
            f"Received: length={length!r}"
        )
    image = tf.convert_to_tensor(image)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    if seed is None:
        centre = tf.random.uniform((2,), 0, tf.int32.max, dtype=tf.int32)
    else:
        centre = tf.random.stateless_uniform((2,), seed, 0, tf.int32.max, dtype=tf.int32)
    y, x = centre[0] % height, centre[1] % width
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    half = length // 2
    inside = (
        (rows >= y - half) & (rows < y + length - half) & (cols >= x - half) & (cols < x + length - half)
    )
    return image * tf.cast(~inside, image.dtype)[:, :, None]


def normalize(image, mean, std):
    """Per-channel normalisation, `(image - mean) / std`, as float32.

    Args:
        image: An image tensor, channels last (a single image or a batch).
        mean: Sequence of per-channel means (or a scalar).
        std: Sequence of per-channel standard deviations (or a scalar).

    Returns:
        A float32 tensor with the shape of `image`.

    Example:

    ```python
    x = kerasnas.data.normalize(
        image, kerasnas.data.CIFAR10_MEAN, kerasnas.data.CIFAR10_STD
    )
    ```
    """
    image = tf.cast(image, tf.float32)
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    return (image - mean) / std
