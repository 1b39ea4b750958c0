"""Dropout & noise, BatchNormalization, LayerNormalization, Normalization and Embedding: the C
nodes against float64 NumPy references and finite differences, training vs inference
behaviour, thread/ISA invariance, PyTorch parity, bad inputs, and small models that train."""
import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K
from nncore import layers as L
from conftest import run_threads

# ---------------------------------------------------------------- references (float64)


def bn_ref(x, gamma, beta, eps):
    x = x.astype(np.float64)
    m, v = x.mean(0), x.var(0)
    xh = (x - m) / np.sqrt(v + eps)
    return xh * gamma + beta, m, v, xh


def bn_bwd_ref(xh, dy, gamma, v, eps):
    n = dy.shape[0]
    dy = dy.astype(np.float64)
    dx = gamma / np.sqrt(v + eps) / n * (n * dy - dy.sum(0) - xh * (dy * xh).sum(0))
    return dx, (dy * xh).sum(0), dy.sum(0)


def ln_ref(x, gamma, beta, eps):
    x = x.astype(np.float64)
    m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    xh = (x - m) / np.sqrt(v + eps)
    return xh * gamma + beta, xh, v


def ln_bwd_ref(xh, dy, gamma, v, eps):
    dy = dy.astype(np.float64)
    gd = dy * gamma
    dx = (gd - gd.mean(-1, keepdims=True) - xh * (gd * xh).mean(-1, keepdims=True)) / np.sqrt(v + eps)
    return dx, (dy * xh).sum(0), dy.sum(0)


def bn_block(rng, C, center=True, scale=True):
    parts = ([rng.normal(1, 0.3, C)] if scale else []) + ([rng.normal(0, 0.3, C)] if center else [])
    parts += [rng.normal(0, 0.1, C), rng.uniform(0.5, 2, C)]
    p = np.concatenate(parts).astype(np.float32)
    return p, np.full_like(p, np.nan)  # grads must be overwritten


# ---------------------------------------------------------------- BatchNormalization


@pytest.mark.parametrize("rows,C", [(1, 1), (5, 7), (300, 33), (129, 16)])
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_batchnorm_node_vs_numpy(isa, rng, rows, C, center, scale):
    eps, mom = 1e-3, 0.9
    x = (rng.normal(size=(rows, C)) * 3 + 5).astype(np.float32)
    p, g = bn_block(rng, C, center, scale)
    p0 = p.copy()
    off = 0
    gamma = p0[:C] if scale else np.ones(C)
    off += C if scale else 0
    beta = p0[off:off + C] if center else np.zeros(C)
    off += C if center else 0
    mm0, mv0 = p0[off:off + C], p0[off + C:]
    frozen = np.zeros(1, np.int32)
    node = K.batchnorm_node(C, C, mom, eps, center, scale, frozen, p, g)
    y = K.node_forward(node, x, 1)
    yr, m, v, xh = bn_ref(x, gamma, beta, eps)
    np.testing.assert_allclose(y, yr, atol=2e-5 * max(1, np.abs(yr).max()))
    # moving = moving * momentum + batch * (1 - momentum), biased batch variance (Keras)
    np.testing.assert_allclose(p[off:off + C], mm0 * mom + m * (1 - mom), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p[off + C:], mv0 * mom + v * (1 - mom), rtol=1e-5, atol=1e-6)
    dy = rng.normal(size=(rows, C)).astype(np.float32)
    dx = K.node_backward(node, x, dy)
    dxr, dg, db = bn_bwd_ref(xh, dy, gamma, v, eps)
    np.testing.assert_allclose(dx, dxr, atol=1e-4 * max(1, np.abs(dxr).max()))
    grads = ([dg] if scale else []) + ([db] if center else []) + [np.zeros(2 * C)]
    np.testing.assert_allclose(g, np.concatenate(grads), atol=1e-4 * rows)
    # inference: moving statistics, and no update
    p1 = p.copy()
    y = K.node_forward(node, x, 0)
    mm, mv = p[off:off + C].astype(np.float64), p[off + C:].astype(np.float64)
    np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + eps) * gamma + beta, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(p, p1)


def test_batchnorm_rank3_and_frozen(rng):
    # (batch, steps, channels): statistics over batch and steps
    x = rng.normal(size=(6, 5, 4)).astype(np.float32)
    p, g = bn_block(rng, 4)
    frozen = np.zeros(1, np.int32)
    node = K.batchnorm_node(20, 4, 0.99, 1e-3, True, True, frozen, p, g)
    y = K.node_forward(node, x.reshape(6, 20), 1).reshape(-1, 4)
    yr = bn_ref(x.reshape(-1, 4), p[:4], p[4:8], 1e-3)[0]
    np.testing.assert_allclose(y, yr, atol=1e-5)
    # frozen (trainable=False): moving statistics even in training, no update, zero weight grads
    frozen[0] = 1
    p1 = p.copy()
    y = K.node_forward(node, x.reshape(6, 20), 1).reshape(-1, 4)
    np.testing.assert_array_equal(p, p1)
    a = p[:4] / np.sqrt(p[12:16] + 1e-3)
    np.testing.assert_allclose(y, (x.reshape(-1, 4) - p[8:12]) * a + p[4:8], rtol=1e-5, atol=1e-5)
    dy = rng.normal(size=(6, 20)).astype(np.float32)
    dx = K.node_backward(node, x.reshape(6, 20), dy)
    np.testing.assert_allclose(dx.reshape(-1, 4), dy.reshape(-1, 4) * a, rtol=1e-5)
    assert np.all(g == 0)


def _fd_check(node, x, dy, params, grads, dx, n_checks=6, h=1e-2, rng=None, skip=None):
    """Central differences of sum(dy * node(x)) (training forward) against dx and grads."""
    def loss():
        return float(np.sum(dy.astype(np.float64) * K.node_forward(node, x, 1)))
    saved = params.copy() if params is not None else None
    for _ in range(n_checks):
        i = tuple(rng.integers(0, s) for s in x.shape)
        x0 = x[i]
        x[i] = x0 + h
        lp = loss()
        x[i] = x0 - h
        lm = loss()
        x[i] = x0
        if saved is not None:
            params[...] = saved
        assert (lp - lm) / (2 * h) == pytest.approx(dx[i], rel=2e-2, abs=2e-3)
    if params is None:
        return
    n_w = params.size if skip is None else skip
    for _ in range(n_checks):
        j = int(rng.integers(0, n_w))
        p0 = saved[j]
        params[...] = saved
        params[j] = p0 + h
        lp = loss()
        params[...] = saved
        params[j] = p0 - h
        lm = loss()
        params[...] = saved
        assert (lp - lm) / (2 * h) == pytest.approx(grads[j], rel=2e-2, abs=2e-3)


def test_batchnorm_finite_differences(rng):
    C, rows = 5, 9
    x = rng.normal(size=(rows, C)).astype(np.float32)
    p, g = bn_block(rng, C)
    node = K.batchnorm_node(C, C, 0.99, 1e-3, True, True, np.zeros(1, np.int32), p, g)
    K.node_forward(node, x, 1)
    dy = rng.normal(size=(rows, C)).astype(np.float32)
    dx = K.node_backward(node, x, dy)
    gc = g.copy()
    _fd_check(node, x, dy, p, gc, dx, rng=rng, skip=2 * C)  # moving stats do not affect y


# ---------------------------------------------------------------- LayerNormalization


@pytest.mark.parametrize("rows,C", [(1, 1), (3, 7), (260, 33), (4, 8)])
@pytest.mark.parametrize("center,scale", [(True, True), (False, False), (True, False)])
def test_layernorm_node_vs_numpy(isa, rng, rows, C, center, scale):
    eps = 1e-3
    x = (rng.normal(size=(rows, C)) * 2 + 3).astype(np.float32)
    parts = ([rng.normal(1, .3, C)] if scale else []) + ([rng.normal(0, .3, C)] if center else [])
    p = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    g = np.full_like(p, np.nan)
    gamma = p[:C] if scale else np.ones(C)
    beta = p[C * scale:C * scale + C] if center else np.zeros(C)
    node = K.layernorm_node(C, C, eps, center, scale, p, g)
    y = K.node_forward(node, x, 1)
    yr, xh, v = ln_ref(x, gamma, beta, eps)
    np.testing.assert_allclose(y, yr, atol=2e-5 * max(1, np.abs(yr).max()))
    np.testing.assert_array_equal(K.node_forward(node, x, 0), y)  # same in inference
    dy = rng.normal(size=(rows, C)).astype(np.float32)
    dx = K.node_backward(node, x, dy)
    dxr, dg, db = ln_bwd_ref(xh, dy, gamma, v, eps)
    np.testing.assert_allclose(dx, dxr, atol=2e-4 * max(1, np.abs(dxr).max()))
    ref = ([dg] if scale else []) + ([db] if center else [])
    if ref:
        np.testing.assert_allclose(g, np.concatenate(ref), atol=1e-4 * rows)


def test_layernorm_finite_differences(rng):
    C, rows = 6, 4
    x = rng.normal(size=(rows, 3 * C)).astype(np.float32)  # 3 positions per sample
    p = np.concatenate([rng.normal(1, .3, C), rng.normal(0, .3, C)]).astype(np.float32)
    g = np.zeros_like(p)
    node = K.layernorm_node(3 * C, C, 1e-3, True, True, p, g)
    K.node_forward(node, x, 1)
    dy = rng.normal(size=x.shape).astype(np.float32)
    dx = K.node_backward(node, x, dy)
    _fd_check(node, x, dy, p, g.copy(), dx, rng=rng)


# ---------------------------------------------------------------- Normalization


def test_normalization_adapt_vs_numpy(rng):
    data = (rng.normal(size=(500, 6)) * [1, 10, 100, 0.1, 3, 7] + [5, -3, 1e3, 0, 2, 1]).astype(np.float32)
    layer = L.Normalization()
    layer.adapt(data)
    mean, var, count = layer.get_weights()
    np.testing.assert_allclose(mean, data.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(var, data.astype(np.float64).var(0), rtol=1e-6)
    assert count == 500 and layer.non_trainable_weights and not layer.trainable_weights
    model = nn.Sequential([nn.Input((6,)), layer])
    out = model.predict(data)
    ref = (data - mean.astype(np.float64)) / np.sqrt(var.astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    # re-adapting a built model updates what the engine uses
    layer.adapt(data * 2 + 1)
    np.testing.assert_allclose(model.predict(data * 2 + 1), ref, rtol=1e-4, atol=1e-4)
    # rank-3 samples: statistics over batch and steps
    seq = rng.normal(size=(20, 5, 3)).astype(np.float32) * [1, 2, 3]
    l3 = L.Normalization(axis=-1)
    l3.adapt(seq)
    np.testing.assert_allclose(l3.get_weights()[0], seq.reshape(-1, 3).mean(0), rtol=1e-5, atol=1e-6)


def test_normalization_constants_invert_axis_none(rng):
    x = rng.normal(size=(10, 4)).astype(np.float32)
    mean, var = np.array([1., 2, 3, 4]), np.array([4., 1, 0, 9])  # var 0 -> epsilon floor
    m = nn.Sequential([nn.Input((4,)), L.Normalization(mean=mean, variance=var)])
    assert m.get_weights() == []
    s = np.maximum(np.sqrt(var), 1e-7)
    np.testing.assert_allclose(m.predict(x), (x - mean) / s, rtol=1e-5)
    inv = nn.Sequential([nn.Input((4,)), L.Normalization(mean=mean, variance=var, invert=True)])
    np.testing.assert_allclose(inv.predict(x), mean + x * s, rtol=1e-5, atol=1e-6)
    ln = L.Normalization(axis=None)
    ln.adapt(x * 3 + 1)
    assert ln.get_weights()[0].shape == ()
    np.testing.assert_allclose(ln.get_weights()[0], (x * 3 + 1).astype(np.float64).mean(), rtol=1e-5)
    # backward: dx = dy / s, no weight gradients
    p = np.array([1, 2, 3, 4, 4, 1, 0, 9, 10], np.float32)
    g = np.full_like(p, np.nan)
    node = K.normalization_node(4, 4, False, p, g)
    K.node_forward(node, x, 1)
    dy = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(K.node_backward(node, x, dy), dy / s, rtol=1e-6)
    assert np.all(g == 0)


def test_normalization_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        L.Normalization().adapt(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        L.Normalization().adapt(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="both mean and variance"):
        L.Normalization(mean=[1.0])
    with pytest.raises(ValueError, match="axis"):
        nn.Sequential([nn.Input((3, 4)), L.Normalization(axis=1)])
    with pytest.raises(ValueError, match="shape"):
        layer = L.Normalization()
        layer.adapt(np.ones((5, 3)))
        layer.adapt(np.ones((5, 4)))
    with pytest.raises(ValueError, match="adapt"):
        L.Normalization(mean=0.0, variance=1.0).adapt(np.ones((3, 2)))


# ---------------------------------------------------------------- Dropout and noise


def test_dropout_node_train_vs_inference(rng):
    size, batch, rate = 1000, 20, 0.3
    x = rng.normal(size=(batch, size)).astype(np.float32)
    node = K.dropout_node(size, rate, 7)
    y = K.node_forward(node, x, 1)
    keep = y != 0
    assert abs(keep.mean() - (1 - rate)) < 0.01
    np.testing.assert_allclose(y[keep], x[keep] / (1 - rate), rtol=1e-6)
    dy = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(K.node_backward(node, x, dy), dy * keep / (1 - rate), rtol=1e-6)
    y2 = K.node_forward(node, x, 1)
    assert not np.array_equal(y2 != 0, keep)  # a fresh mask each step
    np.testing.assert_array_equal(K.node_forward(node, x, 0), x)  # identity at inference
    np.testing.assert_array_equal(K.node_forward(node, x, 2), x)  # and in explanation mode
    np.testing.assert_array_equal(K.node_backward(node, x, dy), dy)
    # same seed, same masks (step by step)
    other = K.dropout_node(size, rate, 7)
    np.testing.assert_array_equal(K.node_forward(other, x, 1), y)
    np.testing.assert_array_equal(K.node_forward(other, x, 1), y2)


def test_dropout_finite_differences_fixed_mask(rng):
    """With the mask fixed (same seed and step), y is linear in x: FD equals the backward."""
    x = rng.normal(size=(3, 11)).astype(np.float32)
    node = K.dropout_node(11, 0.4, 3)
    K.node_forward(node, x, 1)
    dy = rng.normal(size=x.shape).astype(np.float32)
    dx = K.node_backward(node, x, dy)
    for _ in range(5):
        i = tuple(rng.integers(0, s) for s in x.shape)
        fd = []
        for hh in (1e-2, -1e-2):
            xp = x.copy()
            xp[i] += hh
            fresh = K.dropout_node(11, 0.4, 3)  # step 0 again: same mask
            fd.append(np.sum(dy.astype(np.float64) * K.node_forward(fresh, xp, 1)))
        assert (fd[0] - fd[1]) / 2e-2 == pytest.approx(dx[i], rel=1e-3, abs=1e-4)


def test_spatial_dropout_and_noise_shape(rng):
    x = rng.normal(size=(8, 6, 5)).astype(np.float32) + 3
    node = K.dropout_node(30, 0.5, 1, [6, 5], [True, False], False)
    y = K.node_forward(node, x.reshape(8, 30), 1).reshape(8, 6, 5)
    keep = y != 0
    assert np.all(keep == keep[:, :1, :])  # one decision per (sample, channel)
    assert not np.all(keep == keep[:1])  # differs between samples
    node = K.dropout_node(30, 0.5, 1, [6, 5], [False, False], True)
    keep = K.node_forward(node, x.reshape(8, 30), 1).reshape(8, 6, 5) != 0
    assert np.all(keep == keep[:1])  # noise_shape (1, 6, 5): one mask for the batch
    m = nn.Sequential([nn.Input((6, 5)), L.SpatialDropout1D(0.5, seed=3)])
    np.testing.assert_array_equal(m.predict(x), x)
    with pytest.raises(ValueError, match="rank"):
        nn.Sequential([nn.Input((5,)), L.SpatialDropout1D(0.5)])
    with pytest.raises(ValueError, match="noise_shape"):
        nn.Sequential([nn.Input((6, 5)), L.Dropout(0.5, noise_shape=(None, 2, 5))])


def test_gaussian_noise_layers(rng):
    x = rng.normal(size=(50, 400)).astype(np.float32)
    node = K.gaussian_noise_node(400, 0.5, 3, False)
    y = K.node_forward(node, x, 1)
    noise = (y - x).astype(np.float64)
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01
    np.testing.assert_array_equal(K.node_forward(node, x, 0), x)
    node = K.gaussian_noise_node(400, 0.5, 3, True)  # GaussianDropout: x * N(1, s^2)
    y = K.node_forward(node, x, 1)
    dy = np.ones_like(x)
    np.testing.assert_allclose(K.node_backward(node, x, dy) * x, y, rtol=1e-5, atol=1e-6)
    m = nn.Sequential([nn.Input((400,)), L.GaussianNoise(0.3), L.GaussianDropout(0.2)])
    np.testing.assert_array_equal(m.predict(x), x)


def test_dropout_bad_rates():
    for bad in (1.0, -0.1, 1.5, "a", None):
        with pytest.raises(ValueError, match="rate"):
            L.Dropout(bad)
    with pytest.raises(ValueError, match="seed"):
        L.Dropout(0.5, seed=-1)
    with pytest.raises(ValueError, match="stddev"):
        L.GaussianNoise(-1.0)


# ---------------------------------------------------------------- Embedding


@pytest.mark.parametrize("V,D,Lx,batch", [(1, 1, 1, 1), (10, 5, 7, 9), (50, 40, 3, 64)])
def test_embedding_gather_scatter(rng, V, D, Lx, batch):
    table = rng.normal(size=(V, D)).astype(np.float32)
    p = table.reshape(-1).copy()
    g = np.full_like(p, np.nan)
    idx = rng.integers(0, V, size=(batch, Lx))
    idx[0, :] = 0  # duplicates for sure
    node = K.embedding_node(Lx, V, D, p, g)
    y = K.node_forward(node, idx.astype(np.float32), 1)
    np.testing.assert_array_equal(y.reshape(batch, Lx, D), table[idx])
    dy = rng.normal(size=(batch, Lx * D)).astype(np.float32)
    dx = K.node_backward(node, idx.astype(np.float32), dy)
    ref = np.zeros((V, D))
    np.add.at(ref, idx.reshape(-1), dy.reshape(-1, D).astype(np.float64))
    np.testing.assert_allclose(g.reshape(V, D), ref, rtol=1e-5, atol=1e-5)
    assert np.all(dx == 0)
    # truncation toward zero, as Keras's cast
    y = K.node_forward(node, np.full((1, Lx), V - 0.5, np.float32), 0)
    np.testing.assert_array_equal(y.reshape(Lx, D), np.broadcast_to(table[V - 1], (Lx, D)))


def test_embedding_bad_indices(rng):
    p = np.zeros(12, np.float32)
    node = K.embedding_node(2, 4, 3, p, p.copy())
    for bad in ([[0, 4]], [[-1, 0]], [[np.nan, 1]], [[1e9, 0]]):
        with pytest.raises(ValueError, match="out of range"):
            K.node_forward(node, np.array(bad, np.float32), 1)
    model = nn.Sequential([nn.Input((3,)), L.Embedding(5, 2), L.Flatten(), L.Dense(1)])
    model.compile("sgd", "mse")
    w0 = model.get_weights()
    x = np.array([[0, 1, 2], [4, 5, 1]])
    with pytest.raises(ValueError, match=r"x\[1, 1\] = 5 is not an index in \[0, 5\)"):
        model.fit(x, np.zeros(2), verbose=0)
    for a, b in zip(w0, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # rejected before any step ran
    with pytest.raises(ValueError, match="index"):
        model.predict(x.astype(np.float32))  # fast path: caught in C
    with pytest.raises(ValueError, match="input_dim"):
        L.Embedding(0, 3)


# ---------------------------------------------------------------- threads and ISAs


def _all_nodes(rng):
    C = 24
    x = (rng.normal(size=(300, C)) * 2 + 1).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    out = []
    p, g = bn_block(np.random.default_rng(0), C)
    out.append((K.batchnorm_node(C, C, 0.9, 1e-3, True, True, np.zeros(1, np.int32), p, g), x, dy, p, g))
    p = np.ones(2 * C, np.float32)
    g = np.zeros_like(p)
    out.append((K.layernorm_node(C, C, 1e-3, True, True, p, g), x, dy, p, g))
    out.append((K.dropout_node(C, 0.3, 11), x, dy, None, None))
    out.append((K.gaussian_noise_node(C, 0.3, 11, True), x, dy, None, None))
    p = rng.normal(size=40 * C).astype(np.float32)
    g = np.zeros_like(p)
    ix = rng.integers(0, 40, size=(300, 8)).astype(np.float32)
    out.append((K.embedding_node(8, 40, C, p, g), ix, rng.normal(size=(300, 8 * C)).astype(np.float32), p, g))
    return out


def _run_all(seed):
    res = []
    for node, x, dy, p, g in _all_nodes(np.random.default_rng(seed)):
        y = K.node_forward(node, x, 1)
        dx = K.node_backward(node, x, dy)
        res.append((y, dx, None if g is None else g.copy(), None if p is None else p.copy()))
    return res


def test_threads_bitwise(force_threads, isa):
    one = run_threads(lambda: _run_all(5), 1)
    two = run_threads(lambda: _run_all(5), 2)
    for a, b in zip(one, two):
        for u, v in zip(a, b):
            if u is not None:
                np.testing.assert_array_equal(u, v)


def test_dropout_masks_same_on_every_isa(rng):
    x = rng.normal(size=(7, 333)).astype(np.float32)
    masks = []
    before = K.isa_name()
    try:
        for name in ("generic", "avx2", "avx512"):
            if K.isa_supported(name):
                K.set_isa(name)
                masks.append(K.node_forward(K.dropout_node(333, 0.5, 9), x, 1) != 0)
    finally:
        K.set_isa(before)
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


# ---------------------------------------------------------------- PyTorch parity


def test_torch_parity_batchnorm_layernorm_embedding(rng):
    torch = pytest.importorskip("torch")
    C, n = 6, 40
    x = (rng.normal(size=(n, C)) * 2 + 1).astype(np.float32)
    dy = rng.normal(size=(n, C)).astype(np.float32)
    p, g = bn_block(rng, C)
    p[2 * C:] = [0] * C + [1] * C
    node = K.batchnorm_node(C, C, 0.9, 1e-3, True, True, np.zeros(1, np.int32), p, g)
    bn = torch.nn.BatchNorm1d(C, eps=1e-3, momentum=0.1)  # torch momentum = 1 - Keras momentum
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(p[:C].copy()))
        bn.bias.copy_(torch.from_numpy(p[C:2 * C].copy()))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = bn(xt)
    yt.backward(torch.from_numpy(dy))
    y = K.node_forward(node, x, 1)
    dx = K.node_backward(node, x, dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(g[:C], bn.weight.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(g[C:2 * C], bn.bias.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(p[2 * C:3 * C], bn.running_mean.numpy(), atol=1e-6)
    # torch keeps the unbiased variance, Keras the biased one
    np.testing.assert_allclose(p[3 * C:], 0.9 + 0.1 * (bn.running_var.numpy() - 0.9) / 0.1 * (n - 1) / n, atol=1e-5)

    pl = np.concatenate([rng.normal(1, .3, C), rng.normal(0, .3, C)]).astype(np.float32)
    gl = np.zeros_like(pl)
    lnode = K.layernorm_node(C, C, 1e-3, True, True, pl, gl)
    ln = torch.nn.LayerNorm(C, eps=1e-3)
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(pl[:C].copy()))
        ln.bias.copy_(torch.from_numpy(pl[C:].copy()))
    xt = torch.from_numpy(x).requires_grad_(True)
    ln(xt).backward(torch.from_numpy(dy))
    np.testing.assert_allclose(K.node_forward(lnode, x, 1), ln(xt).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(K.node_backward(lnode, x, dy), xt.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(gl[:C], ln.weight.grad.numpy(), atol=1e-4)

    table = rng.normal(size=(9, 4)).astype(np.float32)
    emb = torch.nn.Embedding(9, 4)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(table))
    idx = rng.integers(0, 9, size=(12, 5))
    out = emb(torch.from_numpy(idx))
    dye = rng.normal(size=out.shape).astype(np.float32)
    out.backward(torch.from_numpy(dye))
    pe, ge = table.reshape(-1).copy(), np.zeros(36, np.float32)
    enode = K.embedding_node(5, 9, 4, pe, ge)
    np.testing.assert_array_equal(K.node_forward(enode, idx.astype(np.float32), 1).reshape(12, 5, 4),
                                  out.detach().numpy())
    K.node_backward(enode, idx.astype(np.float32), dye.reshape(12, 20))
    np.testing.assert_allclose(ge.reshape(9, 4), emb.weight.grad.numpy(), atol=1e-5)


# ---------------------------------------------------------------- Keras surface and models


def test_keras_surface_config_and_weights():
    bn = L.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False)
    m = nn.Sequential([nn.Input((3,)), bn, L.LayerNormalization(), L.Dropout(0.25, seed=1),
                       L.Dense(2)])
    assert [w.shape for w in bn.get_weights()] == [(3,), (3,), (3,)]  # gamma, moving_mean, moving_var
    assert len(bn.trainable_weights) == 1 and len(bn.non_trainable_weights) == 2
    ws = [np.arange(3.0) + 1, np.ones(3), np.full(3, 4.0)]  # Keras order loads via set_weights
    bn.set_weights(ws)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    np.testing.assert_allclose(m.layers[0].get_weights()[1], 1.0)
    for layer in m.layers:
        cfg = layer.get_config()
        clone = type(layer).from_config(cfg)
        assert clone.get_config() == cfg
    cfg = L.Embedding(10, 3, input_shape=(4,)).get_config()
    assert cfg["embeddings_initializer"] == "uniform" and cfg["input_dim"] == 10
    assert L.Normalization(mean=[1, 2], variance=[1, 1]).get_config()["mean"] == [1, 2]
    out = m.predict(x)
    assert out.shape == (1, 2) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="axis=-1"):
        nn.Sequential([nn.Input((4, 3)), L.BatchNormalization(axis=1)])
    with pytest.raises(ValueError, match="axis"):
        nn.Sequential([nn.Input((4, 3)), L.LayerNormalization(axis=[1, 2])])
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=2)


def test_mlp_with_batchnorm_dropout_trains():
    nn.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(3000, 10)) * 20 + 50).astype(np.float32)  # unscaled features
    z = (x - 50) / 20
    y = ((z[:, 0] * z[:, 1] + z[:, 2] - 0.5 * z[:, 3]) > 0).astype(np.float32)
    norm = L.Normalization()
    norm.adapt(x[:2500])
    bn = L.BatchNormalization()
    model = nn.Sequential([nn.Input((10,)), norm, L.Dense(64, activation="relu"), bn,
                           L.Dropout(0.2, seed=1), L.Dense(32, activation="relu"),
                           L.LayerNormalization(), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    mm0 = bn.moving_mean.copy()
    h = model.fit(x[:2500], y[:2500], epochs=8, batch_size=64, verbose=0,
                  validation_data=(x[2500:], y[2500:]))
    assert h.history["val_accuracy"][-1] > 0.85
    assert not np.array_equal(bn.moving_mean, mm0)  # moving statistics were updated
    mean_nt = norm.get_weights()
    np.testing.assert_allclose(mean_nt[0], x[:2500].astype(np.float64).mean(0), rtol=1e-5)  # not trained
    p1, p2 = model.predict(x[2500:]), model.predict(x[2500:])
    np.testing.assert_array_equal(p1, p2)  # inference is deterministic (no dropout)
    # frozen BatchNormalization: inference behaviour in fit, weights untouched
    bn.trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")
    before = bn.get_weights()
    model.fit(x[:500], y[:500], epochs=1, batch_size=64, verbose=0)
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_embedding_model_trains():
    nn.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    V, Lx = 12, 4
    idx = rng.integers(0, V, size=(3000, Lx))
    score = rng.normal(size=V)
    y = (score[idx].sum(1) > 0).astype(np.float32)
    pool = getattr(L, "GlobalAveragePooling1D", None)
    for middle in ([L.Flatten()],) + (([pool()],) if pool else ()):
        model = nn.Sequential([nn.Input((Lx,)), L.Embedding(V, 8)] + middle +
                              [L.Dense(16, activation="relu"), L.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        h = model.fit(idx[:2500], y[:2500], epochs=8, batch_size=32, verbose=0,
                      validation_data=(idx[2500:], y[2500:]))
        assert h.history["val_accuracy"][-1] > 0.9, middle


def test_save_load_and_summary(tmp_path, rng):
    x = rng.normal(size=(64, 6)).astype(np.float32)
    norm = L.Normalization()
    norm.adapt(x)
    m = nn.Sequential([nn.Input((6,)), norm, L.Dense(8), L.BatchNormalization(), L.Dropout(0.3),
                       L.LayerNormalization(), L.Dense(1)])
    m.compile("adam", "mse")
    m.fit(x, x[:, 0], epochs=2, verbose=0)
    path = str(tmp_path / "m.nnc")
    m.save(path)
    m2 = nn.models.load_model(path)
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))
    assert m2.layers[0].get_weights()[2].shape == ()  # Normalization count stays a scalar
    lines = []
    m.summary(print_fn=lines.append)
    # non-trainable: Normalization 6+6+1, moving_mean/variance 8+8
    assert " Non-trainable params: 29" in lines and " Trainable params: 97" in lines
