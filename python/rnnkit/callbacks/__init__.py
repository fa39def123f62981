"""Callbacks for `Model.fit`, `evaluate` and `predict`, with Keras's names, arguments, hooks and log keys."""

from rnnkit.callbacks.backup_and_restore import BackupAndRestore
from rnnkit.callbacks.callback import Callback
from rnnkit.callbacks.callback_list import CallbackList
from rnnkit.callbacks.csv_logger import CSVLogger
from rnnkit.callbacks.early_stopping import EarlyStopping
from rnnkit.callbacks.history import History
from rnnkit.callbacks.lambda_callback import LambdaCallback
from rnnkit.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from rnnkit.callbacks.model_checkpoint import ModelCheckpoint
from rnnkit.callbacks.monitor import MonitorCallback
from rnnkit.callbacks.progbar_logger import ProgbarLogger
from rnnkit.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]
