"""Max/average/global pooling kernels against the float64 loop reference, PyTorch, across ISAs
and 1 vs 2 threads (bitwise)."""
import numpy as np
import pytest

import nncore as nn

import reference_conv as ref
from conftest import run_threads

CASES = [
    # (N, H, W, C, pool, strides, padding)
    (2, 6, 8, 3, (2, 2), (2, 2), "valid"),
    (2, 7, 9, 5, (2, 2), (2, 2), "same"),
    (1, 7, 7, 17, (3, 3), (2, 2), "same"),      # overlapping windows, padding on both sides
    (3, 9, 8, 4, (3, 2), (1, 3), "valid"),
    (2, 5, 6, 33, (3, 3), (1, 1), "same"),
    (1, 4, 4, 1, (4, 4), (4, 4), "valid"),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", CASES)
def test_pool2d_vs_reference(isa, rng, kind, case):
    N, H, W, C, p, s, pad = case
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    if kind == "max":  # ties: the first maximum in window order wins
        x[:, ::2, ::2, 0] = x[:, 1::2, 1::2, 0].max() if H > 1 else x[:, ::2, ::2, 0]
    fwd = {"max": nn.ops.max_pool2d, "avg": nn.ops.avg_pool2d}[kind]
    bwd = {"max": nn.ops.max_pool2d_backward, "avg": nn.ops.avg_pool2d_backward}[kind]
    y, ctx = fwd(x, p, s, pad, return_context=True)
    yr, back = ref.pool2d(x, p, s, pad, kind)
    np.testing.assert_allclose(y, yr, rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = bwd(ctx, dy)
    np.testing.assert_allclose(dx, back(dy), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bwd(x, dy, pool_size=p, strides=s, padding=pad), dx)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("L,p,s,pad", [(11, 2, None, "valid"), (11, 3, 2, "same"), (5, 5, 1, "same")])
def test_pool1d_vs_reference(isa, rng, kind, L, p, s, pad):
    x = rng.standard_normal((3, L, 6)).astype(np.float32)
    fwd = {"max": nn.ops.max_pool1d, "avg": nn.ops.avg_pool1d}[kind]
    bwd = {"max": nn.ops.max_pool1d_backward, "avg": nn.ops.avg_pool1d_backward}[kind]
    y, ctx = fwd(x, p, s, pad, return_context=True)
    yr, back = ref.pool2d(x[:, None], (1, p), (1, s or p), pad, kind)
    np.testing.assert_allclose(y, yr[:, 0], rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(bwd(ctx, dy), back(dy[:, None])[:, 0], rtol=1e-5, atol=1e-6)


def test_avg_pool_finite_differences(rng):
    x = rng.standard_normal((1, 5, 5, 2))
    g = rng.standard_normal(nn.ops.avg_pool2d(x, 3, 2, "same").shape)
    dx = nn.ops.avg_pool2d_backward(x, g, pool_size=3, strides=2, padding="same")
    eps = 1e-2
    for i in rng.choice(x.size, 8, replace=False):
        xp, xm = x.copy().reshape(-1), x.copy().reshape(-1)
        xp[i] += eps
        xm[i] -= eps
        num = (np.sum(nn.ops.avg_pool2d(xp.reshape(x.shape), 3, 2, "same") * g)
               - np.sum(nn.ops.avg_pool2d(xm.reshape(x.shape), 3, 2, "same") * g)) / (2 * eps)
        assert abs(num - dx.reshape(-1)[i]) < 1e-3


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("ndim", [1, 2])
def test_global_pool(isa, rng, kind, ndim):
    shape = (3, 7, 5, 9) if ndim == 2 else (3, 11, 9)
    x = rng.standard_normal(shape).astype(np.float32)
    name = f"global_{kind}_pool{ndim}d"
    y, ctx = getattr(nn.ops, name)(x, return_context=True)
    axes = tuple(range(1, ndim + 1))
    red = x.astype(np.float64).max(axis=axes) if kind == "max" else x.astype(np.float64).mean(axis=axes)
    np.testing.assert_allclose(y, red, rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = getattr(nn.ops, name + "_backward")(ctx, dy)
    xf = x.reshape(3, -1, x.shape[-1])
    if kind == "max":
        exp = np.zeros_like(xf)
        idx = np.argmax(xf, axis=1)
        for n in range(3):
            exp[n, idx[n], np.arange(xf.shape[2])] = dy[n]
    else:
        exp = np.broadcast_to(dy[:, None] / xf.shape[1], xf.shape)
    np.testing.assert_allclose(dx.reshape(xf.shape), exp, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(getattr(nn.ops, name + "_backward")(x, dy), dx)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", [(5, 26, 26, 32, (2, 2), (2, 2), "valid"),
                                  (3, 9, 9, 7, (3, 3), (1, 1), "same")])
def test_pool_threads_bitwise(isa, force_threads, rng, kind, case):
    N, H, W, C, p, s, pad = case
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    fwd = {"max": nn.ops.max_pool2d, "avg": nn.ops.avg_pool2d}[kind]
    bwd = {"max": nn.ops.max_pool2d_backward, "avg": nn.ops.avg_pool2d_backward}[kind]
    dy = rng.standard_normal(fwd(x, p, s, pad).shape).astype(np.float32)

    def run():
        y, ctx = fwd(x, p, s, pad, return_context=True)
        g, gctx = nn.ops.global_max_pool2d(x, return_context=True)
        return y, bwd(ctx, dy), g, nn.ops.global_max_pool2d_backward(gctx, g), nn.ops.global_avg_pool2d(x)

    for a, b in zip(run_threads(run, 1), run_threads(run, 2)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs,match", [
    (dict(x=np.zeros((4, 4, 3))), "rank 4"),
    (dict(pool_size=0), "pool_size must be positive"),
    (dict(pool_size=(2, 2, 2)), "tuple of 2"),
    (dict(strides=-2), "strides must be positive"),
    (dict(pool_size=5), "larger than the input"),
    (dict(padding="causal"), "padding must be"),
    (dict(x=np.zeros((1, 0, 4, 3))), "zero-size"),
    (dict(pool_size=(17, 17), padding="same"), "256"),
])
def test_pool_bad_inputs(kwargs, match):
    args = dict(x=np.zeros((1, 4, 4, 3)), pool_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nn.ops.max_pool2d(**args)


def test_pool_backward_bad_inputs(rng):
    x = rng.standard_normal((1, 4, 4, 3))
    y, ctx = nn.ops.max_pool2d(x, 2, return_context=True)
    with pytest.raises(ValueError, match="dy has shape"):
        nn.ops.max_pool2d_backward(ctx, np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="not avg2d"):
        nn.ops.avg_pool2d_backward(ctx, y)
    with pytest.raises(ValueError, match="rank 3"):
        nn.ops.global_avg_pool1d(x)


@pytest.mark.parametrize("kind,p,s,pad", [("max", 2, 2, 0), ("max", 3, 2, 1), ("avg", 2, 2, 0),
                                          ("avg", 3, 1, 0)])
def test_pool_torch_parity(rng, kind, p, s, pad):
    torch = pytest.importorskip("torch")
    # 9x9, k=3, s=2: Keras 'same' pads one on each side, like torch's padding=1
    x = rng.standard_normal((2, 9, 9, 5)).astype(np.float32)
    padding = "same" if pad else "valid"
    fwd = {"max": nn.ops.max_pool2d, "avg": nn.ops.avg_pool2d}[kind]
    bwd = {"max": nn.ops.max_pool2d_backward, "avg": nn.ops.avg_pool2d_backward}[kind]
    y, ctx = fwd(x, p, s, padding, return_context=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = bwd(ctx, dy)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    if kind == "max":
        yt = torch.nn.functional.max_pool2d(xt, p, s, padding=pad)
    else:
        yt = torch.nn.functional.avg_pool2d(xt, p, s, padding=pad, count_include_pad=False)
    assert yt.shape[2:] == y.shape[1:3]
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
