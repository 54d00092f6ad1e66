"""PyTorch side of bench/data_compare.ts (Debian's python3-torch, python3-torchvision, PIL).

    /usr/bin/python3 bench/data_compare_torch.py run ROOT WORKERS EPOCHS [SIZE] [draft]

`run` loads ROOT (an ImageFolder tree) with the tutorial's training transform
(Resize((SIZE, SIZE)), RandomHorizontalFlip, ToTensor, Normalize) through
DataLoader(batch_size=32, shuffle=True, num_workers=WORKERS), one warm-up epoch and then
EPOCHS timed ones, and prints one JSON line: {"imgs_per_s": [...], "imgs_per_cpu_s": [...]}
per epoch (wall clock; and per CPU-second of the process and its worker processes).
With `draft`, the loader calls PIL's Image.draft("RGB", (SIZE, SIZE)) before convert("RGB")
(torchvision's own loader never does; this is the reference for kdeno's draft rows).
"""
import json
import os
import sys
import time


def draft_loader(size):
    def load(path):
        from PIL import Image
        with open(path, "rb") as f:
            img = Image.open(f)
            img.draft("RGB", (size, size))
            return img.convert("RGB")
    return load


def run(root, workers, epochs, size=224, draft=False):
    import torch
    from torchvision import datasets, transforms

    torch.set_num_threads(1)  # per-core figures: the main process does not fan out
    tf = transforms.Compose([
        transforms.Resize((size, size)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(root=root, transform=tf, **({"loader": draft_loader(size)} if draft else {}))
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
    run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 224,
        len(sys.argv) > 6 and sys.argv[6] == "draft")
