"""keras-tuner's chief/worker mode: one chief serves the oracle, two
worker processes score architectures on their own copy of the supernet."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from nas_helpers import compile_sgd, tiny_data, tiny_space

REPO = Path(__file__).resolve().parents[2]
MAX_TRIALS = 12

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    import keras
    import kerasnas
    from kerasnas.search import EvolutionOracle, OneShotTuner

    root = sys.argv[1]
    supernet = keras.saving.load_model(os.path.join(root, "supernet.keras"))
    data = np.load(os.path.join(root, "data.npz"))
    valid = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).batch(16)
    evaluated = []

    class Tuner(OneShotTuner):
        def evaluate(self, arch):
            evaluated.append(arch)
            return super().evaluate(arch)

    oracle = EvolutionOracle(supernet.space, population_size=4, sample_size=2,
                             max_trials=%d, seed=0)
    tuner = Tuner(supernet, oracle, valid, bn_calibration_data=valid, bn_calibration_steps=1,
                  directory=os.path.join(root, "search"), project_name="p")
    tuner.search(verbose=0)
    name = os.environ["KERASTUNER_TUNER_ID"]
    with open(os.path.join(root, name + ".json"), "w") as f:
        json.dump(evaluated, f)
    """
    % MAX_TRIALS
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_share_one_search_without_duplicates(tmp_path):
    supernet = tiny_space().build_supernet(seed=0, bn="standard")
    compile_sgd(supernet)
    x, y, train = tiny_data(num=32, batch_size=16)
    supernet.fit(train, epochs=1, verbose=0)
    supernet.save(tmp_path / "supernet.keras")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    port = str(free_port())
    processes = {}
    for name in ("chief", "tuner0", "tuner1"):
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            TF_CPP_MIN_LOG_LEVEL="3",
            CUDA_VISIBLE_DEVICES="",
            KERASTUNER_TUNER_ID=name,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=port,
        )
        processes[name] = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
    deadline = time.monotonic() + 420
    try:
        for name in ("tuner0", "tuner1", "chief"):
            output, _ = processes[name].communicate(timeout=max(1, deadline - time.monotonic()))
            assert processes[name].returncode == 0, f"{name} failed:\n{output[-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()

    trials = [json.loads(p.read_text()) for p in (tmp_path / "search" / "p").glob("trial_*/trial.json")]
    assert len(trials) == MAX_TRIALS
    assert all(t["status"] == "COMPLETED" for t in trials)
    key = lambda arch: json.dumps(arch, sort_keys=True)  # noqa: E731
    archs = [key(t["hyperparameters"]["values"]) for t in trials]
    assert len(set(archs)) == MAX_TRIALS
    per_worker = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("tuner0", "tuner1")]
    assert all(per_worker), "both workers ran trials"
    union = [key(a) for worker in per_worker for a in worker]
    assert len(union) == len(set(union)) == MAX_TRIALS  # no duplicates across workers
    assert set(union) == set(archs)
    assert not (tmp_path / "chief.json").read_text().strip("[]")  # the chief only serves
