"""The distribution in effect: `set_distribution`, `distribution`, and what the rest of rnnkit asks of it."""

import functools

_current = None


def set_distribution(value):
    """Sets the distribution `fit`, `evaluate` and `predict` use (None for none), as Keras's.

    Args:
        value: A `DataParallel`, or None.

    Raises:
        TypeError: If `value` is neither.
    """
    from rnnkit.distribution.data_parallel import DataParallel

    global _current
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"distribution: expected a DataParallel or None, received {type(value).__name__}.")
    _current = value


def distribution():
    """The distribution set by `set_distribution`, or None."""
    return _current


def replicas():
    """The `DataParallel` in effect when it spans more than one process, else None (one process
    trains as if no distribution were set)."""
    return _current if _current is not None and _current.num_processes > 1 else None


def is_chief():
    """Whether this process writes files and prints progress: rank 0, or the only process."""
    return _current is None or _current.process_id == 0


def reports_failures(method):
    """Wraps `fit`, `evaluate` or `predict` so that an exception on one rank is reported to the
    others (which stop with it at their next collective) even when the caller catches it."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        active = replicas()
        try:
            return method(*args, **kwargs)
        except BaseException as error:
            if active is not None:
                active.communicator.report_failure(error)
            raise

    return run
