"""Float64 step-by-step reference for the recurrent kernels (Keras 3 cell formulas, written
directly from keras/src/layers/rnn/{lstm,gru,simple_rnn}.py semantics; no shared code with
the C kernels). Used by test_rnn.py for forward checks and, through central differences,
for the gradients."""
import numpy as np


def act(name, x):
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "hard_sigmoid":
        return np.clip(x / 6.0 + 0.5, 0.0, 1.0)
    if name in ("linear", None):
        return x
    raise ValueError(name)


def rnn_ref(kind, x, W, U, b=None, h0=None, c0=None, go_backwards=False, activation="tanh",
            recurrent_activation="sigmoid", reset_after=True, imask=None, rmask=None, mask=None,
            zero_output=False):
    """Returns (y_seq [B,T,H] in processing order, hT, cT or None), all float64.

    mask [B,T] (input time order): Keras 3's masked loop (backend rnn()): at a masked step the
    states stay and the output is the previous output (zeros at first), or zeros with
    zero_output."""
    x = np.asarray(x, np.float64)
    W = np.asarray(W, np.float64)
    U = np.asarray(U, np.float64)
    B, T, _ = x.shape
    H = U.shape[0]
    if imask is not None:
        x = x * np.asarray(imask, np.float64)[:, None, :]
    h = np.zeros((B, H)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((B, H)) if c0 is None else np.asarray(c0, np.float64)
    if b is not None:
        b = np.asarray(b, np.float64)
    a = lambda v: act(activation, v)  # noqa: E731
    ra = lambda v: act(recurrent_activation, v)  # noqa: E731
    ys = []
    prev = np.zeros((B, H))
    steps = range(T - 1, -1, -1) if go_backwards else range(T)
    for s in steps:
        xt = x[:, s]
        h_old, c_old = h, c
        hm = h if rmask is None else h * rmask
        if kind == "lstm":
            z = xt @ W + hm @ U + (0 if b is None else b)
            i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
            i, f, g, o = ra(i), ra(f), a(g), ra(o)
            c = f * c + i * g
            h = o * a(c)
        elif kind == "gru":
            if reset_after:
                bx = 0 if b is None else b[0]
                bh = 0 if b is None else b[1]
                gx = xt @ W + bx
                gh = hm @ U + bh
                z = ra(gx[:, :H] + gh[:, :H])
                r = ra(gx[:, H:2 * H] + gh[:, H:2 * H])
                hh = a(gx[:, 2 * H:] + r * gh[:, 2 * H:])
            else:
                gx = xt @ W + (0 if b is None else b)
                z = ra(gx[:, :H] + hm @ U[:, :H])
                r = ra(gx[:, H:2 * H] + hm @ U[:, H:2 * H])
                hh = a(gx[:, 2 * H:] + (r * hm) @ U[:, 2 * H:])
            h = z * hm + (1 - z) * hh
        else:
            h = a(xt @ W + hm @ U + (0 if b is None else b))
        if mask is not None:
            m = np.asarray(mask, bool)[:, s][:, None]
            out = np.where(m, h, 0.0 if zero_output else prev)
            h, c = np.where(m, h, h_old), np.where(m, c, c_old)
            prev = out
            ys.append(out)
            continue
        ys.append(h)
    return np.stack(ys, axis=1), h, (c if kind == "lstm" else None)
