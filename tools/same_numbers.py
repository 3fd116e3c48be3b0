"""Checks that a refactor changes no number: builds and trains a small
supernet of every single-path choice factory (SPOS, inter-choice bias and
split, DCNAS' local copies) under two checkouts and
prints the SHA-256 of all its variables before and after training.

    python tools/same_numbers.py OLD_CHECKOUT NEW_CHECKOUT

Each checkout runs in its own process on one thread (the same kernels in
the same order); the script exits 1 when a fingerprint differs. Used for
issue #34 (the spaces rebuilt on choice factories): the proxy runs archived
in recipes/results were trained on other machines and thread counts, whose
last-bit differences grow over 12,000 steps, so a retrained run matches
them only within seed noise; this check is exact.
"""

import subprocess
import sys

CHILD = r'''
import sys
import numpy as np, keras, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import kerasnas

space = kerasnas.spaces.NasBench201(num_classes=10, channels=8, cells_per_stage=1, input_shape=(16, 16, 3),
                                    ops=("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))
kind = sys.argv[1]
keras.utils.set_random_seed(0)
options = dict(seed=0, bn="batch", weight_decay=2.5e-4, clip_norm=5.0)
if kind == "dcnas":
    from kerasnas.dcnas import DCNASSupernet

    options.update(supernet_class=DCNASSupernet, local_copies=2, pool_size=20)
elif kind != "spos":
    layers = kerasnas.layers
    if hasattr(layers, "InterChoices"):
        options["choices"] = layers.InterChoices(kind)
    else:  # before choice factories
        options["interchoice"] = kind
supernet = space.build_supernet(**options)
if kind == "split":
    for layer in supernet.choice_layers():
        if isinstance(layer, kerasnas.layers.SplitChoice):
            layer.set_depth(1)
supernet.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 16, 16, 3)).astype("float32")
y = rng.integers(0, 10, 64)
print(supernet.fingerprint())
supernet.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
print(supernet.fingerprint())
'''


def fingerprints(checkout, kind):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, kind], cwd=checkout, capture_output=True, text=True,
        env={"PYTHONPATH": checkout, "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    if result.returncode:
        raise SystemExit(f"{checkout} ({kind}) failed:\n{result.stderr[-2000:]}")
    return result.stdout.split()


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    same = True
    for kind in ("spos", "bias", "split", "dcnas"):
        old, new = (fingerprints(checkout, kind) for checkout in argv)
        verdict = "same" if old == new else "DIFFERENT"
        same &= old == new
        print(f"{kind:6s} initial {old[0][:12]} / {new[0][:12]}, trained {old[1][:12]} / {new[1][:12]}: {verdict}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
