"""A PyTorch NAS-Bench-201 DARTS supernet written the way darts-pt's is.

The baseline of `tools/bench_darts.py`. The network is the NAS-Bench-201
search model of `ruocwang/darts-pt` / xautodl (`nasbench201/search_model.py`):
stem conv + BN, three stages of search cells separated by stride-2 residual
blocks, BN + ReLU, pooling, classifier; cells use BN without affine
parameters and with running statistics (convolutions then have a bias). Each
edge is a MixedOp: `sum(w * op(x) for w, op in zip(weights, ops) if w != 0)`
with `weights = softmax(alpha[edge])`, α shared by every cell.

One training step is the reference's first-order bilevel step
(`architect_ig.py`): α's loss on a validation batch, `backward()`, Adam(3e-4,
betas=(0.5, 0.999), weight_decay=1e-3) step; then the weights' loss on a
training batch, `backward()`, `clip_grad_norm_(parameters, 5)`, SGD(0.025,
momentum 0.9, weight_decay 3e-4) step; the loss and top-1 accuracy are read
back, as the reference's meters do.

Run as a script: `--steps N` prints one JSON line of timings and memory.
"""

import argparse
import json
import resource
import time

import torch
from torch import nn
from torch.nn import functional as F

from _torch_reference import EDGES
from _torch_reference import OPS
from _torch_reference import ReLUConvBN
from _torch_reference import ResNetBasicBlock
from _torch_reference import Zero


def make_op(name, c):
    """The NB201 ops of a DARTS search cell: BN without affine parameters,
    with running statistics (so the convolutions have a bias)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        k = int(name[-1])
        return ReLUConvBN(c, c, k, 1, k // 2, affine=False, track=True)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class MixedOp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self._ops = nn.ModuleList([make_op(o, c) for o in OPS])

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops) if w != 0)


class SearchCell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.edges = nn.ModuleDict({e.replace("<-", "_"): MixedOp(c) for e in EDGES})

    def forward(self, x, weights):
        nodes = [x]
        for i in (1, 2, 3):
            nodes.append(sum(
                self.edges[f"{i}_{j}"](nodes[j], weights[EDGES.index(f"{i}<-{j}")]) for j in range(i)
            ))
        return nodes[-1]


class DartsSupernet201(nn.Module):
    def __init__(self, channels=16, cells_per_stage=5, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        cells, c_prev = [], channels
        for stage in range(3):
            c = channels << stage
            if stage:
                cells.append(ResNetBasicBlock(c_prev, c, affine=True, track=True))
            cells.extend(SearchCell(c) for _ in range(cells_per_stage))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c_prev, num_classes)
        self.arch_parameters = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS)))

    def weights_parameters(self):
        return [p for n, p in self.named_parameters() if n != "arch_parameters"]

    def forward(self, x):
        weights = F.softmax(self.arch_parameters, dim=-1)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights) if isinstance(cell, SearchCell) else cell(x)
        x = F.adaptive_avg_pool2d(self.lastact(x), 1)
        return self.classifier(x.flatten(1))


class Trainer:
    def __init__(self, channels=16, cells_per_stage=5, num_classes=10, batch_size=64,
                 input_size=32, num_batches=8, threads=2, seed=0):
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.model = DartsSupernet201(channels, cells_per_stage, num_classes)
        self.model.train()
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(
            self.model.weights_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4
        )
        self.arch_optimizer = torch.optim.Adam(
            [self.model.arch_parameters], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
        )
        make = lambda: (
            torch.randn(batch_size, 3, input_size, input_size),
            torch.randint(0, num_classes, (batch_size,)),
        )
        self.batches = [(make(), make()) for _ in range(num_batches)]
        self._next = 0

    def step(self):
        (x, y), (xv, yv) = self.batches[self._next]
        self._next = (self._next + 1) % len(self.batches)
        self.arch_optimizer.zero_grad()
        self.criterion(self.model(xv), yv).backward()
        self.arch_optimizer.step()
        self.optimizer.zero_grad()
        logits = self.model(x)
        loss = self.criterion(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.weights_parameters(), 5.0)
        self.optimizer.step()
        return loss.item(), (logits.argmax(1) == y).float().mean().item()


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    idle = rss_mib()
    start = time.perf_counter()
    trainer = Trainer(args.channels, args.cells, batch_size=args.batch_size, threads=args.threads)
    trainer.step()
    first = time.perf_counter() - start
    times, peak = [], 0.0
    for _ in range(args.steps):
        t = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - t)
        peak = max(peak, rss_mib())
    print(json.dumps({
        "framework": f"torch {torch.__version__}", "first_step_s": first, "step_times": times,
        "idle_mib": idle, "steady_peak_mib": peak,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
