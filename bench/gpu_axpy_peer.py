"""PyTorch peer for bench/gpu_axpy.c: y += a * x on device-resident fp32 data, median of CUDA-event
timings after a warm-up, printed in the same RESULT format."""
import sys

import torch


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 28
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    if not torch.cuda.is_available():
        print("skipped: torch sees no GPU")
        return 77
    x = torch.randn(n, device="cuda")
    y = torch.randn(n, device="cuda")
    for _ in range(5):
        y.add_(x, alpha=0.5)
    times = []
    for _ in range(iters):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        y.add_(x, alpha=0.5)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    ms = sorted(times)[iters // 2]
    gbs = 12.0 * n / (ms * 1e-3) / 1e9
    print(f"torch {torch.__version__} axpy n={n}: {ms:.4f} ms median of {iters}, {gbs:.1f} GB/s")
    print(f"RESULT torch_axpy_gbs {gbs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
