"""Conv2D / MaxPooling2D / Conv1D kernels and the issue's CNN against a NumPy baseline
(im2col with sliding_window_view + matmul, bench/numpy_cnn.py) and PyTorch (NCHW default and
channels_last), at 1 and 2 threads.

Cases (issue 3): Conv2D 3x3 valid stride 1, batch 32: 28x28x1->32, 13x13x32->64, 32x32x3->32,
32x32x32->64, plus 32x32x32->64 'same' stride 2; forward and forward+backward (relu; dx, dW,
db). MaxPooling2D 2x2 on 26x26x32 forward+backward. Conv1D (32, 60, 8) -> 32 filters, kernel 5.
The CNN: time per epoch on 5,000 samples at batch 32. nncore's kernels are called through the
plan the Conv2D layer uses (preallocated outputs, as in training). The 3x3 convs with >= 32
channels are also reported as % of the measured GEMM peak (nncore sgemm, 1024^3).

    python bench/bench_conv.py [--quick] [--threads 1,2] [--no-torch]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import Bench, median_time  # noqa: E402
import numpy_cnn as npc  # noqa: E402

import nncore as nn  # noqa: E402
from nncore import _kernels as K  # noqa: E402

CONV = [(28, 28, 1, 32, 1, "valid"), (13, 13, 32, 64, 1, "valid"), (32, 32, 3, 32, 1, "valid"),
        (32, 32, 32, 64, 1, "valid"), (32, 32, 32, 64, 2, "same")]
BATCH = 32


def ours_conv(x, k, b, stride, padding):
    """Closures over a Conv2DPlan (what the Conv2D layer's node runs)."""
    _, ctx = nn.ops.conv2d(x, k, b, strides=stride, padding=padding, activation="relu",
                           return_context=True)
    plan = K.Conv2DPlan(ctx.plan.geom)
    plan.set_weights(k)
    y = np.empty_like(ctx.y)
    dy0 = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dy = dy0.copy()
    dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)

    def fwd():
        plan.forward(x, b, 1, 0.0, y)

    def fwdbwd():
        plan.forward(x, b, 1, 0.0, y)
        # relu's backward masks dy in place, as in a training step; the mask of the same y is
        # idempotent, so dy needs no refill from dy0 (a refill is a multi-MB copy training never
        # does, and it evicted the caches the convolution works from).
        K.conv_act_backward(1, 0.0, y, dy, db)
        plan.backward_weights(x, dy, dk, None)
        plan.backward_data(dy, dx)
    return fwd, fwdbwd, dy0


def numpy_conv(x, k, b, stride, padding):
    if padding == "same":  # Keras 'same' for 3x3: pad by the TF rule, then valid
        H = x.shape[1]
        out = -(-H // stride)
        tot = max((out - 1) * stride + 3 - H, 0)
        x = np.pad(x, ((0, 0), (tot // 2, tot - tot // 2), (tot // 2, tot - tot // 2), (0, 0)))
    dy0 = None

    def fwd():
        y, _ = npc.conv_fwd(x, k, b, stride)
        return np.maximum(y, 0)

    def fwdbwd():
        nonlocal dy0
        z, cols = npc.conv_fwd(x, k, b, stride)
        y = np.maximum(z, 0)
        if dy0 is None:
            dy0 = np.ones_like(y)
        dz = dy0 * (z > 0)
        if stride == 1:
            return npc.conv_bwd(x.shape, k, cols, dz)
        # strided: dk from cols, dx by scatter of dcol (NumPy col2im)
        F = k.shape[-1]
        dk = cols.T @ dz.reshape(-1, F)
        dcol = (dz.reshape(-1, F) @ k.reshape(-1, F).T).reshape(z.shape[:3] + (3, 3, x.shape[3]))
        dx = np.zeros_like(x)
        OH, OW = z.shape[1:3]
        for kh in range(3):
            for kw in range(3):
                dx[:, kh:kh + stride * OH:stride, kw:kw + stride * OW:stride] += dcol[:, :, :, kh, kw]
        return dx, dk, dz.sum((0, 1, 2))
    return fwd, fwdbwd


def torch_conv(torch, x, k, b, stride, padding, channels_last):
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
    kt = torch.tensor(k.transpose(3, 2, 0, 1).copy())
    bt = torch.tensor(b)
    if channels_last:
        xt = xt.contiguous(memory_format=torch.channels_last)
        kt = kt.contiguous(memory_format=torch.channels_last)
    pad = 0
    if padding == "same":
        H = x.shape[2]
        out = -(-H // stride)
        tot = max((out - 1) * stride + 3 - H, 0)
        pad = (tot // 2, tot - tot // 2, tot // 2, tot - tot // 2)
    F = torch.nn.functional
    xg, kg, bg = xt.clone().requires_grad_(), kt.clone().requires_grad_(), bt.clone().requires_grad_()

    def run(xi, ki, bi):
        if pad:
            xi = F.pad(xi, pad)
        return torch.relu(F.conv2d(xi, ki, bi, stride=stride))

    def fwd():
        with torch.no_grad():
            run(xt, kt, bt)

    dy = [None]

    def fwdbwd():
        y = run(xg, kg, bg)
        if dy[0] is None:
            dy[0] = torch.ones_like(y)
        xg.grad = kg.grad = bg.grad = None
        y.backward(dy[0])
    return fwd, fwdbwd


def gemm_peak(b):
    A = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    C = np.empty_like(A)
    t = median_time(lambda: nn.ops.matmul(A, A, out=C), min_time=b.min_time)
    return 2 * 1024 ** 3 / t / 1e9


def bars(n, rng):
    x = rng.normal(0, 0.3, (n, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c = rng.integers(2, 26), rng.integers(2, 21)
        if y[i]:
            x[i, r, c:c + 7, 0] += 3
        else:
            x[i, c:c + 7, r, 0] += 3
    return x, y.astype(np.float32)


def torch_cnn(torch):
    tn = torch.nn
    return tn.Sequential(tn.Conv2d(1, 32, 3), tn.ReLU(), tn.MaxPool2d(2), tn.Conv2d(32, 64, 3),
                         tn.ReLU(), tn.MaxPool2d(2), tn.Flatten(), tn.Linear(1600, 64), tn.ReLU(),
                         tn.Linear(64, 1))


def main():
    b = Bench("conv", __doc__)
    rng = np.random.default_rng(0)
    torch = b.torch
    n_cnn = 1000 if b.quick else 5000
    xc, yc = bars(n_cnn, rng)
    for nt in b.threads:
        with b.at_threads(nt):
            peak = gemm_peak(b)
            print(f"  measured GEMM peak at {nt} thread(s): {peak:.1f} GF/s (1024^3)")
            for (H, W, C, F, s, pad) in CONV:
                x = rng.standard_normal((BATCH, H, W, C)).astype(np.float32)
                k = (rng.standard_normal((3, 3, C, F)) * 0.1).astype(np.float32)
                bias = rng.standard_normal(F).astype(np.float32) * 0.1
                of, ofb, _ = ours_conv(x, k, bias, s, pad)
                nf, nfb = numpy_conv(x, k, bias, s, pad)
                OH = (H - 3) // s + 1 if pad == "valid" else -(-H // s)
                flops = 2.0 * BATCH * OH * OH * 9 * C * F
                name = f"conv2d {H}x{W}x{C}->{F} s{s} {pad}"
                tfw = tfb = tcf = tcb = None
                if torch:
                    tfw, tfb = torch_conv(torch, x, k, bias, s, pad, False)
                    tcf, tcb = torch_conv(torch, x, k, bias, s, pad, True)
                r = b.case(name + " fwd", of, numpy=nf, torch=tfw, flops=flops)
                if C >= 32:
                    r["pct_gemm_peak"] = 100 * r["gflops"] / peak
                    print(f"    -> {r['pct_gemm_peak']:.0f}% of GEMM peak")
                if torch:
                    b.case(name + " fwd [torch channels_last]", of, torch=tcf, flops=flops)
                b.case(name + " fwd+bwd", ofb, numpy=nfb, torch=tfb, flops=3 * flops)
                if torch:
                    b.case(name + " fwd+bwd [torch channels_last]", ofb, torch=tcb, flops=3 * flops)

            # MaxPooling2D 2x2 on 26x26x32
            x = rng.standard_normal((BATCH, 26, 26, 32)).astype(np.float32)
            geom = (26, 26, 32, 2, 2, 2, 2, 0, 0, 13, 13)
            y = np.empty((BATCH, 13, 13, 32), np.float32)
            am = np.empty(y.shape, np.uint8)
            dy = np.ones_like(y)
            dx = np.empty_like(x)

            def ours_pool():
                K.maxpool2d_forward(geom, x, y, am)
                K.maxpool2d_backward(geom, dy, am, dx)

            def np_pool():
                yy, m = npc.maxpool_fwd(x)
                npc.maxpool_bwd(x.shape, m, dy)

            tp = tpc = None
            if torch:
                def mk(cl):
                    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
                    if cl:
                        xt = xt.contiguous(memory_format=torch.channels_last)
                    xt.requires_grad_()
                    g = torch.ones((BATCH, 32, 13, 13))
                    if cl:
                        g = g.contiguous(memory_format=torch.channels_last)

                    def f():
                        xt.grad = None
                        torch.nn.functional.max_pool2d(xt, 2).backward(g)
                    return f
                tp, tpc = mk(False), mk(True)
            b.case("maxpool2d 2x2 26x26x32 fwd+bwd", ours_pool, numpy=np_pool, torch=tp)
            if torch:
                b.case("maxpool2d 2x2 26x26x32 fwd+bwd [torch channels_last]", ours_pool, torch=tpc)

            # Conv1D (32, 60, 8) -> 32, kernel 5
            x1 = rng.standard_normal((BATCH, 1, 60, 8)).astype(np.float32)
            k1 = (rng.standard_normal((1, 5, 8, 32)) * 0.1).astype(np.float32)
            b1 = np.zeros(32, np.float32)
            of, ofb, _ = ours_conv(x1, k1, b1, 1, "valid")
            nf, nfb = numpy_conv(x1, k1, b1, 1, "valid")
            t1f = t1b = None
            if torch:
                xt = torch.tensor(x1[:, 0].transpose(0, 2, 1).copy())
                kt = torch.tensor(k1[0].transpose(2, 1, 0).copy())
                bt = torch.tensor(b1)
                xg, kg, bg = [t.clone().requires_grad_() for t in (xt, kt, bt)]
                g = torch.ones((BATCH, 32, 56))

                def t1f():
                    with torch.no_grad():
                        torch.relu(torch.nn.functional.conv1d(xt, kt, bt))

                def t1b():
                    xg.grad = kg.grad = bg.grad = None
                    torch.relu(torch.nn.functional.conv1d(xg, kg, bg)).backward(g)
            fl1 = 2.0 * BATCH * 56 * 5 * 8 * 32
            b.case("conv1d (32,60,8)->32 k5 fwd", of, numpy=nf, torch=t1f, flops=fl1)
            b.case("conv1d (32,60,8)->32 k5 fwd+bwd", ofb, numpy=nfb, torch=t1b, flops=3 * fl1)

            # The CNN: one epoch on n_cnn samples, batch 32
            model = nn.Sequential([
                nn.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
                nn.layers.MaxPooling2D((2, 2)),
                nn.layers.Conv2D(64, (3, 3), activation="relu"),
                nn.layers.MaxPooling2D((2, 2)),
                nn.layers.Flatten(),
                nn.layers.Dense(64, activation="relu"),
                nn.layers.Dense(1, activation="sigmoid")])
            model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
            model.fit(xc[:256], yc[:256], epochs=1, batch_size=32, verbose=0)  # warm-up

            def ep_ours():
                return model.fit(xc, yc, epochs=1, batch_size=32, verbose=0).history["accuracy"][-1]

            def timed(f, reps=2):
                ts, acc = [], None
                for _ in range(reps):
                    t0 = time.perf_counter()
                    acc = f()
                    ts.append(time.perf_counter() - t0)
                return min(ts), acc

            t_ours, acc_ours = timed(ep_ours)
            cnn = npc.NumpyCNN(np.random.default_rng(0))
            t_np, _ = timed(lambda: cnn.epoch(xc, yc), reps=1)
            t_torch = acc_t = None
            if torch:
                net = torch_cnn(torch)
                opt = torch.optim.Adam(net.parameters(), 1e-3)
                lossf = torch.nn.BCEWithLogitsLoss()
                xt = torch.tensor(xc.transpose(0, 3, 1, 2).copy())
                yt = torch.tensor(yc).reshape(-1, 1)

                def ep_torch():
                    correct = 0
                    perm = torch.randperm(len(xt))
                    for i in range(0, len(xt), 32):
                        idx = perm[i:i + 32]
                        opt.zero_grad()
                        out = net(xt[idx])
                        lossf(out, yt[idx]).backward()
                        opt.step()
                        correct += int(((out > 0).float() == yt[idx]).sum())
                    return correct / len(xt)
                ep_torch()
                t_torch, acc_t = timed(ep_torch)
            b.record(f"CNN epoch ({n_cnn} samples, batch 32)", nncore_s=t_ours, numpy_s=t_np,
                     torch_s=t_torch, note=f"acc ours {acc_ours:.3f} torch {acc_t}")
    b.finish()


if __name__ == "__main__":
    main()
