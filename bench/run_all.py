"""Run every benchmark in one go (same machine state for all) and print where each lands.

    python bench/run_all.py [--quick] [--threads 1,2]

Each script writes bench/results/<name>.json; bench/report.py (if present) draws charts."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["bench_gemm.py", "bench_elem.py", "bench_mlp.py", "bench_conv.py", "bench_rnn.py", "bench_norm.py",
           "bench_finance.py", "bench_functional.py", "bench_keras_io.py"]


def main():
    args = sys.argv[1:]
    failed = []
    for s in SCRIPTS:
        path = os.path.join(HERE, s)
        if not os.path.exists(path):
            continue
        print(f"\n=== {s} {' '.join(args)}", flush=True)
        t = time.perf_counter()
        r = subprocess.run([sys.executable, path, *args])
        print(f"=== {s}: {'ok' if r.returncode == 0 else 'FAILED'} in {time.perf_counter() - t:.0f}s", flush=True)
        if r.returncode:
            failed.append(s)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
