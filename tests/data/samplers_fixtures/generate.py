"""Writes class_weights.json: "balanced" class weights and the weighted
cross-entropy they give, from PyTorch.

Run from the repository root with /usr/bin/python3 (PyTorch 1.13.1):

    /usr/bin/python3 tests/data/samplers_fixtures/generate.py
    deno fmt tests/data/samplers_fixtures/class_weights.json

The weights follow scikit-learn's compute_class_weight("balanced"):
n_samples / (n_classes * count_c). The loss is
torch.nn.CrossEntropyLoss(weight=w) in its default "mean" reduction,
sum_i w[y_i] * l_i / sum_i w[y_i], with its gradient.
"""

import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(17)
cases = []
for name, counts in [
    ("binary, 1 to 3 (the chest X-ray ratio)", [13, 38]),
    ("three classes, 2 / 7 / 11", [2, 7, 11]),
    ("balanced", [5, 5]),
]:
    targets = torch.cat(
        [torch.full((c,), k, dtype=torch.long) for k, c in enumerate(counts)]
    )
    targets = targets[torch.randperm(len(targets))]
    n, k = len(targets), len(counts)
    weight = n / (k * torch.bincount(targets, minlength=k).double())
    logits = torch.randn(n, k, dtype=torch.float32, requires_grad=True)
    loss = F.cross_entropy(logits, targets, weight=weight.float())
    loss.backward()
    per = F.cross_entropy(logits, targets, reduction="none")
    w_y = weight.float()[targets]
    manual = (w_y * per).sum() / w_y.sum()
    assert torch.allclose(loss, manual)
    cases.append(
        {
            "name": name,
            "targets": targets.tolist(),
            "weight": weight.tolist(),
            "logits": logits.detach().flatten().tolist(),
            "loss": loss.item(),
            "unweightedLoss": per.mean().item(),
            "grad": logits.grad.flatten().tolist(),
        }
    )

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "class_weights.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
    f.write("\n")
print(f"wrote {out}")
