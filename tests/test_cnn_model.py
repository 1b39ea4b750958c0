"""Conv/pooling layers inside Sequential models: the issue's CNN learns a generated image task,
a Conv1D forecaster trains, gradients match finite differences, Keras layouts, summary shapes,
channels_first, 1 vs 2 threads bitwise, bad geometry."""
import numpy as np
import pytest

import nncore as nn
from nncore import layers as L

from conftest import run_threads


def bars(n, rng, size=28):
    """Class 1: a horizontal bar, class 0: a vertical bar, at random places, in noise."""
    x = rng.normal(0, 0.3, (n, size, size, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c, ln = rng.integers(2, size - 2), rng.integers(2, size - 2), 7
        if y[i]:
            c0 = min(c, size - ln)
            x[i, r, c0:c0 + ln, 0] += 3
        else:
            r0 = min(r, size - ln)
            x[i, r0:r0 + ln, c, 0] += 3
    return x, y.astype(np.float32)


def issue_cnn():
    return nn.Sequential([
        L.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        L.MaxPooling2D((2, 2)),
        L.Conv2D(64, (3, 3), activation="relu"),
        L.MaxPooling2D((2, 2)),
        L.Flatten(),
        L.Dense(64, activation="relu"),
        L.Dense(1, activation="sigmoid")])


def test_issue_cnn_learns_bars(rng):
    x, y = bars(1000, rng)
    xv, yv = bars(300, rng)
    model = issue_cnn()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=4, batch_size=32, validation_data=(xv, yv), verbose=0)
    assert h.history["val_accuracy"][-1] >= 0.95
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_issue_cnn_summary_shapes_and_params():
    model = issue_cnn()
    model.build()
    assert [l.output_shape for l in model.layers] == [
        (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (1600,), (64,), (1,)]
    assert [l.count_params() for l in model.layers] == [320, 0, 18496, 0, 0, 102464, 65]
    assert model.count_params() == 121345
    assert [w.shape for w in model.layers[2].get_weights()] == [(3, 3, 32, 64), (64,)]
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(None, 13, 13, 32)" in s for s in lines)


def test_conv1d_forecaster_trains(rng):
    # windows of 60 daily returns (8 features); target: a noisy momentum/reversal signal
    n, T, Fe = 1500, 60, 8
    x = rng.normal(0, 1, (n, T, Fe)).astype(np.float32)
    y = (4 * x[:, :, 0].mean(axis=1) - 2 * x[:, :, 1].mean(axis=1)
         + rng.normal(0, 0.1, n))[:, None].astype(np.float32)
    model = nn.Sequential([
        L.Conv1D(32, 5, activation="relu", input_shape=(T, Fe)),
        L.MaxPooling1D(2),
        L.Conv1D(32, 3, activation="relu", padding="causal"),
        L.GlobalAveragePooling1D(),
        L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    h = model.fit(x[:-300], y[:-300], epochs=8, batch_size=32, verbose=0,
                  validation_data=(x[-300:], y[-300:]))
    base = float(np.mean((y[-300:] - y[:-300].mean()) ** 2))
    assert h.history["val_loss"][-1] < 0.3 * base
    assert h.history["loss"][-1] < 0.7 * h.history["loss"][0]


def test_model_gradients_vs_finite_differences(rng):
    model = nn.Sequential([
        L.ZeroPadding2D(((1, 0), (0, 2)), input_shape=(6, 5, 2)),
        L.Conv2D(4, 3, strides=2, padding="same", activation="tanh"),
        L.AveragePooling2D(2, strides=1, padding="same"),
        L.Conv2D(3, 1, activation="sigmoid"),
        L.Reshape((-1, 3)),
        L.GlobalAveragePooling1D(),  # smooth: a max could switch inside the FD step
        L.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.standard_normal((3, 6, 5, 2)).astype(np.float32)
    y = rng.standard_normal((3, 2)).astype(np.float32)
    loss, grads, dx = model._gradients(x, y)
    weights = model.get_weights()
    eps = 1e-2
    for wi in range(len(weights)):
        flat = weights[wi].reshape(-1)
        for j in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            vals = []
            for sgn in (1, -1):
                w2 = [w.copy() for w in weights]
                w2[wi].reshape(-1)[j] += sgn * eps
                model.set_weights(w2)
                vals.append(model._gradients(x, y)[0])
            model.set_weights(weights)
            num = (vals[0] - vals[1]) / (2 * eps)
            assert abs(num - grads[wi].reshape(-1)[j]) < 3e-3 + 3e-2 * abs(num), (wi, j)
    for j in rng.choice(x.size, 6, replace=False):
        vals = []
        for sgn in (1, -1):
            x2 = x.copy()
            x2.reshape(-1)[j] += sgn * eps
            vals.append(model._gradients(x2, y)[0])
        num = (vals[0] - vals[1]) / (2 * eps)
        assert abs(num - dx.reshape(-1)[j]) < 3e-3 + 3e-2 * abs(num)


def test_keras_layout_weights_match_ops(rng):
    k = rng.standard_normal((3, 2, 3, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    model = nn.Sequential([L.Conv2D(5, (3, 2), strides=(2, 1), padding="same", activation="relu",
                                    input_shape=(9, 8, 3))])
    model.set_weights([k, b])
    x = rng.standard_normal((4, 9, 8, 3)).astype(np.float32)
    exp = nn.ops.conv2d(x, k, b, strides=(2, 1), padding="same", activation="relu")
    np.testing.assert_allclose(model.predict(x, verbose=0), exp, rtol=1e-5, atol=1e-5)
    k1 = rng.standard_normal((4, 3, 6)).astype(np.float32)
    m1 = nn.Sequential([L.Conv1D(6, 4, dilation_rate=2, padding="causal", use_bias=False,
                                 input_shape=(20, 3))])
    m1.build()
    assert m1.layers[0].get_weights()[0].shape == (4, 3, 6)
    m1.set_weights([k1])
    x1 = rng.standard_normal((2, 20, 3)).astype(np.float32)
    np.testing.assert_allclose(m1.predict(x1, verbose=0),
                               nn.ops.conv1d(x1, k1, padding="causal", dilation_rate=2),
                               rtol=1e-5, atol=1e-5)


def test_channels_first_matches_channels_last(rng):
    cl = nn.Sequential([L.Conv2D(4, 3, padding="same", input_shape=(7, 6, 3)), L.MaxPooling2D(2)])
    cf = nn.Sequential([L.Conv2D(4, 3, padding="same", data_format="channels_first",
                                 input_shape=(3, 7, 6))])
    cf.build()
    cl.build()
    assert cf.layers[0].output_shape == (4, 7, 6)
    cf.set_weights(cl.layers[0].get_weights())
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    y_cf = cf.predict(x.transpose(0, 3, 1, 2), verbose=0)
    y_cl = nn.ops.conv2d(x, *cl.layers[0].get_weights(), padding="same")
    np.testing.assert_allclose(y_cf, y_cl.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)
    # gradients flow back through the transposes
    cf.compile(optimizer="sgd", loss="mse")
    _, g, dx = cf._gradients(x.transpose(0, 3, 1, 2), np.zeros((2, 4, 7, 6), np.float32))
    dxr, dk, db = nn.ops.conv2d_backward((x, *cl.layers[0].get_weights()),
                                         (2 * y_cl / y_cl.size).astype(np.float32), padding="same")
    np.testing.assert_allclose(g[0], dk, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, dxr.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_channels_first_pooling_flatten_match_channels_last(rng, tmp_path, pool):
    P = L.MaxPooling2D if pool == "max" else L.AveragePooling2D

    def model(df, shape):
        return nn.Sequential([L.Conv2D(5, 3, padding="same", data_format=df, input_shape=shape),
                              P(2, padding="same", data_format=df), P((2, 1), data_format=df),
                              L.Flatten(data_format=df), L.Dense(3)])

    cl, cf = model("channels_last", (9, 8, 4)), model("channels_first", (4, 9, 8))
    cl.build()
    cf.build()
    assert [l.output_shape for l in cf.layers] == [(5, 9, 8), (5, 5, 4), (5, 2, 4), (40,), (3,)]
    cf.set_weights(cl.get_weights())  # Keras: the same weights serve either data format
    x = rng.standard_normal((3, 9, 8, 4)).astype(np.float32)
    xf = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(cf.predict(xf, verbose=0), cl.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    t = rng.standard_normal((3, 3)).astype(np.float32)
    for m in (cl, cf):
        m.compile(optimizer="sgd", loss="mse")
    _, g_l, dx_l = cl._gradients(x, t)
    _, g_f, dx_f = cf._gradients(xf, t)
    for a, b in zip(g_f, g_l):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx_f, dx_l.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-6)
    cf.save(tmp_path / "cf.nnc")
    back = nn.models.load_model(tmp_path / "cf.nnc")
    np.testing.assert_array_equal(back.predict(xf, verbose=0), cf.predict(xf, verbose=0))


@pytest.mark.parametrize("gp", ["GlobalAveragePooling2D", "GlobalMaxPooling2D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_channels_first_global_pooling(rng, gp, keepdims):
    cl = nn.Sequential([L.Conv2D(5, 3, input_shape=(9, 8, 4)), getattr(L, gp)(keepdims=keepdims)])
    cf = nn.Sequential([L.Conv2D(5, 3, data_format="channels_first", input_shape=(4, 9, 8)),
                        getattr(L, gp)(keepdims=keepdims, data_format="channels_first")])
    cl.build()
    cf.build()
    cf.set_weights(cl.get_weights())
    assert cf.layers[-1].output_shape == ((5, 1, 1) if keepdims else (5,))
    x = rng.standard_normal((3, 9, 8, 4)).astype(np.float32)
    y_l = cl.predict(x, verbose=0)
    y_f = cf.predict(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), verbose=0)
    assert y_f.shape == ((3, 5, 1, 1) if keepdims else (3, 5))
    np.testing.assert_allclose(y_f.reshape(3, 5), y_l.reshape(3, 5), rtol=1e-6, atol=1e-6)


def test_channels_first_pooling1d(rng):
    x = rng.standard_normal((3, 12, 4)).astype(np.float32)
    cl = nn.Sequential([L.MaxPooling1D(2, input_shape=(12, 4)), L.AveragePooling1D(3, padding="same"),
                        L.GlobalMaxPooling1D()])
    cf = nn.Sequential([L.MaxPooling1D(2, data_format="channels_first", input_shape=(4, 12)),
                        L.AveragePooling1D(3, padding="same", data_format="channels_first"),
                        L.GlobalMaxPooling1D(data_format="channels_first")])
    assert cf.layers[1].output_shape == (4, 2)
    np.testing.assert_allclose(cf.predict(np.ascontiguousarray(x.transpose(0, 2, 1)), verbose=0),
                               cl.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_fit_bitwise_1_vs_2_threads(force_threads, rng):
    x, y = bars(96, rng, size=12)

    def run():
        model = nn.Sequential([
            L.Conv2D(16, 3, activation="relu", input_shape=(12, 12, 1)),
            L.MaxPooling2D(2),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.AveragePooling2D(2),
            L.Flatten(),
            L.Dense(1, activation="sigmoid")])
        model.set_weights([np.full(w.shape, 0.05, np.float32) * np.sin(np.arange(w.size)).reshape(w.shape)
                           for w in model.get_weights()])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return model.get_weights()

    for a, b in zip(run_threads(run, 1), run_threads(run, 2)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layers,match", [
    ([L.Conv2D(4, 5, input_shape=(4, 4, 1))], "larger than the input"),
    ([L.Conv2D(4, 3, input_shape=(8, 8))], "rank 4"),
    ([L.MaxPooling2D(3, input_shape=(2, 2, 1))], "larger than the input"),
    ([L.Conv1D(4, 3, input_shape=(8, 8, 2))], "rank 3"),
    ([L.Reshape((7, -1), input_shape=(10,))], "cannot reshape"),
    ([L.GlobalAveragePooling2D(input_shape=(5, 3))], "rank 4"),
])
def test_bad_geometry_raises(layers, match):
    with pytest.raises(ValueError, match=match):
        nn.Sequential(layers).build()


@pytest.mark.parametrize("make", [
    lambda: L.Conv2D(0, 3), lambda: L.Conv2D(4, 0), lambda: L.Conv2D(4, 3, strides=-1),
    lambda: L.Conv2D(4, 3, padding="full"), lambda: L.Conv2D(4, 3, data_format="nhwc"),
    lambda: L.MaxPooling2D(0), lambda: L.MaxPooling1D(2, padding="causal"),
    lambda: L.ZeroPadding2D(-1), lambda: L.Reshape((0, 2)), lambda: L.Conv2D(4, 3, activation="nope"),
])
def test_bad_layer_args(make):
    with pytest.raises(ValueError):
        make()


def test_layer_configs_round_trip():
    for layer in (L.Conv2D(8, (3, 2), strides=2, padding="same", activation="relu"),
                  L.Conv1D(4, 5, padding="causal", dilation_rate=2), L.MaxPooling2D((2, 3)),
                  L.AveragePooling1D(3, strides=2), L.GlobalMaxPooling2D(), L.Flatten(),
                  L.Reshape((2, -1)), L.ZeroPadding2D(((1, 2), (3, 4))), L.ZeroPadding1D(2)):
        cfg = layer.get_config()
        cfg.pop("name")
        again = type(layer).from_config(cfg)
        c2 = again.get_config()
        c2.pop("name")
        assert c2 == cfg
