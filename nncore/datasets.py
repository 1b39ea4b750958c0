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


def train_test_split(x, y, test_size=0.2, seed=0):
    """Random split (use a chronological split for time series)."""
    n = len(x)
    idx = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_size))
    return x[idx[n_test:]], x[idx[:n_test]], y[idx[n_test:]], y[idx[:n_test]]


def standardize(train, *others):
    """(train - mean) / std with the training statistics, applied to every array given."""
    mean = train.mean(axis=0)
    std = train.std(axis=0) + 1e-7
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
