"""Reference implementations in plain NumPy, for the demo and bench/: the same MLP, forward,
backward and Adam, vectorised as a competent NumPy user would write them (float32, BLAS
matmuls, in-place updates). They are the yardstick nncore's speed is quoted against."""
import numpy as np


class NumpyMLP:
    """Dense layers with relu/tanh hidden activations and a sigmoid (binary cross-entropy) or
    softmax (sparse categorical cross-entropy) output, trained with Adam (Keras's formulas)."""

    def __init__(self, sizes, hidden="relu", output="sigmoid", lr=1e-3, seed=0, weights=None):
        rng = np.random.default_rng(seed)
        self.W, self.b = [], []
        for i, (a, c) in enumerate(zip(sizes[:-1], sizes[1:])):
            if weights is not None:
                w, b = weights[2 * i], weights[2 * i + 1]
            else:
                lim = np.sqrt(6.0 / (a + c))
                w, b = rng.uniform(-lim, lim, (a, c)), np.zeros(c)
            self.W.append(np.array(w, dtype=np.float32))
            self.b.append(np.array(b, dtype=np.float32))
        self.hidden, self.output, self.lr = hidden, output, lr
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def forward(self, x):
        acts = [x]
        a = x
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            z = a @ w
            z += b
            if i < len(self.W) - 1:
                a = np.maximum(z, 0, out=z) if self.hidden == "relu" else np.tanh(z, out=z)
            else:
                a = z
            acts.append(a)
        return acts

    def predict(self, x):
        z = self.forward(np.asarray(x, np.float32))[-1]
        if self.output == "sigmoid":
            return 1.0 / (1.0 + np.exp(-z))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def train_step(self, x, y):
        acts = self.forward(x)
        z = acts[-1]
        n = x.shape[0]
        if self.output == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-z))
            dz = (p - y.reshape(p.shape)) / n
            loss = float(np.mean(np.maximum(z, 0) - z * y.reshape(z.shape) + np.log1p(np.exp(-np.abs(z)))))
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            loss = float(-np.mean(np.log(p[np.arange(n), y] + 1e-7)))
            dz = p
            dz[np.arange(n), y] -= 1.0
            dz /= n
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for i in reversed(range(len(self.W))):
            gW[i] = acts[i].T @ dz
            gb[i] = dz.sum(axis=0)
            if i:
                dz = dz @ self.W[i].T
                if self.hidden == "relu":
                    dz *= acts[i] > 0
                else:
                    dz *= 1 - acts[i] * acts[i]
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-7
        alpha = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for p_, g, m, v in zip(self.params, gW + gb, self.m, self.v):
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g * g - v)
            p_ -= alpha * m / (np.sqrt(v) + eps)
        return loss

    def fit_epoch(self, x, y, batch_size=32, rng=None):
        idx = (rng or np.random.default_rng()).permutation(len(x))
        total = 0.0
        for s in range(0, len(x), batch_size):
            b = idx[s:s + batch_size]
            total += self.train_step(x[b], y[b]) * len(b)
        return total / len(x)
