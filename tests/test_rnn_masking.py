"""Keras masking through the recurrent kernels and the engine: nn.ops.* with mask= against the
float64 reference (Keras 3's masked loop) and its central differences, masked batches against
the same sequences run unpadded (nncore and torch), all ISAs, 1 vs 2 threads bitwise, time
chunks, and the layers: Masking, Embedding(mask_zero=True), stacked and Bidirectional RNNs."""
import warnings

import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K
from conftest import run_threads
from test_rnn import CELLS, CELL_IDS, _fd_grads, call, make_weights, ref

L = nn.layers


def step_mask(rng, B, T):
    """Right padding of random lengths, plus holes, a leading masked step and an empty row."""
    lens = rng.integers(1, T + 1, B)
    m = np.arange(T)[None, :] < lens[:, None]
    m &= rng.random((B, T)) > 0.2
    m[0, 0] = False
    if B > 2:
        m[2] = False
    return m


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("back", [False, True])
@pytest.mark.parametrize("zero_out", [False, True])
def test_forward_matches_reference(isa, rng, cell, back, zero_out):
    kind, G, ra = cell
    B, T, I, H = 7, 9, 4, 11
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    n = 2 if kind == "lstm" else 1
    states = [(rng.standard_normal((B, H)) * 0.5).astype(np.float32) for _ in range(n)]
    m = step_mask(rng, B, T)
    y, *st = call(kind, x, W, U, b, ra, initial_state=states, return_sequences=True,
                  return_state=True, go_backwards=back, mask=m, zero_output_for_mask=zero_out)
    ys, hT, cT = ref(kind, x, W, U, b, ra, h0=states[0], c0=states[1] if n == 2 else None,
                     go_backwards=back, mask=m, zero_output=zero_out)
    np.testing.assert_allclose(y, ys, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(st[0], hT, rtol=1e-5, atol=2e-6)
    np.testing.assert_array_equal(st[0][2], states[0][2])  # an all-masked row keeps h0
    if n == 2:
        np.testing.assert_allclose(st[1], cT, rtol=1e-5, atol=2e-6)
    last = call(kind, x, W, U, b, ra, initial_state=states, go_backwards=back, mask=m,
                zero_output_for_mask=zero_out)
    np.testing.assert_allclose(last, ys[:, -1], rtol=1e-5, atol=2e-6)
    assert not np.any(last[2])  # Keras: no real step, so the output is zeros (not h0)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("variant", ["seq", "last_backwards", "seq_zero_output_no_state"])
def test_gradients_finite_differences(isa, rng, cell, variant):
    kind, G, ra = cell
    B, T, I, H = 4, 5, 3, 4
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    n = 2 if kind == "lstm" else 1
    states = [(rng.standard_normal((B, H)) * 0.5).astype(np.float32) for _ in range(n)]
    m = step_mask(rng, B, T)
    m[:, 2] = False  # a step with no real row: skipped outright
    seq = variant != "last_backwards"
    no_state = variant.endswith("no_state")
    if no_state:
        states = [np.zeros((B, H), np.float32) for _ in range(n)]
    kw = dict(mask=m, go_backwards=variant == "last_backwards",
              zero_output="zero_output" in variant)
    ckw = dict(mask=m, go_backwards=kw["go_backwards"], zero_output_for_mask=kw["zero_output"])
    out, ctx = call(kind, x, W, U, b, ra, initial_state=None if no_state else states,
                    return_sequences=seq, return_state=True, return_context=True, **ckw)
    R = rng.standard_normal(out[0].shape)
    Rs = [rng.standard_normal((B, H)) for _ in range(n)]
    dx, dW, dU, db, dst = ctx.backward(R, Rs)
    fd = _fd_grads(kind, ra, x, W, U, b, states, R, Rs, kw)
    for name, a, e in zip(["x", "W", "U", "b", "h0", "c0"][:4 + n], [dx, dW, dU, db] + dst, fd):
        np.testing.assert_allclose(a, e, rtol=2e-3, atol=2e-4, err_msg=name)
    # masked steps get no input gradient
    assert not np.any(dx[~m])


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_padded_equals_unpadded(rng, cell):
    """Right-padded sequences with their mask give each sequence's unpadded result, bitwise
    (GEMM rows do not depend on the other rows); backward: the same weight gradients as the
    sum over the unpadded sequences."""
    kind, G, ra = cell
    B, T, I, H = 6, 8, 3, 9
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    lens = np.array([8, 3, 1, 5, 8, 2])
    m = np.arange(T)[None, :] < lens[:, None]
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    R = rng.standard_normal((B, H)).astype(np.float32)
    y, ctx = call(kind, x, W, U, b, ra, mask=m, return_context=True)
    dx, dW, dU, db, _ = ctx.backward(R)
    sW, sU = np.zeros_like(dW, np.float64), np.zeros_like(dU, np.float64)
    for i in range(B):
        yi, ci = call(kind, x[i:i + 1, :lens[i]], W, U, b, ra, return_context=True)
        np.testing.assert_array_equal(y[i], yi[0])
        dxi, dWi, dUi, _, _ = ci.backward(R[i:i + 1])
        np.testing.assert_allclose(dx[i, :lens[i]], dxi[0], rtol=1e-5, atol=1e-6)
        sW += dWi
        sU += dUi
    np.testing.assert_allclose(dW, sW, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dU, sU, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("B", [5, 50])
@pytest.mark.parametrize("time_chunk", [0, 2])
def test_threads_bitwise(isa, force_threads, rng, cell, B, time_chunk):
    kind, G, ra = cell
    T, I, H = 7, 6, 19
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    R = rng.standard_normal((B, T, H)).astype(np.float32)
    m = step_mask(rng, B, T)
    m[:, -2:] = False     # steps where every row is masked (their products are skipped) ...
    m[:B // 2, 3:] = False  # ... and where only the first batch chunk's rows are

    def go():
        (y, *st), ctx = call(kind, x, W, U, b, ra, return_sequences=True, return_state=True,
                             return_context=True, mask=m)
        return [y, *st, *ctx.backward(R)[:4]]

    old = K.rnn_set_time_chunk(time_chunk)
    try:
        one = run_threads(go, 1)
        two = run_threads(go, 2)
    finally:
        K.rnn_set_time_chunk(old)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)
    # and crossing time chunks changes nothing but the summation grouping
    ys, hT, _ = ref(kind, x, W, U, b, ra, mask=m)
    np.testing.assert_allclose(one[0], ys, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(one[1], hT, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_torch_parity_unpadded(rng, kind):
    """A masked, right-padded batch against torch run on each sequence's real steps."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    from test_rnn import _to_keras, _torch_module
    B, T, I, H = 5, 9, 4, 6
    mod = _torch_module(torch, kind, I, H, rng)
    W, U, b, perm = _to_keras(kind, mod, H)
    lens = np.array([9, 4, 1, 7, 2])
    m = np.arange(T)[None, :] < lens[:, None]
    x = rng.standard_normal((B, T, I))
    R = rng.standard_normal((B, H))
    y, ctx = getattr(nn.ops, kind)(x, W, U, b, mask=m, return_context=True)
    dx, dW, dU, db, _ = ctx.backward(R)
    xt = torch.tensor(x, requires_grad=True)
    for i in range(B):
        out, _ = mod(xt[i:i + 1, :lens[i]])
        np.testing.assert_allclose(y[i], out[0, -1].detach().numpy(), rtol=1e-4, atol=3e-5)
        (out[0, -1] * torch.from_numpy(R[i])).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-3, atol=1e-4)  # 0 on padding
    np.testing.assert_allclose(dW, mod.weight_ih_l0.grad.numpy()[perm].T, rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(dU, mod.weight_hh_l0.grad.numpy()[perm].T, rtol=1e-3, atol=2e-4)
    gbi = mod.bias_ih_l0.grad.numpy()[perm]
    np.testing.assert_allclose(db[0] if kind == "gru" else db, gbi, rtol=1e-3, atol=2e-4)


def test_mask_argument_errors(rng):
    W, U, b = make_weights(rng, "lstm", 4, False, 3, 4)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"mask must have shape \[batch, timesteps\]"):
        nn.ops.lstm(x, W, U, b, mask=np.ones((2, 4), bool))
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        nn.ops.lstm(x, W, U, b, mask=np.array([["a"] * 5] * 2))
    with pytest.raises(ValueError, match="NaN"):
        nn.ops.lstm(x, W, U, b, mask=np.full((2, 5), np.nan))
    # integers and floats are accepted (nonzero = a real step)
    a = nn.ops.lstm(x, W, U, b, mask=np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]))
    c = nn.ops.lstm(x, W, U, b, mask=np.array([[1.0, 2.0, 0, 0, 0], [1, 1, 1, 1, 1]]))
    np.testing.assert_array_equal(a, c)


# ------------------------------------------------------------------------- layers and models

def padded_task(rng, n, T, F):
    """Sequences of random length, zero-padded at the end; the label depends on the real
    steps only (sign of the sum of the first feature)."""
    lens = rng.integers(2, T + 1, n)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    x[np.arange(T)[None, :] >= lens[:, None]] = 0.0
    y = (x[:, :, 0].sum(1) > 0).astype(np.float32)
    return x, y, lens


@pytest.mark.parametrize("rnn", ["lstm", "gru", "bidirectional"])
def test_masking_model_matches_eager_and_unpadded(rng, rnn):
    T, F = 10, 3
    x, _, lens = padded_task(rng, 24, T, F)
    first = {"lstm": lambda: L.LSTM(8, return_sequences=True),
             "gru": lambda: L.GRU(8, return_sequences=True),
             "bidirectional": lambda: L.Bidirectional(L.LSTM(8, return_sequences=True))}[rnn]()
    model = nn.Sequential([L.Masking(0.0, input_shape=(T, F)), first, L.SimpleRNN(5),
                           L.Dense(1)])
    p = model.predict(x, verbose=0)
    mask = np.any(x != 0, -1)
    h = model.layers[1](x, mask=mask)
    if rnn == "bidirectional":
        assert not np.any(h[~mask])  # Keras's Bidirectional zeroes masked steps of sequences
    h = model.layers[2](h, mask=mask)
    np.testing.assert_allclose(p, h @ model.layers[3].kernel + model.layers[3].bias,
                               rtol=1e-5, atol=1e-6)
    if rnn != "bidirectional":  # each sequence alone, without its padding, gives the same
        for i in (0, 5):
            layers = model.layers[1:]
            hi = x[i:i + 1, :lens[i]]
            for layer in layers[:-1]:
                hi = layer(hi)
            np.testing.assert_allclose(p[i], hi @ layers[-1].kernel[:, 0] + layers[-1].bias,
                                       rtol=1e-5, atol=1e-6)


def test_masking_model_learns_padded_task(rng):
    T, F = 12, 2
    x, y, _ = padded_task(rng, 1200, T, F)
    xv, yv, _ = padded_task(rng, 300, T, F)
    model = nn.Sequential([L.Masking(input_shape=(T, F)), L.LSTM(16, return_sequences=True),
                           L.LSTM(8), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nn.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=12, batch_size=32, validation_data=(xv, yv), verbose=0)
    assert hist.history["val_accuracy"][-1] > 0.9
    # input gradients through Masking: zero at masked steps, nonzero at the real ones
    dx = nn.explain.input_gradients(model, xv[:8]).reshape(8, T, F)
    mask = np.any(xv[:8] != 0, -1)
    assert not np.any(dx[~mask]) and np.all(np.any(dx[mask] != 0, -1))


def test_embedding_mask_zero_model(rng):
    T, V = 9, 20
    lens = rng.integers(1, T + 1, 40)
    idx = rng.integers(1, V, (40, T)).astype(np.float32)
    idx[np.arange(T)[None, :] >= lens[:, None]] = 0
    model = nn.Sequential([L.Embedding(V, 6, mask_zero=True, input_shape=(T,)), L.GRU(7),
                           L.Dense(1)])
    p = model.predict(idx, verbose=0)
    emb = model.layers[0].embeddings[idx.astype(int)]
    h = model.layers[1](emb, mask=idx != 0)
    np.testing.assert_allclose(p, h @ model.layers[2].kernel + model.layers[2].bias,
                               rtol=1e-5, atol=1e-6)
    # trains, and index 0 rows get no gradient (padding never moves the model)
    model.compile(optimizer="sgd", loss="mse")
    before = model.layers[0].embeddings[0].copy()
    model.fit(idx, rng.standard_normal((40, 1)).astype(np.float32), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[0].embeddings[0], before)


def test_mask_threads_bitwise_model(rng):
    T, F = 8, 3
    x, y, _ = padded_task(rng, 96, T, F)

    def go():
        model = nn.Sequential([L.Masking(input_shape=(T, F)),
                               L.Bidirectional(L.GRU(8, return_sequences=True)), L.LSTM(6),
                               L.Dense(1, activation="sigmoid")])
        model.set_weights([np.asarray(w) * 0 + np.random.default_rng(i).uniform(-.3, .3, w.shape)
                           for i, w in enumerate(model.get_weights())])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, epochs=1, batch_size=48, shuffle=False, verbose=0)
        return model.get_weights() + [model.predict(x, verbose=0)]

    for a, c in zip(run_threads(go, 1), run_threads(go, 2)):
        np.testing.assert_array_equal(a, c)


def test_mask_wiring_errors_and_warnings(rng, tmp_path):
    T, F = 6, 2
    with pytest.raises(ValueError, match="reaches the model's output"):
        nn.Sequential([L.Masking(input_shape=(T, F)), L.LSTM(4, return_sequences=True)]).build()
    with pytest.warns(UserWarning, match="does not support masking"):
        nn.Sequential([L.Masking(input_shape=(T, F)), L.Conv1D(3, 2), L.LSTM(4)]).build()
    with pytest.raises(ValueError, match="timesteps, features"):
        nn.Sequential([L.Masking(input_shape=(F,)), L.Dense(1)]).build()
    with pytest.raises(TypeError, match="mask_value"):
        L.Masking("x")
    with pytest.raises(ValueError, match="finite"):
        L.Masking(float("nan"))
    # the mask passes elementwise layers; a model file keeps Masking and mask_zero
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = nn.Sequential([L.Masking(-1.0, input_shape=(T, F)), L.Dropout(0.1),
                               L.LayerNormalization(), L.GRU(4), L.Dense(1)])
        model.build()
    x = rng.standard_normal((5, T, F)).astype(np.float32)
    x[:, 4:] = -1.0
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.nnc")
    back = nn.models.load_model(tmp_path / "m.nnc")
    assert back.layers[0].mask_value == -1.0
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    e = nn.Sequential([L.Embedding(9, 3, mask_zero=True, input_shape=(T,)), L.LSTM(2)])
    assert nn.Sequential.from_config(e.get_config()).layers[0].mask_zero
