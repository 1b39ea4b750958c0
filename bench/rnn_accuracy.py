"""Does nncore's LSTM/GRU stack learn as well as PyTorch's? Validation accuracy per epoch of the
issue's model (stack 64 -> 32 + Dense(1, sigmoid), Adam 1e-3, batch 32, 5,000 sequences of
(30, 8)) over several seeds, mean and standard deviation, for nncore and torch. (bench_rnn.py's
epoch case reports one seed, whose accuracy alone varies by about 0.01 from seed to seed.)

    python bench/rnn_accuracy.py [--seeds 5] [--epochs 6]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rnn import our_stack, torch_stack, torch_trainer  # noqa: E402

import nncore as nn  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=6)
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("torch not installed: nncore only")
    T, F, n = 30, 8, 5000
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n + 1000, T, F)).astype(np.float32)
    y = (x[:, T // 2:, 0].sum(1) > 0).astype(np.float32)[:, None]
    xtr, ytr, xva, yva = x[:n], y[:n], x[n:], y[n:]
    for kind in ("lstm", "gru"):
        res = {"nncore": [], "torch": []}
        for seed in range(a.seeds):
            nn.utils.set_random_seed(seed)
            m = our_stack(kind, T, F, head=True)
            accs = []
            for _ in range(a.epochs):
                m.fit(xtr, ytr, epochs=1, batch_size=32, verbose=0)
                accs.append(float(((m.predict(xva, verbose=0) > 0.5) == yva).mean()))
            res["nncore"].append(accs)
            if torch is None:
                continue
            torch.manual_seed(seed)
            net = torch_stack(torch, kind, F, head=True)
            epoch = torch_trainer(torch, net, xtr, ytr, seed)
            accs = []
            for _ in range(a.epochs):
                epoch()
                with torch.no_grad():
                    accs.append(float(((net(torch.from_numpy(xva)) > 0).numpy() == yva).mean()))
            res["torch"].append(accs)
        for peer, v in res.items():
            if v:
                v = np.array(v)
                print(f"{kind} {peer:6s} val acc per epoch: mean {np.round(v.mean(0), 3)} "
                      f"std {np.round(v.std(0), 3)} ({a.seeds} seeds)", flush=True)


if __name__ == "__main__":
    main()
