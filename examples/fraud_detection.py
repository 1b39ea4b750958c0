"""Fraud detection on card transactions: an MLP trained with focal loss (or class weights)
for the rare frauds, scored by the area under the precision-recall curve (the informative
number when positives are rare), with the decision threshold chosen on validation to maximise
F1 and then applied unchanged to the test set.

    python examples/fraud_detection.py --data ../shared/data/ulb_creditcard_fraud_balanced.csv
    python examples/fraud_detection.py                 # generated transactions, 0.2% fraud
    python examples/fraud_detection.py --loss weighted # class weights instead of focal loss

The ULB file is a 50/50 subsample (all 492 frauds, 492 normal rows) of a set with 0.17% fraud;
with it we also report the test AUC-PR with each normal row weighted by 577.9, which estimates
the AUC-PR at the real prevalence.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, best_threshold, nn  # noqa: E402

ULB_NORMAL_WEIGHT = 284315 / 492


def load(path, n_generated=60000, seed=0):
    if path is None:
        x, y, names = nn.datasets.make_card_transactions(n_generated, fraud_rate=0.002, seed=seed)
        return x, y, names, "generated transactions"
    x, y, names = nn.datasets.load_csv(path, target="Class")
    return x, y, names, os.path.basename(path)


def run(data=None, loss="focal", quick=False, seed=0, verbose=1):
    x, y, names, source = load(data, 30000 if quick else 100000, seed)
    # heavy-tailed non-negative columns (amounts, distances, gaps) on a log scale
    heavy = (x.min(0) >= 0) & (x.max(0) > 100)
    x = np.where(heavy, np.log1p(np.maximum(x, 0)), x).astype(np.float32)
    x_tr, x_te, y_tr, y_te = nn.datasets.train_test_split(x, y, test_size=0.25, seed=seed, stratify=True)
    x_tr, x_va, y_tr, y_va = nn.datasets.train_test_split(x_tr, y_tr, test_size=0.25, seed=seed + 1, stratify=True)
    x_tr, x_va, x_te = nn.datasets.standardize(x_tr, x_va, x_te)
    rate = float(y_tr.mean())
    if verbose:
        print(f"fraud detection on {source}: {len(x_tr)} train / {len(x_va)} validation / {len(x_te)} test "
              f"transactions, {x.shape[1]} features, fraud rate {y.mean():.2%}, loss: {loss}")

    nn.utils.set_random_seed(seed)
    model = nn.Sequential([nn.layers.Dense(32, activation="relu", input_shape=(x.shape[1],)),
                           nn.layers.Dense(16, activation="relu"),
                           nn.layers.Dense(1, activation="sigmoid")])
    fit_kw = {}
    if loss == "focal":
        loss_fn = nn.losses.BinaryFocalCrossentropy(gamma=2.0, apply_class_balancing=rate < 0.2,
                                                    alpha=min(0.9, max(0.5, 1 - 10 * rate)))
    elif loss == "weighted":
        loss_fn = "binary_crossentropy"
        fit_kw["class_weight"] = {0: 0.5 / (1 - rate), 1: 0.5 / rate}
    else:
        raise SystemExit(f"--loss must be 'focal' or 'weighted', got {loss!r}")
    model.compile(optimizer=nn.optimizers.Adam(1e-3), loss=loss_fn,
                  metrics=[nn.metrics.AUC(curve="PR", name="auc_pr"), "auc"])
    stop = nn.callbacks.EarlyStopping(monitor="val_auc_pr", mode="max", patience=6, restore_best_weights=True)
    with Timer() as t:
        model.fit(x_tr, y_tr, epochs=20 if quick else 60, batch_size=128 if len(x_tr) > 5000 else 32,
                  validation_data=(x_va, y_va), callbacks=[stop], verbose=0, **fit_kw)
    p_va = model.predict(x_va, batch_size=2048)[:, 0]
    p_te = model.predict(x_te, batch_size=2048)[:, 0]
    # threshold maximising F1 on validation (minimise -F1 = -2tp / (2tp + fp + fn))
    thr, _ = best_threshold(y_va, p_va, lambda tp, fp, fn, tn: -2 * tp / np.maximum(2 * tp + fp + fn, 1))
    logs = model.evaluate(x_te, y_te, return_dict=True, batch_size=2048)
    flag = p_te >= thr
    fraud = y_te > 0.5
    tp, fp, fn = int((flag & fraud).sum()), int((flag & ~fraud).sum()), int((~flag & fraud).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    res = {"source": source, "auc_pr": logs["auc_pr"], "auc": logs["auc"], "threshold": thr,
           "precision": precision, "recall": recall, "f1": 2 * tp / max(2 * tp + fp + fn, 1),
           "train_seconds": t.seconds, "epochs": len(model.history.epoch)}
    if data is not None and "balanced" in os.path.basename(data):
        m = nn.metrics.AUC(curve="PR")
        m.update_state(y_te, p_te, np.where(fraud, 1.0, ULB_NORMAL_WEIGHT))
        res["auc_pr_real_prevalence"] = m.result()
    if verbose:
        print(f"trained {res['epochs']} epochs in {t.seconds:.2f}s")
        print(f"test AUC-PR {res['auc_pr']:.3f}, ROC AUC {res['auc']:.3f}")
        print(f"threshold {thr:.3f} (best F1 on validation) on test: precision {precision:.3f}, recall {recall:.3f}, "
              f"F1 {res['f1']:.3f}  ({tp} frauds caught, {fn} missed, {fp} false alarms)")
        if "auc_pr_real_prevalence" in res:
            print(f"AUC-PR re-weighted to the full set's 0.17% fraud rate: {res['auc_pr_real_prevalence']:.3f}")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="ulb_creditcard_fraud_balanced.csv or a CSV with a 'Class' column "
                                   "(default: generated transactions)")
    ap.add_argument("--loss", default="focal", choices=["focal", "weighted"])
    ap.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.data, a.loss, a.quick, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
