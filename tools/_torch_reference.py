"""A PyTorch NAS-Bench-201 supernet written the way the reference code is.

Used by `tools/bench_supernet.py` as the eager PyTorch baseline. The network
follows the NAS-Bench-201 macro skeleton (xautodl's search network): a 3x3
stem conv + BN, three stages of `cells_per_stage` search cells separated by
stride-2 residual blocks doubling the channels, then BN + ReLU, global
average pooling and a linear classifier. Every edge of a search cell holds a
`nn.ModuleList` of its 5 candidate operations, and `forward(inputs, arch)`
picks each edge's operation by Python indexing with the architecture sampled
for that step ("forward_dynamic" in PA&DA's `Supernet201`). As in PA&DA's
supernet, every BatchNorm is `affine=False, track_running_stats=False`, so a
`ReLUConvBN` convolution has a bias (`bias = not affine`, as in xautodl).

The training step is the reference one: sample a path uniformly in Python,
`optimizer.zero_grad()`, forward, cross-entropy, `backward()`,
`clip_grad_norm_(parameters, 5)`, `optimizer.step()` with SGD (momentum 0.9,
coupled weight decay 2.5e-4); the loss value and the top-1 accuracy are read
back each step, as a reference training loop does for its meters.

Run as a script it serves timing requests over stdin/stdout (one JSON object
per line), so that the benchmark can interleave it with Keras measurements
without importing PyTorch and TensorFlow into one process:

```
python tools/_torch_reference.py --serve --channels 16 --cells 5 --threads 2
> {"cmd": "run", "steps": 10}
< {"step_times": [...]}
```
"""

import argparse
import json
import random
import sys
import time

import torch
from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")


class ReLUConvBN(nn.Module):
    """ReLU, convolution (bias = not affine), BatchNorm."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=False, track=False):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track),
        )

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    """The 'none' operation (stride 1, same channels): `x * 0`."""

    def forward(self, x):
        return x.mul(0.0)


class Identity(nn.Module):
    """The 'skip_connect' operation inside a cell."""

    def forward(self, x):
        return x


class Pooling(nn.Module):
    """3x3 average pool, stride 1, padding 1, `count_include_pad=False`."""

    def __init__(self):
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.op(x)


def make_op(name, channels):
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return Pooling()
    raise ValueError(f"Unknown operation {name!r}")


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between stages."""

    def __init__(self, c_in, c_out, affine=False, track=False):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine, track)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine, track)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class SearchCell(nn.Module):
    """A NAS-Bench-201 cell holding every candidate of its 6 edges."""

    def __init__(self, channels):
        super().__init__()
        self.edges = nn.ModuleDict(
            {edge: nn.ModuleList([make_op(op, channels) for op in OPS]) for edge in EDGES}
        )

    def forward_dynamic(self, x, arch):
        """`arch`: `{edge label: option index}` of this step's path."""
        nodes = [x]
        for i in (1, 2, 3):
            terms = []
            for j in range(i):
                edge = f"{i}<-{j}"
                terms.append(self.edges[edge][arch[edge]](nodes[j]))
            nodes.append(sum(terms))
        return nodes[-1]


class Supernet201(nn.Module):
    """The NAS-Bench-201 weight-sharing supernet (eager, single path)."""

    def __init__(self, channels=16, cells_per_stage=5, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels, affine=False, track_running_stats=False),
        )
        cells = []
        c_prev = channels
        for stage in range(3):
            c = channels << stage
            if stage:
                cells.append(ResNetBasicBlock(c_prev, c))
            cells.extend(SearchCell(c) for _ in range(cells_per_stage))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(
            nn.BatchNorm2d(c_prev, affine=False, track_running_stats=False),
            nn.ReLU(inplace=True),
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, inputs, sampled_arch):
        x = self.stem(inputs)
        for cell in self.cells:
            if isinstance(cell, SearchCell):
                x = cell.forward_dynamic(x, sampled_arch)
            else:
                x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.view(x.size(0), -1))


def sample_arch(rng):
    """Uniform single-path sampling, one Python draw per edge."""
    return {edge: rng.randrange(len(OPS)) for edge in EDGES}


class Trainer:
    """Reference-style SPOS training of `Supernet201` on fixed random batches.

    Args:
        channels, cells_per_stage, num_classes: network size.
        batch_size: images per step.
        num_batches: distinct random batches cycled through.
        threads: `torch.set_num_threads`.
        seed: seed of weights, data and path sampling.
    """

    def __init__(
        self,
        channels=16,
        cells_per_stage=5,
        num_classes=10,
        batch_size=64,
        input_size=32,
        num_batches=8,
        threads=2,
        seed=0,
        dtype="float32",
    ):
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"Invalid value for argument `dtype`. Expected 'float32' or "
                             f"'bfloat16'. Received: dtype={dtype!r}")
        self.autocast = dtype == "bfloat16"
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.rng = random.Random(seed)
        self.model = Supernet201(channels, cells_per_stage, num_classes)
        self.model.train()
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.05, momentum=0.9, weight_decay=2.5e-4
        )
        self.batches = [
            (
                torch.randn(batch_size, 3, input_size, input_size),
                torch.randint(0, num_classes, (batch_size,)),
            )
            for _ in range(num_batches)
        ]
        self._next = 0

    def step(self, path=None):
        """One training step; returns (loss, top-1 accuracy).

        Args:
            path: option indices in `EDGES` order to train (e.g. replayed
                from another framework); default: sampled uniformly.
        """
        inputs, targets = self.batches[self._next]
        self._next = (self._next + 1) % len(self.batches)
        arch = sample_arch(self.rng) if path is None else dict(zip(EDGES, path))
        self.optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(inputs, arch)
            loss = self.criterion(logits.float(), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        accuracy = (logits.argmax(1) == targets).float().mean()
        return loss.item(), accuracy.item()

    def run(self, steps, paths=None):
        """Per-step wall times (seconds) of `steps` training steps.

        Args:
            steps: number of steps.
            paths: optional list of paths (lists of option indices) cycled
                through instead of sampling.
        """
        times = []
        for k in range(steps):
            path = paths[k % len(paths)] if paths else None
            start = time.perf_counter()
            self.step(path)
            times.append(time.perf_counter() - start)
        return times


def facts():
    return {
        "torch": torch.__version__,
        "edges": EDGES,
        "ops": OPS,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "parallel_info": torch.__config__.parallel_info().splitlines()[:6],
    }


def serve(trainer):
    """Answers JSON commands from stdin, one per line, until EOF or 'quit'.

    `{"cmd": "run", "steps": n, "archs": [[...], ...]}` (archs optional)
    replies `{"step_times": [...]}`.
    """
    print(json.dumps({"ready": True, **facts()}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        if request["cmd"] == "run":
            reply = {"step_times": trainer.run(int(request["steps"]), request.get("archs"))}
        else:
            reply = {"error": f"unknown command {request['cmd']!r}"}
        print(json.dumps(reply), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: CPU autocast of the forward pass and loss")
    parser.add_argument("--steps", type=int, default=20, help="steps to time without --serve")
    parser.add_argument("--serve", action="store_true", help="answer JSON commands on stdin")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    trainer = Trainer(
        channels=args.channels,
        cells_per_stage=args.cells,
        num_classes=args.num_classes,
        batch_size=args.batch_size,
        threads=args.threads,
        dtype=args.dtype,
    )
    if args.serve:
        serve(trainer)
        return
    build = time.perf_counter() - start
    first = trainer.run(1)[0]
    times = sorted(trainer.run(args.steps))
    median = times[len(times) // 2]
    print(json.dumps({
        **facts(),
        "build_s": build,
        "first_step_s": first,
        "median_step_s": median,
        "images_per_s": args.batch_size / median,
    }))


if __name__ == "__main__":
    main()
