"""Benchmark report: PNG charts from bench/results/*.json (written by the bench_*.py scripts).

    python bench/report.py [--results bench/results] [--out bench/results]

Writes
  epoch_time.png         time per training epoch, nncore vs NumPy vs PyTorch (rows whose case
                         mentions "epoch"), one bar group per case and thread count
  kernel_throughput.png  GFLOP/s of every kernel row that has a flop count, vs NumPy and PyTorch
  speedup.png            nncore's speed-up over NumPy and PyTorch for every row (log scale)
Needs matplotlib (pip install 'nncore[plot]'). Only ratios measured in one run mean anything on a
shared machine; each chart names the machine and the date of the results it shows.
"""
import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = [("nncore", "#1f77b4"), ("numpy", "#ff7f0e"), ("torch", "#2ca02c")]


def load(results_dir):
    """[(bench name, meta, rows)] for every readable results file (others reported on stderr)."""
    out = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        try:
            with open(path) as f:
                d = json.load(f)
            rows = d["rows"]
            if not isinstance(rows, list):
                raise ValueError("'rows' is not a list")
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"report: skipping {os.path.basename(path)}: {e}", file=sys.stderr)
            continue
        meta = d.get("meta") or {}
        out.append((meta.get("bench") or os.path.splitext(os.path.basename(path))[0], meta, rows))
    return out


def _label(bench, row):
    return f"{bench}: {row['case']}  [T={row.get('threads', '?')}]"


def _footer(fig, sets):
    procs = sorted({m.get("processor") or "?" for _, m, _ in sets})
    times = sorted({m.get("time") for _, m, _ in sets if m.get("time")})
    when = f"{times[0]} .. {times[-1]}" if len(times) > 1 else (times[0] if times else "?")
    fig.text(0.01, 0.005, f"{', '.join(procs)}; results {when}; medians, same-run ratios", fontsize=7, color="0.4")


def _grouped_barh(plt, labels, series, xlabel, title, log=False):
    """Horizontal grouped bars: series = [(name, color, values with None for absent)]."""
    import numpy as np
    n = len(labels)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.42 * n * max(1, len(series)) / 2))
    h = 0.8 / len(series)
    y = np.arange(n)
    for i, (name, color, vals) in enumerate(series):
        v = np.array([np.nan if x is None else x for x in vals], dtype=float)
        if np.all(np.isnan(v)):
            continue
        ax.barh(y + (i - (len(series) - 1) / 2) * h, v, height=h, color=color, label=name)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if log:
        ax.set_xscale("log")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig, ax


def epoch_chart(plt, sets, path):
    items = [(_label(b, r), r) for b, _, rows in sets for r in rows if "epoch" in str(r.get("case", "")).lower()]
    if not items:
        return None
    series = [(p, c, [(r.get(f"{p}_s") or None) and r[f"{p}_s"] * 1e3 for _, r in items]) for p, c in PEERS]
    fig, _ = _grouped_barh(plt, [l for l, _ in items], series, "ms per epoch (lower is better)",
                           "Training time per epoch", log=True)
    _footer(fig, sets)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    return path


def throughput_chart(plt, sets, path):
    items = [(_label(b, r), r) for b, _, rows in sets for r in rows if r.get("gflops")]
    if not items:
        return None
    keys = {"nncore": "gflops", "numpy": "numpy_gflops", "torch": "torch_gflops"}
    series = [(p, c, [r.get(keys[p]) for _, r in items]) for p, c in PEERS]
    fig, _ = _grouped_barh(plt, [l for l, _ in items], series, "GFLOP/s (higher is better)",
                           "Kernel throughput")
    _footer(fig, sets)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    return path


def speedup_chart(plt, sets, path):
    items = [(_label(b, r), r) for b, _, rows in sets for r in rows if r.get("vs_numpy") or r.get("vs_torch")]
    if not items:
        return None
    series = [("vs NumPy", PEERS[1][1], [r.get("vs_numpy") for _, r in items]),
              ("vs PyTorch", PEERS[2][1], [r.get("vs_torch") for _, r in items])]
    fig, ax = _grouped_barh(plt, [l for l, _ in items], series, "speed-up of nncore (x, > 1 means nncore is faster)",
                            "nncore speed-up over NumPy and PyTorch", log=True)
    ax.axvline(1.0, color="k", lw=0.8)
    _footer(fig, sets)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=os.path.join(HERE, "results"), help="directory of *.json results")
    p.add_argument("--out", default=None, help="directory for the PNGs (default: --results)")
    a = p.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: needs matplotlib: pip install 'nncore[plot]' (or pip install matplotlib)", file=sys.stderr)
        return 2
    sets = load(a.results)
    if not sets:
        print(f"report: no results in {a.results}; run bench/bench_*.py first", file=sys.stderr)
        return 1
    out = a.out or a.results
    os.makedirs(out, exist_ok=True)
    for fn, name in ((epoch_chart, "epoch_time.png"), (throughput_chart, "kernel_throughput.png"),
                     (speedup_chart, "speedup.png")):
        written = fn(plt, sets, os.path.join(out, name))
        print(f"wrote {written}" if written else f"(no rows for {name})")
        plt.close("all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
