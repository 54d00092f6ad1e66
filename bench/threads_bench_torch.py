"""The PyTorch side of bench/threads_bench.ts: training steps of the
tutorial's models at the given size and batch, with each thread count
(torch.set_num_threads), timed the same way, printed as one JSON object
{"<model> t<threads>": seconds per step}.

Usage: /usr/bin/python3 bench/threads_bench_torch.py '<json config>'
config: {"models": ["resnet18", "student"], "threads": [1, 2],
         "size": 28, "batch": 32, "minTime": 3, "minIters": 5}
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torchvision

cfg = json.loads(sys.argv[1])


class StudentNet(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1), nn.BatchNorm2d(4),
            nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2))
        self.fc = nn.Linear(4 * (size // 2) * (size // 2), 2)

    def forward(self, x):
        out = self.layer1(x)
        return self.fc(out.view(out.size(0), -1))


def timeit(fn, min_time, min_iters, warmup=2):
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if n >= min_iters and el >= min_time:
            return el / n


out = {}
size, bs = cfg["size"], cfg["batch"]
for threads in cfg["threads"]:
    torch.set_num_threads(threads)
    for name in cfg["models"]:
        torch.manual_seed(0)
        x = torch.randn(bs, 3, size, size)
        y = torch.randint(0, 2, (bs,))
        model = (StudentNet(size) if name == "student"
                 else torchvision.models.resnet18(num_classes=2))
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        out[f"{name} t{threads}"] = timeit(
            step, cfg["minTime"], cfg["minIters"])
print(json.dumps(out))
