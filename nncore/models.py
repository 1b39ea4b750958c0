"""Sequential: Keras's model API over the C engine.

Building a model creates one parameter arena (all weights, as views), one gradient arena and
the C nodes; fit then hands whole runs of batches to C (nnc_seq_train) and Python only shuffles
indices, evaluates metrics on each chunk's predictions (vectorised) and reports progress.
"""
import math
import os
import threading

import warnings

import numpy as np

from . import _kernels as K
from . import callbacks as callbacks_mod
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from . import utils
from .layers.base import InputSpec, Layer

_ALIGN = 16  # floats: each layer's block starts on a 64-byte boundary


def _aligned_empty(n):
    buf = np.zeros(n + _ALIGN, dtype=np.float32)
    off = (-buf.ctypes.data % 64) // 4
    return buf[off:off + n]


def _as_float32(x, what):
    """C-contiguous float32 copy/view of x with a clear error for non-numbers."""
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{what} could not be converted to an array: {e}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_positive_int(v, name, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {v!r}")


def _check_fit_args(batch_size, epochs, verbose, validation_split, shuffle, initial_epoch,
                    steps_per_epoch, validation_steps, validation_batch_size, validation_freq):
    """Every fit argument that is not data, checked before anything runs. Returns the verbosity
    and a predicate telling after which epochs (1-based) validation runs."""
    _check_positive_int(batch_size, "batch_size", allow_none=True)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be a non-negative int, got {initial_epoch!r}")
    if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    _check_positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
    _check_positive_int(validation_steps, "validation_steps", allow_none=True)
    _check_positive_int(validation_batch_size, "validation_batch_size", allow_none=True)
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError(f"validation_freq must be a positive int or a collection of epochs, got {validation_freq!r}")
        freq = int(validation_freq)
        val_epochs = lambda e: e % freq == 0  # noqa: E731
    elif isinstance(validation_freq, (list, tuple, set, range)) and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, bool) and e >= 1 for e in validation_freq):
        chosen = {int(e) for e in validation_freq}
        val_epochs = chosen.__contains__
    else:
        raise ValueError(f"validation_freq must be a positive int or a collection of epochs (>= 1), got {validation_freq!r}")
    return (1 if verbose == "auto" else int(verbose)), val_epochs


class Sequential:
    """A linear stack of layers, as `keras.Sequential`."""

    def __init__(self, layers=None, name=None):
        self.name = name or "sequential"
        self.layers = []
        self._input_shape = None
        self._batch_size = None  # fixed batch size (nn.Input(batch_shape=...)); stateful RNNs need it
        self._seq = None
        self._compiled = False
        self._lock = threading.Lock()
        self.history = None
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)
        if self.layers and self._input_shape is not None:
            self.build()  # as Keras: weights exist as soon as the input shape is known

    # ---- construction -------------------------------------------------------------------
    def add(self, layer):
        if isinstance(layer, InputSpec):
            if self.layers:
                raise ValueError("Input must come first in a Sequential model")
            self._input_shape = layer.shape
            self._batch_size = layer.batch_size
            return
        if isinstance(layer, Sequential):
            for sub in layer.layers:
                self.add(sub)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if any(layer is l for l in self.layers):
            raise ValueError(f"layer {layer.name!r} is already in this model")
        if not self.layers and self._input_shape is None and layer._input_shape_arg is not None:
            self._input_shape = layer._input_shape_arg
        if not self.layers and self._batch_size is None:
            self._batch_size = layer._batch_size_arg
        self.layers.append(layer)
        self._invalidate()

    def pop(self):
        if not self.layers:
            raise ValueError("pop on an empty model")
        layer = self.layers.pop()
        self._invalidate()
        return layer

    def _invalidate(self):
        self._seq = None

    @property
    def built(self):
        return self._seq is not None

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None,) + tuple(self._input_shape)

    @property
    def output_shape(self):
        self._require_built()
        return (None,) + tuple(self.layers[-1].output_shape if self.layers else self._input_shape)

    def build(self, input_shape=None):
        """Build for samples of shape input_shape (Keras also accepts the batch dim first)."""
        if input_shape is not None:
            shape = tuple(input_shape)
            if len(shape) > 1 and shape[0] is None:
                shape = shape[1:]
            if self._input_shape is not None and tuple(shape) != tuple(self._input_shape):
                raise ValueError(f"model expects input shape {self.input_shape}, got (None, {', '.join(map(str, shape))})")
            self._input_shape = tuple(int(s) for s in shape)
        if self._input_shape is None:
            raise ValueError("the model has no input shape yet: pass input_shape= to the first layer, "
                             "start with nn.Input(shape=...), or call fit/predict/build first")
        if not self.layers:
            raise ValueError("the model has no layers")
        shape = self._input_shape
        for layer in self.layers:
            shape = layer._build_once(shape)
        self._make_arena()
        self._make_program()

    def _make_arena(self):
        sizes = [sum(int(np.prod(s[1])) for s in layer._specs) for layer in self.layers]
        offsets, total = [], 0
        for n in sizes:
            offsets.append(total)
            total += -(-n // _ALIGN) * _ALIGN
        old = getattr(self, "_params", None)
        if old is not None and old.size == total and all(
                w.base is not None for l in self.layers for w in l._weights):
            return  # already in an arena of the right size (rebuild after compile)
        params, grads = _aligned_empty(total), _aligned_empty(total)
        self._blocks = []
        self._offsets = offsets
        for layer, off, n in zip(self.layers, offsets, sizes):
            pos = off
            views = []
            for (name, shape, *_), w in zip(layer._specs, layer._weights):
                size = int(np.prod(shape))
                v = params[pos:pos + size].reshape(shape)
                v[...] = w
                views.append(v)
                pos += size
            layer._weights = views
            layer._model = self
            self._blocks.append((params[off:off + n], grads[off:off + n]))
        self._params, self._grads = params, grads
        self._optimizer_built = False

    def _make_program(self):
        nodes, shape = [], self._input_shape
        last = len(self.layers) - 1
        out_act = "linear"
        mask = None  # (node, layer) that made the step mask flowing here (Keras masking)
        for i, (layer, (p, g)) in enumerate(zip(self.layers, self._blocks)):
            split = False
            if i == last and layer._splittable and layer.activation in ("sigmoid", "softmax"):
                split, out_act = True, layer.activation
            ns = layer.make_nodes(shape, p, g, split_activation=True) if split else layer.make_nodes(shape, p, g)
            mask = self._wire_mask(layer, ns, mask)
            if getattr(layer, "stateful", False):
                if self._batch_size is None:
                    raise ValueError(
                        f"layer {layer.name!r} is stateful, which needs a fixed batch size: start "
                        f"the model with nn.Input(batch_shape=(batch, timesteps, features)) or "
                        f"give the first layer batch_input_shape=(batch, timesteps, features)")
                K.rnn_set_stateful(ns[0], self._batch_size)
                layer._state_ref = (self, len(nodes))
            nodes.extend(ns)
            shape = layer.output_shape
        if mask is not None:
            raise ValueError(
                f"the step mask made by {mask[1].name!r} reaches the model's output; a masked "
                f"loss over timesteps is not supported: end with a recurrent layer that has "
                f"return_sequences=False")
        from . import activations
        self._in_size = int(np.prod(self._input_shape))
        self._out_shape = tuple(shape)
        self._seq = K.Seq(nodes, self._in_size, activations.get_id(out_act)[0])
        if self._compiled:
            self._compile_program()

    @staticmethod
    def _wire_mask(layer, nodes, mask):
        """Keras masking in the engine: Masking and Embedding(mask_zero=True) make a step mask;
        recurrent layers read it (their C node takes it from the maker's node on every forward)
        and pass it on when they return sequences; elementwise layers pass it on; any other
        layer drops it, with a warning, as in Keras. Returns the mask flowing after `layer`."""
        from .layers.core import Masking
        from .layers.recurrent import Bidirectional, _RNNBase
        if isinstance(layer, (_RNNBase, Bidirectional)):
            if mask is not None:
                K.rnn_set_mask_source(nodes[0], mask[0], bool(
                    layer.return_sequences if isinstance(layer, Bidirectional)
                    else layer.zero_output_for_mask))
            return mask if (mask is not None and layer.return_sequences) else None
        if isinstance(layer, Masking) or getattr(layer, "mask_zero", False):
            return (nodes[-1], layer)
        if mask is not None and not layer.supports_masking:
            warnings.warn(f"layer {layer.name!r} ({type(layer).__name__}) does not support "
                          f"masking: the step mask made by {mask[1].name!r} stops there",
                          UserWarning, stacklevel=4)
            return None
        return mask

    def _stateful(self):
        return [l for l in self.layers if getattr(l, "stateful", False)]

    def reset_states(self):
        """Zero the kept states of every stateful recurrent layer (Keras)."""
        for layer in self._stateful():
            layer.reset_states()

    reset_state = reset_states

    def _batch_for(self, n, batch_size, what):
        """The batch size to run n samples with (ValueError before anything runs if a stateful
        layer cannot take them: Keras's rule, a fixed batch that divides the samples)."""
        if not self._stateful():
            return 32 if batch_size is None else batch_size
        B = self._batch_size
        if batch_size is not None and batch_size != B:
            raise ValueError(f"{what}: the model has stateful layers built for batches of {B}; "
                             f"got batch_size={batch_size}")
        if n % B:
            raise ValueError(f"{what}: the model has stateful layers built for batches of {B}, "
                             f"so the number of samples must be a multiple of {B}; got {n}")
        return B

    def _require_built(self):
        if self._seq is None:
            self.build()

    # ---- weights ------------------------------------------------------------------------
    @property
    def weights(self):
        return [w for l in self.layers for w in l.weights]

    @property
    def trainable_weights(self):
        return [w for l in self.layers for w in l.trainable_weights]

    def count_params(self):
        self._require_built()
        return sum(l.count_params() for l in self.layers)

    def get_weights(self):
        self._require_built()
        return [w for l in self.layers for w in l.get_weights()]

    def set_weights(self, weights):
        self._require_built()
        weights = list(weights)
        expected = sum(len(l._weights) for l in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays, got {len(weights)}")
        pos = 0
        for layer in self.layers:
            n = len(layer._weights)
            layer.set_weights(weights[pos:pos + n])
            pos += n

    def _params_changed(self):
        if self._seq is not None:
            with self._lock:
                self._seq.params_changed()

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for l in self.layers:
            if l.name == name:
                return l
        raise ValueError(f"no layer named {name!r}")

    # ---- compile ------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, jit_compile=None, **kwargs):
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {sorted(kwargs)}")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        if isinstance(metrics, dict):
            raise ValueError("metrics as a dict is only meaningful for multi-output models")
        self._metric_specs = list(metrics or [])
        for m in self._metric_specs:
            metrics_mod.get(m)  # validate names now
        self._compiled = True
        if self._seq is not None:
            self._compile_program()

    def _compile_program(self):
        opt = self.optimizer
        opt.build(self._params.size)
        slots = list(opt.slots) + [None] * (3 - len(opt.slots))
        self._seq.compile(self._params, self._grads, self.loss.kind, self.loss.from_logits,
                          self.loss.param, opt.engine_config(), *slots)
        self._seq.step = opt.iterations
        self._set_param_ranges()

    def _weight_table(self):
        """(layer, spec, offset in the arena) for every weight, in get_weights order."""
        for layer, off in zip(self.layers, self._offsets):
            for spec in layer._specs:
                yield layer, spec, off
                off += int(np.prod(spec[1]))

    def _set_param_ranges(self):
        """Tell the engine which weights the optimizer updates (trainable weights of trainable
        layers; call compile again after changing `layer.trainable`, as in Keras)."""
        rows = [(off, int(np.prod(spec[1])), spec[4].l1 if spec[4] else 0.0, spec[4].l2 if spec[4] else 0.0)
                for layer, spec, off in self._weight_table() if layer.trainable and spec[3]]
        cols = list(zip(*rows)) if rows else [(), (), (), ()]
        K.seq_set_param_ranges(self._seq, *cols)

    def _regularization_penalty(self):
        return sum(spec[4](w) for layer in self.layers for spec, w in zip(layer._specs, layer._weights)
                   if spec[4] is not None and layer.trainable and spec[3])

    def _new_metrics(self):
        out = []
        for spec in self._metric_specs:
            m = metrics_mod.get(spec)
            if isinstance(spec, metrics_mod.Metric):
                m.reset_state()
            out.append(m)
        return out

    def _require_compiled(self, what):
        if not self._compiled:
            raise ValueError(f"you must compile the model before calling {what}: "
                             "model.compile(optimizer='adam', loss='mse')")

    # ---- data validation ------------------------------------------------------------------
    def _prepare_x(self, x, what="x", check_finite=False):
        """x as a C-contiguous float32 (n, in_size) array, validated against the model."""
        if x is None:
            raise ValueError(f"{what} is required")
        x = _as_float32(x, what)
        if x.ndim == 0:
            raise ValueError(f"{what} must have a batch dimension, got a scalar")
        if self._input_shape is None:
            self._input_shape = tuple(x.shape[1:]) if x.ndim > 1 else (1,)
        if x.ndim == 1 and self._input_shape == (1,):
            x = x.reshape(-1, 1)
        if tuple(x.shape[1:]) != tuple(self._input_shape):
            raise ValueError(f"{what} has shape {x.shape}, but the model expects (batch, "
                             f"{', '.join(map(str, self._input_shape))})")
        if x.shape[0] == 0:
            raise ValueError(f"{what} is empty (0 samples)")
        if check_finite and not np.all(np.isfinite(x)):
            raise ValueError(f"{what} contains NaN or infinity")
        self._require_built()
        check = getattr(self.layers[0], "_check_input", None)  # e.g. Embedding index range
        if check is not None:
            check(x, what)
        return x.reshape(x.shape[0], -1)

    def _prepare_data(self, x, y, sample_weight=None, class_weight=None, what=""):
        """Validated (X, Y, SW) for training or evaluation."""
        X = self._prepare_x(x, what + "x", check_finite=True)
        Y = self._prepare_y(y, X.shape[0], what + "y")
        return X, Y, self._prepare_sw(sample_weight, class_weight, Y, X.shape[0])

    def _prepare_y(self, y, n, what="y"):
        if y is None:
            raise ValueError(f"{what} is required for training and evaluation")
        out = int(np.prod(self._out_shape))
        if self.loss.sparse:
            a = np.asarray(y)
            if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"{what} must hold integer class labels, got dtype {a.dtype}")
            if a.size != n:
                raise ValueError(f"{what} must hold one class label per sample: got shape {a.shape} for {n} samples "
                                 f"(sparse_categorical_crossentropy takes integer labels, not one-hot)")
            a = a.reshape(n)
            if not np.issubdtype(a.dtype, np.integer):
                if not np.all(np.isfinite(a)):
                    raise ValueError(f"{what} contains NaN or infinity")
                if not np.all(np.mod(a, 1) == 0):
                    raise ValueError(f"{what} must hold integer class labels")
            if a.min() < 0 or a.max() >= out:
                bad = a[(a < 0) | (a >= out)][0]
                raise ValueError(f"{what} has label {bad} out of range: the model has {out} classes "
                                 f"(labels must be in [0, {out - 1}])")
            return np.ascontiguousarray(a, dtype=np.int32)
        a = _as_float32(y, what)
        if a.shape[0] != n if a.ndim else True:
            raise ValueError(f"{what} has {a.shape[0] if a.ndim else 0} samples but x has {n}")
        if a.size != n * out:
            raise ValueError(f"{what} has shape {a.shape}, but the model's output is (batch, "
                             f"{', '.join(map(str, self._out_shape))})"
                             + (" -- use sparse_categorical_crossentropy for integer labels"
                                if a.size == n and out > 1 else ""))
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} contains NaN or infinity")
        if self.loss.kind in (losses_mod.BINARY_CE, losses_mod.BINARY_FOCAL_CE,
                              losses_mod.CATEGORICAL_CE) and a.size and (a.min() < 0 or a.max() > 1):
            bad = a[(a < 0) | (a > 1)].flat[0]
            raise ValueError(f"{what} has target {bad:g}, but {self.loss.name} takes targets in [0, 1] "
                             f"(probabilities or 0/1 labels)")
        return a.reshape(n, out)

    def _prepare_sw(self, sample_weight, class_weight, y, n):
        sw = None
        if sample_weight is not None:
            sw = _as_float32(sample_weight, "sample_weight").reshape(-1)
            if sw.size != n:
                raise ValueError(f"sample_weight has {sw.size} values but x has {n} samples")
            if not np.all(np.isfinite(sw)) or (sw < 0).any():
                raise ValueError("sample_weight must be finite and >= 0")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError("class_weight must be a dict {class: weight}")
            labels = y.reshape(n, -1)
            binary = self.loss.kind in (losses_mod.BINARY_CE, losses_mod.BINARY_FOCAL_CE)
            lab = labels[:, 0].astype(np.int64) if labels.shape[1] == 1 and not binary \
                else (labels.argmax(axis=1) if labels.shape[1] > 1 else (labels[:, 0] > 0.5).astype(np.int64))
            n_classes = max(int(np.prod(self._out_shape)), 2)
            table = np.ones(n_classes, dtype=np.float32)
            for k, v in class_weight.items():
                if isinstance(k, bool) or not isinstance(k, (int, np.integer, float, np.floating)) \
                        or float(k) != int(k):
                    raise ValueError(f"class_weight keys must be integer class labels, got {k!r}")
                k = int(k)
                if not 0 <= k < n_classes:
                    raise ValueError(f"class_weight has class {k}, but the model has classes 0..{n_classes - 1}")
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise TypeError(f"class_weight[{k}] must be a number, got {v!r}") from None
                if not np.isfinite(v) or v < 0:
                    raise ValueError(f"class_weight[{k}] must be finite and >= 0, got {v}")
                table[k] = v
            cw = table[lab]
            sw = cw if sw is None else sw * cw
        return None if sw is None else np.ascontiguousarray(sw, dtype=np.float32)

    # ---- training -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        self._require_compiled("fit")
        asked_bs = batch_size
        verbose, val_epochs = _check_fit_args(
            batch_size=batch_size, epochs=epochs, verbose=verbose, validation_split=validation_split,
            shuffle=shuffle, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps, validation_batch_size=validation_batch_size,
            validation_freq=validation_freq)
        X, Y, SW = self._prepare_data(x, y, sample_weight)
        n = X.shape[0]
        val = None
        if validation_split and validation_data is None:
            n_val = int(n * validation_split)
            if n_val < 1 or n_val >= n:
                raise ValueError(f"validation_split={validation_split} leaves no training or validation samples")
            n_tr = n - n_val  # Keras takes the last samples, before shuffling
            val = (X[n_tr:], Y[n_tr:], SW[n_tr:] if SW is not None else None)  # checked above
            X, Y, SW, n = X[:n_tr], Y[:n_tr], (SW[:n_tr] if SW is not None else None), n_tr
        if class_weight is not None:  # training samples only, as Keras
            SW = self._prepare_sw(SW, class_weight, Y, n)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)")
            val = self._prepare_data(validation_data[0], validation_data[1],
                                     validation_data[2] if len(validation_data) == 3 else None, what="validation ")
        batch_size = self._batch_for(n, asked_bs, "fit")
        if val is not None:
            self._batch_for(val[0].shape[0], validation_batch_size or asked_bs,
                            "fit (validation data)")

        steps = math.ceil(n / batch_size)
        if steps_per_epoch is not None:
            steps = min(steps, int(steps_per_epoch))
        history = callbacks_mod.History()
        cbs = list(callbacks or [])
        progbar = callbacks_mod.ProgbarLogger(verbose)
        cb = callbacks_mod.CallbackList([progbar] + cbs + [history], self,
                                        {"epochs": epochs, "steps": steps, "verbose": verbose})
        per_batch = cb.wants_batches()
        chunk = 1 if per_batch else (max(1, steps // 20) if verbose == 1 else steps)
        self.history = history
        self.stop_training = False
        rng = utils.rng()
        batch_loss = np.empty(chunk, dtype=np.float64)
        cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cb.on_epoch_begin(epoch)
            idx = rng.permutation(n) if shuffle else np.arange(n)
            idx = idx[:steps * batch_size] if steps_per_epoch is not None else idx
            metrics = self._new_metrics()
            loss_total, seen = 0.0, 0
            logs = {}
            for s0 in range(0, steps, chunk):
                nb = min(chunk, steps - s0)
                rows = idx[s0 * batch_size:(s0 + nb) * batch_size]
                if per_batch:
                    cb.on_train_batch_begin(s0)
                lrs = self.optimizer.learning_rates(self.optimizer.iterations, nb)
                preds = np.empty((rows.size, self._seq.out_size), np.float32) if metrics else None
                with self._lock:
                    self._seq.train(X, Y, SW, np.ascontiguousarray(rows, dtype=np.int64), batch_size, lrs,
                                    batch_loss, preds)
                self.optimizer.iterations += nb
                sizes = np.minimum(batch_size, rows.size - np.arange(nb) * batch_size)
                loss_total += float(np.dot(batch_loss[:nb], sizes))
                seen += rows.size
                logs = {"loss": loss_total / seen}
                if metrics:
                    yb, swb = Y[rows], (None if SW is None else SW[rows])
                    for m in metrics:
                        m.update_state(yb, preds, swb)
                        logs[m.name] = m.result()
                cb.on_train_chunk_end(s0 + nb, logs)  # nncore hook: cheap chunk-level look at the logs
                if per_batch:
                    cb.on_train_batch_end(s0, dict(logs))
                progbar.progress(s0 + nb, logs)
                if self.stop_training:
                    break
            if val is not None and val_epochs(epoch + 1):
                vlogs = self._evaluate_arrays(*val, validation_batch_size or batch_size)
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end(logs if epochs > initial_epoch else {})
        return history

    def _evaluate_arrays(self, X, Y, SW, batch_size):
        metrics = self._new_metrics()
        preds = np.empty((X.shape[0], self._seq.out_size), np.float32) if metrics else None
        with self._lock:
            loss_sum = self._seq.evaluate(X, Y, SW, batch_size, preds)
        logs = {"loss": loss_sum / X.shape[0] + self._regularization_penalty()}
        for m in metrics:
            m.update_state(Y, preds, SW)
            logs[m.name] = m.result()
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        self._require_compiled("evaluate")
        X, Y, SW = self._prepare_data(x, y, sample_weight)
        _check_positive_int(batch_size, "batch_size", allow_none=True)
        logs = self._evaluate_arrays(X, Y, SW, self._batch_for(
            X.shape[0], None if batch_size is None else int(batch_size), "evaluate"))
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for x, in batches of batch_size (default 32); float32."""
        seq = self._seq
        if (seq is not None and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2
                and x.shape[1] == seq.in_size and x.shape[0] > 0 and x.flags.c_contiguous):
            X = x  # fast path: already what the kernels take
        else:
            X = self._prepare_x(x)
            seq = self._seq
        _check_positive_int(batch_size, "batch_size", allow_none=True)
        batch_size = self._batch_for(X.shape[0], None if batch_size is None else int(batch_size),
                                     "predict")
        out = np.empty((X.shape[0], seq.out_size), dtype=np.float32)
        with self._lock:
            seq.predict(X, batch_size, out)
        if len(self._out_shape) != 1:
            out = out.reshape((X.shape[0],) + self._out_shape)
        return out

    def __call__(self, x, training=False):
        return self.predict(x)

    def predict_on_batch(self, x):
        X = self._prepare_x(x)
        return self.predict(X, batch_size=X.shape[0])

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._require_compiled("train_on_batch")
        X, Y, SW = self._prepare_data(x, y, sample_weight, class_weight)
        n = X.shape[0]
        self._batch_for(n, n, "train_on_batch")  # one batch of n samples
        metrics = self._new_metrics()
        preds = np.empty((n, self._seq.out_size), np.float32) if metrics else None
        bl = np.empty(1, dtype=np.float64)
        lrs = self.optimizer.learning_rates(self.optimizer.iterations, 1)
        with self._lock:
            self._seq.train(X, Y, SW, np.arange(n, dtype=np.int64), n, lrs, bl, preds)
        self.optimizer.iterations += 1
        logs = {"loss": float(bl[0])}
        for m in metrics:
            m.update_state(Y, preds, SW)
            logs[m.name] = m.result()
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        return self.evaluate(x, y, batch_size=len(x), sample_weight=sample_weight, return_dict=return_dict)

    def _gradients(self, x, y, sample_weight=None):
        """(loss, [gradient of each weight], d loss / d x) for one batch, without an update.
        The loss is the batch mean (Keras's reduction)."""
        self._require_compiled("gradients")
        X, Y, SW = self._prepare_data(x, y, sample_weight)
        dx = np.empty_like(X)
        with self._lock:
            loss = self._seq.gradients(X, Y, SW, dx)
        grads, pos = [], 0
        for layer, (p, g) in zip(self.layers, self._blocks):
            off = 0
            for name, shape, *_ in layer._specs:
                size = int(np.prod(shape))
                grads.append(g[off:off + size].reshape(shape).copy())
                off += size
        return loss / X.shape[0], grads, dx.reshape((X.shape[0],) + tuple(self._input_shape))

    def _output_gradients(self, x, upstream=None):
        """(outputs, d sum(upstream * outputs) / d x) with inference behaviour; upstream defaults
        to ones (the gradient of the summed outputs). One batched C call."""
        X = self._prepare_x(x, check_finite=True)
        n = X.shape[0]
        if upstream is None:
            up = np.ones((n, self._seq.out_size), np.float32)
        else:
            up = _as_float32(upstream, "upstream").reshape(n, -1)
            if up.shape[1] != self._seq.out_size:
                raise ValueError(f"upstream has shape {up.shape}, expected ({n}, {self._seq.out_size})")
        dx = np.empty_like(X)
        out = np.empty((n, self._seq.out_size), np.float32)
        with self._lock:
            K.seq_output_gradients(self._seq, X, np.ascontiguousarray(up), dx, out)
        return out.reshape((n,) + self._out_shape), dx.reshape((n,) + tuple(self._input_shape))

    # ---- description --------------------------------------------------------------------
    def summary(self, print_fn=None):
        self._require_built()
        print_fn = print_fn or print
        rows = [(f"{l.name} ({type(l).__name__})", str((None,) + tuple(l.output_shape)), f"{l.count_params():,}")
                for l in self.layers]
        w = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "─" * sum(w)
        total = self.count_params()
        trainable = sum(int(w.size) for w in self.trainable_weights)  # moving stats are not
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn("".join(h.ljust(wi) for h, wi in zip(("Layer (type)", "Output Shape", "Param #"), w)))
        print_fn("═" * sum(w))
        for r in rows:
            print_fn("".join(c.ljust(wi) for c, wi in zip(r, w)))
        print_fn(line)
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")

    def get_config(self):
        return {"name": self.name,
                "input_shape": None if self._input_shape is None else list(self._input_shape),
                "batch_size": self._batch_size,
                "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers]}

    @classmethod
    def from_config(cls, config):
        """A new, unbuilt-weights model from get_config() output (only nncore's layer classes)."""
        from .saving import _layer_classes
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("Sequential.from_config expects a dict with a 'layers' list")
        classes = _layer_classes()
        model = cls(name=config.get("name"))
        if config.get("input_shape") is not None:
            model._input_shape = tuple(int(s) for s in config["input_shape"])
        if config.get("batch_size") is not None:
            from .layers.base import _batch_size
            model._batch_size = _batch_size(config["batch_size"])
        for entry in config["layers"]:
            layer_cls = classes.get(entry.get("class_name") if isinstance(entry, dict) else None)
            if layer_cls is None:
                raise ValueError(f"unknown layer class {entry.get('class_name') if isinstance(entry, dict) else entry!r}")
            try:
                model.add(layer_cls.from_config(dict(entry.get("config") or {})))
            except TypeError as e:
                raise ValueError(f"bad config for layer {entry.get('class_name')}: {e}") from None
        return model

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, compile settings and optimizer state to one file."""
        from .saving import save_model
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False")
        save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        from .saving import save_weights
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False")
        save_weights(self, filepath)

    def load_weights(self, filepath):
        from .saving import load_weights
        load_weights(self, filepath)


def load_model(filepath, compile=True):
    """Load a model saved with `model.save` (validated; never unpickles anything)."""
    from .saving import load_model as _load
    return _load(filepath, compile=compile)

