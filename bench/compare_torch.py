"""The PyTorch side of `deno task compare`: the same workloads as
bench/compare.ts, timed the same way, printed as one JSON object.

Usage: /usr/bin/python3 bench/compare_torch.py '<json config>'
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torchvision

torch.set_num_threads(2)
cfg = json.loads(sys.argv[1])
torch.manual_seed(0)


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


def timeit(fn, min_time, min_iters, warmup=1):
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if n >= min_iters and el >= min_time:
            return el / n


def train_step(model, x, y, opt):
    def f():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return f


out = {}
for w in cfg["workloads"]:
    kind = w["kind"]
    if kind == "gemm":
        n = w["n"]
        a, b = torch.randn(n, n), torch.randn(n, n)
        s = timeit(lambda: torch.mm(a, b), w["minTime"], 2)
        out[w["name"]] = 2 * n ** 3 / s / 1e9
        continue
    bs, size = w["batch"], w["size"]
    x = torch.randn(bs, 3, size, size)
    y = torch.randint(0, 2, (bs,))
    if kind.startswith("student"):
        model = StudentNet(size)
    else:
        model = torchvision.models.resnet18(num_classes=2)
    if kind.endswith("train"):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        fn = train_step(model, x, y, opt)
    else:
        model.eval()

        def fn():
            with torch.no_grad():
                model(x)
    s = timeit(fn, w["minTime"], w.get("minIters", 2))
    out[w["name"]] = bs / s
print(json.dumps(out))
