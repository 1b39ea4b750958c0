"""Generated data sets for demos and tests (no download needed)."""
import numpy as np

CREDIT_FEATURES = ["age", "income", "debt_to_income", "credit_history_years", "late_payments_2y",
                   "open_credit_lines", "loan_amount", "loan_term_months", "employment_years",
                   "utilization", "home_owner", "recent_inquiries"]


def make_credit_default(n_samples=20000, seed=0, default_rate=0.15):
    """Synthetic borrowers with a default label.

    Returns (x, y, feature_names): x float32 (n, 12) in natural units (not standardised), y
    float32 in {0, 1}. Default risk rises with debt-to-income, utilisation, late payments and
    inquiries, falls with income, history and employment, with interactions and label noise, so
    a model must learn non-linear structure to beat a linear score."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    n = n_samples
    age = rng.uniform(21, 75, n)
    income = np.exp(rng.normal(10.8, 0.55, n))                       # yearly, lognormal
    dti = np.clip(rng.beta(2.2, 5.0, n) * 0.9, 0, 0.9)
    history = np.clip(age - 18 - rng.exponential(4, n), 0, None)
    late = rng.poisson(0.25 + 1.5 * dti, n).astype(float)
    lines = rng.poisson(4, n).astype(float) + 1
    loan = np.exp(rng.normal(9.4, 0.7, n))
    term = rng.choice([12, 24, 36, 48, 60], n).astype(float)
    employ = np.clip(rng.exponential(6, n), 0, age - 18)
    util = np.clip(rng.beta(1.6, 3.0, n) + 0.25 * dti, 0, 1.2)
    home = (rng.random(n) < 0.35 + 0.004 * (age - 21)).astype(float)
    inquiries = rng.poisson(0.8 + 1.2 * util, n).astype(float)
    z = (3.0 * dti + 2.2 * util ** 2 + 0.55 * late + 0.25 * inquiries
         - 0.9 * np.log(income / 50000.0) - 0.05 * history - 0.06 * employ
         + 0.5 * np.log(loan / income * 10) + 0.01 * term - 0.4 * home
         + 1.5 * (late > 1) * (util > 0.6) - 0.015 * np.abs(age - 45))
    z = z + rng.normal(0, 0.8, n)
    shift = np.quantile(z, 1 - default_rate)
    y = (z > shift).astype(np.float32)
    x = np.stack([age, income, dti, history, late, lines, loan, term, employ, util, home, inquiries], 1)
    return x.astype(np.float32), y, list(CREDIT_FEATURES)


def train_test_split(x, y, test_size=0.2, seed=0, stratify=False):
    """Random split (use chronological_split for time series). stratify=True keeps each class's
    share of y the same in both parts (important for rare events such as fraud)."""
    n = len(x)
    if len(y) != n:
        raise ValueError(f"train_test_split: y has {len(y)} samples but x has {n}")
    rng = np.random.default_rng(seed)
    if not stratify:
        idx = rng.permutation(n)
        n_test = int(round(n * test_size))
        return x[idx[n_test:]], x[idx[:n_test]], y[idx[n_test:]], y[idx[:n_test]]
    labels = np.asarray(y).reshape(n, -1)
    labels = labels[:, 0] if labels.shape[1] == 1 else labels.argmax(1)
    test, train = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(members) * test_size))
        test.append(members[:k])
        train.append(members[k:])
    tr, te = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    return x[tr], x[te], y[tr], y[te]


def standardize(train, *others):
    """(train - mean) / std with the training statistics, applied to every array given (a
    constant training column is only centred)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train,) + others]


def roc_auc(y_true, score):
    """ROC AUC by the rank formula (ties get average ranks); no per-sample Python loop."""
    y_true = np.asarray(y_true).reshape(-1) > 0.5
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes in y_true")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ---- splits --------------------------------------------------------------------------------
def chronological_split(*arrays, val_fraction=0.15, test_fraction=0.15, gap=0):
    """Split arrays along their first (time) axis into consecutive train / validation / test
    blocks, oldest first: no shuffling, so no information from the future leaks into training.

    gap drops that many samples before the validation and the test blocks (use the window
    length when the samples are overlapping windows). Returns, for each array in order,
    (train, val, test): x_train, x_val, x_test, y_train, y_val, y_test for (x, y)."""
    if not arrays:
        raise ValueError("chronological_split needs at least one array")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    for i, a in enumerate(arrays[1:], 1):
        if len(a) != n:
            raise ValueError(f"chronological_split: array {i} has {len(a)} samples but array 0 has {n}")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"chronological_split: {name} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError("chronological_split: val_fraction + test_fraction must be < 1")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"chronological_split: gap must be an int >= 0, got {gap!r}")
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_test - n_val - gap * ((n_val > 0) + (n_test > 0))
    if n_train < 1 or (val_fraction > 0 and n_val < 1) or (test_fraction > 0 and n_test < 1):
        raise ValueError(f"chronological_split: {n} samples are too few for val_fraction={val_fraction}, "
                         f"test_fraction={test_fraction}, gap={gap}")
    a0 = n_train
    v0 = a0 + (gap if n_val else 0)
    t0 = v0 + n_val + (gap if n_test else 0)
    out = []
    for a in arrays:
        out += [a[:a0], a[v0:v0 + n_val], a[t0:]]
    return out


# ---- CSV -----------------------------------------------------------------------------------
_MISSING = {"", "na", "nan", "null", "none", "?"}


def load_csv(path, target=None, features=None, categorical=None, positive=None, delimiter=",",
             dtype=np.float32):
    """Load a CSV with a header row into arrays: returns (x, y, feature_names).

    target: name (or index) of the label column, or None (y is None). features: column names to
    use (default: all but the target). categorical: None (every feature must be numeric),
    'auto' (one-hot encode the columns whose values are all non-numeric) or a list of column
    names to one-hot encode; encoded features are named 'column=value'. positive: if given, y
    is 1.0 where the target equals it (as a number or a string) and 0.0 elsewhere.

    A missing field ('', NA, NaN, ?), a non-numeric value in a numeric column or a row with the
    wrong number of fields raises ValueError naming the row (1-based data row and file line) and
    the column."""
    import csv
    import os
    path = os.fspath(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise ValueError(f"{path}: no data rows after the header")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{path}: duplicate column names {dup}")
    ncol = len(header)
    lens = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    bad = np.flatnonzero(lens != ncol)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{path}: row {i + 1} (line {i + 2}) has {lens[i]} fields but the header has {ncol}")
    cells = np.char.strip(np.array(body, dtype=str))

    def col_index(c, what):
        if isinstance(c, (int, np.integer)):
            if not -ncol <= c < ncol:
                raise ValueError(f"{path}: {what} index {c} out of range for {ncol} columns")
            return int(c) % ncol
        if c not in header:
            raise ValueError(f"{path}: no column named {c!r} ({what}); columns are {header}")
        return header.index(c)

    t_idx = None if target is None else col_index(target, "target")
    f_idx = ([col_index(c, "feature") for c in features] if features is not None
             else [j for j in range(ncol) if j != t_idx])
    if categorical is None or categorical == "auto":
        cat = set()
    else:
        cat = {col_index(c, "categorical") for c in ([categorical] if isinstance(categorical, str) else categorical)}

    missing_mask = np.isin(np.char.lower(cells), list(_MISSING))

    def where(i, j):
        return f"{path}: row {i + 1} (line {i + 2}), column {header[j]!r}"

    def check_missing(j):
        m = np.flatnonzero(missing_mask[:, j])
        if m.size:
            raise ValueError(f"{where(int(m[0]), j)}: missing value {str(cells[m[0], j])!r}")

    def numeric(j):
        col = cells[:, j]
        try:
            return col.astype(np.float64)
        except ValueError:
            for i, v in enumerate(col):  # error path only: find the first bad field
                try:
                    float(v)
                except ValueError:
                    raise ValueError(f"{where(i, j)}: non-numeric value {str(v)!r}"
                                     + (" (pass categorical='auto' or categorical=[...] to one-hot encode "
                                        "text columns)" if categorical is None else "")) from None
            raise

    def is_text(j):
        col = cells[:, j]
        try:
            col.astype(np.float64)
            return False
        except ValueError:
            ok = np.char.isdigit(np.char.lstrip(np.char.replace(col, ".", ""), "+-"))
            return not ok.any()  # all non-numeric: a text column; mixed: an error below

    blocks, names = [], []
    for j in f_idx:
        check_missing(j)
        if j in cat or (categorical == "auto" and is_text(j)):
            levels, inv = np.unique(cells[:, j], return_inverse=True)
            blocks.append(np.eye(len(levels), dtype=dtype)[inv])
            names += [f"{header[j]}={v}" for v in levels]
        else:
            v = numeric(j)
            if not np.all(np.isfinite(v)):
                i = int(np.flatnonzero(~np.isfinite(v))[0])
                raise ValueError(f"{where(i, j)}: value {str(cells[i, j])!r} is not finite")
            blocks.append(v.astype(dtype)[:, None])
            names.append(header[j])
    x = np.concatenate(blocks, axis=1) if blocks else np.empty((len(body), 0), dtype)
    y = None
    if t_idx is not None:
        check_missing(t_idx)
        if positive is not None:
            col = cells[:, t_idx]
            try:
                y = (col.astype(np.float64) == float(positive)).astype(dtype)
            except ValueError:
                y = (col == str(positive)).astype(dtype)
            if not y.any():
                raise ValueError(f"{path}: no row has {header[t_idx]!r} equal to positive={positive!r}")
        else:
            y = numeric(t_idx).astype(dtype)
    return x, y, names


# ---- generators ----------------------------------------------------------------------------
CARD_FEATURES = ["amount", "hour", "merchant_risk", "distance_from_home_km", "minutes_since_last",
                 "txns_last_24h", "amount_vs_avg", "foreign", "online", "card_present", "new_merchant",
                 "pin_used"]


def make_card_transactions(n_samples=50000, fraud_rate=0.002, seed=0):
    """Synthetic card transactions with rare fraud (about fraud_rate of the rows).

    Returns (x, y, feature_names): x float32 (n, 12) in natural units, y float32 in {0, 1}.
    Fraud tends to be larger relative to the card's usual amount, at night, far from home,
    online and foreign, in bursts (short gaps, many transactions in 24h), at new and riskier
    merchants; every signal overlaps with legitimate behaviour, so no single rule catches it."""
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    if not 0.0 < fraud_rate < 0.5:
        raise ValueError(f"fraud_rate must be in (0, 0.5), got {fraud_rate}")
    rng = np.random.default_rng(seed)
    n = n_samples
    k = max(1, int(round(n * fraud_rate)))
    y = np.zeros(n, np.float32)
    y[rng.choice(n, k, replace=False)] = 1.0
    f = y > 0
    # a latent "how suspicious" level: frauds high, a few legitimate rows high too (hard negatives)
    s = np.where(f, rng.beta(6, 2, n), rng.beta(1, 9, n))

    def mix(a, b):
        return np.where(rng.random(n) < s, b, a)
    usual = np.exp(rng.normal(3.6, 0.8, n))                          # card's usual amount
    ratio = np.exp(mix(rng.normal(0.0, 0.5, n), rng.normal(1.0, 0.8, n)))
    amount = usual * ratio
    hour = np.where(rng.random(n) < 0.15 + 0.5 * s, rng.integers(0, 6, n), rng.integers(6, 24, n)).astype(float)
    merchant_risk = np.clip(rng.beta(2, 8, n) + 0.35 * s * rng.random(n), 0, 1)
    distance = np.exp(mix(rng.normal(1.5, 1.0, n), rng.normal(4.5, 1.5, n)))
    gap = np.exp(mix(rng.normal(6.0, 1.5, n), rng.normal(2.5, 1.5, n)))
    txns = rng.poisson(2 + 6 * s, n).astype(float)
    foreign = (rng.random(n) < 0.04 + 0.35 * s).astype(float)
    online = (rng.random(n) < 0.3 + 0.45 * s).astype(float)
    present = ((rng.random(n) < 0.85 - 0.6 * s) & (online == 0)).astype(float)
    new_merchant = (rng.random(n) < 0.15 + 0.5 * s).astype(float)
    pin = (present * (rng.random(n) < 0.7 - 0.4 * s)).astype(float)
    x = np.stack([amount, hour, merchant_risk, distance, gap, txns, ratio, foreign, online, present,
                  new_merchant, pin], 1)
    return x.astype(np.float32), y, list(CARD_FEATURES)


def make_price_series(n_samples=5000, seed=0, start_price=100.0, mu=0.0003, omega=3e-6, alpha=0.09,
                      beta=0.89, ar=0.03, df=5.0):
    """A daily price series with volatility clustering: log returns follow an AR(1)-GARCH(1,1)
    with Student-t shocks (fat tails), r_t = mu + ar*(r_{t-1} - mu) + sigma_t*z_t,
    sigma_t^2 = omega + alpha*(r_{t-1} - mu)^2 + beta*sigma_{t-1}^2.

    Returns (prices, log_returns, volatility): prices float64 (n,), log_returns (n-1,) with
    log_returns[t] = log(prices[t+1] / prices[t]), volatility (n-1,) the conditional sigma of
    each return. Defaults give about 18% annualised volatility, like an equity index."""
    if n_samples < 3:
        raise ValueError(f"n_samples must be >= 3, got {n_samples}")
    if not (omega > 0 and alpha >= 0 and beta >= 0 and alpha + beta < 1):
        raise ValueError("make_price_series: need omega > 0, alpha, beta >= 0 and alpha + beta < 1")
    if not df > 2:
        raise ValueError(f"make_price_series: df must be > 2, got {df}")
    rng = np.random.default_rng(seed)
    m = n_samples - 1
    z = rng.standard_t(df, m) / np.sqrt(df / (df - 2.0))  # unit variance
    r = np.empty(m)
    sig = np.empty(m)
    var = omega / (1.0 - alpha - beta)
    prev = 0.0
    for t in range(m):  # the GARCH recursion is inherently sequential (m scalar steps)
        sig[t] = np.sqrt(var)
        e = sig[t] * z[t]
        r[t] = mu + ar * prev + e
        prev = r[t] - mu
        var = omega + alpha * e * e + beta * var
    prices = start_price * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    return prices, r, sig
