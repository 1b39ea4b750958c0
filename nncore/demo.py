"""The demo: the four finance use cases on generated data (no download), each trained with
nncore, with the same MLP in plain NumPy timed beside it where there is one, and one table of
metrics and training times at the end.

1. default prediction: MLP on 20000 generated borrowers (the detailed nncore-vs-NumPy run);
2. credit risk: MLP, cost under UCI's German-credit cost matrix, reasons for the riskiest score;
   then the same applicants with categorical columns, as a functional model with one Embedding
   per column beside the numeric columns (the standard tabular deep-learning model);
3. fraud detection: MLP with focal loss on 0.2%-fraud card transactions, AUC-PR;
4. market forecasting: LSTM on windows of GARCH log returns vs the zero-return forecast.
"""
import sys
import time

import numpy as np

import nncore as nn
from nncore import baselines, datasets


def run(samples=20000, epochs=10, seed=0, batch_size=32, quick=False):
    rows = []
    auc, t_nn, t_np, epochs = _default_prediction(samples, epochs, seed, batch_size)
    rows.append(("default prediction", "ROC AUC", auc, t_nn * epochs, t_np * epochs))
    rows.append(_credit_risk(seed, quick))
    rows.append(_credit_embeddings(seed, quick))
    rows.append(_fraud(seed, quick))
    rows.append(_market(seed, quick))
    print("\nSummary (generated data; training time over all epochs; NumPy: the same MLP in plain NumPy)")
    print(f"{'use case':<22}{'metric':<22}{'value':>8}{'nncore':>11}{'NumPy':>11}{'speed-up':>10}")
    for name, metric, value, tn, tp in rows:
        np_col = f"{tp:10.2f}s" if tp else f"{'-':>11}"
        up = f"{tp / tn:9.1f}x" if tp else f"{'-':>10}"
        print(f"{name:<22}{metric:<22}{value:8.3f}{tn:10.2f}s{np_col}{up}")
    return 0


def _verbose():
    return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 0


def _numpy_time(sizes, x, y, epochs, batch_size, seed, weights):
    ref = baselines.NumpyMLP(sizes, weights=weights)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        ref.fit_epoch(x, y, batch_size, rng)
    return time.perf_counter() - t0


def _mlp(n_in, hidden):
    layers = [nn.layers.Dense(hidden[0], activation="relu", input_shape=(n_in,))]
    layers += [nn.layers.Dense(h, activation="relu") for h in hidden[1:]]
    return nn.Sequential(layers + [nn.layers.Dense(1, activation="sigmoid")])


def _credit_risk(seed, quick):
    print("\n== credit risk: generated applicants, UCI cost matrix (bad accepted: 5, good rejected: 1) ==")
    x, y, names = datasets.make_credit_default(3000 if quick else 6000, seed=seed + 1, default_rate=0.3)
    x_tr, x_te, y_tr, y_te = datasets.train_test_split(x, y, 0.25, seed=seed, stratify=True)
    x_tr, x_te = datasets.standardize(x_tr, x_te)
    nn.utils.set_random_seed(seed)
    model = _mlp(x.shape[1], [32, 16])
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    w0 = model.get_weights()
    epochs = 10 if quick else 20
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=_verbose())
    t_nn = time.perf_counter() - t0
    t_np = _numpy_time([x.shape[1], 32, 16, 1], x_tr, y_tr, epochs, 32, seed, w0)
    p = model.predict(x_te)[:, 0]
    auc = model.evaluate(x_te, y_te, return_dict=True)["auc"]
    reject = p >= 1 / 6  # the Bayes threshold for a 5:1 cost ratio
    bad = y_te > 0.5
    cost = (5.0 * (~reject & bad).sum() + (reject & ~bad).sum()) / len(y_te)
    print(f"test ROC AUC {auc:.3f}; cost per applicant {cost:.3f} (accept everyone: {5 * bad.mean():.3f})")
    i = int(np.argmax(p))
    reasons = nn.explain.top_reasons(model, x_te[i], names, k=3, baseline=np.zeros(x.shape[1]))
    print(f"riskiest applicant (score {p[i]:.2f}), top reasons: " +
          ", ".join(f"{r['feature']} ({r['value']:+.1f} sd)" for r in reasons))
    return ("credit risk", "cost / applicant", cost, t_nn, t_np)


def _credit_embeddings(seed, quick):
    print("\n== credit risk with entity embeddings: 4 categorical columns + numeric, functional model ==")
    L = nn.layers
    x, y, _ = datasets.make_credit_default(3000 if quick else 6000, seed=seed + 1, default_rate=0.3)
    # the first four features as 5-level categories (quintiles), the rest numeric
    codes = np.stack([np.searchsorted(np.quantile(x[:, j], [0.2, 0.4, 0.6, 0.8]), x[:, j]) for j in range(4)], 1)
    idx = np.arange(len(y))[:, None]
    i_tr, i_te, y_tr, y_te = datasets.train_test_split(idx, y, 0.25, seed=seed, stratify=True)
    i_tr, i_te = i_tr[:, 0], i_te[:, 0]
    num_tr, num_te = datasets.standardize(x[i_tr, 4:], x[i_te, 4:])
    nn.utils.set_random_seed(seed)
    cats = [nn.Input(shape=(1,), name=f"cat{j}") for j in range(4)]
    num = nn.Input(shape=(x.shape[1] - 4,), name="numeric")
    h = L.concatenate([L.Flatten()(L.Embedding(5, 3)(c)) for c in cats] + [num])
    h = L.Dense(16, activation="relu")(L.Dense(32, activation="relu")(h))
    model = nn.Model(cats + [num], L.Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    data = lambda ii, numeric: [codes[ii, j:j + 1].astype(np.float32) for j in range(4)] + [numeric]  # noqa: E731
    epochs = 10 if quick else 20
    t0 = time.perf_counter()
    model.fit(data(i_tr, num_tr), y_tr, epochs=epochs, batch_size=32, verbose=_verbose())
    t_nn = time.perf_counter() - t0
    p = model.predict(data(i_te, num_te))[:, 0]
    auc = datasets.roc_auc(y_te, p)
    reject, bad = p >= 1 / 6, y_te > 0.5
    cost = (5.0 * (~reject & bad).sum() + (reject & ~bad).sum()) / len(y_te)
    print(f"test ROC AUC {auc:.3f}; cost per applicant {cost:.3f}; {model.count_params()} params in "
          f"{len(model.layers)} layers, {len(model.inputs)} inputs")
    return ("credit embeddings", "cost / applicant", cost, t_nn, None)


def _fraud(seed, quick):
    print("\n== fraud detection: generated card transactions, 0.2% fraud, focal loss ==")
    x, y, _ = datasets.make_card_transactions(30000 if quick else 60000, fraud_rate=0.002, seed=seed)
    heavy = (x.min(0) >= 0) & (x.max(0) > 100)
    x = np.where(heavy, np.log1p(np.maximum(x, 0)), x).astype(np.float32)
    x_tr, x_te, y_tr, y_te = datasets.train_test_split(x, y, 0.3, seed=seed, stratify=True)
    x_tr, x_te = datasets.standardize(x_tr, x_te)
    nn.utils.set_random_seed(seed)
    model = _mlp(x.shape[1], [32, 16])
    model.compile("adam", nn.losses.BinaryFocalCrossentropy(gamma=2.0, apply_class_balancing=True, alpha=0.9),
                  metrics=[nn.metrics.AUC(curve="PR", name="auc_pr"), "auc"])
    w0 = model.get_weights()
    epochs = 5 if quick else 10
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=128, verbose=_verbose())
    t_nn = time.perf_counter() - t0
    t_np = _numpy_time([x.shape[1], 32, 16, 1], x_tr, y_tr, epochs, 128, seed, w0)
    logs = model.evaluate(x_te, y_te, return_dict=True, batch_size=4096)
    print(f"test AUC-PR {logs['auc_pr']:.3f}, ROC AUC {logs['auc']:.3f} ({int(y_te.sum())} frauds in {len(y_te)} "
          f"transactions; NumPy timing uses the same MLP with plain cross-entropy)")
    return ("fraud detection", "AUC-PR", logs["auc_pr"], t_nn, t_np)


def _market(seed, quick):
    print("\n== market forecasting: LSTM on 20-day windows of generated GARCH log returns ==")
    window = 20
    _, r, _ = datasets.make_price_series(2000 if quick else 3000, seed=seed)
    x, y = nn.utils.timeseries_windows(r[:-1], r[window:], sequence_length=window)
    x_tr, x_te, y_tr, y_te = _chrono(x, y, window)
    s = float(y_tr.std())
    nn.utils.set_random_seed(seed)
    model = nn.Sequential([nn.layers.LSTM(16, input_shape=(window, 1)), nn.layers.Dense(1)])
    model.compile("adam", "mse")
    t0 = time.perf_counter()
    model.fit((x_tr / s)[..., None].astype(np.float32), (y_tr / s).astype(np.float32), epochs=3 if quick else 5,
              batch_size=64, verbose=_verbose())
    t_nn = time.perf_counter() - t0
    f = model.predict((x_te / s)[..., None].astype(np.float32), batch_size=512)[:, 0] * s
    ratio = float(np.mean((y_te - f) ** 2) / np.mean(y_te ** 2))
    last = float(np.mean((y_te - x_te[:, -1]) ** 2) / np.mean(y_te ** 2))
    print(f"test MSE relative to the zero-return forecast: LSTM {ratio:.3f}, last value {last:.3f} "
          f"(daily returns are nearly unpredictable: about 1.0 is the realistic best)")
    return ("market forecasting", "MSE / zero forecast", ratio, t_nn, None)


def _chrono(x, y, gap):
    x_tr, _, x_te, y_tr, _, y_te = datasets.chronological_split(x, y, val_fraction=0.0, test_fraction=0.2,
                                                                 gap=gap)
    return x_tr, x_te, y_tr, y_te


def _default_prediction(samples, epochs, seed, batch_size):
    print("nncore demo: four finance use cases on generated data\n\n"
          "== default prediction: credit-default MLP on generated borrowers ==")
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
    return auc, t_nn, t_np, max(epochs, 1)


def _median(fn, n):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))
