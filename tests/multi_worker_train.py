"""One worker of the multi-worker test (`test_multi_worker.py` starts two).

Usage: python multi_worker_train.py OUTPUT EPOCHS CHECKPOINTS, with TF_CONFIG
set. Trains the tiny supernet of `nas_helpers` under
`MultiWorkerMirroredStrategy` from `OUTPUT/initial.npz`, resuming from the
checkpoints in CHECKPOINTS, and writes its final weights and the path of
every step to `OUTPUT/worker_<index>.npz`.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(2)
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG

import keras  # noqa: E402

keras.config.disable_traceback_filtering()

from kerasnas import callbacks  # noqa: E402
from nas_helpers import compile_sgd, tiny_data, tiny_space  # noqa: E402

GLOBAL_BATCH = 16  # 2 workers x 8


def build(strategy, options):
    with strategy.scope():
        supernet = tiny_space().build_supernet(**options)
        compile_sgd(supernet, learning_rate=0.1, momentum=0.9)
    return supernet


def data():
    return tiny_data(num=64, batch_size=GLOBAL_BATCH, seed=2)[2]


OPTIONS = dict(seed=11, bn="batch", weight_decay=1e-3, clip_norm=1.0)


def main(output, epochs, checkpoints):
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    supernet = build(strategy, OPTIONS)
    with np.load(os.path.join(output, "initial.npz")) as f:
        supernet.set_weights([f[f"w{k}"] for k in range(len(f.files))])
    checkpoint = callbacks.EpochCheckpoint(checkpoints)
    initial_epoch = checkpoint.restore(supernet)
    paths = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: paths.append(supernet.active_path.numpy())
    )
    history = supernet.fit(
        data(), epochs=epochs, initial_epoch=initial_epoch, verbose=0,
        callbacks=[record, checkpoint],
    )
    weights = {f"w{k}": w for k, w in enumerate(supernet.get_weights())}
    np.savez(
        os.path.join(output, f"worker_{index}.npz"), paths=np.array(paths),
        loss=np.array(history.history["loss"]), initial_epoch=initial_epoch, **weights,
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
