"""Shared benchmark harness: medians measured side by side in one run, ratios to each peer,
a printed table and a JSON file. The machine is shared and noisy, so only ratios taken in the
same run mean anything; absolute times are reported for context.

Usage in a bench script:
    b = Bench("gemm")
    for nt in b.threads:                       # [1, 2] by default, --threads to change
        with b.at_threads(nt):                 # nncore, NumPy's BLAS and torch all get nt
            b.case("256x64x64", ours=f1, numpy=f2, torch=f3, flops=2*m*n*k)
    b.finish()                                 # prints the table, writes bench/results/gemm.json
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

try:
    import torch
except Exception:  # pragma: no cover - optional peer
    torch = None

try:
    from threadpoolctl import threadpool_limits
except Exception:  # pragma: no cover
    threadpool_limits = None

import nncore as nn


def sample_times(fn, min_time=0.2, min_repeat=5, max_repeat=2000, warmup=2):
    """Seconds per call of fn(), repeating until min_time is spent (a list)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeat or (time.perf_counter() - start < min_time and len(times) < max_repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn, min_time=0.2, min_repeat=5, max_repeat=2000, warmup=2):
    """Median seconds per call of fn(), repeating until min_time is spent."""
    return statistics.median(sample_times(fn, min_time, min_repeat, max_repeat, warmup))


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f}us"
    if s < 1:
        return f"{s * 1e3:.2f}ms"
    return f"{s:.2f}s"


ROUNDS = 3


class Bench:
    def __init__(self, name, description=""):
        p = argparse.ArgumentParser(description=description or name)
        p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
        p.add_argument("--quick", action="store_true", help="fewer repeats and shapes (smoke test)")
        p.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
        p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
        self.args, _ = p.parse_known_args()
        self.name = name
        self.threads = [int(t) for t in self.args.threads.split(",")]
        self.quick = self.args.quick
        self.min_time = 0.05 if self.quick else 0.3
        self.torch = None if (self.args.no_torch or torch is None) else torch
        self.rows = []
        self.nt = 1

    @contextlib.contextmanager
    def at_threads(self, nt):
        self.nt = nt
        blas = threadpool_limits(nt, user_api="blas") if threadpool_limits else contextlib.nullcontext()
        old_torch = self.torch.get_num_threads() if self.torch else None
        if self.torch:
            self.torch.set_num_threads(nt)
        with blas, nn.threads(nt):
            yield
        if self.torch:
            self.torch.set_num_threads(old_torch)

    def time(self, fn, min_time=None):
        return median_time(fn, min_time=self.min_time if min_time is None else min_time)

    def case(self, case, ours, numpy=None, torch=None, flops=None, note="", min_time=None):
        """Times each given callable (None = peer absent) and records one row. The engines take
        turns in ROUNDS rounds and each median pools its rounds, so a machine whose speed drifts
        during the case (a shared host) slows every engine alike instead of the one it caught."""
        fns = {"ours": ours, "numpy": numpy, "torch": torch if self.torch else None}
        fns = {k: f for k, f in fns.items() if f is not None}
        per = (self.min_time if min_time is None else min_time) / ROUNDS
        samples = {k: [] for k in fns}
        for _ in range(ROUNDS):
            for k, f in fns.items():
                samples[k] += sample_times(f, per, min_repeat=2, warmup=1)
        med = {k: statistics.median(v) for k, v in samples.items()}
        t_ours, t_np, t_torch = med["ours"], med.get("numpy"), med.get("torch")
        row = {"case": case, "threads": self.nt, "nncore_s": t_ours, "numpy_s": t_np, "torch_s": t_torch,
               "vs_numpy": (t_np / t_ours) if t_np else None,
               "vs_torch": (t_torch / t_ours) if t_torch else None, "note": note}
        if flops:
            row["gflops"] = flops / t_ours / 1e9
            if t_np:
                row["numpy_gflops"] = flops / t_np / 1e9
            if t_torch:
                row["torch_gflops"] = flops / t_torch / 1e9
        self.rows.append(row)
        print(self._fmt(row), flush=True)
        return row

    def record(self, case, **values):
        """A row of values measured by the script itself (e.g. time per epoch)."""
        row = {"case": case, "threads": self.nt, **values}
        for peer in ("numpy", "torch"):
            if values.get(f"{peer}_s") and values.get("nncore_s"):
                row[f"vs_{peer}"] = values[f"{peer}_s"] / values["nncore_s"]
        self.rows.append(row)
        print(self._fmt(row), flush=True)
        return row

    @staticmethod
    def _fmt(r):
        g = f" {r['gflops']:7.1f} GF/s" if r.get("gflops") else ""
        gn = f" (numpy {r['numpy_gflops']:.1f})" if r.get("numpy_gflops") else ""
        vn = f"{r['vs_numpy']:6.2f}x" if r.get("vs_numpy") else "     -"
        vt = f"{r['vs_torch']:6.2f}x" if r.get("vs_torch") else "     -"
        return (f"  {r['case']:<42} T={r['threads']}  nncore {fmt_time(r.get('nncore_s')):>9}  "
                f"numpy {fmt_time(r.get('numpy_s')):>9}  torch {fmt_time(r.get('torch_s')):>9}  "
                f"vs numpy {vn}  vs torch {vt}{g}{gn} {r.get('note', '')}")

    def finish(self):
        os.makedirs(self.args.out, exist_ok=True)
        path = os.path.join(self.args.out, f"{self.name}.json")
        meta = {"bench": self.name, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "machine": platform.machine(), "processor": _cpu_name(), "python": sys.version.split()[0],
                "numpy": np.__version__, "torch": getattr(self.torch, "__version__", None),
                "nncore": nn.config(), "quick": self.quick}
        with open(path, "w") as f:
            json.dump({"meta": meta, "rows": self.rows}, f, indent=1)
        print(f"wrote {path}")


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
