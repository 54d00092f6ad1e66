"""PyTorch counterpart of tests/cuda/_peaks.ts: device memory of StudentNet
and the small conv net at the same batch and size, by
torch.cuda.memory_allocated / max_memory_allocated: inference under
no_grad (once, then ten calls dropping their outputs) and one SGD-momentum
training step. Prints one JSON line of the same shape.

Usage: python bench/gpu_peaks_torch.py [--batch 8] [--size 16]
"""
import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=8)
p.add_argument("--size", type=int, default=16)
a = p.parse_args()
N, S, C = a.batch, a.size, 10
dev = "cuda"
torch.manual_seed(0)


def student():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(4 * (S // 2) ** 2, C))


def conv_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * (S // 2) ** 2, C))


def measure(make):
    net = make().to(dev)
    x = torch.randn(N, 3, S, S, device=dev)
    labels = torch.randint(0, C, (N,), device=dev)
    net.eval()
    with torch.no_grad():
        net(x)
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        y = net(x)
    inference = {"before": base, "peak": torch.cuda.max_memory_allocated(),
                 "after": torch.cuda.memory_allocated()}
    del y
    loop_before = torch.cuda.memory_allocated()
    for _ in range(10):
        with torch.no_grad():
            net(x)
    loop_growth = torch.cuda.memory_allocated() - loop_before
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), labels).backward()
        opt.step()

    step()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    training = {"before": before, "peak": torch.cuda.max_memory_allocated(),
                "after": torch.cuda.memory_allocated()}
    return {"inference": inference, "loopGrowth": loop_growth, "training": training,
            "params": [q.numel() for q in net.parameters()],
            "buffers": [b.numel() for b in net.buffers()]}


out = {"batch": N, "size": S, "classes": C, "student": measure(student), "conv": measure(conv_net),
       "stats": {k: v for k, v in torch.cuda.memory_stats().items()
                 if k.startswith(("allocated_bytes.all", "reserved_bytes.all", "allocation.all"))}}
print(json.dumps(out))
