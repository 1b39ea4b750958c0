"""scikit-learn estimators over nncore models: `NNClassifier` and `NNRegressor`.

    from nncore.sklearn import NNClassifier
    clf = NNClassifier(hidden_layer_sizes=(64, 32), epochs=20, random_state=0)
    make_pipeline(StandardScaler(), clf).fit(X, y).predict_proba(X_test)

The network is either an MLP described by `hidden_layer_sizes` and `activation` (the estimator
adds the output layer: sigmoid for two classes, softmax for more, linear for regression) or the
model returned by `model`, a function returning an uncompiled `nn.Sequential` (its output layer
included). The function may take any of the keyword arguments `n_features_in`, `n_outputs`,
`n_classes` (for the classifier), and `meta` (a dict with all three).

scikit-learn is an optional dependency (`pip install nncore[sklearn]`); importing this module
without it raises an ImportError saying so.
"""
import copy
import inspect
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state, compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("nncore.sklearn needs scikit-learn >= 1.6: pip install 'nncore[sklearn]' "
                      "(or pip install scikit-learn)") from e

from . import layers as layers_mod
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from . import utils
from .models import Model, Sequential


def _input_shape(net):
    """Per-sample input shape of a Sequential (None until known) or a one-input Model."""
    return net._input_shape if isinstance(net, Sequential) else tuple(net._in_shapes()[0])


__all__ = ["NNClassifier", "NNRegressor"]

# Checks of sklearn.utils.estimator_checks that cannot pass, with the reason; the tests pass
# these to parametrize_with_checks(expected_failed_checks=...).
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "mini-batch SGD: weighting a sample by 2 is not the same as repeating it (the batches "
        "and the number of steps per epoch differ), as for sklearn's own SGD/MLP estimators",
}


class _RNGScope:
    """Use a private generator for nncore's weight init and shuffling, then restore the global."""

    def __init__(self, gen):
        self.gen = gen

    def __enter__(self):
        self.saved = utils._state["rng"]
        utils._state["rng"] = self.gen

    def __exit__(self, *exc):
        utils._state["rng"] = self.saved


def _non_numeric_columns(X):
    """Names of a DataFrame's columns that are not numbers or booleans (else [])."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return []
    bad = []
    for col, dt in zip(X.columns, dtypes):
        kind = getattr(np.dtype(dt) if isinstance(dt, np.dtype) else dt, "kind", "O")
        if kind not in "biuf":
            bad.append(col)
    return bad


class _NNBase(BaseEstimator):
    _task = None  # "classification" or "regression"

    def __init__(self, hidden_layer_sizes=(64, 32), activation="relu", model=None, optimizer="adam",
                 learning_rate=0.001, loss=None, epochs=20, batch_size=32, random_state=None,
                 validation_split=0.0, callbacks=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.model = model
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.validation_split = validation_split
        self.callbacks = callbacks
        self.verbose = verbose

    # ---- input validation ---------------------------------------------------------------
    def _validate_X(self, X, reset, y=None, _requires_y=False, **ykw):
        bad = _non_numeric_columns(X)
        if bad:
            raise ValueError(
                f"{type(self).__name__} needs numeric features, but column(s) {bad} are not numeric "
                f"(dtype {', '.join(str(X[c].dtype) for c in bad)}); encode them first, e.g. with a "
                f"OneHotEncoder or OrdinalEncoder in a ColumnTransformer")
        if y is None:
            if _requires_y:
                raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
            return validate_data(self, X, reset=reset, dtype=np.float32), None
        return validate_data(self, X, y, reset=reset, dtype=np.float32, **ykw)

    def _check_params(self):
        def positive_int(name):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")

        positive_int("batch_size")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, numbers.Integral) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {self.epochs!r}")
        if not isinstance(self.validation_split, numbers.Real) or not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {self.validation_split!r}")
        if self.model is not None and not callable(self.model):
            raise TypeError(f"model must be a function returning an uncompiled nn.Sequential, got {self.model!r}")
        if self.model is None:
            sizes = self.hidden_layer_sizes
            sizes = () if sizes is None else ((sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes))
            for s in sizes:
                if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                    raise ValueError(f"hidden_layer_sizes must hold positive ints, got {self.hidden_layer_sizes!r}")

    # ---- model construction -------------------------------------------------------------
    def _make_optimizer(self):
        opt = self.optimizer
        if isinstance(opt, optimizers_mod.Optimizer):
            return copy.deepcopy(opt)  # the instance's own learning rate applies
        opt = optimizers_mod.get(opt)
        if self.learning_rate is not None:
            opt.learning_rate = self.learning_rate
        return opt

    def _meta(self):
        meta = {"n_features_in": self.n_features_in_, "n_outputs": self._n_out}
        if self._task == "classification":
            meta["n_classes"] = len(self.classes_)
        return meta

    def _build_model(self):
        """Fresh compiled model for the data seen by fit (inside the estimator's RNG scope)."""
        d = self.n_features_in_
        if self.model is None:
            sizes = self.hidden_layer_sizes
            sizes = () if sizes is None else ((sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes))
            net = Sequential([layers_mod.Input(shape=(d,))]
                             + [layers_mod.Dense(int(s), activation=self.activation) for s in sizes]
                             + [layers_mod.Dense(self._n_out, activation=self._out_activation)])
        else:
            meta = self._meta()
            try:
                params = inspect.signature(self.model).parameters
            except (TypeError, ValueError):
                params = {}
            if any(p.kind == p.VAR_KEYWORD for p in params.values()):
                kwargs = dict(meta, meta=meta)
            else:
                kwargs = {k: v for k, v in dict(meta, meta=meta).items() if k in params}
            net = self.model(**kwargs)
            if not isinstance(net, Model):
                raise TypeError(f"model must return an nn.Sequential or an nn.Model, got {type(net).__name__}")
            if not isinstance(net, Sequential) and len(net.inputs) != 1:
                raise ValueError(f"the model returned by `model` has {len(net.inputs)} inputs; an estimator "
                                 f"feeds one matrix X, so it must have one input")
            shape = _input_shape(net)
            if shape is None:
                shape = (d,)
            elif int(np.prod(shape)) != d:
                raise ValueError(f"the model returned by `model` takes inputs of shape {tuple(shape)} "
                                 f"({int(np.prod(shape))} values), but X has {d} features")
            net.build(shape)
            self._check_output(net)
        net.compile(optimizer=self._make_optimizer(), loss=self._loss_object())
        return net

    def _fit_model(self, X, y, sample_weight, epochs, class_weight=None, validation_split=None):
        net = self.model_
        shape = _input_shape(net)
        if tuple(shape) != (X.shape[1],):
            X = X.reshape((X.shape[0],) + tuple(shape))
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)
        vs = self.validation_split if validation_split is None else validation_split
        if vs and int(X.shape[0] * vs) < 1:
            vs = 0.0  # too few samples to hold any out (e.g. inside a small CV fold)
        cbs = copy.deepcopy(list(self.callbacks)) if self.callbacks else None
        with _RNGScope(self._rng):
            hist = net.fit(X, y, epochs=epochs, batch_size=int(self.batch_size), verbose=self.verbose,
                           callbacks=cbs, validation_split=vs, class_weight=class_weight,
                           sample_weight=sample_weight)
        for k, v in hist.history.items():
            self.history_.setdefault(k, []).extend(v)
        self.n_iter_ = getattr(self, "n_iter_", 0) + len(hist.epoch)

    def _seed(self):
        rs = check_random_state(self.random_state)
        self._rng = np.random.default_rng(int(rs.randint(0, 2 ** 31 - 1)))

    def _reset(self, X_valid):
        self._seed()
        self.history_ = {}
        self.n_iter_ = 0
        with _RNGScope(self._rng):
            self.model_ = self._build_model()

    def _raw_predict(self, X):
        check_is_fitted(self, "model_")
        X, _ = self._validate_X(X, reset=False)
        shape = _input_shape(self.model_)
        if tuple(shape) != (X.shape[1],):
            X = X.reshape((X.shape[0],) + tuple(shape))
        out = self.model_.predict(X, batch_size=1024)
        return np.asarray(out, dtype=np.float64).reshape(X.shape[0], -1)

    # ---- pickling: nn.Sequential holds C state, so keep its config and weights instead ----
    def __getstate__(self):
        state = self.__dict__.copy()
        net = state.pop("model_", None)
        if net is not None:
            opt = net.optimizer
            state["_model_state"] = {
                "config": net.get_config(),
                "weights": net.get_weights(),
                "optimizer": opt, "slots": [s.copy() for s in opt.slots], "iterations": opt.iterations,
            }
        return state

    def __setstate__(self, state):
        ms = state.pop("_model_state", None)
        self.__dict__.update(state)
        if ms is not None:
            net = Sequential.from_config(ms["config"])
            net.build()
            net.set_weights(ms["weights"])
            opt = ms["optimizer"]
            opt.slots = []
            net.compile(optimizer=opt, loss=self._loss_object())
            for s, saved in zip(opt.slots, ms["slots"]):
                s[...] = saved
            opt.iterations = ms["iterations"]
            net._engine.step = opt.iterations
            self.model_ = net

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class NNClassifier(ClassifierMixin, _NNBase):
    """A neural-network classifier with scikit-learn's API, trained by nncore's C engine.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (64, 32)
        Units of the hidden Dense layers (used when `model` is None).
    activation : str, default 'relu'
        Activation of the hidden layers (any nncore activation name).
    model : callable, optional
        Function returning an uncompiled `nn.Sequential` with its output layer: one sigmoid
        unit (two classes) or n_classes softmax units. May take `n_features_in`, `n_classes`,
        `n_outputs`, `meta` keyword arguments.
    optimizer : str or nn.optimizers.Optimizer, default 'adam'
        A name ('adam', 'sgd', 'rmsprop', 'adamw') or an instance (copied at each fit; its own
        learning rate is used).
    learning_rate : float, default 0.001
        Learning rate for an optimizer given by name.
    loss : str, optional
        Default: binary_crossentropy for two classes, sparse_categorical_crossentropy for more
        (categorical_crossentropy is also accepted; labels are one-hot encoded for it).
    epochs, batch_size : int, default 20, 32
    class_weight : dict, 'balanced' or None
        Weights per class label (the labels of `y`, not their codes).
    random_state : int, RandomState or None
        Seeds weight initialisation and shuffling (results are bitwise reproducible).
    validation_split : float, default 0.0
        Fraction of the training data (the last samples) held out; validation metrics go to
        `history_` and to callbacks such as EarlyStopping.
    callbacks : list of nn.callbacks.Callback, optional (copied at each fit)
    verbose : int, default 0

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (DataFrame input), model_ (the fitted
    nn.Sequential), history_ (dict of per-epoch losses/metrics), n_iter_ (epochs run).
    """

    _task = "classification"

    def __init__(self, hidden_layer_sizes=(64, 32), activation="relu", model=None, optimizer="adam",
                 learning_rate=0.001, loss=None, epochs=20, batch_size=32, class_weight=None,
                 random_state=None, validation_split=0.0, callbacks=None, verbose=0):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, model=model,
                         optimizer=optimizer, learning_rate=learning_rate, loss=loss, epochs=epochs,
                         batch_size=batch_size, random_state=random_state,
                         validation_split=validation_split, callbacks=callbacks, verbose=verbose)
        self.class_weight = class_weight

    # output layer / loss for the classes seen
    @property
    def _binary(self):
        return len(self.classes_) == 2 and self._n_out == 1

    def _loss_name(self):
        if self.loss is None or self.loss == "auto":
            return "binary_crossentropy" if self._binary else "sparse_categorical_crossentropy"
        return self.loss

    def _loss_object(self):
        return losses_mod.get(self._loss_name())

    def _check_output(self, net):
        out = int(np.prod(net.output_shape[1:]))
        k = len(self.classes_)
        act = getattr(net.layers[-1], "activation", None)
        if out == 1 and k == 2:
            ok = act == "sigmoid"
        else:
            ok = out == k and act == "softmax"
        if not ok:
            raise ValueError(f"for {k} classes the model must end with "
                             + ("1 sigmoid unit or " if k == 2 else "")
                             + f"{k} softmax units; it ends with {out} unit(s), activation {act!r}")
        self._n_out = out

    def _encode_y(self, y):
        codes = np.searchsorted(self.classes_, y)
        if np.any(codes >= len(self.classes_)) or np.any(self.classes_[np.minimum(codes, len(self.classes_) - 1)] != y):
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            raise ValueError(f"y has labels {unknown.tolist()} not in classes_ {self.classes_.tolist()}")
        kind = self._loss_object().kind
        if self._binary:
            return codes.astype(np.float32)
        if kind == losses_mod.CATEGORICAL_CE:
            return utils.to_categorical(codes, len(self.classes_))
        return codes.astype(np.int32)

    def _class_weight_codes(self, y):
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {cw!r}")
            present = np.unique(y)
            w = compute_class_weight("balanced", classes=present, y=y)
            table = dict(zip(present.tolist(), w.tolist()))
        elif isinstance(cw, dict):
            table = cw
        else:
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {cw!r}")
        out = {}
        for label, w in table.items():
            idx = np.flatnonzero(self.classes_ == label)
            if idx.size == 0:
                raise ValueError(f"class_weight has label {label!r}, which is not a class; classes_ "
                                 f"are {self.classes_.tolist()}")
            out[int(idx[0])] = float(w)
        return out

    def _validate_y(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def fit(self, X, y, sample_weight=None):
        """Train a fresh network for `epochs` epochs; returns self."""
        self._check_params()
        X, y = self._validate_X(X, reset=True, y=y, _requires_y=True)
        y = self._validate_y(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                             f"but the data contain only one class: {classes[0]!r}")
        self.classes_ = classes
        self._n_out = 1 if len(classes) == 2 else len(classes)
        self._reset(X)
        self._fit_model(X, self._encode_y(y), sample_weight, int(self.epochs), self._class_weight_codes(y))
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights. The first call needs
        `classes` (all labels that will ever appear), as scikit-learn's other estimators."""
        first = not hasattr(self, "model_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._check_params()
            X, y = self._validate_X(X, reset=True, y=y, _requires_y=True)
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(f"classes must hold at least 2 classes, got {classes.tolist()}")
            self.classes_ = classes
            self._n_out = 1 if len(classes) == 2 else len(classes)
            self._reset(X)
        else:
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise ValueError(f"classes={np.unique(classes).tolist()} differs from the classes of the first "
                                 f"partial_fit call, {self.classes_.tolist()}")
            X, y = self._validate_X(X, reset=False, y=y, _requires_y=True)
        y = self._validate_y(y)
        self._fit_model(X, self._encode_y(y), sample_weight, 1, self._class_weight_codes(y), validation_split=0.0)
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), float64, in the order of classes_."""
        p = self._raw_predict(X)
        if self._n_out == 1:
            p = np.clip(p, 0.0, 1.0)
            return np.hstack([1.0 - p, p])
        p = np.clip(p, 0.0, None)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class labels."""
        p = self._raw_predict(X)
        idx = (p[:, 0] > 0.5).astype(np.intp) if self._n_out == 1 else p.argmax(axis=1)
        return self.classes_[idx]


class NNRegressor(RegressorMixin, _NNBase):
    """A neural-network regressor with scikit-learn's API, trained by nncore's C engine.

    Parameters are those of NNClassifier without class_weight; the default loss is
    mean_squared_error and the output layer is linear with one unit per target (2-D y gives a
    multi-output regressor). A `model` function must return a model ending with n_outputs
    units.

    Attributes: n_features_in_, feature_names_in_, n_outputs_, model_, history_, n_iter_.
    """

    _task = "regression"

    def _loss_object(self):
        return losses_mod.get("mean_squared_error" if self.loss in (None, "auto") else self.loss)

    _out_activation = "linear"

    def _check_output(self, net):
        out = int(np.prod(net.output_shape[1:]))
        if out != self.n_outputs_:
            raise ValueError(f"y has {self.n_outputs_} target(s) but the model ends with {out} unit(s)")

    def _prep_y(self, y):
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def fit(self, X, y, sample_weight=None):
        """Train a fresh network for `epochs` epochs; returns self."""
        self._check_params()
        X, y = self._validate_X(X, reset=True, y=y, _requires_y=True, multi_output=True, y_numeric=True)
        self._y_ndim = np.ndim(y)
        y = self._prep_y(y)
        self.n_outputs_ = self._n_out = y.shape[1]
        self._reset(X)
        self._fit_model(X, y, sample_weight, int(self.epochs))
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights."""
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, y = self._validate_X(X, reset=first, y=y, _requires_y=True, multi_output=True, y_numeric=True)
        y2 = self._prep_y(y)
        if first:
            self._y_ndim = np.ndim(y)
            self.n_outputs_ = self._n_out = y2.shape[1]
            self._reset(X)
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} target(s), but earlier partial_fit calls had {self.n_outputs_}")
        self._fit_model(X, y2, sample_weight, 1, validation_split=0.0)
        return self

    def predict(self, X):
        """Predicted targets, float64: shape (n_samples,) for 1-D y, else (n_samples, n_outputs)."""
        p = self._raw_predict(X)
        return p.ravel() if self._y_ndim == 1 else p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


NNClassifier._out_activation = property(lambda self: "sigmoid" if self._n_out == 1 else "softmax")
