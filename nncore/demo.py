"""The demo: a credit-default MLP on generated borrowers, trained with nncore and with the same
model in plain NumPy, with metrics and time per epoch side by side."""
import time

import numpy as np

import nncore as nn
from nncore import baselines, datasets


def run(samples=20000, epochs=10, seed=0, batch_size=32):
    print("nncore demo: credit-default prediction on generated borrowers")
    nn.show_config()
    x, y, names = datasets.make_credit_default(samples, seed=seed)
    x_train, x_test, y_train, y_test = datasets.train_test_split(x, y, test_size=0.2, seed=seed)
    x_train, x_val, y_train, y_val = datasets.train_test_split(x_train, y_train, test_size=0.2, seed=seed + 1)
    x_train, x_val, x_test = datasets.standardize(x_train, x_val, x_test)
    print(f"\n{len(x_train)} training, {len(x_val)} validation, {len(x_test)} test borrowers, "
          f"{len(names)} features, default rate {y.mean():.1%}\n")

    nn.utils.set_random_seed(seed)
    model = nn.Sequential([
        nn.layers.Dense(64, activation="relu", input_shape=(x_train.shape[1],)),
        nn.layers.Dense(32, activation="relu"),
        nn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.summary()
    start_weights = model.get_weights()
    t0 = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, validation_data=(x_val, y_val), verbose=2)
    t_nn = (time.perf_counter() - t0) / max(epochs, 1)
    p = model.predict(x_test)[:, 0]
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    auc = datasets.roc_auc(y_test, p)

    ref = baselines.NumpyMLP([x_train.shape[1], 64, 32, 1], weights=start_weights)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        ref.fit_epoch(x_train, y_train, batch_size, rng)
    t_np = (time.perf_counter() - t0) / max(epochs, 1)
    p_np = ref.predict(x_test)[:, 0]
    auc_np = datasets.roc_auc(y_test, p_np)
    acc_np = float(np.mean((p_np > 0.5) == y_test))

    x1 = x_test[:1]
    lat = _median(lambda: model.predict(x1), 2000)
    print(f"\n{'':24}{'nncore':>12}{'NumPy':>12}")
    print(f"{'test AUC':24}{auc:12.4f}{auc_np:12.4f}")
    print(f"{'test accuracy':24}{acc:12.4f}{acc_np:12.4f}")
    print(f"{'time per epoch':24}{t_nn * 1e3:10.1f}ms{t_np * 1e3:10.1f}ms")
    print(f"\nnncore trains {t_np / t_nn:.1f}x faster than the NumPy implementation of the same model "
          f"({nn.get_num_threads()} threads, batch {batch_size}); one-sample predict takes {lat * 1e6:.1f} us.")
    return 0


def _median(fn, n):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))
