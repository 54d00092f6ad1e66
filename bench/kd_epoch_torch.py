"""The PyTorch side of bench/kd_epoch.ts: the tutorial's KD loop, same data,
transforms, models, loss and optimizer, 2 threads. Prints one JSON line:
images/s of the first and last epoch and the peak resident memory (VmHWM).

Usage: python3 bench/kd_epoch_torch.py [--data DIR] [--epochs N] [--workers N]
  [--max N]
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

p = argparse.ArgumentParser()
p.add_argument("--data", default="examples/data/fashion-binary/train")
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--workers", type=int, default=0)
p.add_argument("--max", type=int, default=None)
args = p.parse_args()

torch.set_num_threads(2)
torch.manual_seed(0)
tf = transforms.Compose([
    transforms.Resize((224, 224)),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
ds = datasets.ImageFolder(args.data, transform=tf)
if args.max:
    ds = Subset(ds, list(range(args.max)))
loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=args.workers)
n_classes = 2

teacher = torchvision.models.resnet18(num_classes=n_classes)
teacher.eval()


class StudentNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2))
        self.fc = nn.Linear(4 * 112 * 112, n_classes)

    def forward(self, x):
        out = self.layer1(x)
        out = out.view(out.size(0), -1)
        return self.fc(out)


student = StudentNet()
student.train()
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
ce = nn.CrossEntropyLoss()
kl = nn.KLDivLoss()  # the tutorial's 'mean'
T, alpha = 1.0, 0.25


def epoch():
    t0 = time.perf_counter()
    seen = 0
    for x, y in loader:
        with torch.no_grad():
            t_logits = teacher(x)
        s_logits = student(x)
        loss = (1 - alpha) * ce(s_logits, y) + alpha * kl(
            F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += x.shape[0]
    return seen / (time.perf_counter() - t0)


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
    "images": len(ds),
}))
