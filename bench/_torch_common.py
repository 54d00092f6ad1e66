"""What the PyTorch sides of the benchmarks share: the tutorial's StudentNet
and the timing loop (the same as bench/_timing.ts on the Deno side: warm-up
calls, then calls until both a minimum time and a minimum count are reached).
"""
import time

import torch.nn as nn


class StudentNet(nn.Module):
    """The tutorial's student: conv 3→4, batch norm, ReLU, max pool, linear."""

    def __init__(self, size=224, n_classes=2):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1), nn.BatchNorm2d(4),
            nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2))
        self.fc = nn.Linear(4 * (size // 2) * (size // 2), n_classes)

    def forward(self, x):
        out = self.layer1(x)
        return self.fc(out.view(out.size(0), -1))


def timeit(fn, min_time, min_iters, warmup=1):
    """Seconds per call of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if n >= min_iters and el >= min_time:
            return el / n
