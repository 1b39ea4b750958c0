"""scikit-learn estimators: sklearn's own estimator checks, pipelines, searches, pandas, errors."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nncore as nn  # noqa: E402
from nncore.sklearn import EXPECTED_FAILED_CHECKS, NNClassifier, NNRegressor  # noqa: E402

# Small, fast settings that still learn sklearn's check data sets (blobs, make_regression).
CHECK_ESTIMATORS = [
    NNClassifier(hidden_layer_sizes=(16,), epochs=30, batch_size=16, learning_rate=0.02, random_state=0),
    NNRegressor(hidden_layer_sizes=(16,), epochs=30, batch_size=16, learning_rate=0.02, random_state=0),
]


@parametrize_with_checks(CHECK_ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)
    return X, y / y.std()


def test_classifier_learns_and_predicts(clf_data):
    X, y = clf_data
    clf = make_pipeline(StandardScaler(), NNClassifier(epochs=20, learning_rate=0.01, random_state=1))
    clf.fit(X, y)
    assert clf.score(X, y) > 0.9
    p = clf.predict_proba(X)
    assert p.shape == (300, 2) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[p.argmax(1)])
    est = clf[-1]
    assert est.n_features_in_ == 8 and est.n_iter_ == 20 and len(est.history_["loss"]) == 20
    assert est.history_["loss"][-1] < est.history_["loss"][0]


def test_string_labels_multiclass_and_class_weight():
    X, y = make_classification(n_samples=240, n_features=6, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    labels = np.array(["bad", "good", "neutral"])[y]
    clf = NNClassifier(hidden_layer_sizes=(16,), epochs=15, learning_rate=0.02, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["bad", "good", "neutral"]
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, labels) > 0.8
    # a huge weight on one class makes it (nearly) the only prediction
    heavy = clone(clf).set_params(class_weight={"good": 1000.0, "bad": 1e-3, "neutral": 1e-3}).fit(X, labels)
    assert np.mean(heavy.predict(X) == "good") > np.mean(clf.predict(X) == "good") + 0.2
    bal = clone(clf).set_params(class_weight="balanced").fit(X, labels)
    assert bal.score(X, labels) > 0.8
    with pytest.raises(ValueError, match="not a class"):
        clone(clf).set_params(class_weight={"ugly": 2.0}).fit(X, labels)
    cat = clone(clf).set_params(loss="categorical_crossentropy").fit(X, labels)
    assert cat.score(X, labels) > 0.8


def test_random_state_reproducible_and_global_rng_untouched(clf_data):
    X, y = clf_data
    nn.utils.set_random_seed(5)
    before = nn.utils.rng().bit_generator.state
    a = NNClassifier(epochs=3, random_state=7).fit(X, y).predict_proba(X)
    b = NNClassifier(epochs=3, random_state=7).fit(X, y).predict_proba(X)
    c = NNClassifier(epochs=3, random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert nn.utils.rng().bit_generator.state == before


def test_regressor_single_and_multi_output(reg_data):
    X, y = reg_data
    reg = NNRegressor(hidden_layer_sizes=(32,), epochs=30, learning_rate=0.01, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (300,) and reg.score(X, y) > 0.9
    Y = np.column_stack([y, -2 * y])
    reg2 = clone(reg).fit(X, Y)
    assert reg2.n_outputs_ == 2 and reg2.predict(X).shape == (300, 2) and reg2.score(X, Y) > 0.9
    reg3 = clone(reg).set_params(loss="huber").fit(X, y)
    assert reg3.score(X, y) > 0.8


def test_custom_model_function(clf_data):
    X, y = clf_data
    seen = {}

    def build(n_features_in, n_classes):
        seen.update(n_features_in=n_features_in, n_classes=n_classes)
        return nn.Sequential([nn.layers.Dense(8, activation="tanh"), nn.layers.Dense(n_classes, activation="softmax")])

    clf = NNClassifier(model=build, epochs=10, learning_rate=0.01, random_state=0).fit(X, y)
    assert seen == {"n_features_in": 8, "n_classes": 2}
    assert clf.model_.layers[0].units == 8 and clf.predict_proba(X).shape == (300, 2)

    def wrong(meta):
        return nn.Sequential([nn.layers.Dense(3, activation="relu")])

    with pytest.raises(ValueError, match="softmax"):
        NNClassifier(model=wrong).fit(X, y)
    with pytest.raises(TypeError, match="nn.Sequential"):
        NNClassifier(model=lambda: "not a model").fit(X, y)
    reg = NNRegressor(model=lambda **kw: nn.Sequential([nn.layers.Dense(kw["n_outputs"])]), epochs=2).fit(X, y)
    assert reg.model_.count_params() == 9


def test_partial_fit(clf_data, reg_data):
    X, y = clf_data
    clf = NNClassifier(random_state=0, learning_rate=0.01)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:150], y[:150], classes=[0, 1])
    w0 = clf.model_.get_weights()[0].copy()
    for _ in range(5):
        clf.partial_fit(X[150:], y[150:])
    assert clf.n_iter_ == 6 and not np.array_equal(w0, clf.model_.get_weights()[0])
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)
    Xr, yr = reg_data
    reg = NNRegressor(random_state=0).partial_fit(Xr, yr).partial_fit(Xr, yr)
    assert reg.n_iter_ == 2


def test_pickle_roundtrip_keeps_predictions_and_training_state(clf_data):
    X, y = clf_data
    clf = NNClassifier(epochs=3, random_state=0).fit(X, y)
    clone2 = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.predict_proba(X), clone2.predict_proba(X))
    # the optimizer state travels too: one more epoch gives the same weights in both
    clf.partial_fit(X, y)
    clone2.partial_fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), clone2.predict_proba(X))


def test_search_and_cross_validation(clf_data):
    X, y = clf_data
    pipe = make_pipeline(StandardScaler(), NNClassifier(epochs=3, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and scores.mean() > 0.8
    grid = GridSearchCV(pipe, {"nnclassifier__hidden_layer_sizes": [(8,), (16, 8)],
                               "nnclassifier__learning_rate": [1e-3, 1e-2]}, cv=2, scoring="roc_auc")
    grid.fit(X, y)
    assert grid.best_params_["nnclassifier__hidden_layer_sizes"] in [(8,), (16, 8)]
    assert len(grid.cv_results_["mean_test_score"]) == 4
    rs = RandomizedSearchCV(pipe, {"nnclassifier__learning_rate": [1e-3, 3e-3, 1e-2],
                                   "nnclassifier__class_weight": [None, "balanced", {0: 1, 1: 2}]},
                            n_iter=3, cv=2, random_state=0, scoring="roc_auc").fit(X, y)
    assert rs.best_score_ > 0.8


def test_unknown_set_params_key():
    with pytest.raises(ValueError, match="Invalid parameter 'epoch'"):
        NNClassifier().set_params(epoch=3)
    with pytest.raises(ValueError, match="Invalid parameter"):
        make_pipeline(StandardScaler(), NNRegressor()).set_params(nnregressor__hidden=3)


def test_bad_hyper_parameters(clf_data):
    X, y = clf_data
    for kw, msg in [({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"),
                    ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
                    ({"validation_split": 1.5}, "validation_split"), ({"optimizer": "adagrad2"}, "optimizer"),
                    ({"activation": "nope"}, "activation"), ({"class_weight": "weird"}, "class_weight")]:
        with pytest.raises(ValueError, match=msg):
            NNClassifier(**kw).fit(X, y)


def test_validation_split_and_callbacks(clf_data):
    X, y = clf_data
    es = nn.callbacks.EarlyStopping(monitor="val_loss", patience=1) if hasattr(nn.callbacks, "EarlyStopping") else None
    cbs = [es] if es is not None else []
    clf = NNClassifier(epochs=50, validation_split=0.2, callbacks=cbs, random_state=0, learning_rate=0.05).fit(X, y)
    assert "val_loss" in clf.history_
    if es is not None:
        assert clf.n_iter_ < 50
        assert es.model is None  # the estimator's parameter is never mutated (a copy is used)


# ---- pandas ---------------------------------------------------------------------------------
def test_pandas_dataframe_and_column_transformer():
    pd = pytest.importorskip("pandas")
    X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    df = pd.DataFrame(X, columns=["income", "debt", "age", "util"])
    df["region"] = np.array(["north", "south", "east"])[np.arange(200) % 3]
    ser = pd.Series(y, name="default")

    clf = NNClassifier(epochs=3, random_state=0)
    with pytest.raises(ValueError, match=r"column\(s\) \['region'\] are not numeric"):
        clf.fit(df, ser)

    ct = ColumnTransformer([("num", StandardScaler(), ["income", "debt", "age", "util"]),
                            ("cat", OneHotEncoder(), ["region"])])
    pipe = make_pipeline(ct, clf).fit(df, ser)
    assert pipe.predict_proba(df).shape == (200, 2)

    num = df.drop(columns="region")
    est = NNClassifier(epochs=3, random_state=0).fit(num, ser)
    assert list(est.feature_names_in_) == ["income", "debt", "age", "util"]
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(num[["debt", "income", "age", "util"]])
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(num.rename(columns={"util": "utilisation"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(num.to_numpy())
    reg = NNRegressor(epochs=2, random_state=0).fit(num, pd.Series(X[:, 0]))
    assert reg.predict(num).shape == (200,)


def test_hyperparameter_search_example_quick(capsys):
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "hyperparameter_search.py")
    if not os.path.exists(path):
        pytest.skip("examples/ is not shipped with this copy of the tests")
    spec = importlib.util.spec_from_file_location("hyperparameter_search", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    search = mod.main(["--quick", "--n-iter", "2"])
    out = capsys.readouterr().out
    assert "best cross-validated AUC" in out and "held-out test AUC" in out
    assert search.best_score_ > 0.8 and len(search.cv_results_["params"]) == 2


def test_model_function_with_sequence_input():
    # a Conv1D model declares its input shape; flat sklearn features are reshaped to it
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 12))
    y = (X[:, :6].sum(1) > 0).astype(int)

    def build(n_features_in):
        return nn.Sequential([nn.layers.Conv1D(4, 3, activation="relu", input_shape=(n_features_in // 2, 2)),
                              nn.layers.GlobalAveragePooling1D(), nn.layers.Dense(1, activation="sigmoid")])

    clf = NNClassifier(model=build, epochs=5, learning_rate=0.01, random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (120, 2)
    with pytest.raises(ValueError, match="takes inputs of shape"):
        NNClassifier(model=lambda: build(10), epochs=1).fit(X, y)


def test_build_function_may_return_a_functional_model():
    """A build function returning nn.Model (one input) works as a Sequential does."""
    from nncore.sklearn import NNClassifier
    import nncore as nn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)

    def build(n_features_in, n_classes):
        x = nn.Input(shape=(n_features_in,))
        h = nn.layers.Dense(16, activation="relu")(x)
        h = nn.layers.add([h, nn.layers.Dense(16, activation="relu")(h)])  # a residual block
        return nn.Model(x, nn.layers.Dense(1 if n_classes == 2 else n_classes,
                                           activation="sigmoid" if n_classes == 2 else "softmax")(h))

    clf = NNClassifier(model=build, epochs=30, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.predict_proba(X).shape == (300, 2)
