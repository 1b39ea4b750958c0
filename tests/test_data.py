"""Data helpers: timeseries_windows vs an explicit loop (Keras's pairing), chronological split,
load_csv on good and broken files (errors name the row and column), the generators."""
import os

import numpy as np
import pytest

import nncore as nn
from nncore import datasets as D
from nncore.utils import timeseries_windows

DATA = os.environ.get("NNCORE_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def _ref_windows(data, targets, L, stride, rate, start, end):
    """Keras's definition, one window at a time."""
    num = end - start - (L - 1) * rate
    if targets is not None:
        num = min(num, len(targets) - start)
    xs, ys = [], []
    for p in range(0, num, stride):
        xs.append(np.stack([data[start + p + k * rate] for k in range(L)]))
        if targets is not None:
            ys.append(targets[start + p])
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("L,stride,rate,start,end", [(1, 1, 1, None, None), (3, 1, 1, None, None),
                                                      (4, 2, 3, 2, 29), (5, 3, 2, 0, 30), (30, 1, 1, None, None),
                                                      (7, 5, 1, 4, None)])
def test_timeseries_windows_vs_loop(L, stride, rate, start, end):
    data = np.arange(60, dtype=np.float32).reshape(30, 2)
    targets = np.arange(100, 130)
    s, e = start or 0, 30 if end is None else end
    x, y = timeseries_windows(data, targets, L, stride, rate, start_index=start, end_index=end)
    xr, yr = _ref_windows(data, targets, L, stride, rate, s, e)
    np.testing.assert_array_equal(x, xr)
    np.testing.assert_array_equal(y, yr)
    assert x.flags.c_contiguous and x.shape[1:] == (L, 2)
    np.testing.assert_array_equal(timeseries_windows(data, None, L, stride, rate, start, end), xr)


def test_timeseries_windows_keras_forecasting_pairing():
    r = np.arange(10.0)
    x, y = timeseries_windows(r[:-3], r[3:], 3)  # predict the value right after each window
    assert np.all(y == x[:, -1] + 1)
    x, y = timeseries_windows(r, r[3:], 3)       # shorter targets bound the window count
    assert len(x) == 7 and np.all(y == x[:, -1] + 1)


def test_timeseries_windows_errors():
    with pytest.raises(ValueError, match="spans 11 steps.*only 10 steps"):
        timeseries_windows(np.zeros(10), np.zeros(10), sequence_length=11)
    with pytest.raises(ValueError, match="spans 10 steps"):
        timeseries_windows(np.zeros(10), None, sequence_length=4, sampling_rate=3, start_index=2)
    with pytest.raises(ValueError, match="sequence_length"):
        timeseries_windows(np.zeros(10), None, sequence_length=0)
    with pytest.raises(ValueError, match="end_index"):
        timeseries_windows(np.zeros(10), None, 2, end_index=11)


def test_chronological_split():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    xtr, xva, xte, ytr, yva, yte = D.chronological_split(x, y, val_fraction=0.2, test_fraction=0.1)
    assert (len(ytr), len(yva), len(yte)) == (35, 10, 5)
    np.testing.assert_array_equal(np.concatenate([ytr, yva, yte]), y)
    np.testing.assert_array_equal(xva[:, 0] // 2, yva)
    ytr, yva, yte = D.chronological_split(y, val_fraction=0.2, test_fraction=0.2, gap=3)
    assert ytr[-1] == 23 and yva[0] == 27 and yva[-1] == 36 and yte[0] == 40 and yte[-1] == 49
    with pytest.raises(ValueError, match="array 1 has 49"):
        D.chronological_split(x, y[:-1])
    with pytest.raises(ValueError, match="too few"):
        D.chronological_split(y[:3], val_fraction=0.4, test_fraction=0.4, gap=1)


def _write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_load_csv_good_and_categorical(tmp_path):
    p = _write(tmp_path, "a,b,kind,label\n1,2.5,x,yes\n3,-1e2,y,no\n 4 ,0,x,yes\n")
    x, y, names = D.load_csv(p, target="label", positive="yes", categorical=["kind"])
    assert names == ["a", "b", "kind=x", "kind=y"]
    np.testing.assert_array_equal(x, [[1, 2.5, 1, 0], [3, -100, 0, 1], [4, 0, 1, 0]])
    np.testing.assert_array_equal(y, [1, 0, 1])
    assert x.dtype == np.float32
    x2, y2, names2 = D.load_csv(p, target="label", positive="yes", categorical="auto")
    assert names2 == names and np.array_equal(x2, x)
    x3, y3, n3 = D.load_csv(p, target=0, features=["b"])
    assert n3 == ["b"] and y3.tolist() == [1, 3, 4]


@pytest.mark.parametrize("text,match", [
    ("a,b,y\n1,2,0\n3,,1\n", r"row 2 \(line 3\), column 'b': missing value ''"),
    ("a,b,y\n1,2,0\n3,4,1\n5,NA,0\n", r"row 3 \(line 4\), column 'b': missing value 'NA'"),
    ("a,b,y\n1,2,0\n3,x4,1\n", r"row 2 \(line 3\), column 'b': non-numeric value 'x4'"),
    ("a,b,y\n1,2,0\n3,4\n", r"row 2 \(line 3\) has 2 fields but the header has 3"),
    ("a,b,y\n1,2,0\n3,4,?\n", r"row 2 \(line 3\), column 'y': missing value '\?'"),
    ("a,b,y\n1,inf,0\n", r"row 1 \(line 2\), column 'b': value 'inf' is not finite"),
])
def test_load_csv_errors_name_row_and_column(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        D.load_csv(_write(tmp_path, text), target="y")


def test_load_csv_other_errors(tmp_path):
    p = _write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(ValueError, match="no column named 'c'"):
        D.load_csv(p, target="c")
    with pytest.raises(ValueError, match="positive=5"):
        D.load_csv(p, target="b", positive=5)
    with pytest.raises(ValueError, match="no data rows"):
        D.load_csv(_write(tmp_path, "a,b\n", "e.csv"))
    # auto does not hide a typo in a numeric column
    with pytest.raises(ValueError, match=r"row 2 \(line 3\), column 'a': non-numeric value '2x'"):
        D.load_csv(_write(tmp_path, "a,y\n1,0\n2x,1\n3,0\n", "m.csv"), target="y", categorical="auto")


def test_load_csv_real_files():
    path = os.path.join(DATA, "german_credit.csv")
    if not os.path.exists(path):
        pytest.skip(f"real data not found at {DATA} (set NNCORE_DATA)")
    x, y, names = D.load_csv(path, target="class", positive=2, categorical="auto")
    assert x.shape == (1000, 61) and y.sum() == 300 and "duration_in_month" in names
    x, y, names = D.load_csv(os.path.join(DATA, "ulb_creditcard_fraud_balanced.csv"), target="Class")
    assert x.shape == (984, 30) and y.sum() == 492 and names[0] == "Time"
    px, _, names = D.load_csv(os.path.join(DATA, "sp500_daily.csv"), features=["Adj Close"])
    assert px.shape == (5031, 1)


def test_generators():
    x, y, names = D.make_card_transactions(20000, fraud_rate=0.002, seed=1)
    assert x.shape == (20000, len(names)) and y.sum() == 40 and np.all(np.isfinite(x))
    assert np.array_equal(x, D.make_card_transactions(20000, fraud_rate=0.002, seed=1)[0])
    # fraud is detectable but not trivially: amounts relative to usual are higher for fraud
    assert x[y == 1, 6].mean() > 1.5 * x[y == 0, 6].mean()
    prices, r, vol = D.make_price_series(4000, seed=2)
    assert prices.shape == (4000,) and r.shape == (3999,) and np.all(prices > 0)
    np.testing.assert_allclose(np.diff(np.log(prices)), r, rtol=1e-9, atol=1e-12)
    ann = r.std() * np.sqrt(252)
    assert 0.08 < ann < 0.4
    a = np.abs(r - r.mean())
    assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.08  # volatility clustering
    z = r / vol
    assert ((z - z.mean()) ** 4).mean() / z.var() ** 2 > 3.5  # fat tails
    with pytest.raises(ValueError, match="fraud_rate"):
        D.make_card_transactions(100, fraud_rate=0.0)
