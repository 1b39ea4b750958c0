"""Functional models (issue 13): time per training epoch, ratios measured side by side.

  1. the same MLP (30 -> 64 -> 32 -> 1, Adam, BCE) as a Sequential and as a functional model
     (target: functional >= 0.95x the Sequential's speed);
  2. a two-input credit model: 8 categorical columns -> Embedding(card, 8) each, 16 numeric
     columns, concatenated, Dense 64-32-1; nncore vs the same model hand-written in PyTorch
     and in Keras 3 on the torch backend (targets: >= 3x and >= 10x), with each one's
     validation AUC on generated data.
Run: python bench/bench_functional.py [--threads 1,2] [--quick] [--no-keras]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import Bench  # noqa: E402

import nncore as nn  # noqa: E402

L = nn.layers
N_CAT, CARD, DIM, N_NUM = 8, 12, 8, 16


def mlp_pair():
    nn.utils.set_random_seed(0)
    seq = nn.Sequential([L.Dense(64, activation="relu", input_shape=(30,)), L.Dense(32, activation="relu"),
                         L.Dense(1, activation="sigmoid")])
    x = nn.Input(shape=(30,))
    h = L.Dense(32, activation="relu")(L.Dense(64, activation="relu")(x))
    fun = nn.Model(x, L.Dense(1, activation="sigmoid")(h))
    fun.set_weights(seq.get_weights())
    for m in (seq, fun):
        m.compile(optimizer="adam", loss="binary_crossentropy")
    return seq, fun


def credit_data(n, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, CARD, (n, N_CAT))
    num = rng.standard_normal((n, N_NUM)).astype(np.float32)
    effect = rng.standard_normal((N_CAT, CARD))
    logit = effect[np.arange(N_CAT), codes].sum(1) * 0.5 + num[:, :4] @ np.array([1.0, -0.8, 0.5, 0.3]) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return codes, num, y


def nn_credit():
    nn.utils.set_random_seed(0)
    cats = [nn.Input(shape=(1,), name=f"c{j}") for j in range(N_CAT)]
    num = nn.Input(shape=(N_NUM,), name="num")
    h = L.concatenate([L.Flatten()(L.Embedding(CARD, DIM)(c)) for c in cats] + [num])
    h = L.Dense(32, activation="relu")(L.Dense(64, activation="relu")(h))
    m = nn.Model(cats + [num], L.Dense(1, activation="sigmoid")(h))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def keras_credit(keras):
    Lk = keras.layers
    cats = [keras.Input(shape=(1,), name=f"c{j}") for j in range(N_CAT)]
    num = keras.Input(shape=(N_NUM,), name="num")
    h = Lk.concatenate([Lk.Flatten()(Lk.Embedding(CARD, DIM)(c)) for c in cats] + [num])
    h = Lk.Dense(32, activation="relu")(Lk.Dense(64, activation="relu")(h))
    m = keras.Model(cats + [num], Lk.Dense(1, activation="sigmoid")(h))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def torch_credit(torch, weights):
    tnn = torch.nn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.emb = tnn.ModuleList([tnn.Embedding(CARD, DIM) for _ in range(N_CAT)])
            self.l1, self.l2, self.l3 = tnn.Linear(N_CAT * DIM + N_NUM, 64), tnn.Linear(64, 32), tnn.Linear(32, 1)

        def forward(self, codes, num):
            h = torch.cat([e(codes[:, j]) for j, e in enumerate(self.emb)] + [num], 1)
            return self.l3(torch.relu(self.l2(torch.relu(self.l1(h)))))

    net = Net()
    with torch.no_grad():
        for j in range(N_CAT):
            net.emb[j].weight.copy_(torch.from_numpy(weights[j]))
        for i, l in enumerate((net.l1, net.l2, net.l3)):
            l.weight.copy_(torch.from_numpy(weights[N_CAT + 2 * i].T.copy()))
            l.bias.copy_(torch.from_numpy(weights[N_CAT + 2 * i + 1]))
    return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)


def torch_epoch(torch, net, opt, codes, num, y, bs=32):
    ct, xt, yt = torch.from_numpy(codes), torch.from_numpy(num), torch.from_numpy(y.reshape(-1, 1))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    perm = torch.randperm(len(y))
    for s in range(0, len(y), bs):
        b = perm[s:s + bs]
        opt.zero_grad(set_to_none=True)
        loss_fn(net(ct[b], xt[b]), yt[b]).backward()
        opt.step()


def main():
    b = Bench("functional", __doc__)
    keras = None
    if "--no-keras" not in sys.argv:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        try:
            import keras as _k
            keras = _k if _k.backend.backend() == "torch" else None
        except Exception:
            keras = None
    torch = b.torch
    n = 8000 if b.quick else 20000
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 30)).astype(np.float32)
    y = (x @ rng.standard_normal(30) > 0).astype(np.float32)
    codes, num, yc = credit_data(n)
    cv, nv, yv = credit_data(5000, seed=1)
    inputs = [codes[:, j:j + 1].astype(np.float32) for j in range(N_CAT)] + [num]
    val_inputs = [cv[:, j:j + 1].astype(np.float32) for j in range(N_CAT)] + [nv]
    for nt in b.threads:
        with b.at_threads(nt):
            seq, fun = mlp_pair()
            b.case(f"MLP epoch ({n // 1000}k, batch 32): functional", ours=lambda: fun.fit(x, y, epochs=1, verbose=0),
                   numpy=lambda: seq.fit(x, y, epochs=1, verbose=0), min_time=1.0,
                   note="'numpy' column = the same model as a Sequential (target vs numpy >= 0.95x)")
            m = nn_credit()
            w0 = m.get_weights()
            tnet = torch_credit(torch, w0) if torch else None
            ct = codes.astype(np.int64)
            t_nn = b.time(lambda: m.fit(inputs, yc, epochs=1, batch_size=32, verbose=0), min_time=0)
            t_t = b.time(lambda: torch_epoch(torch, *tnet, ct, num, yc), min_time=0) if torch else None
            for _ in range(2):  # a few more epochs for the AUCs
                m.fit(inputs, yc, epochs=1, batch_size=32, verbose=0)
                if torch:
                    torch_epoch(torch, *tnet, ct, num, yc)
            auc_nn = nn.datasets.roc_auc(yv, m.predict(val_inputs)[:, 0])
            note = f"val AUC nncore {auc_nn:.3f}"
            if torch:
                with torch.no_grad():
                    auc_t = nn.datasets.roc_auc(yv, tnet[0](torch.from_numpy(cv.astype(np.int64)),
                                                            torch.from_numpy(nv)).numpy()[:, 0])
                note += f" torch {auc_t:.3f}"
            k_s = None
            if keras is not None:
                km = keras_credit(keras)
                km.set_weights(w0)
                t0 = time.perf_counter()
                km.fit(val_inputs if b.quick else inputs, yc[:len(val_inputs[0])] if b.quick else yc,
                       epochs=1, batch_size=32, verbose=0)
                k_s = (time.perf_counter() - t0) * (n / len(val_inputs[0]) if b.quick else 1.0)
                t0 = time.perf_counter()
                km.fit(inputs, yc, epochs=1, batch_size=32, verbose=0)
                k_s = min(k_s, time.perf_counter() - t0)
                km.fit(inputs, yc, epochs=1, batch_size=32, verbose=0)
                auc_k = nn.datasets.roc_auc(yv, km.predict(val_inputs, verbose=0, batch_size=1024)[:, 0])
                note += f" keras {auc_k:.3f}; keras3-torch epoch {k_s:.2f}s = {k_s / t_nn:.1f}x nncore"
            b.record(f"two-input credit epoch ({n // 1000}k, batch 32)", nncore_s=t_nn, torch_s=t_t,
                     keras_s=k_s, vs_keras=(k_s / t_nn) if k_s else None, note=note)
    b.finish()


if __name__ == "__main__":
    main()
