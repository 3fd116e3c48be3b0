"""Channels-last (NHWC) vs channels-first (NCHW) on this machine's TensorFlow.

The spaces build NHWC networks. Before adding a `data_format` option to
their builders, this measures whether NCHW could pay: a stack of
NAS-Bench-201's ReLU-Conv3x3-BN blocks with residual additions (C channels
at HxW, fused BN) written directly in `tf.nn` with each layout, forward
(inference BN) and a training step (batch-statistics BN, gradients, SGD
update), in interleaved rounds of one process.

Usage:

```
TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_layout.py
TF_CPP_MIN_LOG_LEVEL=2 python tools/bench_layout.py --channels 16 --size 32 --batch-size 250 --json out.json
```
"""

import argparse
import json
import os
import statistics
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="height = width")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--depth", type=int, default=10, help="ReLU-Conv-BN blocks")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per model per round")
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def make(tf, data_format, channels, depth):
    """`(forward, train_step)` of the block stack in `data_format`."""
    ws = [tf.Variable(tf.random.stateless_normal([3, 3, channels, channels], seed=(i, 0)) * 0.1)
          for i in range(depth)]
    scales = [tf.Variable(tf.ones([channels])) for _ in range(depth)]
    offsets = [tf.Variable(tf.zeros([channels])) for _ in range(depth)]
    mean, variance = tf.zeros([channels]), tf.ones([channels])

    def blocks(x, training):
        for w, scale, offset in zip(ws, scales, offsets):
            y = tf.nn.conv2d(tf.nn.relu(x), w, 1, "SAME", data_format=data_format)
            if training:
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                    y, scale, offset, is_training=True, data_format=data_format)
            else:
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                    y, scale, offset, mean=mean, variance=variance, is_training=False,
                    data_format=data_format)
            x = x + y
        return tf.reduce_sum(x)

    @tf.function
    def forward(x):
        return blocks(x, False)

    @tf.function
    def train_step(x):
        variables = ws + scales + offsets
        with tf.GradientTape() as tape:
            loss = blocks(x, True)
        for v, g in zip(variables, tape.gradient(loss, variables)):
            v.assign_sub(1e-6 * g)
        return loss

    return forward, train_step


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    shapes = {
        "NHWC": [args.batch_size, args.size, args.size, args.channels],
        "NCHW": [args.batch_size, args.channels, args.size, args.size],
    }
    inputs = {f: tf.random.stateless_normal(s, seed=(1, 2)) for f, s in shapes.items()}
    models = {f: make(tf, f, args.channels, args.depth) for f in shapes}
    for f, (forward, train_step) in models.items():  # trace + first call, untimed
        forward(inputs[f]).numpy()
        train_step(inputs[f]).numpy()
    times = {(f, kind): [] for f in models for kind in ("forward", "train")}
    for r in range(args.rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for f in order:
            for kind, function in zip(("forward", "train"), models[f]):
                start = time.perf_counter()
                for _ in range(args.calls):
                    function(inputs[f]).numpy()
                times[(f, kind)].append((time.perf_counter() - start) / args.calls)
    results = {
        "config": vars(args),
        "ms": {f"{f} {kind}": 1000 * statistics.median(v) for (f, kind), v in times.items()},
        "load_average": os.getloadavg(),
    }
    for kind in ("forward", "train"):
        results[f"NCHW/NHWC {kind} time"] = (
            statistics.median(times[("NCHW", kind)]) / statistics.median(times[("NHWC", kind)])
        )
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
