"""NumPy baselines for bench_conv.py: im2col convolution (sliding_window_view + matmul), 2x2
max pooling, and a training loop for the issue's CNN (Conv-Pool-Conv-Pool-Dense-Dense, Adam,
binary cross-entropy). NHWC, valid padding, stride 1 (the benchmark's shapes)."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_fwd(x, k, b=None, stride=1):
    """x (N,H,W,C), k (KH,KW,C,F) -> relu-free y (N,OH,OW,F) and the im2col matrix."""
    KH, KW, C, F = k.shape
    win = sliding_window_view(x, (KH, KW), axis=(1, 2))[:, ::stride, ::stride]  # N,OH,OW,C,KH,KW
    N, OH, OW = win.shape[:3]
    cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(N * OH * OW, KH * KW * C)
    y = cols @ k.reshape(-1, F)
    if b is not None:
        y += b
    return y.reshape(N, OH, OW, F), cols


def conv_bwd(x_shape, k, cols, dz, need_dx=True):
    """(dx, dk, db) for valid stride-1 convs: dk = cols^T dz, dx = full conv of dz with the
    flipped kernel."""
    KH, KW, C, F = k.shape
    dz2 = dz.reshape(-1, F)
    dk = (cols.T @ dz2).reshape(k.shape)
    db = dz2.sum(0)
    if not need_dx:
        return None, dk, db
    dzp = np.pad(dz, ((0, 0), (KH - 1, KH - 1), (KW - 1, KW - 1), (0, 0)))
    kf = k[::-1, ::-1].transpose(0, 1, 3, 2)  # KH,KW,F,C
    dx, _ = conv_fwd(dzp, kf)
    return dx, dk, db


def maxpool_fwd(x):
    N, H, W, C = x.shape
    OH, OW = H // 2, W // 2
    xr = x[:, :OH * 2, :OW * 2].reshape(N, OH, 2, OW, 2, C)
    y = xr.max(axis=(2, 4))
    mask = xr == y[:, :, None, :, None]
    return y, mask


def maxpool_bwd(x_shape, mask, dy):
    N, H, W, C = x_shape
    OH, OW = H // 2, W // 2
    dxr = mask * dy[:, :, None, :, None]
    dx = np.zeros(x_shape, dy.dtype)
    dx[:, :OH * 2, :OW * 2] = dxr.reshape(N, OH * 2, OW * 2, C)
    return dx


class NumpyCNN:
    """The issue's CNN in NumPy (float32), Adam(1e-3), binary cross-entropy."""

    def __init__(self, rng, in_shape=(28, 28, 1)):
        def glorot(shape, fan_in, fan_out):
            lim = np.sqrt(6 / (fan_in + fan_out))
            return rng.uniform(-lim, lim, shape).astype(np.float32)
        C = in_shape[2]
        s = ((in_shape[0] - 2) // 2 - 2) // 2
        self.p = [glorot((3, 3, C, 32), 9 * C, 9 * 32), np.zeros(32, np.float32),
                  glorot((3, 3, 32, 64), 288, 576), np.zeros(64, np.float32),
                  glorot((s * s * 64, 64), s * s * 64, 64), np.zeros(64, np.float32),
                  glorot((64, 1), 64, 1), np.zeros(1, np.float32)]
        self.m = [np.zeros_like(p) for p in self.p]
        self.v = [np.zeros_like(p) for p in self.p]
        self.t = 0

    def step(self, x, y, lr=1e-3):
        k1, b1, k2, b2, w3, b3, w4, b4 = self.p
        z1, c1 = conv_fwd(x, k1, b1)
        a1 = np.maximum(z1, 0)
        p1, m1 = maxpool_fwd(a1)
        z2, c2 = conv_fwd(p1, k2, b2)
        a2 = np.maximum(z2, 0)
        p2, m2 = maxpool_fwd(a2)
        f = p2.reshape(len(x), -1)
        h = np.maximum(f @ w3 + b3, 0)
        o = 1 / (1 + np.exp(-(h @ w4 + b4)))
        d4 = (o - y.reshape(-1, 1)) / len(x)
        g_w4, g_b4 = h.T @ d4, d4.sum(0)
        dh = (d4 @ w4.T) * (h > 0)
        g_w3, g_b3 = f.T @ dh, dh.sum(0)
        dp2 = (dh @ w3.T).reshape(p2.shape)
        da2 = maxpool_bwd(a2.shape, m2, dp2) * (z2 > 0)
        dp1, g_k2, g_b2 = conv_bwd(p1.shape, k2, c2, da2)
        da1 = maxpool_bwd(a1.shape, m1, dp1) * (z1 > 0)
        _, g_k1, g_b1 = conv_bwd(x.shape, k1, c1, da1, need_dx=False)
        grads = [g_k1, g_b1, g_k2, g_b2, g_w3, g_b3, g_w4, g_b4]
        self.t += 1
        b1c, b2c = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        for p, g, m, v in zip(self.p, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= lr * (m / b1c) / (np.sqrt(v / b2c) + 1e-7)

    def epoch(self, x, y, batch=32):
        for i in range(0, len(x), batch):
            self.step(x[i:i + batch], y[i:i + batch])
