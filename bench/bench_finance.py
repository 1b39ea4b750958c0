"""Finance workflows (issue 5 targets), side by side in one run:

1. German credit (numeric) and the ULB fraud set: the same MLP (Dense 32 relu, Dense 16 relu,
   Dense 1 sigmoid; Adam 1e-3; batch 32; the same initial weights) trained with nncore and with
   PyTorch; held-out ROC AUC (mean over seeds) and training time.
2. The foundation benchmark's MLP (20,000 samples, batch 32): one epoch of plain fit against fit
   with AUC/Precision/Recall metrics and EarlyStopping, ReduceLROnPlateau, TerminateOnNaN.

Needs ../shared/data (skips part 1 when absent). Run: python bench/bench_finance.py [--quick]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import Bench  # noqa: E402

import nncore as nn  # noqa: E402
from nncore import datasets  # noqa: E402

DATA = os.environ.get("NNCORE_DATA") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def load(name):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        return None
    a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    x, y = a[:, :-1], a[:, -1]
    y = (y == 2).astype(np.float32) if name.startswith("german") else y.astype(np.float32)
    return x.astype(np.float32), y


def nn_mlp(d, seed):
    nn.utils.set_random_seed(seed)
    m = nn.Sequential([nn.layers.Dense(32, activation="relu", input_shape=(d,)),
                       nn.layers.Dense(16, activation="relu"), nn.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=nn.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return m


def torch_fit(torch, w, x, y, epochs, seed):
    tnn = torch.nn
    net = tnn.Sequential(tnn.Linear(x.shape[1], 32), tnn.ReLU(), tnn.Linear(32, 16), tnn.ReLU(), tnn.Linear(16, 1))
    with torch.no_grad():
        for i, l in enumerate([m for m in net if isinstance(m, tnn.Linear)]):
            l.weight.copy_(torch.from_numpy(w[2 * i].T.copy()))
            l.bias.copy_(torch.from_numpy(w[2 * i + 1]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = tnn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.reshape(-1, 1))
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 32):
            b = perm[s:s + 32]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xt[b]), yt[b]).backward()
            opt.step()
    return net


def main():
    b = Bench("finance", __doc__)
    torch = b.torch
    seeds = [0, 1] if b.quick else [0, 1, 2, 3, 4]
    epochs = 30
    for nt in b.threads:
        with b.at_threads(nt):
            for name in ("german_credit_numeric.csv", "ulb_creditcard_fraud_balanced.csv"):
                data = load(name)
                if data is None:
                    print(f"  {name}: ../shared/data absent, skipped")
                    continue
                x, y = data
                auc_nn, auc_t, t_nn, t_t = [], [], [], []
                for seed in seeds:
                    xtr, xte, ytr, yte = datasets.train_test_split(x, y, test_size=0.3, seed=seed)
                    xtr, xte = datasets.standardize(xtr, xte)
                    m = nn_mlp(x.shape[1], seed)
                    w = m.get_weights()
                    t0 = time.perf_counter()
                    m.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0)
                    t_nn.append(time.perf_counter() - t0)
                    auc_nn.append(datasets.roc_auc(yte, m.predict(xte)))
                    if torch:
                        torch.manual_seed(seed)
                        t0 = time.perf_counter()
                        net = torch_fit(torch, w, xtr, ytr, epochs, seed)
                        t_t.append(time.perf_counter() - t0)
                        with torch.no_grad():
                            auc_t.append(datasets.roc_auc(yte, net(torch.from_numpy(xte)).numpy()))
                note = f"AUC nncore {np.mean(auc_nn):.4f}" + (f" torch {np.mean(auc_t):.4f} (diff {np.mean(auc_nn) - np.mean(auc_t):+.4f})" if torch else "")
                b.record(f"{name.split('.')[0]}: MLP {epochs} epochs", nncore_s=float(np.median(t_nn)),
                         torch_s=float(np.median(t_t)) if torch else None, note=note)
            # callbacks + metrics overhead on the foundation MLP
            rng = np.random.default_rng(0)
            x = rng.normal(size=(20000, 30)).astype(np.float32)
            y = (x @ rng.normal(size=30) + 0.5 * rng.normal(size=20000) > 0).astype(np.float32)

            def plain():
                m = nn_mlp(30, 0)
                m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
                m.build()
                return m

            def full():
                m = nn_mlp(30, 0)
                m.compile(optimizer="adam", loss="binary_crossentropy",
                          metrics=["accuracy", nn.metrics.AUC(), nn.metrics.Precision(), nn.metrics.Recall()])
                return m
            cbs = [nn.callbacks.EarlyStopping(monitor="loss", patience=100),
                   nn.callbacks.ReduceLROnPlateau(monitor="loss", patience=100), nn.callbacks.TerminateOnNaN()]
            mp, mf = plain(), full()
            t_plain = b.time(lambda: mp.fit(x, y, epochs=1, batch_size=32, verbose=0), min_time=0)
            t_full = b.time(lambda: mf.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=cbs), min_time=0)
            b.record("MLP epoch: fit + AUC/P/R metrics + 3 callbacks vs plain fit", nncore_s=t_full,
                     note=f"plain {t_plain * 1e3:.2f}ms, overhead {100 * (t_full / t_plain - 1):+.1f}%")
    b.finish()


if __name__ == "__main__":
    main()
