"""Callbacks with Keras's hooks. `History` is attached to every fit; the progress bar is the
`ProgbarLogger`."""
import sys
import time

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
        return any(c._wants_batches() for c in self.callbacks)
