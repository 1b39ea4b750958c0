"""Callbacks with Keras's hooks and semantics. `History` is attached to every fit; the progress
bar is the `ProgbarLogger`.

fit runs batches in chunks inside C. A callback that overrides a per-batch hook
(on_train_batch_begin/end) makes fit run one batch per chunk, which costs speed. Callbacks that
only need a periodic look at the running logs (TerminateOnNaN) override the nncore hook
`on_train_chunk_end(step, logs)` instead: fit calls it after every chunk (logs hold the running
mean loss and metrics of the epoch so far) without changing the chunking."""
import csv
import math
import os
import sys
import time
import warnings

import numpy as np


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass
    def on_train_chunk_end(self, step, logs=None):
        """nncore extension: after each chunk of training steps; step = steps done this epoch."""

    def _wants_batches(self):
        """True if this callback overrides a per-batch training hook (forces 1-step chunks)."""
        cls = type(self)
        return any(getattr(cls, h) is not getattr(Callback, h)
                   for h in ("on_train_batch_begin", "on_train_batch_end"))


class History(Callback):
    """Records the logs of every epoch: `history.history['loss']`, ..."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, metrics=None, figsize=None, title=None, logy=False):
        """Training and validation curves per metric (needs matplotlib); returns the Figure."""
        from .plotting import plot_history
        return plot_history(self, metrics=metrics, figsize=figsize, title=title, logy=logy)


class ProgbarLogger(Callback):
    """Keras-like progress output: verbose=1 a bar per epoch, verbose=2 one line per epoch."""

    def __init__(self, verbose=1, file=None):
        super().__init__()
        self.verbose = verbose
        self.file = file or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._last = 0.0
        if self.verbose:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}", file=self.file)

    def progress(self, step, logs):
        """Called by fit after each chunk of steps (verbose=1 only)."""
        if self.verbose != 1 or not getattr(self.file, "isatty", lambda: False)():
            return  # redrawing a bar only makes sense on a terminal
        now = time.perf_counter()
        steps = self.params.get("steps") or step
        if step < steps and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        done = int(width * step / max(steps, 1))
        bar = "━" * done + " " * (width - done)
        self.file.write(f"\r{step}/{steps} {bar} {_fmt_elapsed(now - self._t0)} {_fmt_logs(logs)}")
        self.file.flush()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        steps = self.params.get("steps", 0)
        if self.verbose == 1:
            bar = "━" * 30
            self.file.write(f"\r{steps}/{steps} {bar} {_fmt_elapsed(elapsed)} "
                            f"{_fmt_step(elapsed, steps)} {_fmt_logs(logs)}\n")
        elif self.verbose == 2:
            self.file.write(f"{steps}/{steps} - {_fmt_elapsed(elapsed)} - {_fmt_step(elapsed, steps)} - "
                            f"{_fmt_logs(logs)}\n")
        self.file.flush()


def _fmt_elapsed(s):
    return f"{s:.0f}s" if s >= 1 else f"{s * 1e3:.0f}ms"


def _fmt_step(s, steps):
    per = s / max(steps, 1)
    return f"{per * 1e6:.0f}us/step" if per < 1e-3 else f"{per * 1e3:.0f}ms/step"


def _fmt_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items() if np.isscalar(v))


class CallbackList:
    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for c in self.callbacks:
                getattr(c, hook)(*args, **kwargs)
        return call

    def wants_batches(self):
        return any(getattr(c, "_wants_batches", lambda: True)() for c in self.callbacks)



# ---- monitoring helpers ---------------------------------------------------------------------
_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "r2")
_MIN_WORDS = ("loss", "error", "mse", "mae", "mape", "rmse", "crossentropy", "hinge")


def _direction(monitor, mode, who):
    """+1 when larger is better, -1 when smaller is (mode 'auto' infers it from the name)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "min":
        return -1
    if mode == "max":
        return 1
    name = monitor[4:] if monitor.startswith("val_") else monitor
    name = name.lower()
    if any(w in name for w in _MIN_WORDS):
        return -1
    if any(w in name for w in _MAX_WORDS):
        return 1
    raise ValueError(f"{who}: cannot tell whether {monitor!r} should go up or down; pass mode='min' or mode='max'")


def _monitor_value(logs, monitor, who):
    v = (logs or {}).get(monitor)
    if v is None:
        warnings.warn(f"{who}: the monitored value {monitor!r} is not in the logs (available: "
                      f"{', '.join(sorted(logs or {}))}); skipping", RuntimeWarning, stacklevel=3)
        return None
    return float(v)


class EarlyStopping(Callback):
    """Stop training when `monitor` stops improving (Keras 3 semantics).

    An epoch improves when it beats the best so far by more than min_delta; training stops
    after `patience` epochs without improvement. baseline: the value must also beat it to reset
    the patience counter. restore_best_weights: at the end of training, put back the weights of
    the best epoch. start_from_epoch: epochs of warm-up that are not monitored."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if patience < 0 or start_from_epoch < 0:
            raise ValueError("EarlyStopping: patience and start_from_epoch must be >= 0")
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, bool(restore_best_weights)
        self.start_from_epoch, self.mode = int(start_from_epoch), mode
        self.min_delta = abs(float(min_delta))
        self._sign = _direction(monitor, mode, "EarlyStopping")
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        return self._sign * (value - self._sign * self.min_delta - reference) > 0

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        current = _monitor_value(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (model.save) or its weights (model.save_weights) after each epoch, or only
    when `monitor` improves (save_best_only). filepath may hold format fields filled from the
    epoch (1-based) and the logs, e.g. 'ckpt-{epoch:02d}-{val_loss:.3f}.nnc'."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise NotImplementedError("ModelCheckpoint: only save_freq='epoch' is supported")
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self._sign = _direction(monitor, mode, "ModelCheckpoint") if save_best_only else 1
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))
        except KeyError as e:
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} names {e} which is not in the logs "
                           f"(available: epoch, {', '.join(sorted(logs or {}))})") from None

    def on_epoch_end(self, epoch, logs=None):
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = _monitor_value(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            if self.best is not None and not self._sign * (current - self.best) > 0:
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best} to {current}, saving to {path}")
            self.best = current
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` after `patience` epochs without improvement of
    `monitor` by more than min_delta; wait `cooldown` epochs after a reduction; never below
    min_lr. Adds 'learning_rate' to the epoch logs (Keras 3)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword argument(s) {sorted(kwargs)}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), float(min_lr)
        self.mode = mode
        try:  # mode 'auto' knows auc/precision/recall go up (Keras only checks for 'acc')
            self._sign = _direction(monitor, mode, "ReduceLROnPlateau")
        except ValueError:
            if mode != "auto":
                raise
            self._sign = -1  # Keras's default for unknown names
        self._reset()

    def _reset(self):
        self.best = -self._sign * np.inf
        self.wait, self.cooldown_counter = 0, 0

    def _improved(self, current):
        return self._sign * (current - self.best) > self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        if callable(getattr(opt, "_learning_rate", None)):
            raise TypeError("ReduceLROnPlateau: the optimizer's learning rate is a schedule; "
                            "use a float learning rate with this callback")
        logs["learning_rate"] = float(opt.learning_rate)
        current = _monitor_value(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose > 0:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to schedule(epoch, lr) (or schedule(epoch)
    for one-argument functions, as Keras accepts). Adds 'learning_rate' to the epoch logs."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: schedule must be a function schedule(epoch, lr) -> lr")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = float(opt.learning_rate)
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        try:
            new = float(new)
        except (TypeError, ValueError):
            raise ValueError(f"LearningRateScheduler: the schedule must return a number, got {new!r}") from None
        if not (new > 0 and math.isfinite(new)):
            raise ValueError(f"LearningRateScheduler: the schedule returned {new} for epoch {epoch}; "
                             "learning rates must be positive and finite")
        opt.learning_rate = new
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss becomes NaN or infinite. Checks the running loss after
    every chunk of steps (on_train_chunk_end), so it does not force one-batch chunks."""

    def on_train_chunk_end(self, step, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {step}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write each epoch's logs as a CSV row: epoch, then the log keys in sorted order."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys, self._file, self._writer = None, None, None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._header_needed = not exists
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self.keys, self._writer = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys, delimiter=self.sep,
                                          extrasaction="ignore")
            if self._header_needed:
                self._writer.writeheader()

        def fmt(v):
            if isinstance(v, np.ndarray) and v.ndim:
                return '"[%s]"' % ", ".join(map(str, v.tolist()))
            return v
        self._writer.writerow({"epoch": epoch, **{k: fmt(logs.get(k, "NA")) for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file, self._writer = None, None


class LambdaCallback(Callback):
    """A callback from plain functions: on_epoch_begin(epoch, logs), on_epoch_end(epoch, logs),
    on_train_begin(logs), on_train_end(logs), on_train_batch_begin/end(batch, logs)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        fns = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                   on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                   on_train_batch_end=on_train_batch_end, **kwargs)
        for k, f in fns.items():
            if f is not None:
                if not k.startswith("on_") or not hasattr(Callback, k):
                    raise TypeError(f"LambdaCallback: unknown hook {k!r}")
                setattr(self, k, _with_logs(f, 1 if k.endswith(("train_begin", "train_end")) else 2))
        self._batches = on_train_batch_begin is not None or on_train_batch_end is not None

    def _wants_batches(self):
        return self._batches


def _with_logs(f, nargs):
    """Calls f with (logs) or (index, logs), filling logs=None when the caller passed none."""
    def hook(*args, logs=None):
        args = args + (logs,) if len(args) < nargs else args
        return f(*args[:nargs])
    return hook
