"""Parity with PyTorch: Dense + activation + loss forward and gradients, and whole Adam steps.
Skips cleanly where torch is not installed."""
import numpy as np
import pytest

import nncore as nn
from nncore import layers

torch = pytest.importorskip("torch")

CASES = [  # (hidden activation, output activation, loss, torch loss on the last pre-activation)
    ("relu", "softmax", "sparse_categorical_crossentropy"),
    ("tanh", "sigmoid", "binary_crossentropy"),
    ("gelu", "linear", "mse"),
    ("swish", "linear", "huber"),
    ("elu", "softmax", "categorical_crossentropy"),
]

TORCH_ACT = {"relu": torch.relu, "tanh": torch.tanh, "gelu": torch.nn.functional.gelu,
             "swish": torch.nn.functional.silu, "elu": torch.nn.functional.elu}


def _targets(loss, rng, n, out):
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, out, n)
    if loss == "categorical_crossentropy":
        return np.eye(out, dtype=np.float32)[rng.integers(0, out, n)]
    if loss == "binary_crossentropy":
        return (rng.random((n, out)) > 0.5).astype(np.float32)
    return rng.normal(size=(n, out)).astype(np.float32)


def _torch_loss(loss, z, y, out_act):
    F = torch.nn.functional
    if loss == "sparse_categorical_crossentropy":
        return F.cross_entropy(z, torch.as_tensor(y, dtype=torch.long))
    if loss == "categorical_crossentropy":
        return -(torch.as_tensor(y, dtype=torch.float64) * F.log_softmax(z, dim=1)).sum(1).mean()
    if loss == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(z, torch.as_tensor(y, dtype=torch.float64))
    if loss == "mse":
        return F.mse_loss(z, torch.as_tensor(y, dtype=torch.float64))
    return F.huber_loss(z, torch.as_tensor(y, dtype=torch.float64), delta=1.0)


@pytest.mark.parametrize("hidden,out_act,loss", CASES)
def test_forward_and_gradients_match_torch(hidden, out_act, loss):
    nn.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    n, d, h, out = 13, 7, 11, 3
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = _targets(loss, rng, n, out)
    m = nn.Sequential([layers.Dense(h, activation=hidden, input_shape=(d,)), layers.Dense(out, activation=out_act)])
    m.compile(optimizer="sgd", loss=loss)
    w = m.get_weights()
    tw = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in w]
    xt = torch.tensor(x, dtype=torch.float64)
    z = TORCH_ACT[hidden](xt @ tw[0] + tw[1]) @ tw[2] + tw[3]
    tl = _torch_loss(loss, z, y, out_act)
    tl.backward()
    loss_nn, grads, _ = m._gradients(x, y)
    assert loss_nn == pytest.approx(tl.item(), rel=2e-5, abs=1e-6)
    for g, t in zip(grads, tw):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=2e-4, atol=2e-6)
    with torch.no_grad():
        probs = {"softmax": torch.softmax(z, 1), "sigmoid": torch.sigmoid(z), "linear": z}[out_act]
    np.testing.assert_allclose(m.predict(x), probs.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_adam_steps_match_torch():
    nn.utils.set_random_seed(0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 5)).astype(np.float32)
    y = rng.normal(size=(32, 2)).astype(np.float32)
    m = nn.Sequential([layers.Dense(8, activation="relu", input_shape=(5,)), layers.Dense(2)])
    m.compile(optimizer=nn.optimizers.Adam(learning_rate=0.01, epsilon=1e-7), loss="mse")
    tw = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in m.get_weights()]
    # Keras puts eps outside the bias-corrected sqrt; torch's eps_hat = eps * sqrt(1 - beta2^t)
    opt = torch.optim.Adam(tw, lr=0.01, eps=1e-7)
    for step in range(1, 6):
        for g in opt.param_groups:
            g["eps"] = 1e-7 * np.sqrt(1 - 0.999 ** step)
        opt.zero_grad()
        z = torch.relu(torch.tensor(x, dtype=torch.float64) @ tw[0] + tw[1]) @ tw[2] + tw[3]
        torch.nn.functional.mse_loss(z, torch.tensor(y, dtype=torch.float64)).backward()
        opt.step()
        m.train_on_batch(x, y)
    for a, t in zip(m.get_weights(), tw):
        # float32 vs float64: where a gradient is near 0, Adam's m/sqrt(v) amplifies rounding
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-3, atol=5e-4)
