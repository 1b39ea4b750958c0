"""Credit risk on UCI's German credit data: an MLP scores each applicant's risk of being a bad
credit; we report the held-out ROC AUC and the cost under UCI's cost matrix (accepting a bad
applicant costs 5, rejecting a good one costs 1) at a threshold chosen on validation, and the
top reasons behind the riskiest applicant's score.

    python examples/credit_risk.py --data ../shared/data/german_credit.csv
    python examples/credit_risk.py            # generated borrowers (no download)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, best_threshold, nn  # noqa: E402

COST_BAD_ACCEPTED, COST_GOOD_REJECTED = 5.0, 1.0


def load(path, n_generated=5000, seed=0):
    if path is None:
        x, y, names = nn.datasets.make_credit_default(n_generated, seed=seed, default_rate=0.3)
        return x, y, names, "generated borrowers"
    # class: 1 = good, 2 = bad; the 13 categorical attributes (A11, A34, ...) are one-hot encoded
    x, y, names = nn.datasets.load_csv(path, target="class", positive=2, categorical="auto")
    return x, y, names, os.path.basename(path)


def uci_cost(tp, fp, fn, tn):
    """tp = bad applicants rejected, fn = bad accepted, fp = good rejected."""
    return COST_BAD_ACCEPTED * fn + COST_GOOD_REJECTED * fp


def run(data=None, quick=False, seed=0, verbose=1):
    x, y, names, source = load(data, 2000 if quick else 5000, seed)
    x_tr, x_te, y_tr, y_te = nn.datasets.train_test_split(x, y, test_size=0.2, seed=seed, stratify=True)
    x_tr, x_va, y_tr, y_va = nn.datasets.train_test_split(x_tr, y_tr, test_size=0.2, seed=seed + 1, stratify=True)
    x_tr, x_va, x_te = nn.datasets.standardize(x_tr, x_va, x_te)
    if verbose:
        print(f"credit risk on {source}: {len(x_tr)} train / {len(x_va)} validation / {len(x_te)} test "
              f"applicants, {x.shape[1]} features, bad rate {y.mean():.1%}")

    nn.utils.set_random_seed(seed)
    model = nn.Sequential([
        nn.layers.Dense(32, activation="relu", input_shape=(x_tr.shape[1],),
                        kernel_regularizer=nn.regularizers.L2(1e-3)),
        nn.layers.Dense(16, activation="relu"),
        nn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nn.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["auc"])
    stop = nn.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=10, restore_best_weights=True)
    with Timer() as t:
        model.fit(x_tr, y_tr, epochs=40 if quick else 150, batch_size=32, validation_data=(x_va, y_va),
                  callbacks=[stop], verbose=0)
    p_va, p_te = model.predict(x_va)[:, 0], model.predict(x_te)[:, 0]
    auc = model.evaluate(x_te, y_te, return_dict=True)["auc"]
    thr, _ = best_threshold(y_va, p_va, uci_cost)
    reject = p_te >= thr
    bad = y_te > 0.5
    cost = uci_cost((reject & bad).sum(), (reject & ~bad).sum(), (~reject & bad).sum(), (~reject & ~bad).sum())
    accept_all = COST_BAD_ACCEPTED * bad.sum()
    result = {"source": source, "auc": float(auc), "cost_per_applicant": float(cost / len(y_te)),
              "accept_all_cost_per_applicant": float(accept_all / len(y_te)), "threshold": thr,
              "epochs": len(model.history.epoch), "train_seconds": t.seconds}
    if verbose:
        print(f"trained {result['epochs']} epochs in {t.seconds:.2f}s (early stopping on val_auc)")
        print(f"test ROC AUC {auc:.3f}")
        print(f"UCI cost per applicant at threshold {thr:.3f} (chosen on validation): {cost / len(y_te):.3f}  "
              f"(accepting everyone: {accept_all / len(y_te):.3f})")
        i = int(np.argmax(p_te))
        reasons = nn.explain.top_reasons(model, x_te[i], names, k=3, baseline=np.zeros(x_te.shape[1]))
        print(f"riskiest test applicant (score {p_te[i]:.2f}); top reasons relative to an average applicant:")
        for r in reasons:
            print(f"  {r['feature']:<45} {r['value']:+.2f} sd   +{r['attribution']:.3f}")
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="german_credit.csv (default: generated borrowers)")
    ap.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.data, a.quick, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
