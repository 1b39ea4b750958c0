"""Elementwise kernels: activations, losses, optimizers, reductions.

Every kernel is compared with an independent float64 NumPy transcription of the Keras 3 formula,
gradients also with central finite differences of that reference, on all ISAs and edge sizes;
1 and 2 threads must agree bit for bit."""
import math

import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K

A = K.ACTIVATIONS
SIZES = [1, 7, 17, 1000, 4099]
SELU_A, SELU_S = 1.67326324, 1.05070098
_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
ELEMENTWISE = [n for n in A if n not in ("softmax", "silu")]
DEFAULT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}


# ---------------------------------------------------------------- float64 references

def sigmoid64(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def ncdf64(x):
    return 0.5 * _erfc(-x / math.sqrt(2))


def act_ref(name, x, alpha=None):
    x = np.asarray(x, np.float64)
    a = DEFAULT_ALPHA.get(name) if alpha is None else alpha
    with np.errstate(over="ignore"):
        if name == "linear":
            return x.copy()
        if name == "relu":
            return np.maximum(x, 0)
        if name == "sigmoid":
            return sigmoid64(x)
        if name == "tanh":
            return np.tanh(x)
        if name == "softmax":
            e = np.exp(x - x.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
        if name == "leaky_relu":
            return np.where(x >= 0, x, a * x)
        if name == "elu":
            return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
        if name == "gelu":
            return 0.5 * x * (1 + _erf(x / math.sqrt(2))) if False else x * ncdf64(x)
        if name == "swish":
            return x * sigmoid64(x)
        if name == "softplus":
            return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
        if name == "selu":
            return SELU_S * np.where(x > 0, x, SELU_A * np.expm1(np.minimum(x, 0)))
        if name == "relu6":
            return np.clip(x, 0, 6)
        if name == "hard_sigmoid":
            return np.clip(x + 3, 0, 6) / 6
        if name == "softsign":
            return x / (1 + np.abs(x))
    raise KeyError(name)


def act_dref(name, x, alpha=None):
    """f'(x), analytic, float64 (elementwise activations)."""
    x = np.asarray(x, np.float64)
    a = DEFAULT_ALPHA.get(name) if alpha is None else alpha
    s = sigmoid64(x)
    return {
        "linear": lambda: np.ones_like(x),
        "relu": lambda: (x > 0) * 1.0,
        "sigmoid": lambda: s * (1 - s),
        "tanh": lambda: 1 - np.tanh(x) ** 2,
        "leaky_relu": lambda: np.where(x > 0, 1.0, a),
        "elu": lambda: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0))),
        "gelu": lambda: ncdf64(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi),
        "swish": lambda: s + x * s * (1 - s),
        "softplus": lambda: s,
        "selu": lambda: SELU_S * np.where(x > 0, 1.0, SELU_A * np.exp(np.minimum(x, 0))),
        "relu6": lambda: ((x > 0) & (x < 6)) * 1.0,
        "hard_sigmoid": lambda: ((x > -3) & (x < 3)) / 6.0,
        "softsign": lambda: 1 / (1 + np.abs(x)) ** 2,
    }[name]()


KINKS = {"relu": [0], "leaky_relu": [0], "elu": [0], "selu": [0], "relu6": [0, 6],
         "hard_sigmoid": [-3, 3], "softsign": [0]}


def sample_x(rng, shape, name, scale=4.0):
    x = rng.standard_normal(shape) * scale
    for k in KINKS.get(name, []):  # keep finite differences away from kinks
        near = np.abs(x - k) < 1e-2
        x[near] = k + 0.05
    return x.astype(np.float32)


def close(ours, ref, rtol, atol, what=""):
    ours = np.asarray(ours, np.float64)
    err = np.abs(ours - ref)
    bad = err > rtol * np.abs(ref) + atol
    assert not bad.any(), (f"{what}: {bad.sum()} bad, worst at {np.argmax(err - rtol * np.abs(ref))}: "
                           f"ours {ours.flat[np.argmax(err - rtol * np.abs(ref))]!r} "
                           f"ref {np.asarray(ref).flat[np.argmax(err - rtol * np.abs(ref))]!r}")


def shape_of(n):
    return {1: (1, 1), 7: (1, 7), 17: (17, 1), 1000: (8, 125), 4099: (4099, 1)}.get(n, (1, n))


# ---------------------------------------------------------------- activations

@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
@pytest.mark.parametrize("n", SIZES)
def test_act_forward(isa, rng, name, n):
    shape = shape_of(n) if name != "softmax" else {1: (1, 1), 7: (1, 7), 17: (3, 17), 1000: (2, 1000),
                                                    4099: (1, 4099)}[n]
    x = sample_x(rng, shape, name)
    y = K.act_forward(A[name], DEFAULT_ALPHA.get(name, 0.0), x)
    ref = act_ref(name, x.astype(np.float64))
    close(y, ref, 4e-6, 1e-7 if name != "softmax" else 1e-9, f"{name} fwd {isa}")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_act_backward(isa, rng, name):
    x = sample_x(rng, (9, 113), name, scale=3.0)
    a = DEFAULT_ALPHA.get(name, 0.0)
    y = K.act_forward(A[name], a, x)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    db = np.full(x.shape[1], np.nan, np.float32)
    dx = K.act_backward(A[name], a, x, y, dy, db=db)
    x64 = x.astype(np.float64)
    d_an = act_dref(name, x64)
    h = 1e-6
    d_fd = (act_ref(name, x64 + h) - act_ref(name, x64 - h)) / (2 * h)
    close(d_an, d_fd, 1e-6, 1e-7, f"{name} reference vs finite differences")
    ref = dy * d_an
    # derivatives from y lose y's float32 rounding where f' is small (e.g. 1 - y^2 near 1)
    close(dx, ref, 2e-5, 2e-6 * np.abs(dy).max(), f"{name} bwd {isa}")
    close(db, ref.sum(0), 1e-5, 1e-5 * np.abs(ref).sum(0).max(), f"{name} db {isa}")
    # in place: dx == dy
    dy2 = dy.copy()
    K.act_backward(A[name], a, x, y, dy2, dx=dy2)
    np.testing.assert_array_equal(dy2, dx)


@pytest.mark.parametrize("cols", [1, 7, 17, 1000])
def test_softmax_backward(isa, rng, cols):
    x = (rng.standard_normal((5, cols)) * 3).astype(np.float32)
    y = K.act_forward(A["softmax"], 0.0, x)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    db = np.empty(cols, np.float32)
    dx = K.act_backward(A["softmax"], 0.0, None, y, dy, db=db)
    y64 = act_ref("softmax", x.astype(np.float64))
    ref = y64 * (dy - (dy * y64).sum(-1, keepdims=True))
    # finite differences of the float64 softmax, row 0
    x64 = x.astype(np.float64)
    h = 1e-6
    for j in range(min(cols, 5)):
        e = np.zeros_like(x64)
        e[0, j] = h
        fd = ((act_ref("softmax", x64 + e) - act_ref("softmax", x64 - e)) / (2 * h) * dy)[0].sum()
        assert abs(fd - ref[0, j]) < 1e-6 * max(1, abs(fd))
    close(dx, ref, 1e-5, 1e-6, "softmax bwd")
    close(db, ref.sum(0), 1e-5, 1e-6, "softmax db")


@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_act_extreme_inputs(isa, name):
    vals = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 1e-7, -1e-7, 5.0, -5.0, 9.5, -9.5, 20.0,
                     -20.0, 87.5, -87.5, 88.8, -88.8, 100.0, -100.0, 1e4, -1e4, 3e38, -3e38],
                    np.float32)
    x = vals.reshape(1, -1) if name != "softmax" else vals.reshape(-1, 2)
    a = DEFAULT_ALPHA.get(name, 0.0)
    y = K.act_forward(A[name], a, x)
    assert np.all(np.isfinite(y)), (name, x[~np.isfinite(y)])
    with np.errstate(all="ignore"):
        ref = act_ref(name, x.astype(np.float64))
    if name == "softmax":
        close(y, ref, 1e-6, 1e-7, name)
    else:
        ok = np.abs(x) < 1e4  # gelu/swish of 3e38 overflow float64 products in the reference
        close(y[ok], ref[ok], 4e-6, 1e-35, name)  # vector exp flushes below e^-87.3
    dx = K.act_backward(A[name], a, x, y, np.ones_like(x))
    assert np.all(np.isfinite(dx)), (name, x[~np.isfinite(dx)])


def test_act_bad_args():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError):
        K.act_forward(99, 0.0, x)
    with pytest.raises(ValueError):
        K.act_forward(1, 0.0, x, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError):
        K.act_forward(1, 0.0, x, np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError):
        K.act_backward(A["gelu"], 0.0, None, x, x)
    with pytest.raises(ValueError):
        K.act_backward(1, 0.0, None, x, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError):
        K.act_backward(1, 0.0, None, x, x, db=np.zeros(2, np.float32))
    # float64 and non-contiguous inputs are converted
    x64 = np.arange(12.0).reshape(3, 4)[:, ::2] - 3
    np.testing.assert_array_equal(K.act_forward(1, 0.0, x64), np.maximum(x64, 0).astype(np.float32))


def test_vmath_entry_points(isa, rng):
    x = (rng.standard_normal(1001) * 6).astype(np.float32)
    close(K.vmath("exp", x), np.exp(x.astype(np.float64)), 3e-6, 0, "vexp")
    close(K.vmath("sigmoid", x), sigmoid64(x.astype(np.float64)), 3e-6, 0, "vsigmoid")
    close(K.vmath("tanh", x), np.tanh(x.astype(np.float64)), 3e-6, 1e-30, "vtanh")
    big = np.array([-1000, -104, -88, 88, 89, 1000], np.float32)
    assert np.all(np.isfinite(K.vmath("sigmoid", big)))
    assert np.all(np.isfinite(K.vmath("tanh", big)))


# ---------------------------------------------------------------- reductions

@pytest.mark.parametrize("shape", [(1, 1), (7, 17), (255, 3), (257, 1), (1000, 7), (4099, 5),
                                   (600, 1000), (3, 4099)])
def test_colsum(isa, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    out = K.colsum(x)
    close(out, x.astype(np.float64).sum(0), 1e-5, 1e-4, "colsum")
    acc = np.ones(shape[1], np.float32)
    K.colsum(x, acc, accumulate=True)
    close(acc, 1 + x.astype(np.float64).sum(0), 1e-5, 1e-4, "colsum acc")


@pytest.mark.parametrize("shape", [(1, 5), (7, 17), (257, 3), (600, 40), (1000, 300), (2000, 1)])
def test_threads_bitwise_act_reduce(isa, force_threads, rng, shape):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)

    def run():
        outs = []
        for name in ("relu", "gelu", "softmax", "tanh"):
            y = K.act_forward(A[name], 0.0, x)
            db = np.empty(shape[1], np.float32)
            dx = K.act_backward(A[name], 0.0, x, y, dy, db=db)
            outs += [y, dx, db]
        outs.append(K.colsum(x))
        return outs

    r1 = run_at(1, run)
    r2 = run_at(2, run)
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a, b)
    # the fused db equals colsum of dx, bit for bit (same fixed order)
    y = K.act_forward(A["tanh"], 0.0, x)
    db = np.empty(shape[1], np.float32)
    dx = K.act_backward(A["tanh"], 0.0, x, y, dy, db=db)
    np.testing.assert_array_equal(db, K.colsum(dx))


def test_colsum_many_groups(force_threads, rng):
    # few columns: chunk partials go through several stack groups (8192 floats each)
    x = rng.standard_normal((70000, 31)).astype(np.float32)
    a = run_at(1, lambda: K.colsum(x))
    b = run_at(2, lambda: K.colsum(x))
    np.testing.assert_array_equal(a, b)
    close(a, x.astype(np.float64).sum(0), 1e-5, 2e-3, "colsum groups")


def run_at(nt, fn):
    with nn.threads(nt):
        return fn()


def test_all_finite():
    x = np.ones(1000, np.float32)
    assert K.all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[777] = bad
        assert not K.all_finite(y)
    assert K.all_finite(np.array([3e38, -3e38, 1e-45], np.float32))
    assert K.all_finite(np.zeros(0, np.float32))


# ---------------------------------------------------------------- losses

L = K.LOSSES
# Keras clips to [eps, 1 - eps] in float32: the upper bound rounds to 1 - 2**-23
EPS, EPS_HI = float(np.float32(1e-7)), float(np.float32(1 - 1e-7))


def loss_ref(name, pred, target, from_logits=False, param=0.0):
    """Per-sample Keras 3 loss in float64."""
    p = np.asarray(pred, np.float64)
    if name == "sparse_categorical_crossentropy":
        t = np.eye(p.shape[1])[np.asarray(target)]
        name, param = "categorical_crossentropy", 0.0
    else:
        t = np.asarray(target, np.float64)
    if name == "mean_squared_error":
        return ((p - t) ** 2).mean(-1)
    if name == "mean_absolute_error":
        return np.abs(p - t).mean(-1)
    if name == "huber":
        e = np.abs(p - t)
        return np.where(e <= param, 0.5 * e ** 2, param * e - 0.5 * param ** 2).mean(-1)
    if name == "binary_crossentropy":
        t = t * (1 - param) + 0.5 * param
        if from_logits:
            return (np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))).mean(-1)
        pc = np.clip(p, EPS, EPS_HI)
        return -(t * np.log(pc) + (1 - t) * np.log(1 - pc)).mean(-1)
    if name == "categorical_crossentropy":
        t = t * (1 - param) + param / p.shape[1]
        if from_logits:
            m = p.max(-1, keepdims=True)
            logq = p - m - np.log(np.exp(p - m).sum(-1, keepdims=True))
        else:
            logq = np.log(np.clip(p / p.sum(-1, keepdims=True), EPS, EPS_HI))
        return -(t * logq).sum(-1)
    raise KeyError(name)


def make_loss_case(rng, name, rows, cols, from_logits):
    if name in ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"):
        if from_logits:
            pred = rng.standard_normal((rows, cols)) * 3
        elif name == "binary_crossentropy":
            pred = rng.uniform(0.02, 0.98, (rows, cols))
        else:
            pred = rng.uniform(0.05, 1.0, (rows, cols))
            pred /= pred.sum(-1, keepdims=True) * rng.uniform(0.9, 1.1, (rows, 1))
    else:
        pred = rng.standard_normal((rows, cols))
    if name == "sparse_categorical_crossentropy":
        target = rng.integers(0, cols, rows)
    elif name == "categorical_crossentropy":
        target = np.eye(cols)[rng.integers(0, cols, rows)]
    elif name == "binary_crossentropy":
        target = (rng.uniform(size=(rows, cols)) < 0.5).astype(np.float64)
    else:
        target = rng.standard_normal((rows, cols))
        if name == "mean_absolute_error":  # keep away from the kink at 0
            d = pred - target
            pred = np.where(np.abs(d) < 1e-2, pred + 0.1, pred)
        if name == "huber":  # and away from |e| == delta
            d = np.abs(pred - target)
            pred = np.where(np.abs(d - 1.3) < 1e-2, pred + 0.1, pred)
    return pred.astype(np.float32), target


LOSS_CASES = [("mean_squared_error", False, 0.0), ("mean_absolute_error", False, 0.0),
              ("huber", False, 1.3), ("binary_crossentropy", False, 0.0),
              ("binary_crossentropy", True, 0.0), ("binary_crossentropy", False, 0.1),
              ("binary_crossentropy", True, 0.2), ("categorical_crossentropy", False, 0.0),
              ("categorical_crossentropy", True, 0.0), ("categorical_crossentropy", False, 0.1),
              ("categorical_crossentropy", True, 0.15), ("sparse_categorical_crossentropy", False, 0.0),
              ("sparse_categorical_crossentropy", True, 0.0)]


@pytest.mark.parametrize("name,from_logits,param", LOSS_CASES)
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 3), (17, 10), (300, 1), (5, 1000)])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_value_and_grad(isa, rng, name, from_logits, param, rows, cols, weighted):
    if name == "binary_crossentropy" or cols > 1 or name in ("mean_squared_error", "huber",
                                                              "mean_absolute_error"):
        pass
    if name.startswith(("categorical", "sparse")) and cols == 1 and not from_logits:
        cols = 2  # one class: probabilities renormalise to exactly 1 (clipped)
    pred, target = make_loss_case(rng, name, rows, cols, from_logits)
    w = rng.uniform(0.1, 2.0, rows).astype(np.float32) if weighted else None
    scale = 1.0 / rows
    total, grad = K.loss(L[name], pred, target, w, from_logits, param, scale)
    w64 = np.ones(rows) if w is None else w.astype(np.float64)
    per = loss_ref(name, pred, target, from_logits, param)
    assert abs(total - (w64 * per).sum()) <= 2e-6 * abs((w64 * per).sum()) + 1e-6 * rows
    # central finite differences of the float64 reference objective scale*sum_i w_i loss_i
    p64 = pred.astype(np.float64)
    idx = [tuple(rng.integers(0, s) for s in pred.shape) for _ in range(12)]
    for ij in idx:
        h = 1e-4 * max(abs(p64[ij]), 1e-4)  # relative step: probabilities can be ~1e-4
        e = np.zeros_like(p64)
        e[ij] = h
        fd = scale * ((w64 * (loss_ref(name, p64 + e, target, from_logits, param)
                              - loss_ref(name, p64 - e, target, from_logits, param))).sum() / (2 * h))
        assert abs(grad[ij] - fd) <= 2e-4 * abs(fd) + 1e-6 * scale * w64.max(), (ij, grad[ij], fd)
    # grad-less call gives the same value
    t2, g2 = K.loss(L[name], pred, target, w, from_logits, param, scale, compute_grad=False)
    assert g2 is None and abs(t2 - total) <= 1e-12 * max(1.0, abs(total))


def test_loss_analytic_grad_and_torch_like_forms(isa, rng):
    # softmax + CE from logits: grad = scale * w * (softmax - onehot)
    z = (rng.standard_normal((33, 10)) * 4).astype(np.float32)
    y = rng.integers(0, 10, 33)
    w = rng.uniform(0.5, 2, 33).astype(np.float32)
    total, g = K.loss(L["sparse_categorical_crossentropy"], z, y, w, True, 0.0, 0.5)
    sm = act_ref("softmax", z.astype(np.float64))
    ref = 0.5 * w[:, None] * (sm - np.eye(10)[y])
    close(g, ref, 1e-5, 1e-7, "sparse CE logits grad")
    # binary CE from logits: grad = scale * (sigmoid(z) - y) / cols
    z = (rng.standard_normal((40, 3)) * 5).astype(np.float32)
    t = (rng.uniform(size=(40, 3)) < 0.5).astype(np.float32)
    _, g = K.loss(L["binary_crossentropy"], z, t, None, True, 0.0, 1.0)
    close(g, (sigmoid64(z.astype(np.float64)) - t) / 3, 1e-5, 1e-8, "bce logits grad")


def test_loss_clip_boundaries(isa):
    # probabilities at 0 and 1 are clipped: finite loss, zero gradient there (tf.clip_by_value)
    p = np.array([[0.0, 1.0, 0.5, 1e-9]], np.float32).T.copy()
    t = np.array([[1.0, 0.0, 1.0, 1.0]], np.float32).T.copy()
    total, g = K.loss(L["binary_crossentropy"], p, t)
    assert np.isfinite(total) and np.all(np.isfinite(g))
    ref = loss_ref("binary_crossentropy", p, t).sum()
    assert abs(total - ref) < 1e-5 * ref
    assert g[0, 0] == 0 and g[1, 0] == 0 and g[3, 0] == 0 and g[2, 0] != 0
    p = np.array([[0.0, 1.0, 0.0]], np.float32)
    total, g = K.loss(L["sparse_categorical_crossentropy"], p, np.array([0]))
    assert np.isfinite(total) and abs(total + math.log(1e-7)) < 1e-4
    assert np.all(np.isfinite(g))
    # extreme logits stay finite
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    for name, tgt in (("categorical_crossentropy", np.array([[0, 1.0, 0]])),
                      ("binary_crossentropy", np.array([[0, 1.0, 0]])),
                      ("sparse_categorical_crossentropy", np.array([1]))):
        total, g = K.loss(L[name], z, tgt, None, True)
        assert np.isfinite(total) and np.all(np.isfinite(g))


def test_loss_bad_args():
    p = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError):
        K.loss(L["sparse_categorical_crossentropy"], p, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError):
        K.loss(L["sparse_categorical_crossentropy"], p, np.array([0, 1, -1, 2]))
    with pytest.raises(ValueError):
        K.loss(L["sparse_categorical_crossentropy"], p, np.array([0, 1, 2]))
    with pytest.raises(TypeError):
        K.loss(L["sparse_categorical_crossentropy"], p, np.array(["a", "b", "c", "d"]))
    with pytest.raises(ValueError):
        K.loss(L["mean_squared_error"], p, np.zeros((4, 2)))
    with pytest.raises(ValueError):
        K.loss(L["mean_squared_error"], p, np.zeros((4, 3)), np.ones(3))
    with pytest.raises(ValueError):
        K.loss(42, p, p)


@pytest.mark.parametrize("name,from_logits,param", LOSS_CASES)
def test_loss_threads_bitwise(isa, force_threads, rng, name, from_logits, param):
    pred, target = make_loss_case(rng, name, 1100, 10, from_logits)
    w = rng.uniform(0.1, 2.0, 1100).astype(np.float32)
    r1 = run_at(1, lambda: K.loss(L[name], pred, target, w, from_logits, param, 1 / 1100))
    r2 = run_at(2, lambda: K.loss(L[name], pred, target, w, from_logits, param, 1 / 1100))
    assert r1[0] == r2[0]
    np.testing.assert_array_equal(r1[1], r2[1])


@pytest.mark.parametrize("name,from_logits", [("binary_crossentropy", True), ("mean_squared_error", False),
                                               ("sparse_categorical_crossentropy", True)])
def test_loss_many_rows(isa, force_threads, rng, name, from_logits):
    # more rows than one stack group (16 chunks): value vs reference, 1 vs 2 threads bitwise
    rows, cols = 2 * 4096 + 7, (1 if name != "sparse_categorical_crossentropy" else 3)
    pred, target = make_loss_case(rng, name, rows, cols, from_logits)
    w = rng.uniform(0.1, 2.0, rows).astype(np.float32)
    r1 = run_at(1, lambda: K.loss(L[name], pred, target, w, from_logits, 0.0, 1 / rows))
    r2 = run_at(2, lambda: K.loss(L[name], pred, target, w, from_logits, 0.0, 1 / rows))
    assert r1[0] == r2[0]
    np.testing.assert_array_equal(r1[1], r2[1])
    ref = (w * loss_ref(name, pred, target, from_logits)).sum()
    assert abs(r1[0] - ref) <= 1e-6 * abs(ref)


# ---------------------------------------------------------------- optimizers

def sgd_ref(p, gs, lr, momentum, nesterov, wd):
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    for g in gs:
        p = p - p * wd * lr
        if momentum != 0:
            m = momentum * m - lr * g
            p = p + (momentum * m - lr * g if nesterov else m)
        else:
            p = p - lr * g
    return p


def adam_ref(p, gs, lr, b1, b2, eps, amsgrad, wd):
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vh = np.zeros_like(p)
    for t, g in enumerate(gs, 1):
        p = p - p * wd * lr
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        vv = v
        if amsgrad:
            vh = np.maximum(vh, v)
            vv = vh
        p = p - m * alpha / (np.sqrt(vv) + eps)
    return p


def rmsprop_ref(p, gs, lr, rho, momentum, eps, centered, wd):
    p = p.astype(np.float64).copy()
    v = np.zeros_like(p)
    m = np.zeros_like(p)
    mg = np.zeros_like(p)
    for g in gs:
        p = p - p * wd * lr
        v = rho * v + (1 - rho) * g * g
        if centered:
            mg = rho * mg + (1 - rho) * g
            den = v - mg * mg + eps
        else:
            den = v + eps
        inc = lr * g / np.sqrt(den)
        if momentum > 0:
            m = momentum * m + inc
            p = p - m
        else:
            p = p - inc
    return p


def opt_run(kind, p0, gs, **kw):
    p = p0.copy()
    z = lambda: np.zeros_like(p0)  # noqa: E731
    if kind == "sgd":
        m = z()
        for g in gs:
            K.sgd_update(p, g, m, kw["lr"], kw["momentum"], kw["nesterov"], kw["wd"])
    elif kind == "adam":
        m, v, vh = z(), z(), (z() if kw["amsgrad"] else None)
        for t, g in enumerate(gs, 1):
            K.adam_update(p, g, m, v, vh, kw["lr"], kw["b1"], kw["b2"], kw["eps"], t, kw["wd"])
    else:
        v, m, mg = z(), z(), z()
        for g in gs:
            K.rmsprop_update(p, g, v, m, mg, kw["lr"], kw["rho"], kw["momentum"], kw["eps"],
                             kw["centered"], kw["wd"])
    return p


OPT_CASES = [
    ("sgd", dict(lr=0.05, momentum=0.0, nesterov=False, wd=0.0)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=False, wd=0.0)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, wd=0.01)),
    ("adam", dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0)),
    ("adam", dict(lr=0.01, b1=0.8, b2=0.99, eps=1e-3, amsgrad=True, wd=0.0)),
    ("adam", dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.004)),  # AdamW
    ("rmsprop", dict(lr=0.01, rho=0.9, momentum=0.0, eps=1e-7, centered=False, wd=0.0)),
    ("rmsprop", dict(lr=0.01, rho=0.8, momentum=0.5, eps=1e-7, centered=True, wd=0.0)),
    ("rmsprop", dict(lr=0.01, rho=0.9, momentum=0.9, eps=1e-6, centered=False, wd=0.01)),
]
REFS = {"sgd": lambda p, gs, kw: sgd_ref(p, gs, kw["lr"], kw["momentum"], kw["nesterov"], kw["wd"]),
        "adam": lambda p, gs, kw: adam_ref(p, gs, kw["lr"], kw["b1"], kw["b2"], kw["eps"],
                                           kw["amsgrad"], kw["wd"]),
        "rmsprop": lambda p, gs, kw: rmsprop_ref(p, gs, kw["lr"], kw["rho"], kw["momentum"],
                                                 kw["eps"], kw["centered"], kw["wd"])}


@pytest.mark.parametrize("kind,kw", OPT_CASES)
@pytest.mark.parametrize("n", SIZES)
def test_optimizer_vs_keras_formula(isa, rng, kind, kw, n):
    p0 = rng.standard_normal(n).astype(np.float32)
    gs = [rng.standard_normal(n).astype(np.float32) for _ in range(5)]
    ours = opt_run(kind, p0, gs, **kw)
    ref = REFS[kind](p0, [g.astype(np.float64) for g in gs], kw)
    close(ours, ref, 2e-5, 2e-6, f"{kind} {kw}")
    assert np.abs(ours - p0).max() > 1e-3  # it moved


@pytest.mark.parametrize("kind,kw", OPT_CASES)
def test_optimizer_threads_bitwise(force_threads, rng, kind, kw):
    p0 = rng.standard_normal(4099).astype(np.float32)
    gs = [rng.standard_normal(4099).astype(np.float32) for _ in range(3)]
    a = run_at(1, lambda: opt_run(kind, p0, gs, **kw))
    b = run_at(2, lambda: opt_run(kind, p0, gs, **kw))
    np.testing.assert_array_equal(a, b)


def test_optimizer_bad_args():
    p = np.zeros(5, np.float32)
    with pytest.raises(ValueError):
        K.adam_update(p, np.zeros(4), p.copy(), p.copy(), None, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(ValueError):
        K.adam_update(p, np.zeros(5), p.copy(), p.copy(), None, 0.1, 0.9, 0.999, 1e-7, 0)
    with pytest.raises(ValueError):
        K.sgd_update(p.astype(np.float64), np.zeros(5), None, 0.1)
    with pytest.raises(ValueError):
        K.sgd_update(p, np.zeros(5), None, 0.1, 0.9)
    with pytest.raises(ValueError):
        K.rmsprop_update(p, np.zeros(5), p.copy(), None, None, 0.1, 0.9, 0.0, 1e-7, True)


# ---------------------------------------------------------------- PyTorch parity

def test_torch_parity_losses_and_adam(rng):
    torch = pytest.importorskip("torch")
    z = (rng.standard_normal((16, 5)) * 2).astype(np.float32)
    y = rng.integers(0, 5, 16)
    _, g = K.loss(L["sparse_categorical_crossentropy"], z, y, None, True, 0.0, 1 / 16)
    zt = torch.tensor(z, requires_grad=True)
    torch.nn.functional.cross_entropy(zt, torch.tensor(y)).backward()
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-5, atol=1e-7)

    zb = (rng.standard_normal((16, 1)) * 2).astype(np.float32)
    tb = (rng.uniform(size=(16, 1)) < 0.5).astype(np.float32)
    tot, g = K.loss(L["binary_crossentropy"], zb, tb, None, True, 0.0, 1 / 16)
    zt = torch.tensor(zb, requires_grad=True)
    lt = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(tb))
    lt.backward()
    assert abs(tot / 16 - lt.item()) < 1e-6
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-5, atol=1e-7)

    pm = rng.standard_normal((8, 3)).astype(np.float32)
    tm = rng.standard_normal((8, 3)).astype(np.float32)
    _, g = K.loss(L["mean_squared_error"], pm, tm, None, False, 0.0, 1 / 8)
    pt = torch.tensor(pm, requires_grad=True)
    torch.nn.functional.mse_loss(pt, torch.tensor(tm)).backward()
    np.testing.assert_allclose(g, pt.grad.numpy(), rtol=1e-5, atol=1e-8)

    # one Adam step: Keras's eps (epsilon-hat) = torch eps * sqrt(1 - beta2^t)
    p0 = rng.standard_normal(1000).astype(np.float32)
    gr = rng.standard_normal(1000).astype(np.float32)
    p = p0.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    K.adam_update(p, gr, m, v, None, 0.01, 0.9, 0.999, 1e-7, 1)
    w = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.01, betas=(0.9, 0.999), eps=1e-7 / math.sqrt(1 - 0.999))
    w.grad = torch.tensor(gr)
    opt.step()
    np.testing.assert_allclose(p, w.detach().numpy(), rtol=1e-6, atol=1e-7)
