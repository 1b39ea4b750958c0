"""GEMM float32 throughput against NumPy's BLAS (`a @ b`) and torch.mm, at 1 and 2 threads.

Shapes: square 64..2048 and the layer shapes (M, K, N) of issue 2. "nncore" is the kernel entry
nncore._kernels.sgemm writing into a preallocated C (NumPy's `a @ b` allocates its result,
which costs it well under 1 us); the small layer shapes are also timed through the public
nn.ops.matmul (validation included) to show the Python-side overhead.

    python bench/bench_gemm.py [--quick] [--threads 1,2] [--no-torch]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import Bench  # noqa: E402

import nncore as nn  # noqa: E402
from nncore import _kernels as K  # noqa: E402

SQUARE = [64, 128, 256, 512, 1024, 2048]
LAYERS = [(32, 10, 32), (256, 64, 64), (1024, 256, 256), (128, 784, 128), (64, 784, 256),
          (6272, 288, 32)]
SMALL = {(32, 10, 32), (256, 64, 64)}


def main():
    b = Bench("gemm", __doc__)
    rng = np.random.default_rng(0)
    square = [64, 256, 1024] if b.quick else SQUARE
    shapes = [(n, n, n) for n in square] + LAYERS
    print(f"nncore ISA {K.isa_name()}, blocking (MR, NR, KC) = {K.gemm_blocking()}")
    for nt in b.threads:
        with b.at_threads(nt):
            for (M, Kd, N) in shapes:
                A = rng.standard_normal((M, Kd)).astype(np.float32)
                B = rng.standard_normal((Kd, N)).astype(np.float32)
                C = np.empty((M, N), np.float32)
                flops = 2.0 * M * N * Kd
                tA = tB = None
                if b.torch is not None:
                    tA, tB = b.torch.from_numpy(A), b.torch.from_numpy(B)
                name = f"{M}x{Kd}x{N}" + (" (square)" if M == Kd == N else "")
                b.case(name, ours=lambda: K.sgemm(A, B, C), numpy=lambda: A @ B,
                       torch=(lambda: b.torch.mm(tA, tB)) if tA is not None else None, flops=flops)
                if (M, Kd, N) in SMALL:
                    b.case(name + " ops.matmul", ours=lambda: nn.ops.matmul(A, B, out=C),
                           numpy=lambda: A @ B, flops=flops)
    b.finish()


if __name__ == "__main__":
    main()
