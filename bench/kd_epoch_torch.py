"""The PyTorch side of bench/kd_epoch.ts: the tutorial's KD loop, same data,
transforms, models, loss and optimizer, 2 threads. Prints one JSON line:
images/s of the first and last epoch and the peak resident memory (VmHWM).

--mode student trains StudentNet alone (cross-entropy, Adam), no teacher. PyTorch has no
decoded-image cache, so every epoch decodes; --draft calls PIL's Image.draft("RGB", (224, 224))
in the loader (what thumbnail() does; torchvision's loader never does).

peakRssMb is this process's VmHWM; with --workers, workerPeakRssMb is the largest peak of the
worker processes (kdeno's Workers are threads, counted in its one process).

Usage: python3 bench/kd_epoch_torch.py [--data DIR] [--epochs N] [--workers N]
  [--max N] [--mode kd|student] [--size 224] [--draft]
"""
import argparse
import json
import re
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from _torch_common import StudentNet

p = argparse.ArgumentParser()
p.add_argument("--data", default="examples/data/fashion-binary/train")
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--workers", type=int, default=0)
p.add_argument("--max", type=int, default=None)
p.add_argument("--mode", choices=["kd", "student"], default="kd")
p.add_argument("--size", type=int, default=224)
p.add_argument("--draft", action="store_true")
args = p.parse_args()
size = args.size

torch.set_num_threads(2)
torch.manual_seed(0)
tf = transforms.Compose([
    transforms.Resize((size, size)),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])


def draft_loader(path):
    from PIL import Image
    with open(path, "rb") as f:
        img = Image.open(f)
        img.draft("RGB", (size, size))
        return img.convert("RGB")


ds = datasets.ImageFolder(args.data, transform=tf, **({"loader": draft_loader} if args.draft else {}))
if args.max:
    ds = Subset(ds, list(range(args.max)))
loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=args.workers)
n_classes = 2

teacher = torchvision.models.resnet18(num_classes=n_classes) if args.mode == "kd" else None
if teacher is not None:
    teacher.eval()


student = StudentNet(size, n_classes)
student.train()
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
ce = nn.CrossEntropyLoss()
kl = nn.KLDivLoss()  # the tutorial's 'mean'
T, alpha = 1.0, 0.25


def epoch():
    t0 = time.perf_counter()
    seen = 0
    for x, y in loader:
        s_logits = student(x)
        if teacher is None:
            loss = ce(s_logits, y)
        else:
            with torch.no_grad():
                t_logits = teacher(x)
            loss = (1 - alpha) * ce(s_logits, y) + alpha * kl(
                F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += x.shape[0]
    return seen / (time.perf_counter() - t0)


def worker_peak_rss_mb():
    """The largest peak RSS of the DataLoader's worker processes (they have exited: workers are
    not persistent), shared copy-on-write pages included; 0 without workers."""
    import resource
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if args.workers else 0.0


def peak_rss_mb():
    with open("/proc/self/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024 if m else float("nan")


rates = [epoch() for _ in range(max(1, args.epochs))]
print(json.dumps({
    "first": rates[0],
    "last": rates[-1],
    "rates": rates,
    "peakRssMb": peak_rss_mb(),
    "workerPeakRssMb": worker_peak_rss_mb(),
    "images": len(ds),
}))
