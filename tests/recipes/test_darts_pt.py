"""The DARTS-space DARTS-PT recipe end to end: search, PT with topology,
from-scratch training, export."""

import json

import keras
import numpy as np
import tensorflow as tf

from kerasnas.recipes import darts_pt


def test_darts_pt_smoke_selects_trains_and_exports(tmp_path):
    result = darts_pt.main(
        ["--preset", "smoke", "--op-set", "s2", "--limit", "64", "--output", str(tmp_path),
         "--verbose", "0"]
    )
    assert json.loads((tmp_path / "result.json").read_text()) == result
    supernet = keras.saving.load_model(tmp_path / "search" / "supernet.keras")
    space = supernet.space
    arch = space.from_genotype(result["genotype"])  # a valid, 2-inputs-per-node genotype
    assert arch == result["arch"]
    assert space.from_genotype(result["argmax_genotype"]) == supernet.derive()
    # 14 events of a normal and a reduce edge, then nodes 3-5 of each cell.
    ops = [d for d in result["decisions"] if ":" not in d["label"]]
    nodes = [d for d in result["decisions"] if ":" in d["label"]]
    assert sorted(d["label"] for d in ops) == sorted(space.labels)
    assert sorted(d["label"] for d in nodes) == sorted(f"{c}:{n}" for c in ("normal", "reduce") for n in (3, 4, 5))
    for d in nodes:
        assert len(d["kept"]) == 2 and all(arch[label] != "none" for label in d["kept"])
    # The exported child: no auxiliary head, the closed-form parameter count,
    # and the SavedModel computes what the .keras model computes.
    child = keras.saving.load_model(tmp_path / "evaluation" / "child.keras")
    assert not isinstance(child.output, (list, tuple))
    assert sum(int(np.prod(w.shape)) for w in child.trainable_weights) == result["params"]
    x = np.random.default_rng(0).normal(size=(4,) + space.input_shape).astype("float32")
    served = keras.layers.TFSMLayer(str(tmp_path / "evaluation" / "saved_model"), call_endpoint="serve")
    np.testing.assert_allclose(
        np.asarray(served(tf.constant(x))), child.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )
    assert 0.0 <= result["test_accuracy"] <= 1.0
