"""PyTorch side of bench/gpu_bench.ts: the same workloads, timed the same way.

fp32 and TF32 GEMM at 1024 and 4096, and add / mul / exp over 16M floats;
device milliseconds per call from CUDA events around a loop of calls, after
warm-up calls. Usage: python bench/gpu_bench_torch.py [--json OUT]
"""

import json
import sys

import torch


def timed(fn, iters, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iters


def gemm(n, tf32, iters):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda") * 0.5
    b = torch.randn(n, n, device="cuda") * 0.5
    try:
        ms = timed(lambda: torch.mm(a, b), iters)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    return {"ms": ms, "rate": 2 * n**3 / (ms * 1e-3) / 1e12, "unit": "TFLOP/s"}


def elementwise(op, n, iters):
    x = torch.randn(n, device="cuda")
    y = torch.randn(n, device="cuda")
    fn = {"add": lambda: x + y, "mul": lambda: x * y, "exp": lambda: torch.exp(x)}[op]
    ms = timed(fn, iters)
    nbytes = (2 if op == "exp" else 3) * 4 * n
    return {"ms": ms, "rate": nbytes / (ms * 1e-3) / 1e9, "unit": "GB/s"}


def main():
    out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(0),
    }
    print(json.dumps(info))
    m16 = 16 * 1024 * 1024
    workloads = [
        ("gemm1024_fp32", lambda: gemm(1024, False, 50)),
        ("gemm4096_fp32", lambda: gemm(4096, False, 10)),
        ("gemm1024_tf32", lambda: gemm(1024, True, 50)),
        ("gemm4096_tf32", lambda: gemm(4096, True, 10)),
        ("add_16M", lambda: elementwise("add", m16, 50)),
        ("mul_16M", lambda: elementwise("mul", m16, 50)),
        ("exp_16M", lambda: elementwise("exp", m16, 50)),
    ]
    results = {}

    def save():  # after every workload, so a run cut short keeps its numbers
        if out:
            with open(out, "w") as f:
                json.dump({"info": info, "results": results}, f, indent=2)

    save()
    for name, run in workloads:
        try:
            r = run()
            results[name] = r
            print(f"{name} pytorch {r['ms']:.4f} ms {r['rate']:.2f} {r['unit']}", flush=True)
        except Exception as e:  # keep going: record the failure
            results[name] = {"error": repr(e)}
            print(f"{name} pytorch FAILED: {e!r}", flush=True)
        save()


if __name__ == "__main__":
    main()
