"""MultiWorkerMirroredStrategy: 2 worker processes on localhost train a
supernet as one device does on the same global batches; only the chief
writes checkpoints, and both resume from them."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import multi_worker_train as worker
from kerasnas import callbacks

HERE = Path(__file__).resolve().parent
TIMEOUT = 300  # seconds per phase: a hung collective must not hang CI


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(output, epochs, checkpoint_dirs):
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), env.get("PYTHONPATH", "")])
    env.pop("PYTEST_XDIST_WORKER", None)
    processes = []
    for index in range(2):
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, str(HERE / "multi_worker_train.py"), str(output), str(epochs),
             str(checkpoint_dirs[index])],
            env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=TIMEOUT)[0])
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"multi-worker training did not finish in {TIMEOUT} s")
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log[-3000:]
    return [dict(np.load(output / f"worker_{i}.npz")) for i in range(2)]


def _weights(result):
    return [result[f"w{k}"] for k in range(sum(key.startswith("w") for key in result))]


def test_two_workers_match_one_device_and_resume_from_the_chiefs_checkpoint(tmp_path):
    # Per-replica BN statistics on 2 workers of 8 images each are "ghost"
    # BN over groups of 8 on one device.
    initial = worker.tiny_space().build_supernet(**worker.OPTIONS).get_weights()
    np.savez(tmp_path / "initial.npz", **{f"w{k}": w for k, w in enumerate(initial)})

    # Phase 1: one epoch, each worker given its own checkpoint directory:
    # only the chief's gets a checkpoint.
    dirs = [tmp_path / "checkpoints", tmp_path / "worker_1_checkpoints"]
    first = _run_workers(tmp_path, 1, dirs)
    assert [os.path.basename(p) for p in callbacks.list_checkpoints(dirs[0])] == ["epoch_00001.npz"]
    assert not dirs[1].exists()
    # Phase 2: both resume from the chief's checkpoint (a shared directory).
    second = _run_workers(tmp_path, 2, [dirs[0], dirs[0]])
    assert [int(r["initial_epoch"]) for r in second] == [1, 1]

    one = tf.distribute.OneDeviceStrategy("CPU:0")
    supernet = worker.build(one, dict(worker.OPTIONS, virtual_batch_size=8))
    supernet.set_weights(initial)
    paths = []
    record = worker.keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: paths.append(supernet.active_path.numpy())
    )
    history = supernet.fit(worker.data(), epochs=2, verbose=0, callbacks=[record])

    for results in (first, second):  # every worker sampled the device's paths
        for r in results:
            steps = len(r["paths"])
            offset = 0 if results is first else len(paths) - steps
            np.testing.assert_array_equal(r["paths"], np.array(paths[offset:offset + steps]))
    assert len({tuple(p) for p in paths}) > 3
    np.testing.assert_allclose(first[0]["loss"], history.history["loss"][:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second[0]["loss"], history.history["loss"][1:], rtol=1e-5, atol=1e-5)
    for a, b, c in zip(supernet.get_weights(), _weights(second[0]), _weights(second[1]), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(b, c)  # the workers agree exactly
