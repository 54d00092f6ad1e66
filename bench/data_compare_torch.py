"""PyTorch side of bench/data_compare.ts (Debian's python3-torch, python3-torchvision, PIL).

    /usr/bin/python3 bench/data_compare_torch.py make-xray DIR N   # synthetic X-ray-like JPEGs
    /usr/bin/python3 bench/data_compare_torch.py run ROOT WORKERS EPOCHS [SIZE]

`run` loads ROOT (an ImageFolder tree) with the tutorial's training transform
(Resize((SIZE, SIZE)), RandomHorizontalFlip, ToTensor, Normalize) through
DataLoader(batch_size=32, shuffle=True, num_workers=WORKERS), one warm-up epoch and then
EPOCHS timed ones, and prints one JSON line: {"imgs_per_s": [...], "imgs_per_cpu_s": [...]}
per epoch (wall clock; and per CPU-second of the process and its worker processes).
"""
import json
import os
import sys
import time

import numpy as np


def make_xray(out, n):
    """Chest-X-ray-like JPEGs: varying sizes, mostly gray (every 20th is RGB), q90."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        os.makedirs(os.path.join(out, cls), exist_ok=True)
    for i in range(n):
        w = int(rng.integers(1300, 2400))
        h = int(w * rng.uniform(0.75, 1.05))
        low = Image.fromarray((rng.random((9, 12)) * 120 + 60).astype(np.uint8)).resize((w, h), Image.BICUBIC)
        y, x = np.mgrid[0:h, 0:w]
        base = np.asarray(low, np.float64)
        lungs = np.exp(-(((x - w * 0.32) / (w * 0.16)) ** 2 + ((y - h * 0.5) / (h * 0.3)) ** 2)) + \
            np.exp(-(((x - w * 0.68) / (w * 0.16)) ** 2 + ((y - h * 0.5) / (h * 0.3)) ** 2))
        ribs = 18 * np.sin(y / (h / 22.0) + 2 * np.sin(x / (w / 3.0)))
        img = base - 70 * lungs + ribs * lungs + rng.normal(0, 5, (h, w))
        im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(1))
        if i % 20 == 19:
            im = im.convert("RGB")
        cls = "PNEUMONIA" if i % 3 else "NORMAL"
        im.save(os.path.join(out, cls, f"img_{i:04d}.jpeg"), quality=90)


def run(root, workers, epochs, size=224):
    import torch
    from torchvision import datasets, transforms

    torch.set_num_threads(1)  # per-core figures: the main process does not fan out
    tf = transforms.Compose([
        transforms.Resize((size, size)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(root=root, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers)
    rates, cpu_rates = [], []
    for e in range(epochs + 1):
        t, c = time.perf_counter(), sum(os.times()[:4])
        n = 0
        for x, _ in loader:
            n += x.shape[0]
        # The epoch's workers have been joined here, so their CPU time is in
        # os.times()' children fields.
        if e > 0:
            rates.append(n / (time.perf_counter() - t))
            cpu_rates.append(n / (sum(os.times()[:4]) - c))
    print(json.dumps({"imgs_per_s": rates, "imgs_per_cpu_s": cpu_rates, "n": len(ds)}))


if __name__ == "__main__":
    if sys.argv[1] == "make-xray":
        make_xray(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 224)
