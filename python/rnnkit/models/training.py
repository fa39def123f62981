"""`compile`, `fit`, `evaluate`, `predict` and the `*_on_batch` methods of models."""

import itertools
import warnings

import numpy as np

from rnnkit import ops, tree
from rnnkit.callbacks import CallbackList
from rnnkit.distribution.state import replicas, reports_failures
from rnnkit.models import compiled, data_adapter
from rnnkit.models.data_adapter import EpochIterator, batches_of, count_samples, is_batch_iterable, to_arrays
from rnnkit.tape import GradientTape
from rnnkit.tensor import wrap


def _shared(x):
    """The arrays of a batch as read-only Tensors sharing their memory: a step reads its inputs
    and keeps none of them, so the copy a Tensor makes of a user's array is not needed."""
    return tree.map_structure(lambda a: wrap(a.view()) if isinstance(a, np.ndarray) else a, x)


def _loss_object(identifier):
    """A `Loss` for a loss name, instance or function (functions are wrapped, as Keras does)."""
    from rnnkit import losses

    loss = losses.get(identifier)
    if loss is None or isinstance(loss, losses.Loss):
        return loss
    return losses.LossFunctionWrapper(loss, name=getattr(loss, "__name__", "loss"))


def _as_list(value):
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _concatenate(outputs):
    """Batches' outputs (each a structure of arrays) joined along the batch axis."""
    return tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *outputs)


def _executions(batches, size):
    """`(index of the first batch, up to `size` batches)` for each execution of an epoch's
    batches (`compile(steps_per_execution=size)`)."""
    batches, first = iter(batches), 0
    while execution := list(itertools.islice(batches, size)):
        yield first, execution
        first += len(execution)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _positive_int_or_none(value, name):
    if value is not None and (not _is_int(value) or value <= 0):
        raise ValueError(f"{name}: expected a positive integer or None, received {value!r}.")
    return None if value is None else int(value)


def _verbosity(verbose):
    """0, 1 or 2 for `verbose` ("auto" is 1, as Keras has it outside Colab-style notebooks)."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"verbose: expected 0, 1, 2 or 'auto', received {verbose!r}.")
    return int(verbose)


def _should_validate(epoch, validation_freq):
    """Whether epoch `epoch` (0-based) is followed by validation: every `validation_freq`-th
    epoch counted from 1, or the 1-based epochs listed."""
    if _is_int(validation_freq) and validation_freq > 0:
        return (epoch + 1) % validation_freq == 0
    if isinstance(validation_freq, (list, tuple, set, range)) and all(_is_int(e) for e in validation_freq):
        return epoch + 1 in validation_freq
    raise ValueError(
        f"validation_freq: expected a positive integer or a list of epochs (1-based), received {validation_freq!r}."
    )


def _split_validation(x, y, sample_weight, validation_split):
    """`(x, y, sample_weight)` for training and `(x, y, sample_weight)` held out for validation: the
    last `validation_split` fraction of the samples, before any shuffling (as Keras)."""
    if is_batch_iterable(x):
        raise ValueError(
            f"validation_split: expected x as arrays, received an iterable of batches ({type(x).__name__}); "
            "pass validation_data instead."
        )
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or not 0 < validation_split < 1
    ):
        raise ValueError(f"validation_split: expected a float in (0, 1), received {validation_split!r}.")
    x, y, sample_weight = to_arrays(x), to_arrays(y), to_arrays(sample_weight)
    n = count_samples(x, "x")
    split = int(n * (1.0 - validation_split))
    if split in (0, n):
        raise ValueError(
            f"validation_split: expected a fraction that leaves samples on both sides, received {validation_split} "
            f"of {n} samples ({split} for training)."
        )

    def part(index):
        return tuple(None if a is None else tree.map_structure(lambda v: v[index], a) for a in (x, y, sample_weight))

    return part(slice(0, split)), part(slice(split, None))


class _StepPlan:
    """What every training step needs from the model and is the same at every step: the trainable
    weights, their constraints and the output names. Made once per `compile` and per `fit` (after
    the first forward pass, so a model built by its first call has its weights)."""

    def __init__(self, model):
        self.params = model.trainable_weights
        self.constraints = {id(w): c for w in self.params if (c := model.constraint_for(w)) is not None}
        self.names = model._output_names()


class Trainer:
    """The Keras training API, mixed into `Model`."""

    compiled = False
    stop_training = False
    stop_evaluating = False
    stop_predicting = False
    history = None
    _plan = None
    _graph_plan = None  # the compiled execution's plan (`rnnkit.models.compiled`)
    _run_eagerly = False
    _jit_compile = "auto"
    steps_per_execution = 1  # batches between two calls of the callbacks' batch hooks
    _initial_epoch = None  # set by `BackupAndRestore` to resume an interrupted fit

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        """Sets the optimizer, the loss (one per output for several outputs) and the metrics.

        Args:
            optimizer: An optimizer or its name.
            loss: A loss (name, instance or function), or a list/dict of them, one per output.
            loss_weights: Optional list/dict of scalars weighting the outputs' losses.
            metrics: Metric names or instances, applied to every output (or a list/dict per output).
            weighted_metrics: Metrics that also receive the sample weights.
            run_eagerly: True runs every step layer call by layer call (`Layer.__call__` with
                all its checks), for debugging; False (the default) lets `jit_compile` decide.
            jit_compile: "auto" (the default) or True run the training, evaluation and
                prediction steps of functional and Sequential models of built-in layers as a
                compiled plan (`rnnkit.models.compiled`: each layer's computation called
                directly in graph order, the same numbers as eager execution); other models
                run eagerly, with a one-time warning for True. False, or `run_eagerly=True`
                (which overrides True, with a warning, as in Keras), runs eagerly.
            steps_per_execution: Batches run per execution (a positive int): `fit`, `evaluate`
                and `predict` call the batch hooks of callbacks (the progress bar included) and
                check `stop_training` once every that many batches, as Keras does; the numbers
                are those of one batch at a time. An epoch's last execution may be shorter; its
                end hook gets the index of its last batch (Keras's, first + N - 1 even there).
            auto_scale_loss: Keras's loss scaling for the "mixed_float16" policy (a bool).
                rnnkit has no float16 policy ("mixed_bfloat16" needs no loss scale), so there is
                nothing to scale, as in Keras under every other policy.

        Raises:
            ValueError: For a `run_eagerly` or `auto_scale_loss` that is not a bool, a
                `steps_per_execution` that is not a positive int, or a `jit_compile` that is not
                "auto", True or False.
        """
        from rnnkit import metrics as metric_registry
        from rnnkit import optimizers

        run_eagerly, jit_compile = compiled.check_run_eagerly(run_eagerly), compiled.check_jit_compile(jit_compile)
        if run_eagerly and jit_compile is True:
            warnings.warn(
                "If `run_eagerly` is True, then `jit_compile` cannot also be True. Disabling `jit_compile`.",
                stacklevel=2,
            )
            jit_compile = False
        if not _is_int(steps_per_execution) or steps_per_execution < 1:
            raise ValueError(f"steps_per_execution: expected a positive integer, received {steps_per_execution!r}.")
        if not isinstance(auto_scale_loss, bool):
            raise ValueError(f"auto_scale_loss: expected True or False, received {auto_scale_loss!r}.")
        self.steps_per_execution = steps_per_execution
        self.optimizer = optimizers.get(optimizer)
        names = self._output_names()
        self._losses = self._per_output(loss, names, "loss", _loss_object)
        weights = self._per_output(loss_weights, names, "loss_weights", float) if loss_weights is not None else None
        self._loss_weights = weights or [1.0] * len(names)
        self._metric_specs = self._per_output(metrics, names, "metrics", _as_list, broadcast_lists=True)
        self._weighted_specs = self._per_output(
            weighted_metrics, names, "weighted_metrics", _as_list, broadcast_lists=True
        )
        for spec in (s for per_output in self._metric_specs + self._weighted_specs for s in per_output):
            if spec not in ("accuracy", "acc"):
                metric_registry.get(spec)  # an unknown name fails here, before any batch is computed
        self._metrics = None  # built on the first batch, when shapes are known
        self._plan = None
        self._run_eagerly, self._jit_compile, self._graph_plan = run_eagerly, jit_compile, None
        self.compiled = True

    @property
    def run_eagerly(self):
        """Whether steps run layer call by layer call (`compile(run_eagerly=...)`); settable."""
        return self._run_eagerly

    @run_eagerly.setter
    def run_eagerly(self, value):
        self._run_eagerly = compiled.check_run_eagerly(value)

    @property
    def jit_compile(self):
        """Whether steps run as a compiled plan: True when `compile(jit_compile=...)` was "auto"
        or True, `run_eagerly` is False and the model can be planned; settable to "auto", True or
        False."""
        if self._run_eagerly or self._jit_compile is False:
            return False
        return compiled.GraphPlan(self).reason is None

    @jit_compile.setter
    def jit_compile(self, value):
        self._jit_compile, self._graph_plan = compiled.check_jit_compile(value), None

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
                raise ValueError(
                    f"{arg}: expected {len(names)} entries (one per output: {names}), received {len(value)}."
                )
            return [convert(v) for v in value]
        if (
            broadcast_lists
            and isinstance(value, (list, tuple))
            and len(names) > 1
            and len(value) == len(names)
            and all(isinstance(v, (list, tuple)) for v in value)
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

    def _compute_loss(self, y_true, y_pred, sample_weights):
        per_output = []
        total = None  # no `0.0 + 1.0 * loss` ops on the tape for a model's single loss
        for fn, weight, yt, yp, sw in zip(self._losses, self._loss_weights, y_true, y_pred, sample_weights):
            if fn is None:
                continue
            value = fn(yt, yp, sample_weight=sw)
            per_output.append(value)
            weighted = value if weight == 1.0 else weight * value
            total = weighted if total is None else total + weighted
        extras = self.losses
        if not per_output and not extras:
            raise ValueError(
                "No loss to compute. Provide a `loss` argument in `compile()` (or add losses with `add_loss`)."
            )
        for extra in extras:  # `add_loss` may add a loss per sample: each counts as its sum, as Keras
            extra = extra if not extra.shape else ops.sum(extra)
            total = extra if total is None else total + extra
        return total, per_output

    @staticmethod
    def _by_output(value, names):
        """`value` (targets or sample weights: one array, a list in output order, or a dict keyed
        by output name) as a list in output order."""
        if isinstance(value, dict) and set(value) == set(names):
            return [value[name] for name in names]
        return tree.flatten(value) if isinstance(value, (list, tuple, dict)) else [value]

    def _sample_weights(self, sample_weight, names):
        """One sample-weight array (or None) per output; a single array applies to every output."""
        if isinstance(sample_weight, (list, tuple, dict)):
            weights = self._by_output(sample_weight, names)
            if len(weights) != len(names):
                raise ValueError(f"sample_weight: expected one array per output ({names}), received {len(weights)}.")
            return weights
        return [sample_weight] * len(names)

    def _step_plan(self):
        if self._plan is None:
            self._plan = _StepPlan(self)
        return self._plan

    def _forward(self, x, y, sample_weight, training):
        """The total loss, the per-output losses, and the targets, predictions and sample weights per
        output (`_step_logs`'s arguments)."""
        y_pred = compiled.planned_call(self, _shared(x), training)
        names = self._step_plan().names
        y_pred, y_true = self._by_output(y_pred, names), self._by_output(y, names)
        sample_weights = self._sample_weights(sample_weight, names)
        total, per_output = self._compute_loss(y_true, y_pred, sample_weights)
        return total, per_output, y_true, y_pred, sample_weights

    def _step_logs(self, total, per_output, y_true, y_pred, sample_weights):
        if self._metrics is None:
            self._build_metrics(y_true, y_pred)
        names = self._step_plan().names
        logs = {"loss": float(np.asarray(total))}
        if len(names) > 1:
            for name, value in zip([n for n, f in zip(names, self._losses) if f is not None], per_output):
                logs[f"{name}_loss"] = float(np.asarray(value))
        for out, metric, weighted in self._metrics:
            # The prediction Tensor carries its mask, which metrics honour as Keras's do.
            metric.update_state(y_true[out], y_pred[out], sample_weight=sample_weights[out] if weighted else None)
            key = metric.name if len(names) == 1 else f"{names[out]}_{metric.name}"
            logs[key] = float(metric.result())
        return logs

    def _reset_metrics(self):
        for _, metric, _ in self._metrics or []:
            metric.reset_state()

    def _check_compiled(self):
        if not self.compiled:
            raise ValueError(
                "You must call `compile()` before using the model for training or evaluation: the model has no loss "
                "or optimizer yet."
            )

    def _train_step(self, x, y, sample_weight):
        # With data parallelism, each rank differentiates its share of the global batch's loss and
        # the gradients (and the losses and metric inputs logged) are reduced over the ranks.
        distributed = replicas()
        with GradientTape() as tape:
            outcome = self._forward(x, y, sample_weight, training=True)
            target = (
                outcome[0] if distributed is None else distributed._objective(outcome, self._losses, self._loss_weights)
            )
        plan = self._step_plan()
        grads = tape.gradient(target, plan.params)
        if distributed is not None:
            grads, outcome = distributed._reduce_train_step(grads, plan.params, outcome, self._has_metrics())
        self.optimizer.apply(grads, plan.params, constraints=plan.constraints)
        return self._step_logs(*outcome)

    def _test_step(self, x, y, sample_weight):
        outcome = self._forward(x, y, sample_weight, training=False)
        distributed = replicas()
        if distributed is not None:
            outcome = distributed._reduce_test_step(outcome, self._losses, self._loss_weights, self._has_metrics())
        return self._step_logs(*outcome)

    def _has_metrics(self):
        return any(self._metric_specs + self._weighted_specs)

    def _distributed(self, source, synchronize=True):
        """`source` cut to this rank's shard of each batch, after rank 0's weights and random
        states are given to every rank (with `synchronize`); `source` itself on one process."""
        distributed = replicas()
        return source if distributed is None else distributed._shard(source, self if synchronize else None)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient step on one batch; returns the batch's loss (and metrics).

        Args:
            x: The batch's inputs (an array, or a list/dict of arrays).
            y: The batch's targets (an array, or a list/dict of arrays).
            sample_weight: Per-sample weights of the loss.
            class_weight: Dict from class index to weight (instead of `sample_weight`).
            return_dict: Return `{name: value}` instead of a value or list of values.

        Under `rk.distribution.DataParallel` the batch is the global batch: each process trains
        on its rows, as in `fit` (so is `test_on_batch`'s; `predict_on_batch` runs on each
        process alone).
        """
        self._check_compiled()
        self._reset_metrics()
        y = to_arrays(y)
        sample_weight = data_adapter.apply_class_weight(y, to_arrays(sample_weight), class_weight)
        return self._format(self._train_step(*self._distributed_batch(to_arrays(x), y, sample_weight)), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        self._check_compiled()
        self._reset_metrics()
        batch = self._distributed_batch(to_arrays(x), to_arrays(y), to_arrays(sample_weight))
        return self._format(self._test_step(*batch), return_dict)

    def _distributed_batch(self, x, y, sample_weight):
        """This process's rows of a global batch under data parallelism, else the batch."""
        distributed = replicas()
        return (x, y, sample_weight) if distributed is None else distributed._shard_batch(self, (x, y, sample_weight))

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as numpy arrays."""
        return tree.map_structure(np.asarray, compiled.planned_call(self, _shared(to_arrays(x)), False))

    def _run_batches(self, step, batches, callbacks, mode):
        """Runs `step` on each batch of one epoch, calling the `on_{mode}_batch_*` hooks; returns
        the logs (losses averaged over the samples seen, metrics accumulated), or None when no
        batch came."""
        self._reset_metrics()
        begin, end = getattr(callbacks, f"on_{mode}_batch_begin"), getattr(callbacks, f"on_{mode}_batch_end")
        stop_flag = "stop_training" if mode == "train" else "stop_evaluating"
        seen, loss_sums, logs = 0, {}, None
        for first, execution in _executions(batches, self.steps_per_execution):
            begin(first)
            for bx, by, bsw in execution:
                logs = step(bx, by, bsw)
                n = len(tree.flatten(bx)[0]) if replicas() is None else replicas()._batch_samples()
                seen += n
                for key, value in logs.items():
                    if key == "loss" or key.endswith("_loss"):
                        loss_sums[key] = loss_sums.get(key, 0.0) + value * n
                logs.update({k: v / seen for k, v in loss_sums.items()})
            end(first + len(execution) - 1, dict(logs))
            if getattr(self, stop_flag):
                break
        return logs

    def _evaluate_epoch(self, batches, callbacks):
        self.stop_evaluating = False
        batches.reset()
        callbacks.on_test_begin()
        logs = self._run_batches(self._test_step, batches.epoch(), callbacks, "test")
        if logs is None:
            raise ValueError(
                "x: expected at least one batch to evaluate, received none (empty arrays, or an iterator "
                "already run out; pass a dataset that can be iterated again, or validation_steps)."
            )
        callbacks.on_test_end(logs)
        return logs

    @reports_failures
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The loss and metrics over `x`, `y`, in batches.

        Args:
            x: Inputs as arrays (or lists/dicts of arrays), or an iterable of batches `x`,
                `(x, y)` or `(x, y, sample_weight)`.
            y: Targets, when `x` is arrays.
            batch_size: Samples per batch of arrays (32 by default).
            verbose: 0 silent, 1 or 2 a progress bar; "auto" is 1.
            sample_weight: Per-sample weights of the loss, when `x` is arrays.
            steps: Batches to evaluate (default: all).
            callbacks: Callbacks; their `on_test_*` hooks are called.
            return_dict: Return `{name: value}` instead of a value or list of values.
        """
        self._check_compiled()
        verbose = _verbosity(verbose)
        steps = _positive_int_or_none(steps, "steps")
        batch_size = _positive_int_or_none(batch_size, "batch_size")
        batches = EpochIterator(self._distributed(batches_of(x, y, sample_weight, batch_size, steps)), steps)
        callbacks = CallbackList(
            callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1, steps=batches.num_batches
        )
        return self._format(self._evaluate_epoch(batches, callbacks), return_dict)

    @reports_failures
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for `x`, computed in batches.

        Args:
            x: Inputs as arrays (or lists/dicts of arrays), or an iterable of batches (`x`, or
                tuples whose first entry is `x`).
            batch_size: Samples per batch of arrays (32 by default).
            verbose: 0 silent, 1 or 2 a progress bar; "auto" is 1.
            steps: Batches to predict (default: all).
            callbacks: Callbacks; their `on_predict_*` hooks are called, the batch's outputs
                logged as `{"outputs": ...}`.

        Returns:
            numpy arrays in the structure of the model's outputs.
        """
        verbose = _verbosity(verbose)
        steps = _positive_int_or_none(steps, "steps")
        batch_size = _positive_int_or_none(batch_size, "batch_size")
        if not is_batch_iterable(x) and count_samples(to_arrays(x), "x") == 0:
            return self.predict_on_batch(x)  # no samples: an empty result of the right shape
        batches = EpochIterator(self._distributed(batches_of(x, batch_size=batch_size, steps=steps)), steps)
        callbacks = CallbackList(
            callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1, steps=batches.num_batches
        )
        self.stop_predicting = False
        callbacks.on_predict_begin()
        outputs = []
        for first, execution in _executions(batches.epoch(), self.steps_per_execution):
            callbacks.on_predict_batch_begin(first)
            outputs.extend(self.predict_on_batch(bx) for bx, _, _ in execution)
            logged = outputs[-1] if len(execution) == 1 else _concatenate(outputs[-len(execution) :])
            callbacks.on_predict_batch_end(first + len(execution) - 1, {"outputs": logged})
            if self.stop_predicting:
                break
        callbacks.on_predict_end()
        if replicas() is not None:
            outputs = replicas()._gather_batches(outputs)
        if not outputs:
            raise ValueError("x: expected at least one batch to predict, received none.")
        return _concatenate(outputs)

    @staticmethod
    def _format(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    @reports_failures
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        """Trains the model; returns a `History` of the epochs' logs.

        Args:
            x: Inputs as arrays (or lists/dicts of arrays for several inputs), or an iterable of
                batches `x`, `(x, y)` or `(x, y, sample_weight)`: a generator, a PyDataset, a
                `tf.data.Dataset`, a `torch.utils.data.DataLoader`, any object with `__iter__`.
            y: Targets, when `x` is arrays.
            batch_size: Samples per step for arrays (32 by default).
            epochs: Index of the last epoch (training starts at `initial_epoch`).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch; "auto" is 1.
            callbacks: List of callbacks.
            validation_split: Fraction of the (unshuffled) arrays, taken from the end, held out.
            validation_data: `(x_val, y_val)`, `(x_val, y_val, sample_weight)` or an iterable of
                batches; evaluated after each epoch (it overrides `validation_split`).
            shuffle: Shuffle the samples before each epoch (True, False, or "batch" to shuffle
                within batches); for a PyDataset, the order of its batches.
            class_weight: Dict from class index to a weight multiplying its samples' loss.
            sample_weight: Per-sample weights of the loss, when `x` is arrays.
            initial_epoch: Epoch to start from.
            steps_per_epoch: Batches per epoch; the next epoch goes on where the last stopped
                (needed for an infinite generator).
            validation_steps: Batches per validation, read from the start each time.
            validation_batch_size: Samples per validation batch (default: `batch_size`).
            validation_freq: Validate every this many epochs, or after the (1-based) epochs listed.
        """
        self._check_compiled()
        verbose = _verbosity(verbose)
        for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, received {value!r}.")
        steps_per_epoch = _positive_int_or_none(steps_per_epoch, "steps_per_epoch")
        validation_steps = _positive_int_or_none(validation_steps, "validation_steps")
        batch_size = _positive_int_or_none(batch_size, "batch_size")
        validation_batch_size = _positive_int_or_none(validation_batch_size, "validation_batch_size")
        if validation_data is not None:
            _should_validate(0, validation_freq)  # a bad validation_freq fails before training
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = _split_validation(x, y, sample_weight, validation_split)
        train = EpochIterator(
            self._distributed(batches_of(x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight)),
            steps_per_epoch,
        )
        validation = None
        if validation_data is not None:
            vx, vy, vsw = data_adapter.unpack_x_y_sample_weight(validation_data)
            val_batch_size = validation_batch_size or (None if is_batch_iterable(vx) else batch_size)
            validation_batches = batches_of(vx, vy, vsw, val_batch_size, validation_steps)
            validation = EpochIterator(self._distributed(validation_batches, synchronize=False), validation_steps)
        callbacks = CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=train.num_batches,
        )
        self.stop_training = False
        self._plan = None  # layers may have been frozen or unfrozen since the last fit
        callbacks.on_train_begin()
        logs = {}
        for epoch in range(self._initial_epoch or initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            epoch_logs = self._run_batches(self._train_step, train.epoch(), callbacks, "train")
            if epoch_logs is None:
                warnings.warn(
                    f"x: ran out of data at the start of epoch {epoch + 1}; training stops. A generator is one pass: "
                    "pass steps_per_epoch with enough batches for all epochs, or a dataset that can be iterated again.",
                    stacklevel=2,
                )
                break
            if validation is not None and _should_validate(epoch, validation_freq):
                val_logs = self._evaluate_epoch(validation, callbacks)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self.stop_training:
                break
        self._initial_epoch = None
        self.optimizer.finalize_variable_values(self.trainable_weights)
        callbacks.on_train_end(logs)
        return self.history
