"""Keras model files (issue 15): loading a 1M-parameter `.keras` file with nncore against reading
its weights with h5py alone (the floor: unzip + HDF5 reads), and against Keras 3's own
`load_model` where Keras is installed. Target: nncore's load <= 2x the h5py read.

The 'numpy' column is the h5py read, from the archive unzipped in memory: for `load_model` every
dataset of model.weights.h5 (the layers' weights and the optimizer's state, which a compiled
model's file holds and the load restores); for `compile=False` the layers' weights alone.
'vs_numpy' = h5py time / nncore time (>= 0.5 meets the target).
Run: python bench/bench_keras_io.py [--quick]
"""
import io
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import Bench  # noqa: E402

import nncore as nn  # noqa: E402

L = nn.layers


def models():
    """Two 1M-parameter models: an MLP and a stacked LSTM (the formats' two common shapes)."""
    nn.utils.set_random_seed(0)
    mlp = nn.Sequential([nn.Input((384,)), L.Dense(1024, activation="relu"), L.Dense(512, activation="relu"),
                         L.Dense(256, activation="relu"), L.Dense(1, activation="sigmoid")], name="mlp_1m")
    lstm = nn.Sequential([nn.Input((30, 64)), L.LSTM(256, return_sequences=True), L.LSTM(320),
                          L.Dense(1)], name="lstm_1m")
    for m in (mlp, lstm):
        m.compile("adam", "binary_crossentropy")
    return {"MLP 384-1024-512-256-1": mlp, "LSTM 64-256-320-1 (30 steps)": lstm}


def h5py_read(path, group="/"):
    import h5py
    with zipfile.ZipFile(path) as z:
        raw = z.read("model.weights.h5")
    out = []
    with h5py.File(io.BytesIO(raw), "r") as f:
        f[group].visititems(lambda n, o: out.append(o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def main():
    b = Bench("keras_io", "loading a .keras file: nncore vs h5py alone (target >= 0.5x) and Keras 3")
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
    except Exception:  # noqa: BLE001 - optional peer
        keras = None
    tmp = tempfile.mkdtemp()
    with b.at_threads(1):
        for case, m in models().items():
            path = os.path.join(tmp, "m.keras")
            m.save(path, format="keras")
            size = f"{m.count_params() / 1e6:.2f}M params, file {os.path.getsize(path) / 1e6:.1f} MB"
            b.case(f"load_model {case}", ours=lambda: nn.models.load_model(path),
                   numpy=lambda: h5py_read(path), note=f"{size}; 'numpy' = h5py read of every dataset")
            b.case(f"load_model compile=False {case}", ours=lambda: nn.models.load_model(path, compile=False),
                   numpy=lambda: h5py_read(path, "layers"), note=f"{size}; 'numpy' = h5py read of the layers' weights")
            if keras is not None:
                t0 = time.perf_counter()
                keras.saving.load_model(path)
                k_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                keras.saving.load_model(path)
                k_s = min(k_s, time.perf_counter() - t0)
                t_nn = b.time(lambda: nn.models.load_model(path))
                b.record(f"{case} vs Keras 3 load_model", nncore_s=t_nn, keras_s=k_s, vs_keras=k_s / t_nn,
                         note=f"Keras 3 (torch backend) {k_s * 1e3:.1f} ms: nncore is {k_s / t_nn:.1f}x faster")
    b.finish()


if __name__ == "__main__":
    main()
