"""Keras model files in and out (nncore/keras_format.py).

The files in tests/keras_files/ were written by Keras 3 itself (tests/keras_files/make_keras_files.py),
with Keras's predictions beside them, so reading is tested where Keras is absent. Where Keras is
installed (a test peer, torch backend), files nncore writes are opened by Keras and compared.
"""
import io
import json
import os
import shutil
import warnings
import zipfile

import numpy as np
import pytest

import nncore as nn

h5py = pytest.importorskip("h5py", reason="h5py (pip install 'nncore[keras]') reads Keras files")

HERE = os.path.join(os.path.dirname(__file__), "keras_files")
FIXTURES = ["mlp", "cnn", "lstm_stack", "gru", "bidirectional", "sequence_misc", "batchnorm",
            "embedding", "two_input", "residual", "nested", "keras2_mlp"]


def _data(name):
    d = np.load(os.path.join(HERE, f"{name}.npz"))
    xs = [d[k] for k in sorted(d) if k.startswith("x")]
    ys = [d[k] for k in sorted(d) if k.startswith("y")]
    return (xs if len(xs) > 1 else xs[0]), ys


def _as_list(p):
    if isinstance(p, dict):
        return list(p.values())
    return list(p) if isinstance(p, list) else [p]


def _files(name):
    return [f"{name}.{ext}" for ext in ("keras", "h5") if os.path.exists(os.path.join(HERE, f"{name}.{ext}"))]


@pytest.mark.parametrize("fname", [f for n in FIXTURES for f in _files(n)])
def test_keras_written_file_predicts_as_keras(fname):
    name = fname.rsplit(".", 1)[0]
    x, ys = _data(name)
    model = nn.models.load_model(os.path.join(HERE, fname))
    out = _as_list(model.predict(x, verbose=0))
    assert len(out) == len(ys)
    for o, y in zip(out, ys):
        np.testing.assert_allclose(o, y, atol=1e-5, rtol=0)


def test_compile_config_is_restored():
    m = nn.models.load_model(os.path.join(HERE, "mlp.keras"))
    assert m._compiled and isinstance(m.optimizer, nn.optimizers.Adam)
    assert m.optimizer.learning_rate == pytest.approx(1e-3)
    assert type(m._losses[0]).__name__ == "BinaryCrossentropy"
    assert m._metric_lists == [["accuracy", "auc"]]
    assert m.optimizer.iterations == 6  # Keras's optimizer state came along (2 epochs x 3 steps)
    assert isinstance(m.layers[2].kernel_regularizer, nn.regularizers.L2)
    m = nn.models.load_model(os.path.join(HERE, "lstm_stack.h5"))
    assert isinstance(m.optimizer, nn.optimizers.RMSprop)
    m = nn.models.load_model(os.path.join(HERE, "keras2_mlp.h5"))
    assert isinstance(m.optimizer, nn.optimizers.Adam) and m._metric_lists == [["categorical_accuracy"]]
    m = nn.models.load_model(os.path.join(HERE, "two_input.keras"))
    assert m._loss_weights == [1.0, 0.5]
    assert not nn.models.load_model(os.path.join(HERE, "mlp.keras"), compile=False)._compiled


def test_reader_is_chosen_by_content_not_suffix(tmp_path):
    shutil.copy(os.path.join(HERE, "mlp.keras"), tmp_path / "model.h5")
    shutil.copy(os.path.join(HERE, "mlp.h5"), tmp_path / "model.keras")
    x, ys = _data("mlp")
    for p in ("model.h5", "model.keras"):
        np.testing.assert_allclose(nn.models.load_model(tmp_path / p).predict(x, verbose=0), ys[0], atol=1e-5)
    m = nn.models.load_model(os.path.join(HERE, "mlp.keras"))
    m.save(tmp_path / "own.keras")  # nncore's own format stays the default, whatever the suffix
    assert open(tmp_path / "own.keras", "rb").read(6) == b"NNCORE"
    np.testing.assert_array_equal(nn.models.load_model(tmp_path / "own.keras").predict(x), m.predict(x))


def test_loaded_model_trains_on():
    m = nn.models.load_model(os.path.join(HERE, "residual.keras"))
    x, _ = _data("residual")
    y = np.zeros((len(x), 1), np.float32)
    before = m.evaluate(x, y, verbose=0)
    m.fit(x, y, epochs=5, verbose=0)
    assert m.evaluate(x, y, verbose=0) < before


# ---- refused: code, custom objects, what nncore does not compute --------------------------------
def _edited(tmp_path, name, edit, weights_edit=None):
    """A copy of tests/keras_files/<name>.keras with its config (and weights file) edited."""
    src = zipfile.ZipFile(os.path.join(HERE, f"{name}.keras"))
    cfg = json.loads(src.read("config.json"))
    edit(cfg)
    weights = src.read("model.weights.h5")
    if weights_edit is not None:
        buf = io.BytesIO(weights)
        with h5py.File(buf, "a") as f:
            weights_edit(f)
        weights = buf.getvalue()
    out = tmp_path / f"edited_{name}.keras"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("metadata.json", src.read("metadata.json"))
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", weights)
    return out


def _dense_cfg(cfg, i=1):
    return cfg["config"]["layers"][i]["config"]


def test_lambda_layer_is_refused():
    with pytest.raises(ValueError, match="Lambda layer, which holds Python code"):
        nn.models.load_model(os.path.join(HERE, "lambda.keras"))


@pytest.mark.parametrize("edit,match", [
    (lambda c: c["config"]["layers"][1].update(module="my_package.layers"), "comes from module 'my_package.layers'"),
    (lambda c: c["config"]["layers"][1].update(registered_name="MyPackage>Dense"), "custom object 'MyPackage>Dense'"),
    (lambda c: c["config"]["layers"][1].update(class_name="Conv3D"), "nncore has no Conv3D layer"),
    (lambda c: _dense_cfg(c).update(kernel_constraint={"module": "keras.constraints", "class_name": "NonNeg",
                                                       "config": {}}), "constraints are not supported"),
    (lambda c: _dense_cfg(c).update(lora_rank=4), "lora_rank=4 is not supported"),
    (lambda c: _dense_cfg(c).update(brand_new_argument=1), "brand_new_argument=1 is not supported"),
    (lambda c: _dense_cfg(c).update(dtype="float16"), "dtype 'float16' is not supported"),
    (lambda c: _dense_cfg(c).update(activation={"module": "my.acts", "class_name": "mish2", "config": {}}),
     "custom object|comes from module"),
    (lambda c: _dense_cfg(c).update(kernel_initializer={"module": "keras.initializers", "class_name": "STFT",
                                                        "config": {}}), "initializer"),
    (lambda c: _dense_cfg(c).update(units={"class_name": "__lambda__", "config": {"code": "x"}}), "__lambda__"),
    (lambda c: c["compile_config"]["optimizer"].update(class_name="Lion", registered_name="Lion"), "optimizer 'Lion'"),
    (lambda c: c["compile_config"].update(loss="cosine_similarity"), "compile config does not apply|loss"),
])
def test_unsupported_config_is_refused_by_name(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        nn.models.load_model(_edited(tmp_path, "mlp", edit))


def test_refused_batch_norm_renorm_and_keras2_hard_sigmoid(tmp_path):
    def renorm(c):
        c["config"]["layers"][2]["config"]["renorm"] = True
    with pytest.raises(ValueError, match="renorm=True is not supported"):
        nn.models.load_model(_edited(tmp_path, "batchnorm", renorm))
    path = tmp_path / "k2.h5"
    shutil.copy(os.path.join(HERE, "keras2_mlp.h5"), path)
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"relu"', '"hard_sigmoid"')
    with pytest.raises(ValueError, match="Keras 2's hard_sigmoid"):
        nn.models.load_model(path)


def test_inert_keras_only_arguments_are_accepted(tmp_path):
    def edit(c):
        _dense_cfg(c).update(lora_rank=None, quantization_config=None, kernel_constraint=None)
    m = nn.models.load_model(_edited(tmp_path, "mlp", edit))
    x, ys = _data("mlp")
    np.testing.assert_allclose(m.predict(x), ys[0], atol=1e-5)


# ---- tampered and truncated files ---------------------------------------------------------------
def _set(f, path, data):
    del f[path]
    f.create_dataset(path, data=data)


@pytest.mark.parametrize("weights_edit,match", [
    (lambda f: _set(f, "layers/dense/vars/0", np.zeros((40, 16), np.float32)), r"has shape \(40, 16\), the model's config implies \(30, 16\)"),
    (lambda f: f.__delitem__("layers/dense/vars/1"), "the file holds 1|more than the file's weight arrays hold"),
    (lambda f: f.create_dataset("layers/dense/vars/2", data=np.zeros(3, np.float32)), "has 2 weights, the file holds 3"),
    (lambda f: _set(f, "layers/dense/vars/1", np.full(16, np.nan, np.float32)), "NaN or infinity"),
    (lambda f: _set(f, "layers/dense/vars/1", np.array(["a"] * 16, dtype="S1")), "dtype"),
    (lambda f: f.create_dataset("layers/conv2d/vars/0", data=np.zeros(3, np.float32)), "no layer of the config has"),
    (lambda f: f.__delitem__("layers/dense_2"), "the file holds 0|more than the file's weight arrays hold"),
])
def test_tampered_weights_are_refused(tmp_path, weights_edit, match):
    with pytest.raises(ValueError, match=match):
        nn.models.load_model(_edited(tmp_path, "mlp", lambda c: None, weights_edit))


def test_config_that_allocates_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    def edit(c):
        _dense_cfg(c)["units"] = 2 ** 40  # 30 x 2^40 floats: refused before any allocation
    with pytest.raises(ValueError, match="more than the file's weight arrays hold"):
        nn.models.load_model(_edited(tmp_path, "mlp", edit))


def test_broken_graph_configs_are_refused(tmp_path):
    def cycle(c):
        layers = c["config"]["layers"]
        a = layers[2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"]
        a[0] = layers[3]["name"]  # dense_1 reads dense_2, which reads dense_1
    with pytest.raises(ValueError, match="can never run"):
        nn.models.load_model(_edited(tmp_path, "residual", cycle))

    def unknown(c):
        c["config"]["output_layers"] = ["nowhere", 0, 0]
    with pytest.raises(ValueError, match="unknown layer 'nowhere'"):
        nn.models.load_model(_edited(tmp_path, "residual", unknown))

    def kwargs(c):
        c["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = {"initial_state": [1]}
    with pytest.raises(ValueError, match="call arguments"):
        nn.models.load_model(_edited(tmp_path, "residual", kwargs))


def test_truncated_and_malformed_archives(tmp_path):
    raw = open(os.path.join(HERE, "mlp.keras"), "rb").read()
    for cut in (10, len(raw) // 3, len(raw) - 30):
        p = tmp_path / f"cut{cut}.keras"
        p.write_bytes(raw[:cut])
        with pytest.raises(ValueError):
            nn.models.load_model(p)
    raw_h5 = open(os.path.join(HERE, "mlp.h5"), "rb").read()
    for cut in (8, 600, len(raw_h5) // 2):
        p = tmp_path / f"cut{cut}.h5"
        p.write_bytes(raw_h5[:cut])
        with pytest.raises(ValueError):
            nn.models.load_model(p)
    p = tmp_path / "noconfig.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("model.weights.h5", b"")
    with pytest.raises(ValueError, match="no config.json"):
        nn.models.load_model(p)
    p = tmp_path / "badjson.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("model.weights.h5", b"")
    with pytest.raises(ValueError, match="not valid JSON"):
        nn.models.load_model(p)
    p = tmp_path / "notakeras.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="without a Keras model"):
        nn.models.load_model(p)
    p = tmp_path / "random.bin"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(200))
    with pytest.raises(ValueError):
        nn.models.load_model(p)


def test_zip_entries_are_size_checked_and_never_extracted(tmp_path, monkeypatch):
    from nncore import keras_format
    src = zipfile.ZipFile(os.path.join(HERE, "mlp.keras"))
    p = tmp_path / "traversal.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        z.writestr("../../escaped.txt", b"x" * 10)
        z.writestr("/abs/escaped.txt", b"x")
    m = nn.models.load_model(p)  # extra entries are never read, let alone written out
    assert m.predict(_data("mlp")[0]).shape == (8, 1)
    assert not (tmp_path.parent / "escaped.txt").exists() and not os.path.exists("/abs/escaped.txt")
    # a weights entry declaring more than the limit is refused before it is read (a zip bomb)
    monkeypatch.setattr(keras_format, "_MAX_WEIGHTS", 1000)
    with pytest.raises(ValueError, match="declares .* bytes, more than"):
        nn.models.load_model(p)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps({"class_name": "Sequential"}) + " " * 10_000_000)
        z.writestr("model.weights.h5", b"")
    monkeypatch.setattr(keras_format, "_MAX_JSON", 1 << 20)
    assert os.path.getsize(bomb) < 100_000
    with pytest.raises(ValueError, match="config.json declares"):
        nn.models.load_model(bomb)


# ---- writing: Keras opens what nncore writes ----------------------------------------------------
def _writable_models():
    """One small nncore model per group of layers, covering every layer class nncore has."""
    L = nn.layers
    rng = np.random.default_rng(0)

    def seq(shape, *layers):
        return nn.Sequential([nn.Input(shape), *layers])
    out = {
        "dense_acts": (seq((6,), L.Dense(5, activation="gelu"), L.Dense(5, activation="selu"),
                           L.Dense(4, activation="swish"), L.Activation("softplus"), L.Activation("leaky_relu"),
                           L.Dense(3, activation="softmax")), (6,)),
        "conv2d": (seq((9, 9, 2), L.ZeroPadding2D(1), L.Conv2D(3, 3, strides=2, activation="relu"),
                       L.MaxPooling2D(2, padding="same"), L.AveragePooling2D(1), L.GlobalMaxPooling2D(), L.Dense(2)),
                   (9, 9, 2)),
        "conv2d_gap": (seq((8, 8, 3), L.Conv2D(4, 3, padding="same", dilation_rate=2), L.SpatialDropout2D(0.1),
                           L.GlobalAveragePooling2D(), L.Dense(1)), (8, 8, 3)),
        "conv1d": (seq((10, 3), L.ZeroPadding1D(2), L.Conv1D(4, 3, strides=2), L.SpatialDropout1D(0.1),
                       L.MaxPooling1D(2), L.AveragePooling1D(1), L.GlobalAveragePooling1D(), L.Dense(1)), (10, 3)),
        "conv1d_gmp": (seq((10, 3), L.Conv1D(2, 2), L.GlobalMaxPooling1D(), L.Flatten(), L.Dense(1)), (10, 3)),
        "rnn": (seq((6, 4), L.Masking(0.0), L.SimpleRNN(3, return_sequences=True, go_backwards=True),
                    L.GRU(3, return_sequences=True), L.LSTM(2, unit_forget_bias=False), L.Dense(1)), (6, 4)),
        "bidirectional": (seq((6, 4), L.Bidirectional(L.GRU(3, return_sequences=True, reset_after=False),
                                                      merge_mode="ave"),
                              L.Bidirectional(L.SimpleRNN(2), merge_mode="mul"), L.Dense(1)), (6, 4)),
        "reshaping": (seq((12,), L.Reshape((3, 4)), L.Permute((2, 1)), L.Flatten(), L.RepeatVector(2),
                          L.TimeDistributed(L.Dense(3)), L.Flatten(), L.Dense(1)), (12,)),
        "normalisation": (seq((5,), L.BatchNormalization(center=False), L.LayerNormalization(scale=False),
                              L.GaussianNoise(0.1), L.GaussianDropout(0.1), L.Dropout(0.3), L.Dense(2)), (5,)),
        "embedding": (seq((4,), L.Embedding(7, 3, mask_zero=True), L.LSTM(2), L.Dense(1)), (4,)),
    }
    norm = L.Normalization()
    norm.adapt(rng.normal(size=(20, 5)).astype(np.float32))
    out["normalization"] = (seq((5,), norm, L.Normalization(mean=[1, 2, 3, 4, 5], variance=[1, 2, 1, 2, 1]),
                                L.Dense(1)), (5,))
    a, b = nn.Input((4,)), nn.Input((4,))
    ha, hb = L.Dense(3)(a), L.Dense(3)(b)
    merged = L.Concatenate()([L.Dot(axes=1, normalize=True)([ha, hb]), L.minimum([a, b]), L.Maximum()([a, b]),
                              L.add([ha, hb]), L.subtract([ha, hb]), L.multiply([ha, hb]), L.average([ha, hb])])
    out["merges"] = (nn.Model([a, b], merged), [(4,), (4,)])
    inner = nn.Sequential([nn.Input((4,)), L.Dense(3, activation="relu")], name="inner")
    xin = nn.Input((4,), name="xin")
    out["nested_dict_io"] = (nn.Model({"xin": xin}, {"o": L.Dense(1, name="o")(inner(xin))}), {"xin": (4,)})
    return out


def _inputs(shapes, name, rng):
    def one(s):
        if name == "embedding":
            return rng.integers(0, 7, (5,) + s).astype(np.float32)
        return rng.normal(size=(5,) + s).astype(np.float32)
    if isinstance(shapes, dict):
        return {k: one(s) for k, s in shapes.items()}
    if isinstance(shapes, list):
        return [one(s) for s in shapes]
    return one(shapes)


def test_writable_models_cover_every_layer_class():
    from nncore.graph import layer_classes
    covered = set()
    for m, _ in _writable_models().values():
        todo = list(m.layers)
        while todo:
            l = todo.pop()
            covered.add(type(l).__name__)
            todo += getattr(l, "layers", []) if isinstance(l, nn.Model) else []
            if hasattr(l, "layer") and not isinstance(l, nn.Model):
                covered.add(type(l.layer).__name__)
    public = {n for n in layer_classes() if not n.startswith("_") and n not in ("Model", "Functional")}
    assert public - covered - {"InputLayer"} == set()


def test_save_keras_writes_keras_layout_and_reloads_bit_for_bit(tmp_path):
    rng = np.random.default_rng(1)
    for name, (m, shapes) in _writable_models().items():
        x = _inputs(shapes, name, rng)
        m.compile("adam", "mse")
        path = tmp_path / f"{name}.keras"
        m.save(path, format="keras")
        with zipfile.ZipFile(path) as z:
            assert set(z.namelist()) == {"metadata.json", "config.json", "model.weights.h5"}
            cfg = json.loads(z.read("config.json"))
        assert cfg["class_name"] in ("Sequential", "Functional") and "compile_config" in cfg
        back = nn.models.load_model(path)
        for u, v in zip(m.get_weights(), back.get_weights()):
            np.testing.assert_array_equal(u, v)
        for p, q in zip(_as_list(m.predict(x, verbose=0)), _as_list(back.predict(x, verbose=0))):
            np.testing.assert_array_equal(p, q)


def test_save_keras_refuses_diverged_weights_and_bad_format(tmp_path):
    m = nn.Sequential([nn.Input((3,)), nn.layers.Dense(2)])
    w = m.get_weights()
    m.layers[0]._weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.save(tmp_path / "x.keras", format="keras")
    assert not os.path.exists(tmp_path / "x.keras")
    m.set_weights(w)
    with pytest.raises(ValueError, match="format must be"):
        m.save(tmp_path / "x.keras", format="tf")


# ---- with Keras installed: Keras opens nncore's files, and nncore Keras's ------------------------
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except Exception as e:  # noqa: BLE001 - absent, or no backend
        pytest.skip(f"Keras 3 is not usable here ({type(e).__name__}: {e})")
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip("needs Keras 3")
    return keras


@pytest.mark.parametrize("name", list(_writable_models()))
def test_keras_opens_nncore_files_and_round_trips(tmp_path, keras, name):
    m, shapes = _writable_models()[name]
    x = _inputs(shapes, name, np.random.default_rng(2))
    m.compile("adam", "mse", metrics=["mae"])
    m.save(tmp_path / "a.keras", format="keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no skipped variables, no missing state
        k = keras.saving.load_model(tmp_path / "a.keras")
    for p, q in zip(_as_list(m.predict(x, verbose=0)), _as_list(k.predict(x, verbose=0))):
        np.testing.assert_allclose(p, np.asarray(q), atol=1e-5, rtol=1e-5)
    k.save(tmp_path / "b.keras")
    back = nn.models.load_model(tmp_path / "b.keras")
    for u, v in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("name", ["lstm_stack", "bidirectional", "residual", "gru", "two_input", "nested"])
def test_optimizer_state_carries_over_both_ways(tmp_path, keras, name):
    """One more training step in nncore and in Keras from the same file gives the same weights:
    the optimizer's slots and step count went across in Keras's order."""
    x, ys = _data(name)
    m = nn.models.load_model(os.path.join(HERE, f"{name}.keras"))
    y = [np.asarray(np.random.default_rng(0).normal(size=t.shape), np.float32) for t in ys]
    y = [(t > 0).astype(np.float32) if type(l).__name__ == "BinaryCrossentropy" else t for t, l in zip(y, m._losses)]
    y = y if len(y) > 1 else y[0]
    k = keras.saving.load_model(os.path.join(HERE, f"{name}.keras"))
    m.train_on_batch(x, y)
    k.train_on_batch(x, y)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), atol=2e-6)
    m.save(tmp_path / "n.keras", format="keras")
    k2 = keras.saving.load_model(tmp_path / "n.keras")
    assert int(k2.optimizer.iterations) == m.optimizer.iterations
    m.train_on_batch(x, y)
    k2.train_on_batch(x, y)
    for a, b in zip(m.get_weights(), k2.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), atol=2e-6)


@pytest.mark.parametrize("make_opt", [
    lambda: nn.optimizers.AdamW(1e-3, weight_decay=0.01),
    lambda: nn.optimizers.SGD(nn.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9), momentum=0.9, nesterov=True),
    lambda: nn.optimizers.RMSprop(1e-3, momentum=0.5, centered=True),
    lambda: nn.optimizers.Adam(amsgrad=True, clipnorm=1.0),
], ids=["adamw", "sgd-nesterov-schedule", "rmsprop-centered-momentum", "adam-amsgrad-clipnorm"])
def test_every_optimizer_and_metrics_go_to_keras_and_back(tmp_path, keras, make_opt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    m = nn.Sequential([nn.Input((5,)), nn.layers.Dense(4, activation="relu", kernel_regularizer=nn.regularizers.l2(0.01)),
                       nn.layers.Dense(1, activation="sigmoid")])
    m.compile(make_opt(), "binary_crossentropy", metrics=["accuracy", "auc", nn.metrics.Precision()])
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    m.save(tmp_path / "n.keras", format="keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        k = keras.saving.load_model(tmp_path / "n.keras")
    m.train_on_batch(x, y)
    k.train_on_batch(x, y)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-6)
    k.save(tmp_path / "k.keras")
    back = nn.models.load_model(tmp_path / "k.keras")
    assert type(back.optimizer) is type(m.optimizer) and back.optimizer.iterations == m.optimizer.iterations
    assert [type(x).__name__ for x in back._metric_lists[0]] == ["Accuracy", "AUC", "Precision"]
