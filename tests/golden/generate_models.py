"""Golden fixtures for the tutorial's two models, from Debian's PyTorch 1.13.

Weights and inputs come from a closed-form formula that the TypeScript test
reproduces (tests/nn/_formula.ts), so no weights need committing: only logits,
losses, sampled gradients and running statistics.

Run: /usr/bin/python3 tests/golden/generate_models.py
"""
import json
import math
import os

import torch
import torch.nn as nn
import torchvision

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))


def formula(numel, k, scale, offset=0.0):
    i = torch.arange(numel, dtype=torch.float64)
    v = torch.sin(i * 0.7853 + k * 0.37) * scale + offset
    return v.to(torch.float32)


def init_formula(model):
    """Deterministic weights: parameters and buffers in state-dict order."""
    for k, (name, t) in enumerate(model.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        n = t.numel()
        if name.endswith("running_var"):
            v = formula(n, k, 0.3, 1.0)
        elif name.endswith("running_mean") or name.endswith("bias"):
            v = formula(n, k, 0.1)
        elif t.dim() == 1:  # batch-norm weight
            v = formula(n, k, 0.2, 1.0)
        else:
            fan_in = t[0].numel()
            v = formula(n, k, 1.5 / math.sqrt(fan_in))
        with torch.no_grad():
            t.copy_(v.reshape(t.shape))


def input_formula(shape):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    return torch.cos(i * 0.37).to(torch.float32).reshape(shape)


def sample_idx(numel, count=8):
    return sorted({(j * 7919 + 13) % numel for j in range(count)})


def summarize(t):
    flat = t.detach().reshape(-1).to(torch.float64)
    idx = sample_idx(flat.numel())
    return {
        "shape": list(t.shape),
        "sum": flat.sum().item(),
        "sumsq": (flat * flat).sum().item(),
        "idx": idx,
        "values": [flat[j].item() for j in idx],
    }


class StudentNet(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2))
        self.fc = nn.Linear(4 * (size // 2) * (size // 2), 2)

    def forward(self, x):
        out = self.layer1(x)
        out = out.view(out.size(0), -1)
        return self.fc(out)


def case(name, model, shape, labels, mode):
    init_formula(model)
    model.train(mode == "train")
    x = input_formula(shape).requires_grad_(True)
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, torch.tensor(labels))
    loss.backward()
    return {
        "name": name,
        "mode": mode,
        "inputShape": shape,
        "labels": labels,
        "logits": logits.detach().reshape(-1).tolist(),
        "logitsShape": list(logits.shape),
        "loss": loss.item(),
        "inputGrad": summarize(x.grad),
        "grads": {n: summarize(p.grad) for n, p in model.named_parameters()},
        "buffers": {n: summarize(b.float()) for n, b in model.named_buffers()},
    }


def main():
    torch.manual_seed(0)
    cases = []
    for mode in ("train", "eval"):
        cases.append(case(f"resnet18 2 classes 64x64 {mode}",
                          torchvision.models.resnet18(num_classes=2),
                          [2, 3, 64, 64], [0, 1], mode))
        cases.append(case(f"StudentNet 32x32 {mode}", StudentNet(32),
                          [4, 3, 32, 32], [0, 1, 1, 0], mode))
    cases.append(case("StudentNet 224x224 train", StudentNet(224),
                      [2, 3, 224, 224], [1, 0], "train"))
    out = {"generator": "tests/golden/generate_models.py",
           "torch": torch.__version__, "cases": cases}
    with open(os.path.join(HERE, "models.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
