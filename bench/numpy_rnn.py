"""NumPy LSTM / GRU baseline for bench_rnn.py: per step one fused gate matmul for LSTM
([x_t, h] @ [W; U]), x_t W and h U for GRU (see NumpyGRU), forward and backward through time
(BPTT), Keras layouts and gate orders. Float32 throughout."""
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
    """reset_after=True (Keras default). Its candidate needs r * (h U_h + b_h) apart from the input
    part, so the step's gate matmul cannot take [x_t, h] in one product without a block-diagonal
    [[W, 0], [0, U]] that doubles the flops; it is two products, x_t W and h U."""

    def __init__(self, W, U, b):
        self.W, self.U = W.astype(np.float32), U.astype(np.float32)
        b = b.reshape(2, -1).astype(np.float32)
        self.bx, self.bh = b[0], b[1]
        self.I, self.H = W.shape[0], U.shape[0]

    def forward(self, x, return_sequences=False):
        B, T, _ = x.shape
        H = self.H
        h = np.zeros((B, H), np.float32)
        self.cache = []
        ys = np.empty((B, T, H), np.float32)
        for t in range(T):
            gx = x[:, t] @ self.W + self.bx
            gh = h @ self.U + self.bh
            z = _sig(gx[:, :H] + gh[:, :H])
            r = _sig(gx[:, H:2 * H] + gh[:, H:2 * H])
            hh = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
            hp = h
            h = z * hp + (1 - z) * hh
            self.cache.append((x[:, t], z, r, hh, gh[:, 2 * H:].copy(), hp))
            ys[:, t] = h
        self.seq = return_sequences
        return ys if return_sequences else h

    def backward(self, dy):
        B = dy.shape[0]
        H, I = self.H, self.I
        T = len(self.cache)
        dW, dU = np.zeros_like(self.W), np.zeros_like(self.U)
        db = np.zeros((2, 3 * H), np.float32)
        dx = np.empty((B, T, I), np.float32)
        dh = np.zeros((B, H), np.float32) if self.seq else dy.astype(np.float32)
        dax = np.empty((B, 3 * H), np.float32)
        dah = np.empty((B, 3 * H), np.float32)
        for t in range(T - 1, -1, -1):
            xt, z, r, hh, ghh, hp = self.cache[t]
            if self.seq:
                dh = dh + dy[:, t]
            ah = dh * (1 - z) * (1 - hh * hh)
            dzp = dh * (hp - hh) * z * (1 - z)
            drp = ah * ghh * r * (1 - r)
            dax[:, :H] = dah[:, :H] = dzp
            dax[:, H:2 * H] = dah[:, H:2 * H] = drp
            dax[:, 2 * H:] = ah
            dah[:, 2 * H:] = ah * r
            dW += xt.T @ dax
            dU += hp.T @ dah
            db[0] += dax.sum(0)
            db[1] += dah.sum(0)
            dx[:, t] = dax @ self.W.T
            dh = dh * z + dah @ self.U.T
        return dx, (dW, dU), db


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
