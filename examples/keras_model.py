"""Bring a Keras model: nncore reads the `.keras` and `.h5` files Keras writes and writes `.keras`
files Keras opens (needs h5py: pip install "nncore[keras]"; never TensorFlow or Keras).

    python examples/keras_model.py                          # round trip, no Keras file needed
    python examples/keras_model.py --model risk_model.keras # any Keras .keras / .h5 file

Without --model: trains a credit-default model in nncore (generated borrowers), writes it as
`credit_model.keras`, reads it back and checks that the predictions are the same; where Keras 3
is installed, Keras opens the file too and its predictions are compared. With --model: loads the
Keras file (its compile settings too), prints the summary, and predicts on a random batch of the
model's input shape (`--x file.npy` for real inputs); where Keras is installed, the predictions are
compared with Keras's own and both are timed.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import nn  # noqa: E402

L = nn.layers


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
        return keras if int(keras.__version__.split(".")[0]) >= 3 else None
    except Exception:  # noqa: BLE001 - Keras is optional
        return None


def _max_diff(a, b):
    a = list(a.values()) if isinstance(a, dict) else a if isinstance(a, list) else [a]
    b = list(b.values()) if isinstance(b, dict) else b if isinstance(b, list) else [b]
    return max(float(np.abs(np.asarray(u) - np.asarray(v)).max()) for u, v in zip(a, b))


def round_trip(path="credit_model.keras", verbose=1, epochs=8):
    x, y, _ = nn.datasets.make_credit_default(4000, seed=0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = ((x - mu) / sd).astype(np.float32)
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.Input((x.shape[1],)), L.Dense(32, activation="relu"), L.Dropout(0.1),
                           L.Dense(16, activation="relu"), L.Dense(1, activation="sigmoid")], name="credit")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["auc"])
    model.fit(x[:3000], y[:3000], epochs=epochs, batch_size=64, verbose=0)
    model.save(path, format="keras")
    back = nn.models.load_model(path)
    xt = x[3000:]
    result = {"path": path, "auc": float(nn.datasets.roc_auc(y[3000:], model.predict(xt)[:, 0])),
              "nncore_reload_max_diff": _max_diff(model.predict(xt), back.predict(xt))}
    keras = _keras()
    if keras is not None:
        result["keras_max_diff"] = _max_diff(model.predict(xt), keras.saving.load_model(path).predict(xt, verbose=0))
    if verbose:
        print(f"trained a credit-default MLP in nncore (test ROC AUC {result['auc']:.3f}), wrote {path}")
        print(f"  nncore reads it back: predictions differ by at most {result['nncore_reload_max_diff']:.1e}")
        if keras is not None:
            print(f"  Keras {keras.__version__} opens it: predictions differ by at most {result['keras_max_diff']:.1e}")
        else:
            print("  (Keras 3 is not installed here; with it, keras.saving.load_model opens the same file)")
    return result


def random_inputs(model, n, seed=0):
    """A random batch per input: standard normal, or valid indices where an Embedding reads it."""
    rng = np.random.default_rng(seed)
    if isinstance(model, nn.Sequential):
        first = model.layers[0]
        readers = [[first]]
        shapes = [tuple(model.input_shape[1:])]
    else:
        readers = [[node.layer for node in model._graph.nodes if any(t is i for t in node.inputs)]
                   for i in model._graph.inputs]
        shapes = [tuple(t.shape[1:]) for t in model._graph.inputs]
    out = []
    for shape, layers in zip(shapes, readers):
        emb = [l for l in layers if isinstance(l, L.Embedding)]
        if emb:
            out.append(rng.integers(0, min(e.input_dim for e in emb), (n,) + shape).astype(np.float32))
        else:
            out.append(rng.normal(size=(n,) + shape).astype(np.float32))
    return out


def bring(path, x_path=None, verbose=1):
    model = nn.models.load_model(path)
    if verbose:
        model.summary()
    if x_path:
        x = np.load(x_path)
    else:
        xs = random_inputs(model, 256)
        x = xs if len(xs) > 1 else xs[0]
    t0 = time.perf_counter()
    pred = model.predict(x, verbose=0)
    t_nn = time.perf_counter() - t0
    result = {"compiled": model._compiled, "nncore_predict_s": t_nn}
    keras = _keras()
    if keras is not None:
        km = keras.saving.load_model(path, compile=False)  # predictions only (and Keras 3 cannot compile some of its own .h5 files)
        km.predict(x, verbose=0)
        t0 = time.perf_counter()
        kp = km.predict(x, verbose=0)
        result["keras_predict_s"] = time.perf_counter() - t0
        result["keras_max_diff"] = _max_diff(pred, kp)
    if verbose:
        print(f"loaded {path}: {model.count_params():,} parameters, "
              f"{'compiled as saved' if model._compiled else 'not compiled'}")
        print(f"  predict on {len(x[0]) if isinstance(x, list) else len(x)} rows: nncore {t_nn * 1e3:.1f} ms", end="")
        if "keras_max_diff" in result:
            print(f", Keras {result['keras_predict_s'] * 1e3:.1f} ms; largest difference "
                  f"{result['keras_max_diff']:.1e}")
        else:
            print()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a Keras .keras or .h5 file to load")
    ap.add_argument("--x", help="inputs for --model as a .npy file (default: random of the input shape)")
    ap.add_argument("--out", default="credit_model.keras", help="where the round trip writes its file")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.model:
        bring(a.model, a.x)
    else:
        round_trip(a.out, epochs=2 if a.quick else 8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
