"""BinaryFocalCrossentropy (C kernel NNC_LOSS_BINARY_FOCAL_CE): value vs a float64 NumPy
reference of Keras's formula and Keras's documented values, gradient vs finite differences of
that reference (probabilities and logits), 1 vs 2 threads bitwise, and in a model (fused
sigmoid path equals the separate from_logits path)."""
import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K
from nncore.losses import BINARY_FOCAL_CE
from conftest import run_threads

EPS = 1e-7


def ref_focal(t, p, gamma=2.0, alpha=0.25, balance=False, from_logits=False, ls=0.0):
    """Keras 3's binary_focal_crossentropy, float64, per sample (mean over the last axis)."""
    t = np.asarray(t, np.float64)
    p = np.asarray(p, np.float64)
    if ls:
        t = t * (1 - ls) + 0.5 * ls
    if from_logits:
        bce = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
        p = 1 / (1 + np.exp(-p))
    else:
        pc = np.clip(p, np.float32(EPS), np.float32(1 - EPS))  # Keras clips in float32
        bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    pt = t * p + (1 - t) * (1 - p)
    f = np.power(1 - pt, gamma) * bce
    if balance:
        f = f * (t * alpha + (1 - t) * (1 - alpha))
    return f.mean(axis=-1)


def _params(gamma, alpha, balance, ls):
    return (ls, gamma, alpha, float(balance))


CASES = [(2.0, 0.25, False, 0.0), (0.0, 0.25, False, 0.0), (3.0, 0.4, True, 0.0), (1.5, 0.25, True, 0.1),
         (0.5, 0.7, False, 0.0), (1.0, 0.25, False, 0.2)]


def test_keras_documented_values():
    y, z = np.array([[0, 1, 0, 0]]), np.array([[-18.6, 0.51, 2.94, -12.8]])
    assert nn.losses.BinaryFocalCrossentropy(gamma=2, from_logits=True)(y, z) == pytest.approx(0.691, abs=5e-4)
    assert nn.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=2, from_logits=True)(y, z) \
        == pytest.approx(0.51, abs=5e-4)
    # keras.losses.binary_focal_crossentropy(..., gamma=2) -> [0.330, 0.206]
    assert nn.losses.BinaryFocalCrossentropy(gamma=2)([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) \
        == pytest.approx((0.330 + 0.206) / 2, abs=5e-4)
    assert isinstance(nn.losses.get("binary_focal_crossentropy"), nn.losses.BinaryFocalCrossentropy)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (300, 1)])
def test_value_and_gradient_vs_reference(isa, case, from_logits, shape, rng):
    gamma, alpha, balance, ls = case
    t = (rng.random(shape) < 0.4).astype(np.float32)
    if from_logits:
        p = rng.normal(0, 3, shape).astype(np.float32)
    else:
        p = rng.uniform(0.02, 0.98, shape).astype(np.float32)
    w = rng.uniform(0.1, 2, shape[0]).astype(np.float32)
    scale = 1.0 / shape[0]
    total, g = K.loss(BINARY_FOCAL_CE, p, t, w, from_logits, _params(gamma, alpha, balance, ls), scale)
    ref = ref_focal(t, p, gamma, alpha, balance, from_logits, ls)
    assert total == pytest.approx(float(np.dot(w, ref)), rel=1e-6, abs=1e-9)
    # central differences of the float64 reference (per element; the loss is separable)
    h = 1e-6 if not from_logits else 1e-5
    p64 = p.astype(np.float64)
    fd = (ref_focal(t, p64 + h, gamma, alpha, balance, from_logits, ls)[:, None] * 0 +
          np.stack([(ref_focal(t[:, [j]], p64[:, [j]] + h, gamma, alpha, balance, from_logits, ls)
                     - ref_focal(t[:, [j]], p64[:, [j]] - h, gamma, alpha, balance, from_logits, ls)) / (2 * h)
                    for j in range(shape[1])], 1) / shape[1])
    fd *= (w * scale)[:, None]
    np.testing.assert_allclose(g, fd, rtol=2e-4, atol=1e-6)


def test_clipped_probabilities_have_zero_bce_gradient():
    t = np.array([[1.0], [0.0]], np.float32)
    p = np.array([[0.0], [1.0]], np.float32)  # clipped: Keras's clip passes no gradient to bce
    total, g = K.loss(BINARY_FOCAL_CE, p, t, None, False, _params(2.0, 0.25, False, 0.0))
    assert np.isfinite(total) and np.all(np.isfinite(g))
    assert total == pytest.approx(float(ref_focal(t, p).sum()), rel=1e-6)


def test_threads_bitwise(force_threads, rng):
    t = (rng.random((3000, 2)) < 0.1).astype(np.float32)
    p = rng.normal(0, 2, (3000, 2)).astype(np.float32)
    f = lambda: K.loss(BINARY_FOCAL_CE, p, t, None, True, _params(2.0, 0.3, True, 0.05), 1 / 3000)
    (a, ga), (b, gb) = run_threads(f, 1), run_threads(f, 2)
    assert a == b and np.array_equal(ga, gb)


def test_in_model_fused_equals_logits(rng):
    """sigmoid output + focal (fused, on logits) == linear output + focal(from_logits=True)."""
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (rng.random((64, 1)) < 0.2).astype(np.float32)
    nn.utils.set_random_seed(3)
    a = nn.Sequential([nn.layers.Dense(8, activation="tanh", input_shape=(5,)), nn.layers.Dense(1, activation="sigmoid")])
    b = nn.Sequential([nn.layers.Dense(8, activation="tanh", input_shape=(5,)), nn.layers.Dense(1)])
    b.build()
    a.build()
    b.set_weights(a.get_weights())
    a.compile("sgd", nn.losses.BinaryFocalCrossentropy(gamma=2.0, apply_class_balancing=True, alpha=0.7))
    b.compile("sgd", nn.losses.BinaryFocalCrossentropy(gamma=2.0, apply_class_balancing=True, alpha=0.7,
                                                       from_logits=True))
    la, ga, _ = a._gradients(x, y)
    lb, gb, _ = b._gradients(x, y)
    assert la == pytest.approx(lb, rel=1e-5)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-7)
    ref = ref_focal(y, 1 / (1 + np.exp(-b.predict(x).astype(np.float64))), 2.0, 0.7, True)
    assert la == pytest.approx(ref.mean(), rel=1e-5)
    # and it trains: loss falls on a separable problem
    yy = (x[:, :1] > 0).astype(np.float32)
    a.compile("adam", nn.losses.BinaryFocalCrossentropy())
    h = a.fit(x, yy, epochs=30, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
