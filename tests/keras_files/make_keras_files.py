"""Writes the Keras model files that tests/test_keras_files.py loads (run it where Keras 3 is
installed; the files it writes are committed so the tests run where Keras is absent):

    KERAS_BACKEND=torch python tests/keras_files/make_keras_files.py

Each model is saved by Keras itself as `<name>.keras` (Keras 3 archive) and, for some, as
`<name>.h5` (Keras's legacy HDF5 format), beside `<name>.npz` holding an input batch `x` (or
`x0`, `x1`, ... for several inputs) and Keras's predictions `y` (`y0`, `y1`, ...).
`keras2_mlp.h5` is written in the layout of tf.keras 2.x (its config schema and weight names) by
h5py directly, since TensorFlow is not installed here; Keras 3's own legacy loader opens it and
its predictions are what Keras computes from it.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

L = keras.layers
HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def trained(model, xs, ys, loss, **compile_kw):
    """Compile, train one epoch (moving statistics, non-trivial weights) and return the model."""
    model.compile(optimizer=compile_kw.pop("optimizer", "adam"), loss=loss, **compile_kw)
    model.fit(xs, ys, epochs=2, batch_size=16, verbose=0)
    return model


def save(name, model, xs, h5=False):
    keras.utils.set_random_seed(1)
    model.save(os.path.join(HERE, f"{name}.keras"))
    if h5:
        model.save(os.path.join(HERE, f"{name}.h5"))
    pred = model.predict(xs, verbose=0)
    xs = xs if isinstance(xs, list) else [xs]
    pred = pred if isinstance(pred, list) else [pred]
    arrays = {f"x{i}": x for i, x in enumerate(xs)} | {f"y{i}": np.asarray(p) for i, p in enumerate(pred)}
    np.savez(os.path.join(HERE, f"{name}.npz"), **arrays)


def f32(*shape):
    return rng.normal(size=shape).astype(np.float32)


def main():
    keras.utils.set_random_seed(0)
    n = 48
    # the seeds' three models
    x = f32(n, 30)
    y = (x[:, :1] > 0).astype(np.float32)
    m = keras.Sequential([keras.Input((30,)), L.Dense(16, activation="relu"), L.Dropout(0.2),
                          L.Dense(8, activation="tanh", kernel_regularizer=keras.regularizers.L2(1e-3)),
                          L.Dense(1, activation="sigmoid")], name="mlp")
    save("mlp", trained(m, x, y, "binary_crossentropy", metrics=["accuracy", "auc"]), x[:8], h5=True)

    x = f32(n, 12, 12, 1)
    y = keras.utils.to_categorical(rng.integers(0, 3, n), 3)
    m = keras.Sequential([keras.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                          L.Conv2D(6, 3, padding="same", strides=1), L.BatchNormalization(), L.Activation("relu"),
                          L.Flatten(), L.Dense(3, activation="softmax")], name="cnn")
    save("cnn", trained(m, x, y, "categorical_crossentropy", metrics=["accuracy"]), x[:6], h5=True)

    x = f32(n, 7, 3)
    y = f32(n, 1)
    m = keras.Sequential([keras.Input((7, 3)), L.LSTM(8, return_sequences=True), L.LSTM(5), L.Dense(1)],
                         name="lstm_stack")
    save("lstm_stack", trained(m, x, y, "mse", optimizer=keras.optimizers.RMSprop(1e-3)), x[:5], h5=True)

    m = keras.Sequential([keras.Input((7, 3)), L.GRU(6, return_sequences=True),
                          L.GRU(4, reset_after=False), L.Dense(2)], name="gru")
    save("gru", trained(m, x, np.repeat(y, 2, 1), "mae", optimizer="sgd"), x[:5], h5=True)

    m = keras.Sequential([keras.Input((7, 3)), L.Bidirectional(L.LSTM(4, return_sequences=True)),
                          L.Bidirectional(L.GRU(3), merge_mode="sum"), L.Dense(1)], name="bidirectional")
    save("bidirectional", trained(m, x, y, "mse"), x[:5])

    m = keras.Sequential([keras.Input((7, 3)), L.SimpleRNN(5, return_sequences=True),
                          L.TimeDistributed(L.Dense(4, activation="relu")), L.Conv1D(3, 2, activation="tanh"),
                          L.MaxPooling1D(2), L.GlobalAveragePooling1D(), L.Dense(1)], name="sequence_misc")
    save("sequence_misc", trained(m, x, y, "huber"), x[:5])

    x = f32(n, 10)
    m = keras.Sequential([keras.Input((10,)), L.Dense(12), L.BatchNormalization(momentum=0.9, epsilon=1e-3),
                          L.Activation("relu"), L.LayerNormalization(), L.Dense(1, activation="sigmoid")],
                         name="batchnorm")
    save("batchnorm", trained(m, x, (x[:, :1] > 0).astype(np.float32), "binary_crossentropy"), x[:8])

    codes = rng.integers(0, 20, (n, 5)).astype(np.float32)
    m = keras.Sequential([keras.Input((5,)), L.Embedding(20, 4), L.Flatten(), L.Dense(3, activation="softmax")],
                         name="embedding")
    save("embedding", trained(m, codes, rng.integers(0, 3, n), "sparse_categorical_crossentropy",
                              metrics=["accuracy"]), codes[:6])

    # functional: two inputs fused, two outputs
    cat = keras.Input((1,), name="purpose")
    num = keras.Input((7,), name="numeric")
    e = L.Flatten()(L.Embedding(10, 3)(cat))
    h = L.Dense(16, activation="relu")(L.concatenate([e, num]))
    out_a = L.Dense(1, activation="sigmoid", name="default")(h)
    out_b = L.Dense(1, name="lgd")(h)
    m = keras.Model([cat, num], [out_a, out_b], name="two_input")
    xc = rng.integers(0, 10, (n, 1)).astype(np.float32)
    xn = f32(n, 7)
    m.compile(optimizer="adam", loss=["binary_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    m.fit([xc, xn], [(xn[:, :1] > 0).astype(np.float32), xn[:, 1:2]], epochs=2, verbose=0)
    save("two_input", m, [xc[:6], xn[:6]], h5=True)

    # functional: residual blocks, a shared layer, merges
    inp = keras.Input((16,), name="features")
    h = L.Dense(16, activation="relu")(inp)
    r = L.Dense(16, activation="relu")(h)
    h = L.add([h, r])
    shared = L.Dense(8, activation="tanh", name="shared")
    a, b = shared(h), shared(inp)
    h = L.concatenate([L.multiply([a, b]), L.subtract([a, b]), L.maximum([a, b]), L.average([a, b])])
    out = L.Dense(1)(L.LayerNormalization()(h))
    m = keras.Model(inp, out, name="residual")
    x = f32(n, 16)
    save("residual", trained(m, x, x[:, :1], "mse"), x[:6], h5=True)

    # a nested model: a Sequential block called inside a functional model
    block = keras.Sequential([keras.Input((6,)), L.Dense(5, activation="relu"), L.Dense(4)], name="block")
    inp = keras.Input((6,), name="x")
    out = L.Dense(1, activation="sigmoid")(L.concatenate([block(inp), inp]))
    m = keras.Model(inp, out, name="nested")
    x = f32(n, 6)
    save("nested", trained(m, x, (x[:, :1] > 0).astype(np.float32), "binary_crossentropy"), x[:6], h5=True)

    # refused: a Lambda layer (its Python code must never be loaded)
    m = keras.Sequential([keras.Input((4,)), L.Lambda(lambda t: t * 2.0), L.Dense(1)], name="lambda")
    m.save(os.path.join(HERE, "lambda.keras"))

    write_keras2_mlp()


def write_keras2_mlp():
    """A Sequential in tf.keras 2.x's HDF5 layout (Keras 2 config schema: batch_input_shape, dtype as a
    string, weight names with ':0'), with weights drawn here; Keras 3's legacy loader reads it back
    and its predictions go to keras2_mlp.npz."""
    w = [f32(6, 5), f32(5), f32(5, 2), f32(2)]
    init = {"class_name": "GlorotUniform", "config": {"seed": None}}
    zeros = {"class_name": "Zeros", "config": {}}

    def dense(name, units, act, first=False):
        cfg = {"name": name, "trainable": True, "dtype": "float32", "units": units, "activation": act,
               "use_bias": True, "kernel_initializer": init, "bias_initializer": zeros,
               "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
               "kernel_constraint": None, "bias_constraint": None}
        if first:
            cfg["batch_input_shape"] = [None, 6]
        return {"class_name": "Dense", "config": cfg}

    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6], "dtype": "float32",
                                                 "sparse": False, "ragged": False, "name": "dense_input"}},
        dense("dense", 5, "relu", first=True), dense("dense_1", 2, "softmax")]}}
    training = {"loss": "categorical_crossentropy", "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
        "name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}]], "weighted_metrics": None,
        "loss_weights": None, "optimizer_config": {"class_name": "Adam", "config": {
            "name": "Adam", "learning_rate": 0.001, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999,
            "epsilon": 1e-07, "amsgrad": False}}}
    path = os.path.join(HERE, "keras2_mlp.h5")
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps(training)
        g = f.create_group("model_weights")
        g.attrs["backend"] = "tensorflow"
        g.attrs["keras_version"] = "2.13.1"
        g.attrs["layer_names"] = [b"dense", b"dense_1"]
        for name, (k, b) in (("dense", w[:2]), ("dense_1", w[2:])):
            lg = g.create_group(name)
            lg.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            lg.create_dataset(f"{name}/kernel:0", data=k)
            lg.create_dataset(f"{name}/bias:0", data=b)
    m = keras.models.load_model(path, compile=False)
    x = f32(4, 6)
    np.savez(os.path.join(HERE, "keras2_mlp.npz"), x0=x, y0=m.predict(x, verbose=0))


if __name__ == "__main__":
    main()
