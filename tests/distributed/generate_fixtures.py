"""Fixtures for tests/distributed/sampler_test.ts from PyTorch 1.13.

torch.utils.data.distributed.DistributedSampler with shuffle=False (the
order then does not depend on the generator): every rank's indices for a
range of dataset sizes, world sizes and drop_last, written to
sampler_torch.json next to this file.

Run: /usr/bin/python3 tests/distributed/generate_fixtures.py
"""

import json
import os

import torch
from torch.utils.data.distributed import DistributedSampler

cases = []
for n in [0, 1, 5, 7, 10, 32, 33]:
    for world in [1, 2, 3, 4, 8]:
        for drop_last in [False, True]:
            ranks = []
            for rank in range(world):
                s = DistributedSampler(
                    range(n),
                    num_replicas=world,
                    rank=rank,
                    shuffle=False,
                    drop_last=drop_last,
                )
                ranks.append(list(iter(s)))
            cases.append(
                {
                    "n": n,
                    "world": world,
                    "dropLast": drop_last,
                    "numSamples": len(s),
                    "ranks": ranks,
                }
            )

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sampler_torch.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {out}")
