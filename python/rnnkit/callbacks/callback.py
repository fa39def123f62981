"""`Callback`, the base class: the hooks that `fit`, `evaluate` and `predict` call."""


class Callback:
    """Base class: override the hooks you need. `self.model` and `self.params` (`verbose`,
    `epochs`, `steps`) are set by `fit`, `evaluate` and `predict`.

    `on_train_batch_begin/end` call `on_batch_begin/end`, their older names, unless overridden.
    Batch logs hold the running means of the epoch so far; epoch logs the epoch's values, with
    `val_` entries after validation.

    In data-parallel training every rank calls the hooks with the same (global) logs, except for
    callbacks whose class sets `chief_only = True` (the progress bar, `ModelCheckpoint`,
    `CSVLogger`): those run on rank 0 only, so that one process prints and writes files.
    """

    chief_only = False

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass
