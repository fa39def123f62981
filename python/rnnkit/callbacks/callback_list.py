"""`CallbackList`, which calls the hooks of many callbacks and adds `History` and the progress bar."""

from rnnkit.callbacks.callback import Callback
from rnnkit.callbacks.history import History
from rnnkit.callbacks.progbar_logger import ProgbarLogger
from rnnkit.distribution.state import is_chief


class CallbackList(Callback):
    """Calls every callback's hook in order, always passing `logs` (as Keras does, so
    `LambdaCallback(on_epoch_begin=lambda epoch, logs: ...)` works).

    Args:
        callbacks: A list of `Callback`s.
        add_history: Append a `History` unless the list has one (it becomes `model.history`).
        add_progbar: Append a `ProgbarLogger` unless the list has one.
        model: The model the callbacks watch.
        **params: Passed to every callback's `set_params` (`verbose`, `epochs`, `steps`).
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise ValueError(f"callbacks: expected Callback instances, received {type(callback).__name__}.")
        history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if history is None and add_history:
            history = History()
            self.callbacks.append(history)
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            if history is not None:
                model.history = history
            self.set_model(model)
        if params:
            self.set_params(params)

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def _call(self, hook, *args):
        chief = is_chief()
        for callback in self.callbacks:
            if chief or not callback.chief_only:
                getattr(callback, hook)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)
