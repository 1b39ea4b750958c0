"""Keras stateful=True for LSTM/GRU/SimpleRNN/Bidirectional: a model's batches continue each
other (against nn.ops with the states carried by hand), states/reset_states, a task that only
carried states can solve, 1 vs 2 threads bitwise, batch-size errors before anything runs,
eager calls, model files and ONNX."""
import numpy as np
import pytest

import nncore as nn
from conftest import run_threads

L = nn.layers
B, T, F = 4, 5, 3


def stateful_model(kind, bidirectional=False):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
    first = cls(6, stateful=True, return_sequences=True)
    if bidirectional:
        first = L.Bidirectional(first, merge_mode="sum")
    return nn.Sequential([nn.Input(batch_shape=(B, T, F)), first, cls(3, stateful=True),
                          L.Dense(1)])


def carried_reference(model, kind, x, bidirectional):
    """The model's outputs with each layer's states carried from batch to batch by hand."""
    op = getattr(nn.ops, kind)
    first, second, dense = model.layers
    n_st = 2 if kind == "lstm" else 1
    states = {"f": None, "b": None, "2": None}
    out = []
    for k in range(x.shape[0] // B):
        xb = x[k * B:(k + 1) * B]
        if bidirectional:
            fl, bl = first.forward_layer, first.backward_layer
            yf, *states["f"] = op(xb, *fl.get_weights(), initial_state=states["f"],
                                  return_sequences=True, return_state=True)
            yb, *states["b"] = op(xb, *bl.get_weights(), initial_state=states["b"],
                                  return_sequences=True, return_state=True, go_backwards=True)
            y = yf + yb[:, ::-1]
        else:
            y, *states["f"] = op(xb, *first.get_weights(), initial_state=states["f"],
                                 return_sequences=True, return_state=True)
        z, *states["2"] = op(y, *second.get_weights(), initial_state=states["2"],
                             return_state=True)
        out.append(z @ dense.kernel + dense.bias)
        assert len(states["2"]) == n_st
    return np.concatenate(out), states


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_batches_continue_each_other(rng, kind, bidirectional):
    model = stateful_model(kind, bidirectional)
    x = rng.standard_normal((3 * B, T, F)).astype(np.float32)
    p = model.predict(x, verbose=0)
    ref, states = carried_reference(model, kind, x, bidirectional)
    np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.layers[0].states, states["f"] + (
        states["b"] if bidirectional else []), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.layers[1].states, states["2"], rtol=1e-5, atol=1e-6)
    # the same batch again continues from there: a different answer until the states are reset
    again = model.predict(x[:B], verbose=0)
    assert not np.allclose(again, p[:B])
    model.reset_states()
    assert all(not np.any(s) for layer in model.layers[:2] for s in layer.states)
    np.testing.assert_array_equal(model.predict(x[:B], verbose=0), p[:B])
    model.layers[1].reset_states()  # one layer alone
    assert not np.any(model.layers[1].states[0]) and np.any(model.layers[0].states[0])


def test_carried_state_task_is_learned(rng):
    """Each sequence comes in two halves, in consecutive batches; the label, asked at both
    halves, is the sign of the first half's sum. Only a stateful model can answer at the second
    half, whose input is noise."""
    n, Tc = 512, 6

    def data(n):
        first = rng.standard_normal((n, Tc, 1)).astype(np.float32)
        second = rng.standard_normal((n, Tc, 1)).astype(np.float32)
        y = (first.sum((1, 2)) > 0).astype(np.float32)
        x, t = [], []
        for k in range(0, n, 32):  # batch k: first halves, batch k+1: their second halves
            x += [first[k:k + 32], second[k:k + 32]]
            t += [y[k:k + 32], y[k:k + 32]]
        return np.concatenate(x), np.concatenate(t)[:, None]

    x, y = data(n)
    xv, yv = data(256)

    def second_half_accuracy(model):
        hits = []
        for k in range(0, xv.shape[0], 64):  # each pair of batches from fresh states
            if model.layers[0].stateful:
                model.reset_states()
            p = model.predict(xv[k:k + 64], batch_size=32, verbose=0)
            hits.append((p[32:] > 0.5) == (yv[k + 32:k + 64] > 0.5))
        return float(np.mean(hits))

    accs = {}
    for stateful in (True, False):
        nn.utils.set_random_seed(7)
        model = nn.Sequential([nn.Input(batch_shape=(32, Tc, 1)),
                               L.LSTM(16, stateful=stateful), L.Dense(1, activation="sigmoid")])
        model.compile(optimizer=nn.optimizers.Adam(0.01), loss="binary_crossentropy")
        reset = nn.callbacks.LambdaCallback(
            on_train_batch_end=lambda b, logs, m=model: m.reset_states() if b % 2 else None)
        model.fit(x, y, batch_size=32, epochs=15, shuffle=False, verbose=0,
                  callbacks=[reset] if stateful else [])
        accs[stateful] = second_half_accuracy(model)
    assert accs[True] > 0.85, accs
    assert accs[False] < 0.7, accs


def test_threads_bitwise(rng):
    x = rng.standard_normal((8 * B, T, F)).astype(np.float32)
    y = rng.standard_normal((8 * B, 1)).astype(np.float32)

    def go():
        model = stateful_model("lstm", bidirectional=True)
        model.set_weights([np.random.default_rng(i).uniform(-.3, .3, w.shape)
                           for i, w in enumerate(model.get_weights())])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0)
        return model.get_weights() + model.layers[1].states + [model.predict(x, verbose=0)]

    for a, c in zip(run_threads(go, 1), run_threads(go, 2)):
        np.testing.assert_array_equal(a, c)


def test_batch_size_errors_lose_nothing(rng):
    model = stateful_model("gru")
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((2 * B, T, F)).astype(np.float32)
    y = np.zeros((2 * B, 1), np.float32)
    model.predict(x, verbose=0)
    before = [s.copy() for s in model.layers[0].states]
    weights = model.get_weights()
    for call, match in [
            (lambda: model.predict(x[:B + 1], verbose=0), "multiple of 4; got 5"),
            (lambda: model.predict(x, batch_size=2, verbose=0), "got batch_size=2"),
            (lambda: model.fit(x[:6], y[:6], verbose=0), "multiple of 4"),
            (lambda: model.fit(x, y, validation_data=(x[:3], y[:3]), verbose=0),
             "validation data"),
            (lambda: model.evaluate(x[:3], y[:3], verbose=0), "evaluate"),
            (lambda: model.train_on_batch(x[:3], y[:3]), "train_on_batch"),
            (lambda: model.predict_on_batch(x[:2]), "batches of 4")]:
        with pytest.raises(ValueError, match=match):
            call()
    np.testing.assert_array_equal(model.layers[0].states[0], before[0])
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    # fit defaults to the stateful batch size
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="fixed batch size"):
        nn.Sequential([L.LSTM(3, stateful=True, input_shape=(T, F))]).build()
    with pytest.raises(AttributeError, match="must be stateful"):
        L.LSTM(3).reset_states()
    assert L.GRU(2).states is None


def test_keras2_batch_input_shape_eager_and_files(rng, tmp_path):
    layer = L.SimpleRNN(4, stateful=True, batch_input_shape=(B, T, F))
    model = nn.Sequential([layer, L.Dense(2)])
    x = rng.standard_normal((2 * B, T, F)).astype(np.float32)
    p = model.predict(x, verbose=0)
    # eager calls of the same layer carry their own states the same way
    eager = L.SimpleRNN(4, stateful=True)
    y1 = eager(x[:B])
    eager.set_weights(layer.get_weights())
    eager.reset_states()
    y1, y2 = eager(x[:B]), eager(x[B:])
    d = model.layers[1]
    np.testing.assert_allclose(np.concatenate([y1, y2]) @ d.kernel + d.bias, p, rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="stateful with a batch of 4"):
        eager(x[:3])
    # model files keep stateful and the batch size
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "s.nnc")
    back = nn.models.load_model(tmp_path / "s.nnc")
    assert back.layers[0].stateful and back._batch_size == B
    np.testing.assert_allclose(back.predict(x, verbose=0), p, rtol=1e-6, atol=1e-7)


def test_onnx_refuses_stateful():
    pytest.importorskip("onnx", reason="onnx not installed")
    model = nn.Sequential([L.GRU(4, stateful=True, batch_input_shape=(B, T, F)), L.Dense(1)])
    with pytest.raises(ValueError, match="stateful=True cannot be exported"):
        nn.onnx.to_onnx(model)
