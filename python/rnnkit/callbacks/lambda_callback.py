"""`LambdaCallback`, a callback made of functions for some of the hooks."""

from rnnkit.callbacks.callback import Callback

# The hooks a `LambdaCallback` can be given, `on_batch_*` being the older names of `on_train_batch_*`.
_HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """A callback made of functions, one per hook: `on_epoch_end=lambda epoch, logs: ...`.

    Args:
        on_epoch_begin: Function of `(epoch, logs)` called when an epoch starts.
        on_epoch_end: Function of `(epoch, logs)` called when an epoch ends.
        on_train_begin: Function of `(logs)` called when training starts.
        on_train_end: Function of `(logs)` called when training ends.
        on_train_batch_begin: Function of `(batch, logs)` called before each training batch.
        on_train_batch_end: Function of `(batch, logs)` called after each training batch.
        **kwargs: Any other hook: `on_batch_begin/end`, `on_test_*`, `on_predict_*`.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(set(kwargs) - set(_HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hooks {unknown}; expected some of {list(_HOOKS)}.")
        hooks = dict(
            kwargs,
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
        )
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)
