"""Layer nodes of issue 5 against NumPy and PyTorch: BatchNormalization, LayerNormalization,
Dropout and Embedding, one training forward + backward each (input and weight gradients).
Ours runs through the test entry points (node_forward/node_backward), which add a copy of y and
of dy per call: the figures slightly understate the engine.

    python bench/bench_norm.py [--quick] [--threads 1,2] [--no-torch]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Bench  # noqa: E402

from nncore import _kernels as K  # noqa: E402


def np_bn(x, dy, g, b, eps=1e-3):
    m = x.mean(0)
    v = x.var(0)
    inv = 1 / np.sqrt(v + eps)
    xh = (x - m) * inv
    y = xh * g + b
    n = x.shape[0]
    sdy, sdyx = dy.sum(0), (dy * xh).sum(0)
    dx = (g * inv / n) * (n * dy - sdy - xh * sdyx)
    return y, dx, sdyx, sdy


def np_ln(x, dy, g, b, eps=1e-3):
    m = x.mean(1, keepdims=True)
    v = x.var(1, keepdims=True)
    inv = 1 / np.sqrt(v + eps)
    xh = (x - m) * inv
    y = xh * g + b
    gd = dy * g
    dx = inv * (gd - gd.mean(1, keepdims=True) - xh * (gd * xh).mean(1, keepdims=True))
    return y, dx, (dy * xh).sum(0), dy.sum(0)


def np_drop(x, dy, rng, rate=0.3):
    keep = rng.random(x.shape, dtype=np.float32) >= rate
    s = np.float32(1 / (1 - rate))
    return x * keep * s, dy * keep * s


def np_emb(table, idx, dy):
    y = table[idx]
    g = np.zeros_like(table)
    np.add.at(g, idx.reshape(-1), dy.reshape(-1, table.shape[1]))
    return y, g


def main():
    b = Bench("norm", __doc__)
    torch = b.torch
    rng = np.random.default_rng(0)
    shapes = [(256, 256), (8192, 64)] if not b.quick else [(256, 256)]
    for nt in b.threads:
        with b.at_threads(nt):
            for rows, C in shapes:
                x = rng.standard_normal((rows, C)).astype(np.float32)
                dy = rng.standard_normal((rows, C)).astype(np.float32)
                p = np.concatenate([np.ones(C), np.zeros(C), np.zeros(C), np.ones(C)]).astype(np.float32)
                g = np.zeros_like(p)
                node = K.batchnorm_node(C, C, 0.99, 1e-3, True, True, np.zeros(1, np.int32), p, g)

                def ours(node=node, x=x, dy=dy):
                    K.node_forward(node, x, 1)
                    K.node_backward(node, x, dy)

                tf = None
                if torch:
                    bn = torch.nn.BatchNorm1d(C, eps=1e-3)
                    xt = torch.from_numpy(x).requires_grad_(True)
                    dyt = torch.from_numpy(dy)

                    def tf(bn=bn, xt=xt, dyt=dyt):
                        xt.grad = None
                        bn.zero_grad()
                        bn(xt).backward(dyt)
                b.case(f"batchnorm fwd+bwd ({rows},{C})", ours,
                       lambda x=x, dy=dy, C=C: np_bn(x, dy, p[:C], p[C:2 * C]), tf)

                pl = np.concatenate([np.ones(C), np.zeros(C)]).astype(np.float32)
                gl = np.zeros_like(pl)
                lnode = K.layernorm_node(C, C, 1e-3, True, True, pl, gl)

                def ours_ln(node=lnode, x=x, dy=dy):
                    K.node_forward(node, x, 1)
                    K.node_backward(node, x, dy)

                tf = None
                if torch:
                    ln = torch.nn.LayerNorm(C, eps=1e-3)

                    def tf(ln=ln, xt=xt, dyt=dyt):
                        xt.grad = None
                        ln.zero_grad()
                        ln(xt).backward(dyt)
                b.case(f"layernorm fwd+bwd ({rows},{C})", ours_ln,
                       lambda x=x, dy=dy, C=C: np_ln(x, dy, pl[:C], pl[C:]), tf)

            x = rng.standard_normal((256, 1024)).astype(np.float32)
            dy = rng.standard_normal((256, 1024)).astype(np.float32)
            dnode = K.dropout_node(1024, 0.3, 1)

            def ours_d():
                K.node_forward(dnode, x, 1)
                K.node_backward(dnode, x, dy)

            tf = None
            if torch:
                xt = torch.from_numpy(x).requires_grad_(True)
                dyt = torch.from_numpy(dy)

                def tf():
                    xt.grad = None
                    torch.nn.functional.dropout(xt, 0.3, True).backward(dyt)
            b.case("dropout fwd+bwd (256,1024)", ours_d, lambda: np_drop(x, dy, rng), tf)

            V, D, Lx, n = 1000, 32, 20, 256
            table = rng.standard_normal((V, D)).astype(np.float32)
            idx = rng.integers(0, V, size=(n, Lx))
            xi = idx.astype(np.float32)
            dye = rng.standard_normal((n, Lx * D)).astype(np.float32)
            pe, ge = table.reshape(-1).copy(), np.zeros(V * D, np.float32)
            enode = K.embedding_node(Lx, V, D, pe, ge)

            def ours_e():
                K.node_forward(enode, xi, 1)
                K.node_backward(enode, xi, dye, False)

            tf = None
            if torch:
                emb = torch.nn.Embedding(V, D)
                it = torch.from_numpy(idx)
                dyet = torch.from_numpy(dye.reshape(n, Lx, D))

                def tf():
                    emb.zero_grad()
                    emb(it).backward(dyet)
            b.case(f"embedding fwd+bwd V={V} D={D} ({n}x{Lx})", ours_e,
                   lambda: np_emb(table, idx, dye), tf)
    b.finish()


if __name__ == "__main__":
    main()
