"""The four worked examples run end to end on (slices of) the real data in ../shared/data (or
$NNCORE_DATA) and reach stated floors; skipped cleanly when the data is absent."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NNCORE_DATA") or os.path.join(ROOT, "..", "shared", "data")


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _data(name):
    p = os.path.join(DATA, name)
    if not os.path.exists(p):
        pytest.skip(f"{name} not found in {DATA} (set NNCORE_DATA to the shared data folder)")
    return p


def test_credit_risk_german():
    r = _example("credit_risk").run(_data("german_credit.csv"), quick=True, verbose=0)
    assert r["auc"] > 0.70
    assert r["cost_per_applicant"] < 0.8 * r["accept_all_cost_per_applicant"]


def test_credit_embeddings_german():
    """The functional embedding model against the one-hot MLP on the real data."""
    r = _example("credit_embeddings").run(_data("german_credit.csv"), quick=True, verbose=0)
    emb, oh = r["embeddings"], r["one-hot MLP"]
    assert emb["auc"] > 0.7 and oh["auc"] > 0.7
    assert emb["cost_per_applicant"] < 1.5  # better than accepting everyone
    assert abs(emb["auc"] - oh["auc"]) < 0.1


def test_default_prediction_csv():
    r = _example("default_prediction").run(_data("german_credit_numeric.csv"), target="class", positive="2",
                                           quick=True, verbose=0)
    assert r["auc"] > 0.70
    assert sum(c for _, _, c, _, _ in r["calibration"]) == 200
    # the calibration table is monotone in the large: the top bin defaults more than the bottom
    assert r["calibration"][-1][4] > r["calibration"][0][4]


def test_market_forecasting_sp500():
    r = _example("market_forecasting").run(_data("sp500_daily.csv"), quick=True, verbose=0, limit=2500)
    assert r["last_value_mse"] > 1.5 * r["zero_mse"]  # the naive last-value forecast is poor
    for k in ("lstm", "conv1d", "lstm_vol"):  # lstm_vol: the two-input functional model
        if k + "_mse" in r:
            assert r[k + "_mse"] < 1.15 * r["zero_mse"], k  # a model must not be much worse than zero


def test_fraud_detection_ulb():
    r = _example("fraud_detection").run(_data("ulb_creditcard_fraud_balanced.csv"), quick=True, verbose=0)
    assert r["auc_pr"] > 0.85 and r["auc"] > 0.85
    assert r["precision"] > 0.8 and r["recall"] > 0.6
    assert 0 < r["auc_pr_real_prevalence"] < r["auc_pr"]


def test_examples_run_on_generated_data(capsys):
    """No data needed: the default path of a script, through its command line."""
    assert _example("credit_risk").main(["--quick"]) == 0
    assert _example("credit_embeddings").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "generated borrowers" in out and "test ROC AUC" in out


def test_keras_model_example(tmp_path):
    """examples/keras_model.py: the nncore -> .keras -> nncore round trip, and loading the Keras
    files Keras wrote (tests/keras_files), inputs made to fit each model (Embedding indices)."""
    pytest.importorskip("h5py", reason="h5py (nncore[keras]) reads Keras files")
    ex = _example("keras_model")
    r = ex.round_trip(str(tmp_path / "credit.keras"), verbose=0, epochs=2)
    assert r["auc"] > 0.8 and r["nncore_reload_max_diff"] == 0.0
    assert r.get("keras_max_diff", 0.0) < 1e-5
    for f in ("two_input.keras", "embedding.keras", "cnn.h5"):
        r = ex.bring(os.path.join(ROOT, "tests", "keras_files", f), verbose=0)
        assert r["compiled"] and r.get("keras_max_diff", 0.0) < 1e-5
