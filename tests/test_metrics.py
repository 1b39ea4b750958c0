"""Metrics vs hand-computed cases (Keras's documented examples), an independent per-threshold
float64 reference, and scikit-learn; schedules vs their closed forms; the optimizer feeds
schedules one vectorised call per chunk."""
import numpy as np
import pytest

import nncore as nn
from nncore import metrics as M
from nncore.optimizers import schedules as S


def _chunks(m, y, p, w=None, k=3):
    """Feed the metric in k uneven chunks, as fit does."""
    m.reset_state()
    cuts = np.linspace(0, len(y), k + 1).astype(int)
    for a, b in zip(cuts[:-1], cuts[1:]):
        m.update_state(y[a:b], p[a:b], None if w is None else w[a:b])
    return m.result()


def _data(n=2000, seed=0, pos=0.3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos).astype(np.float32)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1).astype(np.float32)
    w = rng.uniform(0.2, 2.0, n)
    return y, p, w


# ---- Keras's documented examples --------------------------------------------------------
def test_keras_doc_examples():
    m = M.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.result() == pytest.approx(0.75)
    np.testing.assert_array_equal(m.true_positives, [2, 1, 0])
    np.testing.assert_array_equal(m.false_positives, [2, 0, 0])
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(1.0)
    for cls in (M.Precision, M.Recall):
        m = cls()
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        assert m.result() == pytest.approx(2 / 3)
        m.reset_state()
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
        assert m.result() == pytest.approx(1.0)
    m = M.Precision(thresholds=[0.2, 0.9])
    m.update_state([0, 1, 1, 1], [0.5, 0.1, 0.95, 0.8])
    np.testing.assert_allclose(m.result(), [2 / 3, 1.0])
    f = M.F1Score(threshold=0.5)
    f.update_state(np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]]),
                   np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]]))
    np.testing.assert_allclose(f.result(), [0.5, 0.8, 2 / 3], rtol=1e-5)
    m = M.MeanAbsolutePercentageError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    assert m.result() == pytest.approx(250000000.0, rel=1e-6)
    m = M.RootMeanSquaredError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    assert m.result() == pytest.approx(0.5)
    m = M.BinaryAccuracy(threshold=0.7)
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(1.0)


def _ref_counts(thr, y, p, w):
    """Independent loop over thresholds (float64)."""
    pos = y > 0.5
    tp = np.array([np.sum(w[(p > t) & pos]) for t in thr])
    fp = np.array([np.sum(w[(p > t) & ~pos]) for t in thr])
    return tp, fp, w[pos].sum() - tp, w[~pos].sum() - fp


def _ref_auc(thr, y, p, w, curve):
    tp, fp, fn, tn = _ref_counts(thr, y, p, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        if curve == "ROC":
            x, h = np.nan_to_num(fp / (fp + tn)), np.nan_to_num(tp / (tp + fn))
            return np.sum((x[:-1] - x[1:]) * (h[:-1] + h[1:]) / 2)
        # Davis & Goadrich interpolation, written out per segment
        total = 0.0
        for i in range(len(thr) - 1):
            dtp, P0, P1 = tp[i] - tp[i + 1], tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            dp = P0 - P1
            slope = dtp / dp if dp > 0 else 0.0
            icpt = tp[i + 1] - slope * P1
            ratio = P0 / P1 if (P0 > 0 and P1 > 0) else 1.0
            den = tp[i + 1] + fn[i + 1]
            total += slope * (dtp + icpt * np.log(ratio)) / den if den > 0 else 0.0
        return total


@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_vs_reference_counts(curve, weighted):
    y, p, w = _data(3001, seed=1)
    p[:7] = [0.0, 1.0, 0.5, 0.25, 1 / 199, 2 / 199, 0.999999]  # exact threshold hits, ends
    m = M.AUC(curve=curve)
    thr = m.thresholds
    ww = w if weighted else np.ones_like(w)
    got = _chunks(m, y, p, w if weighted else None, k=4)
    tp, fp, fn, tn = _ref_counts(thr, y, p.astype(np.float64), ww)
    np.testing.assert_allclose(m.true_positives, tp, rtol=1e-12)
    np.testing.assert_allclose(m.false_positives, fp, rtol=1e-12)
    np.testing.assert_allclose(m.true_negatives, tn, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(m.false_negatives, fn, rtol=1e-12, atol=1e-9)
    assert got == pytest.approx(_ref_auc(thr, y, p, ww, curve), rel=1e-9)


def test_auc_vs_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    y, p, w = _data(5000, seed=2)
    assert _chunks(M.AUC(), y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=2e-3)
    assert _chunks(M.AUC(), y, p, w) == pytest.approx(sk.roc_auc_score(y, p, sample_weight=w), abs=2e-3)
    assert _chunks(M.AUC(curve="PR"), y, p) == pytest.approx(sk.average_precision_score(y, p), abs=1e-2)
    # predictions on a grid coarser than the thresholds: the interpolated ROC AUC is exact (ties count half)
    pg = np.round(p * 10) / 10
    assert _chunks(M.AUC(), y, pg) == pytest.approx(sk.roc_auc_score(y, pg), abs=1e-9)
    # custom thresholds (searchsorted path) and from_logits
    m = M.AUC(thresholds=np.linspace(0.001, 0.999, 999))
    assert _chunks(m, y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-3)
    logits = np.log(p + 1e-6) - np.log1p(-p + 1e-6)
    assert _chunks(M.AUC(from_logits=True), y, logits) == pytest.approx(_chunks(M.AUC(), y, p), abs=2e-3)


@pytest.mark.parametrize("thr", [0.5, 0.3])
def test_precision_recall_vs_sklearn(thr):
    sk = pytest.importorskip("sklearn.metrics")
    y, p, w = _data(1001, seed=3)
    yb = (p > thr).astype(int)
    assert _chunks(M.Precision(thresholds=thr), y, p) == pytest.approx(sk.precision_score(y, yb), rel=1e-12)
    assert _chunks(M.Recall(thresholds=thr), y, p) == pytest.approx(sk.recall_score(y, yb), rel=1e-12)
    assert _chunks(M.Precision(thresholds=thr), y, p, w) == pytest.approx(
        sk.precision_score(y, yb, sample_weight=w), rel=1e-12)
    assert _chunks(M.Recall(thresholds=thr), y, p, w) == pytest.approx(
        sk.recall_score(y, yb, sample_weight=w), rel=1e-12)
    acc = M.BinaryAccuracy(threshold=thr)
    assert _chunks(acc, y, p, w) == pytest.approx(sk.accuracy_score(y, yb, sample_weight=w), rel=1e-12)
    # class_id picks one column
    two = np.stack([1 - p, p], 1)
    assert _chunks(M.Precision(class_id=1, thresholds=thr), np.stack([1 - y, y], 1), two) == pytest.approx(
        sk.precision_score(y, yb), rel=1e-12)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f1_vs_sklearn(average):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    n, k = 997, 4
    lab = rng.integers(0, k, n)
    y = np.eye(k)[lab]
    logits = rng.normal(size=(n, k)) + 1.5 * y
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    w = rng.uniform(0.5, 2, n)
    for weights in (None, w):
        got = _chunks(M.F1Score(average=average), y, p, weights)
        ref = sk.f1_score(lab, p.argmax(1), average=average, sample_weight=weights)
        np.testing.assert_allclose(got, ref, atol=1e-5)
    # multi-label with a threshold
    yl = (rng.random((n, k)) < 0.4).astype(float)
    pl = np.clip(yl * 0.3 + rng.random((n, k)) * 0.7, 0, 1)
    got = _chunks(M.F1Score(average=average, threshold=0.5), yl, pl)
    ref = sk.f1_score(yl.astype(int), (pl > 0.5).astype(int), average="samples" if False else average)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    fb = _chunks(M.FBetaScore(average=average, beta=2.0, threshold=0.5), yl, pl)
    np.testing.assert_allclose(fb, sk.fbeta_score(yl.astype(int), (pl > 0.5).astype(int), beta=2.0,
                                                  average=average), atol=1e-5)


def test_regression_metrics_vs_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    y = rng.normal(size=(501, 3)) + 2
    p = y + rng.normal(scale=0.3, size=y.shape)
    w = rng.uniform(0.1, 3, 501)
    for weights in (None, w):
        kw = {"sample_weight": weights}
        assert _chunks(M.MeanSquaredError(), y, p, weights) == pytest.approx(sk.mean_squared_error(y, p, **kw), rel=1e-9)
        assert _chunks(M.RootMeanSquaredError(), y, p, weights) == pytest.approx(
            np.sqrt(sk.mean_squared_error(y, p, **kw)), rel=1e-9)
        assert _chunks(M.MeanAbsoluteError(), y, p, weights) == pytest.approx(sk.mean_absolute_error(y, p, **kw), rel=1e-9)
        assert _chunks(M.MeanAbsolutePercentageError(), y, p, weights) == pytest.approx(
            100 * sk.mean_absolute_percentage_error(y, p, **kw), rel=1e-9)


def test_names_and_errors():
    for name, cls in [("auc", M.AUC), ("AUC", M.AUC), ("precision", M.Precision), ("recall", M.Recall),
                      ("rmse", M.RootMeanSquaredError), ("mape", M.MeanAbsolutePercentageError),
                      ("f1_score", M.F1Score), ("root_mean_squared_error", M.RootMeanSquaredError)]:
        assert isinstance(M.get(name), cls)
    assert M.get("rmse").name == "rmse" and M.get("auc").name == "auc"
    with pytest.raises(ValueError, match="unknown metric"):
        M.get("auroc")
    with pytest.raises(ValueError, match="curve"):
        M.AUC(curve="XY")
    with pytest.raises(ValueError, match="average"):
        M.F1Score(average="binary")
    with pytest.raises(ValueError, match="sample_weight"):
        M.AUC().update_state([0, 1], [0.1, 0.9], sample_weight=[1, 2, 3])


def test_metrics_in_fit_and_evaluate():
    sk = pytest.importorskip("sklearn.metrics")
    nn.utils.set_random_seed(0)
    x, y, _ = nn.datasets.make_credit_default(3000, seed=1)
    x = (x - x.mean(0)) / x.std(0)
    model = nn.Sequential([nn.layers.Dense(16, activation="relu", input_shape=(12,)),
                           nn.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy",
                  metrics=["auc", M.AUC(curve="PR", name="auc_pr"), "precision", "recall",
                           M.F1Score(threshold=0.5)])
    h = model.fit(x[:2000], y[:2000], epochs=3, batch_size=64, verbose=0, validation_data=(x[2000:], y[2000:]))
    for k in ("auc", "auc_pr", "precision", "recall", "f1_score", "val_auc", "val_auc_pr"):
        assert len(h.history[k]) == 3
    logs = model.evaluate(x[2000:], y[2000:], return_dict=True, batch_size=100)
    p = model.predict(x[2000:])[:, 0]
    assert logs["auc"] == pytest.approx(sk.roc_auc_score(y[2000:], p), abs=3e-3)
    assert logs["auc"] == pytest.approx(h.history["val_auc"][-1], abs=1e-9)
    assert logs["precision"] == pytest.approx(sk.precision_score(y[2000:], p > 0.5), abs=1e-9)
    assert logs["auc"] > 0.7


# ---- schedules ----------------------------------------------------------------------------
def test_schedules_closed_forms():
    s = np.arange(0, 50, dtype=np.int64)
    e = S.ExponentialDecay(0.1, 10, 0.5)
    np.testing.assert_allclose(e(s), 0.1 * 0.5 ** (s / 10))
    np.testing.assert_allclose(S.ExponentialDecay(0.1, 10, 0.5, staircase=True)(s), 0.1 * 0.5 ** (s // 10))
    np.testing.assert_allclose(S.InverseTimeDecay(0.1, 10, 0.5)(s), 0.1 / (1 + 0.5 * s / 10))
    pw = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pw(0), pw(10), pw(11), pw(20), pw(21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    np.testing.assert_array_equal(pw(s), np.where(s <= 10, 1.0, np.where(s <= 20, 0.5, 0.1)))
    c = S.CosineDecay(0.1, 40, alpha=0.1)
    ref = 0.1 * (0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(s, 40) / 40)) + 0.1)
    np.testing.assert_allclose(c(s), ref)
    w = S.CosineDecay(0.0, 30, warmup_target=0.2, warmup_steps=10)
    np.testing.assert_allclose(w(s[:10]), 0.2 * s[:10] / 10)
    np.testing.assert_allclose(w(s[10:]), 0.2 * 0.5 * (1 + np.cos(np.pi * np.minimum(s[10:] - 10, 30) / 30)))
    assert isinstance(e(3), float) and e(3) == pytest.approx(0.1 * 0.5 ** 0.3)
    with pytest.raises(ValueError, match="one more"):
        S.PiecewiseConstantDecay([1, 2], [1.0])
    with pytest.raises(ValueError, match="decay_steps"):
        S.ExponentialDecay(0.1, 0, 0.5)
    assert nn.optimizers.schedules is S


def test_optimizer_uses_schedule_per_chunk():
    calls = []

    class Counting(S.ExponentialDecay):
        def __call__(self, step):
            calls.append(np.shape(step))
            return super().__call__(step)

    sched = Counting(0.01, 5, 0.5)
    opt = nn.optimizers.SGD(sched)
    np.testing.assert_allclose(opt.learning_rates(7, 4), [0.01 * 0.5 ** ((7 + i) / 5) for i in range(4)], rtol=1e-6)
    assert calls == [(4,)]
    x = np.random.default_rng(0).normal(size=(256, 3)).astype(np.float32)
    model = nn.Sequential([nn.layers.Dense(1, input_shape=(3,))])
    model.compile(opt, "mse")
    calls.clear()
    model.fit(x, x[:, :1], epochs=2, batch_size=32, verbose=0)
    assert len(calls) == 2 and opt.iterations == 16  # one call per chunk (= epoch at verbose=0)
