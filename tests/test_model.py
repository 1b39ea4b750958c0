"""Keras-style MLP training, prediction and the model API, end to end through the C engine."""
import numpy as np
import pytest

import nncore as nn
from nncore import layers


def credit_like(n=4000, d=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d)
    logit = x @ w + 0.5 * np.sin(3 * x[:, 0]) - 0.3
    y = (logit + 0.3 * rng.normal(size=n) > 0).astype(np.float32)
    return x, y


def test_binary_mlp_learns():
    nn.utils.set_random_seed(1)
    x, y = credit_like()
    model = nn.Sequential([
        nn.layers.Dense(64, activation="relu", input_shape=(x.shape[1],)),
        nn.layers.Dense(32, activation="relu"),
        nn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x[:3000], y[:3000], epochs=10, batch_size=32, validation_data=(x[3000:], y[3000:]), verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["loss"]) == 10
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert hist.history["val_accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x[3000:], y[3000:], verbose=0)
    assert acc == pytest.approx(hist.history["val_accuracy"][-1])
    p = model.predict(x[3000:])
    assert p.shape == (1000, 1) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    assert np.mean((p[:, 0] > 0.5) == y[3000:]) == pytest.approx(acc)


def test_softmax_sparse_mlp_learns():
    nn.utils.set_random_seed(2)
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(3000, 10)).astype(np.float32)
    y_train = np.argmax(x_train[:, :10] @ rng.normal(size=(10, 10)), axis=1)
    model = nn.Sequential([
        layers.Dense(32, activation="relu", input_shape=(10,)),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x_train, y_train, epochs=10, verbose=0)
    assert h.history["accuracy"][-1] > 0.85
    predictions = model.predict(x_train[:5])
    assert predictions.shape == (5, 10)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("loss,metric", [("mse", "mae"), ("mae", "mse"), ("huber", "mse")])
def test_regression_losses_learn(loss, metric):
    nn.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    y = (x @ rng.normal(size=5) + 0.1 * rng.normal(size=2000)).astype(np.float32)
    model = nn.Sequential([nn.Input(shape=(5,)), layers.Dense(16, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer=nn.optimizers.Adam(learning_rate=0.01), loss=loss, metrics=[metric])
    h = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    assert h.history["loss"][-1] < 0.25 * h.history["loss"][0]


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop",
                                 nn.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                                 nn.optimizers.RMSprop(0.003, momentum=0.5, centered=True),
                                 nn.optimizers.Adam(0.003, amsgrad=True)])
def test_every_optimizer_trains(opt):
    nn.utils.set_random_seed(4)
    x, y = credit_like(1500)
    model = nn.Sequential([layers.Dense(16, activation="relu", input_shape=(10,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=opt, loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.8


def test_categorical_onehot_and_activations():
    nn.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1200, 6)).astype(np.float32)
    lab = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    y = nn.utils.to_categorical(lab, 3)
    for act in ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "swish", "softplus", "selu"]:
        model = nn.Sequential([layers.Dense(24, activation=act, input_shape=(6,)), layers.Dense(3),
                               layers.Activation("softmax")])
        model.compile(optimizer=nn.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
        h = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
        assert h.history["accuracy"][-1] > 0.8, act


def _ref_forward_backward(ws, x, y, acts):
    """float64 reference: MLP forward, mean BCE on sigmoid output, backward."""
    f = {"relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(float)),
         "tanh": (np.tanh, lambda z, a: 1 - a * a)}
    a, cache = x.astype(np.float64), []
    for i in range(0, len(ws), 2):
        z = a @ ws[i] + ws[i + 1]
        cache.append((a, z))
        a = f[acts[i // 2]][0](z) if i // 2 < len(acts) else 1 / (1 + np.exp(-z))
    p = a
    loss = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    dz = (p - y) / len(y)
    grads = [None] * len(ws)
    for i in reversed(range(0, len(ws), 2)):
        ain, z = cache[i // 2]
        if i // 2 < len(acts):
            act = f[acts[i // 2]][0](z)
            dz = dz * f[acts[i // 2]][1](z, act)
        grads[i] = ain.T @ dz
        grads[i + 1] = dz.sum(0)
        dz = dz @ ws[i].T
    return loss, grads, dz


def test_gradients_match_float64_reference_and_finite_differences():
    nn.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    y = (rng.random((7, 1)) > 0.5).astype(np.float32)
    model = nn.Sequential([layers.Dense(9, activation="relu", input_shape=(5,)),
                           layers.Dense(4, activation="tanh"), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    loss, grads, dx = model._gradients(x, y)
    ws = [w.astype(np.float64) for w in model.get_weights()]
    rloss, rgrads, rdx = _ref_forward_backward(ws, x, y, ["relu", "tanh"])
    assert loss == pytest.approx(rloss, rel=1e-5)
    for g, r in zip(grads, rgrads):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-6)
    # finite differences of the float64 reference along a random direction
    for i in range(len(ws)):
        d = rng.normal(size=ws[i].shape)
        eps = 1e-6
        wp = [w.copy() for w in ws]
        wm = [w.copy() for w in ws]
        wp[i] += eps * d
        wm[i] -= eps * d
        fd = (_ref_forward_backward(wp, x, y, ["relu", "tanh"])[0] - _ref_forward_backward(wm, x, y, ["relu", "tanh"])[0]) / (2 * eps)
        assert np.sum(grads[i] * d) == pytest.approx(fd, rel=1e-3, abs=1e-6)


def test_one_thread_and_two_threads_train_bitwise_equal(force_threads):
    x, y = credit_like(640, seed=9)

    def run():
        nn.utils.set_random_seed(7)
        model = nn.Sequential([layers.Dense(48, activation="relu", input_shape=(10,)),
                               layers.Dense(40, activation="gelu"), layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=64, verbose=0)
        return model.get_weights(), model.predict(x)

    with nn.threads(1):
        w1, p1 = run()
    with nn.threads(2):
        w2, p2 = run()
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)
    assert np.array_equal(p1, p2)


def test_predict_paths_agree():
    nn.utils.set_random_seed(8)
    x, _ = credit_like(100)
    model = nn.Sequential([layers.Dense(8, activation="relu", input_shape=(10,)), layers.Dense(3, activation="softmax")])
    full = model.predict(x, batch_size=7)
    np.testing.assert_allclose(model.predict(x[:1]), full[:1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict_on_batch(x), full, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict(x.astype(np.float64)), full, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict(np.asfortranarray(x)), full, rtol=1e-6, atol=1e-7)
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_allclose(model.predict(ro), full, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model(x), full, rtol=1e-6, atol=1e-7)


def test_weights_round_trip_in_keras_layout():
    nn.utils.set_random_seed(9)
    model = nn.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)])
    w = model.get_weights()
    assert [a.shape for a in w] == [(3, 4), (4,), (4, 2), (2,)]
    new = [np.full_like(a, 0.1 * (i + 1)) for i, a in enumerate(w)]
    model.set_weights(new)
    x = np.ones((1, 3), np.float32)
    expect = (x @ new[0] + new[1]) @ new[2] + new[3]
    np.testing.assert_allclose(model.predict(x), expect, rtol=1e-6)
    assert model.layers[0].kernel.shape == (3, 4)
    assert model.count_params() == 3 * 4 + 4 + 4 * 2 + 2


def test_train_on_batch_and_test_on_batch():
    nn.utils.set_random_seed(10)
    x, y = credit_like(64)
    model = nn.Sequential([layers.Dense(8, activation="relu", input_shape=(10,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    first = model.train_on_batch(x, y)
    for _ in range(30):
        last = model.train_on_batch(x, y)
    assert last[0] < first[0]
    loss, acc = model.test_on_batch(x, y)
    assert 0 <= acc <= 1 and loss > 0
    assert model.optimizer.iterations == 31


def test_validation_split_and_summary(capsys):
    nn.utils.set_random_seed(11)
    x, y = credit_like(500)
    model = nn.Sequential([layers.Dense(8, activation="relu", input_shape=(10,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=2, validation_split=0.2, verbose=2)
    assert "val_loss" in h.history
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "val_accuracy" in out
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 97" in out and "(None, 8)" in out


def test_deferred_build_from_data():
    model = nn.Sequential([layers.Dense(4, activation="relu"), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    assert model.input_shape == (None, 6)
    assert model.layers[0].kernel.shape == (6, 4)


def test_fork_after_threads_does_not_hang():
    import os
    from conftest import run_in_fork_child
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    x = np.random.default_rng(0).normal(size=(4096, 256)).astype(np.float32)
    model = nn.Sequential([layers.Dense(256, activation="relu", input_shape=(256,)), layers.Dense(1)])
    with nn.threads(2):
        expect = model.predict(x)  # starts the thread pool
    got = run_in_fork_child(lambda: float(model.predict(x).sum()))
    assert got == pytest.approx(float(expect.sum()), rel=1e-5)


def test_validation_split_with_multidimensional_input():
    nn.utils.set_random_seed(12)
    x = np.random.default_rng(0).normal(size=(100, 4, 3)).astype(np.float32)
    model = nn.Sequential([layers.Flatten(input_shape=(4, 3)), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    h = model.fit(x, x[:, 0, :1], epochs=1, validation_split=0.25, verbose=0)
    assert "val_loss" in h.history


def test_validation_split_is_not_class_weighted():
    """As Keras: class_weight weights the training samples only; the split-off validation loss is
    the plain loss of the last samples."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.float32)
    nn.utils.set_random_seed(0)
    m = nn.Sequential([nn.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    m.compile(optimizer="sgd", loss="binary_crossentropy")
    h = m.fit(x, y, epochs=1, batch_size=50, validation_split=0.25, class_weight={0: 1.0, 1: 5.0},
              verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][0], m.evaluate(x[150:], y[150:], verbose=0),
                               rtol=1e-5)
