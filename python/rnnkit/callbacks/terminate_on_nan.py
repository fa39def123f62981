"""`TerminateOnNaN`, which stops training when the loss becomes NaN or infinite."""

import math

from rnnkit.callbacks.callback import Callback


class TerminateOnNaN(Callback):
    """Stops training as soon as a training batch's loss is NaN or infinite.

    Args:
        raise_error: Raise a `RuntimeError` instead of stopping quietly after the batch.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. Terminating training immediately."
            )
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
