"""`DataParallel`: Keras's data-parallel distribution, over MPI processes.

`fit`, `evaluate` and `predict` call its underscored methods at fixed points of a step; they are
the whole of what data parallelism changes in training.
"""

import numbers
import random

import numpy as np

from rnnkit import tree
from rnnkit.distribution.communicator import Communicator
from rnnkit.distribution.launch import initialize
from rnnkit.distribution.sharding import RankBatches, ShardedBatches, shard_batch
from rnnkit.losses.loss import apply_mask
from rnnkit.tensor import wrap


class DataParallel:
    """Data parallelism across the processes of an MPI job (`mpiexec -n N python train.py`).

    With `rk.distribution.set_distribution(DataParallel())`, `batch_size` is the global batch:
    each process (rank) computes the loss and gradients of its slice of every batch, weighted by
    its part of the batch, and the gradients are summed over the ranks in one allreduce per step,
    so every rank applies the gradient of the global batch's loss and keeps the same weights.
    Metrics, BatchNormalization's statistics, `evaluate` and `predict` are global too; rank 0
    alone prints and writes files. On one process (or without mpi4py, outside `mpiexec`) it
    changes nothing. The README's "Distributed training" section has the details.

    Args:
        timeout: Seconds a collective (a step's allreduce, a broadcast) may wait for the other
            ranks before every rank stops with a `DistributedError`; None waits forever.
        auto_shard_dataset: As Keras's: True, every process reads the same batches from an
            iterable (a generator, a PyDataset, ...) and keeps its rows of each; False, each
            process's iterable gives its own rows of each global batch (a dataset split by
            process), and all must give as many batches. Arrays are cut either way.

    Raises:
        ValueError: If `timeout` is not a positive number or None.
        ImportError: If the process was started by `mpiexec` among several but mpi4py is missing.
    """

    def __init__(self, timeout=300.0, auto_shard_dataset=True):
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0
        ):
            raise ValueError(f"timeout: expected a positive number of seconds or None, received {timeout!r}.")
        self.timeout = None if timeout is None else float(timeout)
        if not isinstance(auto_shard_dataset, bool):
            raise ValueError(f"auto_shard_dataset: expected True or False, received {auto_shard_dataset!r}.")
        self.auto_shard_dataset = auto_shard_dataset
        comm = initialize()
        self.communicator = None if comm is None or comm.Get_size() == 1 else Communicator(comm, self.timeout)
        self._local_samples = self._global_samples = 0  # rows of the current batch
        self._unbuilt = None  # a model to build on the first batch, then give rank 0's state
        self._loss_factors = None  # the step's weights of the losses, from `_weigh_losses`

    @property
    def num_processes(self):
        """The number of processes (ranks) training together."""
        return 1 if self.communicator is None else self.communicator.size

    @property
    def process_id(self):
        """This process's rank, 0 to `num_processes - 1`; rank 0 prints and writes files."""
        return 0 if self.communicator is None else self.communicator.rank

    def __repr__(self):
        return (
            f"<DataParallel process {self.process_id} of {self.num_processes}, timeout={self.timeout}, "
            f"auto_shard_dataset={self.auto_shard_dataset}>"
        )

    # --- hooks of fit, evaluate and predict ----------------------------------------------------

    def _begin(self, model, random_states=True):
        """Gives every rank rank 0's weights and optimizer state (of a built `model`) and random
        states (numpy's global and Python's, which draw the shuffles), at the start of `fit`,
        `evaluate` and `predict`."""
        variables = []
        if model is not None and model.built:
            optimizer = getattr(model, "optimizer", None)
            variables = [*model.weights, *(optimizer.variables if optimizer is not None else [])]
        states = (np.random.get_state(), random.getstate()) if random_states else None
        values, states = self.communicator.broadcast(([np.asarray(v) for v in variables], states))
        if len(values) != len(variables) or any(np.shape(a) != v.shape for a, v in zip(values, variables)):
            raise ValueError(
                f"model: rank {self.process_id}'s weights differ in number or shape from rank 0's; every rank must "
                "build the same model."
            )
        if self.process_id != 0:
            for variable, value in zip(variables, values):
                variable.assign(value)
            if states is not None:
                np.random.set_state(states[0])
                random.setstate(states[1])
        if variables:
            model._replicated_by = self

    def _shard(self, source, model=None):
        """`source` (a batch source of the global batches, or of this rank's rows of them with
        `auto_shard_dataset=False`) as this rank's rows; with `model`, rank 0's state is given to
        every rank first (a model not built yet is built on the first batch, then given it)."""
        from rnnkit.models.data_adapter import ArrayBatches

        if model is not None:
            self._begin(model)  # the random states now, before the first shuffle
            self._unbuilt = None if model.built else model
        arrays = isinstance(source, ArrayBatches)
        if self.auto_shard_dataset or arrays:
            return ShardedBatches(source, self.communicator, self._start_batch, check=not arrays)
        return RankBatches(source, self.communicator, self._start_batch)

    def _shard_batch(self, model, batch):
        """This rank's rows of one global batch `(x, y, sample_weight)` of `train_on_batch` or
        `test_on_batch`; rank 0's state is given first when `fit`, `evaluate`, `predict` or an
        earlier `*_on_batch` has not yet done it for this model."""
        rows, local_samples, global_samples = shard_batch(batch, self.process_id, self.num_processes)
        if getattr(model, "_replicated_by", None) is not self:
            self._unbuilt = model
        self._start_batch(rows, local_samples, global_samples)
        return rows

    def _start_batch(self, rows, local_samples, global_samples):
        """Notes the rows of the batch about to be computed (after building the model waiting for
        its first batch, by calling it on its rows, and giving it rank 0's state)."""
        self._local_samples, self._global_samples = local_samples, global_samples
        model, self._unbuilt = self._unbuilt, None
        if model is not None:
            if not model.built:
                model(rows[0], training=False)
            self._begin(model, random_states=False)

    def _batch_samples(self):
        """Rows of the current global batch."""
        return self._global_samples

    def _share(self):
        """This rank's share of the current global batch, the weight of its loss."""
        return self._local_samples / self._global_samples

    def _objective(self, outcome, losses, loss_weights):
        """What this rank differentiates: its loss weighted so that the sum over the ranks is one
        process's loss of the global batch (see `_weigh_losses`). A rank with no rows still runs
        the backward pass (synchronised BatchNormalization takes part in collectives there) on a
        zero that depends on the predictions."""
        total, per_output, _, y_pred, _ = outcome
        share, coefficients, weights = self._weigh_losses(outcome, losses, loss_weights)
        if self._local_samples == 0:
            from rnnkit import ops

            return sum(ops.sum(p) for p in y_pred) * 0.0
        objective = total * share
        for value, coefficient, weight in zip(per_output, coefficients, weights):
            if coefficient != share:
                objective = objective + value * ((coefficient - share) * weight)
        return objective

    def _weigh_losses(self, outcome, losses, loss_weights):
        """This rank's share of the global batch's rows (the factor of the regularisation losses
        and of losses averaged over the samples) and, per output with a loss, the factor of its
        loss: the share, 1 for `reduction="sum"`, or this rank's part of the global divisor for
        a mean over unmasked entries or over sample weights (one allreduce of those divisors).
        Kept with the outputs' loss weights for the losses logged."""
        share = self._share()
        _, _, _, y_pred, sample_weights = outcome
        kinds = [
            (fn, weight, _divisor(fn, p, w)) for fn, weight, p, w in zip(losses, loss_weights, y_pred, sample_weights)
        ]
        kinds = [k for k in kinds if k[0] is not None]
        counted = np.array([d for _, _, d in kinds if d is not None], np.float64)
        ratios = iter(self._ratios(counted))
        coefficients = [1.0 if fn.reduction == "sum" else share if d is None else next(ratios) for fn, _, d in kinds]
        self._loss_factors = (share, coefficients, [weight for _, weight, _ in kinds])
        return self._loss_factors

    def _ratios(self, counted):
        """Each rank's divisors over their sums over the ranks (0 where the sum is 0)."""
        if counted.size == 0:
            return counted
        totals = self.communicator.allreduce_sum(counted)
        return np.divide(counted, totals, out=np.zeros_like(counted), where=totals > 0)

    def _reduce_train_step(self, grads, params, outcome, gather):
        """The gradients summed over the ranks (None where no rank has one) and the step's outcome
        with global losses (and, with `gather`, the global batch's targets and predictions for
        the metrics): one allreduce of one flat buffer."""
        dtype = np.result_type(*(p.dtype for p in params))
        parts = [np.zeros(p.shape, dtype).ravel() if g is None else np.ravel(g) for g, p in zip(grads, params)]
        present = np.array([g is not None for g in grads], dtype)
        losses = self._weighted_losses(outcome, dtype)
        summed = self.communicator.allreduce_sum(np.concatenate([*parts, losses, present]))
        reduced, offset = [], 0
        for p, has_grad in zip(params, summed[-len(params) :] if params else []):
            size = int(np.prod(p.shape))
            reduced.append(
                summed[offset : offset + size].reshape(p.shape).astype(p.dtype, copy=False) if has_grad else None
            )
            offset += size
        return reduced, self._global_outcome(summed[offset : offset + losses.size], outcome, gather)

    def _reduce_test_step(self, outcome, losses, loss_weights, gather):
        """The step's outcome with global losses (and gathered metric inputs with `gather`)."""
        self._weigh_losses(outcome, losses, loss_weights)
        summed = self.communicator.allreduce_sum(self._weighted_losses(outcome, np.float64))
        return self._global_outcome(summed, outcome, gather)

    def _weighted_losses(self, outcome, dtype):
        """This rank's parts of the total loss and of each output's, weighted as `_objective`."""
        total, per_output = outcome[0], outcome[1]
        if self._local_samples == 0:
            return np.zeros(1 + len(per_output), dtype)
        share, coefficients, weights = self._loss_factors
        values = [float(np.asarray(v)) for v in per_output]
        total = float(np.asarray(total)) * share
        total += sum((c - share) * w * v for v, c, w in zip(values, coefficients, weights))
        return np.array([total, *(c * v for v, c in zip(values, coefficients))], dtype)

    def _global_outcome(self, losses, outcome, gather):
        """`outcome` with the losses summed over the ranks and, with `gather`, every rank's targets,
        predictions (with their masks) and sample weights joined in rank order: the global batch's."""
        _, per_output, y_true, y_pred, sample_weights = outcome
        total, per_output = losses[0], list(losses[1 : 1 + len(per_output)])
        if not gather:
            return total, per_output, y_true, y_pred, sample_weights
        masks = [getattr(p, "_keras_mask", None) for p in y_pred]
        local = ([_array(a) for a in y_true], [np.asarray(p) for p in y_pred], [_array(m) for m in masks])
        local += ([_array(w) for w in sample_weights],)
        ranks = self.communicator.allgather(local)
        y_true, y_pred, masks, sample_weights = (
            [_concatenate(parts) for parts in zip(*field)] for field in zip(*ranks)
        )
        y_pred = [wrap(p) for p in y_pred]
        for p, mask in zip(y_pred, masks):
            p._keras_mask = mask
        return total, per_output, y_true, y_pred, sample_weights

    def _gather_batches(self, outputs):
        """Every rank's per-batch outputs of `predict`, in the order of the global batches and, within
        each, of the ranks: the outputs of the whole input, in order."""
        ranks = self.communicator.allgather(outputs)
        return [part for batch in zip(*ranks) for part in batch]


def _divisor(loss, y_pred, sample_weight):
    """What `loss` divides this rank's summed losses by when that is not proportional to its rows:
    the unmasked entries of a masked prediction, or the sample weights for
    `reduction="mean_with_sample_weight"` (the count `Loss.__call__` divides by); else None."""
    if loss is None or loss.reduction not in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
        return None
    mask = getattr(y_pred, "_keras_mask", None)
    if loss.reduction == "mean_with_sample_weight":
        weights = apply_mask(sample_weight, mask, np.float64, loss.reduction)
        return None if weights is None else float(np.sum(weights))
    return None if mask is None else float(np.sum(np.asarray(mask, bool)))


def _array(value):
    return None if value is None else np.asarray(value)


def _concatenate(parts):
    """The ranks' parts joined along the batch axis (None when they are None)."""
    if all(p is None for p in parts):
        return None
    return tree.map_structure(lambda *leaves: np.concatenate(leaves, axis=0), *parts)
