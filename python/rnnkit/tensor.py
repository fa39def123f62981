"""Tensor and Variable: immutable numpy-backed arrays and mutable trainable weights."""

import itertools

import numpy as np

# Every Tensor gets a fresh id: tapes key gradients by it, and Python's id() can be reused
# by a new object once an old one is freed.
_ids = itertools.count()


def _ops():
    """Returns the ops package, imported on first use because it builds on this module."""
    from rnnkit import ops

    return ops


def _to_array(value, dtype=None):
    """Converts a tensor-like to a read-only numpy array the caller may keep.

    Tensor arrays are shared (they are immutable); anything else is copied so later writes to
    the source cannot change the Tensor.
    """
    if isinstance(value, Tensor):
        array = value._array
        if dtype is None or array.dtype == dtype:
            return array
        array = array.astype(dtype)
    else:
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(
                f"Cannot convert {type(value).__name__} {value!r:.60} to a tensor: expected "
                f"numbers, numpy arrays or Tensors, got dtype {array.dtype}."
            )
        from_python = not isinstance(value, (np.ndarray, np.generic))
        if dtype is None and from_python and array.dtype == np.float64:
            dtype = np.float32  # Python floats follow Keras's floatx.
        # Row-major whatever the source's order (the copy costs the same): the core reads weights
        # and inputs as rows, and would copy a column-major one (an orthogonal initializer's QR
        # factor) again on every call.
        array = np.array(array, dtype=dtype, order="C")
    array.flags.writeable = False
    return array


class Tensor:
    """An immutable n-dimensional array that gradient tapes can differentiate through.

    `np.asarray(t)` returns the underlying read-only array without copying; `t.numpy()` a
    writable copy. Operators (`+ - * / @ **`, unary `-`, indexing) are differentiable ops;
    comparisons return boolean Tensors that carry no gradient.

    Args:
        value: A number, nested list, numpy array or Tensor.
        dtype: Optional dtype; by default Python floats become float32 and numpy arrays keep
            their dtype.
    """

    # `_keras_mask` is the (batch, time) mask a layer attached to its output, as in Keras;
    # `_keras_logits`, set only on a softmax's output, its input (the cross-entropies then
    # differentiate with respect to it in one step, as Keras's TensorFlow backend does).
    __slots__ = ("_array", "_id", "_keras_mask", "_keras_logits", "__weakref__")
    # Makes `ndarray + Tensor` call Tensor.__radd__ instead of numpy's elementwise loop.
    __array_priority__ = 100

    def __init__(self, value, dtype=None):
        self._array = _to_array(value, dtype)
        self._id = next(_ids)
        self._keras_mask = None

    @property
    def shape(self):
        """The shape as a tuple of ints."""
        return self._array.shape

    @property
    def dtype(self):
        """The numpy dtype."""
        return self._array.dtype

    @property
    def ndim(self):
        """The number of dimensions."""
        return self._array.ndim

    @property
    def T(self):
        """The transpose (axes reversed)."""
        return _ops().transpose(self)

    def numpy(self):
        """Returns a writable numpy copy of the value."""
        return self._array.copy()

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._array, dtype=dtype, copy=True)
        if dtype is None or self._array.dtype == dtype:
            return self._array
        if copy is False:
            raise ValueError(f"Converting {self.dtype} to {np.dtype(dtype)} needs a copy.")
        return self._array.astype(dtype)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, key):
        return _ops().manipulation.getitem(self, key)

    def __repr__(self):
        return _repr(self, "rk.Tensor")

    def __format__(self, spec):
        return format(self._array.item() if self.ndim == 0 else self._array, spec)

    def __bool__(self):
        return bool(self._array)

    def __float__(self):
        return float(self._array)

    def __int__(self):
        return int(self._array)

    def __index__(self):
        # An integer scalar Tensor serves as a size or an index (e.g. in a shape), as numpy's do.
        return self._array.__index__()

    # An identity hash keeps Tensors and Variables usable as dict keys even though `==`
    # compares elementwise.
    __hash__ = object.__hash__

    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __pow__(self, other):
        return _ops().power(self, other)

    def __rpow__(self, other):
        return _ops().power(other, self)

    def __neg__(self):
        return _ops().negative(self)

    def __abs__(self):
        return _ops().abs(self)

    def __eq__(self, other):
        return _compare(_ops().equal, self, other)

    def __ne__(self, other):
        return _compare(_ops().not_equal, self, other)

    def __lt__(self, other):
        return _compare(_ops().less, self, other)

    def __le__(self, other):
        return _compare(_ops().less_equal, self, other)

    def __gt__(self, other):
        return _compare(_ops().greater, self, other)

    def __ge__(self, other):
        return _compare(_ops().greater_equal, self, other)


def _repr(tensor, head):
    text = np.array2string(tensor._array)
    newline = "\n" if "\n" in text else ""
    return f"<{head} shape={tensor.shape} dtype={tensor.dtype} numpy={newline}{text}>"


def _compare(fn, x, y):
    # NotImplemented lets Python fall back to identity, so `t == None` is False, not an error.
    try:
        return fn(x, y)
    except TypeError:
        return NotImplemented


class Variable(Tensor):
    """A mutable, optionally trainable tensor: the weights of layers and models.

    Tapes watch trainable Variables automatically when an op reads them. Assignment replaces
    the stored array rather than writing into it, so values saved for a backward pass stay valid.

    Args:
        initial_value: A tensor-like, or a callable with no arguments that returns one.
        trainable: Whether gradient tapes watch the variable automatically.
        name: Optional name, "Variable" by default.
        dtype: Optional dtype; inferred as in `convert_to_tensor` by default.
    """

    __slots__ = ("name", "trainable")

    def __init__(self, initial_value, trainable=True, name=None, dtype=None):
        if callable(initial_value):
            initial_value = initial_value()
        super().__init__(initial_value, dtype)
        self.trainable = trainable
        self.name = name or "Variable"

    @property
    def value(self):
        """A Tensor holding the current value; later assignments do not change it."""
        return wrap(self._array)

    def assign(self, value):
        """Replaces the value.

        Args:
            value: A tensor-like of the variable's shape; it is cast to the variable's dtype.

        Returns:
            The variable.

        Raises:
            ValueError: If the shape of `value` differs from the variable's shape.
        """
        array = _to_array(value, self.dtype)
        if array.shape != self.shape:
            raise ValueError(
                f"Cannot assign to variable '{self.name}': expected shape {self.shape}, received shape {array.shape}."
            )
        self._array = array
        return self

    def _take(self, array):
        """Makes `array` the value without a copy or a check: for the optimizers' fused updates,
        whose results are new arrays of the variable's shape and dtype that nothing else holds."""
        array.flags.writeable = False
        self._array = array

    def assign_add(self, delta):
        """Adds `delta` to the value and returns the variable."""
        return self.assign(self._array + np.asarray(delta))

    def assign_sub(self, delta):
        """Subtracts `delta` from the value and returns the variable."""
        return self.assign(self._array - np.asarray(delta))

    def __repr__(self):
        return _repr(self, f"rk.Variable name={self.name!r}")


def convert_to_tensor(x, dtype=None):
    """Converts a tensor-like to a Tensor.

    Args:
        x: A number, nested list, numpy array, Tensor or Variable.
        dtype: Optional target dtype. A Tensor of another dtype is cast differentiably.

    Returns:
        `x` itself if it is already a Tensor of the requested dtype, else a new Tensor. Python
        floats (and lists of them) become float32, numpy arrays keep their dtype, ints stay ints.

    Raises:
        TypeError: If `x` holds strings, None or other objects that are not numbers.
    """
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype == dtype else _ops().cast(x, dtype)
    return Tensor(x, dtype)


def wrap(array):
    """Wraps a numpy array the caller owns as a Tensor, without copying.

    This is how ops (and the Rust extension's results) become Tensors. The array is marked
    read-only; the caller must not write to it, or to its base, afterwards.

    Args:
        array: A numpy array or numpy scalar.

    Returns:
        A Tensor sharing the array's memory.
    """
    tensor = Tensor.__new__(Tensor)
    tensor._array = np.asarray(array)
    tensor._array.flags.writeable = False
    tensor._id = next(_ids)
    tensor._keras_mask = None
    return tensor
