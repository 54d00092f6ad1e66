#!/usr/bin/env bash
# The CUDA backend's check on a GPU machine, in one command:
#
#   bash bench/gpu_check.sh OUTFILE
#
# Stages, each under its own time limit, each recorded (exit status, seconds,
# output) whether or not it passed; a failed stage does not stop the next:
#   system      GPU, driver, Deno, PyTorch and the wheel library directories
#   kdeno_info  the CUDA backend opening: device, versions, library paths
#               (if that fails, it is retried with LD_LIBRARY_PATH pointing at
#               the wheels, and the fallback is recorded)
#   tests_gpu   the op conformance suites on the GPU, every kernel against the
#               CPU backend, the tutorial's models against the CPU backend
#   tests_mock  marshalling and discovery tests (stand-in libraries), in a
#               process of their own
#   memory_gpu  tests/memory/_loop.ts on the GPU: a plain PyTorch-style
#               StudentNet loop (no tidy, no dispose), 12 epochs; one JSON
#               line per epoch with device live bytes and peak (flat = pass)
#   bench_kdeno bench/gpu_bench.ts: GEMM 1024/4096 fp32+TF32, add/mul/exp 16M
#   bench_torch bench/gpu_bench_torch.py: the same in PyTorch, same run
#   models_kdeno bench/gpu_models.ts: ResNet-18 train step (b32/b256, fp32,
#               TF32), KD step, StudentNet train step, img/s and peak memory
#   models_torch bench/gpu_models_torch.py: the same in PyTorch 2.x eager
#   nccl_1rank  distributed "nccl" backend on this one GPU, one rank (no
#               mpirun needed): tests/distributed/_nccl_rank.ts with the
#               wheel's libnccl.so.2, every collective on CUDA tensors
#               (multi-GPU NCCL is not covered by this check)
#   peaks_kdeno tests/cuda/_peaks.ts: StudentNet and a small conv net, device
#               bytes before/peak/after for noGrad inference, a loop of ten
#               calls and a training step (cuda.maxMemoryAllocated)
#   peaks_torch bench/gpu_peaks_torch.py: the same models and phases with
#               torch.cuda.max_memory_allocated
#   amp_kdeno   bench/gpu_amp.ts: autocast matmul error (float16, bfloat16),
#               the GradScaler's scales over a scripted clean/inf sequence,
#               ResNet-18 train step b256 fp32 vs autocast float16 + GradScaler
#   amp_torch   bench/gpu_amp_torch.py: the same with torch.autocast
# Then prints "<workload> kdeno=<ms> pytorch=<ms> ratio=<kdeno/pytorch>" and
# writes everything as JSON to OUTFILE. Worst case about 15 minutes, usually
# 6 to 7: within one 10-minute command, run it in two calls, e.g.
#   GPU_CHECK_ONLY="system kdeno_info tests_gpu tests_mock memory_gpu bench_kdeno bench_torch models_kdeno models_torch"
#   GPU_CHECK_ONLY="system kdeno_info peaks_kdeno peaks_torch amp_kdeno amp_torch"
#
# Expects: deno on PATH (or /tmp/package/deno), PyTorch in /opt/torch/.venv,
# no network.
set -u
OUT=${1:?usage: bench/gpu_check.sh OUTFILE}
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
cd "$(dirname "$0")/.." || exit 1
WORK=$(mktemp -d /tmp/kdeno_gpu_check.XXXXXX)

export PATH="$PATH:/tmp/package:/tmp/package/bin"
export NO_COLOR=1
export KDENO_CACHE_DIR="$WORK/cache"       # kernels compiled once, shared by stages
export KDENO_CONFORMANCE_TIMEOUT_S=150     # the tests/ops subprocess, inside "tests"
export KDENO_CUDA_EMULATION=0              # the real GPU is here: skip the emulated device
PY=/opt/torch/.venv/bin/python
[ -x "$PY" ] || PY=$(command -v python3 || echo python3)
SP=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
# kdeno has no machine's paths built in: pass this Python's NVIDIA wheel
# folders (cuDNN's first, then CUDA 13's, then the CUDA 12 layout)
if [ -n "$SP" ]; then
  WHEEL_DIRS="$SP/nvidia/cudnn/lib:$SP/nvidia/cu13/lib:$SP/nvidia/cublas/lib:$SP/nvidia/cuda_nvrtc/lib:$SP/nvidia/cuda_runtime/lib"
  export KDENO_CUDA_LIB_DIRS="${KDENO_CUDA_LIB_DIRS:+$KDENO_CUDA_LIB_DIRS:}$WHEEL_DIRS"
fi

# GPU_CHECK_ONLY="peaks_kdeno peaks_torch ..." runs only the stages named
# (the whole script can exceed one 10-minute device command)
# stage NAME SECONDS CMD...: runs CMD with a time limit, output shown and kept
stage() {
  local name=$1 secs=$2
  shift 2
  if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ " $GPU_CHECK_ONLY " != *" $name "* ]]; then
    echo "===== $name: not in GPU_CHECK_ONLY, skipped"
    return 0
  fi
  echo "===== $name (limit ${secs}s): $*"
  local t0 t1 rc
  t0=$(date +%s%N)
  timeout --kill-after=10 "$secs" "$@" 2>&1 | tee "$WORK/$name.log"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s%N)
  echo "===== $name: exit $rc after $(((t1 - t0) / 1000000)) ms"
  printf '%s %s %s\n' "$name" "$rc" "$(((t1 - t0) / 1000000))" >>"$WORK/stages.txt"
  return "$rc"
}

system_info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  echo "deno: $(command -v deno)"
  deno --version
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0))'
  echo "site-packages: $SP"
  ls -l "$SP/nvidia/cu13/lib" "$SP/nvidia/cudnn/lib" 2>&1 | head -60
  ldconfig -p | grep -E 'libcuda\.so|libcublas|libnvrtc' || true
}

export PY SP
export -f system_info
stage system 30 bash -c system_info
FALLBACK=0
if ! stage kdeno_info 60 deno run -A bench/gpu_bench.ts --info; then
  FALLBACK=1
  export LD_LIBRARY_PATH="$SP/nvidia/cu13/lib:$SP/nvidia/cudnn/lib:${LD_LIBRARY_PATH:-}"
  stage kdeno_info_ld_library_path 60 deno run -A bench/gpu_bench.ts --info
fi
# the real-GPU suites run in their own process: the marshalling tests load
# stand-in libraries that export the driver's and cuDNN's symbol names
stage tests_gpu 130 deno test -A tests/cuda/conformance_test.ts tests/cuda/backend_test.ts tests/cuda/models_test.ts
stage tests_mock 40 deno test -A tests/cuda/ --ignore=tests/cuda/conformance_test.ts,tests/cuda/backend_test.ts,tests/cuda/models_test.ts
stage memory_gpu 90 deno run -A tests/memory/_loop.ts --device cuda --mode plain --epochs 12 --size 64
stage bench_kdeno 45 deno run -A bench/gpu_bench.ts --json "$WORK/kdeno.json"
stage bench_torch 45 "$PY" bench/gpu_bench_torch.py --json "$WORK/torch.json"
stage models_kdeno 140 deno run -A bench/gpu_models.ts --json "$WORK/kdeno_models.json"
stage models_torch 90 "$PY" bench/gpu_models_torch.py --json "$WORK/torch_models.json"
stage nccl_1rank 60 env KDENO_NCCL_LIB="${KDENO_NCCL_LIB:-${SP:+$SP/nvidia/nccl/lib}}" deno run -A tests/distributed/_nccl_rank.ts
stage peaks_kdeno 60 deno run -A tests/cuda/_peaks.ts --batch 64 --size 64
stage peaks_torch 60 "$PY" bench/gpu_peaks_torch.py --batch 64 --size 64
stage amp_kdeno 120 deno run -A bench/gpu_amp.ts --json "$WORK/kdeno_amp.json"
stage amp_torch 90 "$PY" bench/gpu_amp_torch.py --json "$WORK/torch_amp.json"

"$PY" - "$WORK" "$OUT" "$FALLBACK" <<'PYEOF' ||
import json, os, sys
work, out, fallback = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except Exception as e:
        return {"error": repr(e)}

stages = []
if os.path.exists(os.path.join(work, "stages.txt")):
    for line in open(os.path.join(work, "stages.txt")):
        name, rc, ms = line.split()
        log = open(os.path.join(work, name + ".log"), errors="replace").read()
        stages.append({"name": name, "exit": int(rc), "ms": int(ms),
                       "passed": rc == "0", "output": log[-60000:]})
kdeno, torch = load("kdeno.json"), load("torch.json")
kr, tr = kdeno.get("results", {}), torch.get("results", {})
comparison = {}
WORKLOADS = ["gemm1024_fp32", "gemm4096_fp32", "gemm1024_tf32", "gemm4096_tf32",
             "add_16M", "mul_16M", "exp_16M"]
for name in WORKLOADS + sorted((set(kr) | set(tr)) - set(WORKLOADS)):
    k = kr.get(name, {}).get("ms")
    t = tr.get(name, {}).get("ms")
    ratio = k / t if k and t else None
    comparison[name] = {"kdeno_ms": k, "pytorch_ms": t, "ratio": ratio}
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    print(f"{name} kdeno={fmt(k)} pytorch={fmt(t)} ratio={fmt(ratio)}")
km = load("kdeno_models.json").get("results", {})
tm = load("torch_models.json").get("results", {})
models = {}
for name in sorted(set(km) | set(tm)):
    k = km.get(name, {}).get("imgPerS")
    t = tm.get(name, {}).get("imgPerS")
    ratio = k / t if k and t else None
    kp = km.get(name, {}).get("peakLiveMiB")
    tp = tm.get(name, {}).get("peakLiveMiB")
    models[name] = {"kdeno_img_s": k, "pytorch_img_s": t, "ratio": ratio,
                    "kdeno_peak_mib": kp, "pytorch_peak_mib": tp}
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"
    print(f"{name} kdeno={fmt(k)} pytorch={fmt(t)} ratio={'n/a' if ratio is None else f'{ratio:.3f}'} "
          f"(img/s; peak MiB kdeno={fmt(kp)} pytorch={fmt(tp)})")
def last_json(name):
    try:
        lines = open(os.path.join(work, name + ".log"), errors="replace").read().strip().splitlines()
        return json.loads(lines[-1])
    except Exception as e:
        return {"error": repr(e)}

pk, pt = last_json("peaks_kdeno"), last_json("peaks_torch")
peaks = {"kdeno": pk, "pytorch": pt}
for net in ["student", "conv"]:
    for phase in ["inference", "training"]:
        try:
            k = pk[net][phase]["peak"] - pk[net][phase]["before"]
            t = pt[net][phase]["peak"] - pt[net][phase]["before"]
            print(f"peak_{net}_{phase} above start: kdeno={k} B pytorch={t} B ratio={k / t:.3f}")
        except Exception as e:
            print(f"peak_{net}_{phase}: n/a ({e!r})")
ka, ta = load("kdeno_amp.json").get("results", {}), load("torch_amp.json").get("results", {})
amp = {"kdeno": ka, "pytorch": ta}
print("scaler scales equal:", ka.get("scaler", {}).get("scales") == ta.get("scaler", {}).get("scales"),
      ka.get("scaler", {}).get("scales"), ta.get("scaler", {}).get("scales"))
for name in sorted(k for k in set(ka) | set(ta) if k.startswith(("resnet", "matmul"))):
    print(f"amp {name} kdeno={ka.get(name)} pytorch={ta.get(name)}")
report = {"stages": stages, "models": models, "peaks": peaks, "amp": amp,
          "ld_library_path_fallback": fallback,
          "kdeno": kdeno, "pytorch": torch, "comparison": comparison,
          "all_passed": all(s["passed"] for s in stages)}
with open(out, "w") as f:
    json.dump(report, f, indent=2)
print("stages:", ", ".join(f"{s['name']}={'ok' if s['passed'] else 'FAILED(' + str(s['exit']) + ')'}" for s in stages))
print("wrote", out)
PYEOF
  echo "could not write $OUT; the stage logs are in $WORK"
