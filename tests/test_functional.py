"""The functional API (nn.Input, nn.Model, merge layers, shared layers, nested models, several
inputs and outputs) on the one C graph engine: forward and gradients against float64 NumPy
references, finite differences and PyTorch; Sequential equivalence; the training contract;
config and file round trips; bad graphs."""
import numpy as np
import pytest

import nncore as nn
from conftest import run_threads

L = nn.layers


def _np_merge(kind, xs, **kw):
    """Independent float64 forward of each merge."""
    if kind == "add":
        return sum(xs)
    if kind == "subtract":
        return xs[0] - xs[1]
    if kind == "multiply":
        out = xs[0].copy()
        for x in xs[1:]:
            out = out * x
        return out
    if kind == "average":
        return sum(xs) / len(xs)
    if kind == "maximum":
        return np.maximum.reduce(xs)
    if kind == "minimum":
        return np.minimum.reduce(xs)
    if kind == "concatenate":
        return np.concatenate(xs, axis=kw.get("axis", -1))
    if kind == "dot":
        a, b = xs
        if kw.get("normalize"):
            a = a / np.sqrt(np.maximum((a ** 2).sum(-1, keepdims=True), 1e-12))
            b = b / np.sqrt(np.maximum((b ** 2).sum(-1, keepdims=True), 1e-12))
        return (a * b).sum(-1, keepdims=True)
    raise KeyError(kind)


MERGES = [("add", 3, {}), ("subtract", 2, {}), ("multiply", 3, {}), ("average", 2, {}),
          ("maximum", 3, {}), ("minimum", 2, {}), ("concatenate", 3, {}), ("dot", 2, {}),
          ("dot", 2, {"normalize": True})]


def _merge_model(kind, n_in, kw, shape=(7,)):
    ins = [nn.Input(shape=shape, name=f"in{i}") for i in range(n_in)]
    fn = getattr(L, kind)
    y = fn(ins, axes=-1, **kw) if kind == "dot" else fn(ins, **kw)
    m = nn.Model(ins, y)
    m.compile("sgd", "mse")
    return m


@pytest.mark.parametrize("kind,n_in,kw", MERGES)
@pytest.mark.parametrize("rows", [1, 5, 33])
def test_merge_forward_and_input_gradients(isa, kind, n_in, kw, rows, rng):
    """Forward equals the float64 reference; dx of every input equals central differences of
    that reference (loss = mean squared error against a target)."""
    m = _merge_model(kind, n_in, kw)
    xs = [rng.standard_normal((rows, 7)).astype(np.float32) for _ in range(n_in)]
    ref = _np_merge(kind, [x.astype(np.float64) for x in xs], **kw)
    np.testing.assert_allclose(m.predict(xs), ref, rtol=1e-4, atol=1e-5)
    t = rng.standard_normal(ref.shape).astype(np.float32)
    loss, _, dx = m._gradients(xs, t)
    f = lambda zs: ((_np_merge(kind, zs, **kw) - t) ** 2).mean()  # noqa: E731
    x64 = [x.astype(np.float64) for x in xs]
    assert loss == pytest.approx(f(x64), rel=1e-4, abs=1e-6)
    eps = 1e-5
    for i in range(n_in):
        num = np.empty_like(x64[i])
        for j in range(x64[i].size):
            zp = [z.copy() for z in x64]
            zm = [z.copy() for z in x64]
            zp[i].reshape(-1)[j] += eps
            zm[i].reshape(-1)[j] -= eps
            num.reshape(-1)[j] = (f(zp) - f(zm)) / (2 * eps)
        np.testing.assert_allclose(dx[i], num, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kind,n_in,kw", MERGES)
def test_merge_matches_torch(kind, n_in, kw, rng):
    torch = pytest.importorskip("torch")
    m = _merge_model(kind, n_in, kw)
    xs = [rng.standard_normal((6, 7)).astype(np.float32) for _ in range(n_in)]
    tx = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    if kind == "concatenate":
        ty = torch.cat(tx, -1)
    elif kind == "dot":
        a, b = tx
        if kw.get("normalize"):
            a, b = torch.nn.functional.normalize(a, dim=-1, eps=1e-6), torch.nn.functional.normalize(b, dim=-1, eps=1e-6)
        ty = (a * b).sum(-1, keepdim=True)
    else:
        ops = {"add": lambda t: sum(t), "subtract": lambda t: t[0] - t[1],
               "multiply": lambda t: t[0] * t[1] * t[2], "average": lambda t: (t[0] + t[1]) / 2,
               "maximum": lambda t: torch.maximum(torch.maximum(t[0], t[1]), t[2]),
               "minimum": lambda t: torch.minimum(t[0], t[1])}
        ty = ops[kind](tx)
    t = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    tl = ((ty - torch.tensor(t, dtype=torch.float64)) ** 2).mean()
    tl.backward()
    np.testing.assert_allclose(m.predict(xs), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    loss, _, dx = m._gradients(xs, t)
    assert loss == pytest.approx(tl.item(), rel=1e-4)
    for d, tt in zip(dx, tx):
        np.testing.assert_allclose(d, tt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_concatenate_inner_axis_and_dot_rank2(rng):
    a, b = nn.Input(shape=(3, 4)), nn.Input(shape=(2, 4))
    c = L.Concatenate(axis=1)([a, b])
    assert c.shape == (None, 5, 4)
    p, q = nn.Input(shape=(3, 4)), nn.Input(shape=(5, 4))
    d = L.Dot(axes=(2, 2))([p, q])
    assert d.shape == (None, 3, 5)
    m = nn.Model([a, b, p, q], [c, d])
    xs = [rng.standard_normal((2,) + s).astype(np.float32) for s in ((3, 4), (2, 4), (3, 4), (5, 4))]
    yc, yd = m.predict(xs)
    np.testing.assert_allclose(yc, np.concatenate(xs[:2], axis=1), rtol=1e-6)
    np.testing.assert_allclose(yd, np.einsum("bik,bjk->bij", xs[2], xs[3]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(L.Dot(axes=(2, 2))(xs[2:]), yd, rtol=1e-5, atol=1e-6)


def _weights_fd(model, x, y, n_per=4, eps=1e-2, seed=0):
    loss, grads, _ = model._gradients(x, y)
    w = model.get_weights()
    r = np.random.default_rng(seed)
    for wi in range(len(w)):
        for j in r.choice(w[wi].size, size=min(n_per, w[wi].size), replace=False):
            vals = []
            for s in (1, -1):
                w2 = [a.copy() for a in w]
                w2[wi].reshape(-1)[j] += s * eps
                model.set_weights(w2)
                vals.append(model._gradients(x, y)[0])
            model.set_weights(w)
            num = (vals[0] - vals[1]) / (2 * eps)
            assert abs(num - grads[wi].reshape(-1)[j]) < 2e-3 + 2e-2 * abs(num), (wi, j, num)


def test_shared_layer_and_residual_gradients(isa, rng):
    """One Dense called twice (its gradient is the sum over both calls) inside a residual
    block: weight and input gradients against finite differences; sharing holds one copy."""
    x = nn.Input(shape=(6,))
    d = L.Dense(6, activation="tanh")
    h = L.add([d(x), x])
    y = L.Dense(2)(d(h))
    m = nn.Model(x, y)
    m.compile("sgd", "mse")
    assert len(m.get_weights()) == 4  # d's kernel and bias once
    X = rng.standard_normal((9, 6)).astype(np.float32)
    Y = rng.standard_normal((9, 2)).astype(np.float32)
    _weights_fd(m, X, Y)
    w = m.get_weights()
    ref = np.tanh(X @ w[0] + w[1]) + X
    ref = np.tanh(ref @ w[0] + w[1]) @ w[2] + w[3]
    np.testing.assert_allclose(m.predict(X), ref, rtol=1e-4, atol=1e-5)


def test_shared_layer_matches_torch(rng):
    torch = pytest.importorskip("torch")
    a, b = nn.Input(shape=(5,)), nn.Input(shape=(5,))
    enc = L.Dense(4, activation="relu")
    out = L.Dense(1)(L.concatenate([enc(a), enc(b)]))
    m = nn.Model([a, b], out)
    m.compile("sgd", "mse")
    xs = [rng.standard_normal((8, 5)).astype(np.float32) for _ in range(2)]
    t = rng.standard_normal((8, 1)).astype(np.float32)
    k, kb, k2, k2b = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in m.get_weights()]
    ta, tb = (torch.tensor(x, dtype=torch.float64) for x in xs)
    ty = torch.cat([torch.relu(ta @ k + kb), torch.relu(tb @ k + kb)], -1) @ k2 + k2b
    ((ty - torch.tensor(t, dtype=torch.float64)) ** 2).mean().backward()
    _, grads, _ = m._gradients(xs, t)
    for g, tw in zip(grads, (k, kb, k2, k2b)):
        np.testing.assert_allclose(g, tw.grad.numpy(), rtol=1e-4, atol=1e-5)


def _mlp_pair(seed=0):
    seq = nn.Sequential([L.Dense(16, activation="relu", input_shape=(10,)), L.Dense(8, activation="relu"),
                         L.Dense(1, activation="sigmoid")])
    x = nn.Input(shape=(10,))
    h = L.Dense(16, activation="relu")(x)
    h = L.Dense(8, activation="relu")(h)
    fun = nn.Model(x, L.Dense(1, activation="sigmoid")(h))
    fun.set_weights(seq.get_weights())
    for m in (seq, fun):
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return seq, fun


def test_functional_mlp_trains_bitwise_like_sequential(rng):
    seq, fun = _mlp_pair()
    X = rng.standard_normal((300, 10)).astype(np.float32)
    Y = (X[:, 0] > 0).astype(np.float32)
    nn.utils.set_random_seed(3)
    h1 = seq.fit(X, Y, epochs=3, batch_size=32, verbose=0, validation_split=0.2)
    nn.utils.set_random_seed(3)
    h2 = fun.fit(X, Y, epochs=3, batch_size=32, verbose=0, validation_split=0.2)
    assert h1.history == h2.history
    for a, b in zip(seq.get_weights(), fun.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert fun._engine.num_buffers == seq._engine.num_buffers == 2  # a chain ping-pongs two


def _two_output_model():
    cat = nn.Input(shape=(1,), name="cat")
    num = nn.Input(shape=(4,), name="num")
    e = L.Flatten()(L.Embedding(6, 3, name="emb")(cat))
    h = L.Dense(12, activation="relu", name="h")(L.concatenate([e, num]))
    p = L.Dense(1, activation="sigmoid", name="p")(h)
    amt = L.Dense(1, name="amt")(h)
    return nn.Model(inputs={"cat": cat, "num": num}, outputs={"p": p, "amt": amt}, name="two")


def _two_output_data(rng, n=256):
    xc = rng.integers(0, 6, (n, 1)).astype(np.float32)
    xn = rng.standard_normal((n, 4)).astype(np.float32)
    yp = ((xc[:, 0] >= 3) == (xn[:, 0] > 0)).astype(np.float32)
    ya = (xn[:, 1:2] * 0.5).astype(np.float32)
    return {"cat": xc, "num": xn}, {"p": yp, "amt": ya}


def test_multi_output_training_contract(rng):
    m = _two_output_model()
    m.compile("adam", loss={"p": "binary_crossentropy", "amt": "mse"}, loss_weights={"p": 1.0, "amt": 0.5},
              metrics={"p": ["accuracy"]})
    x, y = _two_output_data(rng)
    h = m.fit(x, y, epochs=8, batch_size=32, verbose=0, validation_data=(x, y))
    assert set(h.history) == {"loss", "p_loss", "amt_loss", "p_accuracy", "val_loss", "val_p_loss",
                              "val_amt_loss", "val_p_accuracy"}
    ev = m.evaluate(x, y, verbose=0, return_dict=True)
    assert ev["loss"] == pytest.approx(ev["p_loss"] + 0.5 * ev["amt_loss"], rel=1e-6)
    assert h.history["p_loss"][-1] < h.history["p_loss"][0]
    pred = m.predict(x)
    assert set(pred) == {"p", "amt"} and pred["p"].shape == (256, 1)
    # losses by hand from the predictions
    p = np.clip(pred["p"][:, 0].astype(np.float64), 1e-7, 1 - 1e-7)
    bce = -np.mean(y["p"] * np.log(p) + (1 - y["p"]) * np.log(1 - p))
    assert ev["p_loss"] == pytest.approx(bce, rel=1e-4)
    assert ev["amt_loss"] == pytest.approx(np.mean((pred["amt"] - y["amt"]) ** 2), rel=1e-4)
    # lists in model order work the same as dicts
    ev2 = m.evaluate([x["cat"], x["num"]], [y["p"], y["amt"]], verbose=0, return_dict=True)
    assert ev2 == ev
    logs = m.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "p_loss", "amt_loss", "p_accuracy"}


def test_output_without_loss_and_sample_weight_per_output(rng):
    m = _two_output_model()
    m.compile("sgd", loss={"p": "binary_crossentropy"})
    x, y = _two_output_data(rng, 64)
    before = m.get_layer("amt").get_weights()
    m.fit(x, {"p": y["p"]}, epochs=1, verbose=0)
    for a, b in zip(before, m.get_layer("amt").get_weights()):
        np.testing.assert_array_equal(a, b)  # no loss reaches it: no update
    m2 = _two_output_model()
    m2.compile("sgd", loss=["binary_crossentropy", "mse"])
    sw = np.zeros(64, np.float32)
    sw[:32] = 1
    l_half = m2.evaluate(x, y, sample_weight={"p": sw, "amt": sw}, verbose=0, return_dict=True)
    xs = {k: v[:32] for k, v in x.items()}
    ys = {k: v[:32] for k, v in y.items()}
    l_first = m2.evaluate(xs, ys, verbose=0, return_dict=True)
    assert l_half["p_loss"] == pytest.approx(l_first["p_loss"] / 2, rel=1e-5)


def test_training_threads_bitwise(rng):
    x, y = _two_output_data(rng)

    def train():
        nn.utils.set_random_seed(1)
        m = _two_output_model()
        m.compile("adam", loss=["binary_crossentropy", "mse"])
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return m.get_weights()

    for a, b in zip(run_threads(train, 1), run_threads(train, 2)):
        np.testing.assert_array_equal(a, b)


def test_submodel_and_nested_model_share_weights(rng):
    x = nn.Input(shape=(5,))
    h1 = L.Dense(8, activation="relu", name="h1")(x)
    h2 = L.Dense(4, activation="relu", name="h2")(h1)
    model = nn.Model(x, L.Dense(1, name="out")(h2))
    model.compile("adam", "mse")
    feat = nn.Model(model.input, model.get_layer("h2").output)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    Y = rng.standard_normal((64, 1)).astype(np.float32)
    f0 = feat.predict(X)
    model.fit(X, Y, epochs=2, verbose=0)
    f1 = feat.predict(X)
    assert not np.allclose(f0, f1)  # the sub-model sees the trained weights
    w = model.get_weights()
    np.testing.assert_allclose(f1, np.maximum(np.maximum(X @ w[0] + w[1], 0) @ w[2] + w[3], 0), rtol=1e-4, atol=1e-5)
    # a model (and a Sequential) used as a layer inside another
    head = nn.Sequential([L.Dense(3, activation="relu"), L.Dense(1)])
    a, b = nn.Input(shape=(5,)), nn.Input(shape=(5,))
    outer = nn.Model([a, b], head(L.concatenate([feat(a), feat(b)])))
    outer.compile("sgd", "mse")
    assert len(outer.get_weights()) == 4 + 4
    XA, XB = X, X[::-1].copy()
    ref = np.maximum(np.concatenate([feat.predict(XA), feat.predict(XB)], -1) @ head.get_weights()[0]
                     + head.get_weights()[1], 0) @ head.get_weights()[2] + head.get_weights()[3]
    np.testing.assert_allclose(outer.predict([XA, XB]), ref, rtol=1e-4, atol=1e-5)
    outer.fit([XA, XB], Y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_layer("h1").get_weights()[0], outer.get_weights()[0])


def test_wiring_layers(rng):
    x = nn.Input(shape=(4,))
    r = L.RepeatVector(3)(x)                       # (3, 4)
    p = L.Permute((2, 1))(r)                        # (4, 3)
    t = L.TimeDistributed(L.Dense(2))(p)            # (4, 2)
    d = L.Dense(5, activation="tanh")(r)           # Dense on rank 3: last axis
    m = nn.Model(x, [t, d])
    m.compile("sgd", ["mse", "mse"])
    X = rng.standard_normal((3, 4)).astype(np.float32)
    yt, yd = m.predict(X)
    kt, bt, kd, bd = m.get_weights()
    rep = np.repeat(X[:, None, :], 3, axis=1)
    np.testing.assert_allclose(yt, rep.transpose(0, 2, 1) @ kt + bt, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(yd, np.tanh(rep @ kd + bd), rtol=1e-5, atol=1e-6)
    _weights_fd(m, X, [rng.standard_normal(yt.shape).astype(np.float32),
                       rng.standard_normal(yd.shape).astype(np.float32)])


def test_config_and_file_round_trip(tmp_path, rng):
    m = _two_output_model()
    m.compile("adam", loss={"p": "binary_crossentropy", "amt": "huber"}, loss_weights=[1.0, 0.3],
              metrics={"p": ["accuracy", "auc"]})
    x, y = _two_output_data(rng, 64)
    m.fit(x, y, epochs=2, verbose=0)
    m.save(tmp_path / "two.nnc")
    m2 = nn.models.load_model(tmp_path / "two.nnc")
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert m2.evaluate(x, y, verbose=0, return_dict=True) == m.evaluate(x, y, verbose=0, return_dict=True)
    m.fit(x, y, epochs=1, verbose=0, shuffle=False)
    m2.fit(x, y, epochs=1, verbose=0, shuffle=False)  # optimizer state came along
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    # shared layer + nested model through get_config/from_config
    inner = nn.Sequential([L.Dense(3, activation="relu", input_shape=(4,))], name="inner")
    a, b = nn.Input(shape=(4,), name="a"), nn.Input(shape=(4,), name="b")
    shared = L.Dense(4, name="shared")
    out = L.Dense(1, name="o")(L.concatenate([inner(shared(a)), inner(shared(b))]))
    g = nn.Model([a, b], out)
    g2 = nn.Model.from_config(g.get_config())
    g2.set_weights(g.get_weights())
    xs = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(2)]
    np.testing.assert_array_equal(g.predict(xs), g2.predict(xs))
    g.save_weights(tmp_path / "g.w")
    g2.load_weights(tmp_path / "g.w")
    assert [l.name for l in g2.layers] == [l.name for l in g.layers]


def test_bad_graphs_are_clear_errors():
    a, b = nn.Input(shape=(3,), name="a"), nn.Input(shape=(4,), name="b")
    with pytest.raises(ValueError, match="same shape.*'a'.*'b'"):
        L.Add()([a, b])
    with pytest.raises(ValueError, match="concatenation axis"):
        L.Concatenate(axis=-1)([nn.Input(shape=(2, 3)), nn.Input(shape=(3, 3))])
    y = L.Dense(2)(a)
    with pytest.raises(ValueError, match="not in the model's inputs"):
        nn.Model(b, y)
    with pytest.raises(ValueError, match="reaches no output"):
        nn.Model([a, b], y)
    with pytest.raises(TypeError, match="symbolic tensors"):
        nn.Model(a, np.zeros(3))
    with pytest.raises(ValueError, match="takes a list"):
        L.Add()(a)
    d = L.Dense(2, name="dd")
    d(a)
    with pytest.raises(ValueError, match="holds a kernel for 3"):
        d(b)
    m = nn.Model([a, b], L.concatenate([L.Dense(2, name="x1")(a), L.Dense(2, name="x2")(b)]))
    m.compile("sgd", "mse")
    X = [np.zeros((4, 3), np.float32), np.zeros((4, 4), np.float32)]
    w0 = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match="2 inputs"):
        m.fit(X[:1], np.zeros((4, 4)), verbose=0)
    with pytest.raises(ValueError, match="name no input"):
        m.fit({"a": X[0], "zz": X[1]}, np.zeros((4, 4)), verbose=0)
    with pytest.raises(ValueError, match=r"x\['b'\] has shape"):
        m.fit({"a": X[0], "b": X[0]}, np.zeros((4, 4)), verbose=0)
    with pytest.raises(ValueError, match="name no output"):
        m.compile("sgd", loss={"nope": "mse"})
    with pytest.raises(ValueError, match="2 entries but the model has 1"):
        m.compile("sgd", loss=["mse", "mse"])
    for w, v in zip(w0, m.get_weights()):
        np.testing.assert_array_equal(w, v)  # nothing changed
    with pytest.raises(ValueError, match="unique"):
        c = nn.Input(shape=(3,))
        nn.Model(c, L.Dense(1, name="u")(L.Dense(3, name="u")(c)))
    with pytest.raises(ValueError, match="can never run"):
        cfg = m.get_config()
        cfg["layers"][-1]["inbound_nodes"][0]["args"][0] = ["x1", 5, 0]
        nn.Model.from_config(cfg)


def test_dataframes_per_input_and_callbacks(rng):
    pd = pytest.importorskip("pandas")
    m = _two_output_model()
    m.compile("adam", loss={"p": "binary_crossentropy", "amt": "mse"}, metrics={"p": ["auc"]})
    x, y = _two_output_data(rng, 128)
    xdf = {"cat": pd.DataFrame(x["cat"], columns=["c"]), "num": pd.DataFrame(x["num"])}
    stop = nn.callbacks.EarlyStopping(monitor="val_p_auc", mode="max", patience=1, restore_best_weights=True)
    h = m.fit(xdf, {"p": pd.Series(y["p"]), "amt": y["amt"]}, epochs=30, verbose=0,
              validation_split=0.25, callbacks=[stop])
    assert "val_p_auc" in h.history and len(h.epoch) <= 30
    np.testing.assert_array_equal(m.predict(xdf)["p"], m.predict(x)["p"])


def test_models_on_one_arena_see_each_others_training(rng):
    """A Sequential nested in a functional model and trained on its own, then the functional
    model: each sees the other's updates (packed weight copies are refreshed), in both orders."""
    head = nn.Sequential([L.Dense(2, input_shape=(3,))])
    a = nn.Input(shape=(3,))
    outer = nn.Model(a, L.Activation("tanh")(head(a)))
    X = rng.standard_normal((16, 3)).astype(np.float32)
    for m in (outer, head):
        m.compile("sgd", "mse")
    outer.fit(X, np.zeros((16, 2)), verbose=0)
    head.fit(X, np.ones((16, 2)), verbose=0)
    np.testing.assert_allclose(outer.predict(X), np.tanh(head.predict(X)), rtol=1e-5, atol=1e-6)
    outer.train_on_batch(X, np.zeros((16, 2)))
    w = head.get_weights()
    np.testing.assert_allclose(head.predict(X), X @ w[0] + w[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head.predict(X[:1]), X[:1] @ w[0] + w[1], rtol=1e-5, atol=1e-6)
