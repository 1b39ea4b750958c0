"""Recurrent layers inside the engine: nodes vs nn.ops (forward and gradients), Bidirectional,
Keras weight layouts, dropout, threads, bad configurations, and the issue's models learning a
generated sequence task."""
import numpy as np
import pytest

import nncore as nn
from conftest import run_threads

L = nn.layers


def seq_task(n, T=30, F=8, seed=0):
    """Label: is the sum of channel 0 over the second half positive; target for regression:
    a weighted sum of the last steps of channel 1 (a 'next-day return')."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    y_cls = (x[:, T // 2:, 0].sum(1) > 0).astype(np.float32)[:, None]
    y_reg = (0.5 * x[:, -1, 1] + 0.3 * x[:, -2, 1] - 0.2 * x[:, -3, 2]).astype(np.float32)[:, None]
    return x, y_cls, y_reg


@pytest.mark.parametrize("layer", [L.LSTM, L.GRU, L.SimpleRNN])
def test_stacked_model_learns_classification(layer):
    x, y, _ = seq_task(1200)
    model = nn.Sequential([layer(32, return_sequences=True, input_shape=(30, 8)),
                           layer(16),
                           L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x[:1000], y[:1000], epochs=6, batch_size=32, validation_data=(x[1000:], y[1000:]),
                  verbose=0)
    assert h.history["val_accuracy"][-1] > 0.8, h.history
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0] + 0.2


@pytest.mark.parametrize("layer", [L.LSTM, L.GRU, L.SimpleRNN])
def test_regression_head_learns(layer):
    x, _, y = seq_task(1000, T=20, F=4, seed=1)
    model = nn.Sequential([layer(24, return_sequences=True, input_shape=(20, 4)), layer(12),
                           L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    base = float(np.mean((y - y.mean()) ** 2))
    h = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < 0.3 * base, (h.history["loss"], base)


def test_issue_model_shapes_and_weights():
    model = nn.Sequential([L.LSTM(64, return_sequences=True, input_shape=(30, 8)), L.LSTM(32),
                           L.Dense(1, activation="sigmoid")])
    model.build()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(8, 256), (64, 256), (256,), (64, 128), (32, 128), (128,), (32, 1), (1,)]
    b = model.layers[0].get_weights()[2]
    np.testing.assert_array_equal(b[64:128], 1.0)   # unit_forget_bias
    np.testing.assert_array_equal(b[:64], 0.0)
    U = model.layers[0].get_weights()[1]
    np.testing.assert_allclose(U @ U.T, np.eye(64), atol=1e-4)  # orthogonal (rows)
    assert model.layers[0].name.startswith("lstm")
    g = nn.Sequential([L.GRU(5, input_shape=(3, 2))])
    g.build()
    assert [w.shape for w in g.get_weights()] == [(2, 15), (5, 15), (2, 15)]
    g2 = nn.Sequential([L.GRU(5, reset_after=False, input_shape=(3, 2))])
    g2.build()
    assert g2.get_weights()[2].shape == (15,)


def _mse_grad(y, t):
    return 2.0 * (y - t) / y.size


@pytest.mark.parametrize("reset_after", [True, False])
def test_nodes_match_ops_forward_and_gradients(rng, reset_after):
    B, T, I = 9, 7, 3
    model = nn.Sequential([
        L.LSTM(5, return_sequences=True, go_backwards=True, input_shape=(T, I)),
        L.GRU(6, return_sequences=True, reset_after=reset_after, activation="relu",
              recurrent_activation="hard_sigmoid"),
        L.SimpleRNN(4)])
    model.compile(optimizer="sgd", loss="mse")
    ws = [w + rng.uniform(-0.2, 0.2, w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(ws)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    t = rng.standard_normal((B, 4)).astype(np.float32)

    y1, c1 = nn.ops.lstm(x, *ws[0:3], return_sequences=True, go_backwards=True, return_context=True)
    y2, c2 = nn.ops.gru(y1, *ws[3:6], return_sequences=True, reset_after=reset_after,
                        activation="relu", recurrent_activation="hard_sigmoid", return_context=True)
    y3, c3 = nn.ops.simple_rnn(y2, *ws[6:9], return_context=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), y3, rtol=1e-5, atol=1e-6)

    loss, grads, dx = model._gradients(x, t)
    d3 = c3.backward(_mse_grad(y3, t))
    d2 = c2.backward(d3[0])
    d1 = c1.backward(d2[0])
    want = list(d1[1:4]) + list(d2[1:4]) + list(d3[1:4])
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dx, d1[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("merge", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("seqs", [True, False])
def test_bidirectional(rng, merge, seqs):
    B, T, I = 5, 6, 3
    model = nn.Sequential([L.Bidirectional(L.GRU(4, return_sequences=seqs), merge_mode=merge,
                                           input_shape=(T, I))])
    model.compile(optimizer="sgd", loss="mse")
    ws = model.get_weights()
    assert len(ws) == 6 and ws[0].shape == (3, 12) and ws[3].shape == (3, 12)
    ws = [w + rng.uniform(-0.3, 0.3, w.shape).astype(np.float32) for w in ws]
    model.set_weights(ws)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    yf, cf = nn.ops.gru(x, *ws[:3], return_sequences=seqs, return_context=True)
    yb, cb = nn.ops.gru(x, *ws[3:], return_sequences=seqs, go_backwards=True, return_context=True)
    ybr = yb[:, ::-1] if seqs else yb
    ref = {"concat": lambda: np.concatenate([yf, ybr], -1), "sum": lambda: yf + ybr,
           "mul": lambda: yf * ybr, "ave": lambda: 0.5 * (yf + ybr)}[merge]()
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.layers[0](x), ref, rtol=1e-5, atol=1e-6)
    assert model.output_shape[1:] == ref.shape[1:]
    # gradients through the merge
    t = rng.standard_normal(ref.shape).astype(np.float32)
    _, grads, dx = model._gradients(x, t)
    d = _mse_grad(ref, t)
    if merge == "concat":
        df, db = d[..., :4], d[..., 4:]
    elif merge == "mul":
        df, db = d * ybr, d * yf
    elif merge == "ave":
        df = db = 0.5 * d
    else:
        df = db = d
    if seqs:
        db = db[:, ::-1]
    gf, gb = cf.backward(df), cb.backward(db)
    for g, w in zip(grads, list(gf[1:4]) + list(gb[1:4])):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dx, gf[0] + gb[0], rtol=1e-4, atol=1e-6)


def test_keras_weights_load_unchanged(rng):
    """Weights in Keras's layout and order give Keras's cell maths (float64 reference)."""
    from reference_rnn import rnn_ref
    T, I, H = 5, 3, 4
    model = nn.Sequential([L.LSTM(H, return_sequences=True, input_shape=(T, I))])
    W = rng.uniform(-0.5, 0.5, (I, 4 * H)).astype(np.float32)
    U = rng.uniform(-0.5, 0.5, (H, 4 * H)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (4 * H,)).astype(np.float32)
    model.set_weights([W, U, b])
    x = rng.standard_normal((2, T, I)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), rnn_ref("lstm", x, W, U, b)[0],
                               rtol=1e-5, atol=2e-6)
    for a, e in zip(model.get_weights(), [W, U, b]):
        np.testing.assert_array_equal(a, e)


def test_training_threads_bitwise(force_threads):
    x, y, _ = seq_task(96, T=10, F=5, seed=3)

    def train():
        model = nn.Sequential([L.LSTM(16, return_sequences=True, input_shape=(10, 5)),
                               L.Bidirectional(L.GRU(8)), L.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.set_weights([np.full(w.shape, 0.05, np.float32) * np.cos(np.arange(w.size)).reshape(w.shape)
                           for w in model.get_weights()])
        model.fit(x, y, epochs=2, batch_size=48, shuffle=False, verbose=0)
        return model.get_weights() + [model.predict(x, verbose=0)]

    for a, b in zip(run_threads(train, 1), run_threads(train, 2)):
        np.testing.assert_array_equal(a, b)


def test_dropout_training_only(rng):
    x, y, _ = seq_task(64, T=8, F=4, seed=4)
    model = nn.Sequential([L.LSTM(8, dropout=0.3, recurrent_dropout=0.3, seed=1, input_shape=(8, 4)),
                           L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    p1 = model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, model.predict(x, verbose=0))  # no dropout at inference
    nodrop = nn.Sequential([L.LSTM(8, input_shape=(8, 4)), L.Dense(1, activation="sigmoid")])
    nodrop.compile(optimizer="sgd", loss="binary_crossentropy")
    nodrop.set_weights(model.get_weights())
    np.testing.assert_allclose(p1, nodrop.predict(x, verbose=0), rtol=1e-6)
    _, g1, _ = model._gradients(x, y)
    _, g2, _ = nodrop._gradients(x, y)
    assert not np.allclose(g1[1], g2[1])  # masks changed the training gradient
    h = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(h.history["loss"]))


def test_eager_call_states_and_return_state(rng):
    layer = L.LSTM(4, return_sequences=True, return_state=True)
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    h0 = rng.standard_normal((3, 4)).astype(np.float32)
    c0 = rng.standard_normal((3, 4)).astype(np.float32)
    y, h, c = layer(x, initial_state=[h0, c0])
    assert y.shape == (3, 5, 4) and h.shape == (3, 4) and c.shape == (3, 4)
    np.testing.assert_array_equal(y[:, -1], h)
    y2, *_ = layer(x)
    assert not np.allclose(y2, y)
    with pytest.raises(ValueError, match="return_state"):
        nn.Sequential([L.LSTM(4, return_state=True, input_shape=(5, 2))]).build()


def test_layer_config_and_bad_arguments():
    lay = L.GRU(7, reset_after=False, go_backwards=True, dropout=0.1)
    cfg = lay.get_config()
    assert cfg["units"] == 7 and cfg["reset_after"] is False and cfg["go_backwards"] is True
    assert cfg["recurrent_initializer"] == "orthogonal" and cfg["activation"] == "tanh"
    again = L.GRU.from_config(cfg)
    assert again.get_config() == {**cfg, "name": again.name}
    bd = L.Bidirectional(L.LSTM(3), merge_mode="sum")
    assert L.Bidirectional.from_config(bd.get_config()).merge_mode == "sum"
    with pytest.raises(ValueError, match="units"):
        L.LSTM(0)
    with pytest.raises(ValueError, match="dropout"):
        L.LSTM(3, dropout=1.0)
    with pytest.raises(ValueError, match="activation"):
        L.LSTM(3, activation="softmax")
    with pytest.raises(ValueError, match="merge_mode"):
        L.Bidirectional(L.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="merge_mode=None returns two tensors"):
        nn.Sequential([L.Bidirectional(L.LSTM(3), merge_mode=None, input_shape=(4, 2))]).build()
    # called directly, merge_mode=None gives both directions (backward re-aligned to input order)
    bn = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None)
    x = np.random.default_rng(0).standard_normal((2, 4, 2)).astype(np.float32)
    yf, yb = bn(x)
    ws = bn.get_weights()
    np.testing.assert_allclose(yf, nn.ops.gru(x, *ws[:3], return_sequences=True), rtol=1e-6)
    np.testing.assert_allclose(yb, nn.ops.gru(x, *ws[3:], return_sequences=True,
                                              go_backwards=True)[:, ::-1], rtol=1e-6)
    with pytest.raises(TypeError):
        L.SimpleRNN(3, recurrent_activation="sigmoid")
    with pytest.raises(ValueError, match="timesteps, features"):
        nn.Sequential([L.LSTM(4, input_shape=(5,))]).build()
    model = nn.Sequential([L.LSTM(4, input_shape=(5, 2))])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError):
        model.predict(np.zeros((3, 5, 3), np.float32), verbose=0)
    with pytest.raises(ValueError):
        model.predict(np.zeros((3, 0, 2), np.float32), verbose=0)
