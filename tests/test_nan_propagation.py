"""NaN entering a fused activation propagates as in NumPy, Keras and PyTorch: the ReLU and ReLU6
epilogues of the GEMM (nn.ops.matmul) and of the convolution must not turn NaN into 0, at every
ISA and on the tails of the micro-kernel tiles."""
import numpy as np
import pytest

import nncore as nn


def _np_act(z, act):
    with np.errstate(invalid="ignore"):
        if act == "relu":
            return np.where(z < 0, 0.0, z)
        if act == "relu6":
            return np.where(z < 0, 0.0, np.where(z > 6, 6.0, z))
        return np.where(z < 0, 0.2 * z, z)


@pytest.mark.parametrize("act", ["relu", "relu6", "leaky_relu"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 33), (13, 40, 70)])
def test_matmul_epilogue_keeps_nan(isa, act, shape):
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.normal(size=(m, k)).astype(np.float32)
    b = rng.normal(size=(k, n)).astype(np.float32)
    a[m // 2, k // 2] = np.nan
    y = nn.ops.matmul(a, b, activation=act)
    ref = _np_act(a.astype(np.float64) @ b, act)
    assert np.array_equal(np.isnan(y), np.isnan(ref)), "NaN rows must stay NaN"
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", ["relu", "relu6"])
@pytest.mark.parametrize("c,f,strides", [(3, 20, 1), (16, 16, 1), (16, 32, 2)])  # im2col, Winograd
def test_conv_epilogue_keeps_nan(isa, act, c, f, strides):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 9, c)).astype(np.float32)
    w = rng.normal(size=(3, 3, c, f)).astype(np.float32)
    x[1, 3, 3, 1] = np.nan
    y = nn.ops.conv2d(x, w, strides=strides, padding="same", activation=act)
    lin = nn.ops.conv2d(x, w, strides=strides, padding="same")
    assert np.isnan(lin).any()
    assert np.array_equal(np.isnan(y), np.isnan(lin)), "NaN outputs must stay NaN after the epilogue"


@pytest.mark.parametrize("pos", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_max_pool_nan_propagates_wherever_it_is(isa, pos):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 4, 4, 19)).astype(np.float32)
    x[0, pos[0], pos[1], 5] = np.nan
    y = nn.ops.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 5])
    assert np.isnan(y).sum() == 1
    g = nn.ops.global_max_pool2d(x)
    assert np.isnan(g[0, 5]) and np.isnan(g).sum() == 1
