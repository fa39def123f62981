"""`compile`, `fit`, `evaluate`, `predict` and the `*_on_batch` methods of models."""

import numpy as np

from rnnkit import tree
from rnnkit.callbacks import CallbackList, History, ProgbarLogger
from rnnkit.tape import GradientTape
from rnnkit.tensor import Tensor, wrap


def _is_data_leaf(value):
    return isinstance(value, (np.ndarray, Tensor)) or np.isscalar(value)


def _is_batch_iterable(data):
    """Whether `data` is an iterable of batches (a generator, iterator or dataset object)
    rather than in-memory arrays."""
    return not isinstance(data, (np.ndarray, Tensor, list, tuple, dict, str, bytes)) and hasattr(data, "__iter__")


def _to_arrays(data):
    """numpy arrays in the structure of `data` (an array, nested lists of numbers, or a
    list/tuple/dict of arrays for several inputs or outputs); an iterable of batches is
    returned as is (`_batches` converts each batch)."""
    if data is None or _is_batch_iterable(data):
        return data
    if isinstance(data, dict):
        return {k: _to_arrays(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and data and all(_is_data_leaf(d) or isinstance(d, (list, tuple, dict)) for d in data) and any(
        isinstance(d, (np.ndarray, Tensor, dict)) for d in data
    ):
        return [_to_arrays(d) for d in data]
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Expected numeric data (numpy arrays or nested lists of numbers), received dtype {array.dtype}.")
    return array


def _shared(x):
    """The arrays of a batch as read-only Tensors sharing their memory: a step reads its inputs
    and keeps none of them, so the copy a Tensor makes of a user's array is not needed."""
    return tree.map_structure(lambda a: wrap(a.view()) if isinstance(a, np.ndarray) else a, x)


def _count(arrays, name):
    for a in tree.flatten(arrays):
        if np.ndim(a) == 0:
            raise ValueError(f"{name}: expected arrays with a batch axis (samples first), received a scalar {a!r:.40}.")
    sizes = {len(a) for a in tree.flatten(arrays)}
    if len(sizes) > 1:
        raise ValueError(f"Data cardinality is ambiguous: {name} sizes: {sorted(sizes)}. Make sure all arrays contain the same number of samples.")
    return sizes.pop() if sizes else 0


def _batch_size(value, default=32):
    """`value`, checked to be a positive integer, or `default` for None."""
    if value is None:
        return default
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"batch_size: expected a positive integer, received {value!r}.")
    return int(value)


def _take(arrays, index):
    return None if arrays is None else tree.map_structure(lambda a: a[index], arrays)


def _batches(x, y, sw, batch_size, shuffle):
    """`(x, y, sample_weight)` batches of in-memory arrays, or of an iterable of batches."""
    if _is_batch_iterable(x):
        for batch in x:
            batch = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
            bx, by, bsw = (batch + (None, None))[:3]
            yield _to_arrays(bx), _to_arrays(by), None if bsw is None else np.asarray(bsw)
        return
    n = _count(x, "x")
    if y is not None and _count(y, "y") != n:
        raise ValueError(
            f"Data cardinality is ambiguous: x sizes: {n}, y sizes: {_count(y, 'y')}. Make sure all arrays contain the same number of samples."
        )
    order = np.random.permutation(n) if shuffle else None
    for start in range(0, n, batch_size):
        index = slice(start, start + batch_size) if order is None else order[start : start + batch_size]
        yield _take(x, index), _take(y, index), _take(sw, index)


def _loss_object(identifier):
    """A `Loss` for a loss name, instance or function (functions are wrapped, as Keras does)."""
    from rnnkit import losses

    loss = losses.get(identifier)
    if loss is None or isinstance(loss, losses.Loss):
        return loss
    return losses.LossFunctionWrapper(loss, name=getattr(loss, "__name__", "loss"))


def _as_list(value):
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


class Trainer:
    """The Keras training API, mixed into `Model`."""

    compiled = False
    stop_training = False

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None, **kwargs):
        """Sets the optimizer, the loss (one per output for several outputs) and the metrics.

        Args:
            optimizer: An optimizer or its name.
            loss: A loss (name, instance or function), or a list/dict of them, one per output.
            loss_weights: Optional list/dict of scalars weighting the outputs' losses.
            metrics: Metric names or instances, applied to every output (or a list/dict per output).
            weighted_metrics: Metrics that also receive the sample weights.
        """
        from rnnkit import optimizers
        from rnnkit import metrics as metric_registry

        for key in ("run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to compile: {kwargs}")
        self.optimizer = optimizers.get(optimizer)
        names = self._output_names()
        self._losses = self._per_output(loss, names, "loss", _loss_object)
        weights = self._per_output(loss_weights, names, "loss_weights", float) if loss_weights is not None else None
        self._loss_weights = weights or [1.0] * len(names)
        self._metric_specs = self._per_output(metrics, names, "metrics", _as_list, broadcast_lists=True)
        self._weighted_specs = self._per_output(weighted_metrics, names, "weighted_metrics", _as_list, broadcast_lists=True)
        for spec in (s for per_output in self._metric_specs + self._weighted_specs for s in per_output):
            if spec not in ("accuracy", "acc"):
                metric_registry.get(spec)  # an unknown name fails here, before any batch is computed
        self._metrics = None  # built on the first batch, when shapes are known
        self.compiled = True

    def _output_names(self):
        outputs = getattr(self, "outputs", None) or []
        names, used = [], {}
        for kt in outputs:
            layer = kt.node.layer if kt.node is not None else kt.input_layer
            name = layer.name if kt.index == 0 else f"{layer.name}_{kt.index}"
            used[name] = used.get(name, 0) + 1
            names.append(name if used[name] == 1 else f"{name}_{used[name] - 1}")
        return names or ["output"]

    @staticmethod
    def _per_output(value, names, arg, convert, broadcast_lists=False):
        if value is None:
            return [convert(None) for _ in names]
        if isinstance(value, dict):
            unknown = set(value) - set(names)
            if unknown:
                raise ValueError(f"{arg}: unknown output names {sorted(unknown)}; the outputs are {names}.")
            return [convert(value.get(n)) for n in names]
        if isinstance(value, (list, tuple)) and not broadcast_lists:
            if len(value) != len(names):
                raise ValueError(f"{arg}: expected {len(names)} entries (one per output: {names}), received {len(value)}.")
            return [convert(v) for v in value]
        if broadcast_lists and isinstance(value, (list, tuple)) and len(names) > 1 and len(value) == len(names) and all(
            isinstance(v, (list, tuple)) for v in value
        ):
            return [convert(v) for v in value]
        return [convert(value) for _ in names]

    def _build_metrics(self, y_true, y_pred):
        from rnnkit import metrics

        built = []
        for weighted, per_output in ((False, self._metric_specs), (True, self._weighted_specs)):
            for out, specs in enumerate(per_output):
                for spec in specs:
                    if spec in ("accuracy", "acc"):
                        metric = metrics.resolve_accuracy(
                            self._losses[out], np.shape(y_true[out]), y_pred[out].shape, name=spec
                        )
                    else:
                        metric = metrics.get(spec)
                        if not isinstance(metric, metrics.Metric):  # a function, as Keras wraps it
                            metric = metrics.MeanMetricWrapper(metric, name=getattr(metric, "__name__", "metric"))
                        if isinstance(spec, str):  # logged under the name given, e.g. "mae"
                            metric.name = spec
                    built.append((out, metric, weighted))
        self._metrics = built

    def _compute_loss(self, y_true, y_pred, sample_weight):
        per_output = []
        total = 0.0
        for fn, weight, yt, yp in zip(self._losses, self._loss_weights, y_true, y_pred):
            if fn is None:
                continue
            value = fn(yt, yp, sample_weight=sample_weight)
            per_output.append(value)
            total = total + weight * value
        for extra in self.losses:
            total = total + extra
        return total, per_output

    def _listify(self, y):
        if isinstance(y, dict):
            # Targets keyed by output name go to their outputs, in the model's output order.
            names = self._output_names()
            if set(y) == set(names):
                return [y[name] for name in names]
        return tree.flatten(y) if isinstance(y, (list, tuple, dict)) else [y]

    def _step_logs(self, total, per_output, y_true, y_pred, sample_weight):
        if self._metrics is None:
            self._build_metrics(y_true, y_pred)
        names = self._output_names()
        logs = {"loss": float(np.asarray(total))}
        if len(names) > 1:
            for name, value in zip([n for n, f in zip(names, self._losses) if f is not None], per_output):
                logs[f"{name}_loss"] = float(np.asarray(value))
        for out, metric, weighted in self._metrics:
            # The prediction Tensor carries its mask, which metrics honour as Keras's do.
            metric.update_state(y_true[out], y_pred[out], sample_weight=sample_weight if weighted else None)
            key = metric.name if len(names) == 1 else f"{names[out]}_{metric.name}"
            logs[key] = float(metric.result())
        return logs

    def _reset_metrics(self):
        for _, metric, _ in self._metrics or []:
            metric.reset_state()

    def _check_compiled(self):
        if not self.compiled:
            raise ValueError("You must call `compile()` before using the model for training or evaluation: the model has no loss or optimizer yet.")

    def train_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """One gradient step on one batch; returns the batch's loss (and metrics)."""
        self._check_compiled()
        self._reset_metrics()
        logs = self._train_step(_to_arrays(x), _to_arrays(y), None if sample_weight is None else np.asarray(sample_weight))
        return self._format(logs, return_dict)

    def _train_step(self, x, y, sample_weight):
        params = self.trainable_weights
        with GradientTape() as tape:
            y_pred = self._listify(self(_shared(x), training=True))
            y_true = self._listify(y)
            total, per_output = self._compute_loss(y_true, y_pred, sample_weight)
        grads = tape.gradient(total, params)
        constraints = {id(w): c for w in params if (c := self.constraint_for(w)) is not None}
        self.optimizer.apply(grads, params, constraints=constraints)
        return self._step_logs(total, per_output, y_true, y_pred, sample_weight)

    def _test_step(self, x, y, sample_weight):
        y_pred = self._listify(self(_shared(x), training=False))
        y_true = self._listify(y)
        total, per_output = self._compute_loss(y_true, y_pred, sample_weight)
        return self._step_logs(total, per_output, y_true, y_pred, sample_weight)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        self._check_compiled()
        self._reset_metrics()
        logs = self._test_step(_to_arrays(x), _to_arrays(y), None if sample_weight is None else np.asarray(sample_weight))
        return self._format(logs, return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as numpy arrays."""
        return tree.map_structure(np.asarray, self(_shared(_to_arrays(x)), training=False))

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for `x`, computed in batches of `batch_size` (32 by default)."""
        x = _to_arrays(x)
        batch_size = _batch_size(batch_size)
        if not _is_batch_iterable(x) and _count(x, "x") == 0:
            return self.predict_on_batch(x)  # no samples: an empty result of the right shape
        outputs = [self.predict_on_batch(bx) for bx, _, _ in _batches(x, None, None, batch_size, False)]
        if not outputs:
            raise ValueError("predict: received no input samples.")
        return tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *outputs)

    def _run_epoch(self, step, x, y, sample_weight, batch_size, shuffle, callbacks=None):
        self._reset_metrics()
        seen, loss_sum, logs = 0, {}, {}
        for batch, (bx, by, bsw) in enumerate(_batches(x, y, sample_weight, batch_size, shuffle)):
            if callbacks is not None:
                callbacks.on_train_batch_begin(batch)
            logs = step(bx, by, bsw)
            n = len(tree.flatten(bx)[0])
            seen += n
            for key, value in logs.items():
                if key == "loss" or key.endswith("_loss"):
                    loss_sum[key] = loss_sum.get(key, 0.0) + value * n
            logs.update({k: v / seen for k, v in loss_sum.items()})
            if callbacks is not None:
                callbacks.on_train_batch_end(batch, dict(logs))
                if self.stop_training:
                    break
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics over `x`, `y`, in batches."""
        self._check_compiled()
        logs = self._run_epoch(self._test_step, _to_arrays(x), _to_arrays(y), _to_arrays(sample_weight), _batch_size(batch_size), False)
        return self._format(logs, return_dict)

    @staticmethod
    def _format(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Trains the model; returns a `History` of the epochs' logs.

        Args:
            x, y: Arrays (or lists/dicts of arrays for several inputs/outputs), or `x` an
                iterable of `(x, y)` / `(x, y, sample_weight)` batches.
            batch_size: Samples per step (32 by default).
            epochs: Index of the last epoch (training starts at `initial_epoch`).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch; "auto" is 1.
            callbacks: List of callbacks.
            validation_split: Fraction of the (unshuffled) data, taken from the end, held out.
            validation_data: `(x_val, y_val)` or `(x_val, y_val, sample_weight)`.
            shuffle: Shuffle the samples before each epoch.
            sample_weight: Per-sample weights of the loss.
            initial_epoch: Epoch to start from.
        """
        self._check_compiled()
        x, y, sample_weight = _to_arrays(x), _to_arrays(y), _to_arrays(sample_weight)
        batch_size = _batch_size(batch_size)
        if y is not None and not _is_batch_iterable(x) and _count(x, "x") != _count(y, "y"):
            raise ValueError(
                f"Data cardinality is ambiguous: x sizes: {_count(x, 'x')}, y sizes: {_count(y, 'y')}. "
                "Make sure all arrays contain the same number of samples."
            )
        if validation_split and validation_data is None:
            if _is_batch_iterable(x):
                raise ValueError("validation_split is only supported for arrays, not for an iterable of batches; pass validation_data instead.")
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split: expected a float in (0, 1), received {validation_split}")
            n = _count(x, "x")
            split = int(n * (1.0 - validation_split))
            validation_data = (_take(x, slice(split, None)), _take(y, slice(split, None)), _take(sample_weight, slice(split, None)))
            x, y, sample_weight = _take(x, slice(0, split)), _take(y, slice(0, split)), _take(sample_weight, slice(0, split))
        steps = None
        if isinstance(x, (np.ndarray, list, dict)):
            steps = -(-_count(x, "x") // batch_size)
        history = History()
        callbacks = list(callbacks or [])
        if verbose == "auto":
            verbose = 1
        if verbose:
            progbar = ProgbarLogger()
            if verbose == 2:
                progbar.stream = _LineStream(progbar.stream)
            callbacks.append(progbar)
        callbacks.append(history)
        callback_list = CallbackList(callbacks, self, {"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = self._run_epoch(self._train_step, x, y, sample_weight, batch_size, shuffle, callback_list)
            if validation_data is not None and (epoch + 1 - initial_epoch) % validation_freq == 0:
                vx, vy, vsw = (list(validation_data) + [None])[:3]
                val = self._run_epoch(self._test_step, _to_arrays(vx), _to_arrays(vy), _to_arrays(vsw),
                                      validation_batch_size or batch_size, False)
                logs.update({f"val_{k}": v for k, v in val.items()})
            callback_list.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        self.optimizer.finalize_variable_values(self.trainable_weights)
        callback_list.on_train_end(logs)
        return history


class _LineStream:
    """A stream that never reports a terminal, so the progress bar prints one line per epoch."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self):
        return False

    def write(self, text):
        self._stream.write(text)

    def flush(self):
        self._stream.flush()
