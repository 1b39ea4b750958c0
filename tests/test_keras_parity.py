"""Keras 3 (torch backend) as an optional peer: the same functional model has the same layer
order, weight order and shapes, parameter counts, and predictions for the same weights.
Skipped cleanly where Keras is not installed."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras not installed (optional peer)")
if keras.backend.backend() != "torch":  # pragma: no cover
    pytest.skip("keras is not on the torch backend", allow_module_level=True)

import nncore as nn  # noqa: E402


def _build(lib, L):
    cat = lib.Input(shape=(1,), name="cat")
    num = lib.Input(shape=(6,), name="num")
    seq = lib.Input(shape=(5, 3), name="seq")
    e = L.Flatten(name="flat_e")(L.Embedding(7, 3, name="emb")(cat))
    shared = L.Dense(6, activation="tanh", name="shared")
    r = L.add([shared(num), num], name="res")                                 # residual through a shared layer
    r = shared(r)
    t = L.Dense(4, name="dense_seq")(seq)                         # Dense on rank 3
    t = L.Flatten(name="flat_t")(L.Permute((2, 1), name="perm")(t))
    h = L.concatenate([e, r, t], name="cat_all")
    h = L.Dense(8, activation="relu", name="h")(h)
    d = L.Dot(axes=1, normalize=True, name="cos")([h, L.Dense(8, name="proj")(h)])
    p = L.Dense(1, activation="sigmoid", name="p")(L.concatenate([h, d], name="cat_d"))
    q = L.Dense(2, activation="softmax", name="q")(L.multiply([h, L.Dense(8, name="gate")(h)], name="mul"))
    return lib.Model([cat, num, seq], [p, q], name="parity")


def test_same_structure_weights_and_predictions():
    km = _build(keras, keras.layers)
    nm = _build(nn, nn.layers)
    assert [l.name for l in nm.layers] == [l.name for l in km.layers]
    kw = km.get_weights()
    assert [w.shape for w in nm.get_weights()] == [w.shape for w in kw]
    assert nm.count_params() == km.count_params()
    nm.set_weights(kw)
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 7, (9, 1)).astype(np.float32), rng.standard_normal((9, 6)).astype(np.float32),
         rng.standard_normal((9, 5, 3)).astype(np.float32)]
    kp = km.predict(x, verbose=0)
    npred = nm.predict(x)
    for a, b in zip(npred, kp):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-5)
