"""Elementwise kernels against NumPy and PyTorch: activation forward+backward (with the bias
gradient), softmax + cross-entropy from logits (value and gradient), and one Adam step.

    python bench/bench_elem.py [--quick] [--threads 1,2] [--no-torch]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Bench  # noqa: E402

from nncore import _kernels as K  # noqa: E402

A = K.ACTIVATIONS


def np_act(name, x, dy):
    """forward + backward + bias gradient, as a NumPy user writes it"""
    if name == "relu":
        y = np.maximum(x, 0)
        dx = dy * (x > 0)
    elif name == "sigmoid":
        y = 1 / (1 + np.exp(-x))
        dx = dy * y * (1 - y)
    elif name == "tanh":
        y = np.tanh(x)
        dx = dy * (1 - y * y)
    elif name == "elu":
        y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
        dx = dy * np.where(x > 0, 1, y + 1)
    elif name == "swish":
        s = 1 / (1 + np.exp(-x))
        y = x * s
        dx = dy * s * (1 + x * (1 - s))
    elif name == "softmax":
        e = np.exp(x - x.max(1, keepdims=True))
        y = e / e.sum(1, keepdims=True)
        dx = y * (dy - (dy * y).sum(1, keepdims=True))
    else:
        return None
    return y, dx, dx.sum(0)


def torch_act(torch, name, x, dy):
    aten = torch.ops.aten
    if name == "relu":
        y = torch.relu(x)
        dx = aten.threshold_backward(dy, y, 0)
    elif name == "sigmoid":
        y = torch.sigmoid(x)
        dx = aten.sigmoid_backward(dy, y)
    elif name == "tanh":
        y = torch.tanh(x)
        dx = aten.tanh_backward(dy, y)
    elif name == "gelu":
        y = torch.nn.functional.gelu(x)
        dx = aten.gelu_backward(dy, x)
    elif name == "swish":
        y = torch.nn.functional.silu(x)
        dx = aten.silu_backward(dy, x)
    elif name == "elu":
        y = torch.nn.functional.elu(x)
        dx = aten.elu_backward(dy, 1.0, 1.0, 1.0, False, y)  # noqa
    elif name == "softmax":
        y = torch.softmax(x, 1)
        dx = aten._softmax_backward_data(dy, y, 1, x.dtype)
    else:
        return None
    return y, dx, dx.sum(0)


def main():
    b = Bench("elem", __doc__)
    torch = b.torch
    rng = np.random.default_rng(0)
    acts = ["relu", "sigmoid", "tanh", "gelu", "swish", "elu", "softmax"]
    if b.quick:
        acts = ["relu", "tanh", "gelu", "softmax"]
    for nt in b.threads:
        with b.at_threads(nt):
            rows, cols = 256, 1024
            x = rng.standard_normal((rows, cols)).astype(np.float32)
            dy = rng.standard_normal((rows, cols)).astype(np.float32)
            y = np.empty_like(x)
            dx = np.empty_like(x)
            db = np.empty(cols, np.float32)
            xt, dyt = (torch.from_numpy(x), torch.from_numpy(dy)) if torch else (None, None)
            for name in acts:
                aid = A[name]
                alpha = K.ACTIVATION_DEFAULT_ALPHA.get(aid, 0.0)

                def ours(aid=aid, alpha=alpha):
                    K.act_forward(aid, alpha, x, y)
                    K.act_backward(aid, alpha, x, y, dy, dx, db)

                npf = (lambda name=name: np_act(name, x, dy)) if np_act(name, x[:1], dy[:1]) else None
                tf = (lambda name=name: torch_act(torch, name, xt, dyt)) if torch else None
                b.case(f"act {name} fwd+bwd+db (256,1024)", ours, npf, tf, note="")

            for cols in (10, 1000):
                rows = 256
                z = (rng.standard_normal((rows, cols)) * 2).astype(np.float32)
                lab = rng.integers(0, cols, rows)
                g = np.empty_like(z)
                lab32 = lab.astype(np.int32)

                def ours_ce(z=z, g=g, lab32=lab32):
                    return K.loss(5, z, lab32, None, True, 0.0, 1.0 / 256, g)

                def np_ce(z=z, lab=lab):
                    m = z.max(1, keepdims=True)
                    e = np.exp(z - m)
                    s = e.sum(1, keepdims=True)
                    loss = (np.log(s[:, 0]) + m[:, 0] - z[np.arange(len(lab)), lab]).mean()
                    gr = e / s
                    gr[np.arange(len(lab)), lab] -= 1
                    gr /= len(lab)
                    return loss, gr

                tf = None
                if torch:
                    zt = torch.from_numpy(z.copy()).requires_grad_(True)
                    lt = torch.from_numpy(lab)

                    def tf(zt=zt, lt=lt):
                        zt.grad = None
                        loss = torch.nn.functional.cross_entropy(zt, lt)
                        loss.backward()
                        return loss

                b.case(f"softmax+sparse CE logits (256,{cols})", ours_ce, np_ce, tf)

            n = 1 << 20
            p = rng.standard_normal(n).astype(np.float32)
            gr = rng.standard_normal(n).astype(np.float32) * 0.01
            m = np.zeros(n, np.float32)
            v = np.zeros(n, np.float32)
            state = {"t": 0}

            def ours_adam():
                state["t"] += 1
                K.adam_update(p, gr, m, v, None, 1e-3, 0.9, 0.999, 1e-7, state["t"])

            pn, mn, vn = p.copy(), m.copy(), v.copy()
            tmp = np.empty_like(pn)
            nst = {"t": 0}

            def np_adam(pn=pn, mn=mn, vn=vn, tmp=tmp):
                nst["t"] += 1
                t = nst["t"]
                alpha = 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
                np.subtract(gr, mn, out=tmp)
                tmp *= 0.1
                mn += tmp
                np.multiply(gr, gr, out=tmp)
                tmp -= vn
                tmp *= 0.001
                vn += tmp
                np.sqrt(vn, out=tmp)
                tmp += 1e-7
                np.divide(mn, tmp, out=tmp)
                tmp *= alpha
                pn -= tmp

            tf = None
            if torch:
                w = torch.from_numpy(p.copy()).requires_grad_(True)
                w.grad = torch.from_numpy(gr.copy())
                opt = torch.optim.Adam([w], lr=1e-3, eps=1e-7)

                def tf():
                    opt.step()

            b.case("adam step 1M params", ours_adam, np_adam, tf)
    b.finish()


if __name__ == "__main__":
    main()
