"""nn.explain: output gradients vs an independent float64 NumPy backward, integrated-gradients
completeness, exactness on a linear model, blocks vs one call, permutation importance, and
top_reasons."""
import numpy as np
import pytest

import nncore as nn
from nncore import explain as E


def _mlp(out=1, act="sigmoid", seed=0, n_in=6):
    nn.utils.set_random_seed(seed)
    m = nn.Sequential([nn.layers.Dense(16, activation="tanh", input_shape=(n_in,)),
                       nn.layers.Dense(out, activation=act)])
    m.build()
    rng = np.random.default_rng(seed)
    m.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in m.get_weights()])
    return m


def _ref_grad(m, x, target=0):
    """float64 forward/backward of Dense(tanh) -> Dense(sigmoid|softmax) w.r.t. the input."""
    W1, b1, W2, b2 = [w.astype(np.float64) for w in m.get_weights()]
    h = np.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    if W2.shape[1] == 1:
        p = 1 / (1 + np.exp(-z))
        dz = p * (1 - p)
    else:
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        onehot = np.zeros_like(p)
        onehot[np.arange(len(p)), target] = 1
        dz = p * (onehot - p[np.arange(len(p)), target][:, None])  # d p_target / d z
    return ((dz @ W2.T) * (1 - h * h)) @ W1.T, p


def test_input_gradients_vs_float64_reference():
    m = _mlp()
    x = np.random.default_rng(1).normal(size=(33, 6)).astype(np.float32)
    g = E.input_gradients(m, x)
    ref, _ = _ref_grad(m, x.astype(np.float64))
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(E.gradient_x_input(m, x), x * g, rtol=1e-6)
    np.testing.assert_allclose(E.input_gradients(m, x[0]), g[:1], rtol=1e-6)  # one sample


def test_softmax_targets():
    m = _mlp(out=3, act="softmax", seed=2)
    x = np.random.default_rng(3).normal(size=(20, 6)).astype(np.float32)
    ref1, p = _ref_grad(m, x.astype(np.float64), target=1)
    np.testing.assert_allclose(E.input_gradients(m, x, target=1), ref1, rtol=1e-4, atol=1e-6)
    pred = p.argmax(1)
    ref_pred, _ = _ref_grad(m, x.astype(np.float64), target=pred)
    np.testing.assert_allclose(E.input_gradients(m, x), ref_pred, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="target must be in"):
        E.input_gradients(m, x, target=3)


@pytest.mark.parametrize("baseline", ["zeros", "mean", "per_row"])
def test_integrated_gradients_completeness(baseline):
    m = _mlp(seed=4)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    b = {"zeros": None, "mean": rng.normal(size=6).astype(np.float32),
         "per_row": rng.normal(size=(40, 6)).astype(np.float32)}[baseline]
    a = E.integrated_gradients(m, x, baseline=b, steps=64)
    fb = m.predict(np.broadcast_to(np.zeros(6, np.float32) if b is None else b, x.shape).copy())[:, 0]
    delta = m.predict(x)[:, 0].astype(np.float64) - fb
    np.testing.assert_allclose(a.sum(1), delta, atol=2e-3 * np.abs(delta).max() + 1e-5)
    # blocks of rows give the same numbers as one call
    a2 = E.integrated_gradients(m, x, baseline=b, steps=64, max_rows=65 * 3)
    np.testing.assert_allclose(a2, a, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_exact_on_linear_model():
    nn.utils.set_random_seed(0)
    m = nn.Sequential([nn.layers.Dense(1, input_shape=(4,))])
    m.build()
    w = np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32)
    m.set_weights([w, np.array([0.3], np.float32)])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    b = np.full(4, 0.5, np.float32)
    np.testing.assert_allclose(E.integrated_gradients(m, x, baseline=b, steps=3), (x - b) * w[:, 0], rtol=1e-5)
    with pytest.raises(ValueError, match="broadcast"):
        E.integrated_gradients(m, x, baseline=np.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        E.integrated_gradients(m, x, steps=0)


def test_permutation_importance():
    sk = pytest.importorskip("sklearn.metrics")
    nn.utils.set_random_seed(0)
    m = nn.Sequential([nn.layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    m.build()
    m.set_weights([np.array([[3.0], [0.0], [1.0]], np.float32), np.zeros(1, np.float32)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 2] + rng.normal(0, 0.5, 400) > 0).astype(np.float32)
    r = E.permutation_importance(m, x, y, metric="auc", n_repeats=4, seed=0)
    assert r["importances"].shape == (3, 4)
    assert r["baseline_score"] == pytest.approx(sk.roc_auc_score(y, m.predict(x)[:, 0]), abs=3e-3)
    assert r["importances_mean"][1] == 0.0 and r["importances_std"][1] == 0.0  # unused feature
    assert r["importances_mean"][0] > r["importances_mean"][2] > 0
    # a loss-like metric keeps the sign convention (positive = the feature helps)
    r2 = E.permutation_importance(m, x, y, metric="mse", n_repeats=2, seed=1)
    assert r2["importances_mean"][0] > 0 and r2["importances_mean"][1] == 0.0
    r3 = E.permutation_importance(m, x, y, metric=lambda t, p: sk.roc_auc_score(t, p[:, 0]), n_repeats=2, seed=1)
    assert r3["importances_mean"][0] > 0.2
    with pytest.raises(ValueError, match="y has 10 samples"):
        E.permutation_importance(m, x, y[:10])


def test_top_reasons():
    nn.utils.set_random_seed(0)
    m = nn.Sequential([nn.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    m.build()
    m.set_weights([np.array([[2.0], [-1.0], [0.5], [1.0]], np.float32), np.zeros(1, np.float32)])
    row = np.array([1.0, 1.0, 1.0, 0.2], np.float32)
    names = ["debt", "income", "inquiries", "late"]
    up = E.top_reasons(m, row, names, k=2)
    assert [r["feature"] for r in up] == ["debt", "inquiries"] and up[0]["value"] == 1.0
    assert up[0]["attribution"] > up[1]["attribution"] > 0
    down = E.top_reasons(m, row, names, k=3, direction="down")
    assert [r["feature"] for r in down] == ["income"]  # only one feature lowers the score
    for method in ("gradient_x_input", "input_gradients"):
        assert E.top_reasons(m, row, names, k=1, method=method)[0]["feature"] == "debt"
    with pytest.raises(ValueError, match="3 feature names for 4"):
        E.top_reasons(m, row, names[:3])
    with pytest.raises(ValueError, match="unknown method"):
        E.top_reasons(m, row, names, method="shap")


def test_multi_input_attributions_complete():
    """Integrated gradients of a two-input model: one attribution array per input, summing to
    f(x) - f(baseline); input gradients match finite differences; top_reasons names input[i]."""
    L = nn.layers
    a, b = nn.Input(shape=(3,), name="num"), nn.Input(shape=(2,), name="macro")
    h = L.Dense(8, activation="tanh")(L.concatenate([a, b]))
    m = nn.Model([a, b], L.Dense(1, activation="sigmoid")(h))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)]
    ig = nn.explain.integrated_gradients(m, {"num": xs[0], "macro": xs[1]}, steps=200)
    assert set(ig) == {"num", "macro"} and ig["num"].shape == (4, 3)
    f = m.predict(xs)[:, 0]
    f0 = m.predict([np.zeros_like(x) for x in xs])[:, 0]
    np.testing.assert_allclose(ig["num"].sum(1) + ig["macro"].sum(1), f - f0, atol=2e-4)
    g = nn.explain.input_gradients(m, xs)
    eps = 1e-3
    for i in range(2):
        for j in range(xs[i].shape[1]):
            xp = [x.copy() for x in xs]
            xm = [x.copy() for x in xs]
            xp[i][:, j] += eps
            xm[i][:, j] -= eps
            num = (m.predict(xp)[:, 0].astype(np.float64) - m.predict(xm)[:, 0]) / (2 * eps)
            np.testing.assert_allclose(g[i][:, j], num, rtol=2e-2, atol=2e-4)
    r = nn.explain.top_reasons(m, [xs[0][0], xs[1][0]], k=5, direction="abs")
    assert {x["feature"] for x in r} <= {"num[0]", "num[1]", "num[2]", "macro[0]", "macro[1]"} and len(r) == 5
