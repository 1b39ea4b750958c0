"""NumPy LSTM / GRU baseline for bench_rnn.py: per step ONE fused gate matmul ([x_t, h] @ [W; U]),
forward and backward through time (BPTT), Keras layouts and gate orders. Float32 throughout."""
import numpy as np


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


class NumpyLSTM:
    def __init__(self, W, U, b):
        self.Wc = np.vstack([W, U]).astype(np.float32)  # [(I+H) x 4H]
        self.b = b.astype(np.float32)
        self.I, self.H = W.shape[0], U.shape[0]

    def forward(self, x, return_sequences=False):
        B, T, _ = x.shape
        H = self.H
        h = np.zeros((B, H), np.float32)
        c = np.zeros((B, H), np.float32)
        self.cache = []
        ys = np.empty((B, T, H), np.float32)
        for t in range(T):
            xh = np.concatenate([x[:, t], h], axis=1)
            z = xh @ self.Wc + self.b
            i, f, o = _sig(z[:, :H]), _sig(z[:, H:2 * H]), _sig(z[:, 3 * H:])
            g = np.tanh(z[:, 2 * H:3 * H])
            cp = c
            c = f * c + i * g
            tc = np.tanh(c)
            h = o * tc
            self.cache.append((xh, i, f, g, o, cp, tc))
            ys[:, t] = h
        self.seq = return_sequences
        return ys if return_sequences else h

    def backward(self, dy):
        B = dy.shape[0]
        H, I = self.H, self.I
        T = len(self.cache)
        dWc = np.zeros_like(self.Wc)
        db = np.zeros_like(self.b)
        dx = np.empty((B, T, I), np.float32)
        dh = np.zeros((B, H), np.float32) if self.seq else dy.astype(np.float32)
        dc = np.zeros((B, H), np.float32)
        dz = np.empty((B, 4 * H), np.float32)
        for t in range(T - 1, -1, -1):
            xh, i, f, g, o, cp, tc = self.cache[t]
            if self.seq:
                dh = dh + dy[:, t]
            dc = dc + dh * o * (1 - tc * tc)
            dz[:, :H] = dc * g * i * (1 - i)
            dz[:, H:2 * H] = dc * cp * f * (1 - f)
            dz[:, 2 * H:3 * H] = dc * i * (1 - g * g)
            dz[:, 3 * H:] = dh * tc * o * (1 - o)
            dc = dc * f
            dWc += xh.T @ dz
            db += dz.sum(0)
            dxh = dz @ self.Wc.T
            dx[:, t] = dxh[:, :I]
            dh = dxh[:, I:]
        return dx, dWc, db


class NumpyGRU:
    """reset_after=True (Keras default): one fused matmul [x_t, h] @ [[W, 0], [0, U]] gives the
    input and recurrent projections of all three gates at once."""

    def __init__(self, W, U, b):
        I, H = W.shape[0], U.shape[0]
        Wc = np.zeros((I + H, 6 * H), np.float32)
        Wc[:I, :3 * H] = W
        Wc[I:, 3 * H:] = U
        self.Wc = Wc
        self.b = b.reshape(-1).astype(np.float32)  # [b_x, b_h]
        self.I, self.H = I, H

    def forward(self, x, return_sequences=False):
        B, T, _ = x.shape
        H = self.H
        h = np.zeros((B, H), np.float32)
        self.cache = []
        ys = np.empty((B, T, H), np.float32)
        for t in range(T):
            xh = np.concatenate([x[:, t], h], axis=1)
            a = xh @ self.Wc + self.b
            gx, gh = a[:, :3 * H], a[:, 3 * H:]
            z = _sig(gx[:, :H] + gh[:, :H])
            r = _sig(gx[:, H:2 * H] + gh[:, H:2 * H])
            hh = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
            hp = h
            h = z * hp + (1 - z) * hh
            self.cache.append((xh, z, r, hh, gh[:, 2 * H:].copy(), hp))
            ys[:, t] = h
        self.seq = return_sequences
        return ys if return_sequences else h

    def backward(self, dy):
        B = dy.shape[0]
        H, I = self.H, self.I
        T = len(self.cache)
        dWc = np.zeros_like(self.Wc)
        db = np.zeros_like(self.b)
        dx = np.empty((B, T, I), np.float32)
        dh = np.zeros((B, H), np.float32) if self.seq else dy.astype(np.float32)
        da = np.empty((B, 6 * H), np.float32)
        for t in range(T - 1, -1, -1):
            xh, z, r, hh, ghh, hp = self.cache[t]
            if self.seq:
                dh = dh + dy[:, t]
            ah = dh * (1 - z) * (1 - hh * hh)
            dzp = dh * (hp - hh) * z * (1 - z)
            drp = ah * ghh * r * (1 - r)
            da[:, :H] = dzp
            da[:, H:2 * H] = drp
            da[:, 2 * H:3 * H] = ah
            da[:, 3 * H:4 * H] = dzp
            da[:, 4 * H:5 * H] = drp
            da[:, 5 * H:] = ah * r
            dWc += xh.T @ da
            db += da.sum(0)
            dxh = da @ self.Wc.T
            dx[:, t] = dxh[:, :I]
            dh = dh * z + dxh[:, I:]
        return dx, dWc, db


class NumpyStack:
    """layer1 (return_sequences) -> layer2 (last output), as in the issue's model."""

    def __init__(self, cls, F, H1, H2, rng):
        G = 4 if cls is NumpyLSTM else 3
        bs = (lambda n: (2, n)) if cls is NumpyGRU else (lambda n: (n,))
        self.l1 = cls(rng.uniform(-.2, .2, (F, G * H1)), rng.uniform(-.2, .2, (H1, G * H1)),
                      np.zeros(bs(G * H1)))
        self.l2 = cls(rng.uniform(-.2, .2, (H1, G * H2)), rng.uniform(-.2, .2, (H2, G * H2)),
                      np.zeros(bs(G * H2)))

    def forward(self, x):
        return self.l2.forward(self.l1.forward(x, True), False)

    def forward_backward(self, x, dy):
        self.forward(x)
        d2 = self.l2.backward(dy)
        return self.l1.backward(d2[0])
