"""Credit risk with entity embeddings: the standard tabular deep-learning architecture on UCI's
German credit data. Each categorical column (checking account, credit history, purpose, ...)
gets its own Embedding; the embeddings are concatenated with the standardised numeric columns
and fed to an MLP -- a functional model with one input per categorical column plus one numeric
input. It is compared on the same split with the one-hot MLP of credit_risk.py, by held-out ROC
AUC and by the cost under UCI's cost matrix (accepting a bad applicant costs 5, rejecting a good
one 1) at a threshold chosen on validation.

    python examples/credit_embeddings.py --data ../shared/data/german_credit.csv
    python examples/credit_embeddings.py            # generated applicants (no download)
"""
import argparse
import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, best_threshold, nn  # noqa: E402
from credit_risk import COST_BAD_ACCEPTED, uci_cost  # noqa: E402  (the same cost matrix)

L = nn.layers


def load(path, n_generated=3000, seed=0):
    """(codes [n, n_cat] int, numeric [n, n_num] float, y, cat names, cardinalities, num names)."""
    if path is None:  # generated: numeric borrower features, some binned into categories
        x, y, names = nn.datasets.make_credit_default(n_generated, seed=seed, default_rate=0.3)
        n_cat = min(4, x.shape[1] // 2)
        codes = np.stack([np.searchsorted(np.quantile(x[:, j], [0.2, 0.4, 0.6, 0.8]), x[:, j])
                          for j in range(n_cat)], axis=1)
        return (codes, x[:, n_cat:], y, [f"{n} (binned)" for n in names[:n_cat]], [5] * n_cat,
                list(names[n_cat:]), "generated applicants")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    cols = list(zip(*body))
    y = np.array([c == "2" for c in cols[head.index("class")]], np.float32)  # 2 = bad
    cat, num = [], []
    for j, name in enumerate(head):
        if name == "class":
            continue
        try:
            num.append((name, np.array(cols[j], np.float32)))
        except ValueError:
            cat.append((name, cols[j]))
    codes, cards = [], []
    for name, vals in cat:
        levels = sorted(set(vals))
        codes.append(np.array([levels.index(v) for v in vals]))
        cards.append(len(levels))
    return (np.stack(codes, 1), np.stack([v for _, v in num], 1), y, [n for n, _ in cat], cards,
            [n for n, _ in num], os.path.basename(path))


def embedding_model(cat_names, cards, n_num, dim=4):
    """One (batch, 1) index input and one Embedding per categorical column, plus the numeric
    columns; concatenated; Dense 32-16-1."""
    cat_in = [nn.Input(shape=(1,), name=f"cat{j}") for j in range(len(cards))]
    num_in = nn.Input(shape=(n_num,), name="numeric")
    embs = [L.Flatten()(L.Embedding(c, min(dim, c), name=f"emb{j}")(i))
            for j, (c, i) in enumerate(zip(cards, cat_in))]
    h = L.concatenate(embs + [num_in])
    h = L.Dense(32, activation="relu", kernel_regularizer=nn.regularizers.L2(1e-3))(h)
    h = L.Dropout(0.2)(h)
    h = L.Dense(16, activation="relu")(h)
    out = L.Dense(1, activation="sigmoid", name="bad")(h)
    return nn.Model(cat_in + [num_in], out, name="credit_embeddings")


def onehot_model(n_features):
    return nn.Sequential([
        L.Dense(32, activation="relu", input_shape=(n_features,), kernel_regularizer=nn.regularizers.L2(1e-3)),
        L.Dropout(0.2), L.Dense(16, activation="relu"), L.Dense(1, activation="sigmoid")], name="one_hot_mlp")


def _score(model, x_va, y_va, x_te, y_te):
    p_va, p_te = model.predict(x_va)[:, 0], model.predict(x_te)[:, 0]
    thr, _ = best_threshold(y_va, p_va, uci_cost)
    reject, bad = p_te >= thr, y_te > 0.5
    cost = uci_cost((reject & bad).sum(), (reject & ~bad).sum(), (~reject & bad).sum(), (~reject & ~bad).sum())
    return float(nn.datasets.roc_auc(y_te, p_te)), float(cost / len(y_te))


def run(data=None, quick=False, seed=0, verbose=1):
    codes, num, y, cat_names, cards, num_names, source = load(data, 1500 if quick else 3000, seed)
    n = len(y)
    idx = np.arange(n)
    i_tr, i_te, _, _ = nn.datasets.train_test_split(idx[:, None], y, test_size=0.2, seed=seed, stratify=True)
    i_tr, i_va, _, _ = nn.datasets.train_test_split(i_tr, y[i_tr[:, 0]], test_size=0.2, seed=seed + 1, stratify=True)
    i_tr, i_va, i_te = i_tr[:, 0], i_va[:, 0], i_te[:, 0]
    num_tr, num_va, num_te = nn.datasets.standardize(num[i_tr], num[i_va], num[i_te])
    onehot = np.concatenate([np.eye(c, dtype=np.float32)[codes[:, j]] for j, c in enumerate(cards)], 1)
    oh_tr, oh_va, oh_te = (np.concatenate([onehot[i], s], 1) for i, s in ((i_tr, num_tr), (i_va, num_va), (i_te, num_te)))

    def split_inputs(ii, numeric):
        return {**{f"cat{j}": codes[ii, j:j + 1].astype(np.float32) for j in range(len(cards))}, "numeric": numeric}

    x_tr, x_va, x_te = split_inputs(i_tr, num_tr), split_inputs(i_va, num_va), split_inputs(i_te, num_te)
    y_tr, y_va, y_te = y[i_tr], y[i_va], y[i_te]
    if verbose:
        print(f"credit embeddings on {source}: {len(i_tr)} train / {len(i_va)} validation / {len(i_te)} test, "
              f"{len(cards)} categorical columns (levels {cards}) + {num.shape[1]} numeric")
    epochs = 40 if quick else 150
    results = {"source": source}
    for label, make, xs in (("embeddings", lambda: embedding_model(cat_names, cards, num.shape[1]), (x_tr, x_va, x_te)),
                            ("one-hot MLP", lambda: onehot_model(oh_tr.shape[1]), (oh_tr, oh_va, oh_te))):
        nn.utils.set_random_seed(seed)
        model = make()
        model.compile(optimizer=nn.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["auc"])
        stop = nn.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=10, restore_best_weights=True)
        with Timer() as t:
            model.fit(xs[0], y_tr, epochs=epochs, batch_size=32, validation_data=(xs[1], y_va),
                      callbacks=[stop], verbose=0)
        auc, cost = _score(model, xs[1], y_va, xs[2], y_te)
        results[label] = {"auc": auc, "cost_per_applicant": cost, "params": model.count_params(),
                          "epochs": len(model.history.epoch), "train_seconds": t.seconds}
        if verbose:
            print(f"  {label:<12} test AUC {auc:.3f}   UCI cost / applicant {cost:.3f}   "
                  f"{model.count_params():>5} params, {len(model.history.epoch)} epochs in {t.seconds:.2f}s")
    if verbose:
        print(f"  accepting everyone costs {COST_BAD_ACCEPTED * y_te.mean():.3f} per applicant")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="german_credit.csv (default: generated applicants)")
    ap.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.data, a.quick, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
