"""The PyTorch side of `deno task compare`: the same workloads as
bench/compare.ts, timed the same way, printed as one JSON object.

Usage: /usr/bin/python3 bench/compare_torch.py '<json config>'
"""
import json
import sys

import torch
import torch.nn as nn
import torchvision

from _torch_common import StudentNet, timeit

torch.set_num_threads(2)
cfg = json.loads(sys.argv[1])
torch.manual_seed(0)


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
