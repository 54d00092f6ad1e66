#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures that tests/ops/*_test.ts check kdeno against.

Run from anywhere with Debian's PyTorch (python3-torch, 1.13):

    /usr/bin/python3 tests/golden/generate.py

It writes one JSON file per op family next to this script. Every case is seeded
from its own name, so the output is the same on every run and adding a case
changes no other case.

Fixture format (one file per family):

    {"family": "conv", "torch": "1.13.1", "cases": [case, ...]}

    case = {
      "name": "stride 2 padding 1",            # unique within the family
      "op": "conv2d",                          # the kdeno op the test calls
      "options": {"stride": 2, "padding": 1},  # kdeno (camelCase) option names
      "inputs": [input, ...],                  # in the op's argument order
      "output": tensor,
      "gy": tensor,                            # only for differentiable cases
      "grads": {"x": tensor, ...},             # d sum(output * gy) / d input
      "after": {"runningMean": tensor, ...},   # state an op updated in place
    }
    input  = tensor + {"name": "x", "requiresGrad": true}
           | {"name": "other", "scalar": 2.5}
    tensor = {"shape": [2, 3], "dtype": "float32" | "int32", "data": [...]}

`data` is row-major and flat. float32 values are written with the shortest
decimal that reads back as the same float32; nothing is rounded. PyTorch's
bool and int64 results are written as int32 (kdeno has no bool or int64).

The optim family has its own case shapes; see `optim_cases` below.
"""

import json
import os
import warnings
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
warnings.filterwarnings("ignore", message="reduction: .mean. divides")
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))


# --- encoding -----------------------------------------------------------------


def f32(v):
    """The shortest decimal that reads back as this float32, as a Python float."""
    v = np.float32(v)
    if not np.isfinite(v):
        raise ValueError(f"non-finite value {v} in a fixture")
    return float(np.format_float_positional(v, unique=True, trim="-"))


def enc(t):
    t = t.detach()
    if t.dtype in (torch.bool, torch.int64, torch.int32):
        data = [int(v) for v in t.to(torch.int64).flatten().tolist()]
        dtype = "int32"
    elif t.dtype == torch.float32:
        data = [f32(v) for v in t.flatten().numpy()]
        dtype = "float32"
    else:
        raise TypeError(f"unexpected dtype {t.dtype}")
    return {"shape": list(t.shape), "dtype": dtype, "data": data}


def seed_for(family, name):
    return zlib.crc32(f"{family}/{name}".encode())


class Inp:
    """One op input: a tensor (float32 requires grad unless told not to) or a scalar."""

    def __init__(self, name, value, grad=None):
        self.name = name
        if isinstance(value, torch.Tensor):
            if value.dtype == torch.int64:
                value = value.to(torch.int32)
            is_float = value.dtype == torch.float32
            self.grad = is_float if grad is None else grad
            self.value = value.detach().clone().requires_grad_(self.grad)
            self.scalar = False
        else:
            self.value = value
            self.grad = False
            self.scalar = True

    def encode(self):
        if self.scalar:
            return {"name": self.name, "scalar": self.value}
        d = {"name": self.name}
        d.update(enc(self.value))
        d["requiresGrad"] = self.grad
        return d

    def torch(self):
        # PyTorch wants int64 class indices and index tensors.
        if not self.scalar and self.value.dtype == torch.int32:
            return self.value.to(torch.int64)
        return self.value


class Family:
    def __init__(self, name):
        self.name = name
        self.cases = []
        self.names = set()

    def case(self, name, op, options, make_inputs, fn, differentiable=True):
        """Adds one case.

        make_inputs() -> [Inp, ...] runs right after seeding; fn(*torch_inputs)
        returns the output tensor, or (output, {"key": tensor}) for ops that also
        update state in place.
        """
        assert name not in self.names, f"duplicate case {self.name}/{name}"
        self.names.add(name)
        torch.manual_seed(seed_for(self.name, name))
        inputs = make_inputs()
        res = fn(*[i.torch() for i in inputs])
        after = None
        if isinstance(res, tuple):
            res, after = res
        c = {
            "name": name,
            "op": op,
            "options": options,
            "inputs": [i.encode() for i in inputs],
            "output": enc(res),
        }
        wants = [i for i in inputs if i.grad]
        if differentiable and wants and res.dtype == torch.float32:
            gy = torch.randn(res.shape)
            (res * gy).sum().backward()
            c["gy"] = enc(gy)
            c["grads"] = {i.name: enc(i.value.grad) for i in wants}
        if after is not None:
            c["after"] = {k: enc(v) for k, v in after.items()}
        self.cases.append(c)

    def write(self):
        path = os.path.join(HERE, f"{self.name}.json")
        lines = [json.dumps(c, separators=(",", ":")) for c in self.cases]
        head = json.dumps({"family": self.name, "torch": torch.__version__})
        with open(path, "w") as f:
            f.write(head[:-1] + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n")
        return path


# --- input makers ---------------------------------------------------------------


def randn(*shape):
    return torch.randn(shape)


def positive(*shape):
    return torch.rand(shape) + 0.5


def halves(*shape):
    """Values on a 0.5 grid, so comparisons see ties."""
    return torch.round(torch.randn(shape) * 2) / 2


def ints(lo, hi, *shape):
    return torch.randint(lo, hi, shape, dtype=torch.int32)


# --- families -------------------------------------------------------------------


def elementwise():
    fam = Family("elementwise")
    binary = {
        "add": torch.add,
        "sub": torch.sub,
        "mul": torch.mul,
        "div": torch.div,
        "maximum": torch.maximum,
        "minimum": torch.minimum,
    }
    for op, fn in binary.items():
        rhs = positive if op == "div" else randn
        fam.case(f"{op} same shape", op, {},
                 lambda: [Inp("x", randn(2, 3)), Inp("other", rhs(2, 3))], fn)
        fam.case(f"{op} broadcast [2, 3] and [3]", op, {},
                 lambda: [Inp("x", randn(2, 3)), Inp("other", rhs(3))], fn)
        fam.case(f"{op} broadcast [2, 1, 4] and [3, 1]", op, {},
                 lambda: [Inp("x", randn(2, 1, 4)), Inp("other", rhs(3, 1))], fn)
        fam.case(f"{op} broadcast [3] and [2, 3] (left side grows)", op, {},
                 lambda: [Inp("x", randn(3)), Inp("other", rhs(2, 3))], fn)
        fam.case(f"{op} 0-d tensor operand", op, {},
                 lambda: [Inp("x", randn(2, 3)), Inp("other", rhs())], fn)
        if op in ("maximum", "minimum"):
            # torch.maximum takes no Python scalar; kdeno's does.
            fam.case(f"{op} scalar 0.25", op, {},
                     lambda: [Inp("x", randn(2, 3)), Inp("other", 0.25)],
                     lambda x, o: fn(x, torch.tensor(o)))
        else:
            fam.case(f"{op} scalar 2.5", op, {},
                     lambda: [Inp("x", randn(2, 3)), Inp("other", 2.5)], fn)

    # pow: tensor exponents (grad to both), scalar exponents
    fam.case("pow tensor exponent", "pow", {},
             lambda: [Inp("x", positive(2, 3)), Inp("other", randn(2, 3))], torch.pow)
    fam.case("pow tensor exponent broadcast [3, 1]", "pow", {},
             lambda: [Inp("x", positive(2, 3, 4)), Inp("other", randn(3, 1))], torch.pow)
    for e in (2, 3, 0.5, -1.5):
        maker = randn if float(e).is_integer() else positive
        label = "any sign base" if maker is randn else "positive base"
        fam.case(f"pow scalar {e} {label}", "pow", {},
                 lambda: [Inp("x", maker(2, 3)), Inp("other", e)], torch.pow)

    unary = {
        "neg": (torch.neg, randn),
        "exp": (torch.exp, randn),
        "log": (torch.log, positive),
        "sqrt": (torch.sqrt, positive),
        "rsqrt": (torch.rsqrt, positive),
        "abs": (torch.abs, randn),
        "relu": (torch.relu, randn),
        "sigmoid": (torch.sigmoid, randn),
        "tanh": (torch.tanh, randn),
        "square": (torch.square, randn),
    }
    for op, (fn, maker) in unary.items():
        fam.case(f"{op} [3, 4]", op, {}, lambda: [Inp("x", maker(3, 4))], fn)
    fam.case("sigmoid large magnitudes", "sigmoid", {},
             lambda: [Inp("x", randn(2, 4) * 30)], torch.sigmoid)
    fam.case("tanh large magnitudes", "tanh", {},
             lambda: [Inp("x", randn(2, 4) * 30)], torch.tanh)

    for opts in ({"min": -0.5, "max": 0.5}, {"min": -0.3}, {"max": 0.2}):
        label = " ".join(f"{k} {v}" for k, v in opts.items())
        fam.case(f"clamp {label}", "clamp", opts, lambda: [Inp("x", randn(3, 4))],
                 lambda x, o=opts: torch.clamp(x, o.get("min"), o.get("max")))

    cmp = {
        "eq": torch.eq,
        "ne": torch.ne,
        "lt": torch.lt,
        "le": torch.le,
        "gt": torch.gt,
        "ge": torch.ge,
    }
    for op, fn in cmp.items():
        fam.case(f"{op} broadcast [3, 4] and [4] with ties", op, {},
                 lambda: [Inp("x", halves(3, 4)), Inp("other", halves(4))], fn)
        fam.case(f"{op} scalar 0.5", op, {},
                 lambda: [Inp("x", halves(3, 4)), Inp("other", 0.5)], fn)
        fam.case(f"{op} int32", op, {},
                 lambda: [Inp("x", ints(0, 3, 2, 3)), Inp("other", ints(0, 3, 3))], fn)

    fam.case("where same shape", "where", {},
             lambda: [Inp("condition", ints(0, 2, 3, 4)), Inp("x", randn(3, 4)),
                      Inp("other", randn(3, 4))],
             lambda c, a, b: torch.where(c.bool(), a, b))
    fam.case("where broadcast [3, 1], [3, 4], [1, 4]", "where", {},
             lambda: [Inp("condition", ints(0, 2, 3, 1)), Inp("x", randn(3, 4)),
                      Inp("other", randn(1, 4))],
             lambda c, a, b: torch.where(c.bool(), a, b))
    fam.case("where broadcast other [3]", "where", {},
             lambda: [Inp("condition", ints(0, 2, 2, 3)), Inp("x", randn(2, 3)),
                      Inp("other", randn(3))],
             lambda c, a, b: torch.where(c.bool(), a, b))

    # int32 arithmetic and int32 -> float32 promotion
    fam.case("add int32 and int32", "add", {},
             lambda: [Inp("x", ints(-5, 5, 2, 3)), Inp("other", ints(-5, 5, 3))], torch.add)
    fam.case("sub int32 and int scalar", "sub", {},
             lambda: [Inp("x", ints(-5, 5, 2, 3)), Inp("other", 3)], torch.sub)
    fam.case("mul int32 and int32", "mul", {},
             lambda: [Inp("x", ints(-5, 5, 2, 3)), Inp("other", ints(-5, 5, 2, 3))], torch.mul)
    fam.case("mul int32 by float32 promotes", "mul", {},
             lambda: [Inp("x", ints(-5, 5, 2, 3)), Inp("other", randn(3))], torch.mul)
    fam.case("add float32 and int32 promotes", "add", {},
             lambda: [Inp("x", randn(2, 3)), Inp("other", ints(-5, 5, 2, 3))], torch.add)
    fam.case("neg int32", "neg", {}, lambda: [Inp("x", ints(-5, 5, 2, 3))], torch.neg)
    fam.case("abs int32", "abs", {}, lambda: [Inp("x", ints(-5, 5, 2, 3))], torch.abs)
    return fam


def reduce():
    fam = Family("reduce")
    dims = [
        ("all dims", None, False),
        ("dim 1", 1, False),
        ("dim -1 keepdim", -1, True),
        ("dim 0", 0, False),
        ("dims [0, 2]", [0, 2], False),
        ("dims [0, 2] keepdim", [0, 2], True),
    ]

    def opts(dim, keepdim, **extra):
        o = {}
        if dim is not None:
            o["dim"] = dim
        o["keepdim"] = keepdim
        o.update(extra)
        return o

    def plain(fn_all, fn_dim):
        def f(x, dim, keepdim):
            if dim is None:
                return fn_all(x)
            return fn_dim(x, dim, keepdim)
        return f

    table = {
        "sum": plain(torch.sum, lambda x, d, k: torch.sum(x, d, keepdim=k)),
        "mean": plain(torch.mean, lambda x, d, k: torch.mean(x, d, keepdim=k)),
        "max": plain(torch.max, lambda x, d, k: torch.amax(x, d, keepdim=k)),
        "min": plain(torch.min, lambda x, d, k: torch.amin(x, d, keepdim=k)),
    }
    for op, fn in table.items():
        for label, dim, keepdim in dims:
            fam.case(f"{op} {label}", op, opts(dim, keepdim),
                     lambda: [Inp("x", randn(2, 3, 4))],
                     lambda x, d=dim, k=keepdim, f=fn: f(x, d, k))
    # torch.max(x, dim) (values, indices) routes the gradient through the index
    fam.case("max dim 1 of a 2-D input", "max", {"dim": 1, "keepdim": False},
             lambda: [Inp("x", randn(4, 5))], lambda x: torch.max(x, 1).values)
    fam.case("sum of a 1-D input", "sum", {"keepdim": False},
             lambda: [Inp("x", randn(7))], torch.sum)
    fam.case("mean of a 0-d input", "mean", {"keepdim": False},
             lambda: [Inp("x", randn())], torch.mean)

    for op, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
        for label, dim, keepdim in dims[:4]:
            fam.case(f"{op} {label}", op, opts(dim, keepdim),
                     lambda: [Inp("x", randn(2, 3, 4))],
                     lambda x, d=dim, k=keepdim, f=fn: f(x) if d is None
                     else f(x, d, keepdim=k))

    for op, fn in (("var", torch.var), ("std", torch.std)):
        for corr in (0, 1):
            for label, dim, keepdim in dims:
                fam.case(f"{op} correction {corr} {label}", op,
                         opts(dim, keepdim, correction=corr),
                         lambda: [Inp("x", randn(2, 3, 4))],
                         lambda x, d=dim, k=keepdim, c=corr, f=fn:
                         f(x, dim=d, correction=c, keepdim=k))

    fam.case("sum int32 all dims", "sum", {"keepdim": False},
             lambda: [Inp("x", ints(-5, 5, 3, 4))], torch.sum)
    fam.case("sum int32 dim 1", "sum", {"dim": 1, "keepdim": False},
             lambda: [Inp("x", ints(-5, 5, 3, 4))], lambda x: torch.sum(x, 1))
    fam.case("max int32 dim 0", "max", {"dim": 0, "keepdim": False},
             lambda: [Inp("x", ints(-50, 50, 3, 4))], lambda x: torch.amax(x, 0))
    fam.case("argmax int32 dim 1", "argmax", {"dim": 1, "keepdim": False},
             lambda: [Inp("x", ints(-50, 50, 3, 4))], lambda x: torch.argmax(x, 1))
    return fam


def matmul():
    fam = Family("matmul")
    shapes = [
        ("1-D dot 1-D", (4,), (4,)),
        ("2-D", (3, 4), (4, 5)),
        ("vector-matrix", (4,), (4, 5)),
        ("matrix-vector", (3, 4), (4,)),
        ("batched", (2, 3, 4), (2, 4, 5)),
        ("batched times 2-D", (2, 3, 4), (4, 5)),
        ("2-D times batched", (3, 4), (2, 4, 5)),
        ("broadcast batch dims [2, 1] and [3]", (2, 1, 3, 4), (3, 4, 5)),
        ("1-D times batched", (4,), (2, 4, 5)),
        ("batched times 1-D", (2, 3, 4), (4,)),
    ]
    for label, sa, sb in shapes:
        fam.case(label, "matmul", {},
                 lambda: [Inp("x", randn(*sa)), Inp("other", randn(*sb))], torch.matmul)
    fam.case("transposed left operand", "matmul", {"transposeX": True},
             lambda: [Inp("x", randn(4, 3)), Inp("other", randn(4, 5))],
             lambda a, b: a.t().matmul(b))
    fam.case("transposed right operand", "matmul", {"transposeOther": True},
             lambda: [Inp("x", randn(3, 4)), Inp("other", randn(5, 4))],
             lambda a, b: a.matmul(b.t()))
    fam.case("larger 2-D [17, 33] @ [33, 9]", "matmul", {},
             lambda: [Inp("x", randn(17, 33)), Inp("other", randn(33, 9))], torch.matmul)

    fam.case("linear with bias", "linear", {},
             lambda: [Inp("x", randn(3, 4)), Inp("weight", randn(5, 4)), Inp("bias", randn(5))],
             lambda x, w, b: F.linear(x, w, b))
    fam.case("linear without bias", "linear", {},
             lambda: [Inp("x", randn(3, 4)), Inp("weight", randn(5, 4))],
             lambda x, w: F.linear(x, w))
    fam.case("linear 3-D input", "linear", {},
             lambda: [Inp("x", randn(2, 3, 4)), Inp("weight", randn(5, 4)), Inp("bias", randn(5))],
             lambda x, w, b: F.linear(x, w, b))
    fam.case("linear 1-D input", "linear", {},
             lambda: [Inp("x", randn(4)), Inp("weight", randn(2, 4)), Inp("bias", randn(2))],
             lambda x, w, b: F.linear(x, w, b))
    return fam


def shape():
    fam = Family("shape")
    x234 = lambda: [Inp("x", randn(2, 3, 4))]  # noqa: E731
    fam.case("reshape [4, 6]", "reshape", {"shape": [4, 6]}, x234,
             lambda x: x.reshape(4, 6))
    fam.case("reshape [-1, 2]", "reshape", {"shape": [-1, 2]}, x234,
             lambda x: x.reshape(-1, 2))
    fam.case("reshape to 1-D", "reshape", {"shape": [24]}, x234,
             lambda x: x.reshape(24))
    fam.case("view [6, -1]", "view", {"shape": [6, -1]}, x234, lambda x: x.view(6, -1))
    fam.case("permute [2, 0, 1]", "permute", {"dims": [2, 0, 1]}, x234,
             lambda x: x.permute(2, 0, 1))
    fam.case("permute [1, 0, 2]", "permute", {"dims": [1, 0, 2]}, x234,
             lambda x: x.permute(1, 0, 2))
    fam.case("permute then reshape (non-contiguous)", "permute",
             {"dims": [2, 0, 1], "thenReshape": [4, 6]}, x234,
             lambda x: x.permute(2, 0, 1).reshape(4, 6))
    fam.case("transpose 0 2", "transpose", {"dim0": 0, "dim1": 2}, x234,
             lambda x: x.transpose(0, 2))
    fam.case("transpose -1 -2", "transpose", {"dim0": -1, "dim1": -2}, x234,
             lambda x: x.transpose(-1, -2))
    fam.case("t of [3, 4]", "t", {}, lambda: [Inp("x", randn(3, 4))], lambda x: x.t())
    fam.case("flatten all", "flatten", {}, x234, lambda x: x.flatten())
    fam.case("flatten from 1", "flatten", {"startDim": 1}, x234, lambda x: x.flatten(1))
    fam.case("flatten 0 to 1", "flatten", {"startDim": 0, "endDim": 1}, x234,
             lambda x: x.flatten(0, 1))
    x2131 = lambda: [Inp("x", randn(2, 1, 3, 1))]  # noqa: E731
    fam.case("squeeze all size-1 dims", "squeeze", {}, x2131, lambda x: x.squeeze())
    fam.case("squeeze dim 1", "squeeze", {"dim": 1}, x2131, lambda x: x.squeeze(1))
    fam.case("squeeze dim -1", "squeeze", {"dim": -1}, x2131, lambda x: x.squeeze(-1))
    fam.case("squeeze dim 0 of size 2 is a no-op", "squeeze", {"dim": 0}, x2131,
             lambda x: x.squeeze(0))
    fam.case("unsqueeze 0", "unsqueeze", {"dim": 0}, x234, lambda x: x.unsqueeze(0))
    fam.case("unsqueeze 2", "unsqueeze", {"dim": 2}, x234, lambda x: x.unsqueeze(2))
    fam.case("unsqueeze -1", "unsqueeze", {"dim": -1}, x234, lambda x: x.unsqueeze(-1))
    fam.case("expand [3, 1] to [2, 3, 4]", "expand", {"shape": [2, 3, 4]},
             lambda: [Inp("x", randn(3, 1))], lambda x: x.expand(2, 3, 4))
    fam.case("expand with -1", "expand", {"shape": [2, -1, 4]},
             lambda: [Inp("x", randn(1, 3, 1))], lambda x: x.expand(2, -1, 4))
    fam.case("expand then contiguous", "expand", {"shape": [3, 4], "thenContiguous": True},
             lambda: [Inp("x", randn(3, 1))], lambda x: x.expand(3, 4).contiguous())

    fam.case("cat dim 0", "cat", {"dim": 0},
             lambda: [Inp("t0", randn(1, 3)), Inp("t1", randn(2, 3)), Inp("t2", randn(3, 3))],
             lambda *ts: torch.cat(ts, 0))
    fam.case("cat dim 1", "cat", {"dim": 1},
             lambda: [Inp("t0", randn(2, 1, 2)), Inp("t1", randn(2, 3, 2)),
                      Inp("t2", randn(2, 2, 2))],
             lambda *ts: torch.cat(ts, 1))
    fam.case("cat dim -1", "cat", {"dim": -1},
             lambda: [Inp("t0", randn(2, 3, 1)), Inp("t1", randn(2, 3, 4))],
             lambda *ts: torch.cat(ts, -1))
    fam.case("stack dim 0", "stack", {"dim": 0},
             lambda: [Inp("t0", randn(2, 3)), Inp("t1", randn(2, 3)), Inp("t2", randn(2, 3))],
             lambda *ts: torch.stack(ts, 0))
    fam.case("stack dim 1", "stack", {"dim": 1},
             lambda: [Inp("t0", randn(2, 3)), Inp("t1", randn(2, 3))],
             lambda *ts: torch.stack(ts, 1))
    fam.case("stack dim -1", "stack", {"dim": -1},
             lambda: [Inp("t0", randn(2, 3)), Inp("t1", randn(2, 3))],
             lambda *ts: torch.stack(ts, -1))

    x365 = lambda: [Inp("x", randn(3, 6, 5))]  # noqa: E731
    fam.case("slice dim 1 [1, 4)", "slice", {"dim": 1, "start": 1, "end": 4}, x365,
             lambda x: x[:, 1:4])
    fam.case("slice dim 1 with step 2", "slice", {"dim": 1, "start": 0, "end": 6, "step": 2},
             x365, lambda x: x[:, 0:6:2])
    fam.case("slice dim 2 step 3 from 1", "slice", {"dim": 2, "start": 1, "end": 5, "step": 3},
             x365, lambda x: x[:, :, 1:5:3])
    fam.case("slice dim 0 to the end", "slice", {"dim": 0, "start": 1}, x365,
             lambda x: x[1:])
    fam.case("slice negative start", "slice", {"dim": -1, "start": -2}, x365,
             lambda x: x[..., -2:])
    fam.case("narrow dim 1", "narrow", {"dim": 1, "start": 2, "length": 3}, x365,
             lambda x: x.narrow(1, 2, 3))
    fam.case("narrow dim -1", "narrow", {"dim": -1, "start": 0, "length": 2}, x365,
             lambda x: x.narrow(-1, 0, 2))
    fam.case("indexSelect dim 1 with repeats", "indexSelect", {"dim": 1},
             lambda: [Inp("x", randn(3, 4)), Inp("index", torch.tensor([2, 0, 2, 3]))],
             lambda x, i: x.index_select(1, i))
    fam.case("indexSelect dim 0", "indexSelect", {"dim": 0},
             lambda: [Inp("x", randn(4, 3)), Inp("index", torch.tensor([3, 1]))],
             lambda x, i: x.index_select(0, i))
    fam.case("gather dim 1", "gather", {"dim": 1},
             lambda: [Inp("x", randn(3, 4)), Inp("index", ints(0, 4, 3, 2))],
             lambda x, i: x.gather(1, i))
    fam.case("gather dim 0 with repeats", "gather", {"dim": 0},
             lambda: [Inp("x", randn(3, 4)), Inp("index", ints(0, 3, 5, 4))],
             lambda x, i: x.gather(0, i))
    return fam


def softmax():
    fam = Family("softmax")
    for op, fn in (("softmax", torch.softmax), ("logSoftmax", torch.log_softmax)):
        for dim in (0, 1, -1):
            fam.case(f"{op} dim {dim} of [2, 3, 4]", op, {"dim": dim},
                     lambda: [Inp("x", randn(2, 3, 4))], lambda x, d=dim, f=fn: f(x, d))
        fam.case(f"{op} dim 1 of [4, 5]", op, {"dim": 1},
                 lambda: [Inp("x", randn(4, 5))], lambda x, f=fn: f(x, 1))
        fam.case(f"{op} large logits (stability)", op, {"dim": -1},
                 lambda: [Inp("x", randn(3, 5) * 40)], lambda x, f=fn: f(x, -1))
        fam.case(f"{op} of a 1-D input", op, {"dim": 0},
                 lambda: [Inp("x", randn(6))], lambda x, f=fn: f(x, 0))
    return fam


def conv():
    fam = Family("conv")

    def add(name, xs, ws, bias, **o):
        def make():
            ins = [Inp("x", randn(*xs)), Inp("weight", randn(*ws) * 0.5)]
            if bias:
                ins.append(Inp("bias", randn(ws[0])))
            return ins

        def fn(x, w, b=None):
            return F.conv2d(x, w, b, **{"stride": o.get("stride", 1),
                                        "padding": o.get("padding", 0),
                                        "dilation": o.get("dilation", 1),
                                        "groups": o.get("groups", 1)})
        fam.case(name, "conv2d", o, make, fn)

    add("3x3 no padding with bias", (2, 3, 5, 5), (4, 3, 3, 3), True)
    add("stride 2 padding 1", (2, 3, 6, 6), (4, 3, 3, 3), True, stride=2, padding=1)
    add("padding 1 without bias", (2, 3, 5, 5), (2, 3, 3, 3), False, padding=1)
    add("dilation 2 padding 2", (1, 2, 7, 7), (3, 2, 3, 3), True, dilation=2, padding=2)
    add("groups 2 padding 1", (2, 4, 5, 5), (6, 2, 3, 3), True, groups=2, padding=1)
    add("depthwise groups 3", (1, 3, 5, 5), (3, 1, 3, 3), False, groups=3)
    add("non-square kernel and input, stride [2, 1] padding [1, 0]",
        (1, 2, 6, 5), (3, 2, 2, 3), True, stride=[2, 1], padding=[1, 0])
    add("dilation [1, 2] non-square", (1, 2, 5, 7), (2, 2, 3, 2), True, dilation=[1, 2])
    add("1x1 kernel", (2, 3, 4, 4), (5, 3, 1, 1), True)
    add("stride 3 leaves the last rows unused", (1, 2, 7, 7), (2, 2, 3, 3), True, stride=3)
    add("single channel like the student", (2, 1, 6, 6), (4, 1, 3, 3), True, padding=1)
    return fam


def pool():
    fam = Family("pool")

    def maxp(name, xs, k, **o):
        fam.case(name, "maxPool2d", dict({"kernelSize": k}, **o),
                 lambda: [Inp("x", randn(*xs))],
                 lambda x: F.max_pool2d(x, k, stride=o.get("stride"),
                                        padding=o.get("padding", 0),
                                        dilation=o.get("dilation", 1),
                                        ceil_mode=o.get("ceilMode", False)))

    def avgp(name, xs, k, **o):
        fam.case(name, "avgPool2d", dict({"kernelSize": k}, **o),
                 lambda: [Inp("x", randn(*xs))],
                 lambda x: F.avg_pool2d(x, k, stride=o.get("stride"),
                                        padding=o.get("padding", 0),
                                        ceil_mode=o.get("ceilMode", False),
                                        count_include_pad=o.get("countIncludePad", True)))

    maxp("max kernel 2 (stride defaults to kernel)", (2, 2, 6, 6), 2)
    maxp("max kernel 2 stride 2 on odd input", (1, 2, 5, 5), 2, stride=2)
    maxp("max kernel 3 stride 2 padding 1", (1, 2, 7, 7), 3, stride=2, padding=1)
    maxp("max kernel 3 stride 2 ceilMode", (1, 2, 6, 6), 3, stride=2, ceilMode=True)
    maxp("max kernel 3 stride 1 overlapping", (1, 1, 5, 5), 3, stride=1)
    maxp("max kernel [2, 3] stride [2, 1]", (1, 2, 6, 5), [2, 3], stride=[2, 1])
    maxp("max kernel 2 dilation 2", (1, 2, 6, 6), 2, stride=1, dilation=2)
    maxp("max kernel 3 stride 2 padding 1 ceilMode", (1, 1, 6, 6), 3, stride=2,
         padding=1, ceilMode=True)

    avgp("avg kernel 2", (2, 2, 6, 6), 2)
    avgp("avg kernel 3 stride 2 padding 1 countIncludePad", (1, 2, 7, 7), 3, stride=2,
         padding=1)
    avgp("avg kernel 3 stride 2 padding 1 countIncludePad false", (1, 2, 7, 7), 3,
         stride=2, padding=1, countIncludePad=False)
    avgp("avg kernel 3 stride 2 ceilMode", (1, 2, 6, 6), 3, stride=2, ceilMode=True)
    avgp("avg kernel 3 stride 2 padding 1 ceilMode countIncludePad false", (1, 1, 6, 6),
         3, stride=2, padding=1, ceilMode=True, countIncludePad=False)
    avgp("avg kernel 3 stride 2 padding 1 ceilMode countIncludePad", (1, 1, 6, 6),
         3, stride=2, padding=1, ceilMode=True)
    avgp("avg kernel [3, 2] stride [1, 2]", (1, 2, 5, 6), [3, 2], stride=[1, 2])

    def adapt(name, xs, out):
        fam.case(name, "adaptiveAvgPool2d", {"outputSize": out},
                 lambda: [Inp("x", randn(*xs))],
                 lambda x: F.adaptive_avg_pool2d(x, out))

    adapt("adaptive 6x6 to 3x3 (divisible)", (2, 2, 6, 6), [3, 3])
    adapt("adaptive 5x7 to 3x4 (not divisible)", (1, 2, 5, 7), [3, 4])
    adapt("adaptive to 1 (global average)", (2, 3, 4, 5), 1)
    adapt("adaptive 4x4 to 3 (overlapping windows)", (1, 2, 4, 4), 3)
    adapt("adaptive 3x3 to 5x5 (upsampling)", (1, 1, 3, 3), [5, 5])
    return fam


def norm():
    fam = Family("norm")

    def add(name, xs, training, affine, momentum=0.1, eps=1e-5):
        c = xs[1]

        def make():
            ins = [Inp("x", randn(*xs) * 2 + 0.5),
                   Inp("runningMean", randn(c) * 0.1, grad=False),
                   Inp("runningVar", torch.rand(c) + 0.5, grad=False)]
            if affine:
                ins += [Inp("weight", torch.rand(c) + 0.5), Inp("bias", randn(c))]
            return ins

        def fn(x, rm, rv, w=None, b=None):
            rm, rv = rm.clone(), rv.clone()
            y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps)
            return y, {"runningMean": rm, "runningVar": rv}

        fam.case(name, "batchNorm", {"training": training, "momentum": momentum, "eps": eps},
                 make, fn)

    add("train 4-D with weight and bias", (3, 2, 4, 4), True, True)
    add("train 4-D momentum 0.3 without affine", (2, 3, 3, 3), True, False, momentum=0.3)
    add("train 2-D [5, 3]", (5, 3), True, True)
    add("train eps 1e-3", (4, 2, 2, 2), True, True, eps=1e-3)
    add("eval 4-D with weight and bias", (2, 3, 3, 3), False, True)
    add("eval 2-D without affine", (4, 3), False, False)
    return fam


def loss():
    fam = Family("loss")
    n, c = 5, 4

    def ce(name, target, **o):
        def make():
            return [Inp("input", randn(n, c) * 2), Inp("target", torch.tensor(target)),
                    *([Inp("weight", torch.rand(c) + 0.5, grad=False)] if o.get("weight") else [])]

        def fn(x, t, w=None):
            return F.cross_entropy(x, t, weight=w, ignore_index=o.get("ignoreIndex", -100),
                                   reduction=o.get("reduction", "mean"),
                                   label_smoothing=o.get("labelSmoothing", 0.0))
        fam.case(name, "crossEntropy", {k: v for k, v in o.items() if k != "weight"}, make, fn)

    t = [0, 3, 1, 1, 2]
    ce("crossEntropy mean", t)
    ce("crossEntropy sum", t, reduction="sum")
    ce("crossEntropy none", t, reduction="none")
    ce("crossEntropy weight mean", t, weight=True)
    ce("crossEntropy weight sum", t, weight=True, reduction="sum")
    ce("crossEntropy weight none", t, weight=True, reduction="none")
    ce("crossEntropy labelSmoothing 0.1", t, labelSmoothing=0.1)
    ce("crossEntropy labelSmoothing 0.2 sum", t, labelSmoothing=0.2, reduction="sum")
    ce("crossEntropy labelSmoothing 0.1 none", t, labelSmoothing=0.1, reduction="none")
    ce("crossEntropy labelSmoothing 0.2 with weight", t, labelSmoothing=0.2, weight=True)
    ce("crossEntropy default ignoreIndex -100", [0, -100, 1, -100, 2])
    ce("crossEntropy ignoreIndex 1 with weight", t, ignoreIndex=1, weight=True)
    ce("crossEntropy ignoreIndex 1 none", t, ignoreIndex=1, reduction="none")
    ce("crossEntropy ignoreIndex 3 labelSmoothing 0.1", t, ignoreIndex=3, labelSmoothing=0.1)

    def nll(name, target, **o):
        def make():
            return [Inp("input", torch.log_softmax(randn(n, c), 1)),
                    Inp("target", torch.tensor(target)),
                    *([Inp("weight", torch.rand(c) + 0.5, grad=False)] if o.get("weight") else [])]

        def fn(x, t, w=None):
            return F.nll_loss(x, t, weight=w, ignore_index=o.get("ignoreIndex", -100),
                              reduction=o.get("reduction", "mean"))
        fam.case(name, "nllLoss", {k: v for k, v in o.items() if k != "weight"}, make, fn)

    nll("nllLoss mean", t)
    nll("nllLoss sum", t, reduction="sum")
    nll("nllLoss none", t, reduction="none")
    nll("nllLoss weight mean", t, weight=True)
    nll("nllLoss ignoreIndex 1", t, ignoreIndex=1)
    nll("nllLoss ignoreIndex 2 weight sum", t, ignoreIndex=2, weight=True, reduction="sum")

    def kl(name, zeros=False, **o):
        def make():
            tgt = torch.softmax(randn(4, 5), 1)
            if zeros:
                tgt[0, 1] = 0.0
                tgt[2, 3] = 0.0
            if o.get("logTarget"):
                tgt = torch.log_softmax(randn(4, 5), 1)
            return [Inp("input", torch.log_softmax(randn(4, 5), 1)),
                    Inp("target", tgt, grad=False)]

        fam.case(name, "klDiv", o, make,
                 lambda x, tg: F.kl_div(x, tg, reduction=o.get("reduction", "mean"),
                                        log_target=o.get("logTarget", False)))

    for red in ("none", "sum", "mean", "batchmean"):
        kl(f"klDiv {red}", reduction=red)
    kl("klDiv batchmean logTarget", reduction="batchmean", logTarget=True)
    kl("klDiv none logTarget", reduction="none", logTarget=True)
    kl("klDiv none with zero targets", zeros=True, reduction="none")
    kl("klDiv batchmean with zero targets", zeros=True, reduction="batchmean")

    for red in ("mean", "sum", "none"):
        fam.case(f"mseLoss {red}", "mseLoss", {"reduction": red},
                 lambda: [Inp("input", randn(3, 4)), Inp("target", randn(3, 4))],
                 lambda a, b, r=red: F.mse_loss(a, b, reduction=r))

    def bce(name, scale=1.0, weight=False, pos=False, **o):
        def make():
            ins = [Inp("input", randn(4, 3) * scale), Inp("target", torch.rand(4, 3), grad=False)]
            if weight:
                ins.append(Inp("weight", torch.rand(3) + 0.5, grad=False))
            if pos:
                ins.append(Inp("posWeight", torch.rand(3) * 2 + 0.5, grad=False))
            return ins

        def fn(x, tg, *rest):
            rest = list(rest)
            w = rest.pop(0) if weight else None
            p = rest.pop(0) if pos else None
            return F.binary_cross_entropy_with_logits(
                x, tg, weight=w, pos_weight=p, reduction=o.get("reduction", "mean"))
        fam.case(name, "binaryCrossEntropyWithLogits", o, make, fn)

    bce("bceWithLogits mean")
    bce("bceWithLogits sum", reduction="sum")
    bce("bceWithLogits none", reduction="none")
    bce("bceWithLogits weight", weight=True)
    bce("bceWithLogits posWeight", pos=True)
    bce("bceWithLogits weight and posWeight none", weight=True, pos=True, reduction="none")
    bce("bceWithLogits large logits (stability)", scale=40.0, reduction="none")
    bce("bceWithLogits large logits with posWeight", scale=40.0, pos=True)
    return fam


# --- optim ----------------------------------------------------------------------
#
# optimizer case = {
#   "name", "optimizer": "SGD" | "Adam" | "AdamW", "options": {lr, momentum, ...},
#   "params": [tensor, ...]            initial parameters,
#   "grads": [[tensor, ...], ...]      one list per step, one tensor per parameter,
#   "steps": [[tensor, ...], ...]      the parameters after each step,
# }
# scheduler case = {
#   "name", "scheduler": "StepLR" | "CosineAnnealingLR" | "ReduceLROnPlateau",
#   "options": {...}, "lr": initial learning rate,
#   "metrics": [...]                   only for ReduceLROnPlateau, one per step,
#   "lrs": [...]                       the learning rate after each scheduler step,
# }

STEPS = 5


def optim_cases():
    out = []

    def opt_case(name, cls, kdeno_name, options, torch_options):
        torch.manual_seed(seed_for("optim", name))
        params = [torch.randn(2, 3), torch.randn(3)]
        grads = [[torch.randn(p.shape) for p in params] for _ in range(STEPS)]
        ps = [p.clone().requires_grad_(True) for p in params]
        opt = cls(ps, **torch_options)
        steps = []
        for g in grads:
            opt.zero_grad()
            for p, gi in zip(ps, g):
                p.grad = gi.clone()
            opt.step()
            steps.append([enc(p) for p in ps])
        out.append({
            "name": name,
            "optimizer": kdeno_name,
            "options": options,
            "params": [enc(p) for p in params],
            "grads": [[enc(gi) for gi in g] for g in grads],
            "steps": steps,
        })

    SGD, Adam, AdamW = torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW
    opt_case("SGD lr 0.1", SGD, "SGD", {"lr": 0.1}, {"lr": 0.1})
    opt_case("SGD momentum 0.9 weightDecay 1e-2", SGD, "SGD",
             {"lr": 0.1, "momentum": 0.9, "dampening": 0, "weightDecay": 1e-2},
             {"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 1e-2})
    opt_case("SGD nesterov momentum 0.9 weightDecay 1e-2", SGD, "SGD",
             {"lr": 0.1, "momentum": 0.9, "dampening": 0, "weightDecay": 1e-2,
              "nesterov": True},
             {"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 1e-2,
              "nesterov": True})
    opt_case("SGD momentum 0.9 dampening 0.5", SGD, "SGD",
             {"lr": 0.05, "momentum": 0.9, "dampening": 0.5},
             {"lr": 0.05, "momentum": 0.9, "dampening": 0.5})
    opt_case("Adam lr 1e-2", Adam, "Adam", {"lr": 1e-2}, {"lr": 1e-2})
    opt_case("Adam betas and eps", Adam, "Adam",
             {"lr": 1e-2, "betas": [0.8, 0.99], "eps": 1e-6},
             {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6})
    opt_case("Adam weightDecay 1e-2", Adam, "Adam", {"lr": 1e-2, "weightDecay": 1e-2},
             {"lr": 1e-2, "weight_decay": 1e-2})
    opt_case("Adam amsgrad", Adam, "Adam", {"lr": 1e-2, "amsgrad": True},
             {"lr": 1e-2, "amsgrad": True})
    opt_case("AdamW weightDecay 1e-2", AdamW, "AdamW", {"lr": 1e-2, "weightDecay": 1e-2},
             {"lr": 1e-2, "weight_decay": 1e-2})
    opt_case("AdamW weightDecay 0.1 amsgrad", AdamW, "AdamW",
             {"lr": 1e-2, "weightDecay": 0.1, "amsgrad": True},
             {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True})

    def sched_case(name, kdeno_name, options, make, lr, n, metrics=None):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=lr)
        sched = make(opt)
        lrs = []
        for i in range(n):
            opt.step()
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[i])
            lrs.append(opt.param_groups[0]["lr"])
        c = {"name": name, "scheduler": kdeno_name, "options": options, "lr": lr}
        if metrics is not None:
            c["metrics"] = metrics
        c["lrs"] = lrs
        out.append(c)

    lrs = torch.optim.lr_scheduler
    sched_case("StepLR stepSize 3 gamma 0.1", "StepLR", {"stepSize": 3, "gamma": 0.1},
               lambda o: lrs.StepLR(o, step_size=3, gamma=0.1), 0.1, 10)
    sched_case("StepLR stepSize 1 gamma 0.5", "StepLR", {"stepSize": 1, "gamma": 0.5},
               lambda o: lrs.StepLR(o, step_size=1, gamma=0.5), 1.0, 6)
    sched_case("CosineAnnealingLR tMax 10", "CosineAnnealingLR", {"tMax": 10},
               lambda o: lrs.CosineAnnealingLR(o, T_max=10), 0.1, 10)
    sched_case("CosineAnnealingLR tMax 8 etaMin 1e-3", "CosineAnnealingLR",
               {"tMax": 8, "etaMin": 1e-3},
               lambda o: lrs.CosineAnnealingLR(o, T_max=8, eta_min=1e-3), 0.05, 8)
    metrics = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9]
    sched_case("ReduceLROnPlateau factor 0.5 patience 2", "ReduceLROnPlateau",
               {"mode": "min", "factor": 0.5, "patience": 2},
               lambda o: lrs.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2),
               0.1, len(metrics), metrics)
    acc = [0.5, 0.6, 0.6, 0.6, 0.61, 0.61, 0.61, 0.61, 0.7, 0.7, 0.7, 0.7]
    sched_case("ReduceLROnPlateau max mode patience 1 cooldown 1 minLr", "ReduceLROnPlateau",
               {"mode": "max", "factor": 0.1, "patience": 1, "cooldown": 1, "minLr": 2e-4},
               lambda o: lrs.ReduceLROnPlateau(o, mode="max", factor=0.1, patience=1,
                                               cooldown=1, min_lr=2e-4),
               0.1, len(acc), acc)
    return out


def write_optim():
    cases = optim_cases()
    path = os.path.join(HERE, "optim.json")
    lines = [json.dumps(c, separators=(",", ":")) for c in cases]
    head = json.dumps({"family": "optim", "torch": torch.__version__})
    with open(path, "w") as f:
        f.write(head[:-1] + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n")
    return path


def main():
    total = 0
    for make in (elementwise, reduce, matmul, shape, softmax, conv, pool, norm, loss):
        fam = make()
        path = fam.write()
        size = os.path.getsize(path)
        total += size
        print(f"{os.path.basename(path):20s} {len(fam.cases):4d} cases {size / 1024:7.1f} KiB")
    path = write_optim()
    size = os.path.getsize(path)
    total += size
    print(f"{os.path.basename(path):20s}            {size / 1024:7.1f} KiB")
    print(f"total {total / 1024:.1f} KiB")
    assert total < 2 * 1024 * 1024, "fixtures must stay well under 2 MB"


if __name__ == "__main__":
    main()
