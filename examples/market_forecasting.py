"""Market forecasting on S&P 500 daily prices: LSTM and Conv1D models read windows of past
daily log returns and forecast the next day's return; chronological train/validation/test
split; compared with the naive forecasts 'tomorrow = today' (last value) and 'tomorrow = 0'
(zero return). Daily index returns are close to unpredictable: a model that merely matches the
zero-return forecast is doing as well as can be expected, and the last-value forecast is much
worse. The series' volatility clustering is what the windows carry. A third, multi-input
functional model fuses the LSTM over the window with dense volatility features (realised
volatility over the last 5, 20 and 60 days and today's absolute return).

    python examples/market_forecasting.py --data ../shared/data/sp500_daily.csv
    python examples/market_forecasting.py      # generated GARCH prices (no download)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, nn  # noqa: E402


def load_returns(path, n_generated=5000, seed=0):
    if path is None:
        _, r, _ = nn.datasets.make_price_series(n_generated, seed=seed)
        return r, "generated GARCH prices"
    px, _, _ = nn.datasets.load_csv(path, features=["Adj Close"], dtype=np.float64)
    return np.diff(np.log(px[:, 0])), os.path.basename(path)


def build(kind, window):
    L = nn.layers
    if kind == "LSTM":
        layers = [L.LSTM(32, input_shape=(window, 1)), L.Dense(1)]
    else:
        layers = [L.Conv1D(16, 5, activation="relu", input_shape=(window, 1)),
                  L.Conv1D(16, 5, activation="relu"), L.GlobalAveragePooling1D(), L.Dense(1)]
    return nn.Sequential(layers)


def vol_features(r, window, n):
    """[n, 4] features known at the end of each window i (days i .. i+window-1): log realised
    volatility over the last 5, 20 and 60 days and log |today's return| (no look-ahead)."""
    c1 = np.concatenate([[0.0], np.cumsum(r)])
    c2 = np.concatenate([[0.0], np.cumsum(r * r)])
    end = np.arange(n) + window  # exclusive end of window i in r
    cols = []
    for k in (5, 20, 60):
        start = np.maximum(end - k, 0)
        m = end - start
        mean = (c1[end] - c1[start]) / m
        var = np.maximum((c2[end] - c2[start]) / m - mean ** 2, 1e-12)
        cols.append(0.5 * np.log(var))
    cols.append(np.log(np.abs(r[end - 1]) + 1e-6))
    return np.stack(cols, 1)


def build_fused(window, n_feat):
    """Functional model: LSTM over the return window, Dense over the volatility features,
    concatenated."""
    L = nn.layers
    seq = nn.Input(shape=(window, 1), name="returns")
    feat = nn.Input(shape=(n_feat,), name="volatility")
    h = L.concatenate([L.LSTM(32)(seq), L.Dense(8, activation="relu")(feat)])
    return nn.Model([seq, feat], L.Dense(1)(L.Dense(16, activation="relu")(h)), name="lstm_vol")


def run(data=None, quick=False, seed=0, verbose=1, window=20, limit=None):
    r, source = load_returns(data, 2500 if quick else 5000, seed)
    if limit:
        r = r[-limit:]
    # x: the last `window` returns; y: the next one (Keras's pairing: targets = data[window:])
    x, y = nn.utils.timeseries_windows(r[:-1], r[window:], sequence_length=window)
    last = x[:, -1]  # today's return, for the naive forecast
    vf = vol_features(r, window, len(y))
    x_tr, x_va, x_te, y_tr, y_va, y_te, _, _, last_te, v_tr, v_va, v_te = nn.datasets.chronological_split(
        x, y, last, vf, val_fraction=0.15, test_fraction=0.15, gap=window)
    vm, vs = v_tr.mean(0), v_tr.std(0) + 1e-9  # standardised with the training data only
    v_tr, v_va, v_te = ((v - vm) / vs for v in (v_tr, v_va, v_te))
    s = float(y_tr.std())  # scale to unit variance with the training data only
    prep = lambda a: (a / s).astype(np.float32)[..., None]
    mse = lambda f: float(np.mean((y_te - f) ** 2))
    rows = [("zero return", mse(0.0), None), ("last value", mse(last_te), None)]
    results = {"source": source, "zero_mse": rows[0][1], "last_value_mse": rows[1][1]}
    if verbose:
        print(f"market forecasting on {source}: {len(r)} daily log returns, windows of {window} days, "
              f"{len(y_tr)} train / {len(y_va)} validation / {len(y_te)} test (chronological)")
    for kind in ("LSTM", "Conv1D", "LSTM+vol"):
        nn.utils.set_random_seed(seed)
        fused = kind == "LSTM+vol"
        model = build_fused(window, vf.shape[1]) if fused else build(kind, window)
        model.compile(optimizer=nn.optimizers.Adam(1e-3), loss="mse")
        stop = nn.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
        inp = (lambda a, v: [prep(a), v.astype(np.float32)]) if fused else (lambda a, v: prep(a))
        with Timer() as t:
            model.fit(inp(x_tr, v_tr), (y_tr / s).astype(np.float32), epochs=8 if quick else 30, batch_size=64,
                      validation_data=(inp(x_va, v_va), (y_va / s).astype(np.float32)), callbacks=[stop], verbose=0)
        f = model.predict(inp(x_te, v_te), batch_size=512)[:, 0].astype(np.float64) * s
        hit = float(np.mean(np.sign(f) == np.sign(y_te)))
        rows.append((kind, mse(f), hit))
        key = kind.lower().replace("+", "_")
        results[key + "_mse"] = mse(f)
        results[key + "_direction"] = hit
        results[key + "_seconds"] = t.seconds
    if verbose:
        print(f"{'forecast':<12} {'test MSE':>12} {'vs zero':>8} {'direction hit':>14}")
        for name, m, hit in rows:
            print(f"{name:<12} {m:12.3e} {m / rows[0][1]:8.3f} {'' if hit is None else f'{hit:14.1%}'}")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="sp500_daily.csv or any CSV with an 'Adj Close' column (default: generated)")
    ap.add_argument("--quick", action="store_true", help="a shorter series and fewer epochs")
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.data, a.quick, a.seed, window=a.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
