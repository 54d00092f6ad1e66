"""PyTorch side of bench/gpu_models.ts: the same workloads, eager mode,
cudnn.benchmark = True, NCHW fp32, strict fp32 (no TF32 anywhere) or TF32.

Usage: python bench/gpu_models_torch.py [--json OUT] [--quick]
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from _torch_common import StudentNet

args = sys.argv[1:]
json_path = args[args.index("--json") + 1] if "--json" in args else None
quick = "--quick" in args
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True
results = {}


def save():
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0),
                       "torch": torch.__version__, "results": results}, f, indent=2)


def measure(name, batch, setup):
    iters = 2 if quick else (10 if batch >= 256 else 20)
    try:
        step = setup()
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000 / iters
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
        results[name] = {"imgPerS": batch / (ms / 1000), "msPerStep": ms,
                         "peakLiveMiB": peak}
        print(f"{name}: {batch / (ms / 1000):.1f} img/s, {ms:.2f} ms/step, peak {peak:.0f} MiB")
    except Exception as e:  # keep going
        results[name] = {"error": repr(e)}
        print(f"{name}: FAILED {e!r}")
    save()


def train_step(model, x, y):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def f():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return f


def kd_step(teacher, student, x, y):
    teacher.eval()
    student.train()
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    T, alpha = 4.0, 0.9

    def f():
        with torch.no_grad():
            t = teacher(x)
        opt.zero_grad(set_to_none=True)
        s = student(x)
        kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
        loss = (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * kl
        loss.backward()
        opt.step()
    return f


def data(batch):
    return (torch.randn(batch, 3, 224, 224, device=dev),
            torch.randint(0, 2, (batch,), device=dev))


torch.manual_seed(0)
for mode in ("fp32", "tf32"):
    tf32 = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    for batch in (32, 256):
        if tf32 and batch == 32:
            continue
        measure(f"resnet18_train_b{batch}_{mode}", batch,
                lambda: train_step(torchvision.models.resnet18(num_classes=2).to(dev), *data(batch)))
    measure(f"kd_step_b256_{mode}", 256,
            lambda: kd_step(torchvision.models.resnet18(num_classes=2).to(dev),
                            StudentNet(224).to(dev), *data(256)))
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
measure("studentnet_train_b256_fp32", 256,
        lambda: train_step(StudentNet(224).to(dev), *data(256)))
save()
