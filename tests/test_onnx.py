"""ONNX export: every exportable layer/model runs in onnxruntime and matches predict within 1e-5."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import nncore as nn  # noqa: E402
from nncore import datasets  # noqa: E402
from nncore import layers as L  # noqa: E402

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "swish",
               "softplus", "selu", "relu6", "hard_sigmoid", "softsign"]


def _has(*names):
    return all(hasattr(L, n) for n in names)


def _run(proto_or_path, x):
    src = proto_or_path if isinstance(proto_or_path, str) else proto_or_path.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _check(model, x, tmp_path=None, opset=None):
    kw = {} if opset is None else {"opset": opset}
    if tmp_path is not None:
        path = str(tmp_path / "model.onnx")
        nn.onnx.export(model, path, **kw)
        got = _run(path, x)
    else:
        got = _run(nn.onnx.to_onnx(model, **kw), x)
    want = model.predict(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return got


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_dense_every_activation(act):
    model = nn.Sequential([L.Dense(7, activation=act, input_shape=(10,)), L.Dense(3, activation=act, use_bias=False),
                           L.Activation(act)])
    _check(model, 3 * _x(6, 10))


def test_trained_mlp_file_and_any_batch_size(tmp_path):
    x, y, _ = datasets.make_credit_default(600, seed=1)
    x = datasets.standardize(x)[0]
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.Input(shape=(12,)), L.Dense(32, activation="relu"), L.Dense(16, activation="gelu"),
                           L.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    _check(model, x, tmp_path)
    loaded = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(loaded)
    assert loaded.opset_import[0].version >= 17
    assert loaded.producer_name == "nncore"
    for n in (1, 7, 33):  # the batch dimension is symbolic
        np.testing.assert_allclose(_run(str(tmp_path / "model.onnx"), x[:n]), model.predict(x[:n]), atol=1e-5)


def test_softmax_classifier_opset_18_and_20():
    model = nn.Sequential([L.Dense(8, activation="gelu", input_shape=(5,)), L.Dense(4, activation="softmax")])
    for opset in (18, 20):
        _check(model, _x(9, 5), opset=opset)
    with pytest.raises(ValueError, match="opset must be >= 17"):
        nn.onnx.to_onnx(model, opset=13)


@pytest.mark.skipif(not _has("Conv2D", "MaxPooling2D", "Flatten"), reason="conv layers not available")
def test_cnn_channels_last_padding_pooling():
    model = nn.Sequential([
        L.ZeroPadding2D(((1, 2), (0, 1)), input_shape=(21, 20, 3)),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        L.MaxPooling2D(2, padding="same"),
        L.Conv2D(5, (2, 3), dilation_rate=2, activation="tanh"),
        L.AveragePooling2D((2, 2), strides=1, padding="same"),
        L.Conv2D(3, 1, use_bias=False),
        L.Flatten(), L.Dense(3, activation="softmax")])
    _check(model, _x(3, 21, 20, 3))


@pytest.mark.skipif(not _has("Conv2D", "GlobalAveragePooling2D"), reason="conv layers not available")
def test_cnn_channels_first_and_global_pooling():
    for gp in (L.GlobalAveragePooling2D(), L.GlobalMaxPooling2D(keepdims=True)):
        model = nn.Sequential([L.Conv2D(4, 3, data_format="channels_first", padding="same", input_shape=(3, 11, 10)),
                               L.ZeroPadding2D(1, data_format="channels_first"),
                               L.Conv2D(2, 2, data_format="channels_first"), L.Reshape((-1, 12, 2)), gp])
        _check(model, _x(2, 3, 11, 10))


@pytest.mark.skipif(not _has("Conv2D", "MaxPooling2D"), reason="conv layers not available")
def test_cnn_channels_first_pooling_flatten():
    for gp in (L.GlobalAveragePooling2D(data_format="channels_first"),
               L.GlobalMaxPooling2D(keepdims=True, data_format="channels_first"), L.Flatten(data_format="channels_first")):
        model = nn.Sequential([L.Conv2D(4, 3, data_format="channels_first", padding="same", input_shape=(3, 11, 10)),
                               L.MaxPooling2D(2, padding="same", data_format="channels_first"),
                               L.AveragePooling2D((2, 1), data_format="channels_first"), gp, L.Flatten(), L.Dense(2)])
        _check(model, _x(2, 3, 11, 10))
    model = nn.Sequential([L.MaxPooling1D(2, data_format="channels_first", input_shape=(3, 12)),
                           L.AveragePooling1D(3, padding="same", data_format="channels_first"),
                           L.GlobalMaxPooling1D(data_format="channels_first"), L.Dense(2)])
    _check(model, _x(4, 3, 12))


@pytest.mark.skipif(not _has("Conv1D", "MaxPooling1D", "GlobalMaxPooling1D"), reason="conv layers not available")
def test_conv1d_causal_dilated_pooling_reshape():
    model = nn.Sequential([L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="elu", input_shape=(12, 3)),
                           L.ZeroPadding1D((2, 1)), L.AveragePooling1D(3, padding="same"),
                           L.Conv1D(2, 2, strides=2), L.MaxPooling1D(2), L.GlobalAveragePooling1D(keepdims=True),
                           L.Reshape((2,)), L.Dense(1)])
    _check(model, _x(5, 12, 3))
    model = nn.Sequential([L.Conv1D(3, 2, padding="same", input_shape=(7, 2)), L.GlobalMaxPooling1D()])
    _check(model, _x(4, 7, 2))


RNN_CASES = [(cls, rs, gb) for cls in ("LSTM", "GRU", "SimpleRNN") for rs in (False, True) for gb in (False, True)]


@pytest.mark.skipif(not _has("LSTM", "GRU", "SimpleRNN"), reason="recurrent layers not available")
@pytest.mark.parametrize("cls,return_sequences,go_backwards", RNN_CASES)
def test_recurrent(cls, return_sequences, go_backwards):
    layer = getattr(L, cls)(5, return_sequences=return_sequences, go_backwards=go_backwards, input_shape=(9, 3))
    model = nn.Sequential([layer] + ([L.Flatten()] if return_sequences else []) + [L.Dense(2)])
    _check(model, _x(4, 9, 3))


@pytest.mark.skipif(not _has("LSTM", "GRU", "SimpleRNN", "Bidirectional"), reason="recurrent layers not available")
def test_recurrent_variants_and_bidirectional():
    x = _x(3, 8, 4)
    for model in [
        nn.Sequential([L.GRU(4, reset_after=False, input_shape=(8, 4))]),
        nn.Sequential([L.GRU(4, use_bias=False, input_shape=(8, 4))]),
        nn.Sequential([L.LSTM(4, activation="relu", recurrent_activation="hard_sigmoid", input_shape=(8, 4))]),
        nn.Sequential([L.SimpleRNN(4, activation="linear", dropout=0.3, input_shape=(8, 4))]),
        nn.Sequential([L.LSTM(6, return_sequences=True, input_shape=(8, 4)), L.LSTM(3)]),
    ] + [nn.Sequential([L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode=m, input_shape=(8, 4)),
                        L.Bidirectional(L.GRU(3, go_backwards=(m == "sum")), merge_mode=m)])
         for m in ("concat", "sum", "mul", "ave")]:
        _check(model, x)


@pytest.mark.skipif(not _has("Dropout"), reason="Dropout not available")
def test_dropout_is_identity():
    model = nn.Sequential([L.Dense(8, activation="relu", input_shape=(4,)), L.Dropout(0.5), L.Dense(2)])
    _check(model, _x(5, 4))


@pytest.mark.skipif(not _has("BatchNormalization"), reason="BatchNormalization not available")
def test_batchnorm_inference_form():
    nn.utils.set_random_seed(0)
    model = nn.Sequential([L.Dense(8, input_shape=(4,)), L.BatchNormalization(), L.Dense(2)])
    model.compile("adam", "mse")
    x = _x(64, 4)
    model.fit(x, _x(64, 2, seed=1), epochs=2, verbose=0)  # moving statistics move away from 0/1
    _check(model, x)


@pytest.mark.skipif(not _has("LayerNormalization"), reason="LayerNormalization not available")
def test_layernorm():
    model = nn.Sequential([L.Dense(8, input_shape=(4,)), L.LayerNormalization(), L.Dense(2)])
    w = model.get_weights()
    model.set_weights([v + 0.1 * _x(*v.shape, seed=i) for i, v in enumerate(w)])
    _check(model, _x(5, 4))


@pytest.mark.skipif(not _has("Normalization"), reason="Normalization not available")
def test_normalization_layer():
    x = 3 + 2 * _x(50, 4)
    for kw in ({}, {"axis": None}):
        norm = L.Normalization(**kw)
        norm.adapt(x)
        _check(nn.Sequential([nn.Input(shape=(4,)), norm, L.Dense(2, activation="tanh")]), x)
    fixed = L.Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[1.0, 4.0, 0.25, 9.0], invert=True)
    _check(nn.Sequential([nn.Input(shape=(4,)), fixed]), x)


@pytest.mark.skipif(not _has("Embedding", "LSTM"), reason="Embedding not available")
def test_embedding():
    idx = np.random.default_rng(0).integers(0, 20, size=(6, 7)).astype(np.float32)
    model = nn.Sequential([L.Embedding(20, 5, input_shape=(7,)), L.Flatten(), L.Dense(3, activation="softmax")])
    _check(model, idx)
    model = nn.Sequential([L.Embedding(20, 4, input_shape=(7,)), L.LSTM(3)])
    _check(model, idx + 0.7)  # fractional indices truncate


@pytest.mark.skipif(not _has("SpatialDropout1D", "GaussianNoise", "GaussianDropout"), reason="noise layers not available")
def test_noise_layers_are_identity_at_inference():
    model = nn.Sequential([L.Conv1D(4, 3, input_shape=(8, 2)), L.SpatialDropout1D(0.3), L.GaussianNoise(0.5),
                           L.GaussianDropout(0.2), L.Flatten(), L.Dense(2)])
    _check(model, _x(3, 8, 2))


def test_unsupported_layer_named_in_error():
    class Mystery(nn.layers.Layer):
        pass

    model = nn.Sequential([L.Dense(3, input_shape=(2,)), Mystery(name="mystery_box")])
    with pytest.raises(ValueError, match=r"layer 'mystery_box' \(Mystery\) cannot be exported to ONNX; supported"):
        nn.onnx.to_onnx(model)
    with pytest.raises(TypeError, match="nn.Sequential"):
        nn.onnx.to_onnx("model")
    assert "Dense" in nn.onnx.supported_layers()
    # Keras masking has no ONNX form: refused, never exported as if unmasked
    masked = nn.Sequential([L.Masking(input_shape=(4, 2)), L.LSTM(3), L.Dense(1)])
    with pytest.raises(ValueError, match=r"\(Masking\) cannot be exported"):
        nn.onnx.to_onnx(masked)
    emb = nn.Sequential([L.Embedding(5, 2, mask_zero=True, input_shape=(4,)), L.GRU(3)])
    with pytest.raises(ValueError, match="mask_zero=True"):
        nn.onnx.to_onnx(emb)


def test_sklearn_fitted_model_exports():
    pytest.importorskip("sklearn")
    from nncore.sklearn import NNClassifier
    x, y, _ = datasets.make_credit_default(300, seed=2)
    clf = NNClassifier(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(x / x.std(0), y)
    got = _run(nn.onnx.to_onnx(clf.model_), (x / x.std(0)).astype(np.float32))
    np.testing.assert_allclose(got[:, 0], clf.predict_proba(x / x.std(0))[:, 1], atol=1e-5)


def test_functional_model_matches_onnxruntime():
    """A multi-input, two-output graph with merges, a shared layer, Embedding, Permute,
    RepeatVector and Dense on rank 3: onnxruntime within 1e-5 of predict."""
    L = nn.layers
    cat, num = nn.Input(shape=(1,), name="cat"), nn.Input(shape=(5,), name="num")
    e = L.Flatten()(L.Embedding(4, 3)(cat))
    sh = L.Dense(5, activation="tanh")
    r = sh(L.add([sh(num), num]))
    t = L.Flatten()(L.Dense(2)(L.Permute((2, 1))(L.RepeatVector(3)(r))))
    h = L.concatenate([e, r, t, L.subtract([r, num]), L.maximum([r, num]), L.average([r, num])])
    h = L.Dense(8, activation="relu")(h)
    d = L.Dot(axes=1, normalize=True)([h, L.Dense(8)(h)])
    m = nn.Model([cat, num], [L.Dense(1, activation="sigmoid", name="p")(L.concatenate([h, d])),
                              L.Dense(3, activation="softmax", name="q")(L.multiply([h, h]))])
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 4, (7, 1)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)]
    proto = nn.onnx.to_onnx(m)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["p", "q"], {"cat": x[0], "num": x[1]})
    for a, b in zip(m.predict(x), got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
