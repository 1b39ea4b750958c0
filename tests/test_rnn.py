"""Recurrent kernels through nn.ops: forward vs a float64 step-by-step reference, gradients vs
central differences of that reference (through time), all ISAs, 1 vs 2 threads bitwise,
parity with torch.nn.LSTM/GRU/RNN, bad inputs."""
import numpy as np
import pytest

import nncore as nn
from nncore import _kernels as K
from reference_rnn import rnn_ref
from conftest import run_threads

# (kind, gates, reset_after)
CELLS = [("lstm", 4, False), ("gru", 3, True), ("gru", 3, False), ("simple_rnn", 1, False)]
CELL_IDS = ["lstm", "gru", "gru_reset_before", "simple_rnn"]


def make_weights(rng, kind, G, reset_after, I, H, use_bias=True, scale=0.5):
    W = rng.uniform(-scale, scale, (I, G * H)).astype(np.float32)
    U = rng.uniform(-scale, scale, (H, G * H)).astype(np.float32)
    b = None
    if use_bias:
        shape = (2, G * H) if (kind == "gru" and reset_after) else (G * H,)
        b = rng.uniform(-scale, scale, shape).astype(np.float32)
    return W, U, b


def call(kind, x, W, U, b, reset_after=True, **kw):
    f = getattr(nn.ops, kind)
    if kind == "gru":
        kw["reset_after"] = reset_after
    return f(x, W, U, b, **kw)


def ref(kind, x, W, U, b, reset_after=True, **kw):
    return rnn_ref(kind, x, W, U, b, reset_after=reset_after, **kw)


# ------------------------------------------------------------------------- forward

@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("B,T,I,H", [(1, 1, 1, 1), (3, 5, 4, 7), (25, 4, 3, 17), (50, 3, 9, 33)])
def test_forward_matches_reference(isa, rng, cell, B, T, I, H):
    kind, G, ra = cell
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    n_states = 2 if kind == "lstm" else 1
    h0 = [rng.standard_normal((B, H)).astype(np.float32) * 0.5 for _ in range(n_states)]
    out = call(kind, x, W, U, b, ra, initial_state=h0, return_sequences=True, return_state=True)
    ys, hT, cT = ref(kind, x, W, U, b, ra, h0=h0[0], c0=h0[1] if kind == "lstm" else None)
    np.testing.assert_allclose(out[0], ys, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(out[1], hT, rtol=1e-4, atol=2e-5)
    if kind == "lstm":
        np.testing.assert_allclose(out[2], cT, rtol=1e-4, atol=2e-5)
    # last output only equals the last step of the sequence
    last = call(kind, x, W, U, b, ra, initial_state=h0)
    np.testing.assert_array_equal(last, out[0][:, -1])


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("act,ract", [("relu", "hard_sigmoid"), ("linear", "tanh"),
                                      ("sigmoid", "relu")])
def test_forward_activations_go_backwards_no_bias(rng, cell, act, ract):
    kind, G, ra = cell
    B, T, I, H = 4, 6, 3, 5
    W, U, _ = make_weights(rng, kind, G, ra, I, H, scale=0.3)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    kw = dict(activation=act, go_backwards=True, return_sequences=True)
    if kind != "simple_rnn":
        kw["recurrent_activation"] = ract
    y = call(kind, x, W, U, None, ra, **kw)
    ys, _, _ = ref(kind, x, W, U, None, ra, go_backwards=True, activation=act,
                   recurrent_activation=ract)
    np.testing.assert_allclose(y, ys, rtol=1e-4, atol=2e-5)


def test_kernel_activations_accuracy(isa):
    x = np.linspace(-40, 40, 20001).astype(np.float32)
    t = K.rnn_activation(3, x.copy())
    s = K.rnn_activation(2, x.copy())
    x64 = x.astype(np.float64)
    assert np.abs(t - np.tanh(x64)).max() < 3e-7
    assert np.abs(s - 1 / (1 + np.exp(-x64))).max() < 3e-7
    assert t[0] == -1.0 and t[-1] == 1.0 and s[0] >= 0.0 and s[-1] == 1.0


# ------------------------------------------------------------------------- gradients

def _fd_grads(kind, ra, x, W, U, b, states, R, Rs, kw, eps=1e-6):
    """Central differences of L = sum(y*R) + sum(state_k * Rs_k) on the float64 reference."""
    x, W, U = (np.array(a, np.float64) for a in (x, W, U))
    b = None if b is None else np.array(b, np.float64)
    states = [np.array(s, np.float64) for s in states]

    def loss():
        ys, hT, cT = ref(kind, x, W, U, b, ra, h0=states[0],
                         c0=states[1] if kind == "lstm" else None, **kw)
        y = ys if R.ndim == 3 else ys[:, -1]
        L = np.sum(y * R) + np.sum(hT * Rs[0])
        if kind == "lstm":
            L += np.sum(cT * Rs[1])
        return L

    grads = []
    for arr in [x, W, U] + ([b] if b is not None else []) + states:
        g = np.zeros_like(arr)
        flat, gf = arr.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            lp = loss()
            flat[i] = old - eps
            lm = loss()
            flat[i] = old
            gf[i] = (lp - lm) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("variant", ["seq", "last_backwards", "masks_acts", "masks_no_state"])
def test_gradients_finite_differences(isa, rng, cell, variant):
    kind, G, ra = cell
    B, T, I, H = 3, 4, 3, 5
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    n = 2 if kind == "lstm" else 1
    states = [(rng.standard_normal((B, H)) * 0.5).astype(np.float32) for _ in range(n)]
    kw, ckw = {}, {}
    seq = variant != "last_backwards"
    if variant == "last_backwards":
        kw["go_backwards"] = ckw["go_backwards"] = True
    if variant == "masks_no_state":  # no initial state: step 0's recurrent products are skipped
        states = [np.zeros((B, H), np.float32) for _ in range(n)]
    if variant.startswith("masks"):
        im = (rng.random((B, I)) > 0.3).astype(np.float32) / 0.7
        rm = (rng.random((B, H)) > 0.3).astype(np.float32) / 0.7
        kw.update(imask=im, rmask=rm, activation="sigmoid")
        ckw.update(dropout_mask=im, recurrent_dropout_mask=rm, activation="sigmoid")
        if kind != "simple_rnn":
            kw["recurrent_activation"] = ckw["recurrent_activation"] = "hard_sigmoid"
    out, ctx = call(kind, x, W, U, b, ra, initial_state=None if variant == "masks_no_state" else states,
                    return_sequences=seq, return_state=True, return_context=True, **ckw)
    R = rng.standard_normal(out[0].shape)
    Rs = [rng.standard_normal((B, H)) for _ in range(n)]
    dx, dW, dU, db, dst = ctx.backward(R, Rs)
    fd = _fd_grads(kind, ra, x, W, U, b, states, R, Rs, kw)
    ours = [dx, dW, dU, db] + dst
    for name, a, e in zip(["x", "W", "U", "b"] + ["h0", "c0"][:n], ours, fd):
        np.testing.assert_allclose(a, e, rtol=2e-3, atol=2e-4, err_msg=name)
    # module-level backward gives the same
    again = getattr(nn.ops, f"{kind}_backward")(ctx, R, Rs)
    np.testing.assert_array_equal(again[0], dx)


# ------------------------------------------------------------------------- threads

@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("B", [5, 32, 50])
def test_threads_bitwise(isa, force_threads, rng, cell, B):
    kind, G, ra = cell
    T, I, H = 6, 7, 19
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    R = rng.standard_normal((B, T, H)).astype(np.float32)

    def go():
        (y, *st), ctx = call(kind, x, W, U, b, ra, return_sequences=True, return_state=True,
                             return_context=True)
        dx, dW, dU, db, dst = ctx.backward(R)
        return [y, *st, dx, dW, dU, db, *dst]

    one = run_threads(go, 1)
    two = run_threads(go, 2)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)


@pytest.fixture
def time_chunk(request):
    """Forces the recurrent kernels' time chunk (steps) so that short sequences cross chunks."""
    old = K.rnn_set_time_chunk(request.param)
    yield request.param
    K.rnn_set_time_chunk(old)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("time_chunk", [1, 3], indirect=True)
@pytest.mark.parametrize("no_state", [False, True])
def test_time_chunks_gradients(isa, rng, cell, time_chunk, no_state):
    """Chunked projection / weight gradients (chunk boundaries inside the sequence, a short last
    chunk, go_backwards and masks) against central differences and the unchunked result. With
    no initial state and one-step chunks, the first chunk's dU product has no rows (K = 0)."""
    kind, G, ra = cell
    B, T, I, H = 3, 7, 3, 5
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    n = 2 if kind == "lstm" else 1
    states = [(rng.standard_normal((B, H)) * 0.5 * (not no_state)).astype(np.float32)
              for _ in range(n)]
    init = None if no_state else states
    im = (rng.random((B, I)) > 0.3).astype(np.float32) / 0.7
    rm = (rng.random((B, H)) > 0.3).astype(np.float32) / 0.7
    out, ctx = call(kind, x, W, U, b, ra, initial_state=init, return_sequences=True,
                    return_state=True, return_context=True, go_backwards=True,
                    dropout_mask=im, recurrent_dropout_mask=rm)
    R = rng.standard_normal(out[0].shape)
    Rs = [rng.standard_normal((B, H)) for _ in range(n)]
    ours = list(ctx.backward(R, Rs))
    ours = ours[:4] + ours[4]
    fd = _fd_grads(kind, ra, x, W, U, b, states, R, Rs,
                   dict(go_backwards=True, imask=im, rmask=rm))
    for name, a, e in zip(["x", "W", "U", "b"] + ["h0", "c0"][:n], ours, fd):
        np.testing.assert_allclose(a, e, rtol=2e-3, atol=2e-4, err_msg=name)
    old = K.rnn_set_time_chunk(0)
    try:
        out2, ctx2 = call(kind, x, W, U, b, ra, initial_state=init, return_sequences=True,
                          return_state=True, return_context=True, go_backwards=True,
                          dropout_mask=im, recurrent_dropout_mask=rm)
        whole = list(ctx2.backward(R, Rs))
    finally:
        K.rnn_set_time_chunk(old)
    for a, c in zip(out, out2):  # the forward's per-row arithmetic does not depend on chunking
        np.testing.assert_array_equal(a, c)
    for a, c in zip(ours, whole[:4] + whole[4]):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("time_chunk", [2], indirect=True)
@pytest.mark.parametrize("I,H", [(7, 19), (60, 17)])  # dU split by columns; dU and dW split
def test_time_chunks_threads_bitwise(isa, force_threads, rng, cell, time_chunk, I, H):
    kind, G, ra = cell
    B, T = 32, 5
    W, U, b = make_weights(rng, kind, G, ra, I, H)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    R = rng.standard_normal((B, T, H)).astype(np.float32)

    def go():
        (y, *st), ctx = call(kind, x, W, U, b, ra, return_sequences=True, return_state=True,
                             return_context=True)
        dx, dW, dU, db, dst = ctx.backward(R)
        return [y, *st, dx, dW, dU, db, *dst]

    one = run_threads(go, 1)
    two = run_threads(go, 2)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)
    # the batch-split path (two batch chunks, weight-gradient tasks side by side, dU split by
    # columns) against per-sample runs (one row: the unsplit path): dW, dU, db are the sums
    y = one[0]
    nst = 2 if kind == "lstm" else 1
    dx, dW, dU, db = one[1 + nst:5 + nst]
    acc = [np.zeros_like(a, dtype=np.float64) for a in (dW, dU, db)]
    for i in range(B):
        (yi, *_), ci = call(kind, x[i:i + 1], W, U, b, ra, return_sequences=True,
                            return_state=True, return_context=True)
        dxi, dWi, dUi, dbi, _ = ci.backward(R[i:i + 1])
        np.testing.assert_allclose(yi[0], y[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dxi[0], dx[i], rtol=1e-4, atol=1e-5)
        for s_, g in zip(acc, (dWi, dUi, dbi)):
            s_ += g
    for name, a, e in zip("WUb", (dW, dU, db), acc):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4, err_msg=name)


# ------------------------------------------------------------------------- torch parity

def _torch_module(torch, kind, I, H, rng):
    m = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[kind]
    mod = m(I, H, batch_first=True).double()
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.4, 0.4, tuple(p.shape))))
    return mod


def _to_keras(kind, mod, H):
    """torch weights -> Keras (kernel, recurrent_kernel, bias) and the column permutation."""
    wih = mod.weight_ih_l0.detach().numpy()
    whh = mod.weight_hh_l0.detach().numpy()
    bih = mod.bias_ih_l0.detach().numpy()
    bhh = mod.bias_hh_l0.detach().numpy()
    if kind == "gru":  # torch r, z, n -> Keras z, r, h
        perm = np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])
        return wih[perm].T, whh[perm].T, np.stack([bih[perm], bhh[perm]]), perm
    perm = np.arange(wih.shape[0])  # LSTM i, f, g, o == Keras i, f, c, o
    return wih.T, whh.T, bih + bhh, perm


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_torch_parity(rng, kind):
    torch = pytest.importorskip("torch")
    B, T, I, H = 32, 7, 8, 21
    mod = _torch_module(torch, kind, I, H, rng)
    Wk, Uk, bk, perm = _to_keras(kind, mod, H)
    x = rng.standard_normal((B, T, I))
    h0 = rng.standard_normal((B, H)) * 0.5
    c0 = rng.standard_normal((B, H)) * 0.5
    init = [h0, c0] if kind == "lstm" else [h0]
    xt = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s[None], requires_grad=True) for s in init]
    yt, st = mod(xt, tuple(ts) if kind == "lstm" else ts[0])
    R = rng.standard_normal((B, T, H))
    (yt * torch.from_numpy(R)).sum().backward()

    (y, hT, *_), ctx = getattr(nn.ops, kind)(x, Wk, Uk, bk, initial_state=init,
                                             return_sequences=True, return_state=True,
                                             return_context=True)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=3e-5)
    dx, dW, dU, db, dst = ctx.backward(R)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(dW, mod.weight_ih_l0.grad.numpy()[perm].T, rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(dU, mod.weight_hh_l0.grad.numpy()[perm].T, rtol=1e-3, atol=2e-4)
    gbi = mod.bias_ih_l0.grad.numpy()[perm]
    gbh = mod.bias_hh_l0.grad.numpy()[perm]
    if kind == "gru":
        np.testing.assert_allclose(db, np.stack([gbi, gbh]), rtol=1e-3, atol=2e-4)
    else:
        np.testing.assert_allclose(db, gbi, rtol=1e-3, atol=2e-4)  # == gbh
    for a, t in zip(dst, ts):
        np.testing.assert_allclose(a, t.grad.numpy()[0], rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------------- inputs

def test_conversions_and_noncontiguous(rng):
    W, U, b = make_weights(rng, "lstm", 4, False, 3, 4)
    x = rng.standard_normal((5, 6, 3))  # float64
    xn = np.asfortranarray(x)
    xr = x.copy()
    xr.flags.writeable = False
    y0 = nn.ops.lstm(x.astype(np.float32), W, U, b)
    for xx in (x, xn, xr, x.tolist()):
        np.testing.assert_array_equal(nn.ops.lstm(xx, W.astype(np.float64), U.T.T, b), y0)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_bad_inputs(rng, kind):
    G = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    W, U, b = make_weights(rng, kind, G, True, 3, 4)
    f = getattr(nn.ops, kind)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="3-D"):
        f(x[0], W, U, b)
    with pytest.raises(ValueError, match="zero timesteps"):
        f(x[:, :0], W, U, b)
    with pytest.raises(ValueError, match="4 features but the kernel expects 3"):
        f(rng.standard_normal((2, 5, 4)), W, U, b)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        f(x, W, U[:, :-1], b)
    with pytest.raises(ValueError, match="bias"):
        f(x, W, U, np.zeros(7))
    with pytest.raises(ValueError, match="activation"):
        f(x, W, U, b, activation="softmax")
    with pytest.raises(ValueError, match="initial h"):
        f(x, W, U, b, initial_state=[np.zeros((3, 4))] * (2 if kind == "lstm" else 1))
    with pytest.raises(ValueError, match="initial state"):
        f(x, W, U, b, initial_state=[np.zeros((2, 4))] * 3)
    xbad = x.copy()
    xbad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f(xbad, W, U, b)
    with pytest.raises(TypeError):
        f("abc", W, U, b)
    y, ctx = f(x, W, U, b, return_context=True)
    with pytest.raises(ValueError, match="dy"):
        ctx.backward(np.zeros((2, 5, 4)))
    other = "gru" if kind != "gru" else "lstm"
    with pytest.raises(ValueError, match="context"):
        getattr(nn.ops, f"{other}_backward")(ctx, np.zeros((2, 4)))
