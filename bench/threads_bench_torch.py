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

import torch
import torch.nn as nn
import torchvision

from _torch_common import StudentNet, timeit

cfg = json.loads(sys.argv[1])


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
            step, cfg["minTime"], cfg["minIters"], warmup=2)
print(json.dumps(out))
