"""Writes tests/amp/fixtures/half.json: float32 values (as bit patterns) and
what PyTorch makes of them in float16 and bfloat16, and float16 / bfloat16
patterns back to float32; and tests/amp/fixtures/half.safetensors: one
float32 tensor as F32 ("w32") and as PyTorch rounds it to F16 ("w16") and
BF16 ("wbf"), written by hand in the reference layout (the `safetensors`
package is not installed here; see tests/fixtures/io/make_safetensors.py).
Run with /usr/bin/python3 and PyTorch 1.13:

    /usr/bin/python3 tests/amp/generate.py

CI reads the committed JSON and needs no PyTorch.
"""
import json
import os
import struct

import torch


def bits(values):
    return torch.tensor(values, dtype=torch.float32).view(torch.int32).tolist()


SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors):
    """The reference layout: tensors by descending alignment then name,
    a JSON header padded with spaces to 8 bytes, little-endian data."""
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, chunks, offset = {}, [], 0
    for name in order:
        t = tensors[name].contiguous()
        raw = t.view(torch.int16).numpy().astype("<i2").tobytes() \
            if t.dtype != torch.float32 else t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for c in chunks:
            f.write(c)


def main():
    g = torch.Generator().manual_seed(0)
    special = [
        0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65519.996, 65520.0, 65536.0,
        1e-8, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26,
        2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -11), 6.1e-5, 5.96e-8,
        3.0e38, -3.4e38, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11,
        1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 0.1, 1.0 / 3.0, 3.14159265,
        float("inf"), float("-inf"), float("nan"),
    ]
    xs = bits(special)
    # NaNs with payloads and a negative NaN
    xs += [0x7FC00001, 0x7F800001, -0x00400000 & 0xFFFFFFFF, 0x7FFFFFFF]
    xs = [x - (1 << 32) if x >= 1 << 31 else x for x in xs]
    # values across the exponent range, and exact ties
    for e in range(-30, 20):
        r = torch.rand(40, generator=g) * 2 - 1
        xs += bits((r * 2.0 ** e).tolist())
    ties = torch.randint(0, 1 << 16, (200,), generator=g, dtype=torch.int32)
    xs += ((ties << 16) | 0x8000).tolist()  # bfloat16 ties
    xs += ((torch.randint(0x38000000 >> 13, 0x47000000 >> 13, (200,),
                          generator=g, dtype=torch.int32) << 13) | 0x1000).tolist()
    t = torch.tensor(xs, dtype=torch.int32).view(torch.float32)
    f16 = (t.to(torch.float16).view(torch.int16).to(torch.int32) & 0xFFFF).tolist()
    bf16 = (t.to(torch.bfloat16).view(torch.int16).to(torch.int32) & 0xFFFF).tolist()
    # every 7th pattern back to float32 (NaNs compared as NaN)
    patterns = list(range(0, 1 << 16, 7)) + [0x7C00, 0xFC00, 0x7E00, 0x0001, 0x8001, 0x7BFF, 0x0400, 0x03FF]
    p = torch.tensor(patterns, dtype=torch.int32).to(torch.int16)
    back16 = p.view(torch.float16).to(torch.float32).view(torch.int32).tolist()
    backbf = p.view(torch.bfloat16).to(torch.float32).view(torch.int32).tolist()
    out = {
        "torch": torch.__version__,
        "f32_bits": xs,
        "f16_bits": f16,
        "bf16_bits": bf16,
        "patterns": patterns,
        "f16_to_f32_bits": back16,
        "bf16_to_f32_bits": backbf,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    w = torch.tensor([[1.0, -2.5, 65504.0, 65520.0, 1e-8, 2.0 ** -24, 2.0 ** -25, 0.1],
                      [1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8,
                       float("inf"), float("-inf"), float("nan"), -0.0]], dtype=torch.float32)
    w = torch.cat([w, torch.randn(2, 8, generator=g) * 100])
    write_safetensors(os.path.join(here, "fixtures", "half.safetensors"), {
        "w32": w,
        "w16": w.to(torch.float16),
        "wbf": w.to(torch.bfloat16),
    })
    os.makedirs(os.path.join(here, "fixtures"), exist_ok=True)
    with open(os.path.join(here, "fixtures", "half.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
