"""MLP training and inference: nncore vs a plain NumPy implementation and PyTorch.

Cases (issue 2): time per epoch (20,000 samples, batch 32) of
  model A: Dense(32, relu) -> Dense(10, softmax), sparse categorical cross-entropy, 10 features;
  model B: Dense(64, relu) -> Dense(32, relu) -> Dense(1, sigmoid), binary cross-entropy, 30 features;
with Adam, plus Dense forward+backward, single-sample and 1024-batch predict latency.
Run: python bench/bench_mlp.py [--threads 1,2] [--quick]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import Bench  # noqa: E402

import nncore as nn  # noqa: E402
from nncore import baselines  # noqa: E402

N = 20000


def data(model):
    rng = np.random.default_rng(0)
    if model == "A":
        x = rng.normal(size=(N, 10)).astype(np.float32)
        y = np.argmax(x @ rng.normal(size=(10, 10)), axis=1).astype(np.int64)
        return x, y
    x = rng.normal(size=(N, 30)).astype(np.float32)
    y = (x @ rng.normal(size=30) + 0.5 * rng.normal(size=N) > 0).astype(np.float32)
    return x, y


def nn_model(model):
    nn.utils.set_random_seed(0)
    if model == "A":
        m = nn.Sequential([nn.layers.Dense(32, activation="relu", input_shape=(10,)),
                           nn.layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        m = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(30,)),
                           nn.layers.Dense(32, activation="relu"),
                           nn.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return m


def torch_model(torch, model, weights):
    tnn = torch.nn
    if model == "A":
        net = tnn.Sequential(tnn.Linear(10, 32), tnn.ReLU(), tnn.Linear(32, 10))
        loss_fn = tnn.CrossEntropyLoss()
    else:
        net = tnn.Sequential(tnn.Linear(30, 64), tnn.ReLU(), tnn.Linear(64, 32), tnn.ReLU(), tnn.Linear(32, 1))
        loss_fn = tnn.BCEWithLogitsLoss()
    lin = [m for m in net if isinstance(m, tnn.Linear)]
    with torch.no_grad():
        for i, l in enumerate(lin):
            l.weight.copy_(torch.from_numpy(weights[2 * i].T.copy()))
            l.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    return net, loss_fn, opt


def torch_epoch(torch, net, loss_fn, opt, x, y, model, bs=32):
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y if model == "A" else y.reshape(-1, 1))
    perm = torch.randperm(len(x))
    total = 0.0
    for s in range(0, len(x), bs):
        b = perm[s:s + bs]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt[b]), yt[b])
        loss.backward()
        opt.step()
        total += loss.item() * len(b)
    return total / len(x)


def accuracy(p, y, model):
    return float(np.mean(p.argmax(1) == y)) if model == "A" else float(np.mean((p[:, 0] > 0.5) == y))


def main():
    b = Bench("mlp", __doc__)
    epochs = 2 if b.quick else 5
    torch = b.torch
    for nt in b.threads:
        with b.at_threads(nt):
            for model in ("A", "B"):
                x, y = data(model)
                m = nn_model(model)
                w0 = m.get_weights()
                sizes = [x.shape[1]] + [w.shape[1] for w in w0[0::2]]
                ref = baselines.NumpyMLP(sizes, output="softmax" if model == "A" else "sigmoid", weights=w0)
                rng = np.random.default_rng(0)
                tnet = torch_model(torch, model, w0) if torch else None
                # one epoch of each, `epochs` times, timed side by side (medians)
                t_nn = b.time(lambda: m.fit(x, y, epochs=1, batch_size=32, verbose=0), min_time=0)
                t_np = b.time(lambda: ref.fit_epoch(x, y, 32, rng), min_time=0)
                t_t = b.time(lambda: torch_epoch(torch, *tnet, x, y, model), min_time=0) if torch else None
                for _ in range(epochs - 1):
                    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
                    ref.fit_epoch(x, y, 32, rng)
                    if torch:
                        torch_epoch(torch, *tnet, x, y, model)
                acc_nn = accuracy(m.predict(x), y, model)
                acc_np = accuracy(ref.predict(x), y, model)
                acc_t = None
                if torch:
                    with torch.no_grad():
                        out = tnet[0](torch.from_numpy(x)).numpy()
                    acc_t = accuracy(out if model == "A" else 1 / (1 + np.exp(-out)), y, model)
                b.record(f"train epoch model {model} (20k, batch 32)", nncore_s=t_nn, numpy_s=t_np, torch_s=t_t,
                         note=f"acc nncore {acc_nn:.3f} numpy {acc_np:.3f} torch {acc_t if acc_t is None else round(acc_t, 3)}")
            # predict latency, model B
            x, y = data("B")
            m = nn_model("B")
            w0 = m.get_weights()
            ref = baselines.NumpyMLP([30, 64, 32, 1], weights=w0)
            tnet = torch_model(torch, "B", w0)[0] if torch else None
            for rows in (1, 1024):
                xb = np.ascontiguousarray(x[:rows])
                tx = torch.from_numpy(xb) if torch else None

                def tpred():
                    with torch.no_grad():
                        return torch.sigmoid(tnet(tx))
                b.case(f"predict model B, batch {rows}", ours=lambda: m.predict(xb, batch_size=1024),
                       numpy=lambda: ref.predict(xb), torch=tpred if torch else None, min_time=0.2)
            # Dense forward+backward, (batch, in) -> out
            for (bs, k, n_out) in ((32, 30, 64), (256, 256, 256), (1024, 784, 256)):
                xd = np.random.default_rng(1).normal(size=(bs, k)).astype(np.float32)
                yd = np.random.default_rng(2).normal(size=(bs, n_out)).astype(np.float32)
                md = nn.Sequential([nn.layers.Dense(n_out, activation="relu", input_shape=(k,))])
                md.compile(optimizer="sgd", loss="mse")
                W = md.get_weights()[0]
                bias = np.zeros(n_out, np.float32)

                def np_fb():
                    z = xd @ W
                    z += bias
                    a = np.maximum(z, 0)
                    dz = (a - yd) * (2.0 / a.size) * (a > 0)
                    return xd.T @ dz, dz.sum(0), dz @ W.T
                tfb = None
                if torch:
                    tl = torch.nn.Linear(k, n_out)
                    txd, tyd = torch.from_numpy(xd), torch.from_numpy(yd)
                    txd.requires_grad_(True)

                    def tfb():
                        tl.zero_grad(set_to_none=True)
                        txd.grad = None
                        torch.nn.functional.mse_loss(torch.relu(tl(txd)), tyd).backward()
                b.case(f"Dense fwd+bwd {bs}x{k}->{n_out}", ours=lambda: md._gradients(xd, yd), numpy=np_fb,
                       torch=tfb, flops=6 * bs * k * n_out)
    b.finish()


if __name__ == "__main__":
    main()
