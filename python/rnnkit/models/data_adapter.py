"""What `fit`, `evaluate` and `predict` read, as numpy batches of `(x, y, sample_weight)`.

Two kinds of sources, as in Keras 3:

- in-memory arrays (numpy arrays, anything with `__array__`, nested lists of numbers, and lists or
  dicts of those for several inputs or outputs), cut into batches of `batch_size` each epoch;
- any other iterable of batches `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`: a generator, a
  PyDataset-style object (`__getitem__` and `__len__`, optional `on_epoch_end`), a
  `tf.data.Dataset`, a `torch.utils.data.DataLoader`. They are read by iteration or indexing only
  (their frameworks are never imported) and their tensors converted with `np.asarray`.

`EpochIterator` turns a source into epochs, with Keras's rule for `steps_per_epoch`.
"""

import itertools
import math
import random
import warnings

import numpy as np

from rnnkit import tree
from rnnkit.tensor import Tensor


def is_batch_iterable(data):
    """Whether `data` is a source of batches rather than in-memory arrays."""
    if (
        data is None
        or isinstance(data, (np.ndarray, Tensor, list, tuple, dict, str, bytes))
        or hasattr(data, "__array__")
    ):
        return False
    return hasattr(data, "__iter__") or _is_indexed(data)


def _is_indexed(data):
    """A PyDataset-style object: batch `i` is `data[i]`, and it knows how many batches it has."""
    return hasattr(data, "__getitem__") and (hasattr(data, "__len__") or hasattr(data, "num_batches"))


def _leaf_array(value):
    """A numpy array of one leaf: a numpy array, an `rk.Tensor`, a tf/jax/torch tensor, a number."""
    if isinstance(value, np.ndarray):
        return value
    if not isinstance(value, Tensor) and hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()  # a torch tensor: off the autograd graph and the GPU first
    return np.asarray(value)


def _is_leaf(value):
    return isinstance(value, (np.ndarray, Tensor)) or hasattr(value, "__array__") or np.isscalar(value)


def to_arrays(data):
    """Numpy arrays in the structure of `data`.

    Args:
        data: None, an array-like, nested lists of numbers, or a list/tuple/dict of those (several
            inputs or outputs).

    Returns:
        The same structure with numpy arrays as leaves (a list of numbers becomes one array).

    Raises:
        TypeError: If a leaf is not numeric.
    """
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: to_arrays(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and any(
        isinstance(d, dict) or (_is_leaf(d) and not np.isscalar(d)) for d in data
    ):
        return [to_arrays(d) for d in data]
    array = _leaf_array(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Expected numeric data (numpy arrays or nested lists of numbers), received dtype {array.dtype}."
        )
    return array


def unpack_x_y_sample_weight(data):
    """`(x, y, sample_weight)` of a batch given as `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

    Raises:
        ValueError: If a tuple or list has more than three entries.
    """
    if not isinstance(data, (tuple, list)):
        return data, None, None
    if len(data) > 3:
        raise ValueError(
            f"batch: expected x, (x,), (x, y) or (x, y, sample_weight), received a {type(data).__name__} of "
            f"{len(data)} entries."
        )
    return (*data, None, None)[:3]


def class_weight_to_sample_weight(y, class_weight):
    """Per-sample weights `class_weight[label]` (1.0 for classes it leaves out).

    Args:
        y: Labels: integer classes `(n,)` or `(n, 1)`, or one-hot `(n, classes)`.
        class_weight: Dict from class index to weight.
    """
    labels = np.asarray(y)
    if labels.ndim == 2:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            "class_weight: expected labels of shape (samples,), (samples, 1) or one-hot (samples, classes), received "
            f"shape {np.shape(y)}."
        )
    labels = np.round(labels).astype(np.int64)
    return np.array([float(class_weight.get(int(c), 1.0)) for c in labels], dtype="float32")


def _check_class_weight(class_weight, y):
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"class_weight: expected a dict from class index to weight, received {type(class_weight).__name__}."
        )
    if isinstance(y, (list, tuple, dict)):
        raise ValueError(
            f"class_weight: expected a model with one output, received targets for {len(tree.flatten(y))} outputs."
        )


def apply_class_weight(y, sample_weight, class_weight):
    """The sample weights of a batch, or of all the arrays, after `class_weight`."""
    if class_weight is None:
        return sample_weight
    if sample_weight is not None:
        raise ValueError(
            "class_weight: expected no sample weights alongside, received both class_weight and sample_weight."
        )
    _check_class_weight(class_weight, y)
    return class_weight_to_sample_weight(y, class_weight)


def count_samples(arrays, name):
    """The number of samples (first-axis length) shared by all the arrays of `arrays`.

    Raises:
        ValueError: If an array is a scalar or the lengths differ.
    """
    leaves = [a for a in tree.flatten(arrays) if a is not None]
    for a in leaves:
        if np.ndim(a) == 0:
            raise ValueError(f"{name}: expected arrays with a batch axis (samples first), received a scalar {a!r:.40}.")
    sizes = {len(a) for a in leaves}
    if len(sizes) > 1:
        raise ValueError(
            f"Data cardinality is ambiguous: {name} sizes: {sorted(sizes)}. Make sure all arrays contain the same "
            "number of samples."
        )
    return sizes.pop() if sizes else 0


def _take(arrays, index):
    return None if arrays is None else tree.map_structure(lambda a: a[index], arrays)


class ArrayBatches:
    """In-memory arrays cut into batches, in a new order each pass when shuffled.

    Args:
        x: Input arrays (one array, or a list/dict of arrays).
        y: Target arrays, or None.
        sample_weight: Per-sample weights, or None.
        batch_size: Samples per batch; None means 32, or as many as make `steps` batches.
        steps: Batches per epoch asked for (only used to size the batches when `batch_size` is None).
        shuffle: True for a new order of all samples each pass, "batch" to shuffle only within
            each batch, False to keep the order.
        class_weight: Dict from class index to a weight multiplying the loss of its samples.
    """

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, steps=None, shuffle=False, class_weight=None):
        self.x, self.y = to_arrays(x), to_arrays(y)
        self.sample_weight = apply_class_weight(self.y, to_arrays(sample_weight), class_weight)
        self.num_samples = count_samples(self.x, "x")
        for name, value in (("y", self.y), ("sample_weight", self.sample_weight)):
            if value is not None and count_samples(value, name) != self.num_samples:
                raise ValueError(
                    f"Data cardinality is ambiguous: x sizes: {self.num_samples}, {name} sizes: "
                    f"{count_samples(value, name)}. "
                    "Make sure all arrays contain the same number of samples."
                )
        if batch_size is None:
            batch_size = max(math.ceil(self.num_samples / steps), 1) if steps else 32
        self.batch_size = batch_size
        self.num_batches = math.ceil(self.num_samples / batch_size)
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"shuffle: expected True, False or 'batch', received {shuffle!r}.")
        self.shuffle = shuffle

    def __iter__(self):
        """One pass over the samples, in batches."""
        order = np.random.permutation(self.num_samples) if self.shuffle is True else None
        for start in range(0, self.num_samples, self.batch_size):
            stop = min(start + self.batch_size, self.num_samples)
            if self.shuffle == "batch":
                index = start + np.random.permutation(stop - start)
            else:
                index = slice(start, stop) if order is None else order[start:stop]
            yield _take(self.x, index), _take(self.y, index), _take(self.sample_weight, index)

    def on_epoch_end(self):
        pass


class IterableBatches:
    """The batches of an iterable, each `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

    A PyDataset-style object (`__getitem__` plus `__len__` or `num_batches`) is read by index, in
    a new random order each epoch when shuffled, and its `on_epoch_end` is called after each
    epoch. Anything else is iterated, a new pass each epoch (a generator, being one pass, runs out).

    Args:
        data: The iterable.
        shuffle: Shuffle the order of a PyDataset's batches each epoch.
        class_weight: Dict from class index to weight; turned into each batch's sample weights.
    """

    def __init__(self, data, shuffle=False, class_weight=None):
        self.data = data
        self.indexed = _is_indexed(data)
        self.shuffle = bool(shuffle) and self.indexed
        if class_weight is not None:
            _check_class_weight(class_weight, None)
        self.class_weight = class_weight
        self.num_batches = _length(data)

    def __iter__(self):
        """One pass over the batches, converted to numpy."""
        if self.indexed:
            indices = itertools.count() if self.num_batches is None else list(range(self.num_batches))
            if self.shuffle and self.num_batches is not None:
                random.shuffle(indices)
            batches = (self.data[i] for i in indices)
        else:
            batches = self.data
        for batch in batches:
            x, y, sample_weight = unpack_x_y_sample_weight(batch)
            x, y, sample_weight = to_arrays(x), to_arrays(y), to_arrays(sample_weight)
            yield x, y, apply_class_weight(y, sample_weight, self.class_weight)

    def on_epoch_end(self):
        if callable(getattr(self.data, "on_epoch_end", None)):
            self.data.on_epoch_end()


def _length(data):
    """The number of batches of `data` (its `num_batches`, else its `len()`), or None when it
    does not say (a generator, an infinite PyDataset or tf.data.Dataset, whose `len()` raises)."""
    try:
        num_batches = getattr(data, "num_batches", None)
        if num_batches is None and hasattr(data, "num_batches"):
            return None  # an infinite PyDataset
        return int(num_batches) if num_batches is not None else len(data)
    except (TypeError, NotImplementedError):
        return None


def batches_of(x, y=None, sample_weight=None, batch_size=None, steps=None, shuffle=False, class_weight=None):
    """The batch source for `x` (arrays or an iterable of batches) and its companions.

    Args:
        x: Inputs, as `Model.fit` takes them.
        y: Targets, as `Model.fit` takes them.
        sample_weight: Per-sample weights, as `Model.fit` takes them.
        class_weight: Weights per class index, as `Model.fit` takes them.
        batch_size: Samples per batch of arrays; an iterable's batches keep their size.
        steps: Batches per epoch asked for (sizes the batches of arrays without `batch_size`).
        shuffle: As `Model.fit` takes it; as in Keras, it does not apply to an iterable that is
            not a PyDataset (whose batches come in the order it gives them).

    Returns:
        An `ArrayBatches` or `IterableBatches`.

    Raises:
        ValueError: If `y` or `sample_weight` is given beside an iterable of batches.
    """
    if not is_batch_iterable(x):
        return ArrayBatches(x, y, sample_weight, batch_size, steps, shuffle, class_weight)
    kind = type(x).__name__
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(
                f"{name}: expected None when x is an iterable of batches ({kind}: each batch carries its own {name}), "
                f"received {type(value).__name__}."
            )
    if batch_size is not None:
        warnings.warn(
            f"batch_size={batch_size} has no effect when x is an iterable of batches ({kind}): its batches keep their "
            "size.",
            stacklevel=3,
        )
    return IterableBatches(x, shuffle=shuffle, class_weight=class_weight)


class EpochIterator:
    """Reads a batch source one epoch at a time.

    Without `steps`, an epoch is one pass over the source. With `steps`, an epoch is `steps`
    batches and the next epoch goes on where the last stopped; a pass that runs out in the middle
    of an epoch ends that epoch early, with a warning, and the next epoch starts a new pass
    (Keras's rule, so an infinite generator trains with `steps_per_epoch`).

    Args:
        source: An `ArrayBatches` or `IterableBatches`.
        steps: Batches per epoch, or None for one pass.
    """

    def __init__(self, source, steps=None):
        self.source = source
        self.steps = steps
        self._pass = None

    @property
    def num_batches(self):
        """Batches per epoch, or None when the source does not say."""
        return self.steps or self.source.num_batches

    def reset(self):
        """Starts the next epoch with a new pass (evaluation always reads from the start)."""
        self._pass = None

    def epoch(self):
        """The batches of the next epoch."""
        try:
            if self.steps is None:
                yield from self.source
                return
            for step in range(self.steps):
                if self._pass is None:
                    self._pass = iter(self.source)
                batch = next(self._pass, None)
                if batch is None and step == 0:  # the last epoch ended with the pass
                    self._pass = iter(self.source)
                    batch = next(self._pass, None)
                if batch is None:
                    self._pass = None
                    if step > 0:
                        warnings.warn(
                            f"Your input ran out of data after {step} of {self.steps} steps of this epoch; the next "
                            "epoch starts a new pass. Make sure it can give at least steps_per_epoch * epochs batches.",
                            stacklevel=2,
                        )
                    return
                yield batch
        finally:
            self.source.on_epoch_end()
