"""Conv1D/Conv2D kernels (nn.ops.conv1d/conv2d and backwards) against the float64 loop
reference, finite differences, PyTorch, across ISAs and 1 vs 2 threads (bitwise)."""
import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K

import reference_conv as ref
from conftest import run_threads

CASES = [
    # (N, H, W, C, KH, KW, F, strides, padding, dilation)
    (2, 7, 9, 3, 3, 3, 5, (1, 1), "valid", (1, 1)),
    (2, 7, 9, 3, 3, 3, 5, (1, 1), "same", (1, 1)),
    (1, 8, 7, 4, 3, 2, 17, (2, 2), "same", (1, 1)),
    (3, 9, 11, 2, 3, 3, 6, (3, 2), "valid", (1, 1)),
    (2, 10, 9, 5, 3, 3, 4, (1, 1), "same", (2, 2)),
    (2, 11, 10, 3, 2, 3, 7, (2, 3), "same", (2, 1)),
    (2, 5, 6, 7, 1, 1, 9, (1, 1), "valid", (1, 1)),   # pointwise GEMM
    (2, 5, 6, 7, 1, 1, 9, (2, 2), "same", (1, 1)),    # 1x1 strided
    (1, 6, 6, 1, 5, 5, 3, (1, 1), "same", (1, 1)),    # first layer, one channel, big kernel
    (2, 4, 4, 3, 4, 4, 2, (1, 1), "valid", (1, 1)),   # kernel == input
    (2, 6, 7, 16, 3, 3, 5, (1, 1), "same", (1, 1)),   # C >= 16: dx through the flipped kernel
    (1, 7, 7, 17, 3, 2, 4, (1, 1), "valid", (2, 1)),
]


def _data(rng, N, H, W, C, KH, KW, F):
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    k = (rng.standard_normal((KH, KW, C, F)) / np.sqrt(KH * KW * C)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    return x, k, b


@pytest.mark.parametrize("case", CASES)
def test_conv2d_forward_backward_vs_reference(isa, rng, case):
    N, H, W, C, KH, KW, F, s, pad, d = case
    x, k, b = _data(rng, N, H, W, C, KH, KW, F)
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d, return_context=True)
    yr = ref.conv2d(x, k, b, s, pad, d)
    assert y.shape == yr.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, yr, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv2d_backward(ctx, dy)
    dxr, dkr, dbr = ref.conv2d_grads(x, k, dy, s, pad, d)
    np.testing.assert_allclose(dx, dxr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, dkr, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(db, dbr, rtol=1e-4, atol=1e-4)


# >= 16 channels, undilated, not Winograd: the forward reads x in place (implicit GEMM), with
# edge columns and border rows whose kernel rows/columns are cut by the padding (Winograd off:
# 3x3 stride-2 layers would take it)
IMPLICIT_CASES = [
    # (N, H, W, C, KH, KW, F, strides, padding)
    (2, 17, 18, 16, 3, 3, 20, (2, 2), "same"),    # right edge column, last row loses a kernel row
    (2, 16, 19, 17, 3, 3, 33, (2, 1), "same"),    # edges on both sides, F tail
    (1, 12, 20, 24, 5, 5, 16, (1, 1), "same"),    # two edge columns each side; dx the same way
    (2, 15, 21, 16, 3, 5, 16, (3, 2), "valid"),   # no edges
    (1, 10, 20, 32, 1, 3, 16, (1, 2), "same"),    # one kernel row
]


@pytest.fixture
def no_winograd():
    old = K.conv_winograd(False)
    yield
    K.conv_winograd(old)


@pytest.mark.parametrize("case", IMPLICIT_CASES)
def test_conv2d_implicit_vs_reference(isa, no_winograd, rng, case):
    N, H, W, C, KH, KW, F, s, pad = case
    x, k, b = _data(rng, N, H, W, C, KH, KW, F)
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, activation="relu", return_context=True)
    z = ref.conv2d(x, k, b, s, pad)
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv2d_backward(ctx, dy)
    dxr, dkr, dbr = ref.conv2d_grads(x, k, dy * (z > 0), s, pad)
    np.testing.assert_allclose(dx, dxr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, dkr, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(db, dbr, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", IMPLICIT_CASES[:3])
def test_conv2d_implicit_threads_bitwise(isa, no_winograd, force_threads, rng, case):
    N, H, W, C, KH, KW, F, s, pad = case
    x, k, b = _data(rng, N, H, W, C, KH, KW, F)

    def run():
        y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, return_context=True)
        return (y,) + nn.ops.conv2d_backward(ctx, np.ones_like(y))

    for a, c in zip(run_threads(run, 1), run_threads(run, 2)):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("act", ["relu", "relu6", "leaky_relu", "linear", "tanh", "gelu"])
def test_conv2d_fused_activation(isa, rng, act):
    x, k, b = _data(rng, 2, 6, 7, 3, 3, 3, 5)
    x *= 4
    y, ctx = nn.ops.conv2d(x, k, b, padding="same", activation=act, return_context=True)
    z = ref.conv2d(x, k, b, (1, 1), "same")
    np.testing.assert_allclose(y, ref.apply_act(z, act), rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv2d_backward(ctx, dy)
    from math import erf
    cdf = 0.5 * (1 + np.vectorize(erf)(z / np.sqrt(2)))
    deriv = {"relu": (z > 0) * 1.0, "relu6": ((z > 0) & (z < 6)) * 1.0,
             "leaky_relu": np.where(z > 0, 1.0, 0.2), "linear": np.ones_like(z),
             "tanh": 1 - np.tanh(z) ** 2,
             "gelu": cdf + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)}[act]
    dz = dy * deriv
    dxr, dkr, dbr = ref.conv2d_grads(x, k, dz, (1, 1), "same")
    np.testing.assert_allclose(dx, dxr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, dkr, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(db, dbr, rtol=1e-4, atol=1e-4)
    # the args form recomputes the forward and gives the same result
    dx2, dk2, db2 = nn.ops.conv2d_backward((x, k, b), dy, padding="same", activation=act)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dk, dk2)


@pytest.mark.parametrize("s,pad,d,shape", [
    ((1, 1), "same", (1, 1), (1, 5, 6, 2, 3, 2, 3)), ((2, 2), "valid", (1, 1), (1, 5, 6, 2, 3, 2, 3)),
    ((1, 2), "same", (2, 1), (1, 5, 6, 2, 3, 2, 3)),
    ((1, 1), "same", (1, 1), (1, 5, 4, 16, 3, 3, 16)),   # Winograd F(2x2, 3x3)
    ((2, 2), "same", (1, 1), (1, 7, 6, 16, 3, 3, 16))])  # stride-2 Winograd
def test_conv2d_finite_differences(rng, s, pad, d, shape):
    x, k, b = _data(rng, *shape)
    g = rng.standard_normal(nn.ops.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d).shape)

    def loss(x_, k_, b_):
        return float(np.sum(nn.ops.conv2d(x_, k_, b_, strides=s, padding=pad,
                                          dilation_rate=d).astype(np.float64) * g))

    dx, dk, db = nn.ops.conv2d_backward((x, k, b), g.astype(np.float32), strides=s, padding=pad,
                                        dilation_rate=d)
    eps = 1e-2
    for arr, grad in ((x, dx), (k, dk), (b, db)):
        flat = arr.reshape(-1)
        for i in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            lp = loss(x, k, b)
            flat[i] = old - eps
            lm = loss(x, k, b)
            flat[i] = old
            assert abs((lp - lm) / (2 * eps) - grad.reshape(-1)[i]) < 2e-2 * (1 + abs(grad.reshape(-1)[i]))


@pytest.mark.parametrize("case", [
    (4, 26, 26, 8, 3, 3, 48, (1, 1), "valid", (1, 1)),   # many chunks: threads over chunks
    (3, 12, 12, 16, 3, 3, 33, (1, 1), "same", (1, 1)),   # flipped-kernel dx, dW column split
    (2, 9, 9, 8, 3, 3, 16, (1, 1), "same", (1, 1)),      # one chunk: GEMM splits
    (5, 12, 13, 6, 3, 3, 20, (2, 2), "same", (1, 1)),    # strided: col2im over images
    (3, 10, 10, 16, 1, 1, 40, (1, 1), "valid", (1, 1)),  # pointwise
    (1, 11, 10, 5, 3, 3, 24, (2, 1), "valid", (1, 2)),   # one dW slice: threads split its columns
])
def test_conv2d_threads_bitwise(isa, force_threads, rng, case):
    N, H, W, C, KH, KW, F, s, pad, d = case
    x, k, b = _data(rng, N, H, W, C, KH, KW, F)
    dy = rng.standard_normal(nn.ops.conv2d(x, k, strides=s, padding=pad,
                                           dilation_rate=d).shape).astype(np.float32)

    def run():
        y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d,
                               activation="relu", return_context=True)
        return (y,) + nn.ops.conv2d_backward(ctx, dy)

    r1, r2 = run_threads(run, 1), run_threads(run, 2)
    for a, c in zip(r1, r2):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("L,C,Kk,F,s,pad,d", [(13, 3, 3, 4, 1, "valid", 1), (13, 3, 5, 4, 2, "same", 1),
                                              (12, 2, 3, 5, 1, "causal", 2), (9, 1, 2, 3, 3, "causal", 1)])
def test_conv1d_vs_reference(isa, rng, L, C, Kk, F, s, pad, d):
    x = rng.standard_normal((3, L, C)).astype(np.float32)
    k = rng.standard_normal((Kk, C, F)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    y, ctx = nn.ops.conv1d(x, k, b, strides=s, padding=pad, dilation_rate=d, return_context=True)
    if pad == "causal":  # explicit left padding then valid
        xpad = np.concatenate([np.zeros((3, (Kk - 1) * d, C), np.float32), x], axis=1)
        yr = ref.conv2d(xpad[:, None], k[None], b, (1, s), "valid", (1, d))[:, 0]
    else:
        yr = ref.conv2d(x[:, None], k[None], b, (1, s), pad, (1, d))[:, 0]
    np.testing.assert_allclose(y, yr, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv1d_backward(ctx, dy)
    if pad == "causal":
        dxr, dkr, dbr = ref.conv2d_grads(xpad[:, None], k[None], dy[:, None], (1, s), "valid", (1, d))
        dxr = dxr[:, :, (Kk - 1) * d:]
    else:
        dxr, dkr, dbr = ref.conv2d_grads(x[:, None], k[None], dy[:, None], (1, s), pad, (1, d))
    np.testing.assert_allclose(dx, dxr[:, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, dkr[0], rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(db, dbr, rtol=1e-4, atol=1e-4)


def test_conv2d_accepts_any_input(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    k = rng.standard_normal((3, 3, 3, 4))
    ro = np.asfortranarray(x)
    ro.flags.writeable = False
    y = nn.ops.conv2d(ro, k.astype(np.float64), list(range(4)))
    np.testing.assert_allclose(y, ref.conv2d(x, k, np.arange(4)), rtol=1e-4, atol=1e-4)
    yi = nn.ops.conv2d(np.ones((1, 4, 4, 1), np.int64), np.ones((2, 2, 1, 1), np.int32))
    np.testing.assert_array_equal(yi, np.full((1, 3, 3, 1), 4, np.float32))


@pytest.mark.parametrize("kwargs,match", [
    (dict(x=np.zeros((6, 6, 3))), "rank 4"),
    (dict(kernel=np.zeros((3, 3, 4))), "rank 4"),
    (dict(kernel=np.zeros((3, 3, 2, 4))), "channel mismatch"),
    (dict(kernel=np.zeros((7, 3, 3, 4))), "larger than the input"),
    (dict(dilation_rate=3, kernel=np.zeros((3, 3, 3, 4))), "larger than the input"),
    (dict(strides=0), "strides must be positive"),
    (dict(strides=-1), "strides must be positive"),
    (dict(strides=(1, 2, 3)), "tuple of 2"),
    (dict(padding="full"), "padding must be"),
    (dict(padding="causal"), "padding must be"),
    (dict(x=np.zeros((2, 0, 6, 3))), "zero-size"),
    (dict(bias=np.zeros(3)), "bias must have shape"),
    (dict(activation="nope"), "activation"),
    (dict(activation=3), "activation"),
])
def test_conv2d_bad_inputs(kwargs, match):
    args = dict(x=np.zeros((2, 6, 6, 3)), kernel=np.zeros((3, 3, 3, 4)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nn.ops.conv2d(**args)


def test_conv_backward_bad_inputs(rng):
    x, k, b = _data(rng, 2, 6, 6, 3, 3, 3, 4)
    y, ctx = nn.ops.conv2d(x, k, b, return_context=True)
    with pytest.raises(ValueError, match="dy has shape"):
        nn.ops.conv2d_backward(ctx, np.zeros((2, 3, 3, 4)))
    with pytest.raises(ValueError, match="conv2d, not conv1d"):
        nn.ops.conv1d_backward(ctx, y)
    with pytest.raises(TypeError):
        nn.ops.conv2d_backward("nope", y)


def test_plan_rejects_short_buffers():
    p = K.Conv2DPlan((4, 4, 1, 3, 3, 2, 1, 1, 1, 1, 0, 0, 2, 2))
    with pytest.raises(ValueError):
        p.set_weights(np.zeros(5, np.float32))
    p.set_weights(np.zeros(18, np.float32))
    with pytest.raises(ValueError):
        p.forward(np.zeros((2, 4, 4, 1), np.float32), None, 0, 0.0, np.zeros((1, 2, 2, 2), np.float32))


@pytest.mark.parametrize("s,pad,d", [(1, "valid", 1), (2, "same", 1), (1, "same", 2), (3, "valid", 1)])
def test_conv2d_torch_parity(rng, s, pad, d):
    torch = pytest.importorskip("torch")
    x, k, b = _data(rng, 3, 11, 10, 4, 3, 3, 6)
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d, activation="relu",
                           return_context=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv2d_backward(ctx, dy)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    kt = torch.tensor(k.transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    H, W = x.shape[1:3]
    keff = 2 * d + 1
    oh, ow = y.shape[1:3]
    ph = max((oh - 1) * s + keff - H, 0) if pad == "same" else 0
    pw = max((ow - 1) * s + keff - W, 0) if pad == "same" else 0
    xin = torch.nn.functional.pad(xt, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    yt = torch.relu(torch.nn.functional.conv2d(xin, kt, bt, stride=s, dilation=d))
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, kt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv1d_torch_parity(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 60, 8)).astype(np.float32)
    k = rng.standard_normal((5, 8, 32)).astype(np.float32) * 0.1
    b = rng.standard_normal(32).astype(np.float32)
    y, ctx = nn.ops.conv1d(x, k, b, return_context=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv1d_backward(ctx, dy)
    xt = torch.tensor(x.transpose(0, 2, 1), requires_grad=True)
    kt = torch.tensor(k.transpose(2, 1, 0), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv1d(xt, kt, bt)
    yt.backward(torch.tensor(dy.transpose(0, 2, 1)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, kt.grad.numpy().transpose(2, 1, 0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-4, atol=1e-4)


# ---- Winograd: 3x3, undilated, >= 16 channels in and out; F(2x2, 3x3) at stride 1, the folded
# F(2, 2) variant at stride 2 ----

WINO_CASES = [
    # (N, H, W, C, F, stride, padding, activation)
    (2, 13, 13, 32, 64, 1, "valid", "relu"),     # odd output: cropped tiles
    (3, 7, 9, 16, 17, 1, "same", None),          # F tail (17 = 16 + 1), no bias below
    (2, 6, 5, 33, 20, 1, "valid", "relu6"),      # C tail, tiny output (4 x 3)
    (1, 4, 4, 16, 16, 1, "same", "leaky_relu"),  # one tile row pair, padding on all sides
    (2, 3, 3, 18, 16, 1, "same", None),          # output 3x3: one full and one cropped tile
    (2, 16, 16, 32, 64, 2, "same", "relu"),      # stride 2, even size: padding only after
    (3, 9, 11, 17, 19, 2, "same", None),         # odd sizes: padding both sides, cropped tiles
    (2, 10, 7, 16, 33, 2, "valid", "relu6"),     # dx rows/columns no output reaches; F tail
    (1, 5, 5, 20, 16, 2, "valid", "leaky_relu"), # one tile, C tail
    (2, 4, 6, 16, 48, 2, "same", None),          # output 2x3: a cropped tile column
]


def _wino_run(x, k, b, s, pad, act, dy):
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, activation=act, return_context=True)
    return (y,) + nn.ops.conv2d_backward(ctx, dy)


@pytest.mark.parametrize("case", WINO_CASES)
def test_conv2d_winograd_vs_reference(isa, rng, case):
    N, H, W, C, F, s, pad, act = case
    x, k, b = _data(rng, N, H, W, C, 3, 3, F)
    if act is None:
        b = None
    assert K.conv_winograd()
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, activation=act, return_context=True)
    yr = ref.conv2d(x, k, b, (s, s), pad, act=act)
    np.testing.assert_allclose(y, yr, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv2d_backward(ctx, dy)
    z = ref.conv2d(x, k, b, (s, s), pad)
    deriv = {"relu": (z > 0) * 1.0, "relu6": ((z > 0) & (z < 6)) * 1.0,
             "leaky_relu": np.where(z > 0, 1.0, 0.2), None: np.ones_like(z)}[act]
    dxr, dkr, dbr = ref.conv2d_grads(x, k, dy * deriv, (s, s), pad)
    np.testing.assert_allclose(dx, dxr, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(dk, dkr, rtol=1e-4, atol=2e-4)
    if b is not None:
        np.testing.assert_allclose(db, dbr, rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize("case", WINO_CASES[:3] + WINO_CASES[5:8])
def test_conv2d_winograd_is_used_and_matches_im2col(isa, rng, case):
    """The Winograd path really runs (its rounding differs from im2col + GEMM) and agrees."""
    N, H, W, C, F, s, pad, act = case
    x, k, b = _data(rng, N, H, W, C, 3, 3, F)
    dy = rng.standard_normal(nn.ops.conv2d(x, k, strides=s, padding=pad).shape).astype(np.float32)
    on = _wino_run(x, k, b, s, pad, act, dy)
    old = K.conv_winograd(False)
    try:
        off = _wino_run(x, k, b, s, pad, act, dy)
    finally:
        K.conv_winograd(old)
    for a, c in zip(on[:3], off[:3]):  # y, dx, dkernel all take the Winograd path
        assert not np.array_equal(a, c)
    for a, c in zip(on, off):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [
    (6, 30, 30, 32, 48, 1, "valid"),   # many chunks: threads take whole chunks
    (1, 6, 7, 16, 40, 1, "same"),      # one chunk: the GEMMs split columns; dW by filter blocks
    (1, 6, 6, 40, 16, 1, "valid"),     # one image: dW split by channel blocks (C > F)
    (6, 40, 40, 16, 24, 2, "same"),    # stride 2, many chunks
    (1, 9, 8, 16, 40, 2, "same"),      # stride 2, one chunk and one image: dW by filter blocks
])
def test_conv2d_winograd_threads_bitwise(isa, force_threads, rng, case):
    N, H, W, C, F, s, pad = case
    x, k, b = _data(rng, N, H, W, C, 3, 3, F)
    dy = rng.standard_normal(nn.ops.conv2d(x, k, strides=s, padding=pad).shape).astype(np.float32)
    r1 = run_threads(lambda: _wino_run(x, k, b, s, pad, "relu", dy), 1)
    r2 = run_threads(lambda: _wino_run(x, k, b, s, pad, "relu", dy), 2)
    for a, c in zip(r1, r2):
        np.testing.assert_array_equal(a, c)


# ---- direct weight gradient for C <= 4, F % 16 == 0 (AVX-512) ----

SMALLC_CASES = [
    # (N, H, W, C, KH, KW, F, strides, padding, dilation)
    (2, 9, 8, 1, 3, 3, 32, (1, 1), "valid", (1, 1)),
    (2, 7, 9, 3, 3, 3, 16, (1, 1), "same", (1, 1)),    # 27 columns: 3 groups, the last partial
    (1, 10, 9, 2, 5, 3, 48, (2, 3), "same", (1, 2)),   # strides, dilation, border windows
    (3, 6, 6, 4, 2, 2, 32, (1, 1), "valid", (1, 1)),
    (5, 8, 7, 3, 3, 3, 32, (1, 1), "valid", (1, 1)),   # 4 image slices of 1-2 images
    (3, 9, 11, 1, 3, 2, 16, (2, 1), "same", (2, 1)),   # one channel: tap-major dx, borders
]


@pytest.mark.parametrize("case", SMALLC_CASES)
def test_conv2d_small_channels_dw(isa, rng, case):
    N, H, W, C, KH, KW, F, s, pad, d = case
    x, k, b = _data(rng, N, H, W, C, KH, KW, F)
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d, return_context=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = nn.ops.conv2d_backward(ctx, dy)
    dxr, dkr, dbr = ref.conv2d_grads(x, k, dy, s, pad, d)
    np.testing.assert_allclose(dk, dkr, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(dx, dxr, rtol=1e-4, atol=1e-4)
    old = K.conv_winograd(False)  # the im2col + GEMM path
    try:
        dk_off = nn.ops.conv2d_backward(ctx, dy)[1]
    finally:
        K.conv_winograd(old)
    np.testing.assert_allclose(dk, dk_off, rtol=1e-4, atol=1e-4)


def test_conv2d_small_channels_dw_is_used(rng):
    """Over > 256 pixels the GEMM sums in KC blocks, the direct kernel in one chain: the bits
    differ exactly when the direct kernel ran (AVX-512)."""
    if not K.isa_supported("avx512"):
        pytest.skip("no AVX-512")
    old_isa = K.isa_name()
    K.set_isa("avx512")
    try:
        x, k, b = _data(rng, 4, 20, 20, 3, 3, 3, 32)
        y, ctx = nn.ops.conv2d(x, k, b, return_context=True)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dk_on = nn.ops.conv2d_backward(ctx, dy)[1]
        old = K.conv_winograd(False)
        try:
            dk_off = nn.ops.conv2d_backward(ctx, dy)[1]
        finally:
            K.conv_winograd(old)
    finally:
        K.set_isa(old_isa)
    np.testing.assert_allclose(dk_on, dk_off, rtol=1e-4, atol=1e-4)
    assert not np.array_equal(dk_on, dk_off)


@pytest.mark.parametrize("case", SMALLC_CASES[:3] + SMALLC_CASES[4:])
def test_conv2d_small_channels_dw_threads_bitwise(isa, force_threads, rng, case):
    N, H, W, C, KH, KW, F, s, pad, d = case
    x, k, b = _data(rng, N, H, W, C, KH, KW, F)
    y, ctx = nn.ops.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d, return_context=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    r1 = run_threads(lambda: nn.ops.conv2d_backward(ctx, dy), 1)
    r2 = run_threads(lambda: nn.ops.conv2d_backward(ctx, dy), 2)
    for a, c in zip(r1, r2):
        np.testing.assert_array_equal(a, c)
