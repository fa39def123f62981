"""The `Metric` base class: state updated batch by batch, a result, a reset."""

import numpy as np

from rnnkit._naming import snake_case, unique_name


class Metric:
    """Base class of metrics: state updated batch by batch, summarised by `result()`.

    Args:
        dtype: The dtype of the state and result (float32 by default).
        name: The metric's name (the snake_case class name by default).
    """

    def __init__(self, dtype=None, name=None):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.dtype = np.dtype(dtype or "float32").name

    def update_state(self, *args, **kwargs):
        """Accumulates statistics of a batch; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def result(self):
        """Returns the metric's value (a numpy scalar); subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def reset_state(self):
        """Clears the accumulated state; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state().")

    def __call__(self, *args, **kwargs):
        """Updates the state with a batch and returns the result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        """Creates a metric from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new metric.
        """
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"
