"""`History`, the per-epoch logs that `fit` returns."""

from rnnkit.callbacks.callback import Callback


class History(Callback):
    """Records each epoch's logs: `history.history["loss"]` is the list of epoch losses.

    `fit` adds one and returns it (it is also `model.history`); `epoch` lists the epochs run.
    """

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"<rnnkit.callbacks.History at {id(self):#x}>"
