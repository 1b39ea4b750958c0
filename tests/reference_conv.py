"""Float64 loop references for convolution and pooling (independent of nncore: own geometry,
explicit zero padding, loops over output pixels). NHWC activations, HWIO kernels."""
import numpy as np


def out_and_pad(n, k, s, padding, d=1):
    """Keras/TensorFlow rule: 'same' -> ceil(n/s), pad_total = max((out-1)*s + keff - n, 0),
    the extra one after; 'causal' pads keff-1 before."""
    keff = (k - 1) * d + 1
    if padding == "valid":
        return (n - keff) // s + 1, 0, 0
    if padding == "causal":
        return (n - 1) // s + 1, keff - 1, 0
    out = -(-n // s)
    tot = max((out - 1) * s + keff - n, 0)
    return out, tot // 2, tot - tot // 2


def conv2d(x, k, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), act=None):
    x = np.asarray(x, np.float64)
    k = np.asarray(k, np.float64)
    N, H, W, C = x.shape
    KH, KW, _, F = k.shape
    OH, pt, pb = out_and_pad(H, KH, strides[0], padding, dilation[0])
    OW, pl, pr = out_and_pad(W, KW, strides[1], padding, dilation[1])
    xp = np.zeros((N, H + pt + pb + KH * dilation[0], W + pl + pr + KW * dilation[1], C))
    xp[:, pt:pt + H, pl:pl + W] = x
    y = np.zeros((N, OH, OW, F))
    for oh in range(OH):
        for ow in range(OW):
            for kh in range(KH):
                for kw in range(KW):
                    v = xp[:, oh * strides[0] + kh * dilation[0], ow * strides[1] + kw * dilation[1]]
                    y[:, oh, ow] += v @ k[kh, kw]
    if b is not None:
        y += np.asarray(b, np.float64)
    return apply_act(y, act)


def apply_act(y, act):
    if act in (None, "linear"):
        return y
    if act == "relu":
        return np.maximum(y, 0)
    if act == "relu6":
        return np.clip(y, 0, 6)
    if act == "leaky_relu":
        return np.where(y > 0, y, 0.2 * y)
    if act == "tanh":
        return np.tanh(y)
    if act == "gelu":
        from math import erf
        return 0.5 * y * (1 + np.vectorize(erf)(y / np.sqrt(2)))
    raise ValueError(act)


def conv2d_grads(x, k, dy, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """(dx, dk, db) for dy = gradient of the pre-activation output (adjoint loops)."""
    x = np.asarray(x, np.float64)
    k = np.asarray(k, np.float64)
    dy = np.asarray(dy, np.float64)
    N, H, W, C = x.shape
    KH, KW, _, F = k.shape
    OH, pt, pb = out_and_pad(H, KH, strides[0], padding, dilation[0])
    OW, pl, pr = out_and_pad(W, KW, strides[1], padding, dilation[1])
    Hp, Wp = H + pt + pb + KH * dilation[0], W + pl + pr + KW * dilation[1]
    xp = np.zeros((N, Hp, Wp, C))
    xp[:, pt:pt + H, pl:pl + W] = x
    dxp = np.zeros_like(xp)
    dk = np.zeros_like(k)
    for oh in range(OH):
        for ow in range(OW):
            g = dy[:, oh, ow]  # N x F
            for kh in range(KH):
                for kw in range(KW):
                    ih, iw = oh * strides[0] + kh * dilation[0], ow * strides[1] + kw * dilation[1]
                    dxp[:, ih, iw] += g @ k[kh, kw].T
                    dk[kh, kw] += xp[:, ih, iw].T @ g
    return dxp[:, pt:pt + H, pl:pl + W], dk, dy.sum(axis=(0, 1, 2))


def pool2d(x, pool, strides, padding, kind):
    """(y, dx_fn): dx_fn(dy) -> dx (max: to the first maximum in window order)."""
    x = np.asarray(x, np.float64)
    N, H, W, C = x.shape
    OH, pt, _ = out_and_pad(H, pool[0], strides[0], padding)
    OW, pl, _ = out_and_pad(W, pool[1], strides[1], padding)
    y = np.zeros((N, OH, OW, C))
    sel = {}
    for oh in range(OH):
        h0 = oh * strides[0] - pt
        hs = [h for h in range(h0, h0 + pool[0]) if 0 <= h < H]
        for ow in range(OW):
            w0 = ow * strides[1] - pl
            ws = [w for w in range(w0, w0 + pool[1]) if 0 <= w < W]
            win = x[:, hs][:, :, ws].reshape(N, len(hs) * len(ws), C)
            if kind == "max":
                idx = np.argmax(win, axis=1)  # first maximum in window order
                y[:, oh, ow] = np.take_along_axis(win, idx[:, None], 1)[:, 0]
                sel[oh, ow] = (hs, ws, idx)
            else:
                y[:, oh, ow] = win.mean(axis=1)
                sel[oh, ow] = (hs, ws, None)

    def backward(dy):
        dy = np.asarray(dy, np.float64)
        dx = np.zeros_like(x)
        for (oh, ow), (hs, ws, idx) in sel.items():
            cnt = len(hs) * len(ws)
            for j, (h, w) in enumerate((h, w) for h in hs for w in ws):
                if kind == "max":
                    dx[:, h, w] += np.where(idx == j, dy[:, oh, ow], 0)
                else:
                    dx[:, h, w] += dy[:, oh, ow] / cnt
        return dx

    return y, backward
