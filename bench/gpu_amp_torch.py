"""PyTorch counterpart of bench/gpu_amp.ts: autocast matmul error, the
GradScaler scale over the same scripted sequence, and ResNet-18 training at
224 in float32 and under torch.autocast(float16) with a GradScaler.

Usage: python bench/gpu_amp_torch.py [--json OUT] [--batch 256] [--quick]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--json")
p.add_argument("--batch", type=int, default=256)
p.add_argument("--quick", action="store_true")
a = p.parse_args()
dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
results = {}
torch.manual_seed(0)
for name, dt in [("float16", torch.float16), ("bfloat16", torch.bfloat16)]:
    x, y = torch.randn(512, 512, device=dev), torch.randn(512, 512, device=dev)
    with torch.autocast("cuda", dtype=dt):
        z = (x @ y).float()
    ref = x.to(dt).double() @ y.to(dt).double()
    results[f"matmul_{name}"] = {"maxRelErr": ((z.double() - ref).abs().max() / ref.abs().max()).item()}

script = "ccciccccccicc"
m = torch.nn.Linear(4, 2).to(dev)
o = torch.optim.SGD(m.parameters(), lr=0.01)
s = torch.cuda.amp.GradScaler(growth_interval=3)
x = torch.randn(8, 4, device=dev)
yl = torch.randint(0, 2, (8,), device=dev)
scales = []
for c in script:
    o.zero_grad()
    s.scale(F.cross_entropy(m(x), yl)).backward()
    if c == "i":
        m.bias.grad = torch.tensor([float("inf"), 0.0], device=dev)
    s.step(o)
    s.update()
    scales.append(s.get_scale())
results["scaler"] = {"script": script, "scales": scales}
print("scaler", script, scales)

for use_amp in [False, True]:
    name = f"resnet18_train_b{a.batch}_{'amp_fp16' if use_amp else 'fp32'}"
    model = torchvision.models.resnet18(num_classes=2).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
    x = torch.randn(a.batch, 3, 224, 224, device=dev)
    y = torch.randint(0, 2, (a.batch,), device=dev)

    def step():
        opt.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    iters = 2 if a.quick else 10
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000 / iters
    peak = torch.cuda.max_memory_allocated() / 2 ** 20
    results[name] = {"imgPerS": a.batch / (ms / 1000), "msPerStep": ms, "peakLiveMiB": peak}
    print(f"{name}: {a.batch / (ms / 1000):.1f} img/s, peak {peak:.0f} MiB")
    del model, opt, x, y
    torch.cuda.empty_cache()

if a.json:
    with open(a.json, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(0), "results": results}, f, indent=2)
