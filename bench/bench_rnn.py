"""Recurrent benchmark (issue 4): nncore vs a NumPy implementation (bench/numpy_rnn.py: per step
one fused gate matmul for LSTM, x_t W and h U for GRU; forward + BPTT) and torch.nn.LSTM/GRU, at
1 and 2 threads.

Cases:
  - the stack LSTM(64, return_sequences) -> LSTM(32) (and GRU), batch 32, timesteps 30 and 60,
    8 and 32 features: forward, and forward+backward (mse on the last output);
  - one step (T=1) at batch 64, 128 units (32 features): forward and forward+backward;
  - the issue's model (stack + Dense(1, sigmoid), Adam, binary cross-entropy): time per epoch on
    5,000 sequences of (30, 8) at batch 32, and the validation accuracy reached by both;
  - predict latency for one sequence of 30 steps through the stack;
  - variable-length sequences: Masking before the stack vs torch's pack_padded_sequence.

nncore runs through its engine (Sequential: predict / gradients / fit), i.e. what a user gets.
fwd+bwd is the weight gradient of one batch (the engine's gradient call without an input
gradient, as in fit); torch's input does not require grad either. The NumPy baseline's backward
gets dX of the first layer for free from its fused per-step matmul.
    python bench/bench_rnn.py [--quick] [--threads 1,2] [--no-torch]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Bench, fmt_time, median_time  # noqa: E402
from numpy_rnn import NumpyGRU, NumpyLSTM, NumpyStack  # noqa: E402

import nncore as nn  # noqa: E402

L = nn.layers


def our_stack(kind, T, F, H1=64, H2=32, head=False):
    layer = {"lstm": L.LSTM, "gru": L.GRU}[kind]
    layers = [layer(H1, return_sequences=True, input_shape=(T, F)), layer(H2)]
    if head:
        layers.append(L.Dense(1, activation="sigmoid"))
    m = nn.Sequential(layers)
    if head:
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    else:
        m.compile(optimizer="sgd", loss="mse")
    return m


def torch_stack(torch, kind, F, H1=64, H2=32, head=False):
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = cls(F, H1, batch_first=True)
            self.l2 = cls(H1, H2, batch_first=True)
            self.head = torch.nn.Linear(H2, 1) if head else None

        def forward(self, x):
            y, _ = self.l1(x)
            y, _ = self.l2(y)
            y = y[:, -1]
            return self.head(y) if self.head is not None else y

    return Net()


def torch_trainer(torch, net, xtr, ytr, seed):
    """One epoch of the issue's training (Adam 1e-3, BCE on logits, batch 32, shuffled) per call."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = torch.nn.BCEWithLogitsLoss()
    X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(seed)

    def epoch():
        perm = torch.randperm(X.shape[0], generator=g)
        for i in range(0, X.shape[0], 32):
            idx = perm[i:i + 32]
            opt.zero_grad(set_to_none=True)
            lossf(net(X[idx]), Y[idx]).backward()
            opt.step()
    return epoch


def stack_cases(b, kind, T, F, B=32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    t = rng.standard_normal((B, 32)).astype(np.float32)
    m = our_stack(kind, T, F)
    ours_f = lambda: m.predict_on_batch(x)  # noqa: E731
    # Weight gradients of one batch (forward, loss, backward), as a training step needs them: like
    # torch with an input that does not require grad, the first layer's dX is not computed.
    X, Y, _ = m._prepare_data(x, t)
    ours_fb = lambda: m._engine.gradients(X, Y, [None], None)  # noqa: E731
    npm = NumpyStack(NumpyLSTM if kind == "lstm" else NumpyGRU, F, 64, 32, rng)
    np_f = lambda: npm.forward(x)  # noqa: E731
    np_fb = lambda: npm.forward_backward(x, t)  # noqa: E731
    tf = tfb = None
    if b.torch is not None:
        torch = b.torch
        net = torch_stack(torch, kind, F)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def tf():
            with torch.no_grad():
                return net(xt)

        def tfb():
            net.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(net(xt), tt)
            loss.backward()

    name = f"{kind} stack B{B} T{T} F{F} 64->32"
    b.case(name + " fwd", ours_f, numpy=np_f, torch=tf)
    b.case(name + " fwd+bwd", ours_fb, numpy=np_fb, torch=tfb)


def masked_case(b, kind, T=60, F=8, B=32):
    """Variable-length sequences (lengths 10..T, zero-padded at the end): nncore's Masking layer
    before the stack against torch's pack_padded_sequence (which runs each step on the rows
    still going) and against torch on the padded batch; fwd+bwd as in stack_cases."""
    rng = np.random.default_rng(4)
    lens = rng.integers(10, T + 1, B)
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    x[np.arange(T)[None, :] >= lens[:, None]] = 0.0
    t = rng.standard_normal((B, 32)).astype(np.float32)
    layer = {"lstm": L.LSTM, "gru": L.GRU}[kind]
    m = nn.Sequential([L.Masking(0.0, input_shape=(T, F)), layer(64, return_sequences=True),
                       layer(32)])
    m.compile(optimizer="sgd", loss="mse")
    X, Y, _ = m._prepare_data(x, t)
    tfb = None
    if b.torch is not None:
        torch = b.torch
        net = torch_stack(torch, kind, F)
        pack = torch.nn.utils.rnn.pack_padded_sequence
        xt, tt, lt = torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(lens)

        def tfb():
            net.zero_grad(set_to_none=True)
            y, _ = net.l1(pack(xt, lt, batch_first=True, enforce_sorted=False))
            _, h = net.l2(y)
            h = h[0] if kind == "lstm" else h
            torch.nn.functional.mse_loss(h[0], tt).backward()

    b.case(f"{kind} masked B{B} T{T} F{F} lengths 10..{T} fwd+bwd (torch: packed)",
           lambda: m._engine.gradients(X, Y, [None], None), torch=tfb)


def step_cases(b, kind, B=64, H=128, F=32):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, 1, F)).astype(np.float32)
    t = rng.standard_normal((B, H)).astype(np.float32)
    layer = {"lstm": L.LSTM, "gru": L.GRU}[kind]
    m = nn.Sequential([layer(H, input_shape=(1, F))])
    m.compile(optimizer="sgd", loss="mse")
    G = 4 if kind == "lstm" else 3
    cls = NumpyLSTM if kind == "lstm" else NumpyGRU
    npm = cls(rng.uniform(-.2, .2, (F, G * H)), rng.uniform(-.2, .2, (H, G * H)),
              np.zeros((G * H,) if kind == "lstm" else (2, G * H)))

    def np_fb():
        npm.forward(x)
        npm.backward(t)

    tf = tfb = None
    if b.torch is not None:
        torch = b.torch
        net = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](F, H, batch_first=True)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def tf():
            with torch.no_grad():
                return net(xt)

        def tfb():
            net.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(net(xt)[0][:, -1], tt).backward()

    name = f"{kind} one step B{B} H{H} F{F}"
    X, Y, _ = m._prepare_data(x, t)  # weight gradients only, as in stack_cases
    b.case(name + " fwd", lambda: m.predict_on_batch(x), numpy=lambda: npm.forward(x), torch=tf)
    b.case(name + " fwd+bwd", lambda: m._engine.gradients(X, Y, [None], None), numpy=np_fb, torch=tfb)


def epoch_case(b, kind, n=5000, T=30, F=8, epochs=3):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n + 1000, T, F)).astype(np.float32)
    y = (x[:, T // 2:, 0].sum(1) > 0).astype(np.float32)[:, None]
    xtr, ytr, xva, yva = x[:n], y[:n], x[n:], y[n:]
    if b.quick:
        epochs = 1
    nn.utils.set_random_seed(0)  # one seed each; bench/rnn_accuracy.py compares over several
    m = our_stack(kind, T, F, head=True)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        m.fit(xtr, ytr, epochs=1, batch_size=32, verbose=0)
        times.append(time.perf_counter() - t0)
    ours = min(times)
    acc = float(((m.predict(xva, verbose=0) > 0.5) == yva).mean())
    tt = tacc = None
    if b.torch is not None:
        torch = b.torch
        torch.manual_seed(0)
        net = torch_stack(torch, kind, F, head=True)
        epoch = torch_trainer(torch, net, xtr, ytr, seed=0)
        ttimes = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            epoch()
            ttimes.append(time.perf_counter() - t0)
        tt = min(ttimes)
        with torch.no_grad():
            tacc = float(((net(torch.from_numpy(xva)) > 0).numpy() == yva).mean())
    b.record(f"{kind} model epoch 5000x(30,8) B32", nncore_s=ours, torch_s=tt,
             note=f"val acc after {epochs} ep: nncore {acc:.3f} torch {tacc if tacc is None else round(tacc, 3)}")


def predict_case(b, kind, T=30, F=8):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, T, F)).astype(np.float32)
    m = our_stack(kind, T, F, head=True)
    tf = None
    if b.torch is not None:
        torch = b.torch
        net = torch_stack(torch, kind, F, head=True)
        xt = torch.from_numpy(x)

        def tf():
            with torch.no_grad():
                return net(xt)

    npm = NumpyStack(NumpyLSTM if kind == "lstm" else NumpyGRU, F, 64, 32, rng)
    b.case(f"{kind} predict 1 seq (30,8) predict_on_batch", lambda: m.predict_on_batch(x),
           numpy=lambda: npm.forward(x), torch=tf)
    t_pred = median_time(lambda: m.predict(x, verbose=0), min_time=b.min_time)
    b.record(f"{kind} predict 1 seq (30,8) model.predict", nncore_s=t_pred)


def main():
    b = Bench("rnn", __doc__)
    shapes = [(30, 8), (30, 32), (60, 8), (60, 32)]
    if b.quick:
        shapes = [(30, 8), (60, 32)]
    for nt in b.threads:
        with b.at_threads(nt):
            for kind in ("lstm", "gru"):
                for T, F in shapes:
                    stack_cases(b, kind, T, F)
                masked_case(b, kind)
                step_cases(b, kind)
                predict_case(b, kind)
                epoch_case(b, kind)
    b.finish()
    print("predict latency target <= 0.1 ms;", "values above:",
          ", ".join(f"{r['case']} T={r['threads']} {fmt_time(r['nncore_s'])}" for r in b.rows
                    if "predict" in r["case"]))


if __name__ == "__main__":
    main()
