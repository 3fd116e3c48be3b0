"""bfloat16 supernets and children (`dtype_policy="mixed_bfloat16"`): compute
in bfloat16, logits, losses, BN statistics, importance scores, α and every
variable in float32; outputs within bfloat16 rounding of float32."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import kerasnas
from kerasnas.export import save_child
from kerasnas.sampling import ImportancePathSampler
from nas_helpers import compile_sgd, tiny_data, tiny_space

BF16 = "mixed_bfloat16"


@pytest.fixture(scope="module")
def pair():
    return _pair()


def _pair():
    """A float32 and a bfloat16 supernet with the same weights."""
    space = tiny_space()
    f32 = compile_sgd(space.build_supernet(seed=0, bn="standard"), learning_rate=0.05)
    bf16 = compile_sgd(space.build_supernet(seed=0, bn="standard", dtype_policy=BF16),
                       learning_rate=0.05)
    for a, b in zip(f32.network.weights, bf16.network.weights, strict=True):
        b.assign(a)
    return space, f32, bf16


def _float32_everywhere(supernet):
    floats = [v for v in supernet.variables if v.dtype.startswith("float")]
    assert floats and all(v.dtype == "float32" for v in floats)


def test_bfloat16_supernet_computes_in_bfloat16_and_keeps_float32_where_it_must(pair):
    space, f32, bf16 = pair
    assert keras.config.dtype_policy().name == "float32"  # the build's scope is gone
    conv = bf16.network.get_layer("cell0_0_e10").candidates[2]  # nor_conv_1x1
    assert conv.conv.compute_dtype == "bfloat16" and conv.bn.compute_dtype == "bfloat16"
    assert bf16.network.output.dtype == "float32"  # logits: the loss sees float32
    _float32_everywhere(bf16)
    x, y, data = tiny_data(num=32, batch_size=8)
    for seed in range(3):
        arch = space.sample(seed)
        f32.set_path(arch)
        bf16.set_path(arch)
        a, b = f32.predict(x, verbose=0), bf16.predict(x, verbose=0)
        assert b.dtype == np.float32
        scale = np.abs(a).max()
        np.testing.assert_allclose(b, a, atol=3e-2 * scale)  # bfloat16: 8 bits of mantissa
        assert not np.array_equal(a, b)  # ... and it did compute in bfloat16
    # Training: finite, statistics float32, candidates never sampled untouched.
    before = {v.path: v.numpy() for v in bf16.network_variables}
    history = bf16.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    _float32_everywhere(bf16)
    moved = {v.path for v in bf16.network_variables if not np.array_equal(before[v.path], v.numpy())}
    assert moved and len(moved) < len(before)


def test_children_in_either_dtype_and_reload_in_theirs(pair, tmp_path):
    space, _, bf16 = pair  # trained further here: any weights will do
    x, _, data = tiny_data(num=16, batch_size=8)
    bf16.fit(data, epochs=1, verbose=0)
    arch = space.sample(4)
    bf16.set_path(arch)
    expected = bf16.predict(x, verbose=0)
    child = bf16.extract(arch)
    assert child.output.dtype == "float32"
    np.testing.assert_array_equal(child.predict(x, verbose=0), expected)  # the same computation
    plain = bf16.extract(arch, dtype_policy="float32")
    assert {layer.compute_dtype for layer in plain.layers} == {"float32"}
    np.testing.assert_allclose(plain.predict(x, verbose=0), expected, atol=3e-2 * np.abs(expected).max())
    # Reloaded in a float32 program, a composite op's sublayers keep bfloat16.
    path = save_child(child, tmp_path / "child")
    again = keras.saving.load_model(path["child"])
    conv = next(layer for layer in again.layers if hasattr(layer, "conv"))
    assert conv.conv.dtype_policy.name == BF16 and conv.bn.dtype_policy.name == BF16
    np.testing.assert_array_equal(again.predict(x, verbose=0), expected)
    loaded = tf.saved_model.load(path["saved_model"])  # kept: it owns the variables
    served = loaded.serve(tf.constant(x))
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="dtype_policy.*Received: dtype_policy='float8'"):
        bf16.extract(arch, dtype_policy="float8")


def test_importance_scores_and_alpha_stay_float32():
    space = tiny_space()
    _, _, data = tiny_data(num=32, batch_size=8)
    pa = compile_sgd(space.build_supernet(
        path_sampler=ImportancePathSampler(name="path_sampler"), seed=0, dtype_policy=BF16))
    pa.fit(data, epochs=1, verbose=0, callbacks=[pa.path_sampler.callback(delta=0.5)])
    assert all(v.dtype == "float32" for v in pa.path_sampler.variables if v.dtype.startswith("float"))
    assert all(np.isfinite(v.numpy()).all() for v in pa.path_sampler.variables)
    darts = space.build_supernet(supernet_class=kerasnas.darts.DartsSupernet, seed=0, bn="search",
                                 dtype_policy=BF16)
    compile_sgd(darts)
    darts.fit(kerasnas.darts.paired(data, data), epochs=1, verbose=0)
    assert all(v.dtype == "float32" for v in darts.arch_variables)
    weights = darts.alphas()
    assert all(np.isfinite(w) for row in weights.values() for w in row.values())
    assert darts.network.output.dtype == "float32"


def test_recipes_take_a_dtype_policy():
    # `--dtype-policy` reaches every SPOS-family recipe's supernet (rank,
    # PA&DA, GM-NAS, inter-choice, DCNAS, MobileNet search all build it here).
    from kerasnas.recipes import nb201_rank
    from kerasnas.recipes import nb201_spos

    args = nb201_rank.build_parser().parse_args(["--preset", "smoke", "--dtype-policy", BF16, "--channels", "4"])
    config = nb201_spos.config_from_args(args, nb201_rank.PRESETS)
    assert config["dtype_policy"] == BF16 and nb201_rank.PRESETS["smoke"]["dtype_policy"] is None
    space, steps = nb201_spos.build_space(config)
    supernet = nb201_spos.build_supernet(space, config, steps)
    conv = supernet.network.get_layer("cell0_0_e10").candidates[2]
    assert conv.conv.compute_dtype == "bfloat16" and supernet.network.output.dtype == "float32"
    _float32_everywhere(supernet)
    default = nb201_spos.build_supernet(space, dict(config, dtype_policy=None), steps)
    assert default.network.get_layer("cell0_0_e10").candidates[2].conv.compute_dtype == "float32"
    with pytest.raises(SystemExit):
        nb201_rank.build_parser().parse_args(["--dtype-policy", "float16"])
