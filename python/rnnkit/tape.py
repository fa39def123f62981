"""GradientTape: records differentiable ops and runs them backwards (reverse-mode autodiff)."""

import collections
import threading

import numpy as np

from rnnkit import tree
from rnnkit.tensor import Tensor, Variable, wrap

# Tapes are per thread, as in TensorFlow: ops run by another thread are not recorded.
_local = threading.local()

# A recorded op. `inputs` holds an (id, shape, dtype) spec per input, or None for an input
# the tape needs no gradient for; `outputs` holds the ids of the outputs.
_Node = collections.namedtuple("_Node", ["inputs", "outputs", "backward"])


def _active_tapes():
    return getattr(_local, "tapes", ())


def _differentiable(tensor):
    return tensor.dtype.kind in "fc"


def record(inputs, outputs, backward):
    """Records one differentiable op on every active tape that watches one of its inputs.

    Every op calls this once its outputs are computed, and the fused RNN op (a Rust forward
    and a Rust backward) plugs in the same way. Outside a tape it does nothing. Tapes keep
    `backward` and the ids, shapes and dtypes of the tensors, never the Tensors themselves,
    so whatever the backward pass needs must be captured by `backward`.

    Args:
        inputs: Sequence of the op's inputs. Entries that are not Tensors (Python scalars,
            indices) are allowed and get no gradient.
        outputs: Sequence of the Tensors the op returned. Outputs of integer or boolean dtype
            pass no gradient on.
        backward: Callable `backward(output_grads) -> input_grads`. `output_grads` is a tuple
            with one entry per output: a numpy array of that output's shape and dtype, or None
            when the target does not depend on that output (at least one entry is an array).
            It returns a sequence with one entry per input: an array of that input's shape
            (cast to the input's dtype), or None for no gradient. It runs under no tape, so
            its computations are not recorded, and must not write into the arrays it gets.
    """
    for tape in _active_tapes():
        tape._record(inputs, outputs, backward)


def recording():
    """Whether a tape is active on this thread: outside one no op's backward can ever run."""
    return bool(_active_tapes())


def needs_gradient(tensor):
    """Whether an op reading `tensor` now would be asked for its gradient by an active tape.

    Ops whose input gradient costs real work (the fused RNN's, a product as large as the input
    projection) ask before their backward; a model's input data is watched by no tape.
    """
    return any(tape._needs(tensor) for tape in _active_tapes())


class GradientTape:
    """Records ops on watched tensors so that `gradient` can differentiate them.

    Semantics follow `tf.GradientTape`: ops run inside `with GradientTape() as tape:` are
    recorded when one of their inputs is watched (or computed from a watched tensor);
    trainable Variables are watched when an op reads them. Nested tapes each record what
    they watch. Gradients are computed with numpy, so they are not differentiable themselves.

    Args:
        persistent: Whether `gradient` may be called more than once. A non-persistent tape
            frees what it recorded on the first call.
        watch_accessed_variables: Whether trainable Variables read by ops while the tape is
            active are watched automatically.
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = persistent
        self._watch_accessed_variables = watch_accessed_variables
        self._watched = set()  # ids of watched tensors and of tensors computed from them
        self._variables = {}  # id -> watched Variable, in the order they were watched
        self._nodes = []  # recorded ops in execution order; None once a gradient consumed them

    def __enter__(self):
        _local.tapes = _active_tapes() + (self,)
        return self

    def __exit__(self, *exc_info):
        _local.tapes = tuple(tape for tape in _active_tapes() if tape is not self)

    def watch(self, tensor):
        """Makes the tape record ops on `tensor`.

        Args:
            tensor: A Tensor, Variable or nested structure of them. Tensors that are not
                floating point are skipped: they have no gradient.

        Raises:
            TypeError: If a leaf is not a Tensor.
        """
        for leaf in tree.flatten(tensor):
            if not isinstance(leaf, Tensor):
                raise TypeError(f"GradientTape.watch expects Tensors, got {type(leaf).__name__}.")
            if _differentiable(leaf):
                self._watched.add(leaf._id)
                if isinstance(leaf, Variable):
                    self._variables[leaf._id] = leaf

    def watched_variables(self):
        """Returns the Variables watched so far, in the order they were first watched."""
        return tuple(self._variables.values())

    def _record(self, inputs, outputs, backward):
        if self._nodes is None:
            return
        # One pass over the inputs: it runs for every op of every training step.
        watched, specs, needed = self._watched, [], False
        for t in inputs:
            if isinstance(t, Tensor) and (t._id in watched or self._watch_variable(t)):
                specs.append((t._id, t.shape, t.dtype))
                needed = True
            else:
                specs.append(None)
        if not needed:
            return
        self._nodes.append(_Node(specs, [t._id for t in outputs], backward))
        watched.update(t._id for t in outputs if _differentiable(t))

    def _watch_variable(self, tensor):
        """Watches `tensor` if it is a trainable floating Variable read while variables are
        watched automatically; returns whether it did."""
        if self._watch_accessed_variables and isinstance(tensor, Variable) and tensor.trainable:
            if _differentiable(tensor):
                self._watched.add(tensor._id)
                self._variables[tensor._id] = tensor
                return True
        return False

    def _needs(self, tensor):
        """Whether this tape differentiates with respect to `tensor` as an op input."""
        if self._nodes is None or not isinstance(tensor, Tensor):
            return False
        accessed = self._watch_accessed_variables and isinstance(tensor, Variable) and tensor.trainable
        return tensor._id in self._watched or (accessed and _differentiable(tensor))

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """Computes the gradients of `target` with respect to `sources`.

        Args:
            target: A Tensor or nested structure of Tensors. A non-scalar target, or several,
                is differentiated as the sum of all its elements (seeded with ones).
            sources: A Tensor, Variable or nested structure of them.
            output_gradients: Optional gradients of the targets, in the structure of `target`
                and of the same shapes; None entries mean ones.
            unconnected_gradients: "none" returns None for sources the target does not depend
                on, "zero" returns zeros.

        Returns:
            Tensors in the structure of `sources`, of the sources' shapes and dtypes.

        Raises:
            RuntimeError: If a non-persistent tape is asked for gradients a second time.
            TypeError: If a target or source is not a Tensor.
            ValueError: If `output_gradients` does not match `target`.
        """
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}.")
        if self._nodes is None:
            raise RuntimeError(
                "A non-persistent GradientTape can compute gradients only once; "
                "create it with GradientTape(persistent=True) to call gradient() again."
            )
        targets, flat_sources = tree.flatten(target), tree.flatten(sources)
        seeds = [None] * len(targets) if output_gradients is None else tree.flatten(output_gradients)
        if len(seeds) != len(targets):
            raise ValueError(f"output_gradients has {len(seeds)} entries for {len(targets)} targets")
        for leaf in targets + flat_sources:
            if not isinstance(leaf, Tensor):
                raise TypeError(f"Targets and sources must be Tensors, got {type(leaf).__name__}.")

        nodes = self._nodes
        if not self._persistent:
            self._nodes = None  # frees the recorded ops and the arrays they saved
        grads = {}
        for t, seed in zip(targets, seeds):
            # A copy, because the gradients handed back are made read-only.
            seed = np.ones(t.shape, t.dtype) if seed is None else np.array(seed, dtype=t.dtype)
            _accumulate(grads, (t._id, t.shape, t.dtype), seed, "output_gradients")
        keep = {source._id for source in flat_sources}
        # Recording order is a topological order, so going backwards reaches every consumer of
        # a tensor before the op that produced it; intermediate gradients are dropped once used.
        for node in reversed(nodes):
            if len(node.outputs) == 1:  # most ops: no tuple built from a generator
                key = node.outputs[0]
                grad = grads.get(key) if key in keep else grads.pop(key, None)
                if grad is None:
                    continue
                out_grads = (grad,)
            else:
                out_grads = tuple(grads.get(k) if k in keep else grads.pop(k, None) for k in node.outputs)
                if all(g is None for g in out_grads):
                    continue
            in_grads = node.backward(out_grads)
            if len(in_grads) != len(node.inputs):
                raise ValueError(
                    f"{_name(node.backward)} returned {len(in_grads)} gradients for {len(node.inputs)} inputs."
                )
            for spec, grad in zip(node.inputs, in_grads):
                if spec is not None and grad is not None:
                    _accumulate(grads, spec, grad, node.backward)

        results = []
        for source in flat_sources:
            grad = grads.get(source._id)
            if grad is None and unconnected_gradients == "zero":
                grad = np.zeros(source.shape, source.dtype)
            # Contiguous, because an op may pass on a broadcast view with zero strides.
            results.append(None if grad is None else wrap(np.asarray(grad, order="C")))
        return tree.pack_sequence_as(sources, results)


def _name(origin):
    """A name for an error message: `origin` itself if it is one, else the function's."""
    if isinstance(origin, str):
        return origin
    name = getattr(origin, "__qualname__", None)
    return repr(origin) if name is None else name


def _accumulate(grads, spec, grad, origin):
    """Adds `grad` to the gradient of the tensor `spec` describes; `origin` (a name, or the
    backward function that made it) is named only in the error message."""
    key, shape, dtype = spec
    grad = np.asarray(grad, dtype=dtype)
    if grad.shape != shape:
        raise ValueError(f"Gradient of shape {grad.shape} for a tensor of shape {shape}, from {_name(origin)}.")
    # Never in place: a backward may hand the same array to several inputs.
    grads[key] = grad if key not in grads else grads[key] + grad
