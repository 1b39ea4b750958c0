"""Default prediction on any CSV of borrowers: a tabular MLP with class weights for the rare
defaults, standardisation learned from the training data (a `Normalization` layer adapted to it
where nncore has one), early stopping on validation AUC, and a calibration table.

    python examples/default_prediction.py --data loans.csv --target default [--positive 1]
    python examples/default_prediction.py --data ../shared/data/german_credit_numeric.csv --target class --positive 2
    python examples/default_prediction.py     # generated borrowers (no download)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, nn, normalizer  # noqa: E402


def calibration_table(y, p, bins=10):
    """Rows (lo, hi, count, mean predicted, observed default rate) over quantile bins of p."""
    y, p = np.asarray(y).reshape(-1), np.asarray(p, np.float64).reshape(-1)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    cnt = np.bincount(b, minlength=len(edges) - 1)
    mp = np.bincount(b, p, minlength=len(edges) - 1) / np.maximum(cnt, 1)
    obs = np.bincount(b, y, minlength=len(edges) - 1) / np.maximum(cnt, 1)
    return [(edges[i], edges[i + 1], int(cnt[i]), mp[i], obs[i]) for i in range(len(cnt)) if cnt[i]]


def run(data=None, target=None, positive=None, quick=False, seed=0, verbose=1, epochs=None):
    if data is None:
        x, y, names = nn.datasets.make_credit_default(8000 if quick else 20000, seed=seed)
        source = "generated borrowers"
    else:
        if target is None:
            raise SystemExit("--target is required with --data (the name of the default column)")
        x, y, names = nn.datasets.load_csv(data, target=target, positive=positive, categorical="auto")
        source = os.path.basename(data)
        if positive is None and not np.isin(y, (0.0, 1.0)).all():
            raise SystemExit(f"the target {target!r} is not 0/1: pass --positive VALUE to say which value is a default")
    x_tr, x_te, y_tr, y_te = nn.datasets.train_test_split(x, y, test_size=0.2, seed=seed, stratify=True)
    x_tr, x_va, y_tr, y_va = nn.datasets.train_test_split(x_tr, y_tr, test_size=0.2, seed=seed + 1, stratify=True)

    nn.utils.set_random_seed(seed)
    first = [normalizer(x_tr), nn.layers.Dense(64, activation="relu")]
    how = "Normalization layer adapted to the training data"
    model = nn.Sequential(first + [nn.layers.Dense(32, activation="relu"), nn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["auc", nn.metrics.AUC(curve="PR", name="auc_pr")])
    # balanced class weights: each class contributes equally to the loss
    rate = float(y_tr.mean())
    class_weight = {0: 0.5 / (1 - rate), 1: 0.5 / rate}
    stop = nn.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=5, restore_best_weights=True)
    if verbose:
        print(f"default prediction on {source}: {len(x_tr)} train / {len(x_va)} validation / {len(x_te)} test, "
              f"{x.shape[1]} features ({how}), default rate {y.mean():.1%}, "
              f"class weights {{0: {class_weight[0]:.2f}, 1: {class_weight[1]:.2f}}}")
    with Timer() as t:
        model.fit(x_tr, y_tr, epochs=epochs or (15 if quick else 60), batch_size=64, class_weight=class_weight,
                  validation_data=(x_va, y_va), callbacks=[stop], verbose=0)
    logs = model.evaluate(x_te, y_te, return_dict=True, batch_size=1024)
    p = model.predict(x_te, batch_size=1024)[:, 0]
    table = calibration_table(y_te, p)
    result = {"source": source, "auc": logs["auc"], "auc_pr": logs["auc_pr"], "train_seconds": t.seconds,
              "epochs": len(model.history.epoch), "calibration": table}
    if verbose:
        print(f"trained {result['epochs']} epochs in {t.seconds:.2f}s; test ROC AUC {logs['auc']:.3f}, "
              f"PR AUC {logs['auc_pr']:.3f}")
        print("calibration on the test set (class weights inflate the scores of the rare class; rank by them, or "
              "recalibrate before reading them as probabilities):")
        print(f"  {'score range':>17}  {'n':>6}  {'mean score':>10}  {'default rate':>12}")
        for lo, hi, c, mp, ob in table:
            print(f"  {lo:7.3f} - {hi:7.3f}  {c:6d}  {mp:10.3f}  {ob:12.3f}")
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="CSV of borrowers with a header row (default: generated borrowers)")
    ap.add_argument("--target", help="name of the default column")
    ap.add_argument("--positive", help="value of the target that means default (default: the target is 0/1)")
    ap.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.data, a.target, a.positive, a.quick, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
