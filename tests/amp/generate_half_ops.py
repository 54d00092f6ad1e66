"""Writes tests/amp/fixtures/half_ops.json: what PyTorch computes for float16
and bfloat16 tensors on the CPU (elementwise ops, promotion, reductions,
matrix products), for tests/amp/half_tensor_test.ts. Run with
/usr/bin/python3 and PyTorch 1.13:

    /usr/bin/python3 tests/amp/generate_half_ops.py

CI reads the committed JSON and needs no PyTorch. Values are written as
float32 numbers (every float16 and bfloat16 value is one); inputs avoid
infinities and NaN (tests/amp/fixtures/half.json covers those bit for bit).

PyTorch 1.13 has no float16 matrix product on the CPU ("addmm_impl_cpu_"
not implemented for 'Half'), and its bfloat16 one rounds partial results
(up to several bfloat16 ulps from the exact product here): the reference
for both is the float32 product of the half values rounded once, which is
how kdeno defines it; PyTorch's own bfloat16 product is kept beside it
("matmul_torch") with its distance from the reference.
"""
import json
import os

import torch

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def vals(t):
    return t.float().flatten().tolist()


FALLBACKS = []


def half_op(name, dt, f, *args):
    """PyTorch's own op on the half tensors where 1.13's CPU has it; else
    (an op not implemented for the type) the float32 op rounded once, which
    is what later PyTorch versions compute, recorded in "fallbacks"."""
    try:
        return f(*args)
    except RuntimeError as e:
        if "not implemented" not in str(e):
            raise
        FALLBACKS.append(f"{name} {dt}".replace("torch.", ""))
        r = f(*[x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in args])
        return r.to(dt) if r.is_floating_point() else r


def main():
    g = torch.Generator().manual_seed(7)
    a32 = (torch.rand(4, 6, generator=g) * 8 - 4)
    b32 = (torch.rand(4, 6, generator=g) * 8 - 4)
    pos32 = torch.rand(4, 6, generator=g) * 4 + 0.05
    row32 = torch.rand(6, generator=g) * 2 - 1
    i32 = torch.randint(-5, 6, (4, 6), generator=g, dtype=torch.int32)
    m32 = torch.rand(6, 5, generator=g) * 2 - 1
    w32 = torch.rand(3, 6, generator=g) * 2 - 1
    bias32 = torch.rand(3, generator=g) * 2 - 1
    out = {
        "inputs": {
            "a": vals(a32), "b": vals(b32), "pos": vals(pos32), "row": vals(row32),
            "i": i32.flatten().tolist(), "m": vals(m32), "w": vals(w32),
            "bias": vals(bias32),
        },
        "shapes": {"a": [4, 6], "row": [6], "m": [6, 5], "w": [3, 6], "bias": [3]},
        "cases": {},
    }
    for name, dt in DTYPES.items():
        a, b, pos, row = a32.to(dt), b32.to(dt), pos32.to(dt), row32.to(dt)
        m, w, bias = m32.to(dt), w32.to(dt), bias32.to(dt)
        c = {}
        c["cast"] = vals(a)
        c["add"] = vals(half_op("add", dt, torch.add, a, b))
        c["sub"] = vals(half_op("sub", dt, torch.sub, a, b))
        c["mul"] = vals(half_op("mul", dt, torch.mul, a, b))
        c["div"] = vals(half_op("div", dt, torch.div, a, pos))
        c["add_row"] = vals(a + row)
        c["add_scalar"] = vals(a + 0.3)
        c["mul_scalar"] = vals(a * 1.7)
        c["rsub_scalar"] = vals(2.5 - a)
        c["add_int"] = vals(a + i32)
        assert (a + i32).dtype == dt
        c["add_float32"] = vals(a + b32)
        assert (a + b32).dtype == torch.float32
        c["neg"] = vals(half_op("neg", dt, lambda x: -x, a))
        c["abs"] = vals(half_op("abs", dt, torch.abs, a))
        c["relu"] = vals(half_op("relu", dt, torch.relu, a))
        c["square"] = vals(half_op("square", dt, torch.square, a))
        c["exp"] = vals(half_op("exp", dt, torch.exp, a))
        c["log"] = vals(half_op("log", dt, torch.log, pos))
        c["sqrt"] = vals(half_op("sqrt", dt, torch.sqrt, pos))
        c["rsqrt"] = vals(half_op("rsqrt", dt, torch.rsqrt, pos))
        c["sigmoid"] = vals(half_op("sigmoid", dt, torch.sigmoid, a))
        c["tanh"] = vals(half_op("tanh", dt, torch.tanh, a))
        c["clamp"] = vals(half_op("clamp", dt, lambda x: torch.clamp(x, -1.5, 2.25), a))
        c["maximum"] = vals(half_op("maximum", dt, torch.maximum, a, b))
        c["gt"] = half_op("gt", dt, lambda x, y: x > y, a, b).int().flatten().tolist()
        c["sum_all"] = vals(half_op("sum", dt, torch.sum, a))
        c["sum_dim1"] = vals(half_op("sum", dt, lambda x: x.sum(1), a))
        c["mean_dim0"] = vals(half_op("mean", dt, lambda x: x.mean(0), a))
        c["mean_all"] = vals(half_op("mean", dt, torch.mean, a))
        c["max_dim1"] = vals(half_op("max", dt, lambda x: x.max(1).values, a))
        c["argmax_dim1"] = half_op("argmax", dt, lambda x: x.argmax(1), a).tolist()
        # the float32 product of the half values, rounded once
        c["matmul"] = vals((a.float() @ m.float()).to(dt))
        c["linear"] = vals(torch.nn.functional.linear(a.float(), w.float(), bias.float()).to(dt))
        if dt == torch.bfloat16:
            # PyTorch 1.13's own CPU bfloat16 product, which rounds along
            # the way: kdeno's result must lie within its distance of it
            own = a @ m
            c["matmul_torch"] = vals(own)
            c["matmul_torch_maxdiff"] = [float((own.float() - (a.float() @ m.float()).to(dt).float()).abs().max())]
        out["cases"][name] = c
    out["fallbacks"] = sorted(set(FALLBACKS))
    out["cross"] = {"float16_plus_bfloat16": vals(a32.half() + b32.bfloat16())}
    assert (a32.half() + b32.bfloat16()).dtype == torch.float32
    path = os.path.join(os.path.dirname(__file__), "fixtures", "half_ops.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")
    print("wrote", path, "torch", torch.__version__)


if __name__ == "__main__":
    main()
